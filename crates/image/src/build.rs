//! The Dockerfile-style builder: a build context directory in, an image manifest out.
//!
//! Every instruction updates the image config; `COPY`/`ADD` also write one tar+gzip layer into
//! the content store. Each step has a cache key chained from the previous step's key, its text
//! and (for copies) the bytes, names and modes of the files it copies, so unchanged steps reuse
//! their layers ("Using cache"). The result is a Docker-style Wasm image: `os: wasi`,
//! `architecture: wasm`, the `.wasm` path as Entrypoint. Checking that the entrypoint is valid
//! Wasm needs the runtime, so the daemon does it before it names the image.

use crate::digest::{Digest, Sha256Hasher};
use crate::dockerfile::{self, Instruction, InstructionKind};
use crate::dockerignore::{self, DockerIgnore};
use crate::images::{Descriptor, History, ImageConfig, ImageError, ImageStore, media};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Dockerfile(#[from] dockerfile::DockerfileError),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("Dockerfile line {line}: {message}")]
    Step { line: usize, message: String },
    #[error("build context I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Path of the Dockerfile inside the context (default `Dockerfile`).
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
}

/// The built image, not yet named.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub manifest: Digest,
    pub image_id: Digest,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    layer: Descriptor,
    diff_id: Digest,
}

/// Builds images into an [`ImageStore`], caching layers under `cache_dir`.
pub struct Builder<'a> {
    images: &'a ImageStore,
    cache_dir: PathBuf,
}

impl<'a> Builder<'a> {
    pub fn new(images: &'a ImageStore, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            images,
            cache_dir: cache_dir.into(),
        }
    }

    /// Runs the build; `progress` receives the lines `docker build` prints.
    pub fn build(
        &self,
        context: &Path,
        opts: &BuildOptions,
        progress: &mut dyn FnMut(String),
    ) -> Result<BuildOutput, BuildError> {
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            opts.dockerfile.as_str()
        };
        let rel = crate::unpack::clean_entry_path(Path::new(name))
            .map_err(|_| BuildError::NoDockerfile(name.to_string()))?;
        let text = std::fs::read_to_string(context.join(&rel))
            .map_err(|_| BuildError::NoDockerfile(name.to_string()))?;
        let instructions = dockerfile::parse(&text, &opts.build_args)?;
        let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
            Ok(t) => DockerIgnore::parse(&t).map_err(|e| BuildError::Step {
                line: 0,
                message: format!(".dockerignore: {e}"),
            })?,
            Err(_) => DockerIgnore::empty(),
        };
        let files: BTreeSet<PathBuf> = dockerignore::context_files(context, &ignore)
            .map_err(io_at(context))?
            .into_iter()
            .collect();
        std::fs::create_dir_all(&self.cache_dir).map_err(io_at(&self.cache_dir))?;

        let steps: Vec<&Instruction> = instructions
            .iter()
            .filter(|i| !matches!(i.kind, InstructionKind::Arg { .. }))
            .collect();
        let total = steps.len();
        let mut config = ImageConfig {
            architecture: "wasm".into(),
            os: "wasi".into(),
            ..ImageConfig::default()
        };
        config.rootfs.kind = "layers".into();
        let mut layers: Vec<Descriptor> = Vec::new();
        let mut key = Digest::sha256_of(b"berth-build-v1");
        let mut workdir = String::from("/");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);

        for (n, ins) in steps.iter().enumerate() {
            progress(format!("Step {}/{} : {}\n", n + 1, total, ins.original));
            let step_err = |message: String| BuildError::Step {
                line: ins.line,
                message,
            };
            let mut empty_layer = true;
            let mut content_hash = String::new();
            match &ins.kind {
                InstructionKind::From { image } => {
                    if image.eq_ignore_ascii_case("scratch") {
                        content_hash = "scratch".into();
                    } else {
                        let base = self
                            .images
                            .resolve(image)
                            .map_err(|e| step_err(format!("base image {image}: {e}")))?;
                        if base.config.architecture != "wasm" {
                            return Err(step_err(format!(
                                "base image {image} is not a Wasm image (architecture {:?}, os {:?})",
                                base.config.architecture, base.config.os
                            )));
                        }
                        config = base.config.clone();
                        config.rootfs.kind = "layers".into();
                        layers = base.manifest.layers.clone();
                        workdir = config
                            .config
                            .working_dir
                            .clone()
                            .unwrap_or_else(|| "/".into());
                        content_hash = base.id.to_string();
                    }
                }
                InstructionKind::Env(pairs) => {
                    let env = config.config.env.get_or_insert_with(Vec::new);
                    for (k, v) in pairs {
                        env.retain(|e| e.split('=').next() != Some(k.as_str()));
                        env.push(format!("{k}={v}"));
                    }
                }
                InstructionKind::Arg { .. } => {}
                InstructionKind::Workdir(dir) => {
                    workdir = dir.clone();
                    config.config.working_dir = Some(dir.clone());
                }
                InstructionKind::Entrypoint(args) => {
                    config.config.entrypoint = Some(args.clone());
                    // As Docker: a new ENTRYPOINT resets a CMD inherited from the base.
                    config.config.cmd = None;
                }
                InstructionKind::Cmd(args) => config.config.cmd = Some(args.clone()),
                InstructionKind::Label(pairs) => {
                    let labels = config.config.labels.get_or_insert_with(BTreeMap::new);
                    for (k, v) in pairs {
                        labels.insert(k.clone(), v.clone());
                    }
                }
                InstructionKind::Expose(ports) => {
                    let exposed = config
                        .config
                        .exposed_ports
                        .get_or_insert_with(BTreeMap::new);
                    for p in ports {
                        exposed.insert(p.clone(), serde_json::json!({}));
                    }
                }
                InstructionKind::User(user) => config.config.user = Some(user.clone()),
                InstructionKind::StopSignal(sig) => config.config.stop_signal = Some(sig.clone()),
                InstructionKind::Volume(paths) => {
                    let vols = config.config.volumes.get_or_insert_with(BTreeMap::new);
                    for p in paths {
                        vols.insert(p.clone(), serde_json::json!({}));
                    }
                }
                InstructionKind::Copy {
                    sources,
                    dest,
                    chmod,
                }
                | InstructionKind::Add {
                    sources,
                    dest,
                    chmod,
                } => {
                    empty_layer = false;
                    let plan = plan_copy(context, &files, sources, dest, &workdir, *chmod)
                        .map_err(step_err)?;
                    content_hash = plan.content_hash(context)?.to_string();
                    key = chain_key(&key, &format!("{:?}", ins.kind), &content_hash);
                    let cached = if opts.no_cache {
                        None
                    } else {
                        self.cached(&key)
                    };
                    let (layer, diff_id) = match cached {
                        Some(entry) => {
                            progress(" ---> Using cache\n".into());
                            (entry.layer, entry.diff_id)
                        }
                        None => {
                            let (layer, diff_id) = self.write_layer(context, &plan)?;
                            let entry = CacheEntry {
                                layer: layer.clone(),
                                diff_id: diff_id.clone(),
                            };
                            let path = self.cache_dir.join(format!("{}.json", key.hex()));
                            crate::write_atomic(
                                &path,
                                &serde_json::to_vec(&entry).unwrap_or_default(),
                            )
                            .map_err(io_at(&path))?;
                            (layer, diff_id)
                        }
                    };
                    progress(format!(" ---> {}\n", &layer.digest.hex()[..12]));
                    layers.push(layer);
                    config.rootfs.diff_ids.push(diff_id);
                }
            }
            if empty_layer {
                key = chain_key(&key, &format!("{:?}", ins.kind), &content_hash);
            }
            config.history.push(History {
                created: Some(now.clone()),
                created_by: Some(ins.original.clone()),
                empty_layer,
            });
        }
        config.created = Some(now);
        let manifest = self.images.commit(&config, layers)?;
        let image = self.images.get(&manifest)?;
        Ok(BuildOutput {
            manifest,
            image_id: image.id.clone(),
        })
    }

    fn cached(&self, key: &Digest) -> Option<CacheEntry> {
        let bytes = std::fs::read(self.cache_dir.join(format!("{}.json", key.hex()))).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        self.images
            .content()
            .contains(&entry.layer.digest)
            .then_some(entry)
    }

    /// Writes the tar+gzip layer for `plan`; returns its descriptor and diff_id.
    fn write_layer(
        &self,
        context: &Path,
        plan: &CopyPlan,
    ) -> Result<(Descriptor, Digest), BuildError> {
        let failed = std::rc::Rc::new(std::cell::Cell::new(false));
        let blob = LayerBlob {
            blob: self.images.content().writer()?,
            failed: failed.clone(),
        };
        let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
        let mut tar = tar::Builder::new(HashingWriter {
            inner: gz,
            hasher: Sha256Hasher::new(),
        });
        tar.mode(tar::HeaderMode::Deterministic);
        // The tar builder both reads the context and writes the layer: say which failed.
        let io_ctx = |e| {
            if failed.get() {
                BuildError::Store(StoreError::Write {
                    what: "a layer".into(),
                    source: e,
                })
            } else {
                BuildError::Io {
                    path: context.to_path_buf(),
                    source: e,
                }
            }
        };
        for dir in &plan.parents {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("{dir}/"), io::empty())
                .map_err(io_ctx)?;
        }
        for item in &plan.items {
            let src = context.join(&item.src);
            let meta = std::fs::symlink_metadata(&src).map_err(io_at(&src))?;
            let mut h = tar::Header::new_gnu();
            h.set_mtime(
                meta.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            let mode = item.mode(&meta);
            h.set_mode(mode);
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&src).map_err(io_at(&src))?;
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &item.dest, &target)
                    .map_err(io_ctx)?;
            } else if meta.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", item.dest), io::empty())
                    .map_err(io_ctx)?;
            } else {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(meta.len());
                let f = std::fs::File::open(&src).map_err(io_at(&src))?;
                tar.append_data(&mut h, &item.dest, f.take(meta.len()))
                    .map_err(io_ctx)?;
            }
        }
        let hw = tar.into_inner().map_err(io_ctx)?;
        let diff_id = hw.hasher.finish();
        let blob = hw.inner.finish().map_err(io_ctx)?.blob;
        let (digest, size) = blob.commit(None)?;
        Ok((
            Descriptor {
                media_type: media::OCI_LAYER_GZIP.into(),
                digest,
                size,
                annotations: None,
            },
            diff_id,
        ))
    }
}

/// A layer's blob writer that remembers whether a write to it failed (e.g. the disk is full).
struct LayerBlob {
    blob: crate::store::BlobWriter,
    failed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl Write for LayerBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.blob.write(buf).inspect_err(|_| self.failed.set(true))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush().inspect_err(|_| self.failed.set(true))
    }
}

fn chain_key(prev: &Digest, text: &str, content: &str) -> Digest {
    Digest::sha256_of(format!("{prev}\n{text}\n{content}").as_bytes())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One file, directory or symlink a COPY puts into the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CopyItem {
    /// Path relative to the context.
    src: PathBuf,
    /// Path inside the image, without a leading `/`.
    dest: String,
    chmod: Option<u32>,
}

impl CopyItem {
    fn mode(&self, meta: &std::fs::Metadata) -> u32 {
        if let Some(m) = self.chmod {
            return m;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o777
        }
        #[cfg(not(unix))]
        {
            if meta.is_dir() { 0o755 } else { 0o644 }
        }
    }
}

#[derive(Debug, Default)]
struct CopyPlan {
    /// Parent directories of the destination, created with mode 0755.
    parents: Vec<String>,
    items: Vec<CopyItem>,
}

impl CopyPlan {
    /// Hash of everything that determines the layer's content.
    fn content_hash(&self, context: &Path) -> Result<Digest, BuildError> {
        let mut h = Sha256Hasher::new();
        for p in &self.parents {
            h.update(format!("dir {p}\n").as_bytes());
        }
        for item in &self.items {
            let src = context.join(&item.src);
            let meta = std::fs::symlink_metadata(&src).map_err(io_at(&src))?;
            h.update(format!("{} {} {:o}\n", item.dest, meta.len(), item.mode(&meta)).as_bytes());
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&src).map_err(io_at(&src))?;
                h.update(t.as_os_str().as_encoded_bytes());
            } else if meta.is_file() {
                let mut f = std::fs::File::open(&src).map_err(io_at(&src))?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f.read(&mut buf).map_err(io_at(&src))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            h.update(b"\n");
        }
        Ok(h.finish())
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Normalises an absolute image path: `/a/./b/../c/` → `a/c` (no leading `/`), clamped at root.
fn clean_image_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Works out which context files a COPY takes and where they land.
fn plan_copy(
    context: &Path,
    files: &BTreeSet<PathBuf>,
    sources: &[String],
    dest: &str,
    workdir: &str,
    chmod: Option<u32>,
) -> Result<CopyPlan, String> {
    let abs_dest = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest)
    };
    let dest_is_dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let dest_clean = clean_image_path(&abs_dest);

    // Resolve each source to context paths that survived .dockerignore.
    let mut matched: Vec<PathBuf> = Vec::new();
    for src in sources {
        let clean = clean_image_path(src);
        if climbs_out(src) {
            return Err(format!("forbidden path outside the build context: {src}"));
        }
        let mut found = Vec::new();
        if has_glob(src) {
            let pattern = glob::Pattern::new(&clean)
                .map_err(|e| format!("COPY source pattern {src:?}: {e}"))?;
            let opts = glob::MatchOptions {
                require_literal_separator: true,
                ..Default::default()
            };
            for f in files {
                if let Some(s) = f.to_str()
                    && pattern.matches_with(s, opts)
                {
                    found.push(f.clone());
                }
            }
        } else if clean.is_empty() {
            found.push(PathBuf::new());
        } else if files.contains(Path::new(&clean)) {
            found.push(PathBuf::from(&clean));
        }
        if found.is_empty() {
            return Err(format!(
                "COPY failed: file not found in build context or excluded by .dockerignore: {src}"
            ));
        }
        matched.extend(found);
    }
    let single_file = matched.len() == 1
        && !matched[0].as_os_str().is_empty()
        && context
            .join(&matched[0])
            .symlink_metadata()
            .map(|m| !m.is_dir())
            .unwrap_or(false);
    if matched.len() > 1 && !dest_is_dir_syntax {
        return Err(format!(
            "When using COPY with more than one source file, the destination must be a directory and end with a /: {dest}"
        ));
    }

    let mut plan = CopyPlan::default();
    let dest_dir = if single_file && !dest_is_dir_syntax {
        // COPY a.wasm /app.wasm: the destination is the file itself.
        let file_dest = dest_clean.clone();
        let parent = Path::new(&file_dest)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        plan.items.push(CopyItem {
            src: matched[0].clone(),
            dest: file_dest,
            chmod,
        });
        parent
    } else {
        for m in &matched {
            let meta = context
                .join(m)
                .symlink_metadata()
                .map_err(|e| e.to_string())?;
            if meta.is_dir() {
                // A directory source copies its contents, not the directory itself.
                for f in files {
                    if f == m || (!m.as_os_str().is_empty() && !f.starts_with(m)) {
                        continue;
                    }
                    let rel = f.strip_prefix(m).unwrap_or(f);
                    plan.items.push(CopyItem {
                        src: f.clone(),
                        dest: join_dest(&dest_clean, &rel.to_string_lossy()),
                        chmod,
                    });
                }
            } else {
                let name = m
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                plan.items.push(CopyItem {
                    src: m.clone(),
                    dest: join_dest(&dest_clean, &name),
                    chmod,
                });
            }
        }
        dest_clean.clone()
    };
    let mut acc = String::new();
    for part in dest_dir.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        plan.parents.push(acc.clone());
    }
    // Directories before their contents.
    plan.items.sort_by(|a, b| a.dest.cmp(&b.dest));
    plan.items.dedup_by(|a, b| a.dest == b.dest);
    Ok(plan)
}

/// Whether a relative path lexically leaves its root (`../x`, `a/../../x`).
fn climbs_out(path: &str) -> bool {
    let mut depth: i64 = 0;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn join_dest(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_image_path_clamps_at_root() {
        assert_eq!(clean_image_path("/a/./b/../c/"), "a/c");
        assert_eq!(clean_image_path("/../../x"), "x");
        assert_eq!(clean_image_path("/"), "");
    }

    fn ctx() -> (tempfile::TempDir, BTreeSet<PathBuf>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.wasm"), b"\0asm").unwrap();
        std::fs::create_dir_all(d.path().join("data/sub")).unwrap();
        std::fs::write(d.path().join("data/x.txt"), b"x").unwrap();
        std::fs::write(d.path().join("data/sub/y.txt"), b"y").unwrap();
        let files = dockerignore::context_files(d.path(), &DockerIgnore::empty())
            .unwrap()
            .into_iter()
            .collect();
        (d, files)
    }

    #[test]
    fn copy_file_to_file_and_into_dir() {
        let (d, files) = ctx();
        let p = plan_copy(d.path(), &files, &["a.wasm".into()], "/app.wasm", "/", None).unwrap();
        assert_eq!(p.items[0].dest, "app.wasm");
        let p = plan_copy(d.path(), &files, &["a.wasm".into()], "bin/", "/srv", None).unwrap();
        assert_eq!(p.items[0].dest, "srv/bin/a.wasm");
        assert_eq!(p.parents, vec!["srv", "srv/bin"]);
    }

    #[test]
    fn copy_dir_copies_contents() {
        let (d, files) = ctx();
        let p = plan_copy(
            d.path(),
            &files,
            &["data".into()],
            "/usr/share/q",
            "/",
            None,
        )
        .unwrap();
        let dests: Vec<_> = p.items.iter().map(|i| i.dest.as_str()).collect();
        assert_eq!(
            dests,
            vec![
                "usr/share/q/sub",
                "usr/share/q/sub/y.txt",
                "usr/share/q/x.txt"
            ]
        );
    }

    #[test]
    fn copy_globs_and_errors() {
        let (d, files) = ctx();
        let p = plan_copy(d.path(), &files, &["data/*.txt".into()], "/d/", "/", None).unwrap();
        assert_eq!(p.items.len(), 1);
        let e = plan_copy(d.path(), &files, &["missing".into()], "/d/", "/", None).unwrap_err();
        assert!(e.contains("file not found in build context"), "{e}");
        let e = plan_copy(
            d.path(),
            &files,
            &["a.wasm".into(), "data/x.txt".into()],
            "/d",
            "/",
            None,
        )
        .unwrap_err();
        assert!(e.contains("must be a directory"), "{e}");
        let e = plan_copy(
            d.path(),
            &files,
            &["../etc/passwd".into()],
            "/d/",
            "/",
            None,
        )
        .unwrap_err();
        assert!(e.contains("outside the build context"), "{e}");
    }
}
