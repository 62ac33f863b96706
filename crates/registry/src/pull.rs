//! `Registry::pull`.

use crate::auth::read_capped;
use crate::document::{
    Document, Selection, check_wasm_config, is_index_type, is_supported_config, is_wanted_layer,
    parse_document, select_wasm,
};
use crate::error::{ErrCtx, RegistryError, commit_error};
use crate::session::{DOCKER_CONTENT_DIGEST, NetError, Session, StallGuard};
use crate::util::{ATTEMPTS, backoff};
use crate::{Credentials, Progress, Pulled, Registry};
use berth_image::digest::{Digest, Sha256Hasher};
use berth_image::images::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Manifest};
use berth_image::reference::Reference;
use berth_image::store::{BlobWriter, ContentStore};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::RegistryOperation;
use std::collections::BTreeSet;
use std::io::Write;

/// Blobs transferred at once.
pub(crate) const MAX_PARALLEL: usize = 4;
/// `LayerProgress` is sent at most once per this many bytes.
pub(crate) const PROGRESS_STEP: u64 = 512 * 1024;
/// The largest layer accepted: what the unpacker would accept once uncompressed, so a
/// descriptor claiming more (`2^62` bytes) is refused before a byte is fetched.
pub(crate) const MAX_LAYER_SIZE: u64 = berth_image::unpack::MAX_UNPACKED_BYTES;
/// Layers downloaded for one pull, at most (each is held, verified, until the pull commits).
pub(crate) const MAX_LAYERS: usize = 256;

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
    check_digest_header(&sess, top.digest_header.as_deref(), &repo_digest)?;
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
        check_digest_header(&sess, fetched.digest_header.as_deref(), &digest)?;
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
    // Every declared size is checked before a byte is fetched.
    if let Some(layer) = manifest
        .layers
        .iter()
        .find(|l| is_wanted_layer(&l.media_type) && l.size > MAX_LAYER_SIZE)
    {
        return Err(RegistryError::TooLarge {
            reference: format!("{}@{}", sess.display, layer.digest),
            what: "layer".to_string(),
            size: layer.size,
            limit: MAX_LAYER_SIZE,
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
    // Fetched blobs are verified but committed only once everything has arrived: a pull that
    // fails stores nothing.
    let mut verified: Vec<(Digest, u64, BlobWriter)> = Vec::new();
    let config_bytes = if store.contains(&config.digest) {
        store.read(&config.digest, MAX_CONFIG_SIZE)?
    } else {
        let fetched = fetch_blob(
            &sess,
            store,
            &config.digest,
            config.size,
            false,
            true,
            progress,
        )
        .await?;
        verified.push((config.digest.clone(), config.size, fetched.writer));
        fetched.bytes.unwrap_or_default()
    };
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
    if to_fetch.len() > MAX_LAYERS {
        return Err(ctx.protocol(format!(
            "{}: the manifest lists {} layers to download, the limit is {MAX_LAYERS}",
            sess.display,
            to_fetch.len()
        )));
    }
    let sess_ref = &sess;
    // Owned descriptors: a closure over `&Descriptor` makes the future not provably `Send`
    // (rust-lang/rust#102211).
    let layers: Vec<(Digest, u64, BlobWriter)> =
        futures_util::stream::iter(to_fetch.into_iter().map(
            |layer: berth_image::images::Descriptor| async move {
                let id = layer.digest.short().to_string();
                progress(Progress::LayerStart {
                    id: id.clone(),
                    size: layer.size,
                });
                let fetched = fetch_blob(
                    sess_ref,
                    store,
                    &layer.digest,
                    layer.size,
                    true,
                    false,
                    progress,
                )
                .await?;
                progress(Progress::LayerDone { id });
                Ok::<_, RegistryError>((layer.digest, layer.size, fetched.writer))
            },
        ))
        .buffer_unordered(MAX_PARALLEL)
        .try_collect()
        .await?;
    verified.extend(layers);

    // 5. Commit: the blobs, then the manifest last, its exact bytes, checked once more.
    let bytes_len = manifest_bytes.len() as u64;
    let expected = manifest_digest.clone();
    let store2 = store.clone();
    let display = sess.display.clone();
    tokio::task::spawn_blocking(move || -> Result<(), RegistryError> {
        // Layers and config first (already verified; the commit checks them once more).
        for (digest, size, w) in verified {
            w.commit(Some((&digest, size)))
                .map_err(|e| commit_error(&display, e))?;
        }
        let mut w = store2.writer()?;
        w.write_all(&manifest_bytes)
            .map_err(|e| write_error(&expected, e))?;
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

/// Writing a blob failed (e.g. the disk is full): the error names the blob.
fn write_error(digest: &Digest, source: std::io::Error) -> RegistryError {
    RegistryError::Store(berth_image::store::StoreError::Write {
        what: format!("blob {digest}"),
        source,
    })
}

/// Refuses a `Docker-Content-Digest` header that names other content than what was received
/// (or requested): the header is never used, but a registry that lies in it is not trusted.
/// Headers for another algorithm than sha256 cannot be checked and are ignored.
fn check_digest_header(
    sess: &Session<'_>,
    header: Option<&str>,
    actual: &Digest,
) -> Result<(), RegistryError> {
    match header {
        Some(h) if h.starts_with("sha256:") && h != actual.as_str() => {
            Err(sess.ctx().protocol(format!(
                "{}: the registry's Docker-Content-Digest header says {}, but the content is {actual}",
                sess.display,
                h.escape_debug()
            )))
        }
        _ => Ok(()),
    }
}

/// Why one download attempt failed.
enum Failure {
    /// Worth another attempt (dropped connection, stall, timeout, 5xx).
    Retry(String),
    /// Final.
    Fatal(RegistryError),
}

/// A blob downloaded in full, whose size and digest have been checked, not yet committed.
pub(crate) struct FetchedBlob {
    pub writer: BlobWriter,
    /// The bytes, when asked for (configs).
    pub bytes: Option<Vec<u8>>,
}

/// A download in progress: the ingest file, the hash of what it holds, and a copy when
/// the bytes are wanted.
struct Partial {
    writer: BlobWriter,
    hasher: Sha256Hasher,
    copy: Option<Vec<u8>>,
}

/// Downloads one blob into an ingest file of the store, verifying its size while it streams
/// and its digest at the end, retrying and resuming with `Range`. `report` sends
/// `LayerProgress` events; `keep` also returns the bytes (for configs, bounded by their
/// limit). The caller commits the writer.
pub(crate) async fn fetch_blob(
    sess: &Session<'_>,
    store: &ContentStore,
    digest: &Digest,
    size: u64,
    report: bool,
    keep: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<FetchedBlob, RegistryError> {
    let ctx = sess.blob_ctx(digest);
    let mut partial: Option<Partial> = None;
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
            keep,
            &mut partial,
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
    let Some(p) = partial else {
        return Err(RegistryError::Internal {
            message: format!("download of {digest} finished without data"),
        });
    };
    // Size first (the spec's order), then the digest of exactly those bytes.
    if p.writer.written() != size {
        return Err(RegistryError::SizeMismatch {
            reference: ctx.reference.clone(),
            digest: digest.clone(),
            expected: size,
            actual: p.writer.written(),
        });
    }
    let actual = p.hasher.finish();
    if actual != *digest {
        return Err(RegistryError::DigestMismatch {
            reference: ctx.reference.clone(),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(FetchedBlob {
        writer: p.writer,
        bytes: p.copy,
    })
}

/// One attempt: fresh, or resumed from what `partial` holds.
#[allow(clippy::too_many_arguments)]
async fn fetch_attempt(
    sess: &Session<'_>,
    store: &ContentStore,
    ctx: &ErrCtx,
    digest: &Digest,
    size: u64,
    keep: bool,
    partial: &mut Option<Partial>,
    reported: &mut u64,
    report: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), Failure> {
    let offset = partial.as_ref().map_or(0, |p| p.writer.written());
    if offset == size && partial.is_some() {
        // Every byte arrived before the connection failed: the caller checks them.
        return Ok(());
    }
    let resume = offset > 0 && offset < size;
    if !resume {
        *partial = None;
        *reported = 0;
    }
    let net_failure = |e: NetError| {
        if e.is_retryable() {
            Failure::Retry(e.message())
        } else {
            Failure::Fatal(e.into_error(ctx))
        }
    };
    // Only a URL built from the digest is fetched: a descriptor's foreign `urls` never are.
    let mut res = sess
        .get_blob(digest, if resume { offset } else { 0 })
        .await
        .map_err(net_failure)?;
    let status = res.status().as_u16();
    match status {
        200 => {
            if resume {
                // The registry ignored Range: start over.
                *partial = None;
                *reported = 0;
            }
        }
        206 if resume => {
            let start = res
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let len = res.content_length();
            if start != Some(offset) || len.is_some_and(|len| len != size - offset) {
                // Not the range asked for: start again from scratch next time.
                *partial = None;
                *reported = 0;
                return Err(Failure::Retry(format!(
                    "the registry answered a range request for bytes {offset}- with {} bytes at {}",
                    len.map_or("?".to_string(), |l| l.to_string()),
                    start.map_or("?".to_string(), |s| s.to_string()),
                )));
            }
            tracing::debug!(%digest, offset, "resuming download");
        }
        206 => {
            return Err(Failure::Fatal(ctx.protocol(format!(
                "GET blob {digest}: partial content (206) to a request without Range"
            ))));
        }
        s if (500..=599).contains(&s) || s == 429 => {
            return Err(Failure::Retry(format!("HTTP {s}")));
        }
        s if (200..=299).contains(&s) => {
            return Err(Failure::Fatal(ctx.protocol(format!(
                "GET blob {digest}: unexpected HTTP status {s}"
            ))));
        }
        s => {
            let body = read_capped(res, 4096).await;
            return Err(Failure::Fatal(ctx.status(s, "GET blob", &body)));
        }
    }
    if let Some(h) = res.headers().get(DOCKER_CONTENT_DIGEST) {
        let h = String::from_utf8_lossy(h.as_bytes());
        if h.trim() != digest.as_str() {
            return Err(Failure::Fatal(ctx.protocol(format!(
                "GET blob {digest}: the registry's Docker-Content-Digest header says {}",
                h.trim().escape_debug()
            ))));
        }
    }
    let p = match partial {
        Some(p) => p,
        None => {
            if let Some(len) = res.content_length()
                && len != size
            {
                return Err(Failure::Fatal(RegistryError::SizeMismatch {
                    reference: ctx.reference.clone(),
                    digest: digest.clone(),
                    expected: size,
                    actual: len,
                }));
            }
            let writer = store.writer().map_err(|e| Failure::Fatal(e.into()))?;
            partial.insert(Partial {
                writer,
                hasher: Sha256Hasher::new(),
                copy: keep.then(Vec::new),
            })
        }
    };
    let id = digest.short();
    let mut guard = StallGuard::new(sess.stall(), size - p.writer.written());
    loop {
        let remaining = size.saturating_sub(p.writer.written());
        match guard.next_chunk(&mut res, remaining).await {
            Ok(Some(chunk)) => {
                let total = p.writer.written() + chunk.len() as u64;
                if total > size {
                    return Err(Failure::Fatal(RegistryError::SizeMismatch {
                        reference: ctx.reference.clone(),
                        digest: digest.clone(),
                        expected: size,
                        actual: total,
                    }));
                }
                p.writer
                    .write_all(&chunk)
                    .map_err(|e| Failure::Fatal(write_error(digest, e)))?;
                p.hasher.update(&chunk);
                if let Some(copy) = &mut p.copy {
                    copy.extend_from_slice(&chunk);
                }
                if report && total.saturating_sub(*reported) >= PROGRESS_STEP {
                    *reported = total;
                    progress(Progress::LayerProgress {
                        id: id.to_string(),
                        current: total,
                        total: size,
                    });
                }
            }
            Ok(None) => break,
            Err(e) if e.is_retryable() => {
                return Err(Failure::Retry(format!(
                    "the transfer was cut short after {} of {size} bytes: {}",
                    p.writer.written(),
                    e.message()
                )));
            }
            Err(e) => return Err(Failure::Fatal(e.into_error(ctx))),
        }
    }
    if p.writer.written() < size {
        // The registry ended the body on purpose (a complete chunked body): it is short.
        return Err(Failure::Fatal(RegistryError::SizeMismatch {
            reference: ctx.reference.clone(),
            digest: digest.clone(),
            expected: size,
            actual: p.writer.written(),
        }));
    }
    Ok(())
}
