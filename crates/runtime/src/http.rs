//! wasi:http proxy components served as HTTP services, as `wasmtime serve` does.
//!
//! A component that exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world) is
//! prepared as [`Prepared::Http`](crate::Prepared::Http). Running it does not call the guest
//! once: [`serve`] binds the container's HTTP port and answers every request with a **fresh
//! `Store` and instance** built from the same [`RunSpec`] (args, env, root, mounts, output,
//! memory limit, epochs), so no state leaks from one request to the next. The future serves
//! until it is dropped; dropping it closes the listeners and drops every connection and every
//! guest in flight.
//!
//! Listeners:
//! - the published port for `RunSpec::http_port` (`-p HOST:CONTAINER`), if any, on
//!   `host_ip:host_port`;
//! - always an internal listener on `127.0.0.1:0`, registered with the [`NetRegistry`] so
//!   other containers reach the service by name and container port.
//!
//! Each connection is one tokio task; the guests of its requests run on that same task, next
//! to hyper (a guest keeps running after it has sent the response head, to stream the body).
//! At most [`MAX_IN_FLIGHT`] requests per container run at once (more get `503`), and at most
//! [`MAX_CONNECTIONS`] connections are open (more wait in the kernel backlog).
//!
//! Outgoing requests from the guest ([`HttpHooks::send_request`]) follow the egress policy of
//! wasi:sockets: none at all under `--network none`, container names and `localhost` go to the
//! container listeners, anything else must resolve only to addresses the policy allows.

use crate::net::{ContainerNet, NameAnswer, NetRegistry, Proto, Route};
use crate::{Limits, Outcome, P2Host, RunSpec, arm_epochs, wasi_builder};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::http::uri::{Authority, Scheme};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme as WasiScheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// Requests of one container that may run at once; more are answered `503`.
pub const MAX_IN_FLIGHT: usize = 1000;

/// Open connections per container; further connections wait to be accepted.
pub const MAX_CONNECTIONS: usize = 4096;

/// Time a client has to send a complete request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed to resolve the host name of an outgoing request.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A guest handling one request, run on its connection's task.
type GuestRun = Pin<Box<dyn Future<Output = ()> + Send>>;

impl WasiHttpView for P2Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// The `wasi:http` hooks of one store: where the guest's outgoing requests may go.
pub(crate) struct HttpHooks {
    registry: Arc<NetRegistry>,
    /// `None` under `--network none`: every outgoing request is denied.
    network: Option<Arc<ContainerNet>>,
}

impl HttpHooks {
    pub(crate) fn new(registry: Arc<NetRegistry>, network: Option<Arc<ContainerNet>>) -> Self {
        Self { registry, network }
    }
}

type SendRequestResult = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendRequestResult> + Send> {
        drop(fut);
        let registry = self.registry.clone();
        let network = self.network.clone();
        Box::new(async move {
            let Some(network) = network else {
                return Err(HttpError::HttpRequestDenied);
            };
            let request = route_request(&registry, &network, request).await?;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(|body| body.boxed_unsync()),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }

    // The defaults log every failed outgoing request at `warn`: a guest could flood the
    // daemon's log. The error reaches the guest anyway.
    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        tracing::trace!(error = %err, "outgoing request: protocol error");
        ErrorCode::HttpProtocolError
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::trace!(error = %err, "outgoing request: connect error");
        ErrorCode::ConnectionRefused
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        tracing::trace!(error = %err, "outgoing request: TLS error");
        ErrorCode::TlsProtocolError
    }
}

/// Applies the container's network view to an outgoing request: the returned request names,
/// in its URI, the address to connect to (its `Host` header still names what the guest
/// asked for). The decisions are those of wasi:sockets ([`NetRegistry`]'s routing):
///
/// - A container name, container address or `localhost` with a listener on the port
///   ([`NetRegistry::route`]): that container's listener.
/// - A container name the container may not see: "not found", without asking the host
///   resolver; a container address with nothing listening: connection refused.
/// - Anything else is resolved once, and **every** address it resolves to must be allowed by
///   the egress policy (`DestinationIpProhibited` otherwise). For plain http the request is
///   then pinned to the first address, so no second resolution can bring in another one.
///
/// https keeps the host name in the URI because `default_send_request` takes the TLS server
/// name from it, and resolves the name again when it connects: a DNS rebinding between the
/// two lookups (a TTL-0 name answering an allowed address first and a denied one second)
/// can still reach an address the policy denies. Closing that window needs a connector that
/// connects to the pinned address and verifies the certificate against the name. https to a
/// container goes to its listener's address, so the certificate check fails there.
async fn route_request(
    registry: &NetRegistry,
    network: &ContainerNet,
    mut request: hyper::Request<WasiBody>,
) -> Result<hyper::Request<WasiBody>, HttpError> {
    let uri = request.uri();
    let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();

    if let Some(real) = registry.route(network, &host, port) {
        tracing::trace!(%host, port, %real, "outgoing request to a container");
        pin_authority(&mut request, real)?;
        return Ok(request);
    }
    let mut candidates = Vec::new();
    match host.parse::<IpAddr>() {
        Ok(ip) => candidates.push(SocketAddr::new(ip, port)),
        Err(_) => match registry.lookup(network, &host) {
            NameAnswer::NotFound => return Err(not_found()),
            NameAnswer::Addr(ip) => {
                candidates.push(SocketAddr::new(ip, port));
                // `localhost` over https: the name is resolved again by the host; check
                // what it gives too.
                if tls && ip.is_loopback() {
                    candidates.extend(resolve(&host, port).await?);
                }
            }
            NameAnswer::External => candidates.extend(resolve(&host, port).await?),
        },
    }
    // (address, whether it is a container listener rather than the address asked for)
    let mut chosen = None;
    for addr in candidates {
        let to = match registry.route_addr(network, Proto::Tcp, addr, addr.is_ipv4()) {
            Route::Container { real, .. } => (real, true),
            Route::Egress(to) => (to, false),
            Route::Refused => return Err(HttpError::ConnectionRefused),
            Route::Denied => {
                tracing::trace!(%host, denied = %addr, "outgoing request denied by the egress policy");
                return Err(HttpError::DestinationIpProhibited);
            }
        };
        chosen.get_or_insert(to);
    }
    let Some((chosen, container)) = chosen else {
        return Err(not_found());
    };
    if !tls || container {
        pin_authority(&mut request, chosen)?;
    }
    Ok(request)
}

/// The host resolver's addresses for `host`, within [`RESOLVE_TIMEOUT`].
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, HttpError> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(HttpError::DnsTimeout),
        Ok(Err(_)) => Err(not_found()),
        Ok(Ok(addrs)) => Ok(addrs.collect()),
    }
}

fn not_found() -> HttpError {
    HttpError::DnsError {
        rcode: Some("address not available".to_string()),
        info_code: Some(0),
    }
}

/// Replaces the authority of the request URI with `addr` (scheme, path and headers kept).
fn pin_authority(
    request: &mut hyper::Request<WasiBody>,
    addr: SocketAddr,
) -> Result<(), HttpError> {
    let mut parts = request.uri().clone().into_parts();
    parts.authority =
        Some(Authority::try_from(addr.to_string()).map_err(|_| HttpError::HttpRequestUriInvalid)?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    Ok(())
}

/// What every request of one service needs, shared by its connection tasks.
struct Service {
    pre: ProxyPre<P2Host>,
    registry: Arc<NetRegistry>,
    network: Arc<ContainerNet>,
    /// The container's run spec, `stdin` removed; a WASI context is built from it per request.
    spec: RunSpec,
    in_flight: Arc<Semaphore>,
}

/// Serves the proxy component `pre` until the future is dropped. Returns only when the
/// service cannot start (no network, a port that cannot be bound, a bad mount) or, after
/// that, if its listener fails for good.
pub(crate) async fn serve(
    registry: &Arc<NetRegistry>,
    pre: &ProxyPre<P2Host>,
    mut spec: RunSpec,
) -> Outcome {
    let Some(network) = spec.network.clone() else {
        return Outcome::Failed(
            "a wasi:http service needs a network to listen on; it cannot run with \
             --network none"
                .to_string(),
        );
    };
    spec.stdin = None;
    // Fail at start, not at the first request, when the filesystem grants are unusable.
    if let Err(e) = wasi_builder(&spec) {
        return Outcome::Failed(e.to_string());
    }
    let port = spec.http_port;
    let published = match network.published_port(Proto::Tcp, port) {
        Some(p) => {
            let addr = SocketAddr::new(p.host_ip, p.host_port);
            match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => return Outcome::Failed(bind_error(addr, port, &e)),
            }
        }
        None => None,
    };
    let internal_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let internal = match TcpListener::bind(internal_addr).await {
        Ok(l) => l,
        Err(e) => return Outcome::Failed(bind_error(internal_addr, port, &e)),
    };
    let internal_addr = match internal.local_addr() {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("internal listener: {e}")),
    };
    let _attachment = registry.attach(&network);
    let _registered = registry.register_listener(&network.id, port, internal_addr);
    tracing::debug!(
        container = %network.id,
        port,
        published = ?published.as_ref().and_then(|l| l.local_addr().ok()),
        internal = %internal_addr,
        "serving wasi:http"
    );

    let service = Arc::new(Service {
        pre: pre.clone(),
        registry: registry.clone(),
        network,
        spec,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropping the set (when this future is dropped) aborts every connection task, and with
    // them every guest running on them.
    let mut tasks = JoinSet::new();
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return Outcome::Failed("connection limiter closed".to_string());
        };
        let accepted = tokio::select! {
            r = internal.accept() => r,
            r = accept(published.as_ref()) => r,
            // Reap finished connection tasks as we go.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                tracing::trace!(%peer, "connection");
                let service = service.clone();
                tasks.spawn(async move {
                    serve_connection(service, stream).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn bind_error(addr: SocketAddr, port: u16, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => "address in use".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::AddrNotAvailable => "address not available on this host".to_string(),
        _ => e.to_string(),
    };
    format!("cannot bind {addr} for container port {port}/tcp: {why}")
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// One connection: hyper and the guests of its requests, all on this task.
async fn serve_connection(service: Arc<Service>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (run_tx, mut run_rx) = mpsc::unbounded_channel::<GuestRun>();
    let handler = hyper::service::service_fn(move |req| {
        let service = service.clone();
        let run_tx = run_tx.clone();
        async move { Ok::<_, Infallible>(handle(&service, req, &run_tx).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), handler);
    let mut conn = std::pin::pin!(conn);
    let mut guests = FuturesUnordered::<GuestRun>::new();
    loop {
        tokio::select! {
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "connection ended");
                }
                break;
            }
            Some(run) = run_rx.recv() => guests.push(run),
            Some(()) = guests.next(), if !guests.is_empty() => {}
        }
    }
    // Guests still running after the client went away finish (their output still counts).
    run_rx.close();
    while let Ok(run) = run_rx.try_recv() {
        guests.push(run);
    }
    while guests.next().await.is_some() {}
}

/// Answers one request with a fresh instance of the guest.
async fn handle(
    service: &Service,
    req: Request<Incoming>,
    run_tx: &mpsc::UnboundedSender<GuestRun>,
) -> Response<HyperOutgoingBody> {
    let Ok(permit) = service.in_flight.clone().try_acquire_owned() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight\n",
        );
    };
    let mut store = match new_store(service) {
        Ok(store) => store,
        Err(e) => {
            tracing::debug!(error = %e, "cannot set up a request");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n");
        }
    };
    // HTTP/1.0 clients may send no Host; wasi:http needs an authority, so give it one.
    let mut req = req;
    if req.uri().authority().is_none() && !req.headers().contains_key(hyper::header::HOST) {
        req.headers_mut().insert(
            hyper::header::HOST,
            hyper::header::HeaderValue::from_static("localhost"),
        );
    }
    let (response_tx, response_rx) = oneshot::channel();
    let resources = (|| -> wasmtime::Result<_> {
        let mut http = store.data_mut().http();
        let req = http.new_incoming_request(WasiScheme::Http, req)?;
        let out = http.new_response_outparam(response_tx)?;
        Ok((req, out))
    })();
    let (guest_req, out) = match resources {
        Ok(r) => r,
        Err(e) => {
            tracing::trace!(error = %e, "bad request");
            return plain(StatusCode::BAD_REQUEST, "bad request\n");
        }
    };
    let pre = service.pre.clone();
    let (done_tx, done_rx) = oneshot::channel::<String>();
    let run: GuestRun = Box::pin(async move {
        let _permit = permit;
        let result = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, guest_req, out)
                .await
        }
        .await;
        if let Err(e) = result {
            let oom = store.data().limits.denied;
            let _ = done_tx.send(format!(
                "{e:#}{}",
                if oom { " (out of memory)" } else { "" }
            ));
        }
        // `store` drops here: the response sender with it, if the guest never answered.
    });
    if run_tx.send(run).is_err() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match response_rx.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => {
            tracing::trace!(?code, "guest answered with an error");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
        }
        Err(_) => {
            match done_rx.await {
                Ok(error) => tracing::debug!(%error, "guest failed before answering"),
                Err(_) => tracing::debug!("guest returned without answering"),
            }
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
        }
    }
}

/// A store for one request, with the container's WASI context, limits and epochs.
fn new_store(service: &Service) -> Result<Store<P2Host>, crate::RuntimeError> {
    let mut builder = wasi_builder(&service.spec)?;
    let limits = Limits {
        max: service.spec.memory_limit,
        ..Limits::default()
    };
    let host = crate::p2_host(
        &service.registry,
        Some(&service.network),
        builder.build(),
        limits,
    );
    let mut store = Store::new(service.pre.engine(), host);
    store.limiter(|h| &mut h.limits);
    arm_epochs(&mut store, service.spec.cpus);
    Ok(store)
}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{EgressPolicy, OutboundRule};

    fn request(uri: &str) -> hyper::Request<WasiBody> {
        hyper::Request::get(uri)
            .header(hyper::header::HOST, "guest-host")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never: Infallible| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn container(egress: EgressPolicy) -> ContainerNet {
        ContainerNet {
            id: "c".into(),
            name: "c".into(),
            networks: vec!["bridge".into()],
            egress,
            published: Vec::new(),
        }
    }

    #[tokio::test]
    async fn outgoing_requests_are_checked_and_plain_http_is_pinned() {
        let registry = NetRegistry::new();
        let denied = container(EgressPolicy::default());
        for uri in [
            "http://localhost:8080/",
            "https://localhost/",
            "http://127.0.0.1/",
            "http://[::1]:80/",
            "http://0.0.0.0:80/",
            "http://[::ffff:10.0.0.1]/",
        ] {
            assert!(
                matches!(
                    route_request(&registry, &denied, request(uri)).await,
                    Err(HttpError::DestinationIpProhibited)
                ),
                "{uri} should be denied"
            );
        }

        let loopback = |addr: &str, prefix| OutboundRule {
            addr: addr.parse().unwrap(),
            prefix,
            port: Some(8080),
        };
        let allowed = container(EgressPolicy {
            allow: vec![loopback("127.0.0.0", 8), loopback("::1", 128)],
        });
        let pinned = route_request(&registry, &allowed, request("http://localhost:8080/p?q"))
            .await
            .unwrap();
        let authority = pinned.uri().authority().unwrap().as_str().to_string();
        assert!(
            authority == "127.0.0.1:8080" || authority == "[::1]:8080",
            "{authority}"
        );
        assert_eq!(pinned.uri().path_and_query().unwrap().as_str(), "/p?q");
        assert_eq!(pinned.uri().scheme_str(), Some("http"));
        assert_eq!(pinned.headers()[hyper::header::HOST], "guest-host");

        // https keeps the name (for the TLS server name); the port rule still applies.
        let kept = route_request(&registry, &allowed, request("https://localhost:8080/"))
            .await
            .unwrap();
        assert_eq!(kept.uri().authority().unwrap().as_str(), "localhost:8080");
        assert!(matches!(
            route_request(&registry, &allowed, request("https://localhost/")).await,
            Err(HttpError::DestinationIpProhibited)
        ));
    }
}
