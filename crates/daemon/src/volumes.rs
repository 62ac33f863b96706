//! Named volumes: `<data-root>/volumes/<name>/{_data/,volume.json}`.
//!
//! A volume is a directory the daemon owns, granted to containers as a WASI preopen. Creation
//! is atomic (built under a temporary name, then renamed), so a crash never leaves a volume
//! without its metadata; `open` removes unfinished ones.

use crate::error::{DaemonError, Result};
use berth_api as api;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Label Docker puts on volumes created for `-v /path` and image `VOLUME`s.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `volume.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VolumeMeta {
    name: String,
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub struct VolumeStore {
    dir: PathBuf,
    lock: Mutex<()>,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    if crate::container::is_docker_name(name, 2, 255) {
        Ok(())
    } else {
        Err(DaemonError::Invalid(format!(
            "{:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            truncate(name)
        )))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl VolumeStore {
    /// Opens the volume directory, removing volumes whose creation did not finish.
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(DaemonError::io(format!("creating {}", dir.display())))?;
        let store = Self {
            dir,
            lock: Mutex::new(()),
        };
        for entry in std::fs::read_dir(&store.dir)
            .map_err(DaemonError::io(format!("reading {}", store.dir.display())))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            // A corrupt volume.json stops the daemon with its path rather than losing data.
            store.meta(&name)?;
        }
        Ok(store)
    }

    /// Host directory a container sees for this volume.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn meta(&self, name: &str) -> Result<Option<VolumeMeta>> {
        crate::read_state_file(&self.dir.join(name), "volume.json")
    }

    fn to_api(&self, meta: VolumeMeta) -> api::Volume {
        api::Volume {
            mountpoint: self.data_path(&meta.name).display().to_string(),
            name: meta.name,
            driver: "local".into(),
            created_at: meta.created_at,
            labels: meta.labels,
            scope: "local".into(),
            options: BTreeMap::new(),
        }
    }

    /// `POST /volumes/create`. As Docker: creating an existing volume returns it.
    /// Returns the volume and whether it was created now.
    pub fn create(
        &self,
        req: &api::VolumeCreateRequest,
        anonymous: bool,
    ) -> Result<(api::Volume, bool)> {
        if let Some(driver) = req
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "local")
        {
            return Err(DaemonError::NotFoundMessage(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        if req.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(DaemonError::Invalid(
                "volume driver options are not supported: a Berth volume is a directory owned by the daemon".into(),
            ));
        }
        let name = match req.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(n)?;
                n.to_string()
            }
            None => crate::ContainerId::generate().to_string(),
        };
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(meta) = self.meta(&name)? {
            return Ok((self.to_api(meta), false));
        }
        let mut labels = req.labels.clone().unwrap_or_default();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let meta = VolumeMeta {
            name: name.clone(),
            created_at: crate::now_rfc3339(),
            labels,
        };
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let result = (|| -> std::io::Result<()> {
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(tmp.join("_data"))?;
            let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
            berth_image::write_atomic(&tmp.join("volume.json"), &json)?;
            std::fs::rename(&tmp, self.dir.join(&name))?;
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(DaemonError::io(format!("creating volume {name}"))(e));
        }
        tracing::debug!(%name, "volume created");
        Ok((self.to_api(meta), true))
    }

    /// `GET /volumes/{name}`.
    pub fn get(&self, name: &str) -> Result<api::Volume> {
        if validate_name(name).is_err() {
            return Err(no_such_volume(name));
        }
        match self.meta(name)? {
            Some(meta) => Ok(self.to_api(meta)),
            None => Err(no_such_volume(name)),
        }
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<api::Volume>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(DaemonError::io(format!("reading {}", self.dir.display())))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(meta) = self.meta(&name)? {
                out.push(self.to_api(meta));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes a volume and its data. The caller checks that no container uses it.
    /// Returns the bytes reclaimed.
    pub fn remove(&self, name: &str) -> Result<u64> {
        self.get(name)?;
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.dir.join(name);
        let size = dir_size(&dir.join("_data"));
        let trash = self.dir.join(format!(".tmp-rm-{name}"));
        std::fs::rename(&dir, &trash)
            .and_then(|()| std::fs::remove_dir_all(&trash))
            .map_err(DaemonError::io(format!("removing volume {name}")))?;
        Ok(size)
    }
}

pub fn no_such_volume(name: &str) -> DaemonError {
    DaemonError::NotFoundMessage(format!("get {}: no such volume", truncate(name)))
}

/// Bytes of regular files under `dir`, without following symlinks.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> api::VolumeCreateRequest {
        api::VolumeCreateRequest {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn create_is_idempotent_and_remove_deletes_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path().join("volumes")).unwrap();
        let (v, created) = store.create(&req("data"), false).unwrap();
        assert!(created);
        assert_eq!(v.driver, "local");
        std::fs::write(store.data_path("data").join("f"), b"12345").unwrap();
        let (again, created) = store.create(&req("data"), false).unwrap();
        assert!(!created);
        assert_eq!(again.created_at, v.created_at);
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.remove("data").unwrap(), 5);
        assert!(store.list().unwrap().is_empty());
        assert!(matches!(
            store.get("data"),
            Err(DaemonError::NotFoundMessage(m)) if m == "get data: no such volume"
        ));
    }

    #[test]
    fn hostile_names_and_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path().join("volumes")).unwrap();
        for bad in [
            "..",
            "../x",
            "a/b",
            "/abs",
            "x",
            "-x",
            "a\0b",
            &"a".repeat(300),
        ] {
            assert!(
                matches!(store.create(&req(bad), false), Err(DaemonError::Invalid(_))),
                "{bad:?}"
            );
            assert!(store.get(bad).is_err());
        }
        let mut r = req("opts");
        r.driver_opts = Some([("type".to_string(), "nfs".to_string())].into());
        assert!(matches!(
            store.create(&r, false),
            Err(DaemonError::Invalid(_))
        ));
        let mut r = req("plugin");
        r.driver = Some("rexray".into());
        assert!(store.create(&r, false).is_err());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path().join("volumes"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn unfinished_creations_are_removed_and_corrupt_metadata_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let vols = dir.path().join("volumes");
        std::fs::create_dir_all(vols.join(".tmp-half/_data")).unwrap();
        let store = VolumeStore::open(vols.clone()).unwrap();
        assert!(!vols.join(".tmp-half").exists());
        let (v, _) = store.create(&req(""), true).unwrap();
        assert_eq!(v.name.len(), 64);
        assert!(v.labels.contains_key(ANONYMOUS_LABEL));
        std::fs::write(vols.join(&v.name).join("volume.json"), b"{trunc").unwrap();
        let err = VolumeStore::open(vols.clone())
            .err()
            .expect("corrupt metadata must fail");
        assert!(err.to_string().contains("volume.json"), "{err}");
    }
}
