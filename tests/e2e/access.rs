//! Who may drive the daemon: TCP only with mutual TLS (berth and the real docker CLI with
//! client certificates; strangers refused at the handshake), berthd refusing TCP without
//! `--tlsverify`, browser requests refused with 403, and slowloris clients dropped.
//! Certificates are made here with the `openssl` CLI.

use crate::harness::{BERTH, BERTHD, Daemon, Run};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// berthd's header read and TLS handshake timeout (`listen::CLIENT_TIMEOUT`).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

#[path = "../support/pki.rs"]
mod pki;
use pki::Pki;

/// The PKI plus `client/` and `rogue/` laid out as `DOCKER_CERT_PATH` directories
/// (`ca.pem`, `cert.pem`, `key.pem`).
fn e2e_pki() -> Pki {
    let pki = Pki::new();
    // DOCKER_CERT_PATH layouts: both trust the real CA (the daemon's certificate is
    // genuine); the rogue one presents a certificate the daemon does not trust.
    let p = pki.dir.path();
    for name in ["client", "rogue"] {
        let d = p.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(p.join("ca.pem"), d.join("ca.pem")).unwrap();
        std::fs::copy(p.join(format!("{name}.pem")), d.join("cert.pem")).unwrap();
        std::fs::copy(p.join(format!("{name}-key.pem")), d.join("key.pem")).unwrap();
    }
    pki
}

/// What the access tests need from the PKI.
trait AccessPki {
    fn path(&self, name: &str) -> String;
    fn server_flags(&self) -> Vec<String>;
    fn client_flags(&self, name: &str) -> Vec<String>;
}

impl AccessPki for Pki {
    fn path(&self, name: &str) -> String {
        self.file(name).to_str().unwrap().to_string()
    }

    /// berthd's TLS flags.
    fn server_flags(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.path("ca.pem"),
            "--tlscert".into(),
            self.path("server.pem"),
            "--tlskey".into(),
            self.path("server-key.pem"),
        ]
    }

    /// berth's TLS flags for client certificate `name` (`client`, `rogue`).
    fn client_flags(&self, name: &str) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.path("ca.pem"),
            "--tlscert".into(),
            self.path(&format!("{name}.pem")),
            "--tlskey".into(),
            self.path(&format!("{name}-key.pem")),
        ]
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A berthd on its unix socket and on `tcp://127.0.0.1:PORT` with mutual TLS.
fn tls_daemon(pki: &Pki) -> (Daemon, String) {
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let mut args = vec!["-H".to_string(), tcp.clone()];
    args.extend(pki.server_flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Daemon::start_with_args(&args), tcp)
}

/// Runs `berth` with `args` and `env` only (no `BERTH_HOST` from the harness).
fn berth(args: &[String], env: &[(&str, &str)]) -> Run {
    let out = Command::new(BERTH)
        .args(args)
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn args(parts: &[&[String]], rest: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = parts.iter().flat_map(|p| p.iter().cloned()).collect();
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

#[test]
fn berthd_refuses_tcp_without_mutual_tls() {
    let pki = e2e_pki();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let run = |extra: &[String]| {
        let out = Command::new(BERTHD)
            .args(["--data-root", root.to_str().unwrap(), "-H", &tcp])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "berthd started with {extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&[]);
    assert!(
        e.contains(&format!("{}: TCP listeners need mutual TLS", tcp))
            && e.contains("--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY"),
        "{e}"
    );
    let e = run(&[
        "--tlsverify".into(),
        "--tlscacert".into(),
        pki.path("ca.pem"),
    ]);
    assert!(
        e.contains("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
        "{e}"
    );
    // Files without --tlsverify (dockerd's --tls, no client verification) are refused too.
    let flags = pki.server_flags();
    let e = run(&flags[1..]);
    assert!(e.contains("need --tlsverify"), "{e}");
    let mut missing = pki.server_flags();
    missing[2] = pki.path("nope.pem");
    let e = run(&missing);
    assert!(
        e.contains("could not read CA certificate") && e.contains("nope.pem"),
        "{e}"
    );
    // Nothing listened on the port in any of these runs.
    assert!(std::net::TcpStream::connect(tcp.trim_start_matches("tcp://")).is_err());
}

#[test]
fn berth_over_mutual_tls_works_and_strangers_are_refused_at_the_handshake() {
    let pki = e2e_pki();
    let (d, tcp) = tls_daemon(&pki);
    d.build_example("hello", "hello:1");
    let good = pki.client_flags("client");
    let host = ["-H".to_string(), tcp.clone()];

    let r = berth(
        &args(
            &[&host, &good],
            &["version", "--format", "{{.Server.ApiVersion}}"],
        ),
        &[],
    );
    assert_eq!((r.code, r.stdout.trim()), (0, "1.44"), "{r:#?}");
    berth(&args(&[&host, &good], &["ps", "-a"]), &[]).ok();
    let r = berth(
        &args(
            &[&host, &good],
            &["run", "--rm", "-e", "NAME=TLS", "hello:1", "x"],
        ),
        &[],
    );
    r.ok();
    assert_eq!(r.stdout, "Hello, TLS!\nargs: x\n", "{r:#?}");
    // The same with the docker environment variables instead of flags.
    let cert_path = pki.path("client");
    let r = berth(
        &args(&[&host], &["ps", "-a", "-q"]),
        &[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &cert_path)],
    );
    r.ok();
    assert_eq!(r.stdout, "", "run --rm left a container: {r:#?}");

    // Refused: no client certificate, a certificate from another CA, no TLS at all.
    let no_cert = vec![
        "--tlsverify".to_string(),
        "--tlscacert".into(),
        pki.path("ca.pem"),
    ];
    let rogue_path = pki.path("rogue");
    let refused = [
        (
            "no client certificate",
            berth(&args(&[&host, &no_cert], &["ps"]), &[]),
        ),
        (
            "rogue certificate",
            berth(&args(&[&host, &pki.client_flags("rogue")], &["ps"]), &[]),
        ),
        (
            "rogue DOCKER_CERT_PATH",
            berth(
                &args(&[&host], &["ps"]),
                &[
                    ("DOCKER_TLS_VERIFY", "1"),
                    ("DOCKER_CERT_PATH", &rogue_path),
                ],
            ),
        ),
    ];
    for (what, r) in &refused {
        assert_ne!(r.code, 0, "{what}: {r:#?}");
        assert!(r.stdout.is_empty(), "{what}: {r:#?}");
        assert!(
            !r.stderr.contains("Error response from daemon"),
            "{what}: {r:#?}"
        );
    }
    // Plain TCP is told to use TLS (and served nothing).
    let r = berth(&args(&[&host], &["ps"]), &[]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
    assert!(r.stderr.contains("--tlsverify"), "{r:#?}");
    assert!(
        refused[0].1.stderr.contains("CertificateRequired") || refused[0].1.stderr.contains("TLS"),
        "{:#?}",
        refused[0].1
    );
    let log = d.log();
    assert!(log.contains("TLS handshake refused"), "{log}");
    // The daemon is still there for good clients.
    berth(&args(&[&host, &good], &["ps"]), &[]).ok();
}

#[test]
fn the_docker_cli_works_over_mutual_tls() {
    let pki = e2e_pki();
    let (d, tcp) = tls_daemon(&pki);
    let config = d.dir.path().join("docker-cli-config");
    std::fs::create_dir_all(&config).unwrap();
    let docker = |cert_path: &str, args: &[&str]| {
        let out = Command::new("timeout")
            .arg("120")
            .arg("docker")
            .args(args)
            .env("DOCKER_HOST", &tcp)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_path)
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .output()
            .expect("running docker");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let good = pki.path("client");
    let r = docker(&good, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "1.44"), "{r:#?}");
    let r = docker(&good, &["version"]);
    r.ok();
    assert!(r.stdout.contains("Server:"), "{r:#?}");
    let r = docker(&good, &["ps", "-a"]);
    r.ok();
    assert!(r.stdout.starts_with("CONTAINER ID"), "{r:#?}");
    let r = docker(&pki.path("rogue"), &["ps"]);
    assert_ne!(r.code, 0, "{r:#?}");
}

/// `curl` on the daemon's unix socket with extra arguments; returns (status, body).
fn curl_unix(d: &Daemon, extra: &[&str], path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
        ])
        .arg(d.socket())
        .args(extra)
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

#[test]
fn browser_requests_are_refused_on_every_listener() {
    let pki = e2e_pki();
    let (d, tcp) = tls_daemon(&pki);
    let evil = ["-H", "Origin: http://evil.example"];
    for path in ["/v1.44/containers/json", "/_ping", "/v1.44/version"] {
        let (status, body) = curl_unix(&d, &evil, path);
        assert_eq!(status, "403", "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["message"].as_str().unwrap().contains("browser"), "{body}");
    }
    // A page POSTing a container (a classic CSRF form) creates nothing.
    let (status, _) = curl_unix(
        &d,
        &[
            "-H",
            "Origin: http://evil.example",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"hello:1"}"#,
        ],
        "/v1.44/containers/create?name=csrf",
    );
    assert_eq!(status, "403");
    let (status, _) = curl_unix(
        &d,
        &["-H", "Sec-Fetch-Site: cross-site", "-X", "POST"],
        "/v1.44/volumes/create",
    );
    assert_eq!(status, "403");
    let r = d.berth(&["ps", "-a", "-q"]);
    assert_eq!(r.ok().stdout, "");
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout, "");
    // Without Origin the same socket answers.
    let (status, body) = curl_unix(&d, &[], "/v1.44/containers/json");
    assert_eq!((status.as_str(), body.trim()), ("200", "[]"));

    // The TLS listener refuses them as well (with a valid client certificate).
    let url = format!("{}/v1.44/version", tcp.replace("tcp://", "https://"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(["--cacert", &pki.path("ca.pem")])
        .args(["--cert", &pki.path("client.pem")])
        .args(["--key", &pki.path("client-key.pem")])
        .args(["-H", "Origin: http://evil.example", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("\n403"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn slowloris_clients_are_dropped_while_others_are_served() {
    let pki = e2e_pki();
    let (d, tcp) = tls_daemon(&pki);
    let start = Instant::now();
    let mut slow = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: ")
        .unwrap();
    // Half a TLS ClientHello on the TCP listener.
    let mut half_hello = std::net::TcpStream::connect(tcp.trim_start_matches("tcp://")).unwrap();
    half_hello
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Others are served meanwhile, on both listeners.
    let good = pki.client_flags("client");
    let host = ["-H".to_string(), tcp.clone()];
    for _ in 0..3 {
        d.berth(&["ps"]).ok();
        berth(&args(&[&host, &good], &["ps"]), &[]).ok();
    }
    let limit = CLIENT_TIMEOUT + Duration::from_secs(10);
    slow.set_read_timeout(Some(limit)).unwrap();
    half_hello.set_read_timeout(Some(limit)).unwrap();
    for (what, stream) in [
        ("slow header", &mut slow as &mut dyn Read),
        ("half handshake", &mut half_hello as &mut dyn Read),
    ] {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert!(!text.contains("200 OK"), "{what}: answered {text}");
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("{what}: still open after {limit:?}")
                }
                // Reset by the daemon: closed too.
                Err(_) => break,
            }
        }
        let t = start.elapsed();
        assert!(
            t >= CLIENT_TIMEOUT - Duration::from_secs(1) && t < limit,
            "{what}: closed after {t:?}"
        );
    }
    d.berth(&["ps"]).ok();
}

#[test]
fn long_requests_outlive_the_header_timeout() {
    // The head timeout covers reading request heads only: a wait, a followed log and an
    // attached run that last longer than it are not cut, over the socket or over TLS.
    let pki = e2e_pki();
    let (d, tcp) = tls_daemon(&pki);
    d.build_example("hello", "hello:1");
    let secs = (CLIENT_TIMEOUT.as_secs() + 3).to_string();
    let sleep = format!("sleep={secs}");
    d.berth(&["run", "-d", "--name", "long", "hello:1", &sleep])
        .ok();
    let wait = d.berth_spawn(&["wait", "long"]);
    let logs = d.berth_spawn(&["logs", "-f", "long"]);
    let start = Instant::now();
    let good = pki.client_flags("client");
    let host = ["-H".to_string(), tcp];
    let r = berth(
        &args(&[&host, &good], &["run", "--rm", "hello:1", &sleep]),
        &[],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, format!("Hello, world!\nargs: {sleep}\n"));
    assert!(start.elapsed() > CLIENT_TIMEOUT, "{:?}", start.elapsed());
    let wait = wait.wait_with_output().unwrap();
    assert!(wait.status.success(), "{wait:?}");
    assert_eq!(String::from_utf8_lossy(&wait.stdout).trim(), "0");
    let logs = logs.wait_with_output().unwrap();
    assert!(logs.status.success(), "{logs:?}");
    assert!(
        String::from_utf8_lossy(&logs.stdout).starts_with("Hello, world!"),
        "{logs:?}"
    );
}
