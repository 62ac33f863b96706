//! berth-image: everything about images that does not run them.
//!
//! - [`digest`] and [`reference`]: validated newtypes for `sha256:<hex>` digests and
//!   `[registry/]repo[:tag][@digest]` references, with Docker's normalisation.
//! - [`store`]: the content-addressed blob store (`blobs/sha256/<hex>`), written through a
//!   hashed, fsynced temp file and renamed into place.
//! - [`images`]: the name → manifest pointers and image records.
//! - [`unpack`]: layer tarballs unpacked once into read-only snapshots.
//! - [`dockerfile`], [`dockerignore`] and [`build`]: the Dockerfile-style builder.
//!
//! Start with [`store::ContentStore`] and [`build::Builder`].

pub mod digest;
pub mod dockerfile;
pub mod dockerignore;
pub mod images;
pub mod reference;
pub mod store;
pub mod unpack;

use std::path::Path;

/// Writes `data` to `path` through a temp file in the same directory: write, fsync, rename,
/// fsync the directory. Readers see the old file or the whole new one, never a torn write.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
pub mod archive;
pub mod build;
