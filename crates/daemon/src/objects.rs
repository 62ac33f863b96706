//! Volumes, networks and the per-container grants built from them.

use crate::container::PortSpec;
use crate::mounts::{MountKind, MountSpec};
use crate::networks::{self, NONE};
use crate::volumes;
use crate::{
    Container, ContainerNet, Daemon, DaemonError, EgressPolicy, MountDir, OutboundRule,
    OutboundTarget, Proto, PublishedPort, Result, Status,
};
use berth_api as api;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

impl Daemon {
    // ----- grants at create -----

    /// `HostConfig.NetworkMode` → `none`, `bridge` or an existing user network's name.
    pub(crate) fn network_mode(&self, mode: Option<&str>) -> Result<String> {
        match mode.unwrap_or("") {
            "" | "default" | "bridge" => Ok(networks::BRIDGE.into()),
            "none" => Ok(NONE.into()),
            "host" => Err(DaemonError::Invalid(
                "network mode \"host\" is not supported: a Wasm guest never shares the host's network stack; publish ports with -p".into(),
            )),
            m if m.starts_with("container:") => Err(DaemonError::Invalid(
                "network mode \"container:...\" is not supported: each Berth container has its own network view".into(),
            )),
            name => Ok(self.networks.find(name)?.name),
        }
    }

    /// Creates named volumes on first use and anonymous ones, checks bind sources.
    /// Blocking. Returns the mounts with every volume named.
    pub(crate) fn provision_mounts(&self, mounts: Vec<MountSpec>) -> Result<Vec<MountSpec>> {
        let mut out = Vec::with_capacity(mounts.len());
        let mut created: Vec<String> = Vec::new();
        let result = (|| -> Result<()> {
            for mut m in mounts {
                match m.kind {
                    MountKind::Volume => {
                        let anonymous = m.source.is_empty();
                        let req = api::VolumeCreateRequest {
                            name: Some(m.source.clone()),
                            ..Default::default()
                        };
                        let (v, new) = self.volumes.create(&req, anonymous)?;
                        if new {
                            created.push(v.name.clone());
                        }
                        m.source = v.name;
                    }
                    MountKind::Bind => {
                        let path = std::path::Path::new(&m.source);
                        if m.create_source && !path.exists() {
                            std::fs::create_dir_all(path).map_err(DaemonError::io(format!(
                                "creating bind source {}",
                                m.source
                            )))?;
                        }
                        if !path.is_dir() {
                            return Err(DaemonError::Invalid(format!(
                                "invalid mount config for type \"bind\": bind source path does not exist or is not a directory: {}",
                                m.source
                            )));
                        }
                    }
                    MountKind::Tmpfs => {}
                }
                out.push(m);
            }
            Ok(())
        })();
        if let Err(e) = result {
            for name in created {
                let _ = self.volumes.remove(&name);
            }
            return Err(e);
        }
        Ok(out)
    }

    // ----- grants at start -----

    /// Host directories for a start: volumes, binds, and fresh tmpfs dirs.
    pub(crate) fn mount_dirs(&self, c: &Container) -> Result<Vec<MountDir>> {
        let tmpfs_root = c.dir.join("tmpfs");
        if c.spec.mounts.iter().any(|m| m.kind == MountKind::Tmpfs) {
            // Fresh scratch dirs, also after a crash left the last ones behind.
            let _ = std::fs::remove_dir_all(&tmpfs_root);
        }
        let mut out = Vec::new();
        for (i, m) in c.spec.mounts.iter().enumerate() {
            let host_path = match m.kind {
                MountKind::Volume => {
                    let p = self.volumes.data_path(&m.source);
                    if !p.is_dir() {
                        return Err(DaemonError::NotFoundMessage(format!(
                            "volume {} of container {} no longer exists",
                            m.source, c.spec.name
                        )));
                    }
                    p
                }
                MountKind::Bind => {
                    let p = PathBuf::from(&m.source);
                    if !p.is_dir() {
                        return Err(DaemonError::Invalid(format!(
                            "bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    p
                }
                MountKind::Tmpfs => {
                    let p = tmpfs_root.join(i.to_string());
                    std::fs::create_dir_all(&p)
                        .map_err(DaemonError::io("creating a tmpfs directory"))?;
                    p
                }
            };
            out.push(MountDir {
                host_path,
                guest_path: m.target.clone(),
                read_only: m.read_only,
            });
        }
        Ok(out)
    }

    /// Removes the container's tmpfs dirs (at exit and removal).
    pub(crate) fn clear_tmpfs(c: &Container) {
        if c.spec.mounts.iter().any(|m| m.kind == MountKind::Tmpfs) {
            let _ = std::fs::remove_dir_all(c.dir.join("tmpfs"));
        }
    }

    /// Resolves `--allow-outbound` host names now; addresses are checked again at every
    /// connect by the runtime.
    pub(crate) async fn egress_policy(spec_allow: &[String]) -> Result<EgressPolicy> {
        let mut allow = Vec::new();
        for a in spec_allow {
            match OutboundTarget::parse(a).map_err(DaemonError::Invalid)? {
                OutboundTarget::Rule(r) => allow.push(r),
                OutboundTarget::Host { host, port } => {
                    let addrs = tokio::net::lookup_host((host.as_str(), port.unwrap_or(0)))
                        .await
                        .map_err(|e| {
                            DaemonError::Invalid(format!(
                                "cannot resolve --allow-outbound host {host}: {e}"
                            ))
                        })?;
                    for addr in addrs {
                        let prefix = if addr.is_ipv4() { 32 } else { 128 };
                        allow.push(OutboundRule {
                            addr: addr.ip(),
                            prefix,
                            port,
                        });
                    }
                }
            }
        }
        Ok(EgressPolicy { allow })
    }

    /// Chooses host ports for a start, refusing ports other running containers hold.
    /// Call with `port_lock` held until the state is persisted.
    pub(crate) fn allocate_ports(&self, c: &Container) -> Result<Vec<PortSpec>> {
        if c.spec.ports.is_empty() {
            return Ok(Vec::new());
        }
        let taken: Vec<PortSpec> = self
            .all_containers()
            .iter()
            .filter(|o| o.spec.id != c.spec.id)
            .flat_map(|o| {
                let st = o.state();
                if st.status == Status::Running {
                    st.ports
                } else {
                    Vec::new()
                }
            })
            .collect();
        crate::ports::allocate(&c.spec.ports, &taken)
    }

    /// The runtime's view of a container's network for one run.
    pub(crate) fn container_net(
        c: &Container,
        networks: Vec<String>,
        ports: &[PortSpec],
        egress: EgressPolicy,
    ) -> Option<Arc<ContainerNet>> {
        if c.spec.network == NONE {
            return None;
        }
        let published = ports
            .iter()
            .filter_map(|p| {
                Some(PublishedPort {
                    container_port: p.container_port,
                    proto: if p.proto == "udp" {
                        Proto::Udp
                    } else {
                        Proto::Tcp
                    },
                    host_ip: p.host_ip.parse().ok()?,
                    host_port: p.host_port,
                })
            })
            .collect();
        Some(Arc::new(ContainerNet {
            id: c.spec.id.to_string(),
            name: c.spec.name.clone(),
            networks,
            egress,
            published,
        }))
    }

    /// Deletes the anonymous volumes a removed container used.
    pub(crate) fn remove_anonymous_volumes(&self, c: &Container) {
        for m in c.spec.mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let anonymous = self
                .volumes
                .get(&m.source)
                .is_ok_and(|v| v.labels.contains_key(volumes::ANONYMOUS_LABEL));
            if anonymous
                && self.volume_users(&m.source).is_empty()
                && let Err(e) = self.volumes.remove(&m.source)
            {
                tracing::warn!(volume = %m.source, error = %e, "cannot remove anonymous volume");
            }
        }
    }

    // ----- inspect helpers -----

    pub(crate) fn mount_points(&self, c: &Container) -> Vec<api::MountPoint> {
        c.spec
            .mounts
            .iter()
            .map(|m| {
                let (name, source, driver) = match m.kind {
                    MountKind::Volume => (
                        m.source.clone(),
                        self.volumes.data_path(&m.source).display().to_string(),
                        "local".to_string(),
                    ),
                    MountKind::Bind => (String::new(), m.source.clone(), String::new()),
                    MountKind::Tmpfs => (String::new(), String::new(), String::new()),
                };
                api::MountPoint {
                    kind: m.kind.as_str().into(),
                    name,
                    source,
                    destination: m.target.clone(),
                    driver,
                    mode: if m.read_only {
                        "ro".into()
                    } else {
                        String::new()
                    },
                    rw: !m.read_only,
                    propagation: if m.kind == MountKind::Bind {
                        "rprivate".into()
                    } else {
                        String::new()
                    },
                }
            })
            .collect()
    }

    /// `NetworkSettings.Networks` of inspect and list.
    pub(crate) fn network_endpoints(
        &self,
        c: &Container,
        networks: &[String],
    ) -> BTreeMap<String, serde_json::Value> {
        let names: Vec<String> = if c.spec.network == NONE {
            vec![NONE.into()]
        } else {
            networks.to_vec()
        };
        names
            .into_iter()
            .map(|n| {
                let id = self.networks.id_of(&n).unwrap_or_default();
                let v = serde_json::json!({
                    "NetworkID": id,
                    "EndpointID": "",
                    "Gateway": "",
                    "IPAddress": "",
                    "IPPrefixLen": 0,
                    "MacAddress": "",
                    "Aliases": null,
                });
                (n, v)
            })
            .collect()
    }

    // ----- volumes API -----

    /// Names of containers (any state) that use volume `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        self.all_containers()
            .iter()
            .filter(|c| {
                c.spec
                    .mounts
                    .iter()
                    .any(|m| m.kind == MountKind::Volume && m.source == name)
            })
            .map(|c| c.spec.id.to_string())
            .collect()
    }

    pub async fn volume_create(&self, req: api::VolumeCreateRequest) -> Result<api::Volume> {
        Ok(self.volumes.create(&req, false)?.0)
    }

    pub fn volume_list(&self, dangling: Option<bool>) -> Result<api::VolumeListResponse> {
        let volumes = self
            .volumes
            .list()?
            .into_iter()
            .filter(|v| dangling.is_none_or(|d| self.volume_users(&v.name).is_empty() == d))
            .collect();
        Ok(api::VolumeListResponse {
            volumes,
            warnings: Vec::new(),
        })
    }

    pub fn volume_inspect(&self, name: &str) -> Result<api::Volume> {
        self.volumes.get(name)
    }

    /// `DELETE /volumes/{name}`: refused while any container uses it; `force` only makes a
    /// missing volume not an error, as Docker.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        if let Err(e) = self.volumes.get(name) {
            return if force { Ok(()) } else { Err(e) };
        }
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(DaemonError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(name).map(|_| ())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused one with `all`.
    pub fn volume_prune(&self, all: bool) -> Result<api::VolumePruneResponse> {
        let mut resp = api::VolumePruneResponse::default();
        for v in self.volumes.list()? {
            if !all && !v.labels.contains_key(volumes::ANONYMOUS_LABEL) {
                continue;
            }
            if self.volume_users(&v.name).is_empty() {
                resp.space_reclaimed += self.volumes.remove(&v.name)? as i64;
                resp.volumes_deleted.push(v.name);
            }
        }
        Ok(resp)
    }

    // ----- networks API -----

    /// Running containers on network `name`, as inspect shows them.
    fn network_members(&self, name: &str) -> BTreeMap<String, api::NetworkContainer> {
        self.all_containers()
            .iter()
            .filter_map(|c| {
                let st = c.state();
                let on = if name == NONE {
                    c.spec.network == NONE
                } else {
                    st.networks.iter().any(|n| n == name)
                };
                (on && st.status == Status::Running).then(|| {
                    (
                        c.spec.id.to_string(),
                        api::NetworkContainer {
                            name: c.spec.name.clone(),
                            ..Default::default()
                        },
                    )
                })
            })
            .collect()
    }

    pub fn network_list(&self) -> Vec<api::Network> {
        self.networks
            .list()
            .into_iter()
            .map(|n| n.to_api(self.network_members(&n.name)))
            .collect()
    }

    pub fn network_inspect(&self, key: &str) -> Result<api::Network> {
        let n = self.networks.find(key)?;
        Ok(n.to_api(self.network_members(&n.name)))
    }

    pub fn network_create(
        &self,
        req: api::NetworkCreateRequest,
    ) -> Result<api::NetworkCreateResponse> {
        let n = self.networks.create(&req)?;
        Ok(api::NetworkCreateResponse {
            id: n.id,
            warning: String::new(),
        })
    }

    pub fn network_remove(&self, key: &str) -> Result<()> {
        let n = self.networks.find(key)?;
        let members = self.network_members(&n.name);
        if !n.is_predefined() && !members.is_empty() {
            return Err(DaemonError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        self.networks.remove(&n.id).map(|_| ())
    }

    pub fn network_prune(&self) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        for n in self.networks.list() {
            if !n.is_predefined() && self.network_members(&n.name).is_empty() {
                self.networks.remove(&n.id)?;
                deleted.push(n.name);
            }
        }
        Ok(deleted)
    }

    /// `POST /networks/{id}/connect` and `/disconnect`. The change applies from the
    /// container's next start: a running guest keeps the network view it started with.
    pub fn network_connect(&self, key: &str, container: &str, connect: bool) -> Result<()> {
        let n = self.networks.find(key)?;
        let c = self.container(container)?;
        if n.is_predefined() && n.name == NONE || c.spec.network == NONE {
            return Err(DaemonError::Forbidden(
                "container cannot be connected to or disconnected from network \"none\"; it has no network".into(),
            ));
        }
        let mut st = c.state.lock().unwrap_or_else(|e| e.into_inner());
        let present = st.networks.contains(&n.name);
        match (connect, present) {
            (true, true) => {
                return Err(DaemonError::Forbidden(format!(
                    "endpoint with name {} already exists in network {}",
                    c.spec.name, n.name
                )));
            }
            (false, false) => {
                return Err(DaemonError::Forbidden(format!(
                    "container {} is not connected to network {}",
                    c.spec.id, n.name
                )));
            }
            (true, false) => st.networks.push(n.name.clone()),
            (false, true) => st.networks.retain(|x| *x != n.name),
        }
        c.persist_state(&st)
    }
}
