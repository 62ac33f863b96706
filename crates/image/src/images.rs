//! Image records: OCI manifests and configs in the content store, plus name → manifest pointers.
//!
//! An image is its manifest (`sha256` of the manifest bytes); its id is the digest of its
//! config, as in Docker. Names live in `refs.json` (canonical reference → manifest digest),
//! together with the set of untagged ("dangling") images, written atomically.

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{ContentStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Largest manifest or index Berth reads (the distribution spec asks clients to accept 4 MB).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// Largest image config Berth reads.
pub const MAX_CONFIG_SIZE: u64 = 8 * 1024 * 1024;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// The CNCF Wasm OCI artifact: one `application/wasm` layer and this config.
    pub const WASM_CONFIG_V0: &str = "application/vnd.wasm.config.v0+json";
    pub const WASM_LAYER: &str = "application/wasm";
    /// runwasi's Wasm layer type.
    pub const WASM_COMPONENT_LAYER: &str =
        "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
    /// Spin and wasm-to-oci's Wasm layer type.
    pub const WASM_CONTENT_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

    /// Whether a layer media type is a (possibly gzipped) tarball Berth can unpack.
    pub fn is_tar_layer(media_type: &str) -> bool {
        matches!(
            media_type,
            OCI_LAYER_TAR | OCI_LAYER_GZIP | DOCKER_LAYER_TAR | DOCKER_LAYER_GZIP
        ) || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar")
    }

    /// Whether a layer is a raw Wasm binary (artifact formats) rather than a tarball.
    pub fn is_wasm_layer(media_type: &str) -> bool {
        matches!(
            media_type,
            WASM_LAYER | WASM_COMPONENT_LAYER | WASM_CONTENT_LAYER
        ) || media_type == "application/vnd.w3c.wasm.module.v1+wasm"
            || media_type == "application/vnd.wasm.component.v1+wasm"
    }
}

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{input} matches more than one image; use a longer id")]
    Ambiguous { input: String },
    #[error("image manifest {digest} is invalid: {message}")]
    BadManifest { digest: Digest, message: String },
    #[error("image config {digest} is invalid: {message}")]
    BadConfig { digest: Digest, message: String },
    #[error("image state file {path} is corrupt: {message}; move it away to start with no tags")]
    CorruptState { path: PathBuf, message: String },
    #[error("image state I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An OCI descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest (also reads Docker schema 2 manifests, which have the same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The `config` object of an image config, in Docker's PascalCase.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An OCI image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: RunConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// Serialises with sorted keys and no whitespace, so equal values give equal digests.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // serde_json::Value keeps object keys in a BTreeMap: a round trip sorts them.
    let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&v).unwrap_or_default()
}

/// A resolved image.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    /// The image id: the digest of the config blob.
    pub id: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// Total bytes of the config and layer blobs, as `images` shows.
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// The chain id of the whole layer stack, which names its unpacked snapshot. Raw Wasm
    /// layers take part with their blob digest, after the tar layers.
    pub fn chain_id(&self) -> Option<Digest> {
        let mut ids = self.config.rootfs.diff_ids.clone();
        ids.extend(self.wasm_layers().map(|l| l.digest.clone()));
        chain_id(&ids)
    }

    /// Layers that are raw Wasm binaries (CNCF artifact, runwasi) rather than tarballs.
    pub fn wasm_layers(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifest
            .layers
            .iter()
            .filter(|l| media::is_wasm_layer(&l.media_type))
    }

    /// Where a raw Wasm layer appears in the container: `/<title>` from the
    /// `org.opencontainers.image.title` annotation when it is a plain file name, else
    /// `/<short digest>.wasm`.
    pub fn wasm_layer_path(layer: &Descriptor) -> String {
        let title = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.title"))
            .filter(|t| {
                !t.is_empty()
                    && t.len() <= 255
                    && *t != "."
                    && *t != ".."
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        match title {
            Some(t) => format!("/{t}"),
            None => format!("/{}.wasm", layer.digest.short()),
        }
    }

    /// `Entrypoint` + `Cmd` of the config; for an artifact without them, its single Wasm layer.
    pub fn default_command(&self) -> Vec<String> {
        let c = &self.config.config;
        let cmd: Vec<String> = c
            .entrypoint
            .iter()
            .flatten()
            .chain(c.cmd.iter().flatten())
            .cloned()
            .collect();
        if !cmd.is_empty() {
            return cmd;
        }
        let mut wasm = self.wasm_layers();
        match (wasm.next(), wasm.next()) {
            (Some(l), None) => vec![Self::wasm_layer_path(l)],
            _ => Vec::new(),
        }
    }

    /// Whether the config says this is a Wasm image (`architecture` wasm or wasm32; `os` is
    /// only a hint, as runwasi treats it).
    pub fn is_wasm(&self) -> bool {
        matches!(self.config.architecture.as_str(), "wasm" | "wasm32")
    }
}

/// OCI chain id: `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    let mut it = diff_ids.iter();
    let mut chain = it.next()?.clone();
    for d in it {
        chain = Digest::sha256_of(format!("{chain} {d}").as_bytes());
    }
    Some(chain)
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct RefsFile {
    refs: BTreeMap<String, Digest>,
    #[serde(default)]
    dangling: BTreeSet<Digest>,
    #[serde(default)]
    repo_digests: BTreeMap<Digest, Vec<String>>,
}

/// Names and records of local images.
pub struct ImageStore {
    content: ContentStore,
    refs_path: PathBuf,
    state: RwLock<RefsFile>,
    cache: RwLock<HashMap<Digest, Arc<Image>>>,
}

impl ImageStore {
    /// Opens the store; a corrupt `refs.json` is an error naming the file, never dropped.
    pub fn open(content: ContentStore, state_dir: &Path) -> Result<Self, ImageError> {
        std::fs::create_dir_all(state_dir).map_err(|source| ImageError::Io {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let refs_path = state_dir.join("refs.json");
        let state = match std::fs::read(&refs_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImageError::CorruptState {
                path: refs_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RefsFile::default(),
            Err(source) => {
                return Err(ImageError::Io {
                    path: refs_path,
                    source,
                });
            }
        };
        Ok(Self {
            content,
            refs_path,
            state: RwLock::new(state),
            cache: RwLock::new(HashMap::new()),
        })
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    fn save(&self, state: &RefsFile) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
        crate::write_atomic(&self.refs_path, &bytes).map_err(|source| ImageError::Io {
            path: self.refs_path.clone(),
            source,
        })
    }

    /// Reads and parses the image whose manifest is `manifest_digest`.
    pub fn get(&self, manifest_digest: &Digest) -> Result<Arc<Image>, ImageError> {
        if let Some(img) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(manifest_digest)
        {
            return Ok(img.clone());
        }
        let bytes = self.content.read(manifest_digest, MAX_MANIFEST_SIZE)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::BadManifest {
                digest: manifest_digest.clone(),
                message: e.to_string(),
            })?;
        let config_bytes = self
            .content
            .read(&manifest.config.digest, MAX_CONFIG_SIZE)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| ImageError::BadConfig {
                digest: manifest.config.digest.clone(),
                message: e.to_string(),
            })?;
        let image = Arc::new(Image {
            manifest_digest: manifest_digest.clone(),
            id: manifest.config.digest.clone(),
            manifest,
            config,
        });
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(manifest_digest.clone(), image.clone());
        Ok(image)
    }

    /// Stores a config and manifest for the given layers; returns the manifest digest.
    /// The layers must already be in the content store.
    pub fn commit(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
    ) -> Result<Digest, ImageError> {
        let config_bytes = canonical_json(config);
        let config_digest = self.content.put(&config_bytes)?;
        let config = Descriptor {
            media_type: media::OCI_CONFIG.into(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            annotations: None,
        };
        self.commit_manifest(config, layers, media::OCI_MANIFEST)
    }

    /// Stores a manifest for a config and layers already in the content store.
    pub fn commit_manifest(
        &self,
        config: Descriptor,
        layers: Vec<Descriptor>,
        media_type: &str,
    ) -> Result<Digest, ImageError> {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media_type.into()),
            config,
            layers,
            annotations: None,
        };
        Ok(self.content.put(&canonical_json(&manifest))?)
    }

    /// Records that `manifest` was pulled from (or pushed to) `repo_digest`
    /// (`repository@sha256:...`), as Docker's `RepoDigests`.
    pub fn add_repo_digest(
        &self,
        manifest: &Digest,
        repo_digest: String,
    ) -> Result<(), ImageError> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut state = guard.clone();
        let list = state.repo_digests.entry(manifest.clone()).or_default();
        if !list.contains(&repo_digest) {
            list.push(repo_digest);
            list.sort();
            self.save(&state)?;
            *guard = state;
        }
        Ok(())
    }

    /// `RepoDigests` of an image.
    pub fn repo_digests(&self, manifest: &Digest) -> Vec<String> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .repo_digests
            .get(manifest)
            .cloned()
            .unwrap_or_default()
    }

    /// Points `reference` at `manifest`. The image it pointed to before, if any and if now
    /// nameless, becomes dangling. Returns the previous manifest.
    pub fn tag(
        &self,
        reference: &Reference,
        manifest: &Digest,
    ) -> Result<Option<Digest>, ImageError> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut state = guard.clone();
        let previous = state.refs.insert(reference.canonical(), manifest.clone());
        state.dangling.remove(manifest);
        if let Some(prev) = &previous
            && prev != manifest
            && !state.refs.values().any(|d| d == prev)
        {
            state.dangling.insert(prev.clone());
        }
        self.save(&state)?;
        *guard = state;
        Ok(previous)
    }

    /// Records an image that has no name yet (e.g. `build` without `-t`).
    pub fn add_dangling(&self, manifest: &Digest) -> Result<(), ImageError> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        if guard.refs.values().any(|d| d == manifest) {
            return Ok(());
        }
        let mut state = guard.clone();
        state.dangling.insert(manifest.clone());
        self.save(&state)?;
        *guard = state;
        Ok(())
    }

    /// Removes a name. Returns the manifest it pointed to, and whether other names still do.
    pub fn untag(&self, reference: &Reference) -> Result<Option<(Digest, bool)>, ImageError> {
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut state = guard.clone();
        let Some(manifest) = state.refs.remove(&reference.canonical()) else {
            return Ok(None);
        };
        let still_named = state.refs.values().any(|d| *d == manifest);
        self.save(&state)?;
        *guard = state;
        Ok(Some((manifest, still_named)))
    }

    /// Forgets an image entirely (names and dangling entry) and deletes its blobs that no
    /// other image uses. Returns the image id.
    pub fn remove(&self, manifest: &Digest) -> Result<Digest, ImageError> {
        let image = self.get(manifest)?;
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut state = guard.clone();
        state.refs.retain(|_, d| d != manifest);
        state.dangling.remove(manifest);
        state.repo_digests.remove(manifest);
        self.save(&state)?;
        let others: Vec<Digest> = state
            .refs
            .values()
            .chain(state.dangling.iter())
            .cloned()
            .collect();
        *guard = state;
        drop(guard);
        let mut keep = BTreeSet::new();
        for other in others {
            if let Ok(img) = self.get(&other) {
                keep.insert(img.manifest.config.digest.clone());
                keep.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
                keep.insert(other);
            }
        }
        let blobs = std::iter::once(manifest.clone())
            .chain(std::iter::once(image.manifest.config.digest.clone()))
            .chain(image.manifest.layers.iter().map(|l| l.digest.clone()));
        for blob in blobs {
            if !keep.contains(&blob) {
                self.content.delete(&blob)?;
            }
        }
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(manifest);
        Ok(image.id.clone())
    }

    /// The manifest a reference points to.
    pub fn lookup(&self, reference: &Reference) -> Option<Digest> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .refs
            .get(&reference.canonical())
            .cloned()
    }

    /// Names pointing at `manifest`, sorted.
    pub fn names_of(&self, manifest: &Digest) -> Vec<Reference> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .refs
            .iter()
            .filter(|(_, d)| *d == manifest)
            .filter_map(|(r, _)| Reference::parse(r).ok())
            .collect()
    }

    /// Every known image's manifest digest, once each.
    pub fn manifests(&self) -> Vec<Digest> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let set: BTreeSet<Digest> = state
            .refs
            .values()
            .chain(state.dangling.iter())
            .cloned()
            .collect();
        set.into_iter().collect()
    }

    /// Finds an image by name, full id (`sha256:<hex>` or `<hex>`), or unique id prefix.
    pub fn resolve(&self, input: &str) -> Result<Arc<Image>, ImageError> {
        let not_found = || ImageError::NotFound(input.to_string());
        let hex_part = input.strip_prefix("sha256:").unwrap_or(input);
        let looks_like_id = !hex_part.is_empty()
            && hex_part.len() <= 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !looks_like_id || input.contains(':') && !input.starts_with("sha256:") {
            let reference = Reference::parse(input).map_err(|_| not_found())?;
            let manifest = self.lookup(&reference).ok_or_else(not_found)?;
            return self.get(&manifest);
        }
        // A bare word of hex digits may also be a repository name ("cafe").
        if !input.starts_with("sha256:")
            && hex_part.len() < 64
            && let Ok(reference) = Reference::parse(input)
            && let Some(manifest) = self.lookup(&reference)
        {
            return self.get(&manifest);
        }
        let mut found: Vec<Arc<Image>> = Vec::new();
        for m in self.manifests() {
            let Ok(img) = self.get(&m) else { continue };
            if img.id.hex().starts_with(hex_part) && !found.iter().any(|f| f.id == img.id) {
                found.push(img);
            }
        }
        match found.len() {
            0 => Err(not_found()),
            1 => Ok(found.remove(0)),
            _ => Err(ImageError::Ambiguous {
                input: input.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ImageStore) {
        let dir = tempfile::tempdir().unwrap();
        let content = ContentStore::open(dir.path().join("content")).unwrap();
        let images = ImageStore::open(content, &dir.path().join("images")).unwrap();
        (dir, images)
    }

    fn commit(images: &ImageStore, label: &str) -> Digest {
        let mut config = ImageConfig {
            architecture: "wasm".into(),
            os: "wasi".into(),
            ..Default::default()
        };
        config.config.labels = Some([("l".to_string(), label.to_string())].into());
        images.commit(&config, vec![]).unwrap()
    }

    #[test]
    fn tag_resolve_untag() {
        let (_d, images) = store();
        let m = commit(&images, "a");
        let r = Reference::parse("hello:1").unwrap();
        images.tag(&r, &m).unwrap();
        let img = images.resolve("hello:1").unwrap();
        assert_eq!(img.manifest_digest, m);
        assert_eq!(images.resolve(img.id.as_str()).unwrap().id, img.id);
        assert_eq!(images.resolve(&img.id.hex()[..6]).unwrap().id, img.id);
        assert!(matches!(
            images.resolve("nope:1"),
            Err(ImageError::NotFound(_))
        ));
        assert_eq!(images.untag(&r).unwrap(), Some((m, false)));
        assert!(images.resolve("hello:1").is_err());
    }

    #[test]
    fn retag_leaves_previous_image_dangling_and_listed() {
        let (_d, images) = store();
        let a = commit(&images, "a");
        let b = commit(&images, "b");
        let r = Reference::parse("app").unwrap();
        images.tag(&r, &a).unwrap();
        images.tag(&r, &b).unwrap();
        assert_eq!(images.manifests().len(), 2);
        assert!(images.names_of(&a).is_empty());
    }

    #[test]
    fn refs_survive_reopen_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let content = ContentStore::open(dir.path().join("content")).unwrap();
        let images = ImageStore::open(content.clone(), &dir.path().join("images")).unwrap();
        let m = commit(&images, "a");
        images.tag(&Reference::parse("x:1").unwrap(), &m).unwrap();
        let again = ImageStore::open(content.clone(), &dir.path().join("images")).unwrap();
        assert!(again.resolve("x:1").is_ok());
        std::fs::write(dir.path().join("images/refs.json"), b"{trunc").unwrap();
        let err = ImageStore::open(content, &dir.path().join("images"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("refs.json"), "{err}");
    }

    #[test]
    fn chain_id_follows_the_oci_rule() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        assert_eq!(
            chain_id(&[a.clone(), b.clone()]),
            Some(Digest::sha256_of(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(chain_id(&[]), None);
    }

    #[test]
    fn remove_deletes_only_unshared_blobs() {
        let (_d, images) = store();
        let a = commit(&images, "a");
        let img = images.get(&a).unwrap();
        images.tag(&Reference::parse("a").unwrap(), &a).unwrap();
        images.remove(&a).unwrap();
        assert!(!images.content().contains(&a));
        assert!(!images.content().contains(&img.id));
    }
}
