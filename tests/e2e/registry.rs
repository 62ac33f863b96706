//! Registry round trips against the real distribution registry (Debian's `docker-registry`),
//! checked with `skopeo`, and every Wasm image format in use.

use crate::harness::{Daemon, example};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry` on 127.0.0.1 with an ephemeral port and a temp storage dir.
pub struct Registry {
    pub addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install docker-registry (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect(
                    "htpasswd is missing: apt-get install apache2-utils (scripts/test.sh does)",
                );
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Self { addr, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Uploads a blob through the registry's HTTP API (monolithic upload) with curl.
    pub fn put_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(data));
        let out = curl(&[
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{}/v2/{repo}/blobs/uploads/", self.addr),
        ]);
        let location = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or_else(|| l.strip_prefix("location: "))
            })
            .expect("upload location")
            .trim()
            .to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = if location.starts_with("http") {
            format!("{location}{sep}digest={digest}")
        } else {
            format!("http://{}{location}{sep}digest={digest}", self.addr)
        };
        let code = self.curl_put(&url, "application/octet-stream", data);
        assert_eq!(code, "201", "blob upload to {url}");
        digest
    }

    /// Puts a manifest (or index) under `reference` with its media type.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let code = self.curl_put(&url, media_type, body);
        assert_eq!(code, "201", "manifest upload: {}", self.log());
        format!("sha256:{}", sha256_hex(body))
    }
}

impl Registry {
    /// `PUT` `data` to `url` with curl; returns the HTTP status.
    fn curl_put(&self, url: &str, content_type: &str, data: &[u8]) -> String {
        let tmp = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(tmp.path(), data).unwrap();
        let code = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            &format!("@{}", tmp.path().display()),
            url,
        ]);
        code.trim().to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo: apt-get install skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

/// A tar holding one file, gzip-free (the registry does not care).
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000755");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    let size = format!("{:011o}", data.len());
    header[124..135].copy_from_slice(size.as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| *b as u32).sum();
    let cks = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(cks.as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn hello_wasm() -> Vec<u8> {
    std::fs::read(example("hello").join("hello.wasm")).unwrap()
}

#[test]
fn build_push_skopeo_inspect_rmi_pull_run() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let target = format!("{}/demo/hello:1", reg.addr);
    d.berth(&["tag", "hello:1", &target]).ok();
    let push = d.berth(&["push", &target]);
    assert!(push.ok().stdout.contains("1: digest: sha256:"), "{push:#?}");

    let raw = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{target}"),
    ]);
    let manifest = json(&raw);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--config",
        &format!("docker://{target}"),
    ]));
    assert_eq!(config["os"], "wasi");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["config"]["Entrypoint"][0], "/hello.wasm");

    d.berth(&["rmi", &target]).ok();
    d.berth(&["rmi", "hello:1"]).ok();
    assert!(!d.berth(&["images"]).stdout.contains("hello"));
    let pull = d.berth(&["pull", &target]);
    let out = pull.ok().stdout.clone();
    assert!(out.trim_end().ends_with(&target), "{out}");
    let r = d.berth(&["run", "--rm", "-e", "NAME=Registry", &target]);
    assert_eq!(r.ok().stdout, "Hello, Registry!\n");
    let digests = d.berth(&["inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(
        digests.ok().stdout.contains("/demo/hello@sha256:"),
        "{digests:#?}"
    );
    // A second pull finds everything present.
    let again = d.berth(&["pull", &target]);
    assert!(
        again.ok().stdout.contains("Image is up to date"),
        "{again:#?}"
    );
}

/// Publishes `config` + one layer + manifest through the registry API and returns the
/// manifest bytes.
/// One layer to publish: media type, bytes, annotations (or null).
struct Layer<'a>(&'a str, &'a [u8], serde_json::Value);

fn publish(
    reg: &Registry,
    repo: &str,
    tag: &str,
    (config_type, config): (&str, serde_json::Value),
    Layer(layer_type, layer, layer_annotations): Layer,
) -> (Vec<u8>, String) {
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = reg.put_blob(repo, &config_bytes);
    let layer_digest = reg.put_blob(repo, layer);
    let mut layer_desc = serde_json::json!({
        "mediaType": layer_type, "digest": layer_digest, "size": layer.len(),
    });
    if !layer_annotations.is_null() {
        layer_desc["annotations"] = layer_annotations;
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_bytes.len()},
        "layers": [layer_desc],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = reg.put_manifest(
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    (bytes, digest)
}

#[test]
fn every_wasm_format_in_use_pulls_and_runs() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    let wasm = hello_wasm();

    // 1. The CNCF Wasm OCI artifact, as wkg writes it.
    let digest = format!("sha256:{}", sha256_hex(&wasm));
    publish(
        &reg,
        "fmt/cncf",
        "v1",
        (
            "application/vnd.wasm.config.v0+json",
            serde_json::json!({"created":"2026-01-01T00:00:00Z","author":null,"architecture":"wasm",
            "os":"wasip2","layerDigests":[digest],"component":{"exports":[],"imports":[]}}),
        ),
        Layer(
            "application/wasm",
            &wasm,
            serde_json::json!({"org.opencontainers.image.title": "hello.wasm"}),
        ),
    );
    // 2. runwasi's Wasm layer type with an OCI config naming the entrypoint.
    publish(
        &reg,
        "fmt/runwasi",
        "v1",
        (
            "application/vnd.oci.image.config.v1+json",
            serde_json::json!({"architecture":"wasm","os":"wasip1",
            "config":{"Entrypoint":["hello.wasm"]},"rootfs":{"type":"layers","diff_ids":[]}}),
        ),
        Layer(
            "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
            &wasm,
            serde_json::json!({"org.opencontainers.image.title": "hello.wasm"}),
        ),
    );
    // 3. A Docker-style image (tar layer), referenced from an OCI index that also holds a
    //    Linux entry and a buildx attestation entry.
    let layer = tar_of("app.wasm", &wasm);
    let (manifest, mdigest) = publish(
        &reg,
        "fmt/index",
        "wasm-only",
        (
            "application/vnd.oci.image.config.v1+json",
            serde_json::json!({"architecture":"wasm","os":"wasi",
            "config":{"Entrypoint":["/app.wasm"],"Env":["NAME=index"]},
            "rootfs":{"type":"layers","diff_ids":[format!("sha256:{}", sha256_hex(&layer))]}}),
        ),
        Layer(
            "application/vnd.oci.image.layer.v1.tar",
            &layer,
            serde_json::Value::Null,
        ),
    );
    let linux_cfg = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[]}}))
    .unwrap();
    let linux_cfg_digest = reg.put_blob("fmt/index", &linux_cfg);
    let linux_manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":linux_cfg_digest,"size":linux_cfg.len()},
        "layers": []})).unwrap();
    let linux_digest = reg.put_manifest(
        "fmt/index",
        "linux",
        "application/vnd.oci.image.manifest.v1+json",
        &linux_manifest,
    );
    let index = serde_json::to_vec(&serde_json::json!({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":linux_digest,
         "size":linux_manifest.len(),"platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":linux_digest,
         "size":linux_manifest.len(),"platform":{"architecture":"unknown","os":"unknown"},
         "annotations":{"vnd.docker.reference.type":"attestation-manifest"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":mdigest,
         "size":manifest.len(),"platform":{"architecture":"wasm","os":"wasip1"}}
    ]}))
    .unwrap();
    reg.put_manifest(
        "fmt/index",
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    // 4. An index with only Linux entries: a clear error naming the platforms.
    let linux_only = serde_json::to_vec(&serde_json::json!({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":linux_digest,
         "size":linux_manifest.len(),"platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":linux_digest,
         "size":linux_manifest.len(),"platform":{"architecture":"arm64","os":"linux"}}
    ]}))
    .unwrap();
    reg.put_manifest(
        "fmt/index",
        "linux-only",
        "application/vnd.oci.image.index.v1+json",
        &linux_only,
    );

    for (image, want) in [
        (format!("{}/fmt/cncf:v1", reg.addr), "Hello, world!\n"),
        (format!("{}/fmt/runwasi:v1", reg.addr), "Hello, world!\n"),
        (format!("{}/fmt/index:v1", reg.addr), "Hello, index!\n"),
    ] {
        d.berth(&["pull", &image]).ok();
        let r = d.berth(&["run", "--rm", &image]);
        assert_eq!(r.ok().stdout, want, "{image}: {r:#?}\n{}", d.log());
    }
    let r = d.berth(&["pull", &format!("{}/fmt/index:linux-only", reg.addr)]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.contains("not a Wasm image")
            && r.stderr.contains("linux/amd64")
            && r.stderr.contains("linux/arm64"),
        "{r:#?}"
    );
    let r = d.berth(&["pull", &format!("{}/fmt/index:linux", reg.addr)]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("not a Wasm image"), "{r:#?}");

    // 5. Docker v2 schema 2, converted by skopeo from Berth's own save.
    d.build_example("hello", "hello:1");
    let archive = d.dir.path().join("hello.tar");
    d.berth(&["save", "-o", archive.to_str().unwrap(), "hello:1"])
        .ok();
    let dest = format!("docker://{}/fmt/v2s2:v1", reg.addr);
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &dest,
    ]);
    let raw = json(&skopeo(&["inspect", "--tls-verify=false", "--raw", &dest]));
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let v2 = format!("{}/fmt/v2s2:v1", reg.addr);
    d.berth(&["pull", &v2]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", &v2]).ok().stdout,
        "Hello, world!\n"
    );
}

#[test]
fn push_as_wasm_artifact_is_the_cncf_format() {
    let reg = Registry::start(None);
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = crate::harness::context(
        tmp.path(),
        &[
            ("hello.wasm", &hello_wasm()),
            (
                "Dockerfile",
                b"FROM scratch\nCOPY hello.wasm /hello.wasm\nENTRYPOINT [\"/hello.wasm\"]\n",
            ),
        ],
    );
    let target = format!("{}/art/hello:v1", reg.addr);
    d.berth(&["build", "-t", &target, ctx.to_str().unwrap()])
        .ok();
    d.berth(&["push", "--format", "wasm-artifact", &target])
        .ok();
    let raw = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{target}"),
    ]));
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(raw["layers"].as_array().unwrap().len(), 1);
    assert_eq!(raw["layers"][0]["mediaType"], "application/wasm");
    d.berth(&["rmi", &target]).ok();
    d.berth(&["pull", &target]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", &target]).ok().stdout,
        "Hello, world!\n"
    );
    // The example image has more than its module? No: only /hello.wasm. An image with other
    // files is refused with a clear message.
    d.build_example("quotes", "quotes:1");
    let q = format!("{}/art/quotes:v1", reg.addr);
    d.berth(&["tag", "quotes:1", &q]).ok();
    let r = d.berth(&["push", "--format", "wasm-artifact", &q]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.contains("only content is its Wasm module"),
        "{r:#?}"
    );
}

#[test]
fn login_then_push_with_auth_and_no_password_in_logs() {
    let (user, pass) = ("alice", "s3cret-Pa55word");
    let reg = Registry::start(Some((user, pass)));
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let target = format!("{}/private/hello:1", reg.addr);
    d.berth(&["tag", "hello:1", &target]).ok();

    let r = d.berth(&["push", &target]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(
        r.stderr.to_lowercase().contains("unauthorized") || r.stderr.contains("authentication"),
        "{r:#?}"
    );

    let bad = d.berth_in(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        Some(b"wrong\n"),
    );
    assert_eq!(bad.code, 1, "{bad:#?}");
    let good = d.berth_in(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        Some(format!("{pass}\n").as_bytes()),
    );
    assert!(good.ok().stdout.contains("Login Succeeded"), "{good:#?}");
    let config = d.dir.path().join("docker-config/config.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stored = json(&std::fs::read_to_string(&config).unwrap());
    assert!(stored["auths"][&reg.addr]["auth"].is_string(), "{stored}");

    d.berth(&["push", &target]).ok();
    d.berth(&["rmi", &target]).ok();
    d.berth(&["pull", &target]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", &target]).ok().stdout,
        "Hello, world!\n"
    );
    assert!(
        !d.log().contains(pass),
        "the password appears in the daemon log"
    );
    d.berth(&["logout", &reg.addr]).ok();
    let r = d.berth(&["pull", &target]);
    assert_eq!(r.code, 1, "{r:#?}");
}

#[test]
fn save_skopeo_inspect_rmi_load_run() {
    let d = Daemon::start();
    d.build_example("quotes", "quotes:1");
    let archive: PathBuf = d.dir.path().join("quotes.tar");
    d.berth(&["save", "-o", archive.to_str().unwrap(), "quotes:1"])
        .ok();
    let info = json(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}", archive.display()),
    ]));
    assert_eq!(info["Os"], "wasi");
    assert_eq!(info["Architecture"], "wasm");
    d.berth(&["rmi", "quotes:1"]).ok();
    let r = d.berth(&["load", "-i", archive.to_str().unwrap()]);
    assert!(r.ok().stdout.contains("Loaded image: quotes:1"), "{r:#?}");
    let r = d.berth(&["run", "--rm", "quotes:1", "code", "1"]);
    assert!(
        r.ok().stdout.starts_with("Programs must be written"),
        "{r:#?}"
    );
}
