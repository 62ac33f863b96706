//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8), started on a
//! free loopback port with its storage in a temporary directory, killed on drop.
//!
//! Also: helpers that publish fixtures through the plain registry HTTP API (independently of
//! the code under test), and that build small images in a `ContentStore`.

#![allow(dead_code)]

pub mod liar;

use berth_image::digest::Digest;
use berth_image::store::ContentStore;
use berth_registry::Progress;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A running registry.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry without authentication.
    pub fn start() -> TestRegistry {
        Self::start_with(None)
    }

    /// A registry with htpasswd authentication for `user`/`pass`.
    pub fn start_with_auth(user: &str, pass: &str) -> TestRegistry {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, pass])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run htpasswd ({e}): install it with `apt-get install -y apache2-utils`"
                )
            });
        assert!(
            out.status.success(),
            "htpasswd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self::start_with(Some(String::from_utf8(out.stdout).unwrap()))
    }

    fn start_with(htpasswd: Option<String>) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: these tests run against a real registry; install it with `apt-get install -y docker-registry`"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some(line) = htpasswd {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, line).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                path.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}"));
        let mut reg = TestRegistry { child, port, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if let Ok(code) = http_status(self.port, "/v2/")
                && (code == 200 || code == 401)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer GET /v2/ within 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps a blob's bytes (to corrupt them in tests).
    pub fn blob_data_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The status code of a plain `GET path` on 127.0.0.1:port.
fn http_status(port: u16, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))
}

thread_local! {
    /// One HTTP client per test thread (each test has its own thread and runtime).
    static HTTP: reqwest::Client = reqwest::Client::new();
}

/// The test thread's HTTP client.
pub fn http() -> reqwest::Client {
    HTTP.with(|c| c.clone())
}

/// Uploads a blob with a monolithic POST + PUT.
pub async fn put_blob(base: &str, repo: &str, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    let http = http();
    let res = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        202,
        "POST upload: {:?}",
        res.text().await
    );
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let res = http
        .put(format!("{location}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "PUT blob: {:?}",
        res.text().await
    );
    digest
}

/// Uploads a manifest or index under `tag` (or a digest).
pub async fn put_manifest(
    base: &str,
    repo: &str,
    tag: &str,
    media_type: &str,
    body: &[u8],
) -> Digest {
    let res = http()
        .put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(status, 201, "PUT manifest: {:?}", res.text().await);
    Digest::sha256_of(body)
}

/// Fetches a manifest's raw bytes.
pub async fn get_manifest(base: &str, repo: &str, tag: &str) -> (Vec<u8>, String) {
    let res = http()
        .get(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header(
            "accept",
            format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    (res.bytes().await.unwrap().to_vec(), ct)
}

/// Whether the registry has a blob.
pub async fn blob_exists(base: &str, repo: &str, digest: &Digest) -> bool {
    http()
        .head(format!("{base}/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

/// A gzipped tarball with one file.
pub fn tar_gz(name: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A minimal Wasm module (`(module)`), or component when `component`.
pub fn wasm_bytes(component: bool) -> Vec<u8> {
    if component {
        b"\0asm\x0d\0\x01\0".to_vec()
    } else {
        b"\0asm\x01\0\0\0".to_vec()
    }
}

/// An image config JSON.
pub fn config_json(os: &str, arch: &str, diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {"Entrypoint": ["/app.wasm"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// A manifest JSON for a config and layers (`mediaType` omitted when `media_type` is None).
pub fn manifest_json(
    media_type: Option<&str>,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": config.0, "digest": Digest::sha256_of(config.1).to_string(), "size": config.1.len()},
        "layers": layers.iter().map(|(mt, data)| serde_json::json!({
            "mediaType": mt, "digest": Digest::sha256_of(data).to_string(), "size": data.len()
        })).collect::<Vec<_>>(),
    });
    if let Some(mt) = media_type {
        m["mediaType"] = mt.into();
    }
    serde_json::to_vec(&m).unwrap()
}

/// A test image: its blobs in a store, and their digests.
pub struct LocalImage {
    pub manifest: Digest,
    pub config: Digest,
    pub layer: Digest,
    pub manifest_bytes: Vec<u8>,
    pub config_bytes: Vec<u8>,
    pub layer_bytes: Vec<u8>,
}

/// Builds a wasi/wasm image with one tar+gzip layer holding `/app.wasm`, written with
/// `ContentStore::put`.
pub fn build_local_image(store: &ContentStore, payload: &[u8]) -> LocalImage {
    let mut wasm = wasm_bytes(false);
    wasm.extend_from_slice(payload);
    let layer_bytes = tar_gz("app.wasm", &wasm);
    let diff_id = Digest::sha256_of(&{
        let mut d = flate2::read::GzDecoder::new(&layer_bytes[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        out
    });
    let config_bytes = config_json("wasip1", "wasm", &[diff_id]);
    let manifest_bytes = manifest_json(
        Some(OCI_MANIFEST),
        (OCI_CONFIG, &config_bytes),
        &[(OCI_LAYER_GZIP, &layer_bytes)],
    );
    let layer = store.put(&layer_bytes).unwrap();
    let config = store.put(&config_bytes).unwrap();
    let manifest = store.put(&manifest_bytes).unwrap();
    LocalImage {
        manifest,
        config,
        layer,
        manifest_bytes,
        config_bytes,
        layer_bytes,
    }
}

/// Publishes an image (config + layers + manifest) through the HTTP API; returns the manifest
/// digest and bytes.
pub async fn publish_image(
    base: &str,
    repo: &str,
    tag: &str,
    manifest_type: Option<&str>,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> (Digest, Vec<u8>) {
    put_blob(base, repo, config.1).await;
    for (_, l) in layers {
        put_blob(base, repo, l).await;
    }
    let bytes = manifest_json(manifest_type, config, layers);
    let digest = put_manifest(
        base,
        repo,
        tag,
        manifest_type.unwrap_or(OCI_MANIFEST),
        &bytes,
    )
    .await;
    (digest, bytes)
}

/// Collects progress events.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Progress>>);

impl Events {
    pub fn sink(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        move |p| self.0.lock().unwrap().push(p)
    }

    pub fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, f: impl Fn(&Progress) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|p| f(p)).count()
    }
}

/// A fresh store in a temp dir.
pub fn new_store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}
