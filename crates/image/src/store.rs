//! The content-addressed blob store, after containerd's local content store.
//!
//! Layout under the store root:
//! - `blobs/sha256/<hex>`: committed blobs, named by the sha256 of their bytes;
//! - `ingest/<random>`: blobs being written.
//!
//! A write goes to an ingest file while being hashed, is fsynced, checked against the expected
//! size and digest, then renamed into `blobs/` and the directory fsynced. A crash leaves at
//! worst a stray ingest file, which [`ContentStore::open`] removes. Readers never see a partial
//! blob.

use crate::digest::{Digest, Sha256Hasher};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Errors of the content store. Each names the digest or path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {digest} not found in the content store")]
    NotFound { digest: Digest },
    #[error("blob {digest} is {actual} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        digest: Digest,
        actual: u64,
        limit: u64,
    },
    #[error("size mismatch: expected {expected} bytes for {digest}, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Writing new content failed (e.g. the disk is full); `what` names it.
    #[error("writing {what} to the content store: {source}")]
    Write { what: String, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A content-addressed store of blobs.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root` and removes unfinished ingests.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("ingest")] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let ingest = root.join("ingest");
        let entries = std::fs::read_dir(&ingest).map_err(io_err(&ingest))?;
        for entry in entries.flatten() {
            tracing::info!(path = %entry.path().display(), "removing unfinished ingest");
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Self { root })
    }

    /// Where the blob for `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a committed blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.path(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                digest: digest.clone(),
            }),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Reads a whole blob, refusing blobs larger than `limit` bytes (manifests and configs are
    /// read this way; layers are streamed with [`ContentStore::open_blob`]).
    pub fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let mut file = self.open_blob(digest)?;
        let path = self.path(digest);
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                actual: len,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        (&mut file)
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(io_err(&path))?;
        Ok(buf)
    }

    /// Opens a committed blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::NotFound {
                    digest: digest.clone(),
                }
            } else {
                io_err(&path)(e)
            }
        })
    }

    /// Starts a new blob write.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let dir = self.root.join("ingest");
        let file = tempfile::Builder::new()
            .prefix("ingest-")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            hasher: Sha256Hasher::new(),
            written: 0,
        })
    }

    /// Stores `data` and returns its digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(|source| StoreError::Write {
            what: format!("a blob of {} bytes", data.len()),
            source,
        })?;
        Ok(w.commit(None)?.0)
    }

    /// Removes a blob; missing blobs are not an error.
    pub fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

/// A blob being written: hashed as it streams, committed atomically.
pub struct BlobWriter {
    store: ContentStore,
    file: tempfile::NamedTempFile,
    hasher: Sha256Hasher,
    written: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The plain file: its errors are the OS's (the caller names the blob), without the
        // temp file's path appended.
        let n = self.file.as_file_mut().write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_file_mut().flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Fsyncs, checks the expected digest and size if given, and moves the blob into place.
    /// On any error the ingest file is removed.
    pub fn commit(mut self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64), StoreError> {
        let ingest = self.file.path().to_path_buf();
        self.file.flush().map_err(io_err(&ingest))?;
        self.file.as_file().sync_all().map_err(io_err(&ingest))?;
        let actual = self.hasher.finish();
        if let Some((digest, size)) = expected {
            if size != self.written {
                return Err(StoreError::SizeMismatch {
                    digest: digest.clone(),
                    expected: size,
                    actual: self.written,
                });
            }
            if *digest != actual {
                return Err(StoreError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
            }
        }
        let target = self.store.path(&actual);
        if !target.exists() {
            self.file
                .persist(&target)
                .map_err(|e| io_err(&target)(e.error))?;
            if let Some(dir) = target.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(dir))?;
            }
        }
        Ok((actual, self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_read_round_trips_and_names_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.put(b"hello").unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(store.read(&d, 100).unwrap(), b"hello");
        assert!(store.path(&d).ends_with(d.hex()));
    }

    #[test]
    fn commit_refuses_wrong_digest_and_size_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let other = Digest::sha256_of(b"other");
        let mut w = store.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(Some((&other, 5))),
            Err(StoreError::DigestMismatch { .. })
        ));
        let mut w = store.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(Some((&Digest::sha256_of(b"hello"), 4))),
            Err(StoreError::SizeMismatch { .. })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn read_refuses_blobs_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = store.put(&[0u8; 64]).unwrap();
        assert!(matches!(
            store.read(&d, 63),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn open_removes_stale_ingests() {
        let dir = tempfile::tempdir().unwrap();
        ContentStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("ingest/ingest-stale"), b"partial").unwrap();
        ContentStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
    }
}
