//! HTTP/1.1 client of the berthd API over a unix socket, TCP, or TCP with TLS.
//!
//! Every request opens its own connection: the CLI makes few requests, and `run` needs several
//! in flight at once (attach, wait, start).
//!
//! TLS (`--tlsverify`, `DOCKER_TLS_VERIFY`) is set once for the process with [`set_tls`]: the
//! daemon's certificate is verified against the CA and the client presents its own
//! certificate, as berthd's TCP listeners require.

use crate::error::{ConnectError, DaemonError};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};

/// The API version prefix of every request path.
pub const API_PREFIX: &str = "/v1.44";

/// The raw, bidirectional stream of an upgraded (hijacked) attach connection.
pub type RawStream = TokioIo<hyper::upgrade::Upgraded>;

#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
    Tls {
        addr: String,
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    },
}

/// The client side of mutual TLS: `--tlsverify --tlscacert --tlscert --tlskey`, or
/// `DOCKER_TLS_VERIFY` with the files in `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA the daemon's certificate must be signed by.
    pub ca: PathBuf,
    /// The client's certificate and key (none: no client certificate is presented, and
    /// berthd refuses the connection).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// dockerd's port for TLS, used when `tcp://HOST` names none (2375 without TLS).
pub const DEFAULT_TLS_PORT: u16 = 2376;

static TLS: OnceLock<Option<TlsOptions>> = OnceLock::new();

/// Sets the TLS options every later [`Client::new`] of a `tcp://` host uses (once per
/// process; later calls are ignored).
pub fn set_tls(opts: Option<TlsOptions>) {
    let _ = TLS.set(opts);
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("could not read {what} {:?}", path.display()))
}

fn load_certs(what: &str, path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(what, path)?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid {what} {:?}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "invalid {what} {:?}: no PEM certificate found",
            path.display()
        );
    }
    Ok(certs)
}

/// The rustls client configuration of `opts`: TLS 1.2/1.3 (ring), HTTP/1.1.
pub fn tls_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs("CA certificate", &opts.ca)? {
        roots
            .add(cert)
            .with_context(|| format!("invalid CA certificate {:?}", opts.ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match &opts.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = load_certs("certificate", cert)?;
            let pem = read_pem("private key", key)?;
            let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem)
                .with_context(|| format!("invalid private key {:?}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .with_context(|| {
                    format!(
                        "certificate {:?} and key {:?} do not match",
                        cert.display(),
                        key.display()
                    )
                })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name the daemon's certificate must carry: the host of `HOST:PORT` (an IP address
/// is matched against IP SANs).
fn server_name(addr: &str) -> Result<rustls::pki_types::ServerName<'static>> {
    let host = match addr.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => addr.rsplit_once(':').map_or(addr, |(h, _)| h),
    };
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| anyhow::anyhow!("invalid host name {host:?} for TLS"))
}

/// A client of one daemon address.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    endpoint: Endpoint,
}

/// A request body with its content type.
pub struct Body {
    pub content_type: &'static str,
    pub data: Bytes,
}

impl Body {
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Self {
            content_type: "application/json",
            data: Bytes::from(serde_json::to_vec(value)?),
        })
    }
}

impl Client {
    /// Parse a daemon address: `unix:///path`, `tcp://host:port`, `http://host:port` or a bare
    /// absolute socket path.
    pub fn new(host: &str) -> Result<Self> {
        Self::with_tls(host, TLS.get().and_then(Option::as_ref))
    }

    /// As [`Client::new`], with explicit TLS options for `tcp://` hosts (unix sockets ignore
    /// them, as the docker CLI does).
    pub fn with_tls(host: &str, tls: Option<&TlsOptions>) -> Result<Self> {
        let endpoint = if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                bail!("unable to parse berth host `{host}`");
            }
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                bail!("unable to parse berth host `{host}`");
            }
            let has_port = if addr.starts_with('[') {
                addr.contains("]:")
            } else {
                addr.contains(':')
            };
            let default_port = if tls.is_some() {
                DEFAULT_TLS_PORT
            } else {
                2375
            };
            let addr = if has_port {
                addr.to_string()
            } else {
                format!("{addr}:{default_port}")
            };
            match tls {
                None => Endpoint::Tcp(addr),
                Some(opts) => Endpoint::Tls {
                    name: server_name(&addr)?,
                    config: tls_config(opts)?,
                    addr,
                },
            }
        } else if host.starts_with('/') {
            Endpoint::Unix(PathBuf::from(host))
        } else {
            bail!("unable to parse berth host `{host}`");
        };
        Ok(Self {
            host: host.to_string(),
            endpoint,
        })
    }

    /// The address as the user gave it.
    pub fn host(&self) -> &str {
        &self.host
    }

    async fn sender<B>(&self) -> Result<http1::SendRequest<B>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let connect_err = || ConnectError {
            host: self.host.clone(),
        };
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|_| connect_err())?;
                handshake(stream).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|_| connect_err())?;
                let _ = stream.set_nodelay(true);
                handshake(stream).await
            }
            Endpoint::Tls { addr, config, name } => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|_| connect_err())?;
                let _ = stream.set_nodelay(true);
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), stream)
                    .await
                    .with_context(|| {
                        format!(
                            "error during connect to {}: TLS handshake failed",
                            self.host
                        )
                    })?;
                handshake(stream).await
            }
        }
    }

    /// A request builder with the API prefix, `Host`, `User-Agent` and `headers`.
    fn builder(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<hyper::http::request::Builder> {
        let uri = format!("{API_PREFIX}{path}");
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "berth")
            .header(
                "User-Agent",
                concat!("Berth-Client/", env!("CARGO_PKG_VERSION"), " (linux)"),
            );
        for (name, value) in headers {
            builder = builder.header(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).context("invalid header value")?,
            );
        }
        Ok(builder)
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&'static str, String)],
    ) -> Result<Request<Full<Bytes>>> {
        let mut builder = self.builder(method.clone(), path, headers)?;
        let (data, content_type) = match body {
            Some(b) => (b.data, Some(b.content_type)),
            None => (Bytes::new(), None),
        };
        if let Some(ct) = content_type {
            builder = builder.header("Content-Type", ct);
        }
        if method != Method::GET && method != Method::HEAD || !data.is_empty() {
            builder = builder.header("Content-Length", data.len().to_string());
        }
        Ok(builder.body(Full::new(data))?)
    }

    /// Send a request and return the response whatever its status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, body, headers)?;
        let mut sender = self.sender().await?;
        sender
            .send_request(req)
            .await
            .with_context(|| format!("error during connect to {}", self.host))
    }

    /// Send a request; a `4xx`/`5xx` answer becomes a [`DaemonError`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>> {
        let resp = self.raw(method, path, body, headers).await?;
        check(resp).await
    }

    /// Send a request whose body is streamed (`Transfer-Encoding: chunked`) rather than held
    /// in memory; a `4xx`/`5xx` answer becomes a [`DaemonError`].
    pub async fn send_streaming<B>(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: B,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let req = self
            .builder(method, path, headers)?
            .header("Content-Type", content_type)
            .body(body)?;
        let mut sender = self.sender::<B>().await?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("error during connect to {}", self.host))?;
        check(resp).await
    }

    pub async fn get(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Option<Body>) -> Result<Response<Incoming>> {
        self.send(Method::POST, path, body, &[]).await
    }

    pub async fn delete(&self, path: &str) -> Result<Response<Incoming>> {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// `GET` a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.get(path).await?;
        let body = read_body(resp).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("invalid response from daemon for {path}"))
    }

    /// `GET` a JSON document and keep its raw bytes (key order as the daemon sent it).
    pub async fn get_raw(&self, path: &str) -> Result<Bytes> {
        let resp = self.get(path).await?;
        read_body(resp).await
    }

    /// `POST` to an attach endpoint and upgrade the connection to a raw stream
    /// (`Connection: Upgrade`, `Upgrade: tcp`, expecting `101 Switching Protocols`).
    pub async fn attach(&self, path: &str) -> Result<RawStream> {
        let req = self.build(
            Method::POST,
            path,
            Some(Body {
                content_type: "text/plain",
                data: Bytes::new(),
            }),
            &[("connection", "Upgrade".into()), ("upgrade", "tcp".into())],
        )?;
        let mut sender = self.sender().await?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("error during connect to {}", self.host))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(resp)
                .await
                .context("unable to upgrade the attach connection")?;
            return Ok(TokioIo::new(upgraded));
        }
        let status = resp.status();
        let resp = check(resp).await?;
        drop(resp);
        bail!("unable to upgrade to tcp, received {}", status.as_u16())
    }
}

/// A request body read chunk by chunk from a blocking reader (a file, stdin) on its own
/// thread, so that it is never held in memory as a whole.
pub struct ReaderBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
}

impl ReaderBody {
    /// Size of the chunks read.
    const CHUNK: usize = 64 * 1024;

    pub fn new<R: std::io::Read + Send + 'static>(mut reader: R) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; Self::CHUNK];
            loop {
                let item = match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                // the receiver is gone when the request ended early: stop reading
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        Self { rx }
    }
}

impl hyper::body::Body for ReaderBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(hyper::body::Frame::data)))
    }
}

async fn handshake<S, B>(stream: S) -> Result<http1::SendRequest<B>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the daemon failed")?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Turn an error status into a [`DaemonError`]; pass other responses through.
pub async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let body = read_body(resp).await.unwrap_or_default();
    Err(DaemonError {
        status: status.as_u16(),
        message: error_message(status, &body),
    }
    .into())
}

/// The message of an error body: `{"message": ...}`, else the raw text, else the status text.
pub fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<berth_api::ErrorResponse>(body) {
        return e.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if !text.is_empty() {
        return text;
    }
    status
        .canonical_reason()
        .map(|r| r.to_lowercase())
        .unwrap_or_else(|| format!("status {}", status.as_u16()))
}

/// Read a whole response body.
pub async fn read_body(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .context("error reading the daemon's response")?
        .to_bytes())
}

/// Read the next chunk of a streaming body; `None` at the end.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(anyhow::Error::new(e).context("error reading stream")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A decoder of a stream of concatenated JSON values (Docker's JSON-lines progress streams).
pub struct JsonStream {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl JsonStream {
    pub fn new(resp: Response<Incoming>) -> Self {
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next value, `None` at the end of the stream.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            if let Some(v) = decode_next(&mut self.buf)? {
                return Ok(Some(v));
            }
            if self.done {
                if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                    bail!("unexpected end of JSON stream");
                }
                return Ok(None);
            }
            match next_chunk(&mut self.body).await? {
                Some(data) => self.buf.extend_from_slice(&data),
                None => self.done = true,
            }
        }
    }
}

/// Decode one complete JSON value from the front of `buf`, removing it; `None` when `buf`
/// holds no complete value yet.
pub fn decode_next<T: DeserializeOwned>(buf: &mut Vec<u8>) -> Result<Option<T>> {
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    if start == buf.len() {
        buf.clear();
        return Ok(None);
    }
    let mut it = serde_json::Deserializer::from_slice(&buf[start..]).into_iter::<T>();
    match it.next() {
        Some(Ok(v)) => {
            let end = start + it.byte_offset();
            buf.drain(..end);
            Ok(Some(v))
        }
        Some(Err(e)) if e.is_eof() => Ok(None),
        Some(Err(e)) => Err(anyhow::Error::new(e).context("invalid JSON in the daemon's stream")),
        None => Ok(None),
    }
}

/// Percent-encode a query value.
pub fn query_escape(s: &str) -> String {
    escape(s, |c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
}

/// Percent-encode a path segment the way Go's `url.URL.EscapedPath` does: `/` and `:` (image
/// names) stay as they are.
pub fn path_escape(s: &str) -> String {
    escape(s, |c| {
        c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&c)
    })
}

fn escape(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Build a query string (with the leading `?`, or empty) from key/value pairs.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        assert!(matches!(
            Client::new("unix:///run/berth.sock").unwrap().endpoint,
            Endpoint::Unix(p) if p == std::path::Path::new("/run/berth.sock")
        ));
        assert!(matches!(
            Client::new("tcp://127.0.0.1:1234").unwrap().endpoint,
            Endpoint::Tcp(a) if a == "127.0.0.1:1234"
        ));
        assert!(matches!(
            Client::new("tcp://localhost").unwrap().endpoint,
            Endpoint::Tcp(a) if a == "localhost:2375"
        ));
        assert!(Client::new("ftp://x").is_err());
        assert!(Client::new("unix://").is_err());
    }

    #[test]
    fn tls_needs_readable_files_and_names_the_server_by_its_host() {
        let missing = TlsOptions {
            ca: "/nonexistent/ca.pem".into(),
            identity: None,
        };
        let e = Client::with_tls("tcp://127.0.0.1:2376", Some(&missing)).unwrap_err();
        assert!(
            format!("{e:#}").contains("could not read CA certificate"),
            "{e:#}"
        );
        // Unix sockets ignore TLS options.
        assert!(Client::with_tls("unix:///run/b.sock", Some(&missing)).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let bad = TlsOptions { ca, identity: None };
        let e = Client::with_tls("tcp://127.0.0.1:2376", Some(&bad)).unwrap_err();
        assert!(format!("{e:#}").contains("invalid CA certificate"), "{e:#}");
        assert!(matches!(
            server_name("127.0.0.1:2376").unwrap(),
            rustls::pki_types::ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2376").unwrap(),
            rustls::pki_types::ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("berth.example:2376").unwrap(),
            rustls::pki_types::ServerName::DnsName(_)
        ));
    }

    #[test]
    fn escaping() {
        assert_eq!(query_escape("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(
            path_escape("localhost:5000/a/b:v1"),
            "localhost:5000/a/b:v1"
        );
        assert_eq!(path_escape("a b?#"), "a%20b%3F%23");
        assert_eq!(
            query(&[("t", "a:1".into()), ("q", "1".into())]),
            "?t=a%3A1&q=1"
        );
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn json_values_decode_across_chunks() {
        let mut buf = b"{\"stream\":\"a\"}\r\n{\"str".to_vec();
        let v: Option<serde_json::Value> = decode_next(&mut buf).unwrap();
        assert_eq!(v.unwrap()["stream"], "a");
        let v: Option<serde_json::Value> = decode_next(&mut buf).unwrap();
        assert!(v.is_none());
        buf.extend_from_slice(b"eam\":\"b\"}{\"x\":1}");
        let v: Option<serde_json::Value> = decode_next(&mut buf).unwrap();
        assert_eq!(v.unwrap()["stream"], "b");
        let v: Option<serde_json::Value> = decode_next(&mut buf).unwrap();
        assert_eq!(v.unwrap()["x"], 1);
        let v: Option<serde_json::Value> = decode_next(&mut buf).unwrap();
        assert!(v.is_none());
        let mut bad = b"nope".to_vec();
        assert!(decode_next::<serde_json::Value>(&mut bad).is_err());
    }

    #[tokio::test]
    async fn reader_bodies_stream_everything() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let body = ReaderBody::new(std::io::Cursor::new(data.clone()));
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got.as_ref(), data.as_slice());

        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = ReaderBody::new(Failing).collect().await.err().unwrap();
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(
                StatusCode::NOT_FOUND,
                br#"{"message":"No such container: x"}"#
            ),
            "No such container: x"
        );
        assert_eq!(
            error_message(StatusCode::INTERNAL_SERVER_ERROR, b"boom\n"),
            "boom"
        );
        assert_eq!(error_message(StatusCode::NOT_FOUND, b""), "not found");
    }
}
