//! Containers: validated ids and names, the persisted config and state, and the lifecycle
//! state machine.

use crate::error::{DaemonError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A container id: 64 lowercase hex characters. It names the container's directory, so it is
/// validated wherever one is parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // getrandom only fails when the OS has no entropy source at all.
        getrandom::fill(&mut bytes).expect("OS random number generator unavailable");
        Self(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-character form `ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for ContainerId {
    type Error = DaemonError;
    fn try_from(s: String) -> Result<Self> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(DaemonError::Invalid(format!("invalid container id {s:?}")))
        }
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest container name accepted.
pub const MAX_NAME_LEN: usize = 253;

/// Validates a container name as Docker does (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), after stripping
/// one leading `/`.
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    if is_docker_name(n, 2, MAX_NAME_LEN) {
        Ok(n.to_string())
    } else {
        Err(DaemonError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Docker's rule for object names (containers, volumes, networks):
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, between `min` and `max` bytes.
pub fn is_docker_name(name: &str, min: usize, max: usize) -> bool {
    name.len() >= min.max(1)
        && name.len() <= max
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly",
    "keen", "lucid", "mellow", "nimble", "proud", "quiet", "rapid", "sharp", "tidy", "witty",
];
const NOUNS: &[&str] = &[
    "anchor",
    "bollard",
    "buoy",
    "capstan",
    "cleat",
    "dinghy",
    "dock",
    "ferry",
    "galley",
    "harbor",
    "jetty",
    "keel",
    "lighthouse",
    "mooring",
    "pier",
    "quay",
    "schooner",
    "sloop",
    "tug",
    "wharf",
];

/// A Docker-style generated name such as `nimble_quay`.
pub fn random_name(attempt: u32) -> String {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let base = format!(
        "{}_{}",
        ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
        NOUNS[b[1] as usize % NOUNS.len()]
    );
    if attempt > 3 {
        format!("{base}{attempt}")
    } else {
        base
    }
}

/// Lifecycle of a container. One enum, not a set of booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Exited, waiting for its restart policy's backoff before starting again.
    Restarting,
    Exited,
    Removing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Removing => "removing",
        }
    }

    /// May the container be started from this state?
    pub fn check_start(self) -> Result<(), Refusal> {
        match self {
            Self::Created | Self::Exited => Ok(()),
            // As Docker: a restarting container counts as running.
            Self::Running | Self::Restarting => Err(Refusal::AlreadyInState),
            Self::Removing => Err(Refusal::Conflict("container is marked for removal")),
        }
    }

    /// May it be stopped or killed? (Stopping a restarting container cancels the restart.)
    pub fn check_stop(self) -> Result<(), Refusal> {
        match self {
            Self::Running | Self::Restarting => Ok(()),
            Self::Created | Self::Exited => Err(Refusal::AlreadyInState),
            Self::Removing => Err(Refusal::Conflict("container is marked for removal")),
        }
    }

    /// May it be removed (without force)?
    pub fn check_remove(self) -> Result<(), Refusal> {
        match self {
            Self::Created | Self::Exited => Ok(()),
            Self::Running => Err(Refusal::Conflict(
                "container is running: stop the container before removing or force remove",
            )),
            Self::Restarting => Err(Refusal::Conflict(
                "container is restarting: stop the container before removing or force remove",
            )),
            Self::Removing => Err(Refusal::Conflict(
                "removal of container is already in progress",
            )),
        }
    }
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AlreadyInState,
    Conflict(&'static str),
}

/// What a container runs, fixed at create. Persisted as `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: ContainerId,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub manifest: String,
    /// Digest (hex) of the Wasm binary that `args[0]` names.
    pub wasm: String,
    /// `args[0]` is the entrypoint path inside the container.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub auto_remove: bool,
    pub read_only: bool,
    pub open_stdin: bool,
    pub tty: bool,
    pub memory: Option<u64>,
    /// The create request's `Config` and `HostConfig`, echoed by inspect.
    pub config: berth_api::ContainerConfig,
    pub host_config: berth_api::HostConfig,
    /// Volumes (named after create, never anonymous-empty), bind mounts and tmpfs dirs.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountSpec>,
    /// `none`, `bridge` or a user-defined network name.
    #[serde(default = "default_network")]
    pub network: String,
    /// Requested port publications; a `host_port` of 0 is chosen at each start.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// `--allow-outbound` values, resolved at each start.
    #[serde(default)]
    pub allow_outbound: Vec<String>,
    /// Ports the image or request expose (`80/tcp`), shown by `ps` and used by `-P`.
    #[serde(default)]
    pub exposed: Vec<String>,
    /// `--cpus` in 10^-9 CPUs.
    #[serde(default)]
    pub nano_cpus: Option<u64>,
    /// Log rotation: `max-size` in bytes and `max-file` (json-file options).
    #[serde(default)]
    pub log_max_size: Option<u64>,
    #[serde(default)]
    pub log_max_files: Option<u32>,
}

fn default_network() -> String {
    "bridge".into()
}

/// One `-p` publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    pub host_ip: String,
    /// 0: an ephemeral port chosen at start.
    pub host_port: u16,
}

/// What a container is doing. Persisted as `state.json` at every transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: i64,
    /// Networks joined (changed by `network connect`/`disconnect`).
    #[serde(default)]
    pub networks: Vec<String>,
    /// Publications in effect while running (host ports chosen).
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Stopped or killed by hand: the restart policy is suspended until the next manual start
    /// (or, except for `unless-stopped`, the next daemon start).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Bumped whenever a scheduled restart is made or cancelled, so a stale one never fires.
    #[serde(skip)]
    pub restart_gen: u64,
    /// The backoff of the last restart (`None` after a manual start). Not persisted, as Docker.
    #[serde(skip)]
    pub backoff: Option<std::time::Duration>,
}

impl Default for ContainerState {
    fn default() -> Self {
        Self {
            status: Status::Created,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            networks: Vec::new(),
            ports: Vec::new(),
            manually_stopped: false,
            restart_gen: 0,
            backoff: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_validated() {
        let id = ContainerId::generate();
        assert_eq!(id.as_str().len(), 64);
        assert!(ContainerId::try_from(id.to_string()).is_ok());
        for bad in [
            "",
            "../../etc",
            &"A".repeat(64),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            assert!(ContainerId::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate_name("/web").unwrap(), "web");
        assert_eq!(validate_name("a.b-c_d").unwrap(), "a.b-c_d");
        for bad in ["", "/", "a", "-x", "a/b", "..", "a\0b", &"x".repeat(300)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&random_name(0)).is_ok());
    }

    #[test]
    fn transition_table() {
        use Status::*;
        let table = [
            (Created, true, false, true),
            (Running, false, true, false),
            (Restarting, false, true, false),
            (Exited, true, false, true),
            (Removing, false, false, false),
        ];
        for (s, start, stop, remove) in table {
            assert_eq!(s.check_start().is_ok(), start, "{s:?} start");
            assert_eq!(s.check_stop().is_ok(), stop, "{s:?} stop");
            assert_eq!(s.check_remove().is_ok(), remove, "{s:?} remove");
        }
        assert_eq!(Running.check_start(), Err(Refusal::AlreadyInState));
        assert_eq!(Exited.check_stop(), Err(Refusal::AlreadyInState));
        assert_eq!(Restarting.check_start(), Err(Refusal::AlreadyInState));
    }

    #[test]
    fn state_files_without_the_manual_stop_flag_still_load() {
        let old = r#"{"status":"exited","exit_code":1,"error":"","oom_killed":false,
            "started_at":null,"finished_at":null,"restart_count":2}"#;
        let st: ContainerState = serde_json::from_str(old).unwrap();
        assert!(!st.manually_stopped);
        assert_eq!(st.restart_count, 2);
        let st: ContainerState = serde_json::from_str(
            r#"{"status":"restarting","exit_code":1,"error":"","oom_killed":false,
            "started_at":null,"finished_at":null,"restart_count":1,"manually_stopped":true}"#,
        )
        .unwrap();
        assert_eq!(st.status, Status::Restarting);
        assert!(st.manually_stopped);
    }
}
