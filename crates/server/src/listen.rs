//! Listeners: unix sockets created with mode 0600 (0660 with a group) and no window in which
//! they are more open, served until shutdown.

use crate::AppState;
use std::io;
use std::path::{Path, PathBuf};

/// Where berthd listens, parsed from `-H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
}

impl Host {
    /// Parses `unix:///path`. TCP needs mutual TLS, which berthd does not offer yet, so it is
    /// refused with an explanation rather than served without authentication.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{s}: unix socket paths must be absolute (unix:///path)"
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if s.starts_with("tcp://") || s.starts_with("http://") {
            return Err(format!(
                "{s}: TCP listeners need mutual TLS, which this berthd does not support yet; use a unix socket (forward it over SSH for remote use)"
            ));
        }
        Err(format!(
            "{s}: unsupported address; use unix:///path/to/berth.sock"
        ))
    }
}

/// Binds a unix socket at `path`: mode 0600, or 0660 owned by `group` when given. A stale
/// socket is replaced; a live one (another daemon) or a non-socket file is an error.
pub fn bind_unix(path: &Path, group: Option<u32>) -> io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another daemon is already listening on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // SAFETY: umask only changes the process's file-creation mask; restored right after.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    if let Some(gid) = group {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in socket path"))?;
        // SAFETY: valid C string; -1 leaves the owner unchanged.
        if unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    listener.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(listener)
}

/// Looks up a group id by name (or accepts a number).
pub fn group_id(name: &str) -> io::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in group name"))?;
    // SAFETY: getgrnam reads a valid C string; the result is copied out before another call.
    let grp = unsafe { libc::getgrnam(c.as_ptr()) };
    if grp.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("group {name:?} not found"),
        ));
    }
    // SAFETY: non-null pointer from getgrnam.
    Ok(unsafe { (*grp).gr_gid })
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    daemon: AppState,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = crate::router(daemon);
    axum::serve(listener, axum::ServiceExt::into_make_service(app))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn group_sockets_are_0660_and_owned_by_the_group() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.sock");
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let _l = bind_unix(&path, Some(gid)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        assert_eq!(group_id(&gid.to_string()).unwrap(), gid);
        assert!(group_id("no-such-group-berth").is_err());
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("unix:///tmp/b.sock").unwrap(),
            Host::Unix("/tmp/b.sock".into())
        );
        assert!(Host::parse("unix://relative.sock").is_err());
        let e = Host::parse("tcp://0.0.0.0:2375").unwrap_err();
        assert!(e.contains("mutual TLS"), "{e}");
        assert!(Host::parse("ftp://x").is_err());
    }

    #[tokio::test]
    async fn sockets_are_0600_and_live_ones_are_not_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sock");
        let l = bind_unix(&path, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(bind_unix(&path, None).is_err());
        drop(l);
        // Stale socket: replaced.
        assert!(bind_unix(&path, None).is_ok());
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind_unix(&file, None).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
