//! `Registry::push` and `Registry::push_wasm_artifact`.

use crate::document::{Document, parse_document};
use crate::error::{ErrCtx, RegistryError};
use crate::pull::{MAX_PARALLEL, PROGRESS_STEP};
use crate::session::Session;
use crate::util::{canonical_json, now_rfc3339};
use crate::{Credentials, Progress, Pushed, Registry};
use berth_image::digest::{Digest, Sha256Hasher};
use berth_image::images::{Descriptor, MAX_MANIFEST_SIZE, media};
use berth_image::reference::Reference;
use berth_image::store::{ContentStore, StoreError};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use reqwest::header::HeaderValue;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

/// Bytes read from disk per upload chunk: `oci-client` sends each as one PATCH request (its
/// own chunk limit is 4 MiB), so at most this much of a layer is in memory per upload.
const UPLOAD_CHUNK: usize = 4 * 1024 * 1024;

/// The annotation naming the file of an artifact layer.
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// The `oci-client` reference a push goes to: the tag, or the digest (which must be the
/// manifest's).
fn push_target(
    sess: &Session<'_>,
    reference: &Reference,
    manifest: &Digest,
) -> Result<oci_client::Reference, RegistryError> {
    match (reference.tag(), reference.digest()) {
        (Some(tag), _) => Ok(sess.oci_tag(tag)),
        (None, Some(d)) if d == manifest => Ok(sess.oci_digest(d)),
        (None, Some(d)) => Err(RegistryError::Invalid {
            message: format!(
                "cannot push manifest {manifest} as {}: the reference names digest {d}",
                reference.familiar()
            ),
        }),
        (None, None) => Ok(sess.oci_tag("latest")),
    }
}

pub(crate) async fn push(
    registry: &Registry,
    reference: &Reference,
    creds: &Credentials,
    store: &ContentStore,
    manifest_digest: &Digest,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Pushed, RegistryError> {
    let bytes = store.read(manifest_digest, MAX_MANIFEST_SIZE)?;
    let manifest = match parse_document(&bytes, None) {
        Ok(Document::Manifest(m)) => m,
        Ok(Document::Index(_)) => {
            return Err(RegistryError::Invalid {
                message: format!(
                    "{manifest_digest} is an image index: pushing indexes is not supported"
                ),
            });
        }
        Err(m) => {
            return Err(RegistryError::Invalid {
                message: format!("local manifest {manifest_digest} cannot be pushed: {m}"),
            });
        }
    };
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let content_type = HeaderValue::from_str(&media_type).map_err(|_| RegistryError::Invalid {
        message: format!("invalid manifest media type {media_type:?}"),
    })?;

    let mut sess = Session::new(registry, reference, creds)?;
    let target = push_target(&sess, reference, manifest_digest)?;
    sess.authorize(RegistryOperation::Push).await?;
    let ctx = sess.ctx();

    // Layers (each once), then the config.
    let mut seen = BTreeSet::new();
    // Owned descriptors: a closure over `&Descriptor` makes the future not provably `Send`
    // (rust-lang/rust#102211).
    let mut blobs: Vec<(Descriptor, bool)> = Vec::new();
    for layer in &manifest.layers {
        if seen.insert(layer.digest.clone()) {
            blobs.push((layer.clone(), true));
        }
    }
    if seen.insert(manifest.config.digest.clone()) {
        blobs.push((manifest.config.clone(), false));
    }
    let sess_ref = &sess;
    let target_ref = &target;
    futures_util::stream::iter(blobs.into_iter().map(
        |(desc, is_layer): (Descriptor, bool)| async move {
            push_blob_from_store(sess_ref, target_ref, store, &desc, is_layer, progress).await
        },
    ))
    .buffer_unordered(MAX_PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;

    sess.client
        .push_manifest_raw(&target, bytes.clone(), content_type)
        .await
        .map_err(|e| ctx.oci(e))?;
    progress(Progress::Resolved {
        digest: manifest_digest.clone(),
    });
    Ok(Pushed {
        digest: manifest_digest.clone(),
        size: bytes.len() as u64,
    })
}

/// Uploads one blob of the store unless the registry has it.
async fn push_blob_from_store(
    sess: &Session<'_>,
    target: &oci_client::Reference,
    store: &ContentStore,
    desc: &Descriptor,
    is_layer: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), RegistryError> {
    let digest = &desc.digest;
    let ctx = sess.blob_ctx(digest);
    let id = digest.short().to_string();
    if sess.blob_exists(digest).await? {
        if is_layer {
            progress(Progress::LayerExists { id });
        }
        return Ok(());
    }
    let local_size = store.size(digest)?;
    if local_size != desc.size {
        return Err(RegistryError::Store(StoreError::SizeMismatch {
            digest: digest.clone(),
            expected: desc.size,
            actual: local_size,
        }));
    }
    let file = store.open_blob(digest)?;
    if is_layer {
        progress(Progress::LayerStart {
            id: id.clone(),
            size: desc.size,
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let stream = file_stream(
        tokio::fs::File::from_std(file),
        digest.clone(),
        desc.size,
        tx,
        failure.clone(),
    );
    let upload = sess
        .client
        .push_blob_stream(target, stream, digest.as_str(), Some(desc.size));
    tokio::pin!(upload);
    let mut sent = 0u64;
    let mut reported = 0u64;
    let result = loop {
        tokio::select! {
            r = &mut upload => break r,
            Some(n) = rx.recv() => {
                sent += n;
                if is_layer && sent - reported >= PROGRESS_STEP {
                    reported = sent;
                    progress(Progress::LayerProgress { id: id.clone(), current: sent, total: desc.size });
                }
            }
        }
    };
    if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(RegistryError::Store(e));
    }
    result.map_err(|e| ctx.oci(e))?;
    if is_layer {
        progress(Progress::LayerDone { id });
    }
    Ok(())
}

/// State of [`file_stream`].
struct FileReader {
    file: tokio::fs::File,
    hasher: Option<Sha256Hasher>,
    read: u64,
    expected: Digest,
    size: u64,
    tx: tokio::sync::mpsc::UnboundedSender<u64>,
    failure: Arc<Mutex<Option<StoreError>>>,
}

/// Streams a blob from disk in [`UPLOAD_CHUNK`] pieces, reporting each piece's length on `tx`,
/// and checking at the end that the bytes read have the expected size and digest (a blob
/// corrupted on disk is never sent as if it were the right one). A failure is recorded in
/// `failure` and ends the stream with an error.
fn file_stream(
    file: tokio::fs::File,
    expected: Digest,
    size: u64,
    tx: tokio::sync::mpsc::UnboundedSender<u64>,
    failure: Arc<Mutex<Option<StoreError>>>,
) -> impl Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    let state = FileReader {
        file,
        hasher: Some(Sha256Hasher::new()),
        read: 0,
        expected,
        size,
        tx,
        failure,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        let mut hasher = st.hasher.take()?;
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let mut filled = 0;
        while filled < UPLOAD_CHUNK {
            match st.file.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    return Some((Err(OciDistributionError::IoError(e)), st));
                }
            }
        }
        buf.truncate(filled);
        if buf.is_empty() {
            // End of file: check what was read.
            let actual = hasher.finish();
            let problem = if st.read != st.size {
                Some(StoreError::SizeMismatch {
                    digest: st.expected.clone(),
                    expected: st.size,
                    actual: st.read,
                })
            } else if actual != st.expected {
                Some(StoreError::DigestMismatch {
                    expected: st.expected.clone(),
                    actual,
                })
            } else {
                None
            };
            return match problem {
                None => None,
                Some(p) => {
                    let message = p.to_string();
                    *st.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
                    Some((Err(OciDistributionError::GenericError(Some(message))), st))
                }
            };
        }
        hasher.update(&buf);
        st.read += buf.len() as u64;
        let _ = st.tx.send(buf.len() as u64);
        st.hasher = Some(hasher);
        Some((Ok(Bytes::from(buf)), st))
    })
}

/// The `os` of the artifact config.
fn artifact_os(component: bool) -> &'static str {
    if component { "wasip2" } else { "wasip1" }
}

/// The config blob and manifest of a CNCF Wasm artifact, canonical JSON.
pub(crate) fn artifact_documents(
    wasm: &[u8],
    file_name: &str,
    component: bool,
    created: &str,
) -> (Vec<u8>, Vec<u8>) {
    let layer_digest = Digest::sha256_of(wasm);
    let config = serde_json::json!({
        "created": created,
        "author": null,
        "architecture": "wasm",
        "os": artifact_os(component),
        "layerDigests": [layer_digest.to_string()],
        "component": if component {
            serde_json::json!({"exports": [], "imports": []})
        } else {
            serde_json::Value::Null
        },
    });
    let config_bytes = canonical_json(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::WASM_CONFIG_V0,
            "digest": Digest::sha256_of(&config_bytes).to_string(),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": media::WASM_LAYER,
            "digest": layer_digest.to_string(),
            "size": wasm.len(),
            "annotations": { TITLE_ANNOTATION: file_name },
        }],
    });
    (config_bytes, canonical_json(&manifest))
}

/// The last component of a path, or `module.wasm` when there is none.
fn base_name(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." {
        "module.wasm".to_string()
    } else {
        base.to_string()
    }
}

pub(crate) async fn push_wasm_artifact(
    registry: &Registry,
    reference: &Reference,
    creds: &Credentials,
    wasm: &[u8],
    file_name: &str,
    component: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Pushed, RegistryError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(RegistryError::Invalid {
            message: format!("{file_name} is not a WebAssembly binary (no \\0asm header)"),
        });
    }
    let (config_bytes, manifest_bytes) =
        artifact_documents(wasm, &base_name(file_name), component, &now_rfc3339());
    let manifest_digest = Digest::sha256_of(&manifest_bytes);
    let layer_digest = Digest::sha256_of(wasm);
    let config_digest = Digest::sha256_of(&config_bytes);

    let mut sess = Session::new(registry, reference, creds)?;
    let target = push_target(&sess, reference, &manifest_digest)?;
    sess.authorize(RegistryOperation::Push).await?;
    let ctx = sess.ctx();

    let upload = |data: Bytes, digest: Digest, is_layer: bool| {
        let sess = &sess;
        let target = &target;
        async move {
            let ctx: ErrCtx = sess.blob_ctx(&digest);
            let id = digest.short().to_string();
            if sess.blob_exists(&digest).await? {
                if is_layer {
                    progress(Progress::LayerExists { id });
                }
                return Ok::<(), RegistryError>(());
            }
            if is_layer {
                progress(Progress::LayerStart {
                    id: id.clone(),
                    size: data.len() as u64,
                });
            }
            sess.client
                .push_blob(target, data, digest.as_str())
                .await
                .map_err(|e| ctx.oci(e))?;
            if is_layer {
                progress(Progress::LayerDone { id });
            }
            Ok(())
        }
    };
    upload(Bytes::copy_from_slice(wasm), layer_digest, true).await?;
    upload(Bytes::from(config_bytes), config_digest, false).await?;
    let size = manifest_bytes.len() as u64;
    sess.client
        .push_manifest_raw(
            &target,
            manifest_bytes,
            HeaderValue::from_static(media::OCI_MANIFEST),
        )
        .await
        .map_err(|e| ctx.oci(e))?;
    progress(Progress::Resolved {
        digest: manifest_digest.clone(),
    });
    tracing::debug!(reference = %reference, digest = %manifest_digest, "pushed Wasm artifact");
    Ok(Pushed {
        digest: manifest_digest,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_documents_match_oci_wasm() {
        let wasm = b"\0asm\x0d\0\x01\0";
        let (config, manifest) = artifact_documents(wasm, "app.wasm", true, "2024-01-02T03:04:05Z");
        let layer = Digest::sha256_of(wasm);
        assert_eq!(
            String::from_utf8(config.clone()).unwrap(),
            format!(
                r#"{{"architecture":"wasm","author":null,"component":{{"exports":[],"imports":[]}},"created":"2024-01-02T03:04:05Z","layerDigests":["{layer}"],"os":"wasip2"}}"#
            )
        );
        let cd = Digest::sha256_of(&config);
        assert_eq!(
            String::from_utf8(manifest).unwrap(),
            format!(
                r#"{{"config":{{"digest":"{cd}","mediaType":"application/vnd.wasm.config.v0+json","size":{}}},"layers":[{{"annotations":{{"org.opencontainers.image.title":"app.wasm"}},"digest":"{layer}","mediaType":"application/wasm","size":8}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#,
                config.len()
            )
        );
        let (config, _) = artifact_documents(b"\0asm\x01\0\0\0", "m.wasm", false, "t");
        let v: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(v["os"], "wasip1");
        assert!(v["component"].is_null());
        assert!(v["author"].is_null());
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/tmp/x/app.wasm"), "app.wasm");
        assert_eq!(base_name("app.wasm"), "app.wasm");
        assert_eq!(base_name("C:\\x\\app.wasm"), "app.wasm");
        assert_eq!(base_name("dir/"), "module.wasm");
        assert_eq!(base_name(".."), "module.wasm");
    }

    #[tokio::test]
    async fn file_stream_checks_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data = vec![7u8; UPLOAD_CHUNK + 10];
        std::fs::write(&path, &data).unwrap();
        let open = || tokio::fs::File::from_std(std::fs::File::open(&path).unwrap());

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let failure = Arc::default();
        let chunks: Vec<Bytes> = file_stream(
            open(),
            Digest::sha256_of(&data),
            data.len() as u64,
            tx,
            Arc::clone(&failure),
        )
        .try_collect()
        .await
        .unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), UPLOAD_CHUNK);
        assert_eq!(chunks.concat(), data);
        assert_eq!(rx.recv().await, Some(UPLOAD_CHUNK as u64));
        assert!(failure.lock().unwrap().is_none());

        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
        let res: Result<Vec<Bytes>, _> = file_stream(
            open(),
            Digest::sha256_of(b"other"),
            data.len() as u64,
            tx,
            Arc::clone(&failure),
        )
        .try_collect()
        .await;
        assert!(res.is_err());
        assert!(matches!(
            failure.lock().unwrap().take(),
            Some(StoreError::DigestMismatch { .. })
        ));

        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let failure: Arc<Mutex<Option<StoreError>>> = Arc::default();
        let res: Result<Vec<Bytes>, _> = file_stream(
            open(),
            Digest::sha256_of(&data),
            5,
            tx,
            Arc::clone(&failure),
        )
        .try_collect()
        .await;
        assert!(res.is_err());
        assert!(matches!(
            failure.lock().unwrap().take(),
            Some(StoreError::SizeMismatch { .. })
        ));
    }
}
