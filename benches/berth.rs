//! In-process benchmarks of Berth's hot paths (criterion).
//!
//! - `container/create_to_exit/{p1,p2}`: create, start, wait and remove a hello container
//!   through the daemon library (no HTTP, no CLI process);
//! - `runtime/instantiate_run/{p1,p2}`: a fresh store, instantiation and a run to exit of an
//!   already prepared guest;
//! - `http/request`: one request through a served wasi:http component, on a kept-alive
//!   loopback connection;
//! - `store/ingest`: content-store ingest (hash, fsync, rename) in MB/s;
//! - `unpack/layer`: tar layer unpack through cap-std in MB/s.
//!
//! Run `cargo bench --bench berth` after `scripts/build-examples.sh`. Results and the machine
//! are recorded in docs/benchmarks.md.

use berth_daemon::{BuildRequest, Daemon, DaemonConfig, WaitCondition};
use berth_runtime::{OutputSink, Prepared, RunSpec, Runtime, RuntimeConfig, StreamKind};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_wasm(name: &str) -> Vec<u8> {
    let path = repo()
        .join("examples")
        .join(name)
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/build-examples.sh first",
            path.display()
        )
    })
}

struct Discard;
impl OutputSink for Discard {
    fn write(&self, _: StreamKind, _: &[u8]) {}
}

fn spec(args: &[&str]) -> RunSpec {
    RunSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cwd: "/".into(),
        root: None,
        mounts: Vec::new(),
        network: None,
        http_port: 80,
        stdin: None,
        output: Arc::new(Discard),
        memory_limit: None,
        cpus: None,
        requested_at: None,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn prepared(rt: &Runtime, wasm: &[u8]) -> Arc<Prepared> {
    let hex = sha256_hex(wasm);
    rt.compile(wasm, &hex).unwrap();
    rt.prepare(&hex).unwrap()
}

fn bench_runtime(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::new(dir.path().join("compiled"))).unwrap();
    let tokio = tokio_rt();
    let mut g = c.benchmark_group("runtime/instantiate_run");
    for (kind, name, args) in [
        ("p2", "hello", vec!["/hello.wasm"]),
        ("p1", "quotes", vec!["/quotes.wasm", "--help"]),
    ] {
        let pre = prepared(&rt, &example_wasm(name));
        g.bench_function(kind, |b| {
            b.to_async(&tokio)
                .iter(|| async { rt.run(&pre, spec(&args)).await })
        });
    }
    g.finish();
}

/// A daemon in a temp dir with `hello:1` (p2) and `quotes:1` (p1) built from the examples.
fn daemon_with_examples(tokio: &tokio::runtime::Runtime) -> (tempfile::TempDir, Arc<Daemon>) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::open(DaemonConfig {
        data_root: dir.path().join("state"),
        max_instances: 100,
        insecure_registries: Vec::new(),
    })
    .unwrap();
    for (name, tag) in [("hello", "hello:1"), ("quotes", "quotes:1")] {
        let tar_path = dir.path().join(format!("{name}.tar"));
        let mut ar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        ar.append_dir_all(".", repo().join("examples").join(name))
            .unwrap();
        ar.finish().unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        tokio
            .block_on(daemon.build(
                tar_path,
                BuildRequest {
                    dockerfile: "Dockerfile".into(),
                    tags: vec![tag.into()],
                    ..Default::default()
                },
                tx,
            ))
            .unwrap();
    }
    (dir, daemon)
}

fn bench_containers(c: &mut Criterion) {
    let tokio = tokio_rt();
    let (_dir, daemon) = daemon_with_examples(&tokio);
    let mut g = c.benchmark_group("container/create_to_exit");
    for (kind, image) in [("p2", "hello:1"), ("p1", "quotes:1")] {
        g.bench_function(kind, |b| {
            b.to_async(&tokio).iter(|| async {
                let req = berth_api::ContainerCreateRequest {
                    config: berth_api::ContainerConfig {
                        image: Some(image.into()),
                        ..Default::default()
                    },
                    host_config: None,
                };
                let (id, _) = daemon.create(req, None).await.unwrap();
                let waiter = daemon.wait(id.as_str(), WaitCondition::NextExit).unwrap();
                daemon.start(id.as_str()).await.unwrap();
                let exit = waiter.await;
                daemon.remove(id.as_str(), true).await.unwrap();
                exit.status_code
            })
        });
    }
    g.finish();
}

fn bench_http(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig::new(dir.path().join("compiled"))).unwrap();
    let tokio = tokio_rt();
    let pre = prepared(&rt, &example_wasm("http-hello"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = spec(&["/http-hello.wasm"]);
    s.network = Some(Arc::new(berth_runtime::ContainerNet {
        id: "bench".into(),
        name: "bench".into(),
        networks: vec!["bridge".into()],
        egress: Default::default(),
        published: vec![berth_runtime::PublishedPort {
            container_port: 80,
            proto: berth_runtime::Proto::Tcp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: port,
        }],
    }));
    let rt2 = rt.clone();
    let service = tokio.spawn(async move { rt2.run(&pre, s).await });
    let mut conn = loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    conn.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    c.bench_function("http/request", |b| {
        b.iter(|| {
            conn.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                .unwrap();
            // The body is short: read until the end of it.
            let mut got = Vec::new();
            while !got.ends_with(b"hello from berth\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "server closed the connection");
                got.extend_from_slice(&buf[..n]);
            }
        })
    });
    service.abort();
}

fn bench_store_and_unpack(c: &mut Criterion) {
    const SIZE: usize = 16 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let store = berth_image::store::ContentStore::open(dir.path().join("content")).unwrap();
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("ingest", "16MiB"), |b| {
        b.iter(|| {
            let mut w = store.writer().unwrap();
            w.write_all(&data).unwrap();
            let (digest, _) = w.commit(None).unwrap();
            store.delete(&digest).unwrap();
        })
    });
    g.finish();

    // A layer of 256 files of 64 KiB each.
    let mut tar_bytes = Vec::new();
    {
        let mut ar = tar::Builder::new(&mut tar_bytes);
        for i in 0..256 {
            let mut h = tar::Header::new_gnu();
            h.set_size(64 * 1024);
            h.set_mode(0o644);
            h.set_cksum();
            ar.append_data(&mut h, format!("d{}/f{i}", i % 8), &data[..64 * 1024])
                .unwrap();
        }
        ar.finish().unwrap();
    }
    let mut g = c.benchmark_group("unpack");
    g.throughput(Throughput::Bytes(tar_bytes.len() as u64));
    g.sample_size(20);
    let n = std::sync::atomic::AtomicUsize::new(0);
    g.bench_function(BenchmarkId::new("layer", "16MiB-256-files"), |b| {
        b.iter(|| {
            let target = dir.path().join(format!(
                "snap{}",
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&target).unwrap();
            let root =
                cap_std::fs::Dir::open_ambient_dir(&target, cap_std::ambient_authority()).unwrap();
            berth_image::unpack::apply_tar(&root, &tar_bytes[..]).unwrap();
            drop(root);
            remove(&target);
        })
    });
    g.finish();
}

fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

criterion_group!(
    benches,
    bench_runtime,
    bench_containers,
    bench_http,
    bench_store_and_unpack
);
criterion_main!(benches);
