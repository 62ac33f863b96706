//! Each container's own network view, end to end: the probe guest (`tests/guests/probe`, a
//! wasm32-wasip2 component) run through `Runtime::run`, on loopback only.

use berth_runtime::{
    ContainerNet, EgressPolicy, OutboundTarget, Outcome, OutputSink, Prepared, Proto,
    PublishedPort, RunSpec, Runtime, RuntimeConfig, StreamKind,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    runtime: Arc<Runtime>,
    probe: Arc<Prepared>,
}

/// Builds the probe once, compiles it once, shares one runtime between the tests.
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        // Built by scripts/build-examples.sh, which scripts/test.sh runs before the tests.
        let wasm_path = root.join("tests/guests/probe/probe.wasm");
        let wasm = std::fs::read(&wasm_path).unwrap_or_else(|e| {
            panic!(
                "read {}: {e}; build the test guests with scripts/build-examples.sh",
                wasm_path.display()
            )
        });
        let digest = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&wasm))
        };
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-runtime-net-cache");
        let mut config = RuntimeConfig::new(cache);
        config.pooling = false;
        let runtime = Runtime::new(config).expect("runtime");
        runtime.compile(&wasm, &digest).expect("compile the probe");
        let probe = runtime.prepare(&digest).expect("prepare the probe");
        Shared { runtime, probe }
    })
}

/// Guest output, split by stream.
#[derive(Default)]
struct Capture {
    stdout: Mutex<Vec<u8>>,
    stderr: Mutex<Vec<u8>>,
}

impl OutputSink for Capture {
    fn write(&self, stream: StreamKind, data: &[u8]) {
        match stream {
            StreamKind::Stdout => &self.stdout,
            StreamKind::Stderr => &self.stderr,
        }
        .lock()
        .unwrap()
        .extend_from_slice(data);
    }
}

impl Capture {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    async fn line(&self, prefix: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.stdout().lines().find(|l| l.starts_with(prefix)) {
                return l.to_string();
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "no stdout line starting with {prefix:?}; stdout {:?}, stderr {:?}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Container {
    out: Arc<Capture>,
    task: JoinHandle<Outcome>,
}

impl Container {
    /// Waits for the guest to end.
    async fn finish(self) -> (Outcome, String, String) {
        let outcome = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("guest did not finish in time")
            .expect("guest task");
        (outcome, self.out.stdout(), self.out.stderr())
    }
}

fn net(id: &str, name: &str, networks: &[&str]) -> ContainerNet {
    ContainerNet {
        id: format!("{id}-{:016x}", rand_u64()),
        name: name.into(),
        networks: networks.iter().map(|s| s.to_string()).collect(),
        egress: EgressPolicy::default(),
        published: vec![],
    }
}

/// Unique ids and network names, so tests running in parallel never share a network.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

fn unique(network: &str) -> String {
    format!("{network}-{:08x}", rand_u64() as u32)
}

fn run(net: Option<ContainerNet>, hostname: &str, args: &[&str]) -> Container {
    let s = shared();
    let out = Arc::new(Capture::default());
    let spec = RunSpec {
        args: std::iter::once("probe")
            .chain(args.iter().copied())
            .map(String::from)
            .collect(),
        env: vec![("HOSTNAME".into(), hostname.into())],
        cwd: "/".into(),
        root: None,
        mounts: vec![],
        network: net.map(Arc::new),
        http_port: 80,
        stdin: None,
        output: out.clone(),
        memory_limit: None,
        cpus: None,
        requested_at: None,
    };
    let runtime = s.runtime.clone();
    let probe = s.probe.clone();
    let task = tokio::spawn(async move { runtime.run(&probe, spec).await });
    Container { out, task }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A host service on loopback answering one line per connection.
fn host_service(greeting: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(greeting.as_bytes());
        }
    });
    addr
}

fn read_line_from(addr: SocketAddr) -> std::io::Result<String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_both_listen_on_port_80() {
    let a = run(Some(net("a", "a", &["bridge"])), "a", &["listen", "80"]);
    let b = run(Some(net("b", "b", &["bridge"])), "b", &["listen", "80"]);
    assert_eq!(a.out.line("listening").await, "listening 0.0.0.0:80");
    assert_eq!(b.out.line("listening").await, "listening 0.0.0.0:80");
    a.task.abort();
    b.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_port_is_reachable_from_the_host() {
    let host_port = free_port();
    let mut n = net("web", "web", &["bridge"]);
    n.published.push(PublishedPort {
        container_port: 80,
        proto: Proto::Tcp,
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        host_port,
    });
    let web = run(Some(n), "web", &["listen", "80", "1"]);
    assert_eq!(web.out.line("listening").await, "listening 0.0.0.0:80");
    let line = tokio::task::spawn_blocking(move || {
        read_line_from(SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)))
    })
    .await
    .unwrap()
    .expect("connect to the published port");
    assert_eq!(line, "hello from web\n");
    let (outcome, stdout, _) = web.finish().await;
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(stdout.contains("\naccepted 127.0.0.1:"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublished_listener_is_not_at_its_virtual_port_on_the_host() {
    let s = shared();
    let port = free_port();
    let n = net("hidden", "hidden", &["bridge"]);
    let view = n.clone();
    let c = run(Some(n), "hidden", &["listen", &port.to_string()]);
    assert_eq!(
        c.out.line("listening").await,
        format!("listening 0.0.0.0:{port}")
    );
    // The real listener is an ephemeral loopback port, not the one the guest asked for.
    let real = s
        .runtime
        .net()
        .route(&view, "localhost", port)
        .expect("the container's own listener is registered");
    assert!(real.ip().is_loopback());
    assert_ne!(real.port(), port);
    let at_virtual = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(2),
    );
    assert!(at_virtual.is_err(), "the host reached the unpublished port");
    c.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_loopback_is_denied_unless_egress_allows_it() {
    let service = host_service("host says hi\n");
    let target = service.to_string();

    let denied = run(
        Some(net("c1", "c1", &["bridge"])),
        "c1",
        &["connect", &target],
    );
    let (outcome, stdout, stderr) = denied.finish().await;
    assert_eq!(outcome, Outcome::Exited(1), "stdout {stdout:?}");
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    assert!(!stdout.contains("host says hi"));

    for private in ["10.1.2.3:80", "169.254.169.254:80", "[::1]:22"] {
        let c = run(
            Some(net("c2", "c2", &["bridge"])),
            "c2",
            &["connect", private],
        );
        let (outcome, _, stderr) = c.finish().await;
        assert_eq!(outcome, Outcome::Exited(1), "{private}");
        assert!(stderr.contains("PermissionDenied"), "{private}: {stderr}");
    }

    let udp = run(
        Some(net("c3", "c3", &["bridge"])),
        "c3",
        &["udp-send", &target, "x"],
    );
    let (outcome, _, stderr) = udp.finish().await;
    assert_eq!(outcome, Outcome::Exited(1));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    let mut n = net("c4", "c4", &["bridge"]);
    let OutboundTarget::Rule(rule) = OutboundTarget::parse(&target).unwrap() else {
        unreachable!()
    };
    n.egress.allow.push(rule);
    let allowed = run(Some(n), "c4", &["connect", &target]);
    let (outcome, stdout, stderr) = allowed.finish().await;
    assert_eq!(outcome, Outcome::Exited(0), "stderr {stderr:?}");
    assert_eq!(stdout, format!("connected {target}\nhost says hi\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_a_user_network_reach_each_other_by_name() {
    let s = shared();
    let app = unique("app");
    let web_net = net("web", "web", &[&app]);
    let web_id = web_net.id.clone();
    let web = run(Some(web_net), "web", &["listen", "80", "1"]);
    web.out.line("listening").await;
    let web_vip = s.runtime.net().addresses(&web_id)[0].1;

    let client_net = net("client", "client", &[&app]);
    let resolver = run(Some(client_net.clone()), "client", &["resolve", "web"]);
    let (outcome, stdout, stderr) = resolver.finish().await;
    assert_eq!(outcome, Outcome::Exited(0), "{stderr}");
    assert_eq!(stdout, format!("{web_vip}\n"));

    let client = run(Some(client_net), "client", &["connect", "web:80"]);
    let (outcome, stdout, stderr) = client.finish().await;
    assert_eq!(outcome, Outcome::Exited(0), "{stderr}");
    assert_eq!(stdout, format!("connected {web_vip}:80\nhello from web\n"));

    let (outcome, stdout, _) = web.finish().await;
    assert_eq!(outcome, Outcome::Exited(0));
    // The server sees the client's virtual address on the shared network, and its own.
    let accepted = stdout.lines().find(|l| l.starts_with("accepted")).unwrap();
    let parts: Vec<&str> = accepted.split(' ').collect();
    let peer: SocketAddr = parts[1].parse().unwrap();
    assert_eq!(parts[2], format!("{web_vip}:80"));
    match peer.ip() {
        IpAddr::V4(v4) => assert_eq!(v4.octets()[..3], web_vip.octets()[..3], "{accepted}"),
        other => panic!("peer {other}"),
    }
    assert_ne!(peer.ip(), IpAddr::V4(web_vip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_different_networks_cannot_see_each_other() {
    let s = shared();
    let (one, two) = (unique("one"), unique("two"));
    let web_net = net("web", "websrv", &[&one]);
    let web_id = web_net.id.clone();
    let web = run(Some(web_net), "websrv", &["listen", "80"]);
    web.out.line("listening").await;
    let web_vip = s.runtime.net().addresses(&web_id)[0].1;

    let stranger = net("stranger", "stranger", &[&two]);
    let (outcome, stdout, _) = run(Some(stranger.clone()), "s", &["resolve", "websrv"])
        .finish()
        .await;
    assert_eq!(outcome, Outcome::Exited(1), "{stdout}");
    let (outcome, _, _) = run(Some(stranger.clone()), "s", &["connect", "websrv:80"])
        .finish()
        .await;
    assert_eq!(outcome, Outcome::Exited(1));
    let (outcome, _, stderr) = run(Some(stranger), "s", &["connect", &format!("{web_vip}:80")])
        .finish()
        .await;
    assert_eq!(outcome, Outcome::Exited(1));
    assert!(stderr.contains("ConnectionRefused"), "{stderr}");

    // The default network: no names, as in Docker.
    let bridged = net("bridged", "bridged", &["bridge"]);
    let (outcome, _, _) = run(Some(bridged), "b", &["resolve", "websrv"])
        .finish()
        .await;
    assert_eq!(outcome, Outcome::Exited(1));
    web.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_has_no_sockets() {
    let service = host_service("nope\n");
    let (outcome, stdout, stderr) = run(None, "n", &["listen", "80"]).finish().await;
    assert_eq!(outcome, Outcome::Exited(1), "{stdout}");
    assert!(!stdout.contains("listening"));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    let (outcome, stdout, stderr) = run(None, "n", &["connect", &service.to_string()])
        .finish()
        .await;
    assert_eq!(outcome, Outcome::Exited(1));
    assert!(!stdout.contains("nope"));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    let (outcome, _, _) = run(None, "n", &["resolve", "localhost"]).finish().await;
    assert_eq!(outcome, Outcome::Exited(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_ends_when_the_run_is_dropped() {
    let s = shared();
    let app = unique("gone");
    let n = net("gone", "gone", &[&app]);
    let view = n.clone();
    let c = run(Some(n), "gone", &["listen", "80"]);
    c.out.line("listening").await;
    let mut peer = net("peer", "peer", &[&app]);
    peer.id = "peer-not-attached".into();
    assert!(s.runtime.net().route(&peer, "gone", 80).is_some());
    assert_eq!(s.runtime.net().addresses(&view.id).len(), 1);
    c.task.abort();
    let _ = c.task.await;
    assert_eq!(s.runtime.net().route(&peer, "gone", 80), None);
    assert!(s.runtime.net().addresses(&view.id).is_empty());
}
