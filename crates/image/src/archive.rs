//! `save` and `load`: images as OCI image-layout tarballs (readable by `skopeo` as
//! `oci-archive:`), and loading those or `docker save` tarballs back.
//!
//! An archive is untrusted input: it is unpacked with the same root-relative unpacker as
//! layers, every blob is verified against its digest and size before it enters the store, and
//! manifests and configs are read with the store's size limits.

use crate::digest::Digest;
use crate::images::{
    Descriptor, Image, ImageError, ImageStore, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Manifest, media,
};
use crate::reference::Reference;
use crate::store::StoreError;
use crate::unpack::{self, UnpackError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Annotation naming the full reference of an index entry (containerd, Docker).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming an index entry (a tag or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("invalid image archive: {0}")]
    Invalid(String),
    #[error("archive I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

/// Writes `images` (each with the names to record) as an OCI image layout tarball.
pub fn save(
    store: &ImageStore,
    images: &[(Arc<Image>, Vec<Reference>)],
    out: impl Write,
) -> Result<(), ArchiveError> {
    let content = store.content();
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let put = |tar: &mut tar::Builder<_>, name: &str, data: &mut dyn Read, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, data)
    };
    let io_ctx = |e| ArchiveError::Io {
        path: PathBuf::from("<archive>"),
        source: e,
    };
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    put(
        &mut tar,
        "oci-layout",
        &mut &layout[..],
        layout.len() as u64,
    )
    .map_err(io_ctx)?;
    let mut entries = Vec::new();
    let mut written = BTreeSet::new();
    for (image, names) in images {
        let blobs = std::iter::once((image.manifest_digest.clone(), MAX_MANIFEST_SIZE))
            .chain(std::iter::once((image.id.clone(), MAX_CONFIG_SIZE)))
            .chain(
                image
                    .manifest
                    .layers
                    .iter()
                    .map(|l| (l.digest.clone(), u64::MAX)),
            );
        for (digest, _) in blobs {
            if !written.insert(digest.clone()) {
                continue;
            }
            let size = content.size(&digest)?;
            let mut f = content.open_blob(&digest)?;
            put(
                &mut tar,
                &format!("blobs/sha256/{}", digest.hex()),
                &mut f,
                size,
            )
            .map_err(io_ctx)?;
        }
        let desc = |annotations| Descriptor {
            media_type: image
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.into()),
            digest: image.manifest_digest.clone(),
            size: content.size(&image.manifest_digest).unwrap_or(0),
            annotations,
        };
        if names.is_empty() {
            entries.push(desc(None));
        }
        for name in names {
            let mut a = BTreeMap::new();
            a.insert(ANNOTATION_IMAGE_NAME.to_string(), name.canonical());
            a.insert(
                ANNOTATION_REF_NAME.to_string(),
                name.tag().unwrap_or("latest").to_string(),
            );
            entries.push(desc(Some(a)));
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: entries,
    };
    let bytes = crate::images::canonical_json(&index);
    put(&mut tar, "index.json", &mut &bytes[..], bytes.len() as u64).map_err(io_ctx)?;
    tar.into_inner().map_err(io_ctx)?.flush().map_err(io_ctx)?;
    Ok(())
}

/// What `load` found: each image's manifest and the name it carried, if any.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Digest,
    pub name: Option<Reference>,
}

/// Loads an OCI image-layout tarball or a `docker save` tarball into the store. `scratch` is a
/// directory for unpacking (removed afterwards). Names are returned, not applied.
pub fn load(
    store: &ImageStore,
    input: impl Read + 'static,
    scratch: &Path,
) -> Result<Vec<Loaded>, ArchiveError> {
    let dir = tempfile::Builder::new()
        .prefix(".load-")
        .tempdir_in(scratch)
        .map_err(io_at(scratch))?;
    let root = cap_std::fs::Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority())
        .map_err(io_at(dir.path()))?;
    unpack::apply_tar(&root, unpack::decompress(io::BufReader::new(input)))?;
    if dir.path().join("index.json").is_file() {
        load_oci(store, dir.path())
    } else if dir.path().join("manifest.json").is_file() {
        load_docker(store, dir.path())
    } else {
        Err(ArchiveError::Invalid(
            "neither index.json (OCI layout) nor manifest.json (docker save) found".into(),
        ))
    }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ArchiveError> {
    let f = std::fs::File::open(path).map_err(io_at(path))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(io_at(path))?;
    if buf.len() as u64 > limit {
        return Err(ArchiveError::Invalid(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Copies `blobs/sha256/<hex>` from the layout into the store, verifying digest and size.
fn ingest(store: &ImageStore, dir: &Path, desc: &Descriptor) -> Result<(), ArchiveError> {
    if store.content().contains(&desc.digest) {
        return Ok(());
    }
    let path = dir.join("blobs/sha256").join(desc.digest.hex());
    let mut f = std::fs::File::open(&path).map_err(|_| {
        ArchiveError::Invalid(format!("blob {} is missing from the archive", desc.digest))
    })?;
    let mut w = store.content().writer()?;
    io::copy(&mut (&mut f).take(desc.size.saturating_add(1)), &mut w).map_err(io_at(&path))?;
    w.commit(Some((&desc.digest, desc.size)))?;
    Ok(())
}

fn load_oci(store: &ImageStore, dir: &Path) -> Result<Vec<Loaded>, ArchiveError> {
    let index: Index =
        serde_json::from_slice(&read_limited(&dir.join("index.json"), MAX_MANIFEST_SIZE)?)
            .map_err(|e| ArchiveError::Invalid(format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        if desc.media_type == media::OCI_INDEX || desc.media_type == media::DOCKER_MANIFEST_LIST {
            return Err(ArchiveError::Invalid(format!(
                "nested index {} is not supported in archives",
                desc.digest
            )));
        }
        ingest(store, dir, desc)?;
        let bytes = store.content().read(&desc.digest, MAX_MANIFEST_SIZE)?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::Invalid(format!("manifest {}: {e}", desc.digest)))?;
        ingest(store, dir, &manifest.config)?;
        for layer in &manifest.layers {
            if media::is_tar_layer(&layer.media_type) || media::is_wasm_layer(&layer.media_type) {
                ingest(store, dir, layer)?;
            }
        }
        let annotations = desc.annotations.clone().unwrap_or_default();
        let name = annotations
            .get(ANNOTATION_IMAGE_NAME)
            .or_else(|| {
                annotations
                    .get(ANNOTATION_REF_NAME)
                    .filter(|r| r.contains(['/', ':']))
            })
            .and_then(|n| Reference::parse(n).ok());
        out.push(Loaded {
            manifest: desc.digest.clone(),
            name,
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A file named inside the archive, kept inside it.
fn archive_path(dir: &Path, name: &str) -> Result<PathBuf, ArchiveError> {
    let clean = unpack::clean_entry_path(Path::new(name))?;
    Ok(dir.join(clean))
}

fn load_docker(store: &ImageStore, dir: &Path) -> Result<Vec<Loaded>, ArchiveError> {
    let entries: Vec<DockerSaveEntry> = serde_json::from_slice(&read_limited(
        &dir.join("manifest.json"),
        MAX_MANIFEST_SIZE,
    )?)
    .map_err(|e| ArchiveError::Invalid(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let config_bytes = read_limited(&archive_path(dir, &e.config)?, MAX_CONFIG_SIZE)?;
        let config = store.content().put(&config_bytes)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let path = archive_path(dir, l)?;
            let mut f = std::fs::File::open(&path).map_err(io_at(&path))?;
            let mut magic = [0u8; 2];
            let n = f.read(&mut magic).map_err(io_at(&path))?;
            let gz = n == 2 && magic == [0x1f, 0x8b];
            let mut f = std::fs::File::open(&path).map_err(io_at(&path))?;
            let mut w = store.content().writer()?;
            io::copy(&mut f, &mut w).map_err(io_at(&path))?;
            let (digest, size) = w.commit(None)?;
            layers.push(Descriptor {
                media_type: if gz {
                    media::DOCKER_LAYER_GZIP
                } else {
                    media::DOCKER_LAYER_TAR
                }
                .into(),
                digest,
                size,
                annotations: None,
            });
        }
        let manifest = store.commit_manifest(
            Descriptor {
                media_type: media::DOCKER_CONFIG.into(),
                digest: config,
                size: config_bytes.len() as u64,
                annotations: None,
            },
            layers,
            media::DOCKER_MANIFEST,
        )?;
        let tags = e.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            out.push(Loaded {
                manifest: manifest.clone(),
                name: None,
            });
        }
        for t in tags {
            out.push(Loaded {
                manifest: manifest.clone(),
                name: Reference::parse(&t).ok(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageConfig;
    use crate::store::ContentStore;

    fn store(dir: &Path) -> ImageStore {
        let content = ContentStore::open(dir.join("content")).unwrap();
        ImageStore::open(content, &dir.join("images")).unwrap()
    }

    fn layer(store: &ImageStore) -> (Descriptor, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "app.wasm", &b"\0asm"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let diff = Digest::sha256_of(&tar);
        let d = store.content().put(&tar).unwrap();
        (
            Descriptor {
                media_type: media::OCI_LAYER_TAR.into(),
                digest: d,
                size: tar.len() as u64,
                annotations: None,
            },
            diff,
        )
    }

    #[test]
    fn save_then_load_round_trips_blobs_and_names() {
        let a = tempfile::tempdir().unwrap();
        let src = store(a.path());
        let (l, diff) = layer(&src);
        let mut config = ImageConfig {
            architecture: "wasm".into(),
            os: "wasi".into(),
            ..Default::default()
        };
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids.push(diff);
        let m = src.commit(&config, vec![l]).unwrap();
        let name = Reference::parse("hello:1").unwrap();
        let img = src.get(&m).unwrap();
        let mut tarball = Vec::new();
        save(&src, &[(img, vec![name.clone()])], &mut tarball).unwrap();

        let b = tempfile::tempdir().unwrap();
        let dst = store(b.path());
        let loaded = load(&dst, io::Cursor::new(tarball.clone()), b.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].manifest, m);
        assert_eq!(loaded[0].name.as_ref(), Some(&name));
        assert_eq!(dst.get(&m).unwrap().id, src.get(&m).unwrap().id);
    }

    #[test]
    fn tampered_blobs_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let src = store(a.path());
        let (l, diff) = layer(&src);
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids.push(diff);
        let m = src.commit(&config, vec![l.clone()]).unwrap();
        let img = src.get(&m).unwrap();
        let mut tarball = Vec::new();
        save(&src, &[(img, vec![])], &mut tarball).unwrap();
        // Flip a byte of the layer blob inside the archive ("\0asm" → "\0asn").
        let pos = tarball.windows(4).position(|w| w == b"\0asm").unwrap();
        tarball[pos + 3] = b'n';
        let b = tempfile::tempdir().unwrap();
        let dst = store(b.path());
        let err = load(&dst, io::Cursor::new(tarball.clone()), b.path()).unwrap_err();
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        assert!(!dst.content().contains(&l.digest));
    }

    #[test]
    fn loads_docker_save_tarballs_keeping_the_image_id() {
        // The legacy `docker save` layout: manifest.json, the config file, layer tars.
        let mut layer = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o755);
        layer
            .append_data(&mut h, "app.wasm", &b"\0asm"[..])
            .unwrap();
        let layer = layer.into_inner().unwrap();
        let diff = Digest::sha256_of(&layer);
        let config = format!(
            r#"{{"architecture":"wasm","os":"wasi","config":{{"Entrypoint":["/app.wasm"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        );
        let config_id = Digest::sha256_of(config.as_bytes());
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["app:v1"],"Layers":["abc/layer.tar"]}}]"#,
            config_id.hex()
        );
        let mut t = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", manifest.as_bytes()),
            (&format!("{}.json", config_id.hex())[..], config.as_bytes()),
            ("abc/layer.tar", &layer[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            t.append_data(&mut h, name, data).unwrap();
        }
        let b = tempfile::tempdir().unwrap();
        let dst = store(b.path());
        let loaded = load(&dst, io::Cursor::new(t.into_inner().unwrap()), b.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].name, Some(Reference::parse("app:v1").unwrap()));
        let img = dst.get(&loaded[0].manifest).unwrap();
        assert_eq!(
            img.id, config_id,
            "the image id is the config digest, unchanged"
        );
        assert_eq!(img.manifest.layers[0].media_type, media::DOCKER_LAYER_TAR);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let b = tempfile::tempdir().unwrap();
        let dst = store(b.path());
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        t.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
        let err = load(&dst, io::Cursor::new(t.into_inner().unwrap()), b.path()).unwrap_err();
        assert!(err.to_string().contains("index.json"), "{err}");
    }
}
