//! Layer tarballs → directories, through root-relative handles only.
//!
//! Every write goes through a `cap_std::fs::Dir` opened on the destination, so no entry name,
//! symlink or hardlink in a layer can make the daemon touch anything outside it; paths are
//! never joined as strings. The policy (see `docs/threat-model.md`):
//! - `..` components reject the layer; absolute names are taken relative to the root;
//! - regular files, directories, symlinks (target stored verbatim, never followed by the
//!   host) and hardlinks to entries inside the root are created; device nodes, FIFOs and
//!   sockets are skipped; setuid, setgid and sticky bits are dropped; ownership is ignored;
//! - an existing entry is removed before a new one is created at its path
//!   (RUSTSEC-2018-0002); whiteouts (`.wh.name`, `.wh..wh..opq`) remove lower content;
//! - entry count and entry data bytes are bounded, and so are the headers of one entry
//!   (PAX records and GNU long names: [`MAX_EXTENSION_BYTES`]), so that neither a
//!   decompression bomb nor a huge PAX record can fill the disk or the daemon's memory;
//! - ambiguous archives are refused: malformed PAX records, repeated `size`/`path`/`linkpath`
//!   records, a PAX `size` that disagrees with a nonzero header size, and global PAX headers
//!   that set those keys (parsers disagree about them: CVE-2026-33055, TARmageddon);
//! - zstd layers (and zstd or xz data under a tar media type) are refused with a clear
//!   error; Berth unpacks plain and gzip tarballs only.
//!
//! Snapshots (`snapshots/<chain-id>`) are unpacked once into a temp directory, checked against
//! the config's `diff_ids`, and renamed into place. Containers get a copy of their snapshot.

use crate::digest::{Digest, Sha256Hasher};
use crate::images::{Image, media};
use crate::store::{ContentStore, StoreError};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, Permissions};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Most entries one layer may hold: bounds inode use and unpack time.
pub const MAX_LAYER_ENTRIES: u64 = 1_000_000;
/// Most bytes one layer may unpack to: bounds disk use against decompression bombs.
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Longest entry name accepted.
pub const MAX_PATH_LEN: usize = 4096;
/// Most bytes of headers one entry may have: its header blocks, PAX records and GNU long
/// name/link data. The tar parser holds extension data in memory, so this bounds memory.
pub const MAX_EXTENSION_BYTES: u64 = 1024 * 1024;
/// Most bytes a layer stream may carry after the end of its tar archive (tar writers pad
/// to 10 KiB records; anything much longer is a decompression bomb in the padding).
pub const MAX_TRAILER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} is unsafe: {reason}")]
    UnsafeEntry { path: String, reason: &'static str },
    #[error("layer has more than {0} entries")]
    TooManyEntries(u64),
    #[error("layer unpacks to more than {0} bytes")]
    TooLarge(u64),
    #[error("layer entry headers (PAX records, GNU long names) exceed {0} bytes")]
    HeaderTooLarge(u64),
    #[error("layer is not a valid tar archive: {0}")]
    Malformed(String),
    #[error(
        "layer is compressed with {0}, which Berth cannot unpack (only gzip and uncompressed tar layers are supported)"
    )]
    UnsupportedCompression(&'static str),
    #[error("layer {layer} does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {layer} has media type {media_type}, which Berth cannot unpack")]
    UnsupportedMediaType { layer: Digest, media_type: String },
    #[error("image has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCountMismatch { layers: usize, diff_ids: usize },
    #[error("unpacking {path:?}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> UnpackError + '_ {
    move |source| UnpackError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What one unpack did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped: u64,
}

/// Turns a tar entry name into a clean relative path, or explains why it is unsafe.
pub fn clean_entry_path(raw: &Path) -> Result<PathBuf, UnpackError> {
    let shown = || raw.display().to_string();
    if raw.as_os_str().len() > MAX_PATH_LEN {
        return Err(UnpackError::UnsafeEntry {
            path: shown(),
            reason: "name too long",
        });
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => {
                if p.as_encoded_bytes().contains(&0) {
                    return Err(UnpackError::UnsafeEntry {
                        path: shown(),
                        reason: "NUL in name",
                    });
                }
                out.push(p)
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(UnpackError::UnsafeEntry {
                    path: shown(),
                    reason: "contains '..'",
                });
            }
        }
    }
    Ok(out)
}

/// Removes whatever is at `path` (file, symlink or directory tree) without following links.
fn remove_existing(root: &Dir, path: &Path) -> io::Result<()> {
    match root.symlink_metadata(path) {
        Ok(m) if m.is_dir() => root.remove_dir_all(path),
        Ok(_) => root.remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn ensure_parent(root: &Dir, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => root.create_dir_all(p),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn symlink_in(root: &Dir, target: &Path, link: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let name = link
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "symlink without a name"))?;
    let parent = match link.parent() {
        Some(p) if !p.as_os_str().is_empty() => root.open_dir(p)?,
        _ => root.try_clone()?,
    };
    let target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in symlink target"))?;
    let name = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in symlink name"))?;
    // SAFETY: both strings are valid NUL-terminated C strings and the fd is an open directory
    // inside the root; symlinkat creates the link relative to it and follows nothing.
    let rc = unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), name.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn symlink_in(_root: &Dir, _target: &Path, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symlinks in layers are not supported on this platform",
    ))
}

fn mode_perms(mode: u32, dir: bool) -> Permissions {
    // No setuid, setgid or sticky bits; directories stay writable by the daemon.
    let mode = if dir {
        (mode & 0o777) | 0o700
    } else {
        mode & 0o777
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Permissions::from_std(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        Permissions::from_std(std::fs::metadata(".").map(|m| m.permissions()).unwrap())
    }
}

/// Bounds on what one tar stream may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub entries: u64,
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            entries: MAX_LAYER_ENTRIES,
            bytes: MAX_UNPACKED_BYTES,
        }
    }
}

/// Applies one uncompressed tar stream onto `root`, within the default [`Limits`].
pub fn apply_tar(root: &Dir, reader: impl Read) -> Result<UnpackStats, UnpackError> {
    apply_tar_with(root, reader, Limits::default())
}

/// Why the layer stream itself was refused (carried inside an `io::Error` through the tar
/// parser, then turned back into an [`UnpackError`]).
#[derive(Debug)]
enum StreamRefusal {
    /// The headers of one entry went over [`MAX_EXTENSION_BYTES`].
    Headers,
    /// The data is compressed with an unsupported algorithm.
    Compression(&'static str),
}

impl std::fmt::Display for StreamRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Headers => write!(f, "entry headers exceed {MAX_EXTENSION_BYTES} bytes"),
            Self::Compression(c) => write!(f, "{c}-compressed layers are not supported"),
        }
    }
}

impl std::error::Error for StreamRefusal {}

/// Turns an error reading the layer stream into an [`UnpackError`].
fn stream_error(e: io::Error) -> UnpackError {
    match e.get_ref().and_then(|i| i.downcast_ref::<StreamRefusal>()) {
        Some(StreamRefusal::Headers) => UnpackError::HeaderTooLarge(MAX_EXTENSION_BYTES),
        Some(StreamRefusal::Compression(c)) => UnpackError::UnsupportedCompression(c),
        None => UnpackError::Malformed(e.to_string()),
    }
}

/// Sits between the tar parser and the stream and bounds how much the parser may read before
/// it hands out the next entry. The unpack loop sets the allowance for each entry (its data,
/// already checked against [`Limits`], plus [`MAX_EXTENSION_BYTES`] for the next headers), so
/// a PAX record or GNU long name the parser would buffer in memory cannot be larger than that.
struct BoundedStream<R> {
    inner: R,
    allowance: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for BoundedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.allowance.get();
        if buf.is_empty() {
            return Ok(0);
        }
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                StreamRefusal::Headers,
            ));
        }
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.allowance.set(left - n as u64);
        Ok(n)
    }
}

/// Refuses ambiguous PAX headers: records tar parsers disagree about (CVE-2026-33055,
/// CVE-2025-62518). `global` is a `g` header, whose keys tar-rs ignores but others apply.
fn check_pax(
    raw: &Path,
    pax: Option<tar::PaxExtensions<'_>>,
    header_size: u64,
    global: bool,
) -> Result<(), UnpackError> {
    let unsafe_entry = |reason| UnpackError::UnsafeEntry {
        path: raw.display().to_string(),
        reason,
    };
    let Some(pax) = pax else { return Ok(()) };
    let (mut size, mut path, mut link) = (None, false, false);
    for ext in pax {
        let ext = ext.map_err(|_| unsafe_entry("malformed PAX record"))?;
        let key = ext
            .key()
            .map_err(|_| unsafe_entry("PAX key is not UTF-8"))?;
        if !matches!(key, "size" | "path" | "linkpath") {
            continue;
        }
        if global {
            return Err(unsafe_entry(
                "global PAX header sets size, path or linkpath (parsers disagree on it)",
            ));
        }
        let repeated = match key {
            "size" => {
                let value = ext
                    .value()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| unsafe_entry("PAX size is not a number"))?;
                size.replace(value).is_some()
            }
            "path" => std::mem::replace(&mut path, true),
            _ => std::mem::replace(&mut link, true),
        };
        if repeated {
            return Err(unsafe_entry("PAX record repeated for one entry"));
        }
    }
    if let Some(size) = size
        && header_size != 0
        && size != header_size
    {
        return Err(unsafe_entry("PAX size disagrees with the header size"));
    }
    Ok(())
}

/// Copies an entry's data to `file`: read errors are the layer's fault, write errors ours.
fn copy_data(
    entry: &mut impl Read,
    file: &mut impl io::Write,
    path: &Path,
) -> Result<(), UnpackError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_error(e)),
        };
        file.write_all(&buf[..n]).map_err(io_at(path))?;
    }
}

/// Applies one uncompressed tar stream onto `root`, within `limits`.
///
/// Entry data counts against `limits.bytes` whether the entry is written or skipped, so that
/// a layer cannot make the daemon decompress unbounded data it then throws away.
pub fn apply_tar_with(
    root: &Dir,
    reader: impl Read,
    limits: Limits,
) -> Result<UnpackStats, UnpackError> {
    let allowance = std::rc::Rc::new(std::cell::Cell::new(MAX_EXTENSION_BYTES));
    let mut archive = tar::Archive::new(BoundedStream {
        inner: reader,
        allowance: allowance.clone(),
    });
    let mut stats = UnpackStats::default();
    let entries = archive.entries().map_err(stream_error)?;
    for entry in entries {
        let mut entry = entry.map_err(stream_error)?;
        stats.entries += 1;
        if stats.entries > limits.entries {
            return Err(UnpackError::TooManyEntries(limits.entries));
        }
        // Everything the parser reads until it hands out the next entry: this entry's data
        // (which the parser skips if it is not read here), its padding and the next headers.
        let header_size = entry.header().entry_size().map_err(stream_error)?;
        let data = entry.size().max(header_size);
        stats.bytes = stats.bytes.saturating_add(data);
        if stats.bytes > limits.bytes {
            return Err(UnpackError::TooLarge(limits.bytes));
        }
        allowance.set(data.saturating_add(511).saturating_add(MAX_EXTENSION_BYTES));
        let raw = entry.path().map_err(stream_error)?.into_owned();
        let kind = entry.header().entry_type();
        let global = kind == tar::EntryType::XGlobalHeader;
        if global && data > MAX_EXTENSION_BYTES {
            return Err(UnpackError::HeaderTooLarge(MAX_EXTENSION_BYTES));
        }
        let pax = entry.pax_extensions().map_err(stream_error)?;
        check_pax(&raw, pax, header_size, global)?;
        let path = clean_entry_path(&raw)?;
        if path.as_os_str().is_empty() {
            continue; // the root itself
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let at = io_at(&path);
        // Whiteouts remove content of lower layers.
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            let parent = path.parent().unwrap_or(Path::new(""));
            if hidden == ".wh..opq" {
                let dir = if parent.as_os_str().is_empty() {
                    root.try_clone()
                } else {
                    root.open_dir(parent)
                };
                if let Ok(dir) = dir {
                    for child in dir.entries().map_err(io_at(&path))?.flatten() {
                        remove_existing(&dir, Path::new(&child.file_name()))
                            .map_err(io_at(&path))?;
                    }
                }
            } else if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(UnpackError::UnsafeEntry {
                    path: raw.display().to_string(),
                    reason: "whiteout without a name",
                });
            } else {
                remove_existing(root, &parent.join(hidden)).map_err(io_at(&path))?;
            }
            continue;
        }
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        match kind {
            tar::EntryType::Directory => {
                match root.symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_existing(root, &path).map_err(at)?;
                        ensure_parent(root, &path).map_err(io_at(&path))?;
                        root.create_dir(&path).map_err(io_at(&path))?;
                    }
                    Err(_) => {
                        ensure_parent(root, &path).map_err(io_at(&path))?;
                        root.create_dir(&path).map_err(io_at(&path))?;
                    }
                }
                root.set_permissions(&path, mode_perms(mode, true))
                    .map_err(io_at(&path))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                ensure_parent(root, &path).map_err(at)?;
                remove_existing(root, &path).map_err(io_at(&path))?;
                let mut file = root
                    .open_with(&path, OpenOptions::new().write(true).create_new(true))
                    .map_err(io_at(&path))?;
                let size = entry.size();
                copy_data(&mut (&mut entry).take(size), &mut file, &path)?;
                file.set_permissions(mode_perms(mode, false))
                    .map_err(io_at(&path))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(stream_error)?
                    .ok_or_else(|| UnpackError::UnsafeEntry {
                        path: raw.display().to_string(),
                        reason: "symlink without a target",
                    })?
                    .into_owned();
                ensure_parent(root, &path).map_err(at)?;
                remove_existing(root, &path).map_err(io_at(&path))?;
                symlink_in(root, &target, &path).map_err(io_at(&path))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(stream_error)?.ok_or_else(|| {
                    UnpackError::UnsafeEntry {
                        path: raw.display().to_string(),
                        reason: "hardlink without a target",
                    }
                })?;
                let target = clean_entry_path(&target)?;
                let meta = root.symlink_metadata(&target).map_err(io_at(&target))?;
                if !meta.is_file() {
                    return Err(UnpackError::UnsafeEntry {
                        path: raw.display().to_string(),
                        reason: "hardlink target is not a regular file in this layer stack",
                    });
                }
                ensure_parent(root, &path).map_err(at)?;
                remove_existing(root, &path).map_err(io_at(&path))?;
                root.hard_link(&target, root, &path).map_err(io_at(&path))?;
            }
            other => {
                tracing::debug!(path = %path.display(), kind = ?other, "skipping unsupported layer entry");
                stats.skipped += 1;
            }
        }
    }
    Ok(stats)
}

/// Reads everything left in `r`, feeding a hasher (tar streams end with padding blocks).
struct HashingReader<R> {
    inner: R,
    hasher: Sha256Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Opens a layer blob as an uncompressed tar stream.
pub fn open_layer(
    store: &ContentStore,
    digest: &Digest,
    media_type: &str,
) -> Result<Box<dyn Read>, UnpackError> {
    if !media::is_tar_layer(media_type) {
        return Err(UnpackError::UnsupportedMediaType {
            layer: digest.clone(),
            media_type: media_type.to_string(),
        });
    }
    let file = io::BufReader::new(store.open_blob(digest)?);
    Ok(decompress(file))
}

/// Gzip-sniffing reader: gzip streams are decompressed, zstd and xz streams are refused with
/// [`UnpackError::UnsupportedCompression`] (when read through [`apply_tar`]), anything else
/// passes through.
pub fn decompress<R: io::BufRead + 'static>(mut r: R) -> Box<dyn Read> {
    let head = r.fill_buf().map(|b| b.to_vec()).unwrap_or_default();
    if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(Refuse("zstd"))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(Refuse("xz"))
    } else {
        Box::new(r)
    }
}

/// A stream that fails on first read: compressed data Berth cannot decompress.
struct Refuse(&'static str);

impl Read for Refuse {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            StreamRefusal::Compression(self.0),
        ))
    }
}

/// Reads what is left of a layer stream after its tar archive ended (for the diff_id), at
/// most [`MAX_TRAILER_BYTES`].
pub fn drain_trailer(reader: &mut impl Read) -> Result<u64, UnpackError> {
    let n = io::copy(
        &mut Read::by_ref(reader).take(MAX_TRAILER_BYTES),
        &mut io::sink(),
    )
    .map_err(stream_error)?;
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(n),
            Ok(_) => {
                return Err(UnpackError::Malformed(format!(
                    "more than {MAX_TRAILER_BYTES} bytes after the end of the tar archive"
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(e)),
        }
    }
}

/// Unpacks `image`'s layers once into `snapshots_dir/<chain-id>` and returns that directory.
pub fn snapshot(
    store: &ContentStore,
    snapshots_dir: &Path,
    image: &Image,
) -> Result<PathBuf, UnpackError> {
    let tar_layers: Vec<_> = image
        .manifest
        .layers
        .iter()
        .filter(|l| !media::is_wasm_layer(&l.media_type))
        .collect();
    let diff_ids = &image.config.rootfs.diff_ids;
    if tar_layers.len() != diff_ids.len() {
        return Err(UnpackError::LayerCountMismatch {
            layers: tar_layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let name = image
        .chain_id()
        .map(|c| c.hex().to_string())
        .unwrap_or_else(|| "empty".into());
    let target = snapshots_dir.join(&name);
    if target.is_dir() {
        return Ok(target);
    }
    std::fs::create_dir_all(snapshots_dir).map_err(io_at(snapshots_dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(snapshots_dir)
        .map_err(io_at(snapshots_dir))?;
    let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).map_err(io_at(tmp.path()))?;
    for (layer, expected) in tar_layers.iter().zip(diff_ids) {
        let mut reader = HashingReader {
            inner: open_layer(store, &layer.digest, &layer.media_type)?,
            hasher: Sha256Hasher::new(),
        };
        apply_tar(&root, &mut reader)?;
        drain_trailer(&mut reader)?;
        let actual = reader.hasher.finish();
        if &actual != expected {
            return Err(UnpackError::DiffIdMismatch {
                layer: layer.digest.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    // Raw Wasm layers (artifact formats) become single files at the root.
    for layer in image.wasm_layers() {
        let name = Image::wasm_layer_path(layer);
        let name = name.trim_start_matches('/');
        let mut src = store.open_blob(&layer.digest)?;
        let _ = root.remove_file(name);
        let mut dst = root
            .open_with(name, OpenOptions::new().write(true).create_new(true))
            .map_err(io_at(Path::new(name)))?;
        io::copy(&mut src, &mut dst).map_err(io_at(Path::new(name)))?;
        dst.set_permissions(mode_perms(0o755, false))
            .map_err(io_at(Path::new(name)))?;
    }
    let kept = tmp.keep();
    match std::fs::rename(&kept, &target) {
        Ok(()) => {}
        Err(_) if target.is_dir() => {
            // Another unpack of the same chain won the race; its result is identical.
            let _ = std::fs::remove_dir_all(&kept);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(io_at(&target)(e));
        }
    }
    std::fs::File::open(snapshots_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(snapshots_dir))?;
    Ok(target)
}

/// Removes unfinished snapshot directories left by a crash.
pub fn clean_snapshots(snapshots_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(snapshots_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                tracing::info!(path = %e.path().display(), "removing unfinished snapshot");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Copies a directory tree without following symlinks (symlinks are recreated as symlinks).
/// `std::fs::copy` uses `copy_file_range` on Linux, which reflinks on XFS and btrfs.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, std::fs::metadata(src)?.permissions())?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&from, &to)?;
        } else if ty.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ty.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn raw_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, link: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(kind);
        // Write names straight into the header so the builder's own checks don't interfere.
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        let ln = h.as_old_mut().linkname.as_mut();
        ln[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
    }

    fn root() -> (tempfile::TempDir, Dir, tempfile::TempDir) {
        let outer = tempfile::tempdir().unwrap();
        let inner = tempfile::tempdir_in(outer.path()).unwrap();
        let dir = Dir::open_ambient_dir(inner.path(), ambient_authority()).unwrap();
        (inner, dir, outer)
    }

    #[test]
    fn unpacks_files_dirs_links_and_strips_special_bits() {
        let (inner, dir, _o) = root();
        let data = tar_with(|b| {
            file(b, "app/hello.wasm", b"\0asm", 0o4755);
            raw_entry(b, "app/link", tar::EntryType::Symlink, "/app/hello.wasm");
            raw_entry(b, "app/hard", tar::EntryType::Link, "app/hello.wasm");
        });
        let stats = apply_tar(&dir, &data[..]).unwrap();
        assert_eq!(stats.entries, 3);
        let p = inner.path().join("app/hello.wasm");
        assert_eq!(std::fs::read(&p).unwrap(), b"\0asm");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
                0o755
            );
            assert_eq!(
                std::fs::read_link(inner.path().join("app/link")).unwrap(),
                Path::new("/app/hello.wasm")
            );
        }
        assert_eq!(
            std::fs::read(inner.path().join("app/hard")).unwrap(),
            b"\0asm"
        );
    }

    #[test]
    fn dotdot_entries_are_rejected_and_nothing_escapes() {
        let (inner, dir, outer) = root();
        let data = tar_with(|b| raw_entry(b, "../escape", tar::EntryType::Regular, ""));
        assert!(matches!(
            apply_tar(&dir, &data[..]),
            Err(UnpackError::UnsafeEntry { .. })
        ));
        assert!(!outer.path().join("escape").exists());
        drop(inner);
    }

    #[test]
    fn writes_through_symlinks_to_outside_fail() {
        let (inner, dir, outer) = root();
        let outside = outer.path().display().to_string();
        let data = tar_with(|b| {
            raw_entry(b, "evil", tar::EntryType::Symlink, &outside);
            file(b, "evil/planted", b"x", 0o644);
        });
        assert!(apply_tar(&dir, &data[..]).is_err());
        assert!(!outer.path().join("planted").exists());
        drop(inner);
    }

    #[test]
    fn whiteouts_remove_lower_entries() {
        let (inner, dir, _o) = root();
        let lower = tar_with(|b| {
            file(b, "a/x", b"1", 0o644);
            file(b, "b/y", b"2", 0o644);
        });
        apply_tar(&dir, &lower[..]).unwrap();
        let upper = tar_with(|b| {
            file(b, "a/.wh.x", b"", 0o644);
            file(b, "b/.wh..wh..opq", b"", 0o644);
        });
        apply_tar(&dir, &upper[..]).unwrap();
        assert!(!inner.path().join("a/x").exists());
        assert!(inner.path().join("b").is_dir());
        assert!(!inner.path().join("b/y").exists());
    }

    #[test]
    fn duplicate_entry_over_a_symlink_replaces_the_link() {
        let (inner, dir, outer) = root();
        let victim = outer.path().join("victim");
        std::fs::write(&victim, b"safe").unwrap();
        let data = tar_with(|b| {
            raw_entry(
                b,
                "f",
                tar::EntryType::Symlink,
                &victim.display().to_string(),
            );
            file(b, "f", b"overwritten", 0o644);
        });
        apply_tar(&dir, &data[..]).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"safe");
        assert_eq!(
            std::fs::read(inner.path().join("f")).unwrap(),
            b"overwritten"
        );
    }

    #[test]
    fn entry_count_and_size_limits_fire() {
        let (_inner, dir, _o) = root();
        let data = tar_with(|b| {
            for i in 0..5 {
                file(b, &format!("f{i}"), b"0123456789", 0o644);
            }
        });
        let few = Limits {
            entries: 4,
            bytes: 1000,
        };
        assert!(matches!(
            apply_tar_with(&dir, &data[..], few),
            Err(UnpackError::TooManyEntries(4))
        ));
        let small = Limits {
            entries: 100,
            bytes: 25,
        };
        assert!(matches!(
            apply_tar_with(&dir, &data[..], small),
            Err(UnpackError::TooLarge(25))
        ));
        // A header that claims more than the default limit is refused before any read.
        let mut h = tar::Header::new_gnu();
        h.set_size(MAX_UNPACKED_BYTES + 1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("bomb").unwrap();
        h.set_cksum();
        let mut bomb = h.as_bytes().to_vec();
        bomb.extend_from_slice(&[0u8; 1024]);
        assert!(matches!(
            apply_tar(&dir, &bomb[..]),
            Err(UnpackError::TooLarge(MAX_UNPACKED_BYTES))
        ));
    }

    #[test]
    fn clean_entry_path_rules() {
        assert_eq!(
            clean_entry_path(Path::new("/a/./b")).unwrap(),
            Path::new("a/b")
        );
        assert!(clean_entry_path(Path::new("a/../b")).is_err());
    }
}
