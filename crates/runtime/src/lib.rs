//! berth-runtime: the only crate that touches wasmtime.
//!
//! One [`Runtime`] per daemon owns one wasmtime `Engine` (pooling allocator when the host allows
//! it, epoch interruption always on), one linker per guest kind, a compiled-code cache on disk
//! and an in-memory cache of ready-to-instantiate guests ([`Prepared`]).
//!
//! The life of a guest:
//! 1. [`Runtime::compile`] at build or pull time: validates the bytes, compiles them with
//!    Cranelift and writes `<cache>/<engine-hash>/<sha256>.cwasm` atomically. Nothing compiled
//!    ever comes from an image: the cache is written only by this function.
//! 2. [`Runtime::prepare`] at container create: maps the `.cwasm` and links it once per module
//!    digest (`InstancePre`), then serves later calls from memory.
//! 3. [`Runtime::run`] at start: a fresh WASI context and `Store`, instantiate, call
//!    `_start` (preview1) or `wasi:cli/run` (preview2). The returned future is the container:
//!    dropping it stops the guest wherever it is, including inside a blocking host call.
//!
//! CPU-bound guests yield to the tokio scheduler at every epoch tick (10 ms), so a spinning
//! guest never stalls the daemon or its neighbours.

mod http;
pub mod latency;
pub mod net;
mod output;
pub mod policy;

pub use net::{Attachment, ContainerNet, ListenerGuard, NetRegistry, Proto, PublishedPort};
pub use output::{OutputSink, StreamKind};
pub use policy::{EgressPolicy, OutboundRule, OutboundTarget};

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig, ResourceLimiter,
    Store,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// Largest Wasm binary Berth will compile. Guards the daemon against compile-time memory and
/// CPU exhaustion from hostile images (Wasmtime does not treat compile-time DoS as its bug).
pub const MAX_WASM_SIZE: usize = 256 * 1024 * 1024;

/// How often the epoch advances; a spinning guest yields to other tasks this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most resources (open files, directories, sockets, streams, pollables) one guest instance
/// may hold at once; past it, opening another fails inside the guest.
pub const MAX_HANDLES: usize = 4096;

/// Exit code reported when a guest traps, as the `wasmtime` CLI does (128 + SIGABRT).
pub const TRAP_EXIT_CODE: i32 = 134;

/// Errors of this crate. Each variant names the module digest or path involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not a WebAssembly module or component ({len} bytes, no \\0asm header)")]
    NotWasm { len: usize },
    #[error("WebAssembly binary is {len} bytes, above the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("invalid WebAssembly {kind}: {message}")]
    Invalid { kind: &'static str, message: String },
    #[error(
        "compiling the WebAssembly {kind} took longer than {}s; it is refused",
        .limit.as_secs_f64()
    )]
    CompileTimeout { kind: &'static str, limit: Duration },
    #[error("compiled code for {digest} is not in the cache; compile it first")]
    NotCompiled { digest: String },
    #[error("guest {digest} cannot be linked: {message}")]
    Link { digest: String, message: String },
    #[error("cannot prepare the guest environment: {0}")]
    Setup(String),
    #[error("compiled-code cache I/O on {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("wasmtime engine: {0}")]
    Engine(String),
}

/// Whether a binary is a preview1 core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    Module,
    Component,
}

impl WasmKind {
    /// Looks at the header only; [`Runtime::compile`] does the full validation.
    pub fn detect(bytes: &[u8]) -> Result<Self, RuntimeError> {
        if wasmparser::Parser::is_component(bytes) {
            Ok(Self::Component)
        } else if wasmparser::Parser::is_core_wasm(bytes) {
            Ok(Self::Module)
        } else {
            Err(RuntimeError::NotWasm { len: bytes.len() })
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Module => "module",
            Self::Component => "component",
        }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled code; created if missing.
    pub cache_dir: PathBuf,
    /// Number of guests that may be instantiated at once with the pooling allocator.
    pub max_instances: u32,
    /// Use the pooling allocator when the host can reserve its address space.
    pub pooling: bool,
    /// Longest a module may take to compile; past it, the build or pull fails.
    pub compile_timeout: Duration,
}

/// Default [`RuntimeConfig::compile_timeout`]: far above any real module (the largest seen,
/// tens of MB, compile in seconds on two cores), low enough to refuse a compile bomb.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

impl RuntimeConfig {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_instances: 1000,
            pooling: true,
            compile_timeout: COMPILE_TIMEOUT,
        }
    }
}

/// A guest linked and ready to instantiate. Cheap to share between containers.
pub enum Prepared {
    Module(wasmtime::InstancePre<P1Host>),
    Component(CommandPre<P2Host>),
    /// A component exporting `wasi:http/incoming-handler` (the `wasi:http/proxy` world):
    /// [`Runtime::run`] serves it over HTTP, one instance per request.
    Http(ProxyPre<P2Host>),
}

impl Prepared {
    pub fn kind(&self) -> WasmKind {
        match self {
            Self::Module(_) => WasmKind::Module,
            Self::Component(_) | Self::Http(_) => WasmKind::Component,
        }
    }

    /// Whether this is a wasi:http service (served on `RunSpec::http_port`) rather than a
    /// command that runs to completion.
    pub fn is_http(&self) -> bool {
        matches!(self, Self::Http(_))
    }
}

/// How a container sees its root filesystem.
#[derive(Debug, Clone)]
pub struct RootDir {
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// A host directory granted to the guest at `guest_path` (a volume, bind mount or tmpfs).
///
/// The guest reaches it through its own preopen: wasi-libc picks the preopen with the longest
/// matching prefix, lexically (see `docs/architecture.md`, "Filesystem view").
#[derive(Debug, Clone)]
pub struct MountDir {
    pub host_path: PathBuf,
    /// Absolute, normalised guest path (no `.`, `..` or trailing `/`), never `/`.
    pub guest_path: String,
    pub read_only: bool,
}

/// Everything one run of a guest needs.
pub struct RunSpec {
    /// `argv`, with `argv[0]` the entrypoint path as the guest should see it.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory inside the guest (absolute).
    pub cwd: String,
    pub root: Option<RootDir>,
    /// Directories granted besides the root, in the order the guest should see them.
    pub mounts: Vec<MountDir>,
    /// The container's network view; `None` is `--network none`: no sockets at all.
    pub network: Option<Arc<ContainerNet>>,
    /// Container port a wasi:http proxy component is served on (80, or the image's first
    /// `EXPOSE`); ignored for command guests.
    pub http_port: u16,
    /// Guest stdin; `None` gives a closed stdin.
    pub stdin: Option<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>>,
    pub output: Arc<dyn OutputSink>,
    /// Cap on all linear memories together, in bytes.
    pub memory_limit: Option<usize>,
    /// When the daemon was asked to start this guest; the time from it to the guest's entry
    /// point is recorded in [`Runtime::entry_latency`].
    pub requested_at: Option<std::time::Instant>,
    /// `--cpus`: CPU time the guest may use per second of wall time (1.5 = one and a half
    /// CPUs). `None`: no cap beyond fair scheduling.
    pub cpus: Option<f64>,
}

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest returned or called `exit`.
    Exited(i32),
    /// The guest trapped; `message` is Wasmtime's description.
    Trapped { message: String, oom: bool },
    /// The runtime could not instantiate the guest (pool exhausted, missing import, ...).
    Failed(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exited(code) => *code,
            Self::Trapped { .. } => TRAP_EXIT_CODE,
            Self::Failed(_) => 127,
        }
    }
}

/// Store state of a preview1 guest.
pub struct P1Host {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// Store state of a preview2 component.
pub struct P2Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
    http: wasmtime_wasi_http::WasiHttpCtx,
    /// Outgoing wasi:http requests: the container's egress policy (see `http.rs`).
    http_hooks: http::HttpHooks,
    /// The container's view of wasi:sockets (see `net.rs`).
    net: net::sockets::NetView,
}

impl P2Host {
    fn net_view(&mut self) -> net::sockets::NetCtxView<'_> {
        net::sockets::NetCtxView {
            sockets: wasmtime_wasi::sockets::WasiSocketsCtxView {
                ctx: self.wasi.sockets(),
                table: &mut self.table,
            },
            net: &mut self.net,
        }
    }
}

/// Builds the store state of a preview2 component: every `P2Host` (a command run, and each
/// request of a wasi:http service) is made here. `network` is `None` under `--network none`.
fn p2_host(
    registry: &Arc<NetRegistry>,
    network: Option<&Arc<ContainerNet>>,
    wasi: WasiCtx,
    limits: Limits,
) -> P2Host {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HANDLES);
    P2Host {
        wasi,
        table,
        limits,
        http: wasmtime_wasi_http::WasiHttpCtx::new(),
        http_hooks: http::HttpHooks::new(registry.clone(), network.cloned()),
        net: net::sockets::NetView::new(registry, network.cloned()),
    }
}

/// Bytes a table element costs the host (one pointer), for counting tables against `--memory`.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// Counts every linear memory and table of one store against one cap, and remembers whether
/// a growth was refused, so a trap right after can be reported as `OOMKilled`.
#[derive(Debug, Default)]
pub struct Limits {
    max: Option<usize>,
    used: usize,
    denied: bool,
}

impl Limits {
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let extra = desired.saturating_sub(current);
        match self.max {
            Some(max) if self.used.saturating_add(extra) > max => {
                self.denied = true;
                false
            }
            _ => {
                self.used = self.used.saturating_add(extra);
                true
            }
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }
}

impl WasiView for P2Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The daemon's one wasmtime engine and what hangs off it.
pub struct Runtime {
    engine: Engine,
    p1_linker: wasmtime::Linker<P1Host>,
    p2_linker: wasmtime::component::Linker<P2Host>,
    cache_dir: PathBuf,
    compile_timeout: Duration,
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
    pooling: bool,
    net: Arc<NetRegistry>,
    entry_latency: latency::LatencyRecorder,
}

impl Runtime {
    /// Builds the engine and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        let (engine, pooling) = build_engine(&config)?;
        let mut p1_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut p1_linker, |h: &mut P1Host| &mut h.wasi)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let mut p2_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        // Each container's own network view: wasi:sockets tcp, udp and name lookup shadowed.
        net::sockets::add_to_linker(&mut p2_linker, P2Host::net_view)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        // One linker for commands and wasi:http services (which import wasi:cli too).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut p2_linker)
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;

        let hash = {
            let mut h = std::hash::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        let cache_dir = config.cache_dir.join(hash);
        std::fs::create_dir_all(&cache_dir).map_err(|source| RuntimeError::Cache {
            path: cache_dir.clone(),
            source,
        })?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("berth-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("epoch thread: {e}")))?;

        tracing::info!(pooling, cache = %cache_dir.display(), "wasmtime engine ready");
        Ok(Arc::new(Self {
            engine,
            p1_linker,
            p2_linker,
            cache_dir,
            compile_timeout: config.compile_timeout,
            prepared: Mutex::new(HashMap::new()),
            pooling,
            net: NetRegistry::new(),
            entry_latency: latency::LatencyRecorder::default(),
        }))
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// The daemon-wide table of container addresses and listeners.
    pub fn net(&self) -> &Arc<NetRegistry> {
        &self.net
    }

    fn cache_path(&self, digest_hex: &str) -> PathBuf {
        self.cache_dir.join(format!("{digest_hex}.cwasm"))
    }

    /// Whether compiled code for this module digest is cached.
    pub fn is_compiled(&self, digest_hex: &str) -> bool {
        self.cache_path(digest_hex).is_file()
    }

    /// Validates and compiles `wasm` (whose sha256 is `digest_hex`) into the cache.
    /// Blocking and CPU-heavy: call it from a blocking thread.
    pub fn compile(&self, wasm: &[u8], digest_hex: &str) -> Result<WasmKind, RuntimeError> {
        if wasm.len() > MAX_WASM_SIZE {
            return Err(RuntimeError::TooLarge {
                len: wasm.len(),
                max: MAX_WASM_SIZE,
            });
        }
        let kind = WasmKind::detect(wasm)?;
        let path = self.cache_path(digest_hex);
        if path.is_file() {
            return Ok(kind);
        }
        let started = std::time::Instant::now();
        // Cranelift cannot be interrupted: the compile runs on its own thread and is abandoned
        // (its result dropped) if it outlives the timeout.
        let (tx, rx) = std::sync::mpsc::channel();
        let engine = self.engine.clone();
        let bytes = wasm.to_vec();
        std::thread::Builder::new()
            .name("berth-compile".into())
            .spawn(move || {
                let compiled = match kind {
                    WasmKind::Module => engine.precompile_module(&bytes),
                    WasmKind::Component => engine.precompile_component(&bytes),
                };
                let _ = tx.send(compiled);
            })
            .map_err(|e| RuntimeError::Engine(format!("compile thread: {e}")))?;
        let compiled = match rx.recv_timeout(self.compile_timeout) {
            Ok(result) => result.map_err(|e| RuntimeError::Invalid {
                kind: kind.name(),
                message: format!("{e:#}"),
            })?,
            Err(_) => {
                return Err(RuntimeError::CompileTimeout {
                    kind: kind.name(),
                    limit: self.compile_timeout,
                });
            }
        };
        berth_image::write_atomic(&path, &compiled).map_err(|source| RuntimeError::Cache {
            path: path.clone(),
            source,
        })?;
        tracing::info!(
            digest = digest_hex,
            kind = kind.name(),
            ms = started.elapsed().as_millis() as u64,
            "compiled guest"
        );
        Ok(kind)
    }

    /// Loads and links the compiled guest for `digest_hex`, once; later calls are a map lookup.
    pub fn prepare(&self, digest_hex: &str) -> Result<Arc<Prepared>, RuntimeError> {
        if let Some(p) = self
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest_hex)
        {
            return Ok(p.clone());
        }
        let path = self.cache_path(digest_hex);
        let link_err = |e: wasmtime::Error| RuntimeError::Link {
            digest: digest_hex.to_string(),
            message: format!("{e:#}"),
        };
        let prepared = match Engine::detect_precompiled_file(&path) {
            Ok(Some(wasmtime::Precompiled::Module)) => {
                // SAFETY: the file was written by `compile` into the daemon-owned cache, keyed by
                // this engine's compatibility hash; images never supply precompiled code.
                let module =
                    unsafe { Module::deserialize_file(&self.engine, &path) }.map_err(link_err)?;
                Prepared::Module(self.p1_linker.instantiate_pre(&module).map_err(link_err)?)
            }
            Ok(Some(wasmtime::Precompiled::Component)) => {
                // SAFETY: as above.
                let component = unsafe { Component::deserialize_file(&self.engine, &path) }
                    .map_err(link_err)?;
                let pre = self
                    .p2_linker
                    .instantiate_pre(&component)
                    .map_err(link_err)?;
                // A component exporting wasi:http/incoming-handler is a service, even if it
                // also exports wasi:cli/run.
                match ProxyPre::new(pre.clone()) {
                    Ok(proxy) => Prepared::Http(proxy),
                    Err(_) => Prepared::Component(CommandPre::new(pre).map_err(link_err)?),
                }
            }
            _ => {
                return Err(RuntimeError::NotCompiled {
                    digest: digest_hex.to_string(),
                });
            }
        };
        let prepared = Arc::new(prepared);
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest_hex.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// Start request to guest entry point (`_start` / `wasi:cli/run`), for `/berth/stats`.
    pub fn entry_latency(&self) -> &latency::LatencyRecorder {
        &self.entry_latency
    }

    fn entered(&self, requested_at: Option<std::time::Instant>) {
        if let Some(t) = requested_at {
            self.entry_latency.record(t.elapsed());
        }
    }

    /// Forgets the in-memory preparation of a digest (e.g. when its image is removed).
    pub fn forget(&self, digest_hex: &str) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest_hex);
    }

    /// Runs a guest to completion. Dropping the future stops the guest.
    ///
    /// A wasi:http service ([`Prepared::Http`]) is served on `spec.http_port` until the future
    /// is dropped, one fresh instance per request (see `http.rs`).
    pub async fn run(&self, prepared: &Prepared, mut spec: RunSpec) -> Outcome {
        let limits = Limits {
            max: spec.memory_limit,
            ..Limits::default()
        };
        let cpus = spec.cpus;
        let requested_at = spec.requested_at;
        let stdin = spec.stdin.take();
        let mut builder = match wasi_builder(&spec) {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Some(stdin) = stdin {
            builder.stdin(wasmtime_wasi::cli::AsyncStdinStream::new(stdin));
        }
        match prepared {
            Prepared::Module(pre) => {
                let mut wasi = builder.build_p1();
                wasi.ctx().table.set_max_capacity(MAX_HANDLES);
                let host = P1Host { wasi, limits };
                let mut store = Store::new(&self.engine, host);
                store.limiter(|h| &mut h.limits);
                arm_epochs(&mut store, cpus);
                let result = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    self.entered(requested_at);
                    start.call_async(&mut store, ()).await
                }
                .await;
                classify(result, store.data().limits.denied)
            }
            Prepared::Component(pre) => {
                let host = p2_host(&self.net, spec.network.as_ref(), builder.build(), limits);
                let mut store = Store::new(&self.engine, host);
                store.limiter(|h| &mut h.limits);
                arm_epochs(&mut store, cpus);
                let result = async {
                    let command = pre.instantiate_async(&mut store).await?;
                    self.entered(requested_at);
                    command.wasi_cli_run().call_run(&mut store).await
                }
                .await;
                match result {
                    Ok(Ok(())) => Outcome::Exited(0),
                    Ok(Err(())) => Outcome::Exited(1),
                    Err(e) => classify(Err(e), store.data().limits.denied),
                }
            }
            Prepared::Http(pre) => {
                drop(builder);
                http::serve(&self.net, pre, spec).await
            }
        }
    }
}

/// Guests yield to the scheduler at every epoch tick instead of trapping; with a CPU cap,
/// a guest over its share sleeps until it is back within it.
pub(crate) fn arm_epochs<T: 'static>(store: &mut Store<T>, cpus: Option<f64>) {
    store.set_epoch_deadline(1);
    match cpus.filter(|c| *c > 0.0) {
        None => store.epoch_deadline_async_yield_and_update(1),
        Some(quota) => {
            let mut throttle = CpuThrottle::new(quota, std::time::Instant::now());
            store.epoch_deadline_callback(move |_| {
                Ok(match throttle.tick(std::time::Instant::now()) {
                    None => wasmtime::UpdateDeadline::Yield(1),
                    Some(pause) => wasmtime::UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(tokio::time::sleep(pause)),
                    ),
                })
            });
        }
    }
}

/// `--cpus` accounting. The epoch callback runs only while the guest executes Wasm, at most
/// once per tick, so each call charges one tick of CPU. Over a one-second window, a guest
/// that has used more than `quota` × elapsed is paused for the difference.
#[derive(Debug)]
struct CpuThrottle {
    quota: f64,
    window_start: std::time::Instant,
    used: Duration,
}

impl CpuThrottle {
    const WINDOW: Duration = Duration::from_secs(1);

    fn new(quota: f64, now: std::time::Instant) -> Self {
        Self {
            quota,
            window_start: now,
            used: Duration::ZERO,
        }
    }

    /// Charges one tick; returns how long to pause, if the guest is over its share.
    fn tick(&mut self, now: std::time::Instant) -> Option<Duration> {
        if now.duration_since(self.window_start) >= Self::WINDOW {
            // The tick being charged ran in the new window.
            self.window_start = now.checked_sub(EPOCH_TICK).unwrap_or(now);
            self.used = Duration::ZERO;
        }
        self.used += EPOCH_TICK;
        let allowed = now.duration_since(self.window_start).mul_f64(self.quota);
        (self.used > allowed).then(|| (self.used - allowed).div_f64(self.quota))
    }
}

fn classify(result: wasmtime::Result<()>, growth_denied: bool) -> Outcome {
    let err = match result {
        Ok(()) => return Outcome::Exited(0),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Outcome::Exited(exit.0);
    }
    if matches!(
        err.downcast_ref::<wasmtime::component::ResourceTableError>(),
        Some(wasmtime::component::ResourceTableError::Full)
    ) {
        // wasmtime-wasi turns a full table into a trap, not an error the guest could handle.
        return Outcome::Trapped {
            message: format!("too many open handles: the limit is {MAX_HANDLES} per container"),
            oom: false,
        };
    }
    let message = format!("{err:#}");
    if err.downcast_ref::<wasmtime::Trap>().is_some() {
        // A guest whose allocation was refused by the limiter aborts with a trap soon after.
        return Outcome::Trapped {
            message,
            oom: growth_denied,
        };
    }
    Outcome::Failed(message)
}

/// The WASI context of a run, without stdin (the caller adds it). Called once per command
/// run and once per request of a wasi:http service.
fn wasi_builder(spec: &RunSpec) -> Result<WasiCtxBuilder, RuntimeError> {
    let mut b = WasiCtxBuilder::new();
    b.args(&spec.args);
    for (k, v) in &spec.env {
        b.env(k, v);
    }
    let perms = |read_only: bool| {
        if read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        }
    };
    // wasi-libc (preview1 and preview2 alike) starts with the working directory "/" and never
    // reads `initial-cwd`; it resolves a path by the longest matching preopen name, the newest
    // winning a tie, and "/" and "." both count as the empty prefix. So, in this order:
    // 1. "/": the root;
    // 2. ".": the working directory, so relative paths resolve there (it also shadows "/"
    //    for paths with no other match, such as `ls /`);
    // 3. when the working directory is not "/", every top-level directory of the root under
    //    its own name, so absolute paths like /etc/x still reach the root;
    // 4. the mounts, which win over the root's mount-point directories.
    // See docs/architecture.md, "Filesystem view", for what remains different from Docker.
    if let Some(root) = &spec.root {
        b.preopened_dir(&root.host_path, "/", perms(root.read_only))
            .map_err(|e| RuntimeError::Setup(format!("root {}: {e}", root.host_path.display())))?;
    }
    if spec.root.is_some() || !spec.mounts.is_empty() {
        b.initial_cwd(&spec.cwd);
    }
    if let Some((dir, read_only)) = workdir_grant(spec)? {
        b.preopened_dir(&dir, ".", perms(read_only))
            .map_err(|e| RuntimeError::Setup(format!("working directory {}: {e}", spec.cwd)))?;
        if let Some(root) = &spec.root {
            for name in top_level_dirs(&root.host_path) {
                let host = root.host_path.join(&name);
                b.preopened_dir(&host, format!("/{name}"), perms(root.read_only))
                    .map_err(|e| RuntimeError::Setup(format!("root directory /{name}: {e}")))?;
            }
        }
    }
    for m in &spec.mounts {
        b.preopened_dir(&m.host_path, &m.guest_path, perms(m.read_only))
            .map_err(|e| {
                RuntimeError::Setup(format!(
                    "mount {} at {}: {e}",
                    m.host_path.display(),
                    m.guest_path
                ))
            })?;
    }
    b.stdout(output::GuestOutput::new(
        spec.output.clone(),
        StreamKind::Stdout,
    ));
    b.stderr(output::GuestOutput::new(
        spec.output.clone(),
        StreamKind::Stderr,
    ));
    // Sockets for preview2 components only: preview1 has none (see `net.rs`).
    net::sockets::configure(&mut b, spec.network.as_ref());
    Ok(b)
}

/// Real directories (never symlinks, which would be followed on the host) directly under
/// `root` whose names are valid UTF-8, sorted.
fn top_level_dirs(root: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// The grant that holds the working directory: the mount with the longest matching guest
/// prefix, else the root. Returns the host directory and whether it is read-only.
fn workdir_grant(spec: &RunSpec) -> Result<Option<(PathBuf, bool)>, RuntimeError> {
    let cwd = normalise_guest_path(&spec.cwd);
    let mount = spec
        .mounts
        .iter()
        .filter(|m| cwd == m.guest_path || cwd.starts_with(&format!("{}/", m.guest_path)))
        .max_by_key(|m| m.guest_path.len());
    if let Some(m) = mount {
        let rest = &cwd[m.guest_path.len()..];
        if rest.is_empty() {
            return Ok(Some((m.host_path.clone(), m.read_only)));
        }
        return Ok(workdir_host_path(&m.host_path, rest)?.map(|p| (p, m.read_only)));
    }
    match &spec.root {
        Some(root) => Ok(workdir_host_path(&root.host_path, &cwd)?.map(|p| (p, root.read_only))),
        None => Ok(None),
    }
}

/// `/a/./b/../c/` → `/a/c`; `..` is clamped at `/`.
pub fn normalise_guest_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The host directory of the guest working directory `cwd` inside `root`, if it is not the
/// root itself and exists. `..` is clamped at the root, and the resolved directory must still
/// be inside the root, so a symlink planted in an image or by an earlier run cannot make the
/// host preopen something outside it.
fn workdir_host_path(root: &std::path::Path, cwd: &str) -> Result<Option<PathBuf>, RuntimeError> {
    let mut rel = PathBuf::new();
    for part in cwd.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                rel.pop();
            }
            p => rel.push(p),
        }
    }
    if rel.as_os_str().is_empty() {
        return Ok(None);
    }
    let Ok(resolved) = std::fs::canonicalize(root.join(&rel)) else {
        return Ok(None);
    };
    let root = std::fs::canonicalize(root)
        .map_err(|e| RuntimeError::Setup(format!("root {}: {e}", root.display())))?;
    if !resolved.starts_with(&root) || !resolved.is_dir() {
        return Err(RuntimeError::Setup(format!(
            "working directory {cwd} resolves outside the container root"
        )));
    }
    Ok(Some(resolved))
}

fn build_engine(config: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    let mut base = Config::new();
    base.epoch_interruption(true);
    if config.pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memories_per_module(1)
            .max_tables_per_module(2)
            .max_core_instances_per_component(16);
        let mut pooled = base.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; using on-demand allocation")
            }
        }
    }
    Engine::new(&base)
        .map(|e| (e, false))
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_preopen_stays_inside_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("app/data")).unwrap();
        std::os::unix::fs::symlink(outer.path(), root.join("evil")).unwrap();
        assert_eq!(workdir_host_path(&root, "/").unwrap(), None);
        assert_eq!(workdir_host_path(&root, "/nope").unwrap(), None);
        let got = workdir_host_path(&root, "/app/../app/data")
            .unwrap()
            .unwrap();
        assert!(got.ends_with("app/data"));
        assert!(
            workdir_host_path(&root, "/../../app")
                .unwrap()
                .unwrap()
                .ends_with("app")
        );
        assert!(workdir_host_path(&root, "/evil").is_err());
    }

    #[test]
    fn oversized_modules_are_refused_before_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig::new(dir.path());
        config.pooling = false;
        let rt = Runtime::new(config).unwrap();
        // Zeroed allocation: the pages are never touched, so this costs no real memory.
        let mut big = vec![0u8; MAX_WASM_SIZE + 1];
        big[..8].copy_from_slice(b"\0asm\x01\0\0\0");
        assert!(matches!(
            rt.compile(&big, &"0".repeat(64)),
            Err(RuntimeError::TooLarge { .. })
        ));
        assert!(!rt.is_compiled(&"0".repeat(64)));
    }

    #[test]
    fn cpu_throttle_pauses_a_guest_over_its_share() {
        let t0 = std::time::Instant::now();
        // Half a CPU: after 100 ms of wall time, 50 ms of CPU is allowed.
        let mut t = CpuThrottle::new(0.5, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        for i in 1..=5 {
            assert_eq!(t.tick(at(i * 20)), None, "tick {i} is within the share");
        }
        // Running through every tick: 100 ms used, 50 ms allowed at 100 ms → pause 100 ms
        // (the excess divided by the share).
        let mut t = CpuThrottle::new(0.5, t0);
        let mut pause = None;
        for i in 1..=10 {
            pause = t.tick(at(i * 10));
        }
        assert_eq!(pause, Some(Duration::from_millis(100)));
        // A new window forgives the past: only the new tick counts.
        assert_eq!(t.tick(at(1200)), Some(Duration::from_millis(10)));
        // Two CPUs never pause a single-threaded guest.
        let mut t = CpuThrottle::new(2.0, t0);
        assert!((1..=100).all(|i| t.tick(at(i * 10)).is_none()));
    }

    #[test]
    fn a_compile_over_the_timeout_is_refused_and_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RuntimeConfig::new(dir.path());
        config.pooling = false;
        config.compile_timeout = Duration::from_nanos(1);
        let rt = Runtime::new(config).unwrap();
        // A module with a large function: compiling it takes far longer than a nanosecond.
        let body = "(drop (i32.add (i32.const 1) (i32.const 2)))".repeat(5000);
        let wasm = wat::parse_str(format!("(module (func {body}))")).unwrap();
        let digest = "1".repeat(64);
        let err = rt.compile(&wasm, &digest).unwrap_err();
        assert!(matches!(err, RuntimeError::CompileTimeout { .. }), "{err}");
        assert!(err.to_string().contains("took longer than"), "{err}");
        assert!(!rt.is_compiled(&digest));
    }

    #[test]
    fn detect_rejects_non_wasm() {
        assert!(matches!(
            WasmKind::detect(b"#!/bin/sh\necho hi\n"),
            Err(RuntimeError::NotWasm { .. })
        ));
        assert_eq!(
            WasmKind::detect(b"\0asm\x01\0\0\0").unwrap(),
            WasmKind::Module
        );
    }
}
