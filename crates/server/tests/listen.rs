//! The listeners on real sockets: the header read timeout (slowloris), mutual TLS on TCP, and
//! shutdown with connections open. Certificates are made with the `openssl` CLI.

use berth_server::listen::{self, ServeOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn daemon() -> (tempfile::TempDir, berth_server::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let d = berth_daemon::Daemon::open(berth_daemon::DaemonConfig {
        data_root: dir.path().join("root"),
        max_instances: 10,
        insecure_registries: vec![],
    })
    .unwrap();
    (dir, d)
}

const SHORT: ServeOptions = ServeOptions {
    header_read_timeout: Duration::from_millis(500),
    tls_handshake_timeout: Duration::from_millis(500),
};

/// Sends `GET path` with `Connection: close` and returns the whole answer.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("no answer within 10s");
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits until the peer closes `s` (EOF or reset), failing after `limit`; returns how long
/// that took and what was read.
async fn closed_within<S: AsyncRead + Unpin>(mut s: S, limit: Duration) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let r = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    assert!(
        r.is_ok(),
        "the daemon kept the connection open for {limit:?} (read {:?})",
        String::from_utf8_lossy(&out)
    );
    (start.elapsed(), out)
}

#[tokio::test]
async fn slowloris_and_idle_unix_clients_are_dropped_and_others_are_served() {
    let (dir, d) = daemon();
    let sock = dir.path().join("api.sock");
    let listener = listen::bind_unix(&sock, None).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listen::serve_unix(d, listener, SHORT, async move {
        let _ = stopped.await;
    }));

    let t0 = Instant::now();
    let mut slow = tokio::net::UnixStream::connect(&sock).await.unwrap();
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: ")
        .await
        .unwrap();
    let idle = tokio::net::UnixStream::connect(&sock).await.unwrap();
    // Other clients are served while those two hang on.
    for _ in 0..3 {
        let s = tokio::net::UnixStream::connect(&sock).await.unwrap();
        let answer = request(s, "/_ping").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let (_, slow_out) = closed_within(slow, Duration::from_secs(5)).await;
    assert!(
        !String::from_utf8_lossy(&slow_out).contains("200 OK"),
        "a partial request was answered"
    );
    closed_within(idle, Duration::from_secs(5)).await;
    // Closed by the timeout (500 ms), not at once.
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t0.elapsed()
    );
    // A client that trickles a byte at a time is dropped too.
    let mut trickle = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let start = Instant::now();
    let mut dropped = false;
    for b in
        b"GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if trickle.write_all(&[*b]).await.is_err() {
            dropped = true;
            break;
        }
    }
    if !dropped {
        let (t, _) = closed_within(trickle, Duration::from_secs(5)).await;
        assert!(start.elapsed() < Duration::from_secs(8), "{t:?}");
    }
    let s = tokio::net::UnixStream::connect(&sock).await.unwrap();
    assert!(request(s, "/_ping").await.starts_with("HTTP/1.1 200"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_closes_kept_alive_connections_and_returns() {
    let (dir, d) = daemon();
    let sock = dir.path().join("api.sock");
    let listener = listen::bind_unix(&sock, None).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listen::serve_unix(
        d,
        listener,
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    // A kept-alive connection, idle after its first answer.
    let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve waited on an idle connection")
        .unwrap()
        .unwrap();
    closed_within(s, Duration::from_secs(1)).await;
}

#[path = "../../../tests/support/pki.rs"]
mod pki;
use pki::Pki;

/// What the listener tests need from the PKI.
trait ListenerPki {
    fn files(&self) -> berth_server::tls::TlsFiles;
    fn client(&self, identity: Option<&str>) -> tokio_rustls::TlsConnector;
}

impl ListenerPki for Pki {
    fn files(&self) -> berth_server::tls::TlsFiles {
        berth_server::tls::TlsFiles {
            ca: self.file("ca.pem"),
            cert: self.file("server.pem"),
            key: self.file("server-key.pem"),
        }
    }

    /// A client that trusts the CA and presents `identity` (`client`, `rogue`) if given.
    fn client(&self, identity: Option<&str>) -> tokio_rustls::TlsConnector {
        use berth_server::tls::{load_certs, load_key, load_roots, provider};
        let roots = load_roots(&self.file("ca.pem")).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(name) => builder
                .with_client_auth_cert(
                    load_certs("cert", &self.file(&format!("{name}.pem"))).unwrap(),
                    load_key(&self.file(&format!("{name}-key.pem"))).unwrap(),
                )
                .unwrap(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

async fn tls_get(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::other("no answer within 10s"))??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn tcp_needs_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let config = berth_server::tls::server_config(&pki.files()).unwrap();
    let (_dir, d) = daemon();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listen::serve_tls(d, listener, config, SHORT, async move {
        let _ = stopped.await;
    }));

    let good = pki.client(Some("client"));
    let answer = tls_get(&good, addr, "/v1.44/version").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ApiVersion\":\"1.44\""), "{answer}");

    for (what, connector) in [
        ("no client certificate", pki.client(None)),
        ("a certificate from another CA", pki.client(Some("rogue"))),
    ] {
        match tls_get(&connector, addr, "/_ping").await {
            Err(e) => eprintln!("{what}: refused: {e}"),
            Ok(answer) => assert!(
                !answer.contains("HTTP/1.1"),
                "{what}: the daemon answered: {answer}"
            ),
        }
    }
    // A client that does not trust the daemon's CA refuses it too (the server cert is real).
    let rogue_roots = berth_server::tls::load_roots(&pki.file("rogue-ca.pem")).unwrap();
    let distrustful = tokio_rustls::TlsConnector::from(Arc::new(
        rustls::ClientConfig::builder_with_provider(berth_server::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rogue_roots)
            .with_no_client_auth(),
    ));
    assert!(tls_get(&distrustful, addr, "/_ping").await.is_err());

    // Plain HTTP on the TLS port is answered with a 400 that says so, and not served.
    let plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    let answer = request(plain, "/_ping").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("plain HTTP request to a TLS listener"),
        "{answer}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    // A client that never finishes the handshake is dropped after the handshake timeout.
    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (t, _) = closed_within(silent, Duration::from_secs(5)).await;
    assert!(t >= Duration::from_millis(450), "{t:?}");

    // After the handshake, a slowloris request head is dropped like on the unix socket.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = good.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nX-Slow: ")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    closed_within(tls, Duration::from_secs(5)).await;

    // And good clients are still served.
    let answer = tls_get(&good, addr, "/_ping").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve_tls did not return after shutdown")
        .unwrap()
        .unwrap();
}

#[test]
fn tls_files_are_checked_at_start() {
    let pki = Pki::new();
    assert!(berth_server::tls::server_config(&pki.files()).is_ok());
    let mut files = pki.files();
    files.ca = pki.file("missing.pem");
    let e = berth_server::tls::server_config(&files).unwrap_err();
    assert!(
        e.contains("could not read CA certificate") && e.contains("missing.pem"),
        "{e}"
    );
    let mut files = pki.files();
    files.cert = pki.file("server.ext");
    let e = berth_server::tls::server_config(&files).unwrap_err();
    assert!(e.contains("no PEM certificate"), "{e}");
    // A key that does not belong to the certificate.
    let mut files = pki.files();
    files.key = pki.file("client-key.pem");
    assert!(berth_server::tls::server_config(&files).is_err());
    let mut files = pki.files();
    files.key = pki.file("server.pem");
    let e = berth_server::tls::server_config(&files).unwrap_err();
    assert!(e.contains("invalid private key"), "{e}");
}
