//! `Registry::pull`.

use crate::document::{
    Document, Selection, check_wasm_config, is_index_type, is_supported_config, is_wanted_layer,
    parse_document, select_wasm,
};
use crate::error::{ErrCtx, RegistryError, commit_error, error_chain, oci_is_retryable};
use crate::session::Session;
use crate::util::{ATTEMPTS, backoff};
use crate::{Credentials, Progress, Pulled, Registry};
use berth_image::digest::Digest;
use berth_image::images::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Manifest};
use berth_image::reference::Reference;
use berth_image::store::{BlobWriter, ContentStore};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use oci_client::client::BlobResponse;
use std::collections::BTreeSet;
use std::io::Write;

/// Blobs transferred at once.
pub(crate) const MAX_PARALLEL: usize = 4;
/// `LayerProgress` is sent at most once per this many bytes.
pub(crate) const PROGRESS_STEP: u64 = 512 * 1024;

pub(crate) async fn pull(
    registry: &Registry,
    reference: &Reference,
    creds: &Credentials,
    store: &ContentStore,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Pulled, RegistryError> {
    let mut sess = Session::new(registry, reference, creds)?;
    sess.authorize(RegistryOperation::Pull).await?;
    let ctx = sess.ctx();

    // 1. What the reference points to.
    let (target, expected) = match (reference.digest(), reference.tag()) {
        (Some(d), _) => (d.to_string(), Some(d.clone())),
        (None, Some(t)) => (t.to_string(), None),
        (None, None) => ("latest".to_string(), None),
    };
    let top = sess
        .get_manifest(&target, MAX_MANIFEST_SIZE, "manifest", progress)
        .await?;
    let repo_digest = Digest::sha256_of(&top.bytes);
    if let Some(expected) = expected
        && expected != repo_digest
    {
        return Err(RegistryError::DigestMismatch {
            reference: sess.display.clone(),
            expected,
            actual: repo_digest,
        });
    }
    progress(Progress::Resolved {
        digest: repo_digest.clone(),
    });
    let mut doc = parse_document(&top.bytes, top.content_type.as_deref())
        .map_err(|m| ctx.protocol(format!("{}: {m}", sess.display)))?;
    let mut manifest_bytes = top.bytes;
    let mut manifest_digest = repo_digest.clone();

    // 2. Down an index (at most one nested level) to the Wasm image manifest.
    let mut depth = 0;
    let manifest: Manifest = loop {
        let index = match doc {
            Document::Manifest(m) => break m,
            Document::Index(index) => index,
        };
        if depth >= 2 {
            return Err(ctx.protocol(format!(
                "{}: image indexes nested more than one level deep are not supported",
                sess.display
            )));
        }
        depth += 1;
        let entry = match select_wasm(&index) {
            Selection::Wasm(e) => e,
            Selection::Unlabelled(e) if !is_index_type(&e.media_type) || depth == 1 => e,
            Selection::Unlabelled(_) => {
                return Err(ctx.protocol(format!(
                    "{}: image indexes nested more than one level deep are not supported",
                    sess.display
                )));
            }
            Selection::None(platforms) => {
                return Err(RegistryError::NotWasm {
                    reference: sess.display.clone(),
                    platforms,
                });
            }
        };
        let digest = Digest::parse(&entry.digest)
            .map_err(|e| ctx.protocol(format!("{}: index entry: {e}", sess.display)))?;
        let what = if is_index_type(&entry.media_type) {
            "index"
        } else {
            "manifest"
        };
        if entry.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                reference: format!("{}@{digest}", sess.display),
                what: what.to_string(),
                size: entry.size,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let fetched = sess
            .get_manifest(digest.as_str(), entry.size, what, progress)
            .await
            .map_err(|e| match e {
                // A body longer than its descriptor is a size mismatch, not a size limit.
                RegistryError::TooLarge { size, .. } => RegistryError::SizeMismatch {
                    reference: sess.display.clone(),
                    digest: digest.clone(),
                    expected: entry.size,
                    actual: size,
                },
                other => other,
            })?;
        if fetched.bytes.len() as u64 != entry.size {
            return Err(RegistryError::SizeMismatch {
                reference: sess.display.clone(),
                digest: digest.clone(),
                expected: entry.size,
                actual: fetched.bytes.len() as u64,
            });
        }
        let actual = Digest::sha256_of(&fetched.bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                reference: format!("{}@{digest}", sess.display),
                expected: digest,
                actual,
            });
        }
        doc = parse_document(&fetched.bytes, fetched.content_type.as_deref())
            .map_err(|m| ctx.protocol(format!("{}@{digest}: {m}", sess.display)))?;
        let got = match doc {
            Document::Manifest(_) => "manifest",
            Document::Index(_) => "index",
        };
        if let Some(declared) = declared_kind(&entry.media_type)
            && declared != got
        {
            return Err(ctx.protocol(format!(
                "{}@{digest}: the index lists an {declared} but the document is an {got}",
                sess.display
            )));
        }
        manifest_bytes = fetched.bytes;
        manifest_digest = digest;
    };

    // 3. The config: accepted type, bounded size, Wasm architecture.
    let config = &manifest.config;
    if !is_supported_config(&config.media_type) {
        return Err(RegistryError::UnsupportedMediaType {
            reference: sess.display.clone(),
            what: "config".to_string(),
            media_type: config.media_type.clone(),
        });
    }
    if config.size > MAX_CONFIG_SIZE {
        return Err(RegistryError::TooLarge {
            reference: sess.display.clone(),
            what: "config".to_string(),
            size: config.size,
            limit: MAX_CONFIG_SIZE,
        });
    }
    if !store.contains(&config.digest) {
        fetch_blob(&sess, store, &config.digest, config.size, false, progress).await?;
    }
    let config_bytes = store.read(&config.digest, MAX_CONFIG_SIZE)?;
    match check_wasm_config(&config.media_type, &config_bytes) {
        Ok(()) => {}
        Err(Ok(platforms)) => {
            return Err(RegistryError::NotWasm {
                reference: sess.display.clone(),
                platforms,
            });
        }
        Err(Err(message)) => {
            return Err(ctx.protocol(format!("{}: {message}", sess.display)));
        }
    }

    // 4. The layers: skip what is present or not wanted, download the rest four at a time.
    let mut seen = BTreeSet::new();
    let mut to_fetch = Vec::new();
    for layer in &manifest.layers {
        if !is_wanted_layer(&layer.media_type) || !seen.insert(layer.digest.clone()) {
            continue;
        }
        if store.contains(&layer.digest) {
            progress(Progress::LayerExists {
                id: layer.digest.short().to_string(),
            });
        } else {
            to_fetch.push(layer.clone());
        }
    }
    let sess_ref = &sess;
    // Owned descriptors: a closure over `&Descriptor` makes the future not provably `Send`
    // (rust-lang/rust#102211).
    futures_util::stream::iter(to_fetch.into_iter().map(
        |layer: berth_image::images::Descriptor| async move {
            let id = layer.digest.short().to_string();
            progress(Progress::LayerStart {
                id: id.clone(),
                size: layer.size,
            });
            fetch_blob(sess_ref, store, &layer.digest, layer.size, true, progress).await?;
            progress(Progress::LayerDone { id });
            Ok::<(), RegistryError>(())
        },
    ))
    .buffer_unordered(MAX_PARALLEL)
    .try_collect::<Vec<()>>()
    .await?;

    // 5. The manifest last, its exact bytes, checked once more on commit.
    let bytes_len = manifest_bytes.len() as u64;
    let expected = manifest_digest.clone();
    let store2 = store.clone();
    let display = sess.display.clone();
    tokio::task::spawn_blocking(move || -> Result<(), RegistryError> {
        let mut w = store2.writer()?;
        w.write_all(&manifest_bytes)
            .map_err(|e| io_store_error(store2.path(&expected), e))?;
        w.commit(Some((&expected, bytes_len)))
            .map_err(|e| commit_error(&display, e))?;
        Ok(())
    })
    .await
    .map_err(|e| RegistryError::Internal {
        message: format!("storing the manifest: {e}"),
    })??;

    Ok(Pulled {
        repo_digest,
        manifest: manifest_digest,
        config: manifest.config.digest.clone(),
    })
}

/// `index` or `manifest` for a declared entry media type, `None` for an unknown one.
fn declared_kind(media_type: &str) -> Option<&'static str> {
    if is_index_type(media_type) {
        Some("index")
    } else if crate::document::is_manifest_type(media_type) {
        Some("manifest")
    } else {
        None
    }
}

fn io_store_error(path: std::path::PathBuf, source: std::io::Error) -> RegistryError {
    RegistryError::Store(berth_image::store::StoreError::Io { path, source })
}

/// Why one download attempt failed.
enum Failure {
    /// Worth another attempt (dropped connection, timeout, 5xx).
    Retry(String),
    /// Final.
    Fatal(RegistryError),
}

/// Downloads one blob into the store, verifying size while streaming and digest on commit,
/// retrying and resuming with `Range`. `report` sends `LayerProgress` events.
pub(crate) async fn fetch_blob(
    sess: &Session<'_>,
    store: &ContentStore,
    digest: &Digest,
    size: u64,
    report: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), RegistryError> {
    let ctx = sess.blob_ctx(digest);
    let mut writer: Option<BlobWriter> = None;
    let mut reported = 0u64;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match fetch_attempt(
            sess,
            store,
            &ctx,
            digest,
            size,
            &mut writer,
            &mut reported,
            report,
            progress,
        )
        .await
        {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(message)) => {
                if attempt >= ATTEMPTS {
                    return Err(ctx.transport(format!(
                        "downloading {digest} failed after {ATTEMPTS} attempts: {message}"
                    )));
                }
                tracing::warn!(%digest, attempt, error = %message, "blob download failed, retrying");
                progress(Progress::Retrying {
                    id: digest.short().to_string(),
                    attempt: attempt + 1,
                    error: message,
                });
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    let Some(w) = writer else {
        return Err(RegistryError::Internal {
            message: format!("download of {digest} finished without data"),
        });
    };
    let expected = digest.clone();
    let reference = ctx.reference.clone();
    tokio::task::spawn_blocking(move || w.commit(Some((&expected, size))))
        .await
        .map_err(|e| RegistryError::Internal {
            message: format!("storing {digest}: {e}"),
        })?
        .map_err(|e| commit_error(&reference, e))?;
    Ok(())
}

/// One attempt: fresh, or resumed from what `writer` holds.
#[allow(clippy::too_many_arguments)]
async fn fetch_attempt(
    sess: &Session<'_>,
    store: &ContentStore,
    ctx: &ErrCtx,
    digest: &Digest,
    size: u64,
    writer: &mut Option<BlobWriter>,
    reported: &mut u64,
    report: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), Failure> {
    let oci_ref = sess.oci_digest(digest);
    // A bare digest string: oci-client never follows a descriptor's foreign `urls` then.
    let layer: &str = digest.as_str();
    let offset = writer.as_ref().map_or(0, BlobWriter::written);
    if offset == size && writer.is_some() {
        // Every byte arrived before the connection failed: the commit checks them.
        return Ok(());
    }
    let oci_failure = |e: oci_client::errors::OciDistributionError| {
        if oci_is_retryable(&e) {
            Failure::Retry(error_chain(&e))
        } else {
            Failure::Fatal(ctx.oci(e))
        }
    };
    let mut stream = if offset > 0 && offset < size {
        match sess
            .client
            .pull_blob_stream_partial(&oci_ref, layer, offset, None)
            .await
            .map_err(oci_failure)?
        {
            BlobResponse::Partial(s) => {
                if s.content_length.is_some_and(|len| len != size - offset) {
                    // Not the range asked for: start again from scratch next time.
                    *writer = None;
                    *reported = 0;
                    return Err(Failure::Retry(format!(
                        "the registry answered a range request for bytes {offset}- with {} bytes",
                        s.content_length.unwrap_or_default()
                    )));
                }
                tracing::debug!(%digest, offset, "resuming download");
                s
            }
            BlobResponse::Full(s) => {
                // The registry ignored Range: start over.
                *writer = None;
                *reported = 0;
                s
            }
        }
    } else {
        *writer = None;
        *reported = 0;
        sess.client
            .pull_blob_stream(&oci_ref, layer)
            .await
            .map_err(oci_failure)?
    };
    let w = match writer {
        Some(w) => w,
        None => {
            if let Some(len) = stream.content_length
                && len != size
            {
                return Err(Failure::Fatal(RegistryError::SizeMismatch {
                    reference: ctx.reference.clone(),
                    digest: digest.clone(),
                    expected: size,
                    actual: len,
                }));
            }
            writer.insert(store.writer().map_err(|e| Failure::Fatal(e.into()))?)
        }
    };
    let id = digest.short();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                let total = w.written() + chunk.len() as u64;
                if total > size {
                    return Err(Failure::Fatal(RegistryError::SizeMismatch {
                        reference: ctx.reference.clone(),
                        digest: digest.clone(),
                        expected: size,
                        actual: total,
                    }));
                }
                w.write_all(&chunk)
                    .map_err(|e| Failure::Fatal(io_store_error(store.path(digest), e)))?;
                if report && total.saturating_sub(*reported) >= PROGRESS_STEP {
                    *reported = total;
                    progress(Progress::LayerProgress {
                        id: id.to_string(),
                        current: total,
                        total: size,
                    });
                }
            }
            Err(e) if is_verification_error(&e) => {
                // oci-client's own check at the end of the stream: every byte arrived, the
                // commit compares them against the requested digest and reports it.
                break;
            }
            Err(e) => {
                return Err(Failure::Retry(format!(
                    "connection lost after {} of {size} bytes: {}",
                    w.written(),
                    error_chain(&e)
                )));
            }
        }
    }
    if w.written() < size {
        return Err(Failure::Retry(format!(
            "the registry closed the transfer after {} of {size} bytes",
            w.written()
        )));
    }
    Ok(())
}

/// Whether a stream error is `oci-client`'s digest verification failure.
fn is_verification_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<oci_client::errors::DigestError>()
            .is_some()
    })
}
