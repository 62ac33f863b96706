//! The real `docker` CLI (28.2.2, client only) against berthd: every command listed as
//! supported in `docs/docker-compat.md` is exercised here with `DOCKER_HOST` pointing at the
//! test daemon and `DOCKER_CONFIG` at a temp dir, so the user's docker config is never read
//! or written.

use crate::harness::{Daemon, Run, example};
use crate::registry::Registry;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The docker CLI: `$BERTH_TEST_DOCKER`, else the first `docker` on `PATH`
/// (`/usr/local/bin/docker` on the CI image).
fn docker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_TEST_DOCKER") {
        return PathBuf::from(p);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("docker"))
        .find(|p| p.is_file())
        .expect("the docker CLI is not on PATH: install docker-ce-cli 28.x (client only)")
}

/// Upper bound for any single docker command; `timeout` exits 124 when it is hit.
const COMMAND_TIMEOUT_SECS: &str = "120";

/// A berthd plus a private docker CLI config.
struct Docker {
    d: Daemon,
    bin: PathBuf,
}

impl Docker {
    fn start() -> Self {
        let bin = docker_bin();
        let d = Daemon::start();
        std::fs::create_dir_all(Self::config_dir(&d)).unwrap();
        Self { d, bin }
    }

    fn config_dir(d: &Daemon) -> PathBuf {
        d.dir.path().join("docker-cli-config")
    }

    fn config(&self) -> PathBuf {
        Self::config_dir(&self.d)
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg(COMMAND_TIMEOUT_SECS)
            .arg(&self.bin)
            .args(args)
            .env("DOCKER_HOST", self.d.host())
            .env("DOCKER_CONFIG", self.config())
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_BUILDKIT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `docker ARGS` (bounded by [`COMMAND_TIMEOUT_SECS`]).
    fn docker(&self, args: &[&str]) -> Run {
        self.docker_env(args, &[])
    }

    fn docker_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self
            .command(args, env)
            .stdin(Stdio::null())
            .output()
            .expect("running docker");
        let r = run_of(out);
        assert_ne!(r.code, 124, "docker {args:?} timed out: {r:#?}");
        r
    }

    /// Runs `docker ARGS` with `input` on stdin.
    fn docker_in(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args, &[])
            .stdin(Stdio::piped())
            .spawn()
            .expect("running docker");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let r = run_of(child.wait_with_output().unwrap());
        assert_ne!(r.code, 124, "docker {args:?} timed out: {r:#?}");
        r
    }

    /// Polls `docker ARGS` until its trimmed stdout is `want` (30 s deadline).
    fn wait_for(&self, args: &[&str], want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.docker(args);
            if r.code == 0 && r.stdout.trim() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker {args:?} never printed {want:?}: {r:#?}\n{}",
                self.d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn run_of(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn assert_code(r: &Run, code: i32) {
    assert_eq!(r.code, code, "{r:#?}");
}

#[track_caller]
fn assert_stderr(r: &Run, code: i32, needle: &str) {
    assert_code(r, code);
    assert!(r.stderr.contains(needle), "stderr lacks {needle:?}: {r:#?}");
}

#[test]
fn docker_version_and_info() {
    let k = Docker::start();
    let r = k.docker(&["version"]);
    r.ok();
    let server = r.stdout.split("Server:").nth(1).unwrap_or_default();
    assert!(server.contains("API version:      1.44"), "{r:#?}");
    assert!(
        r.stdout
            .contains("API version:       1.44 (downgraded from 1.50)"),
        "{r:#?}"
    );
    let r = k.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(r.ok().stdout.trim(), "1.44");

    let r = k.docker(&["info"]);
    r.ok();
    assert!(r.stdout.contains(" Swarm: inactive"), "{r:#?}");
    assert!(r.stdout.contains(" Default Runtime: wasmtime"), "{r:#?}");
    let r = k.docker(&["info", "--format", "{{.OSType}} {{.Containers}}"]);
    assert_eq!(r.ok().stdout.trim(), "wasi 0");
}

#[test]
fn docker_images_image_inspect_tag_rmi() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let r = k.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(r.ok().stdout, "hello:1\n");
    let r = k.docker(&["images"]);
    assert!(r.ok().stdout.starts_with("REPOSITORY "), "{r:#?}");

    let r = k.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}} {{.RepoTags}}",
        "hello:1",
    ]);
    assert_eq!(r.ok().stdout.trim(), "wasi/wasm [hello:1]");

    k.docker(&["tag", "hello:1", "other:2"]).ok();
    let r = k.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut tags: Vec<&str> = r.ok().stdout.lines().collect();
    tags.sort();
    assert_eq!(tags, ["hello:1", "other:2"]);

    let r = k.docker(&["rmi", "other:2"]);
    assert_eq!(r.ok().stdout, "Untagged: other:2\n");
    let r = k.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(r.ok().stdout, "hello:1\n");
}

#[test]
fn docker_run_attached_output_env_args_and_exit_code() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let r = k.docker(&["run", "--rm", "-e", "NAME=X", "hello:1", "a", "b"]);
    assert_eq!(r.ok().stdout, "Hello, X!\nargs: a b\n");

    // A WASI 0.2 component (Rust 1.95) reports only success or failure: exit(3) arrives as 1.
    let r = k.docker(&["run", "--rm", "hello:1", "exit=3"]);
    assert_code(&r, 1);
    assert_eq!(r.stdout, "Hello, world!\nargs: exit=3\n");
    assert_eq!(r.stderr, "exiting with 3\n");

    // --rm removed both containers.
    let r = k.docker(&["ps", "-a", "-q"]);
    assert_eq!(r.ok().stdout, "");
}

#[test]
fn docker_run_detached_ps_logs_inspect_stop_rm() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let r = k.docker(&["run", "-d", "--name", "web", "hello:1", "sleep=300"]);
    let id = r.ok().stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:#?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{r:#?}");

    k.wait_for(
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Image}} {{.Name}}",
            "web",
        ],
        "running hello:1 /web",
    );
    let ps = k.docker(&["ps"]);
    let line = ps
        .ok()
        .stdout
        .lines()
        .find(|l| l.starts_with(&id[..12]))
        .unwrap_or_default()
        .to_string();
    assert!(line.ends_with(" web"), "{ps:#?}");
    assert!(!line.contains("/web"), "{ps:#?}");
    assert!(line.contains(" Up "), "{ps:#?}");
    assert!(line.contains("hello:1"), "{ps:#?}");
    let r = k.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(r.ok().stdout.starts_with("web Up "), "{r:#?}");

    k.wait_for(&["logs", "web"], "Hello, world!\nargs: sleep=300");

    let r = k.docker(&["stop", "web"]);
    assert_eq!(r.ok().stdout, "web\n");
    k.wait_for(
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web",
        ],
        "exited 143",
    );
    let r = k.docker(&["ps", "-q"]);
    assert_eq!(r.ok().stdout, "");
    let r = k.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(r.ok().stdout.starts_with("web Exited (143) "), "{r:#?}");

    let r = k.docker(&["rm", "web"]);
    assert_eq!(r.ok().stdout, "web\n");
    let r = k.docker(&["ps", "-a", "-q"]);
    assert_eq!(r.ok().stdout, "");
}

#[test]
fn docker_logs_follow_returns_when_the_container_stops() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    k.docker(&["run", "-d", "--name", "short", "hello:1", "sleep=1"])
        .ok();
    let started = Instant::now();
    let r = k.docker(&["logs", "-f", "short"]);
    assert_eq!(r.ok().stdout, "Hello, world!\nargs: sleep=1\n");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "logs -f took {:?}",
        started.elapsed()
    );
    let r = k.docker(&["inspect", "-f", "{{.State.Status}}", "short"]);
    assert_eq!(r.ok().stdout.trim(), "exited");
}

#[test]
fn docker_wait_and_kill() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    k.docker(&["run", "-d", "--name", "w0", "hello:1", "sleep=1"])
        .ok();
    assert_eq!(k.docker(&["wait", "w0"]).ok().stdout, "0\n");
    k.docker(&["run", "-d", "--name", "w1", "hello:1", "exit=3"])
        .ok();
    assert_eq!(k.docker(&["wait", "w1"]).ok().stdout, "1\n");

    k.docker(&["run", "-d", "--name", "victim", "hello:1", "sleep=300"])
        .ok();
    k.wait_for(&["inspect", "-f", "{{.State.Status}}", "victim"], "running");
    let r = k.docker(&["kill", "victim"]);
    assert_eq!(r.ok().stdout, "victim\n");
    assert_eq!(k.docker(&["wait", "victim"]).ok().stdout, "137\n");
    let r = k.docker(&["inspect", "-f", "{{.State.ExitCode}}", "victim"]);
    assert_eq!(r.ok().stdout.trim(), "137");
}

#[test]
fn docker_run_name_conflict_exits_125() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let r = k.docker(&["run", "--name", "dup", "hello:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
    let r = k.docker(&["run", "--name", "dup", "hello:1"]);
    assert_stderr(
        &r,
        125,
        "Conflict. The container name \"/dup\" is already in use by container",
    );
    assert!(r.stderr.contains("to be able to reuse that name"), "{r:#?}");
}

#[test]
fn docker_run_unknown_image_tries_to_pull_and_exits_125() {
    let k = Docker::start();
    let r = k.docker(&["run", "--rm", "nosuch"]);
    assert_stderr(&r, 125, "Unable to find image 'nosuch:latest' locally");
    // The pull fails (no registry reachable, or docker.io refuses the name): the daemon's
    // reason follows, naming the registry or the image.
    assert!(
        r.stderr.contains("docker.io") || r.stderr.contains("nosuch"),
        "{r:#?}"
    );
    assert!(r.stderr.lines().count() >= 2, "{r:#?}");
}

#[test]
fn docker_volumes_and_networks_lifecycle() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    // Volumes: create, ls, inspect, use with -v, rm refused while used, rm, missing.
    assert_eq!(
        k.docker(&["volume", "create", "vol1"]).ok().stdout.trim(),
        "vol1"
    );
    let ls = k.docker(&["volume", "ls"]).ok().stdout.clone();
    assert!(ls.contains("local") && ls.contains("vol1"), "{ls}");
    let r = k.docker(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "vol1"]);
    assert_eq!(r.ok().stdout.trim(), "vol1 local");
    let r = k.docker(&["inspect", "-f", "{{.Mountpoint}}", "vol1"]);
    assert!(r.ok().stdout.trim().ends_with("vol1/_data"), "{r:#?}");
    k.docker(&["create", "--name", "user", "-v", "vol1:/data", "hello:1"])
        .ok();
    let r = k.docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}",
        "user",
    ]);
    assert_eq!(r.ok().stdout.trim(), "volume vol1 /data");
    let r = k.docker(&["volume", "rm", "vol1"]);
    assert_stderr(&r, 1, "volume is in use");
    k.docker(&["rm", "user"]).ok();
    assert_eq!(
        k.docker(&["volume", "rm", "vol1"]).ok().stdout.trim(),
        "vol1"
    );
    assert_stderr(
        &k.docker(&["volume", "inspect", "vol1"]),
        1,
        "no such volume",
    );
    assert_stderr(&k.docker(&["volume", "rm", "vol1"]), 1, "no such volume");

    // Networks: the predefined ones, create, duplicate, inspect, rm, missing.
    let ls = k.docker(&["network", "ls"]).ok().stdout.clone();
    assert!(ls.contains("bridge") && ls.contains("none"), "{ls}");
    let id = k
        .docker(&["network", "create", "backend"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_stderr(
        &k.docker(&["network", "create", "backend"]),
        1,
        "network with name backend already exists",
    );
    let r = k.docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Scope}}",
        "backend",
    ]);
    assert_eq!(r.ok().stdout.trim(), "backend bridge local");
    k.docker(&["run", "--rm", "--network", "backend", "hello:1"])
        .ok();
    assert_stderr(
        &k.docker(&["network", "rm", "bridge"]),
        1,
        "bridge is a pre-defined network and cannot be removed",
    );
    assert_eq!(
        k.docker(&["network", "rm", "backend"]).ok().stdout.trim(),
        "backend"
    );
    assert_stderr(&k.docker(&["network", "inspect", "backend"]), 1, "backend");
    assert_stderr(&k.docker(&["network", "rm", "backend"]), 1, "not found");
}

#[test]
fn docker_run_with_volumes_published_ports_and_networks() {
    let k = Docker::start();
    k.d.build_test_guest("probe", "probe:1");
    k.d.build_example("http-hello", "web:1").ok();
    // -v: a named volume written by one container and read by the next, read-only.
    let r = k.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "probe:1",
        "write",
        "/data/x",
        "kept",
    ]);
    assert_eq!(r.ok().stdout, "ok\n");
    let r = k.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "probe:1",
        "cat",
        "/data/x",
        "--",
        "write",
        "/data/y",
        "no",
    ]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "ok kept\nerr: PermissionDenied\n");
    // A bind mount of a host directory.
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/host", host.path().display());
    k.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "probe:1",
        "write",
        "/host/f",
        "from-guest",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(host.path().join("f")).unwrap(),
        "from-guest"
    );
    // -p: a wasi:http service published on an ephemeral port, shown as Docker shows it.
    k.docker(&["run", "-d", "--name", "web", "-p", "127.0.0.1::80", "web:1"])
        .ok();
    let r = k.docker(&["port", "web", "80"]);
    let addr = r.ok().stdout.trim().to_string();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let r = k.docker(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(
        r.ok().stdout.trim(),
        format!("web 127.0.0.1:{port}->80/tcp")
    );
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            s.read_to_string(&mut body).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(body.ends_with("hello from berth\n"), "{body}");
    let r = k.docker(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]);
    assert_eq!(
        r.ok().stdout.trim(),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}")
    );
    k.docker(&["rm", "-f", "web"]).ok();
    // --network: reach a container by name on a user network.
    k.docker(&["network", "create", "apps"]).ok();
    k.docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "apps",
        "-e",
        "HOSTNAME=srv",
        "probe:1",
        "listen",
        "80",
    ])
    .ok();
    let mut last = None;
    for _ in 0..100 {
        let r = k.docker(&[
            "run",
            "--rm",
            "--network",
            "apps",
            "probe:1",
            "connect",
            "srv:80",
        ]);
        if r.code == 0 {
            last = Some(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = last.expect("srv:80 never answered");
    assert!(r.stdout.contains("hello from srv"), "{r:#?}");
    let r = k.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}} {{.Config.Env}}",
        "srv",
    ]);
    assert!(r.ok().stdout.starts_with("apps ["), "{r:#?}");
    assert!(r.stdout.contains("HOSTNAME=srv"), "{r:#?}");
}

#[test]
fn docker_legacy_build_then_run() {
    let k = Docker::start();
    let ctx = example("hello");
    let r = k.docker_env(
        &["build", "-t", "built:1", ctx.to_str().unwrap()],
        &[("DOCKER_BUILDKIT", "0")],
    );
    r.ok();
    assert!(r.stdout.contains("Step 1/5 : FROM scratch"), "{r:#?}");
    assert!(r.stdout.contains("Successfully tagged built:1"), "{r:#?}");
    let r = k.docker(&["run", "--rm", "built:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
}

#[test]
fn docker_push_pull_through_a_registry() {
    let reg = Registry::start(None);
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let target = format!("{}/cli/hello:1", reg.addr);
    k.docker(&["tag", "hello:1", &target]).ok();
    let r = k.docker(&["push", &target]);
    r.ok();
    assert!(
        r.stdout.contains(&format!(
            "The push refers to repository [{}/cli/hello]",
            reg.addr
        )),
        "{r:#?}"
    );
    assert!(r.stdout.contains("1: digest: sha256:"), "{r:#?}");

    k.docker(&["rmi", &target]).ok();
    k.docker(&["rmi", "hello:1"]).ok();
    let r = k.docker(&["images", "-q"]);
    assert_eq!(r.ok().stdout, "");

    let r = k.docker(&["pull", &target]);
    r.ok();
    assert!(
        r.stdout
            .contains(&format!("Status: Downloaded newer image for {target}")),
        "{r:#?}"
    );
    assert!(r.stdout.ends_with(&format!("{target}\n")), "{r:#?}");
    let r = k.docker(&["run", "--rm", &target]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");

    // A missing tag is an in-band pull error: exit 1 with the registry's reason.
    let r = k.docker(&["pull", &format!("{}/cli/nosuch:1", reg.addr)]);
    assert_stderr(&r, 1, "not found");
}

#[test]
fn docker_pull_of_a_linux_image_says_it_is_not_wasm() {
    let reg = Registry::start(None);
    let k = Docker::start();
    let cfg = serde_json::to_vec(&serde_json::json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[]}}))
    .unwrap();
    let cfg_digest = reg.put_blob("linux/app", &cfg);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType":"application/vnd.oci.image.config.v1+json","digest":cfg_digest,"size":cfg.len()},
        "layers": []}))
    .unwrap();
    reg.put_manifest(
        "linux/app",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    let r = k.docker(&["pull", &format!("{}/linux/app:1", reg.addr)]);
    assert_stderr(&r, 1, "not a Wasm image");
    assert!(r.stderr.contains("linux/amd64"), "{r:#?}");
    assert_eq!(k.docker(&["images", "-q"]).ok().stdout, "");
}

#[test]
fn docker_login_then_push_to_a_private_registry() {
    let (user, pass) = ("bob", "An0ther-s3cret");
    let reg = Registry::start(Some((user, pass)));
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let target = format!("{}/private/hello:1", reg.addr);
    k.docker(&["tag", "hello:1", &target]).ok();

    let r = k.docker(&["push", &target]);
    assert_code(&r, 1);
    let lower = r.stderr.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("authentication"),
        "{r:#?}"
    );

    let bad = k.docker_in(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        b"wrong\n",
    );
    assert_code(&bad, 1);
    let good = k.docker_in(
        &["login", "-u", user, "--password-stdin", &reg.addr],
        format!("{pass}\n").as_bytes(),
    );
    assert!(good.ok().stdout.contains("Login Succeeded"), "{good:#?}");
    // The CLI, not the daemon, stores the credentials, in our private DOCKER_CONFIG.
    let config = std::fs::read_to_string(k.config().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert!(config["auths"][&reg.addr].is_object(), "{config}");

    let r = k.docker(&["push", &target]);
    assert!(r.ok().stdout.contains("1: digest: sha256:"), "{r:#?}");
    k.docker(&["rmi", &target]).ok();
    k.docker(&["pull", &target]).ok();
    assert!(
        !k.d.log().contains(pass),
        "the password appears in the daemon log"
    );
}

#[test]
fn docker_inspect_unknown_object() {
    let k = Docker::start();
    let r = k.docker(&["inspect", "nosuch"]);
    assert_stderr(&r, 1, "Error: No such object: nosuch");
    assert_eq!(r.stdout.trim(), "[]");
}

#[test]
fn docker_unsupported_commands_fail_with_clear_errors() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    k.docker(&["run", "-d", "--name", "box", "hello:1", "sleep=300"])
        .ok();
    let export = k.d.dir.path().join("export.tar");
    let export = export.to_str().unwrap();
    let cp_dest = k.d.dir.path().join("copied");
    let cp_dest = cp_dest.to_str().unwrap();
    let cases: [(&[&str], &str); 14] = [
        (&["exec", "box", "ls"], "exec is not supported by Berth"),
        (
            &["events", "--since", "0", "--until", "1"],
            "the event stream (docker events) is not supported by Berth",
        ),
        (
            &["system", "df"],
            "disk usage (docker system df) is not supported by Berth",
        ),
        (
            &["export", "-o", export, "box"],
            "container export is not supported by Berth",
        ),
        (
            &["cp", "box:/hello.wasm", cp_dest],
            "copying files to and from containers (docker cp) is not supported by Berth",
        ),
        (
            &["commit", "box", "snap:1"],
            "commit is not supported by Berth",
        ),
        (
            &["container", "prune", "-f"],
            "container prune is not supported by Berth",
        ),
        (
            &["image", "prune", "-f"],
            "image prune is not supported by Berth",
        ),
        (
            &["plugin", "ls"],
            "the plugin API (GET /plugins) is not supported by Berth",
        ),
        (
            &["swarm", "init"],
            "Berth does not support swarm: /swarm/init",
        ),
        (
            &["service", "ls"],
            "Berth does not support swarm: /services",
        ),
        (&["node", "ls"], "Berth does not support swarm: /nodes"),
        (&["secret", "ls"], "Berth does not support swarm: /secrets"),
        (&["config", "ls"], "Berth does not support swarm: /configs"),
    ];
    for (args, message) in cases {
        let r = k.docker(args);
        assert_stderr(&r, 1, &format!("Error response from daemon: {message}"));
    }
    // None of that disturbed the container.
    let r = k.docker(&["inspect", "-f", "{{.State.Status}}", "box"]);
    assert_eq!(r.ok().stdout.trim(), "running");
    k.docker(&["rm", "-f", "box"]).ok();
}

#[test]
fn docker_create_start_attach_stdin_save_load() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    let r = k.docker(&["create", "--name", "later", "-e", "NAME=Lin", "hello:1"]);
    assert_eq!(r.ok().stdout.trim().len(), 64, "{r:#?}");
    let r = k.docker(&["start", "-a", "later"]);
    assert_eq!(r.ok().stdout, "Hello, Lin!\n");

    let r = k.docker_in(&["run", "--rm", "-i", "hello:1", "cat"], b"piped\n");
    assert_eq!(r.ok().stdout, "Hello, world!\nargs: cat\npiped\n");

    let archive = k.d.dir.path().join("hello.tar");
    let archive = archive.to_str().unwrap();
    k.docker(&["save", "-o", archive, "hello:1"]).ok();
    k.docker(&["rm", "later"]).ok();
    k.docker(&["rmi", "hello:1"]).ok();
    let r = k.docker(&["load", "-i", archive]);
    assert!(r.ok().stdout.contains("Loaded image: hello:1"), "{r:#?}");
    let r = k.docker(&["run", "--rm", "hello:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
}

#[test]
fn docker_unknown_endpoints_are_404_not_broken_pipes() {
    let k = Docker::start();
    k.d.build_example("hello", "hello:1");
    k.docker(&["create", "--name", "idle", "hello:1"]).ok();
    // `docker update` POSTs a JSON body to a route berthd does not have.
    let r = k.docker(&["update", "--memory", "1g", "idle"]);
    assert_stderr(
        &r,
        1,
        "Error response from daemon: page not found: POST /containers/idle/update",
    );
}
