//! berth-daemon: containers, images and their state, independent of HTTP.
//!
//! [`Daemon`] is what berthd serves. A request from the server becomes one typed call here;
//! the daemon asks `berth-image` for images and snapshots and `berth-runtime` for guests, and
//! answers with `berth-api` types or a classified [`DaemonError`].
//!
//! State on disk, under the data root:
//! - `content/`: the blob store; `images/refs.json`: names → manifests;
//! - `snapshots/<chain-id>/`: unpacked layer stacks, shared read-only;
//! - `containers/<id>/{config.json,state.json,<id>-json.log,rootfs/,tmpfs/}`;
//! - `volumes/<name>/{volume.json,_data/}`; `networks.json`: user-defined networks;
//! - `compiled/`: Cranelift output keyed by engine and module digest;
//! - `buildcache/`: build step → layer pointers.
//!
//! Start with [`Daemon::open`], [`Daemon::create`] and [`Daemon::start`].

pub mod container;
pub mod error;
pub mod logs;
pub mod mounts;
pub mod networks;
mod objects;
pub mod ports;
pub mod restart;
pub mod transfer;
pub mod volumes;

pub use container::{ContainerId, ContainerSpec, ContainerState, Status};
pub use error::{DaemonError, ErrorKind, Result};

use berth_api as api;
use berth_image::build::{BuildOptions, Builder};
use berth_image::digest::Digest;
use berth_image::images::{Image, ImageStore};
use berth_image::reference::Reference;
use berth_image::store::ContentStore;
use berth_image::unpack;
use berth_runtime::{
    ContainerNet, EgressPolicy, MountDir, OutboundRule, OutboundTarget, Outcome, Proto,
    PublishedPort, RootDir, RunSpec, Runtime, RuntimeConfig,
};
use container::Refusal;
use logs::LogWriter;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Buffer between an attached client's stdin and the guest.
const STDIN_PIPE_BYTES: usize = 64 * 1024;

/// Exit code recorded for containers that were running when berthd stopped or crashed.
pub const DAEMON_GONE_EXIT_CODE: i64 = 255;

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Signal numbers Berth understands in `kill` and `stop`.
pub fn parse_signal(s: &str) -> Result<i32> {
    let up = s.trim().to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "" => 9,
        other => other
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| DaemonError::Invalid(format!("invalid signal: {s}")))?,
    };
    Ok(n)
}

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_root: PathBuf,
    /// How many guests may be instantiated at once (pooling allocator slots).
    pub max_instances: u32,
    /// Registries (`host[:port]`) reached over plain HTTP besides localhost and 127.0.0.0/8.
    pub insecure_registries: Vec<String>,
}

/// An exit (or removal) of a container, broadcast to waiters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitEvent {
    /// Number of exits so far; `next-exit` waits for it to grow.
    pub seq: u64,
    pub code: i64,
    pub error: Option<String>,
    pub removed: bool,
}

/// `wait` conditions, as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(DaemonError::Invalid(format!(
                "invalid condition: {other:?}"
            ))),
        }
    }
}

/// A container known to the daemon.
pub struct Container {
    pub spec: ContainerSpec,
    dir: PathBuf,
    state: Mutex<ContainerState>,
    logs: LogWriter,
    exits: watch::Sender<ExitEvent>,
    kill: Mutex<Option<oneshot::Sender<i32>>>,
    /// Dropping it cancels the restart waiting for its backoff.
    restart_cancel: Mutex<Option<oneshot::Sender<()>>>,
    stdin: Mutex<StdinPipe>,
}

/// The guest's stdin for its next run: `start` takes the read end, an attached client with
/// `stdin=1` takes the write end. Dropping the write end gives the guest EOF.
#[derive(Default)]
struct StdinPipe {
    reader: Option<tokio::io::ReadHalf<tokio::io::SimplexStream>>,
    writer: Option<tokio::io::WriteHalf<tokio::io::SimplexStream>>,
}

impl StdinPipe {
    fn new(open: bool) -> Self {
        if !open {
            return Self::default();
        }
        let (r, w) = tokio::io::simplex(STDIN_PIPE_BYTES);
        Self {
            reader: Some(r),
            writer: Some(w),
        }
    }
}

impl Container {
    pub fn id(&self) -> &ContainerId {
        &self.spec.id
    }

    pub fn state(&self) -> ContainerState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn logs(&self) -> &LogWriter {
        &self.logs
    }

    /// Takes the write end of the guest's stdin (one attached client may have it).
    pub fn take_stdin(&self) -> Option<tokio::io::WriteHalf<tokio::io::SimplexStream>> {
        self.stdin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .writer
            .take()
    }

    fn persist_state(&self, state: &ContainerState) -> Result<()> {
        let path = self.dir.join("state.json");
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        berth_image::write_atomic(&path, &bytes)
            .map_err(DaemonError::io(format!("writing {}", path.display())))
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// An image made ready to run: its snapshot, and its default entrypoint's module digest.
struct ReadyImage {
    snapshot: PathBuf,
    /// (path inside the image, sha256 hex of the module)
    entry: Option<(String, String)>,
}

/// What `build` needs besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub no_cache: bool,
}

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// `None` = all.
    pub tail: Option<usize>,
    pub since: Option<i64>,
}

/// The daemon: containers, images, and the runtime that runs them.
pub struct Daemon {
    root: PathBuf,
    images: ImageStore,
    runtime: Arc<Runtime>,
    containers: RwLock<HashMap<ContainerId, Arc<Container>>>,
    ready: Mutex<HashMap<Digest, Arc<ReadyImage>>>,
    /// Serialises image mutations (build commit, tag, rmi).
    image_lock: tokio::sync::Mutex<()>,
    registry: berth_registry::Registry,
    id: String,
    volumes: volumes::VolumeStore,
    networks: networks::NetworkStore,
    /// Serialises host-port allocation between concurrent starts.
    port_lock: Mutex<()>,
    /// `create` request to container committed, for `/berth/stats`.
    create_latency: berth_runtime::latency::LatencyRecorder,
    /// Set by [`Daemon::shutdown`]: exits no longer trigger restart policies.
    shutting_down: AtomicBool,
    /// Pulls in progress, by reference: a second pull of the same image joins the first.
    pulls: transfer::InFlightPulls,
}

/// How a container is being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartKind {
    /// By the user (or the daemon starting): resets the restart count and the manual-stop flag.
    Manual,
    /// By its restart policy after a backoff; only if that restart is still the pending one.
    Policy { generation: u64 },
}

impl Daemon {
    /// Opens the data root, reconciles leftovers of a crash and loads containers.
    pub fn open(config: DaemonConfig) -> Result<Arc<Self>> {
        let root = config.data_root.clone();
        for d in ["containers", "snapshots", "images", "buildcache"] {
            std::fs::create_dir_all(root.join(d)).map_err(DaemonError::io(format!(
                "creating {}",
                root.join(d).display()
            )))?;
        }
        remove_stale_temp_files(&root);
        let content = ContentStore::open(root.join("content"))?;
        let images = ImageStore::open(content, &root.join("images"))?;
        unpack::clean_snapshots(&root.join("snapshots"));
        let mut rt_config = RuntimeConfig::new(root.join("compiled"));
        rt_config.max_instances = config.max_instances;
        let runtime = Runtime::new(rt_config)?;
        let id_path = root.join("daemon-id");
        let id = match std::fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = ContainerId::generate().to_string();
                berth_image::write_atomic(&id_path, id.as_bytes())
                    .map_err(DaemonError::io(format!("writing {}", id_path.display())))?;
                id
            }
        };
        let volumes = volumes::VolumeStore::open(root.join("volumes"))?;
        let networks = networks::NetworkStore::open(root.join("networks.json"), &id)?;
        let daemon = Arc::new(Self {
            volumes,
            networks,
            port_lock: Mutex::new(()),
            create_latency: Default::default(),
            shutting_down: AtomicBool::new(false),
            pulls: Default::default(),
            root,
            images,
            runtime,
            containers: RwLock::new(HashMap::new()),
            ready: Mutex::new(HashMap::new()),
            image_lock: tokio::sync::Mutex::new(()),
            registry: berth_registry::Registry::new(berth_registry::RegistryConfig {
                insecure: config.insecure_registries.clone(),
            }),
            id,
        });
        let to_start = daemon.load_containers()?;
        daemon.start_at_daemon_start(to_start);
        Ok(daemon)
    }

    /// Starts the containers whose restart policy brings them back when the daemon starts
    /// (needs a Tokio runtime, which berthd has; without one they stay exited).
    fn start_at_daemon_start(self: &Arc<Self>, containers: Vec<Arc<Container>>) {
        if containers.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime: restart policies are not applied at start");
            return;
        };
        for c in containers {
            let this = self.clone();
            handle.spawn(async move {
                tracing::info!(id = %c.spec.id, "starting container (restart policy)");
                match this.start_container(&c, StartKind::Manual).await {
                    Ok(()) | Err(DaemonError::NotModified(_)) => {}
                    Err(e) => {
                        tracing::warn!(id = %c.spec.id, error = %e, "restart at daemon start failed");
                        let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
                        if st.status == Status::Exited {
                            st.error = format!("restart at daemon start failed: {e}");
                            let _ = c.persist_state(&st);
                        }
                    }
                }
            });
        }
    }

    pub fn data_root(&self) -> &Path {
        &self.root
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Loads every container directory. A container that was running when the daemon went
    /// away is marked exited, one waiting to restart is marked exited with its last exit code;
    /// an auto-remove container that is not running is removed. Returns the containers whose
    /// restart policy starts them now.
    fn load_containers(&self) -> Result<Vec<Arc<Container>>> {
        let mut to_start = Vec::new();
        let dir = self.containers_dir();
        let entries = std::fs::read_dir(&dir)
            .map_err(DaemonError::io(format!("reading {}", dir.display())))?;
        for entry in entries.flatten() {
            let cdir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(&cdir);
                continue;
            }
            if ContainerId::try_from(name.clone()).is_err() {
                continue;
            }
            remove_temp_files_in(&cdir);
            let spec: ContainerSpec = read_state_file(&cdir, "config.json")?
                .ok_or_else(|| corrupt_state(&cdir.join("config.json"), "missing"))?;
            let mut state: ContainerState =
                read_state_file(&cdir, "state.json")?.unwrap_or_default();
            let logs = LogWriter::open(
                &cdir.join(format!("{}-json.log", spec.id)),
                LogWriter::rotation_of(spec.log_max_size, spec.log_max_files),
            )
            .map_err(DaemonError::io("opening container log"))?;
            let was_running = matches!(state.status, Status::Running | Status::Removing);
            let open_stdin = spec.open_stdin;
            if was_running {
                state.status = Status::Exited;
                state.exit_code = DAEMON_GONE_EXIT_CODE;
                state.error = "berthd stopped while the container was running".into();
                state.finished_at = Some(now_rfc3339());
            }
            let was_restarting = state.status == Status::Restarting;
            if was_restarting {
                state.status = Status::Exited;
            }
            let decision = restart::decide(
                restart::Policy::of(&spec.host_config),
                restart::Trigger::DaemonStart {
                    ever_started: state.started_at.is_some(),
                },
                state.restart_count,
                state.manually_stopped,
                None,
            );
            let (exits, _) = watch::channel(ExitEvent {
                seq: 0,
                code: state.exit_code,
                error: None,
                removed: false,
            });
            let c = Arc::new(Container {
                spec,
                dir: cdir.clone(),
                state: Mutex::new(state.clone()),
                logs,
                exits,
                kill: Mutex::new(None),
                restart_cancel: Mutex::new(None),
                stdin: Mutex::new(StdinPipe::new(open_stdin)),
            });
            if c.spec.auto_remove {
                tracing::info!(id = %c.spec.id, "removing auto-remove container left by a previous run");
                let _ = std::fs::remove_dir_all(&cdir);
                continue;
            }
            if was_running || was_restarting {
                c.persist_state(&state)?;
            }
            if decision != restart::Decision::Stay {
                to_start.push(c.clone());
            }
            self.containers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(c.spec.id.clone(), c);
        }
        Ok(to_start)
    }

    // ----- lookup -----

    /// Finds a container by full id, name, or unique id prefix.
    pub fn container(&self, key: &str) -> Result<Arc<Container>> {
        let map = self.containers.read().unwrap_or_else(|e| e.into_inner());
        let not_found = || DaemonError::NoSuchContainer(key.to_string());
        if key.is_empty() || key.len() > 256 {
            return Err(not_found());
        }
        if let Ok(id) = ContainerId::try_from(key.to_string())
            && let Some(c) = map.get(&id)
        {
            return Ok(c.clone());
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        if let Some(c) = map.values().find(|c| c.spec.name == name) {
            return Ok(c.clone());
        }
        let mut found = map.values().filter(|c| c.spec.id.as_str().starts_with(key));
        match (found.next(), found.next()) {
            (Some(c), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(DaemonError::Invalid(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(not_found()),
        }
    }

    fn all_containers(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    // ----- images made ready to run -----

    fn resolve_image(&self, name: &str) -> Result<Arc<Image>> {
        self.images.resolve(name).map_err(|e| match e {
            berth_image::images::ImageError::NotFound(_) => {
                DaemonError::NoSuchImage(name.to_string())
            }
            other => other.into(),
        })
    }

    /// Unpacks an image's snapshot and compiles its default entrypoint, once per image.
    /// Blocking: call from a blocking thread.
    fn ready_image(&self, image: &Image) -> Result<Arc<ReadyImage>> {
        if let Some(r) = self
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&image.id)
        {
            return Ok(r.clone());
        }
        let snapshot =
            unpack::snapshot(self.images.content(), &self.root.join("snapshots"), image)?;
        if !image.is_wasm() {
            return Err(DaemonError::Invalid(format!(
                "image {} is not a Wasm image (os {:?}, architecture {:?}); Berth runs only wasi/wasm images",
                image.id.short(),
                image.config.os,
                image.config.architecture
            )));
        }
        let cfg = &image.config.config;
        let argv0 = image.default_command().into_iter().next();
        let workdir = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
        let entry = match argv0 {
            Some(path) => {
                let wasm = self.compile_from(&snapshot, &workdir, &path)?;
                Some((path, wasm))
            }
            None => None,
        };
        let ready = Arc::new(ReadyImage { snapshot, entry });
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(image.id.clone(), ready.clone());
        Ok(ready)
    }

    /// Reads the module at `path` (as the guest would resolve it) from a snapshot, compiles it
    /// if needed, and returns its sha256 hex.
    fn compile_from(&self, snapshot: &Path, workdir: &str, path: &str) -> Result<String> {
        let rel = guest_path(workdir, path);
        let dir = cap_std::fs::Dir::open_ambient_dir(snapshot, cap_std::ambient_authority())
            .map_err(DaemonError::io(format!("opening {}", snapshot.display())))?;
        let meta = dir.metadata(&rel).map_err(|_| {
            DaemonError::Invalid(format!(
                "entrypoint {path:?} not found in the image: a Wasm image names its .wasm file in ENTRYPOINT or CMD"
            ))
        })?;
        if !meta.is_file() {
            return Err(DaemonError::Invalid(format!(
                "entrypoint {path:?} is not a regular file"
            )));
        }
        if meta.len() > berth_runtime::MAX_WASM_SIZE as u64 {
            return Err(DaemonError::Invalid(format!(
                "entrypoint {path:?} is {} bytes, above the limit of {} bytes",
                meta.len(),
                berth_runtime::MAX_WASM_SIZE
            )));
        }
        let bytes = dir
            .read(&rel)
            .map_err(DaemonError::io(format!("reading entrypoint {path}")))?;
        let digest = Digest::sha256_of(&bytes);
        if !self.runtime.is_compiled(digest.hex()) {
            self.runtime.compile(&bytes, digest.hex()).map_err(|e| {
                DaemonError::Invalid(format!(
                    "entrypoint {path} is not a valid WebAssembly module or component: {e}"
                ))
            })?;
        }
        Ok(digest.hex().to_string())
    }

    // ----- containers -----

    /// `POST /containers/create`.
    pub async fn create(
        self: &Arc<Self>,
        req: api::ContainerCreateRequest,
        name: Option<String>,
    ) -> Result<(ContainerId, Vec<String>)> {
        let requested_at = std::time::Instant::now();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = container::validate_name(&n)?;
                self.check_name_free(&n)?;
                n
            }
            None => self.generate_name(),
        };
        let image_name = req
            .config
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| DaemonError::Invalid("no image specified".into()))?;
        let host = req.host_config.clone().unwrap_or_default();
        let restart = host
            .restart_policy
            .as_ref()
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        let auto_remove = host.auto_remove.unwrap_or(false);
        restart::Policy::from_api(host.restart_policy.as_ref())?;
        if auto_remove && !matches!(restart.as_str(), "" | "no") {
            return Err(DaemonError::Invalid(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        let mut grants = mounts::parse(&host)?;
        let allow_outbound = host.allow_outbound.clone().unwrap_or_default();
        for a in &allow_outbound {
            OutboundTarget::parse(a).map_err(DaemonError::Invalid)?;
        }
        let nano_cpus = match host.nano_cpus {
            None | Some(0) => None,
            Some(n) => {
                let max = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
                if n < 10_000_000 || n > max * 1_000_000_000 {
                    return Err(DaemonError::Invalid(format!(
                        "Range of CPUs is from 0.01 to {max}.00, as there are only {max} CPUs available"
                    )));
                }
                Some(n as u64)
            }
        };
        let (log_max_size, log_max_files) = logs::parse_log_config(host.log_config.as_ref())?;
        let network = self.network_mode(host.network_mode.as_deref())?;
        let image = self.resolve_image(&image_name)?;
        let this = self.clone();
        let img = image.clone();
        let ready = tokio::task::spawn_blocking(move || this.ready_image(&img))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;

        let icfg = &image.config.config;
        let (entrypoint, cmd) = match &req.config.entrypoint {
            Some(ep) => {
                let ep: Vec<String> = ep.iter().filter(|s| !s.is_empty()).cloned().collect();
                (ep, req.config.cmd.clone().unwrap_or_default())
            }
            None if icfg.entrypoint.is_none() && icfg.cmd.is_none() => {
                // An artifact (e.g. the CNCF Wasm format) names no command: run its module.
                (
                    image.default_command(),
                    req.config.cmd.clone().unwrap_or_default(),
                )
            }
            None => (
                icfg.entrypoint.clone().unwrap_or_default(),
                req.config
                    .cmd
                    .clone()
                    .filter(|c| !c.is_empty())
                    .or_else(|| icfg.cmd.clone())
                    .unwrap_or_default(),
            ),
        };
        let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if args.is_empty() {
            return Err(DaemonError::Invalid(format!(
                "no command specified: image {image_name} has no ENTRYPOINT or CMD"
            )));
        }
        let working_dir = req
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| icfg.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        if !working_dir.starts_with('/') {
            return Err(DaemonError::Invalid(format!(
                "the working directory '{working_dir}' is invalid, it needs to be an absolute path"
            )));
        }
        let env = merge_env(
            icfg.env.as_deref().unwrap_or_default(),
            req.config.env.as_deref().unwrap_or_default(),
        );
        for e in &env {
            if e.contains('\0') || e.starts_with('=') {
                return Err(DaemonError::Invalid(format!(
                    "invalid environment variable: {e:?}"
                )));
            }
        }
        let wasm = match &ready.entry {
            Some((path, wasm))
                if *path == args[0]
                    && working_dir == icfg.working_dir.clone().unwrap_or_else(|| "/".into()) =>
            {
                wasm.clone()
            }
            _ => {
                let this = self.clone();
                let snapshot = ready.snapshot.clone();
                let (wd, a0) = (working_dir.clone(), args[0].clone());
                tokio::task::spawn_blocking(move || this.compile_from(&snapshot, &wd, &a0))
                    .await
                    .map_err(|e| DaemonError::Internal(e.to_string()))??
            }
        };
        // Link now, so that start never compiles or links.
        self.runtime.prepare(&wasm)?;

        let mut labels = icfg.labels.clone().unwrap_or_default();
        labels.extend(req.config.labels.clone().unwrap_or_default());
        let exposed = ports::exposed([
            icfg.exposed_ports.as_ref(),
            req.config.exposed_ports.as_ref(),
        ])?;
        let port_specs = ports::parse(&host, &exposed)?;
        if network == networks::NONE && !port_specs.is_empty() {
            return Err(DaemonError::Invalid(
                "conflicting options: port publishing and the container type network mode".into(),
            ));
        }
        // Image VOLUMEs not covered by a mount get an anonymous volume, as with Docker.
        for path in icfg
            .volumes
            .iter()
            .chain(req.config.volumes.iter())
            .flat_map(|v| v.keys())
        {
            let target = berth_runtime::normalise_guest_path(path);
            if target != "/" && !grants.iter().any(|g| g.target == target) {
                grants.push(mounts::MountSpec {
                    kind: mounts::MountKind::Volume,
                    source: String::new(),
                    target,
                    read_only: false,
                    create_source: false,
                });
            }
        }
        let this = self.clone();
        let grants = tokio::task::spawn_blocking(move || this.provision_mounts(grants))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;
        let id = ContainerId::generate();
        let spec = ContainerSpec {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            image: image_name,
            image_id: image.id.to_string(),
            manifest: image.manifest_digest.to_string(),
            wasm,
            args,
            env,
            working_dir,
            labels,
            auto_remove,
            read_only: host.readonly_rootfs.unwrap_or(false),
            open_stdin: req.config.open_stdin.unwrap_or(false),
            tty: req.config.tty.unwrap_or(false),
            memory: host.memory.filter(|m| *m > 0).map(|m| m as u64),
            config: req.config.clone(),
            host_config: host,
            mounts: grants,
            network,
            ports: port_specs,
            allow_outbound,
            exposed,
            nano_cpus,
            log_max_size,
            log_max_files,
        };
        let this = self.clone();
        let snapshot = ready.snapshot.clone();
        let container = tokio::task::spawn_blocking(move || this.materialise(spec, &snapshot))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;
        {
            let mut map = self.containers.write().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = map.values().find(|c| c.spec.name == name) {
                let err = DaemonError::NameInUse {
                    name: name.clone(),
                    id: other.spec.id.to_string(),
                };
                drop(map);
                let _ = std::fs::remove_dir_all(&container.dir);
                return Err(err);
            }
            map.insert(id.clone(), container);
        }
        tracing::debug!(%id, %name, "container created");
        self.create_latency.record(requested_at.elapsed());
        Ok((id, Vec::new()))
    }

    /// Writes a new container's directory: rootfs copy, config, state, log. Blocking.
    fn materialise(&self, spec: ContainerSpec, snapshot: &Path) -> Result<Arc<Container>> {
        let final_dir = self.containers_dir().join(spec.id.as_str());
        let tmp = self.containers_dir().join(format!(".tmp-{}", spec.id));
        let result = (|| -> Result<()> {
            std::fs::create_dir_all(&tmp)
                .map_err(DaemonError::io("creating the container directory"))?;
            if !spec.read_only {
                unpack::copy_tree(snapshot, &tmp.join("rootfs")).map_err(DaemonError::io(
                    "writing the container's root filesystem (a copy of the image's)",
                ))?;
                let root = cap_std::fs::Dir::open_ambient_dir(
                    tmp.join("rootfs"),
                    cap_std::ambient_authority(),
                )
                .map_err(DaemonError::io("opening the container's root filesystem"))?;
                for m in &spec.mounts {
                    let rel = guest_path("/", &m.target);
                    root.create_dir_all(&rel).map_err(|e| {
                        DaemonError::Invalid(format!(
                            "cannot create mount point {} in the container root: {e}",
                            m.target
                        ))
                    })?;
                }
                let wd = guest_path("/", &spec.working_dir);
                if !wd.as_os_str().is_empty() {
                    root.create_dir_all(&wd).map_err(|e| {
                        DaemonError::Invalid(format!(
                            "cannot create working directory {}: {e}",
                            spec.working_dir
                        ))
                    })?;
                }
            }
            let config = serde_json::to_vec_pretty(&spec).unwrap_or_default();
            berth_image::write_atomic(&tmp.join("config.json"), &config)
                .map_err(DaemonError::io("writing the container config"))?;
            let state = serde_json::to_vec_pretty(&initial_state(&spec)).unwrap_or_default();
            berth_image::write_atomic(&tmp.join("state.json"), &state)
                .map_err(DaemonError::io("writing the container state"))?;
            std::fs::rename(&tmp, &final_dir)
                .map_err(DaemonError::io("committing the container directory"))?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let logs = LogWriter::open(
            &final_dir.join(format!("{}-json.log", spec.id)),
            LogWriter::rotation_of(spec.log_max_size, spec.log_max_files),
        )
        .map_err(DaemonError::io("creating container log"))?;
        let (exits, _) = watch::channel(ExitEvent::default());
        let stdin = StdinPipe::new(spec.open_stdin);
        let state = initial_state(&spec);
        Ok(Arc::new(Container {
            spec,
            dir: final_dir,
            state: Mutex::new(state),
            logs,
            exits,
            kill: Mutex::new(None),
            restart_cancel: Mutex::new(None),
            stdin: Mutex::new(stdin),
        }))
    }

    fn check_name_free(&self, name: &str) -> Result<()> {
        let map = self.containers.read().unwrap_or_else(|e| e.into_inner());
        match map.values().find(|c| c.spec.name == name) {
            Some(c) => Err(DaemonError::NameInUse {
                name: name.to_string(),
                id: c.spec.id.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn generate_name(&self) -> String {
        for attempt in 0..100 {
            let n = container::random_name(attempt);
            if self.check_name_free(&n).is_ok() {
                return n;
            }
        }
        format!("berth_{}", &ContainerId::generate().as_str()[..12])
    }

    /// `GET /berth/stats`: create latency and start-to-guest-entry latency percentiles over
    /// the last samples; `reset` forgets them after reading.
    pub fn stats(&self, reset: bool) -> serde_json::Value {
        let out = serde_json::json!({
            "create": self.create_latency.percentiles(),
            "start_to_entry": self.runtime.entry_latency().percentiles(),
        });
        if reset {
            self.create_latency.clear();
            self.runtime.entry_latency().clear();
        }
        out
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.container(key)?;
        self.start_container(&c, StartKind::Manual).await
    }

    /// Starts a container. A policy start that is no longer the pending restart (cancelled by
    /// `stop`, `kill` or `rm -f`) does nothing.
    async fn start_container(self: &Arc<Self>, c: &Arc<Container>, kind: StartKind) -> Result<()> {
        let requested_at = std::time::Instant::now();
        let key = c.spec.id.as_str();
        let prepared = self.runtime.prepare(&c.spec.wasm)?;
        let egress = Self::egress_policy(&c.spec.allow_outbound).await?;
        let root_dir = if c.spec.read_only {
            self.ready_snapshot(c)?
        } else {
            c.rootfs()
        };
        let (kill_tx, kill_rx) = oneshot::channel::<i32>();
        let (stdin_reader, mounts, network) = {
            let _ports = self.port_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
            match kind {
                StartKind::Manual => match st.status.check_start() {
                    Ok(()) => {}
                    Err(Refusal::AlreadyInState) => {
                        return Err(DaemonError::NotModified(key.to_string()));
                    }
                    Err(Refusal::Conflict(m)) => return Err(DaemonError::Conflict(m.into())),
                },
                StartKind::Policy { generation } => {
                    if st.status != Status::Restarting || st.restart_gen != generation {
                        return Ok(());
                    }
                }
            }
            for n in &st.networks {
                self.networks.find(n).map_err(|_| {
                    DaemonError::NotFoundMessage(format!(
                        "network {n} not found: it was removed; disconnect the container from it"
                    ))
                })?;
            }
            let mounts = self.mount_dirs(c)?;
            let ports = self.allocate_ports(c)?;
            let network = Self::container_net(c, st.networks.clone(), &ports, egress);
            // The new state is recorded on disk before it is taken in memory: a start that
            // cannot write it (a full disk) fails and leaves the container as it was.
            let mut next = st.clone();
            next.ports = ports;
            if kind == StartKind::Manual {
                next.restart_count = 0;
                next.manually_stopped = false;
                next.backoff = None;
            }
            next.restart_gen += 1;
            next.status = Status::Running;
            next.started_at = Some(now_rfc3339());
            next.finished_at = None;
            next.exit_code = 0;
            next.error.clear();
            next.oom_killed = false;
            if let Err(e) = c.persist_state(&next) {
                Self::clear_tmpfs(c);
                return Err(e);
            }
            *st = next;
            *c.kill.lock().unwrap_or_else(|e| e.into_inner()) = Some(kill_tx);
            c.logs.set_open(true);
            let mut pipe = c.stdin.lock().unwrap_or_else(|e| e.into_inner());
            if c.spec.open_stdin && pipe.reader.is_none() {
                *pipe = StdinPipe::new(true);
            }
            let stdin = pipe
                .reader
                .take()
                .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>);
            (stdin, mounts, network)
        };
        let spec = RunSpec {
            args: c.spec.args.clone(),
            env: c
                .spec
                .env
                .iter()
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: c.spec.working_dir.clone(),
            root: Some(RootDir {
                host_path: root_dir,
                read_only: c.spec.read_only,
            }),
            mounts,
            network,
            http_port: c
                .spec
                .exposed
                .iter()
                .filter_map(|e| e.strip_suffix("/tcp"))
                .find_map(|p| p.parse().ok())
                .unwrap_or(80),
            stdin: stdin_reader,
            output: Arc::new(LogSink(c.clone())),
            memory_limit: c.spec.memory.map(|m| m as usize),
            cpus: c.spec.nano_cpus.map(|n| n as f64 / 1e9),
            requested_at: Some(requested_at),
        };
        let runtime = self.runtime.clone();
        let this = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                outcome = runtime.run(&prepared, spec) => outcome,
                Ok(signal) = kill_rx => Outcome::Exited(128 + signal),
            };
            this.on_exit(&c, outcome).await;
        });
        Ok(())
    }

    fn ready_snapshot(&self, c: &Container) -> Result<PathBuf> {
        let manifest: Digest =
            c.spec.manifest.parse().map_err(|_| {
                DaemonError::Internal("bad manifest digest in container config".into())
            })?;
        let image = self.images.get(&manifest)?;
        Ok(self.ready_image(&image)?.snapshot.clone())
    }

    async fn on_exit(self: &Arc<Self>, c: &Arc<Container>, outcome: Outcome) {
        let code = outcome.exit_code() as i64;
        let (error, oom) = match &outcome {
            Outcome::Exited(_) => (String::new(), false),
            Outcome::Trapped { message, oom } => (message.clone(), *oom),
            Outcome::Failed(m) => (m.clone(), false),
        };
        tracing::debug!(id = %c.spec.id, code, "container exited");
        let restart = {
            let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
            let finished = chrono::Utc::now();
            let ran_for = st
                .started_at
                .as_deref()
                .and_then(parse_time)
                .and_then(|t| (finished - t).to_std().ok())
                .unwrap_or_default();
            let decision = if self.shutting_down.load(Ordering::SeqCst) {
                restart::Decision::Stay
            } else {
                restart::decide(
                    restart::Policy::of(&c.spec.host_config),
                    restart::Trigger::Exit { code, ran_for },
                    st.restart_count,
                    st.manually_stopped,
                    st.backoff,
                )
            };
            st.exit_code = code;
            st.error = error.clone();
            st.oom_killed = oom;
            st.finished_at = Some(finished.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            st.ports.clear();
            st.restart_gen += 1;
            let restart = match decision {
                restart::Decision::Restart { delay } => {
                    st.status = Status::Restarting;
                    st.restart_count += 1;
                    st.backoff = Some(delay);
                    Some((delay, st.restart_gen))
                }
                restart::Decision::Stay => {
                    st.status = Status::Exited;
                    None
                }
            };
            if let Err(e) = c.persist_state(&st) {
                tracing::error!(id = %c.spec.id, error = %e, "cannot persist container state");
            }
            restart
        };
        c.kill.lock().unwrap_or_else(|e| e.into_inner()).take();
        Self::clear_tmpfs(c);
        // A fresh stdin for the next start.
        *c.stdin.lock().unwrap_or_else(|e| e.into_inner()) = StdinPipe::new(c.spec.open_stdin);
        c.logs.set_open(false);
        // As Docker: `wait` reports an error only when the guest could not run at all; a trap
        // is an exit with a code, and its reason is in inspect's State.Error.
        let wait_error = matches!(outcome, Outcome::Failed(_)).then_some(error);
        c.exits.send_modify(|ev| {
            ev.seq += 1;
            ev.code = code;
            ev.error = wait_error;
        });
        if let Some((delay, generation)) = restart {
            self.schedule_restart(c, delay, generation);
        }
        if c.spec.auto_remove
            && let Err(e) = self
                .remove_with_volumes(c.spec.id.as_str(), true, true)
                .await
        {
            tracing::warn!(id = %c.spec.id, error = %e, "auto-remove failed");
        }
    }

    /// Starts `c` again after `delay` unless the restart is cancelled first (status no longer
    /// `restarting`, or another generation).
    fn schedule_restart(self: &Arc<Self>, c: &Arc<Container>, delay: Duration, generation: u64) {
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        *c.restart_cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel_tx);
        let this = self.clone();
        let c = c.clone();
        tracing::debug!(id = %c.spec.id, ?delay, "restarting container after backoff");
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel_rx => return,
            }
            if this.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = this
                .start_container(&c, StartKind::Policy { generation })
                .await
            {
                tracing::warn!(id = %c.spec.id, error = %e, "restart failed");
                let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
                if st.status == Status::Restarting && st.restart_gen == generation {
                    st.status = Status::Exited;
                    st.restart_gen += 1;
                    st.error = format!("restart failed: {e}");
                    if let Err(e) = c.persist_state(&st) {
                        tracing::error!(id = %c.spec.id, error = %e, "cannot persist container state");
                    }
                    drop(st);
                    c.exits.send_modify(|ev| ev.seq += 1);
                }
            }
        });
    }

    /// A manual `stop`, `kill` or `rm -f`: suspends the restart policy until the next manual
    /// start and cancels a pending restart. Returns whether the guest is running (and needs
    /// the signal).
    fn suspend_policy(&self, c: &Container) -> bool {
        let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
        if !self.shutting_down.load(Ordering::SeqCst) {
            st.manually_stopped = true;
        }
        let cancelled = st.status == Status::Restarting;
        if cancelled {
            st.status = Status::Exited;
            st.restart_gen += 1;
        }
        if let Err(e) = c.persist_state(&st) {
            tracing::error!(id = %c.spec.id, error = %e, "cannot persist container state");
        }
        let running = st.status == Status::Running;
        drop(st);
        c.restart_cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if cancelled {
            // As Docker: waiters for `not-running` see the stop of a restarting container.
            c.exits.send_modify(|ev| ev.seq += 1);
        }
        running
    }

    /// Signals a running container and waits until it has exited.
    async fn signal_and_wait(&self, c: &Arc<Container>, signal: i32) {
        let mut rx = c.exits.subscribe();
        let seq = rx.borrow().seq;
        if c.state().status != Status::Running {
            return;
        }
        let sender = c.kill.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(tx) = sender {
            let _ = tx.send(signal);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|e| e.seq > seq)).await;
    }

    /// `POST /containers/{id}/stop`. A Wasm guest cannot catch signals, so the grace period
    /// is not waited: the guest is stopped at once and exits with 128 + SIGTERM.
    pub async fn stop(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.container(key)?;
        let signal = parse_signal(signal.unwrap_or("TERM"))?;
        let status = c.state().status;
        match status.check_stop() {
            Ok(()) => {}
            Err(Refusal::AlreadyInState) => return Err(DaemonError::NotModified(key.into())),
            Err(Refusal::Conflict(m)) => return Err(DaemonError::Conflict(m.into())),
        }
        if self.suspend_policy(&c) {
            self.signal_and_wait(&c, signal).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let c = self.container(key)?;
        let signal = parse_signal(signal.unwrap_or("KILL"))?;
        if !matches!(c.state().status, Status::Running | Status::Restarting) {
            return Err(DaemonError::Conflict(format!(
                "cannot kill container: {key}: container {} is not running",
                c.spec.id
            )));
        }
        if self.suspend_policy(&c) {
            self.signal_and_wait(&c, signal).await;
        }
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(key, force, false).await
    }

    /// `DELETE /containers/{id}?v=1`: also removes the anonymous volumes it used.
    pub async fn remove_with_volumes(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.container(key)?;
        loop {
            let status = c.state().status;
            match status.check_remove() {
                Ok(()) => break,
                Err(_) if matches!(status, Status::Running | Status::Restarting) && force => {
                    if self.suspend_policy(&c) {
                        self.signal_and_wait(&c, 9).await;
                    }
                }
                Err(Refusal::Conflict(m)) => {
                    return Err(DaemonError::Conflict(format!(
                        "cannot remove container \"/{}\": {m}",
                        c.spec.name
                    )));
                }
                Err(Refusal::AlreadyInState) => break,
            }
        }
        {
            let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.status == Status::Removing {
                return Err(DaemonError::Conflict(format!(
                    "removal of container {} is already in progress",
                    c.spec.id
                )));
            }
            if matches!(st.status, Status::Running | Status::Restarting) {
                return Err(DaemonError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}",
                    c.spec.name,
                    st.status.as_str()
                )));
            }
            st.status = Status::Removing;
            st.restart_gen += 1;
        }
        c.logs.close();
        let dir = c.dir.clone();
        let trash = self.containers_dir().join(format!(".tmp-rm-{}", c.spec.id));
        // Rename first so a crash mid-delete never leaves a half-removed container behind.
        let removed = tokio::task::spawn_blocking(move || {
            std::fs::rename(&dir, &trash)?;
            std::fs::remove_dir_all(&trash)
        })
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?;
        if let Err(e) = removed {
            c.state.lock().unwrap_or_else(|e| e.into_inner()).status = Status::Exited;
            return Err(DaemonError::io(format!("removing container {}", c.spec.id))(e));
        }
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&c.spec.id);
        c.exits.send_modify(|ev| ev.removed = true);
        if volumes {
            self.remove_anonymous_volumes(&c);
        }
        Ok(())
    }

    /// `POST /containers/{id}/wait`. The waiter is registered before this returns, so a
    /// container that exits right after still wakes it.
    pub fn wait(
        &self,
        key: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = api::WaitResponse> + Send + 'static> {
        let c = self.container(key)?;
        let mut rx = c.exits.subscribe();
        let start = rx.borrow_and_update().clone();
        let running = matches!(c.state().status, Status::Running | Status::Restarting);
        drop(c);
        Ok(async move {
            let done = |e: &ExitEvent| match condition {
                WaitCondition::NotRunning => !running || e.seq > start.seq || e.removed,
                WaitCondition::NextExit => e.seq > start.seq || e.removed,
                WaitCondition::Removed => e.removed,
            };
            let waited = rx.wait_for(done).await.map(|ev| ev.clone());
            // If the container is gone, report the last exit we saw.
            let ev = waited.unwrap_or_else(|_| rx.borrow().clone());
            api::WaitResponse {
                status_code: ev.code,
                error: ev.error.map(|message| api::WaitError { message }),
            }
        })
    }

    /// `GET /containers/json`.
    pub fn list(&self, all: bool) -> Vec<api::ContainerSummary> {
        let mut list: Vec<_> = self
            .all_containers()
            .into_iter()
            .map(|c| (c.spec.created.clone(), c))
            .filter(|(_, c)| {
                all || matches!(c.state().status, Status::Running | Status::Restarting)
            })
            .collect();
        list.sort_by(|a, b| b.0.cmp(&a.0));
        list.into_iter()
            .map(|(_, c)| {
                let mut s = summary(&c);
                s.mounts = self.mount_points(&c);
                s.network_settings.networks = self.network_endpoints(&c, &c.state().networks);
                s
            })
            .collect()
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, key: &str) -> Result<api::ContainerInspect> {
        let c = self.container(key)?;
        let st = c.state();
        let mut config = c.spec.config.clone();
        config.image = Some(c.spec.image.clone());
        config.env = Some(c.spec.env.clone());
        config.working_dir = Some(c.spec.working_dir.clone());
        config.labels = Some(c.spec.labels.clone());
        config.tty = Some(c.spec.tty);
        config.open_stdin = Some(c.spec.open_stdin);
        if config.cmd.as_ref().is_none_or(|v| v.is_empty()) {
            config.cmd = Some(c.spec.args[1..].to_vec());
        }
        Ok(api::ContainerInspect {
            id: c.spec.id.to_string(),
            created: c.spec.created.clone(),
            path: c.spec.args[0].clone(),
            args: c.spec.args[1..].to_vec(),
            state: api::ContainerState {
                status: st.status.as_str().into(),
                // As Docker: a restarting container counts as running.
                running: matches!(st.status, Status::Running | Status::Restarting),
                paused: false,
                restarting: st.status == Status::Restarting,
                oom_killed: st.oom_killed,
                dead: false,
                pid: 0,
                exit_code: st.exit_code,
                error: st.error.clone(),
                started_at: st
                    .started_at
                    .clone()
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                finished_at: st
                    .finished_at
                    .clone()
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
            image: c.spec.image_id.clone(),
            name: format!("/{}", c.spec.name),
            restart_count: st.restart_count,
            driver: "berth".into(),
            platform: "wasi".into(),
            log_path: c.logs.path().display().to_string(),
            config,
            host_config: c.spec.host_config.clone(),
            mounts: self.mount_points(&c),
            network_settings: api::InspectNetworkSettings {
                ports: inspect_ports(&c.spec, &st),
                networks: self.network_endpoints(&c, &st.networks),
            },
        })
    }

    // ----- images -----

    /// `GET /images/json`.
    pub fn images(&self) -> Vec<api::ImageSummary> {
        let mut out = Vec::new();
        for m in self.images.manifests() {
            let Ok(img) = self.images.get(&m) else {
                continue;
            };
            let tags: Vec<String> = self
                .images
                .names_of(&m)
                .iter()
                .map(|r| r.familiar())
                .collect();
            out.push(api::ImageSummary {
                id: img.id.to_string(),
                parent_id: String::new(),
                repo_tags: tags,
                repo_digests: self.images.repo_digests(&m),
                created: img
                    .config
                    .created
                    .as_deref()
                    .and_then(parse_time)
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                size: img.size() as i64,
                shared_size: -1,
                labels: img.config.config.labels.clone().unwrap_or_default(),
                containers: -1,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        out
    }

    /// `GET /images/{name}/json`.
    pub fn image_inspect(&self, name: &str) -> Result<api::ImageInspect> {
        let img = self.resolve_image(name)?;
        let c = &img.config.config;
        Ok(api::ImageInspect {
            id: img.id.to_string(),
            repo_tags: self
                .images
                .names_of(&img.manifest_digest)
                .iter()
                .map(|r| r.familiar())
                .collect(),
            repo_digests: self.images.repo_digests(&img.manifest_digest),
            parent: String::new(),
            comment: String::new(),
            created: img.config.created.clone().unwrap_or_default(),
            author: img.config.author.clone().unwrap_or_default(),
            config: api::ContainerConfig {
                user: c.user.clone(),
                exposed_ports: c.exposed_ports.clone(),
                env: c.env.clone(),
                cmd: c.cmd.clone(),
                working_dir: c.working_dir.clone(),
                entrypoint: c.entrypoint.clone(),
                labels: c.labels.clone(),
                stop_signal: c.stop_signal.clone(),
                ..Default::default()
            },
            architecture: img.config.architecture.clone(),
            os: img.config.os.clone(),
            size: img.size() as i64,
            root_fs: api::RootFs {
                kind: "layers".into(),
                layers: img
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect(),
            },
        })
    }

    /// `POST /images/{name}/tag`.
    pub async fn image_tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let _guard = self.image_lock.lock().await;
        let img = self.resolve_image(source)?;
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let reference = Reference::parse(&target)
            .map_err(|e| DaemonError::Invalid(format!("invalid reference format: {e}")))?;
        if reference.digest().is_some() {
            return Err(DaemonError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.images.tag(&reference, &img.manifest_digest)?;
        Ok(())
    }

    /// `DELETE /images/{name}`.
    pub async fn image_remove(&self, name: &str, force: bool) -> Result<Vec<api::ImageDeleteItem>> {
        let _guard = self.image_lock.lock().await;
        let img = self.resolve_image(name)?;
        let names = self.images.names_of(&img.manifest_digest);
        let users: Vec<Arc<Container>> = self
            .all_containers()
            .into_iter()
            .filter(|c| c.spec.manifest == img.manifest_digest.to_string())
            .collect();
        let by_name = Reference::parse(name)
            .ok()
            .filter(|r| names.iter().any(|n| n == r));
        let mut out = Vec::new();
        if let Some(r) = by_name
            && names.len() > 1
        {
            self.images.untag(&r)?;
            out.push(api::ImageDeleteItem {
                untagged: Some(r.familiar()),
                deleted: None,
            });
            return Ok(out);
        }
        if let Some(c) = users
            .iter()
            .find(|c| matches!(c.state().status, Status::Running | Status::Restarting))
        {
            return Err(DaemonError::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                img.id.short(),
                c.spec.id.short()
            )));
        }
        if !force {
            if let Some(c) = users.first() {
                return Err(DaemonError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    c.spec.id.short(),
                    img.id.short()
                )));
            }
            if names.len() > 1 {
                return Err(DaemonError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    img.id.short()
                )));
            }
        }
        for r in &names {
            self.images.untag(r)?;
            out.push(api::ImageDeleteItem {
                untagged: Some(r.familiar()),
                deleted: None,
            });
        }
        if !users.is_empty() {
            // Forced while stopped containers use it: keep the image, now dangling.
            self.images.add_dangling(&img.manifest_digest)?;
            return Ok(out);
        }
        let id = self.images.remove(&img.manifest_digest)?;
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&img.id);
        if let Some(chain) = img.chain_id() {
            let shared = self.images.manifests().iter().any(|m| {
                self.images
                    .get(m)
                    .map(|i| i.chain_id() == Some(chain.clone()))
                    .unwrap_or(false)
            });
            if !shared {
                let _ = std::fs::remove_dir_all(self.root.join("snapshots").join(chain.hex()));
            }
        }
        out.push(api::ImageDeleteItem {
            untagged: None,
            deleted: Some(id.to_string()),
        });
        Ok(out)
    }

    /// `POST /build`: builds from an (optionally gzipped) tar context, checks and compiles the
    /// entrypoint, then names the image. `progress` receives the lines `docker build` prints.
    pub async fn build(
        self: &Arc<Self>,
        context_tar: PathBuf,
        req: BuildRequest,
        progress: tokio::sync::mpsc::UnboundedSender<api::JsonMessage>,
    ) -> Result<Digest> {
        let mut tags = Vec::new();
        for t in &req.tags {
            let r = Reference::parse(t)
                .map_err(|e| DaemonError::Invalid(format!("invalid tag {t:?}: {e}")))?;
            if r.digest().is_some() {
                return Err(DaemonError::Invalid(format!(
                    "invalid tag {t:?}: tags cannot contain a digest"
                )));
            }
            tags.push(r);
        }
        let this = self.clone();
        let tx = progress.clone();
        let (manifest, image) =
            tokio::task::spawn_blocking(move || -> Result<(Digest, Arc<Image>)> {
                let ctx = tempfile::Builder::new()
                    .prefix(".build-")
                    .tempdir_in(this.root.join("buildcache"))
                    .map_err(DaemonError::io("creating build context dir"))?;
                let file = std::fs::File::open(&context_tar)
                    .map_err(DaemonError::io("reading build context"))?;
                let dir =
                    cap_std::fs::Dir::open_ambient_dir(ctx.path(), cap_std::ambient_authority())
                        .map_err(DaemonError::io("opening build context dir"))?;
                unpack::apply_tar(&dir, unpack::decompress(std::io::BufReader::new(file)))
                    .map_err(|e| match e {
                        // Writing it failed (e.g. the disk is full): not the client's fault.
                        unpack::UnpackError::Io { .. } => {
                            DaemonError::Internal(format!("writing the build context: {e}"))
                        }
                        e => DaemonError::Invalid(format!("invalid build context: {e}")),
                    })?;
                let builder = Builder::new(&this.images, this.root.join("buildcache/layers"));
                let opts = BuildOptions {
                    dockerfile: req.dockerfile.clone(),
                    build_args: req.build_args.clone(),
                    no_cache: req.no_cache,
                };
                let out = builder.build(ctx.path(), &opts, &mut |line| {
                    let _ = tx.send(api::JsonMessage::stream(line));
                })?;
                let image = this.images.get(&out.manifest)?;
                this.ready_image(&image)?;
                Ok((out.manifest, image))
            })
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;
        let _guard = self.image_lock.lock().await;
        let _ = progress.send(api::JsonMessage {
            aux: Some(serde_json::json!({ "ID": image.id.to_string() })),
            ..Default::default()
        });
        let _ = progress.send(api::JsonMessage::stream(format!(
            "Successfully built {}\n",
            image.id.short()
        )));
        if tags.is_empty() {
            self.images.add_dangling(&manifest)?;
        }
        for t in &tags {
            self.images.tag(t, &manifest)?;
            let _ = progress.send(api::JsonMessage::stream(format!(
                "Successfully tagged {}\n",
                t.familiar()
            )));
        }
        Ok(image.id.clone())
    }

    // ----- system -----

    pub fn version(&self) -> api::Version {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let git_commit = option_env!("BERTH_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string();
        api::Version {
            platform: api::VersionPlatform {
                name: "Berth".into(),
            },
            version: version.clone(),
            api_version: api::API_VERSION.into(),
            min_api_version: api::MIN_API_VERSION.into(),
            git_commit: git_commit.clone(),
            go_version: "n/a (Rust)".into(),
            os: std::env::consts::OS.into(),
            arch: go_arch().into(),
            kernel_version: kernel_version(),
            build_time: String::new(),
            experimental: false,
            components: vec![
                api::VersionComponent {
                    name: "Engine".into(),
                    version: version.clone(),
                    details: [
                        ("ApiVersion", api::API_VERSION.to_string()),
                        ("MinAPIVersion", api::MIN_API_VERSION.to_string()),
                        ("Os", std::env::consts::OS.to_string()),
                        ("Arch", go_arch().to_string()),
                        ("GitCommit", git_commit.clone()),
                        ("GoVersion", "n/a (Rust)".to_string()),
                        ("KernelVersion", kernel_version()),
                        ("BuildTime", String::new()),
                        ("Experimental", "false".to_string()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                },
                api::VersionComponent {
                    name: "wasmtime".into(),
                    version: "48.0.8".into(),
                    details: BTreeMap::new(),
                },
            ],
        }
    }

    pub fn info(&self) -> api::Info {
        let containers = self.all_containers();
        let running = containers
            .iter()
            .filter(|c| c.state().status == Status::Running)
            .count() as i64;
        api::Info {
            id: self.id.clone(),
            name: hostname(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            operating_system: std::env::consts::OS.into(),
            os_type: "wasi".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
            mem_total: mem_total(),
            containers: containers.len() as i64,
            containers_running: running,
            containers_paused: 0,
            containers_stopped: containers.len() as i64 - running,
            images: self.images.manifests().len() as i64,
            driver: "berth-snapshot".into(),
            logging_driver: "json-file".into(),
            cgroup_driver: "none".into(),
            cgroup_version: String::new(),
            kernel_version: kernel_version(),
            docker_root_dir: self.root.display().to_string(),
            default_runtime: "wasmtime".into(),
            runtimes: [(
                "wasmtime".to_string(),
                serde_json::json!({"path": "in-process"}),
            )]
            .into(),
            index_server_address: "https://index.docker.io/v1/".into(),
            live_restore_enabled: false,
            swarm: api::Swarm {
                local_node_state: "inactive".into(),
            },
            warnings: if self.runtime.pooling() {
                Vec::new()
            } else {
                vec!["WARNING: pooling allocator unavailable; instantiation is slower".into()]
            },
        }
    }

    /// Stops every running container (berthd is shutting down).
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for c in self.all_containers() {
            // A pending restart stays `restarting` on disk; the next start applies the policy.
            c.restart_cancel
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
        }
        let running: Vec<_> = self
            .all_containers()
            .into_iter()
            .filter(|c| c.state().status == Status::Running)
            .collect();
        for c in running {
            self.signal_and_wait(&c, 15).await;
        }
    }
}

/// Removes what a crash can leave half-written outside the content store, snapshots and
/// volumes (which clean their own): `write_atomic` temp files (`.tmp-*`) in the data root,
/// `images/` and `buildcache/`, and `save` temp files (`.tmp*`) in the data root. `compiled/`
/// is left alone: its entries are written atomically and it may be shared.
fn remove_stale_temp_files(root: &Path) {
    remove_temp_files_in(root);
    remove_temp_files_in(&root.join("images"));
    remove_temp_files_in(&root.join("buildcache"));
    remove_temp_files_in(&root.join("buildcache").join("layers"));
}

/// Removes the regular files named `.tmp*` directly in `dir`.
fn remove_temp_files_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && e.file_name().to_string_lossy().starts_with(".tmp") {
            tracing::info!(path = %e.path().display(), "removing unfinished write");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The error for a container state file that cannot be used: it names the file and says how
/// to get past it, and stops the daemon rather than dropping the container silently.
fn corrupt_state(path: &Path, why: impl std::fmt::Display) -> DaemonError {
    let dir = path.parent().unwrap_or(path);
    DaemonError::Internal(format!(
        "state file {} is unusable: {why}; move the directory {} away to drop the object it describes",
        path.display(),
        dir.display()
    ))
}

/// Reads and parses `dir/name`; `None` if it does not exist.
pub(crate) fn read_state_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt_state(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(corrupt_state(&path, e)),
    }
}

/// Output sink that appends to a container's log.
struct LogSink(Arc<Container>);

impl berth_runtime::OutputSink for LogSink {
    fn write(&self, stream: berth_runtime::StreamKind, data: &[u8]) {
        berth_runtime::OutputSink::write(&self.0.logs, stream, data);
    }
}

/// `argv[0]` or a working directory as a path relative to the container root:
/// relative paths resolve against `workdir`, `..` is clamped at `/`.
pub(crate) fn guest_path(workdir: &str, path: &str) -> PathBuf {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{workdir}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.iter().collect()
}

/// `NetworkSettings.Ports`: every exposed or published port; the host bindings while running.
fn inspect_ports(
    spec: &ContainerSpec,
    st: &ContainerState,
) -> BTreeMap<String, Option<Vec<api::PortBinding>>> {
    let mut out: BTreeMap<String, Option<Vec<api::PortBinding>>> =
        spec.exposed.iter().map(|e| (e.clone(), None)).collect();
    for p in &spec.ports {
        out.entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None);
    }
    for p in &st.ports {
        out.entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(api::PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.to_string(),
            });
    }
    out
}

/// `Ports` of `ps`: published ports with their host side, exposed ones without.
fn summary_ports(spec: &ContainerSpec, st: &ContainerState) -> Vec<api::Port> {
    let mut out: Vec<api::Port> = st
        .ports
        .iter()
        .map(|p| api::Port {
            ip: Some(p.host_ip.clone()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            kind: p.proto.clone(),
        })
        .collect();
    for e in &spec.exposed {
        if let Ok((port, proto)) = ports::parse_port_key(e)
            && !out
                .iter()
                .any(|p| p.private_port == port && p.kind == proto)
        {
            out.push(api::Port {
                ip: None,
                private_port: port,
                public_port: None,
                kind: proto,
            });
        }
    }
    out
}

/// A new container's state: created, on its network.
fn initial_state(spec: &ContainerSpec) -> ContainerState {
    ContainerState {
        networks: if spec.network == networks::NONE {
            Vec::new()
        } else {
            vec![spec.network.clone()]
        },
        ..ContainerState::default()
    }
}

/// Image env overridden by request env: `K=V` sets, a bare `K` unsets (as Docker).
fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    let mut out: Vec<String> = image.to_vec();
    for e in request {
        let k = key(e);
        out.retain(|x| key(x) != k);
        if e.contains('=') {
            out.push(e.clone());
        }
    }
    out
}

fn summary(c: &Container) -> api::ContainerSummary {
    let st = c.state();
    let now = chrono::Utc::now();
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(parse_time)
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default()
    };
    let status = match st.status {
        Status::Created => "Created".to_string(),
        Status::Running => format!("Up {}", api::human_duration(since(&st.started_at))),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            api::human_duration(since(&st.finished_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            api::human_duration(since(&st.finished_at))
        ),
        Status::Removing => "Removal In Progress".to_string(),
    };
    api::ContainerSummary {
        id: c.spec.id.to_string(),
        names: vec![format!("/{}", c.spec.name)],
        image: c.spec.image.clone(),
        image_id: c.spec.image_id.clone(),
        command: c.spec.args.join(" "),
        created: parse_time(&c.spec.created)
            .map(|t| t.timestamp())
            .unwrap_or(0),
        ports: summary_ports(&c.spec, &st),
        labels: c.spec.labels.clone(),
        state: st.status.as_str().into(),
        status,
        host_config: api::SummaryHostConfig {
            network_mode: match c.spec.network.as_str() {
                "bridge" => "default".into(),
                other => other.into(),
            },
        },
        network_settings: api::SummaryNetworkSettings::default(),
        mounts: Vec::new(),
    }
}

/// The architecture under Go's name, which Docker clients print (`amd64`, `arm64`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "berth".into())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides_and_unsets() {
        let image = vec!["A=1".to_string(), "B=2".to_string()];
        let req = vec!["A=9".to_string(), "B".to_string(), "C=3".to_string()];
        assert_eq!(merge_env(&image, &req), vec!["A=9", "C=3"]);
    }

    #[test]
    fn guest_paths_clamp_at_root() {
        assert_eq!(guest_path("/app", "x.wasm"), PathBuf::from("app/x.wasm"));
        assert_eq!(guest_path("/app", "/x.wasm"), PathBuf::from("x.wasm"));
        assert_eq!(
            guest_path("/", "../../etc/passwd"),
            PathBuf::from("etc/passwd")
        );
    }

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn wait_conditions_parse() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("next-exit").unwrap(),
            WaitCondition::NextExit
        );
        assert!(WaitCondition::parse("bogus").is_err());
    }
}

/// A stream of framed (multiplexed) output chunks for `logs` and `attach`.
pub type OutputStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = bytes::Bytes> + Send>>;

/// When an output stream ends.
#[derive(Clone, Copy)]
enum StreamEnd {
    /// Plain `logs`: at the end of what is written now.
    Now,
    /// `logs -f`: when the log is closed (the guest is not running) and drained.
    WhenClosed,
    /// `attach`: after the next exit (or removal) and drained.
    AfterExit(u64),
}

impl Daemon {
    /// `GET /containers/{id}/logs`.
    pub fn logs(&self, key: &str, opts: LogsOptions) -> Result<OutputStream> {
        let c = self.container(key)?;
        let offset = match opts.tail {
            Some(n) => logs::tail_offset(c.logs.path(), n)
                .map_err(DaemonError::io("reading container log"))?,
            None => 0,
        };
        let end = if opts.follow {
            StreamEnd::WhenClosed
        } else {
            StreamEnd::Now
        };
        output_stream(&c, offset, end, opts)
    }

    /// `POST /containers/{id}/attach`: output from now until the next exit, plus the guest's
    /// stdin if asked for and open.
    pub fn attach(
        &self,
        key: &str,
        stdout: bool,
        stderr: bool,
    ) -> Result<(OutputStream, Arc<Container>)> {
        let c = self.container(key)?;
        let seq = c.exits.borrow().seq;
        let offset = c.logs.state().len;
        let opts = LogsOptions {
            follow: true,
            stdout,
            stderr,
            ..Default::default()
        };
        let stream = output_stream(&c, offset, StreamEnd::AfterExit(seq), opts)?;
        Ok((stream, c))
    }
}

fn output_stream(
    c: &Arc<Container>,
    offset: u64,
    end: StreamEnd,
    opts: LogsOptions,
) -> Result<OutputStream> {
    let mut reader = logs::LogReader::open(c.logs.path(), offset)
        .map_err(DaemonError::io("reading container log"))?;
    reader.generation = c.logs.state().generation;
    struct S {
        path: PathBuf,
        reader: logs::LogReader,
        logs: watch::Receiver<logs::LogState>,
        exits: watch::Receiver<ExitEvent>,
        end: StreamEnd,
        opts: LogsOptions,
        finished: bool,
    }
    let s = S {
        path: c.logs.path().to_path_buf(),
        reader,
        logs: c.logs.subscribe(),
        exits: c.exits.subscribe(),
        end,
        opts,
        finished: false,
    };
    let stream = futures_util::stream::unfold(s, |mut s| async move {
        loop {
            if s.finished {
                return None;
            }
            let st = *s.logs.borrow_and_update();
            let ended = match s.end {
                StreamEnd::Now => true,
                StreamEnd::WhenClosed => !st.open,
                StreamEnd::AfterExit(seq) => {
                    let ev = s.exits.borrow_and_update();
                    ev.seq > seq || ev.removed
                }
            };
            // The writer rotated: finish the old file (still open here), then follow the new.
            let rotated = s.reader.generation != st.generation;
            let limit = if rotated { u64::MAX } else { st.len };
            let mut out = Vec::new();
            while out.len() < 256 * 1024 {
                match s.reader.next_record(limit) {
                    Ok(Some(rec)) => {
                        let id = rec.stream_id();
                        let wanted = if id == berth_api::stream::STDERR {
                            s.opts.stderr
                        } else {
                            s.opts.stdout
                        };
                        let after_since = s.opts.since.is_none_or(|since| {
                            parse_time(&rec.time).is_none_or(|t| t.timestamp() >= since)
                        });
                        if wanted && after_since {
                            let payload = if s.opts.timestamps {
                                format!("{} {}", rec.time, rec.log)
                            } else {
                                rec.log
                            };
                            out.extend(berth_api::stream::frame(id, payload.as_bytes()));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "log read failed");
                        s.finished = true;
                        break;
                    }
                }
            }
            if !out.is_empty() {
                return Some((bytes::Bytes::from(out), s));
            }
            if rotated {
                match logs::LogReader::open(&s.path, 0) {
                    Ok(mut r) => {
                        r.generation = st.generation;
                        s.reader = r;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reopen rotated log");
                        return None;
                    }
                }
            }
            let drained = s.reader.offset() >= st.len;
            if s.finished || (ended && drained) {
                return None;
            }
            if drained {
                tokio::select! {
                    r = s.logs.changed() => if r.is_err() { s.finished = true },
                    r = s.exits.changed() => if r.is_err() { s.finished = true },
                }
            }
        }
    });
    Ok(Box::pin(stream))
}
