//! wasi:http services: `examples/http-hello` served by `Runtime::run`, over loopback only.
//!
//! The example is built once per test binary (needs the `wasm32-wasip2` target:
//! `rustup target add wasm32-wasip2`).

use berth_runtime::{
    ContainerNet, EgressPolicy, OutboundRule, Outcome, OutputSink, Prepared, Proto, PublishedPort,
    RunSpec, Runtime, RuntimeConfig, StreamKind,
};
use sha2::Digest as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/runtime is two levels below the workspace root")
        .to_path_buf()
}

/// `examples/http-hello` built for wasm32-wasip2, once.
fn http_hello_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let installed = std::process::Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
            .unwrap_or(true); // no rustup: let cargo say what is missing
        assert!(
            installed,
            "the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`"
        );
        let root = workspace_root();
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("examples");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
            .arg("--manifest-path")
            .arg(root.join("examples/http-hello/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("run cargo to build examples/http-hello");
        assert!(status.success(), "building examples/http-hello failed");
        let path = target_dir.join("wasm32-wasip2/release/http-hello.wasm");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

struct Fixture {
    rt: Arc<Runtime>,
    prepared: Arc<Prepared>,
    _cache: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let wasm = http_hello_wasm();
    let cache = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(cache.path());
    config.pooling = false;
    let rt = Runtime::new(config).unwrap();
    let digest = hex::encode(sha2::Sha256::digest(wasm));
    rt.compile(wasm, &digest).unwrap();
    let prepared = rt.prepare(&digest).unwrap();
    assert!(
        prepared.is_http(),
        "http-hello must be prepared as a wasi:http service"
    );
    Fixture {
        rt,
        prepared,
        _cache: cache,
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<u8>>);

impl OutputSink for Collect {
    fn write(&self, _stream: StreamKind, data: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(data);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn net(id: &str, networks: &[&str], egress: EgressPolicy, host_port: Option<u16>) -> ContainerNet {
    ContainerNet {
        id: id.to_string(),
        name: id.to_string(),
        networks: networks.iter().map(|n| n.to_string()).collect(),
        egress,
        published: host_port
            .map(|host_port| PublishedPort {
                container_port: 80,
                proto: Proto::Tcp,
                host_ip: LOCALHOST,
                host_port,
            })
            .into_iter()
            .collect(),
    }
}

fn spec(network: Option<ContainerNet>, output: Arc<Collect>) -> RunSpec {
    RunSpec {
        args: vec!["/http-hello.wasm".to_string()],
        env: vec![("GREETING".to_string(), "ahoy".to_string())],
        cwd: "/".to_string(),
        root: None,
        mounts: Vec::new(),
        network: network.map(Arc::new),
        http_port: 80,
        stdin: None,
        output,
        memory_limit: Some(64 * 1024 * 1024),
        cpus: None,
        requested_at: None,
    }
}

/// Runs the service on a task; aborting the handle drops the run future (stops it).
fn start(f: &Fixture, spec: RunSpec) -> JoinHandle<Outcome> {
    let rt = f.rt.clone();
    let prepared = f.prepared.clone();
    tokio::spawn(async move { rt.run(&prepared, spec).await })
}

/// Waits until `port` accepts connections (the service is up), or the service ended.
async fn wait_listening(port: u16, service: &JoinHandle<Outcome>) {
    for _ in 0..500 {
        assert!(!service.is_finished(), "the service stopped while starting");
        if TcpStream::connect((LOCALHOST, port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// One `GET` on a fresh connection: (status, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect((LOCALHOST, port)).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("response within 30 s")
        .unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_many_requests_with_a_fresh_instance_each() {
    let f = fixture();
    let port = free_port();
    let output = Arc::new(Collect::default());
    let service = start(
        &f,
        spec(
            Some(net(
                "svc1",
                &["bridge"],
                EgressPolicy::default(),
                Some(port),
            )),
            output.clone(),
        ),
    );
    wait_listening(port, &service).await;

    // 200 requests, 20 at a time, each on its own connection.
    let mut clients = Vec::new();
    for c in 0..20 {
        clients.push(tokio::spawn(async move {
            for i in 0..10 {
                let (path, want) = match (c + i) % 3 {
                    0 => ("/", "hello from berth\n"),
                    1 => ("/count", "1\n"),
                    _ => ("/env/GREETING", "ahoy\n"),
                };
                assert_eq!(get(port, path).await, (200, want.to_string()), "GET {path}");
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }

    // Keep-alive: many requests on one connection, each still on a fresh instance.
    let stream = TcpStream::connect((LOCALHOST, port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..50 {
        let req = hyper::Request::get("/count")
            .header("host", "svc1")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        sender
            .ready()
            .await
            .expect("the connection stays open between requests");
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"1\n");
    }

    assert_eq!(get(port, "/env/NOPE").await.0, 404);
    assert_eq!(get(port, "/log").await, (200, "logged\n".to_string()));
    let logs = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("http-hello: stdout line"), "{logs:?}");
    assert!(logs.contains("http-hello: stderr line"), "{logs:?}");

    // Stop = drop: the port is released.
    service.abort();
    assert!(service.await.unwrap_err().is_cancelled());
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect((LOCALHOST, port)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the published port still accepts after the service stopped"
    );
    assert!(
        f.rt.net()
            .route(
                &net("other", &["bridge"], EgressPolicy::default(), None),
                "svc1",
                80
            )
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_request_answers_500_and_the_service_keeps_serving() {
    let f = fixture();
    let port = free_port();
    let service = start(
        &f,
        spec(
            Some(net(
                "svc2",
                &["bridge"],
                EgressPolicy::default(),
                Some(port),
            )),
            Arc::new(Collect::default()),
        ),
    );
    wait_listening(port, &service).await;
    for _ in 0..3 {
        assert_eq!(get(port, "/trap").await.0, 500);
        assert_eq!(
            get(port, "/").await,
            (200, "hello from berth\n".to_string())
        );
    }
    assert!(!service.is_finished());
    service.abort();
}

/// A plain HTTP server on the host's loopback, outside any container: answers `external`
/// and records the Host header it saw.
async fn external_server() -> (u16, Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let seen = hosts.clone();
    let task = tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                if let Some(h) = head.lines().find_map(|l| {
                    l.strip_prefix("host: ")
                        .or_else(|| l.strip_prefix("Host: "))
                }) {
                    seen.lock().unwrap().push(h.to_string());
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nexternal\n",
                    )
                    .await;
            });
        }
    });
    (port, hosts, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_requests_follow_the_egress_policy() {
    let f = fixture();
    let (ext_port, hosts, ext) = external_server().await;

    // Default policy: the host's loopback is denied, by address and by name.
    let denied_port = free_port();
    let denied = start(
        &f,
        spec(
            Some(net(
                "deny",
                &["bridge"],
                EgressPolicy::default(),
                Some(denied_port),
            )),
            Arc::new(Collect::default()),
        ),
    );
    wait_listening(denied_port, &denied).await;
    for url in [
        format!("http://127.0.0.1:{ext_port}/"),
        format!("http://localhost:{ext_port}/"),
        format!("http://[::ffff:127.0.0.1]:{ext_port}/"),
        format!("http://0.0.0.0:{ext_port}/"),
    ] {
        let (status, body) = get(denied_port, &format!("/fetch?url={url}")).await;
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{url}: {body}");
    }
    assert!(
        hosts.lock().unwrap().is_empty(),
        "a denied request reached the server"
    );

    // A rule for exactly that address and port lets it through; the Host header is the
    // guest's.
    let allowed_port = free_port();
    let allow = EgressPolicy {
        allow: vec![OutboundRule {
            addr: LOCALHOST,
            prefix: 32,
            port: Some(ext_port),
        }],
    };
    let allowed = start(
        &f,
        spec(
            Some(net("allow", &["bridge"], allow, Some(allowed_port))),
            Arc::new(Collect::default()),
        ),
    );
    wait_listening(allowed_port, &allowed).await;
    let url = format!("http://127.0.0.1:{ext_port}/");
    assert_eq!(
        get(allowed_port, &format!("/fetch?url={url}")).await,
        (200, "external\n".to_string())
    );
    assert_eq!(
        hosts.lock().unwrap().as_slice(),
        [format!("127.0.0.1:{ext_port}")]
    );
    // Another port on the same address is still denied.
    let other = free_port();
    let (status, body) = get(
        allowed_port,
        &format!("/fetch?url=http://127.0.0.1:{other}/"),
    )
    .await;
    assert_eq!(status, 502);
    assert!(body.contains("DestinationIpProhibited"), "{body}");

    denied.abort();
    allowed.abort();
    ext.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_reach_a_service_by_name_on_a_user_network() {
    let f = fixture();
    // `web` is not published at all: only its internal listener exists.
    let web = start(
        &f,
        spec(
            Some(net("web", &["appnet"], EgressPolicy::default(), None)),
            Arc::new(Collect::default()),
        ),
    );
    let client_port = free_port();
    let client = start(
        &f,
        spec(
            Some(net(
                "client",
                &["appnet"],
                EgressPolicy::default(),
                Some(client_port),
            )),
            Arc::new(Collect::default()),
        ),
    );
    wait_listening(client_port, &client).await;
    let looker = net("looker", &["appnet"], EgressPolicy::default(), None);
    for _ in 0..500 {
        if f.rt.net().route(&looker, "web", 80).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        get(client_port, "/fetch?url=http://web/").await,
        (200, "hello from berth\n".to_string())
    );
    assert_eq!(
        get(client_port, "/fetch?url=http://web:80/env/GREETING").await,
        (200, "ahoy\n".to_string())
    );
    // The name resolves, but nothing listens on that port: refused, not looked up elsewhere.
    let (status, body) = get(client_port, "/fetch?url=http://web:81/").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("ConnectionRefused"), "{body}");
    // A container on another network does not see the name.
    let stranger_port = free_port();
    let stranger = start(
        &f,
        spec(
            Some(net(
                "stranger",
                &["othernet"],
                EgressPolicy::default(),
                Some(stranger_port),
            )),
            Arc::new(Collect::default()),
        ),
    );
    wait_listening(stranger_port, &stranger).await;
    let (status, body) = get(stranger_port, "/fetch?url=http://web/").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DnsError"), "{body}");
    web.abort();
    client.abort();
    stranger.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_network_a_service_fails_clearly() {
    let f = fixture();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        f.rt.run(&f.prepared, spec(None, Arc::new(Collect::default()))),
    )
    .await
    .expect("a service without a network must not start");
    match outcome {
        Outcome::Failed(msg) => {
            assert!(msg.contains("wasi:http"), "{msg}");
            assert!(msg.contains("--network none"), "{msg}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_in_use_fails_the_run() {
    let f = fixture();
    let taken = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        f.rt.run(
            &f.prepared,
            spec(
                Some(net(
                    "busy",
                    &["bridge"],
                    EgressPolicy::default(),
                    Some(port),
                )),
                Arc::new(Collect::default()),
            ),
        ),
    )
    .await
    .expect("binding fails at once");
    match outcome {
        Outcome::Failed(msg) => {
            assert!(msg.contains("address in use"), "{msg}");
            assert!(
                msg.contains(&SocketAddr::new(LOCALHOST, port).to_string()),
                "{msg}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
