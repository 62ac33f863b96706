//! Networks: `bridge` (the default), `none`, and user-defined networks.
//!
//! A network is a name that containers join; the runtime's network registry gives each
//! member a private address on it and resolves member names for the others. User-defined
//! networks are persisted in `<data-root>/networks.json` (atomic writes).

use crate::error::{DaemonError, Result};
use berth_api as api;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The default network: guests may reach the public internet, names do not resolve.
pub const BRIDGE: &str = "bridge";
/// No network at all.
pub const NONE: &str = "none";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: String,
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl NetworkRecord {
    pub fn is_predefined(&self) -> bool {
        self.name == BRIDGE || self.name == NONE
    }

    /// The API object; `containers` are the members (id → endpoint).
    pub fn to_api(&self, containers: BTreeMap<String, api::NetworkContainer>) -> api::Network {
        api::Network {
            name: self.name.clone(),
            id: self.id.clone(),
            created: self.created.clone(),
            scope: "local".into(),
            driver: self.driver.clone(),
            enable_ipv6: false,
            ipam: api::Ipam {
                driver: "default".into(),
                options: BTreeMap::new(),
                config: Vec::new(),
            },
            internal: self.internal,
            attachable: self.attachable,
            ingress: false,
            config_only: false,
            containers,
            options: self.options.clone(),
            labels: self.labels.clone(),
        }
    }
}

pub struct NetworkStore {
    path: PathBuf,
    predefined: Vec<NetworkRecord>,
    user: Mutex<Vec<NetworkRecord>>,
}

fn stable_id(daemon_id: &str, name: &str) -> String {
    hex::encode(Sha256::digest(format!("berth-network/{daemon_id}/{name}")))
}

/// Docker's rule for network names, with a length bound.
pub fn validate_name(name: &str) -> Result<()> {
    if crate::container::is_docker_name(name, 1, 128) {
        Ok(())
    } else {
        Err(DaemonError::Invalid(format!(
            "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            name.chars().take(80).collect::<String>()
        )))
    }
}

impl NetworkStore {
    pub fn open(path: PathBuf, daemon_id: &str) -> Result<Self> {
        let user: Vec<NetworkRecord> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                DaemonError::Internal(format!(
                    "state file {} is unusable: {e}; move it away to drop the user-defined networks",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(DaemonError::io(format!("reading {}", path.display()))(e)),
        };
        let predefined = [(BRIDGE, "bridge"), (NONE, "null")]
            .into_iter()
            .map(|(name, driver)| NetworkRecord {
                id: stable_id(daemon_id, name),
                name: name.into(),
                created: "0001-01-01T00:00:00Z".into(),
                driver: driver.into(),
                internal: false,
                attachable: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
            })
            .collect();
        Ok(Self {
            path,
            predefined,
            user: Mutex::new(user),
        })
    }

    fn save(&self, user: &[NetworkRecord]) -> Result<()> {
        let json = serde_json::to_vec_pretty(user).unwrap_or_default();
        berth_image::write_atomic(&self.path, &json)
            .map_err(DaemonError::io(format!("writing {}", self.path.display())))
    }

    pub fn list(&self) -> Vec<NetworkRecord> {
        let user = self.user.lock().unwrap_or_else(|e| e.into_inner());
        self.predefined.iter().chain(user.iter()).cloned().collect()
    }

    /// The id of the network named `name`, without copying the list (for `ps` and inspect).
    pub fn id_of(&self, name: &str) -> Option<String> {
        if let Some(n) = self.predefined.iter().find(|n| n.name == name) {
            return Some(n.id.clone());
        }
        let user = self.user.lock().unwrap_or_else(|e| e.into_inner());
        user.iter().find(|n| n.name == name).map(|n| n.id.clone())
    }

    /// By full id, name, or unique id prefix (as Docker).
    pub fn find(&self, key: &str) -> Result<NetworkRecord> {
        let all = self.list();
        if let Some(n) = all.iter().find(|n| n.id == key || n.name == key) {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkRecord> =
            if !key.is_empty() && key.len() < 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                all.iter().filter(|n| n.id.starts_with(key)).collect()
            } else {
                Vec::new()
            };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(DaemonError::NotFoundMessage(format!(
                "network {} not found",
                key.chars().take(80).collect::<String>()
            ))),
            _ => Err(DaemonError::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// `POST /networks/create`.
    pub fn create(&self, req: &api::NetworkCreateRequest) -> Result<NetworkRecord> {
        validate_name(&req.name)?;
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(DaemonError::NotFoundMessage(format!(
                "plugin \"{driver}\" not found: Berth networks use the bridge driver"
            )));
        }
        if matches!(req.name.as_str(), "host" | "default") {
            return Err(DaemonError::Forbidden(format!(
                "operation is not permitted on predefined {} network",
                req.name
            )));
        }
        let mut user = self.user.lock().unwrap_or_else(|e| e.into_inner());
        if self
            .predefined
            .iter()
            .chain(user.iter())
            .any(|n| n.name == req.name)
        {
            return Err(DaemonError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let record = NetworkRecord {
            id: crate::ContainerId::generate().to_string(),
            name: req.name.clone(),
            created: crate::now_rfc3339(),
            driver,
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            labels: req.labels.clone().unwrap_or_default(),
            options: req.options.clone().unwrap_or_default(),
        };
        let mut next = user.clone();
        next.push(record.clone());
        self.save(&next)?;
        *user = next;
        Ok(record)
    }

    /// Deletes a user-defined network; the caller checks it has no members.
    pub fn remove(&self, key: &str) -> Result<NetworkRecord> {
        let record = self.find(key)?;
        if record.is_predefined() {
            return Err(DaemonError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                record.name
            )));
        }
        let mut user = self.user.lock().unwrap_or_else(|e| e.into_inner());
        let next: Vec<NetworkRecord> = user.iter().filter(|n| n.id != record.id).cloned().collect();
        self.save(&next)?;
        *user = next;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> api::NetworkCreateRequest {
        api::NetworkCreateRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn lifecycle_persists_and_refuses_duplicates_and_predefined() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("networks.json");
        let store = NetworkStore::open(path.clone(), "d1").unwrap();
        assert_eq!(store.list().len(), 2);
        let net = store.create(&req("backend")).unwrap();
        assert!(
            matches!(store.create(&req("backend")), Err(DaemonError::Conflict(m)) if m == "network with name backend already exists")
        );
        assert!(matches!(
            store.create(&req("bridge")),
            Err(DaemonError::Conflict(_))
        ));
        assert!(store.create(&req("host")).is_err());
        assert!(store.create(&req("../x")).is_err());
        // Persisted, found by name, id and prefix.
        let again = NetworkStore::open(path.clone(), "d1").unwrap();
        assert_eq!(again.find("backend").unwrap(), net);
        assert_eq!(again.find(&net.id[..10]).unwrap().name, "backend");
        assert_eq!(
            again.find(BRIDGE).unwrap().id,
            store.find(BRIDGE).unwrap().id
        );
        assert!(matches!(
            again.remove("bridge"),
            Err(DaemonError::Forbidden(_))
        ));
        again.remove("backend").unwrap();
        assert!(
            matches!(again.find("backend"), Err(DaemonError::NotFoundMessage(m)) if m == "network backend not found")
        );
        assert_eq!(
            NetworkStore::open(path.clone(), "d1").unwrap().list().len(),
            2
        );
        std::fs::write(&path, b"[{").unwrap();
        let err = NetworkStore::open(path.clone(), "d1")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("networks.json"), "{err}");
    }
}
