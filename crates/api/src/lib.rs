//! Wire types of the Berth API: the subset of the Docker Engine API (v1.44) that berthd serves.
//!
//! The daemon produces these types and the `berth` client consumes them, so both sides agree on
//! field names by construction. Field names follow Docker's JSON (PascalCase); every field that
//! Docker's swagger marks `required` is always serialised, because SDKs such as bollard refuse
//! responses without them. Request types accept `null` and missing fields everywhere, since the
//! docker CLI sends the full structure with many nulls.
//!
//! Start with [`ContainerCreateRequest`], [`ContainerInspect`] and [`JsonMessage`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API version berthd advertises in `/version`, `/_ping` and every response header.
pub const API_VERSION: &str = "1.44";
/// The oldest API version clients may speak; berthd never rejects a version prefix.
pub const MIN_API_VERSION: &str = "1.24";

/// Docker's error body: `{"message": "..."}`, sent with `Content-Type: application/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// `Config` of a container (create body and `inspect .Config`) and of an image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub domainname: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub attach_stdin: Option<bool>,
    #[serde(default)]
    pub attach_stdout: Option<bool>,
    #[serde(default)]
    pub attach_stderr: Option<bool>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub tty: Option<bool>,
    #[serde(default)]
    pub open_stdin: Option<bool>,
    #[serde(default)]
    pub stdin_once: Option<bool>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    /// Anonymous volumes (`{"/data": {}}`), as the docker CLI sends `-v /data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
}

/// `HostConfig` of a container. Only the fields Berth acts on are typed; the rest is ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default)]
    pub auto_remove: Option<bool>,
    #[serde(default)]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub binds: Option<Vec<String>>,
    #[serde(default)]
    pub readonly_rootfs: Option<bool>,
    #[serde(default)]
    pub memory: Option<i64>,
    /// `"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`; `null` or `[]` publishes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    /// `-P`: publish every exposed port on an ephemeral host port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_all_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// Guest path to options (`size=...`), as `--tmpfs /path[:opts]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--cpus` in units of 10^-9 CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// `--log-driver` / `--log-opt`; Berth has `json-file` with `max-size` and `max-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    /// Berth extension (`--allow-outbound`): `HOST[:PORT]` or `CIDR[:PORT]` the guest may
    /// connect to although the default egress policy denies it. Docker clients never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_outbound: Option<Vec<String>>,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// One entry of `HostConfig.Mounts` (`--mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// `volume`, `bind` or `tmpfs`.
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<serde_json::Value>,
}

/// One entry of `Mounts` in container inspect and list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// A volume (`GET /volumes/{name}`, `POST /volumes/create`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    pub options: BTreeMap<String, String>,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeListResponse {
    pub volumes: Vec<Volume>,
    pub warnings: Vec<String>,
}

/// Body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeCreateRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneResponse {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: i64,
}

/// A network (`GET /networks/{id}`, one entry of `GET /networks`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default)]
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
}

/// A container attached to a network, as `docker network inspect` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// Body of `POST /networks/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    pub name: String,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub internal: Option<bool>,
    #[serde(default)]
    pub attachable: Option<bool>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// `201` answer of `POST /networks/create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// Body of `POST /networks/{id}/connect` and `/disconnect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConnectRequest {
    pub container: String,
    #[serde(default)]
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub maximum_retry_count: Option<i64>,
}

/// Body of `POST /containers/create`: a container `Config` with `HostConfig` inside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub host_config: Option<HostConfig>,
}

/// `201` answer of `POST /containers/create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, serde_json::Value>,
}

/// A published or exposed port, as `ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Port {
    #[serde(rename = "IP", default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub private_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `State` of `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub log_path: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub mounts: Vec<MountPoint>,
    pub network_settings: InspectNetworkSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectNetworkSettings {
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    pub networks: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default)]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: String,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(default)]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    pub message: String,
}

/// One entry of `GET /images/json`. All nine fields are required by the swagger.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    pub os: String,
    pub size: i64,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

/// One entry of the `DELETE /images/{name}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// `GET /version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub platform: VersionPlatform,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
    pub experimental: bool,
    pub components: Vec<VersionComponent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionPlatform {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionComponent {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// `GET /info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub server_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub kernel_version: String,
    pub docker_root_dir: String,
    pub default_runtime: String,
    pub runtimes: BTreeMap<String, serde_json::Value>,
    pub index_server_address: String,
    pub live_restore_enabled: bool,
    pub swarm: Swarm,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Swarm {
    #[serde(rename = "LocalNodeState")]
    pub local_node_state: String,
}

/// One object of a JSON-lines progress stream (`/build`, `/images/create`, `/images/{name}/push`).
///
/// Docker ends each object with `\r\n`; errors after the `200` header travel in-band in
/// `error`/`errorDetail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    /// A `{"stream": ...}` line, as `docker build` prints.
    pub fn stream(text: impl Into<String>) -> Self {
        Self {
            stream: Some(text.into()),
            ..Self::default()
        }
    }

    /// An in-band error line.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error: Some(message.clone()),
            error_detail: Some(ErrorDetail { message }),
            ..Self::default()
        }
    }

    /// Serialise with Docker's `\r\n` terminator.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Stream ids of the multiplexed attach/logs framing.
pub mod stream {
    pub const STDIN: u8 = 0;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;

    /// Frame `payload` for `stream`: `[stream,0,0,0,len_be_u32] + payload`.
    pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + payload.len());
        out.push(stream);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Incremental decoder of the multiplexed framing.
    #[derive(Default)]
    pub struct Demuxer {
        buf: Vec<u8>,
    }

    impl Demuxer {
        /// Feed bytes; returns the complete frames found so far.
        pub fn push(&mut self, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
            self.buf.extend_from_slice(data);
            let mut out = Vec::new();
            loop {
                if self.buf.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
                    as usize;
                if self.buf.len() < 8 + len {
                    break;
                }
                let payload = self.buf[8..8 + len].to_vec();
                out.push((self.buf[0], payload));
                self.buf.drain(..8 + len);
            }
            out
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_round_trip_across_split_reads() {
            let mut wire = frame(STDOUT, b"hello\n");
            wire.extend(frame(STDERR, b"oops"));
            let mut d = Demuxer::default();
            let mut got = d.push(&wire[..5]);
            assert!(got.is_empty());
            got.extend(d.push(&wire[5..17]));
            got.extend(d.push(&wire[17..]));
            assert_eq!(
                got,
                vec![(STDOUT, b"hello\n".to_vec()), (STDERR, b"oops".to_vec())]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_accepts_docker_cli_nulls() {
        let body = r#"{"Hostname":"","Env":["A=1"],"Cmd":["x"],"Image":"hello:1",
            "Entrypoint":null,"Labels":{},"HostConfig":{"AutoRemove":true,"Binds":null,
            "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"ConsoleSize":[0,0]},
            "NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let req: ContainerCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.config.image.as_deref(), Some("hello:1"));
        assert_eq!(req.config.entrypoint, None);
        assert_eq!(req.host_config.unwrap().auto_remove, Some(true));
    }

    #[test]
    fn image_summary_always_has_required_fields() {
        let s = ImageSummary {
            id: "sha256:x".into(),
            parent_id: String::new(),
            repo_tags: vec![],
            repo_digests: vec![],
            created: 0,
            size: 0,
            shared_size: -1,
            labels: BTreeMap::new(),
            containers: -1,
        };
        let v = serde_json::to_value(&s).unwrap();
        for k in [
            "Id",
            "ParentId",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Size",
            "SharedSize",
            "Labels",
            "Containers",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn json_message_lines_end_with_crlf() {
        let line = JsonMessage::error("boom").to_line();
        assert!(line.ends_with(b"\r\n"));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["errorDetail"]["message"], "boom");
    }
}

/// Docker's `units.HumanDuration`: the words `ps` and `images` print for ages and uptimes.
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if days < 7 * 2 {
        format!("{days} days")
    } else if days < 30 * 3 {
        format!("{} weeks", days / 7)
    } else if days < 365 * 2 {
        format!("{} months", days / 30)
    } else {
        format!("{} years", days / 365)
    }
}

/// Where clients and the daemon look for the API socket when no `-H` is given:
/// `/run/berth/berth.sock` as root, else `$XDG_RUNTIME_DIR/berth.sock`, else
/// `/tmp/berth-<uid>/berth.sock`.
pub fn default_host() -> String {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if uid == 0 {
            return "unix:///run/berth/berth.sock".into();
        }
        match std::env::var("XDG_RUNTIME_DIR") {
            Ok(dir) if !dir.is_empty() => format!("unix://{dir}/berth.sock"),
            _ => format!("unix:///tmp/berth-{uid}/berth.sock"),
        }
    }
    #[cfg(not(unix))]
    {
        "tcp://127.0.0.1:2375".into()
    }
}

#[cfg(test)]
mod human_tests {
    use super::human_duration;
    use std::time::Duration;

    #[test]
    fn human_durations_match_docker_words() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (300, "5 minutes"),
            (3600, "About an hour"),
            (7200, "2 hours"),
            (3 * 86400, "3 days"),
            (21 * 86400, "3 weeks"),
            (120 * 86400, "4 months"),
            (800 * 86400, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }
}
