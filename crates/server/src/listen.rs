//! Listeners: unix sockets created with mode 0600 (0660 with a group) and no window in which
//! they are more open, and TCP sockets behind mutual TLS, served until shutdown. Every
//! connection has [`ServeOptions::header_read_timeout`] to send each request head (and TCP
//! ones [`ServeOptions::tls_handshake_timeout`] to finish the handshake), so idle or
//! slowloris clients cannot hold connections open.

use crate::AppState;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where berthd listens, parsed from `-H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `HOST:PORT`, served only with mutual TLS (see [`require_tls`]).
    Tcp(String),
}

/// dockerd's port for TLS listeners, used when `tcp://HOST` names none.
pub const DEFAULT_TLS_PORT: u16 = 2376;

impl Host {
    /// Parses `unix:///path` or `tcp://HOST[:PORT]` (`http://` is taken as `tcp://`). Whether a
    /// TCP address may be served is decided by [`require_tls`].
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{s}: unix socket paths must be absolute (unix:///path)"
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') || addr.starts_with(':') {
                return Err(format!("{s}: invalid TCP address; use tcp://HOST:PORT"));
            }
            let has_port = if addr.starts_with('[') {
                addr.contains("]:")
            } else {
                addr.contains(':')
            };
            return Ok(Self::Tcp(if has_port {
                addr.to_string()
            } else {
                format!("{addr}:{DEFAULT_TLS_PORT}")
            }));
        }
        Err(format!(
            "{s}: unsupported address; use unix:///path/to/berth.sock or tcp://HOST:PORT with --tlsverify"
        ))
    }
}

/// TCP listeners are served only with mutual TLS: anyone who can reach an unauthenticated TCP
/// port owns the daemon. Refuses the first TCP host when `tls` is `None`.
pub fn require_tls(hosts: &[Host], tls: Option<&crate::tls::TlsFiles>) -> Result<(), String> {
    if tls.is_some() {
        return Ok(());
    }
    match hosts.iter().find(|h| matches!(h, Host::Tcp(_))) {
        Some(Host::Tcp(addr)) => Err(format!(
            "tcp://{addr}: TCP listeners need mutual TLS: start berthd with --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY, or use a unix socket (forward it over SSH for remote use)"
        )),
        _ => Ok(()),
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

/// How connections are held to account.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a client has to send a complete request head (also the idle time allowed between
    /// requests on a kept-alive connection). A slowloris client is dropped after it.
    pub header_read_timeout: Duration,
    /// Time a TCP client has to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
}

/// Default of [`ServeOptions::header_read_timeout`] and
/// [`ServeOptions::tls_handshake_timeout`].
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: CLIENT_TIMEOUT,
            tls_handshake_timeout: CLIENT_TIMEOUT,
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, with the default [`ServeOptions`].
pub async fn serve(
    daemon: AppState,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_unix(daemon, listener, ServeOptions::default(), shutdown).await
}

/// Serves the API on a unix socket until `shutdown` resolves; then stops accepting, lets
/// requests in progress finish and returns when every connection is closed.
pub async fn serve_unix(
    daemon: AppState,
    listener: tokio::net::UnixListener,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = crate::router(daemon);
    let conns = Connections::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_conn(app.clone(), stream, opts, conns.tracker()));
    }
    drop(listener);
    conns.close().await;
    Ok(())
}

/// Serves the API over TLS on a TCP listener until `shutdown` resolves. Each connection must
/// complete the handshake (with a client certificate the `tls` config accepts) within
/// [`ServeOptions::tls_handshake_timeout`] before any HTTP is read.
pub async fn serve_tls(
    daemon: AppState,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = crate::router(daemon);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let conns = Connections::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, acceptor, tracker) = (app.clone(), acceptor.clone(), conns.tracker());
        tokio::spawn(async move {
            let handshake = async {
                if refuse_plain_http(&mut stream).await {
                    return Err(io::Error::other("plain HTTP request on the TLS listener"));
                }
                acceptor.accept(stream).await
            };
            match tokio::time::timeout(opts.tls_handshake_timeout, handshake).await {
                Ok(Ok(tls)) => serve_conn(app, tls, opts, tracker).await,
                Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    conns.close().await;
    Ok(())
}

/// A client speaking plain HTTP to the TLS port (a forgotten `--tlsverify`) gets a `400`
/// saying so, as Go servers answer, instead of a TLS alert it cannot read; nothing it sent
/// is processed. Returns whether that happened.
async fn refuse_plain_http(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = [0u8; 1];
    // A TLS connection starts with a handshake record (0x16); HTTP with an upper-case method.
    if !matches!(stream.peek(&mut first).await, Ok(1) if first[0].is_ascii_uppercase()) {
        return false;
    }
    let body = br#"{"message":"client sent a plain HTTP request to a TLS listener: use --tlsverify with a client certificate (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"}"#;
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
    // Drain what the client sent so that closing does not reset the connection before it
    // reads the answer (bounded by the handshake timeout around this).
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while let Ok(n) = stream.read(&mut sink).await {
        total += n;
        if n == 0 || total > 64 * 1024 {
            break;
        }
    }
    true
}

/// An accept error (EMFILE, ECONNABORTED, ...) is not fatal: wait a little so that a full
/// file table does not turn the loop into a busy spin, then accept again.
async fn accept_failed(e: io::Error) {
    tracing::warn!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The connections of one listener: told when to shut down, and counted so that the
/// listener's task ends only after its last connection.
struct Connections {
    stop: tokio::sync::watch::Sender<bool>,
    alive: tokio::sync::mpsc::Sender<()>,
    done: tokio::sync::mpsc::Receiver<()>,
}

struct Tracker {
    stop: tokio::sync::watch::Receiver<bool>,
    _alive: tokio::sync::mpsc::Sender<()>,
}

impl Connections {
    fn new() -> Self {
        let (alive, done) = tokio::sync::mpsc::channel(1);
        Self {
            stop: tokio::sync::watch::channel(false).0,
            alive,
            done,
        }
    }

    fn tracker(&self) -> Tracker {
        Tracker {
            stop: self.stop.subscribe(),
            _alive: self.alive.clone(),
        }
    }

    /// Asks every connection to finish its current request and close, and waits for them.
    async fn close(self) {
        let Self {
            stop,
            alive,
            mut done,
        } = self;
        let _ = stop.send(true);
        drop(alive);
        // `None` once every tracker (connection) is gone.
        let _ = done.recv().await;
    }
}

/// Serves HTTP/1.1 (with upgrades, for attach) on one connection.
async fn serve_conn<I, S>(app: S, io: I, opts: ServeOptions, mut tracker: Tracker)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "API connection ended");
            }
            return;
        }
        _ = tracker.stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
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
        assert_eq!(
            Host::parse("tcp://0.0.0.0:2375").unwrap(),
            Host::Tcp("0.0.0.0:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2376".into())
        );
        assert_eq!(
            Host::parse("http://[::1]/").unwrap(),
            Host::Tcp("[::1]:2376".into())
        );
        assert_eq!(
            Host::parse("tcp://[::1]:9").unwrap(),
            Host::Tcp("[::1]:9".into())
        );
        assert!(Host::parse("tcp://").is_err());
        assert!(Host::parse("tcp://:2375").is_err());
        assert!(Host::parse("tcp://a:1/path").is_err());
        assert!(Host::parse("ftp://x").is_err());
    }

    #[test]
    fn tcp_needs_tls() {
        let unix = Host::parse("unix:///tmp/b.sock").unwrap();
        let tcp = Host::parse("tcp://0.0.0.0:2375").unwrap();
        assert!(require_tls(std::slice::from_ref(&unix), None).is_ok());
        let e = require_tls(&[unix.clone(), tcp.clone()], None).unwrap_err();
        assert!(e.contains("mutual TLS") && e.contains("--tlsverify"), "{e}");
        assert!(e.starts_with("tcp://0.0.0.0:2375"), "{e}");
        let files = crate::tls::TlsFiles {
            ca: "ca.pem".into(),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        };
        assert!(require_tls(&[unix, tcp], Some(&files)).is_ok());
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
