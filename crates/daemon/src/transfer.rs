//! Moving images in and out: pull, push, login, save and load, with Docker's JSON progress
//! messages.

use crate::{Daemon, DaemonError, ErrorKind, Result};
use berth_api::JsonMessage;
use berth_image::archive;
use berth_image::digest::Digest;
use berth_image::images::Image;
use berth_image::reference::Reference;
use berth_registry::{Credentials, Progress, RegistryError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

/// Pulls in progress, keyed by canonical reference. A pull of a reference already being
/// pulled with the same credentials joins it: it is sent the messages so far, then every new
/// one, and the same result; nothing is downloaded twice.
#[derive(Default)]
pub struct InFlightPulls(Mutex<HashMap<String, Arc<InFlight>>>);

/// One shared pull.
struct InFlight {
    creds: Credentials,
    /// Messages so far (replayed to a caller that joins) and the callers' streams.
    listeners: Mutex<(Vec<JsonMessage>, Vec<UnboundedSender<JsonMessage>>)>,
    /// The result, once the pull is over (the error as its class and message).
    done: watch::Sender<Option<std::result::Result<(), (ErrorKind, String)>>>,
}

impl InFlight {
    fn publish(&self, msg: JsonMessage) {
        let mut l = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        l.1.retain(|tx| tx.send(msg.clone()).is_ok());
        l.0.push(msg);
    }

    fn listen(&self, tx: UnboundedSender<JsonMessage>) {
        let mut l = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for m in &l.0 {
            let _ = tx.send(m.clone());
        }
        l.1.push(tx);
    }

    async fn wait(&self) -> Result<()> {
        let mut rx = self.done.subscribe();
        let result = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        match result {
            Some(Ok(())) => Ok(()),
            Some(Err((kind, message))) => Err(error_of_kind(kind, message)),
            None => Err(DaemonError::Internal("the pull was abandoned".into())),
        }
    }
}

impl InFlightPulls {
    /// Joins the pull of `key` or registers a new one; `true` when the caller must run it.
    fn join_or_lead(
        &self,
        key: &str,
        creds: &Credentials,
        progress: UnboundedSender<JsonMessage>,
    ) -> (Arc<InFlight>, bool) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(key)
            && f.creds == *creds
        {
            f.listen(progress);
            return (f.clone(), false);
        }
        let flight = Arc::new(InFlight {
            creds: creds.clone(),
            listeners: Mutex::new((Vec::new(), vec![progress])),
            done: watch::channel(None).0,
        });
        // A pull with other credentials is not shared, and not joinable either.
        map.entry(key.to_string()).or_insert_with(|| flight.clone());
        (flight, true)
    }

    fn finish(&self, key: &str, flight: &Arc<InFlight>, result: &Result<()>) {
        {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                map.remove(key);
            }
        }
        let shared = match result {
            Ok(()) => Ok(()),
            Err(e) => Err((e.kind(), e.to_string())),
        };
        flight.done.send_replace(Some(shared));
    }
}

/// An error passed from a shared pull to the callers that joined it: same class, same text.
fn error_of_kind(kind: ErrorKind, message: String) -> DaemonError {
    match kind {
        ErrorKind::NotFound => DaemonError::NotFoundMessage(message),
        ErrorKind::Conflict => DaemonError::Conflict(message),
        ErrorKind::InvalidArgument => DaemonError::Invalid(message),
        ErrorKind::Unavailable => DaemonError::Unavailable(message),
        ErrorKind::Unauthorized => DaemonError::Unauthorized(message),
        ErrorKind::Forbidden => DaemonError::Forbidden(message),
        ErrorKind::NotModified | ErrorKind::Internal => DaemonError::Internal(message),
    }
}

/// How `push` writes the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// A Docker-style image (OCI manifest, config, tar+gzip layers): the default.
    Docker,
    /// The CNCF Wasm OCI artifact: one `application/wasm` layer, for wkg and Spin tooling.
    WasmArtifact,
}

impl PushFormat {
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s.unwrap_or("") {
            "" | "docker" | "oci" => Ok(Self::Docker),
            "wasm-artifact" => Ok(Self::WasmArtifact),
            other => Err(DaemonError::Invalid(format!(
                "unknown push format {other:?}: use docker or wasm-artifact"
            ))),
        }
    }
}

impl From<RegistryError> for DaemonError {
    fn from(e: RegistryError) -> Self {
        if e.is_unauthorized() {
            DaemonError::Unauthorized(e.to_string())
        } else if e.is_not_found() {
            DaemonError::NotFoundMessage(e.to_string())
        } else if matches!(e, RegistryError::NotWasm { .. }) {
            DaemonError::Invalid(e.to_string())
        } else {
            DaemonError::Registry(e.to_string())
        }
    }
}

/// Docker's progress bar text: `[=====>    ]  1.2MB/5.6MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH).checked_div(total).unwrap_or(0) as usize;
    let mut bar = "=".repeat(filled.saturating_sub(1));
    if filled > 0 {
        bar.push('>');
    }
    format!(
        "[{bar:<width$}] {:>8}/{}",
        human_size(current),
        human_size(total),
        width = WIDTH as usize
    )
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", UNITS[u])
    }
}

fn status(text: impl Into<String>, id: Option<&str>) -> JsonMessage {
    JsonMessage {
        status: Some(text.into()),
        id: id.map(str::to_string),
        progress_detail: id.map(|_| serde_json::json!({})),
        ..Default::default()
    }
}

/// Turns registry progress events into Docker's messages (`pull` names its phases
/// differently from `push`).
fn reporter(tx: UnboundedSender<JsonMessage>, push: bool) -> impl Fn(Progress) + Send + Sync {
    move |p| {
        let msg = match p {
            Progress::Resolved { .. } => return,
            Progress::LayerStart { id, .. } => status(
                if push {
                    "Preparing"
                } else {
                    "Pulling fs layer"
                },
                Some(&id),
            ),
            Progress::LayerExists { id } => status(
                if push {
                    "Layer already exists"
                } else {
                    "Already exists"
                },
                Some(&id),
            ),
            Progress::LayerProgress { id, current, total } => JsonMessage {
                status: Some(if push { "Pushing" } else { "Downloading" }.into()),
                id: Some(id),
                progress: Some(progress_bar(current, total)),
                progress_detail: Some(serde_json::json!({"current": current, "total": total})),
                ..Default::default()
            },
            Progress::LayerDone { id } => {
                if !push {
                    let _ = tx.send(status("Download complete", Some(&id)));
                }
                status(if push { "Pushed" } else { "Pull complete" }, Some(&id))
            }
            Progress::Retrying { id, attempt, error } => status(
                format!("Retrying in a moment (attempt {attempt}): {error}"),
                Some(&id),
            ),
        };
        let _ = tx.send(msg);
    }
}

impl Daemon {
    /// `POST /images/create?fromImage=&tag=`: pulls, checks and compiles, then names the image.
    ///
    /// Concurrent pulls of one reference share one download (see [`InFlightPulls`]). The pull
    /// runs in its own task, so a caller going away does not cancel it for the others. Blobs
    /// land in the content store only complete and verified, and the image is named last, so
    /// a pull cut short (even by a crash) leaves no image behind, and pulling again fetches
    /// only the missing blobs.
    pub async fn pull(
        self: &Arc<Self>,
        from_image: &str,
        tag: Option<&str>,
        creds: Credentials,
        progress: UnboundedSender<JsonMessage>,
    ) -> Result<()> {
        let input = match tag.filter(|t| !t.is_empty()) {
            Some(t) if t.starts_with("sha256:") => format!("{from_image}@{t}"),
            Some(t) => format!("{from_image}:{t}"),
            None => from_image.to_string(),
        };
        let reference = Reference::parse(&input)
            .map_err(|e| DaemonError::Invalid(format!("invalid reference format: {e}")))?;
        let key = reference.to_string();
        let (flight, lead) = self.pulls.join_or_lead(&key, &creds, progress);
        if !lead {
            tracing::debug!(reference = %key, "joining a pull in progress");
        } else {
            let this = self.clone();
            let flight = flight.clone();
            tokio::spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<JsonMessage>();
                let forward = {
                    let flight = flight.clone();
                    tokio::spawn(async move {
                        while let Some(m) = rx.recv().await {
                            flight.publish(m);
                        }
                    })
                };
                let result = this.pull_now(reference, creds, tx).await;
                // Every message is out before the result.
                let _ = forward.await;
                this.pulls.finish(&key, &flight, &result);
            });
        }
        flight.wait().await
    }

    /// One pull, reporting to `progress`.
    async fn pull_now(
        self: &Arc<Self>,
        reference: Reference,
        creds: Credentials,
        progress: UnboundedSender<JsonMessage>,
    ) -> Result<()> {
        let _ = progress.send(status(
            format!("Pulling from {}", reference.familiar_repository()),
            Some(reference.tag().unwrap_or("latest")),
        ));
        let report = reporter(progress.clone(), false);
        let pulled = self
            .registry
            .pull(&reference, &creds, self.images.content(), &report)
            .await?;
        let image = self.images.get(&pulled.manifest)?;
        let this = self.clone();
        let img = image.clone();
        tokio::task::spawn_blocking(move || this.ready_image(&img))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;
        let _guard = self.image_lock.lock().await;
        let named = if reference.tag().is_some() {
            let previous = self.images.tag(&reference, &pulled.manifest)?;
            previous.as_ref() == Some(&pulled.manifest)
        } else {
            let known = self.images.manifests().contains(&pulled.manifest);
            self.images.add_dangling(&pulled.manifest)?;
            known
        };
        self.images.add_repo_digest(
            &pulled.manifest,
            format!("{}@{}", reference.familiar_repository(), pulled.repo_digest),
        )?;
        let _ = progress.send(status(format!("Digest: {}", pulled.repo_digest), None));
        let _ = progress.send(status(
            if named {
                format!("Status: Image is up to date for {}", reference.familiar())
            } else {
                format!(
                    "Status: Downloaded newer image for {}",
                    reference.familiar()
                )
            },
            None,
        ));
        Ok(())
    }

    /// `POST /images/{name}/push?tag=`.
    pub async fn push(
        self: &Arc<Self>,
        name: &str,
        tag: Option<&str>,
        format: PushFormat,
        creds: Credentials,
        progress: UnboundedSender<JsonMessage>,
    ) -> Result<()> {
        let input = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let reference = Reference::parse(&input)
            .map_err(|e| DaemonError::Invalid(format!("invalid reference format: {e}")))?;
        let image = self.resolve_image(&reference.familiar())?;
        let _ = progress.send(status(
            format!(
                "The push refers to repository [{}]",
                reference.familiar_repository()
            ),
            None,
        ));
        let report = reporter(progress.clone(), true);
        let pushed = match format {
            PushFormat::Docker => {
                self.registry
                    .push(
                        &reference,
                        &creds,
                        self.images.content(),
                        &image.manifest_digest,
                        &report,
                    )
                    .await?
            }
            PushFormat::WasmArtifact => {
                let (bytes, file_name) = self.single_module(&image).await?;
                let component =
                    berth_runtime::WasmKind::detect(&bytes)? == berth_runtime::WasmKind::Component;
                self.registry
                    .push_wasm_artifact(&reference, &creds, &bytes, &file_name, component, &report)
                    .await?
            }
        };
        if format == PushFormat::Docker {
            self.images.add_repo_digest(
                &image.manifest_digest,
                format!("{}@{}", reference.familiar_repository(), pushed.digest),
            )?;
        }
        let tag = reference.tag().unwrap_or("latest").to_string();
        let _ = progress.send(status(
            format!("{tag}: digest: {} size: {}", pushed.digest, pushed.size),
            None,
        ));
        let _ = progress.send(JsonMessage {
            progress_detail: Some(serde_json::json!({})),
            aux: Some(serde_json::json!({
                "Tag": tag,
                "Digest": pushed.digest.to_string(),
                "Size": pushed.size,
            })),
            ..Default::default()
        });
        Ok(())
    }

    /// The Wasm module of an image whose only content it is (for `--format wasm-artifact`).
    async fn single_module(self: &Arc<Self>, image: &Arc<Image>) -> Result<(Vec<u8>, String)> {
        let this = self.clone();
        let img = image.clone();
        tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, String)> {
            let ready = this.ready_image(&img)?;
            let (path, _) = ready.entry.clone().ok_or_else(|| {
                DaemonError::Invalid("image has no entrypoint module to push as an artifact".into())
            })?;
            let rel = crate::guest_path("/", &path);
            let mut others = Vec::new();
            collect_files(&ready.snapshot, &ready.snapshot, &mut others);
            others.retain(|p| Path::new(p) != rel);
            if !others.is_empty() {
                return Err(DaemonError::Invalid(format!(
                    "--format wasm-artifact needs an image whose only content is its Wasm module; this image also has /{}",
                    others[0]
                )));
            }
            let bytes = std::fs::read(ready.snapshot.join(&rel))
                .map_err(DaemonError::io(format!("reading {path}")))?;
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app.wasm".into());
            Ok((bytes, name))
        })
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?
    }

    /// `POST /auth`: checks credentials against the registry.
    pub async fn login(&self, server: &str, username: &str, password: &str) -> Result<()> {
        let server = if server.is_empty() {
            "https://index.docker.io/v1/"
        } else {
            server
        };
        self.registry.login(server, username, password).await?;
        Ok(())
    }

    /// `GET /images/get`: writes an OCI image-layout tarball of the named images to a temp
    /// file and returns it.
    pub async fn save(self: &Arc<Self>, names: Vec<String>) -> Result<tempfile::NamedTempFile> {
        if names.is_empty() {
            return Err(DaemonError::Invalid("no images to save".into()));
        }
        let mut images = Vec::new();
        for n in &names {
            let img = self.resolve_image(n)?;
            let all = self.images.names_of(&img.manifest_digest);
            let wanted = Reference::parse(n)
                .ok()
                .filter(|r| all.contains(r))
                .map(|r| vec![r])
                .unwrap_or(all);
            images.push((img, wanted));
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = tempfile::NamedTempFile::new_in(this.data_root())
                .map_err(DaemonError::io("creating save file"))?;
            archive::save(
                &this.images,
                &images,
                std::io::BufWriter::new(file.as_file_mut()),
            )
            .map_err(|e| DaemonError::Internal(e.to_string()))?;
            Ok(file)
        })
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?
    }

    /// `POST /images/load`: loads an archive, checks and compiles each image, names them.
    pub async fn load(
        self: &Arc<Self>,
        tarball: std::path::PathBuf,
        progress: UnboundedSender<JsonMessage>,
    ) -> Result<()> {
        let this = self.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Vec<archive::Loaded>> {
            let file = std::fs::File::open(&tarball).map_err(DaemonError::io("reading archive"))?;
            let loaded = archive::load(&this.images, file, this.data_root())
                .map_err(|e| DaemonError::Invalid(e.to_string()))?;
            for l in &loaded {
                let image = this.images.get(&l.manifest)?;
                this.ready_image(&image)?;
            }
            Ok(loaded)
        })
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
        let _guard = self.image_lock.lock().await;
        for l in loaded {
            match &l.name {
                Some(name) => {
                    self.images.tag(name, &l.manifest)?;
                    let _ = progress.send(JsonMessage::stream(format!(
                        "Loaded image: {}\n",
                        name.familiar()
                    )));
                }
                None => {
                    self.images.add_dangling(&l.manifest)?;
                    let id: Digest = self.images.get(&l.manifest)?.id.clone();
                    let _ = progress.send(JsonMessage::stream(format!("Loaded image ID: {id}\n")));
                }
            }
        }
        Ok(())
    }
}

/// Relative paths of every non-directory entry under `dir`.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(root, &p, out),
            Ok(_) => {
                if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
            Err(_) => {}
        }
    }
}

/// Compile-time check: the server spawns these futures, so they must be `Send`.
#[cfg(test)]
#[allow(dead_code)]
async fn transfer_futures_are_send(d: Arc<Daemon>, tx: UnboundedSender<JsonMessage>, user: String) {
    fn is_send<T: Send>(_: &T) {}
    let f = async { d.login(&user, &user, &user).await };
    is_send(&f);
    let r = berth_registry::Registry::new(Default::default());
    let store = berth_image::store::ContentStore::open("/x").unwrap();
    let reference = Reference::parse("a").unwrap();
    let cb = |_p: Progress| {};
    let g = async {
        r.pull(&reference, &Credentials::Anonymous, &store, &cb)
            .await
    };
    is_send(&g);
    let h = async { d.pull("a", None, Credentials::Anonymous, tx).await };
    is_send(&h);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars_look_like_dockers() {
        let bar = progress_bar(500, 1000);
        assert!(bar.starts_with("[========================>"), "{bar}");
        assert!(
            bar.ends_with("500B/1kB") || bar.contains("500B/1.000kB"),
            "{bar}"
        );
        assert!(progress_bar(0, 0).starts_with("[ "));
    }

    #[test]
    fn push_formats_parse() {
        assert_eq!(PushFormat::parse(None).unwrap(), PushFormat::Docker);
        assert_eq!(
            PushFormat::parse(Some("wasm-artifact")).unwrap(),
            PushFormat::WasmArtifact
        );
        assert!(PushFormat::parse(Some("zip")).is_err());
    }
}
