//! berth-server: the Docker Engine API (v1.44 subset) over axum, in front of a
//! [`berth_daemon::Daemon`].
//!
//! - [`router`] builds the whole API as a `tower` service with no socket, so tests can call it
//!   directly; a `/v1.NN` prefix is stripped before routing and never rejected.
//! - [`error`] is the one place where errors become statuses and `{"message"}` bodies.
//! - [`unsupported`] answers swarm, plugins, exec, events, ... with clear errors.
//! - [`listen`] binds unix sockets with the right permissions, serves them and TCP listeners
//!   (mutual TLS only, [`tls`]) until shutdown, with a header read timeout on every connection.
//! - Requests a browser made (an `Origin` or `Sec-Fetch-*` header) are refused with 403 on
//!   every route, so a web page cannot drive the daemon (CSRF, DNS rebinding).

pub mod containers;
pub mod error;
pub mod images;
pub mod listen;
pub mod objects;
pub mod params;
pub mod tls;
pub mod unsupported;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use berth_daemon::Daemon;
use error::{ApiError, ApiResult};
use std::sync::Arc;

pub type AppState = Arc<Daemon>;

/// Largest JSON request body accepted on ordinary routes.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// Serialises `value` as a `200 application/json` response.
pub fn json<T: serde::Serialize>(value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Parses a JSON body, answering malformed input in the API's own error format.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "request body is empty; expected JSON",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Strips a `/v1.NN` (any version) prefix, as Docker and Podman route both forms.
pub fn strip_version(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    let valid = !version.is_empty()
        && version.split('.').count() == 2
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return None;
    }
    let new_path = if end == rest.len() { "/" } else { &rest[end..] };
    let pq = match uri.query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path.to_string(),
    };
    pq.parse().ok()
}

async fn ping(method: Method) -> Response {
    let mut resp = if method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        (StatusCode::OK, "OK").into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("builder-version", HeaderValue::from_static("1"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    if method == Method::HEAD {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    } else {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

async fn version(State(d): State<AppState>) -> Response {
    json(&d.version())
}

/// Berth's own endpoint (not Docker's): latency percentiles for benchmarks.
async fn berth_stats(
    State(d): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    json(&d.stats(params::Params::parse(q.as_deref()).bool("reset")))
}

async fn info(State(d): State<AppState>) -> Response {
    json(&d.info())
}

/// Unknown routes: the body is read (bounded) before answering, so a client still writing
/// it (`docker update` sends JSON) gets the 404 instead of a broken pipe.
async fn not_found(req: Request) -> ApiError {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let _ = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY).await;
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {method} {path}"),
    )
}

/// Headers Docker puts on every response; the CLI reads `Api-Version` and `Ostype`.
async fn common_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "api-version",
        HeaderValue::from_static(berth_api::API_VERSION),
    );
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (wasi)")),
    );
    resp
}

/// Refuses any request a web browser made: browsers add `Origin` to cross-origin and
/// state-changing requests and `Sec-Fetch-*` to all of them (Docker clients send neither).
/// A page on another site (CSRF) or a DNS-rebound name pointing at the daemon then gets a 403
/// before any handler runs or any body is read.
async fn refuse_browsers(req: Request, next: axum::middleware::Next) -> Response {
    let h = req.headers();
    let browser =
        h.contains_key(header::ORIGIN) || h.keys().any(|k| k.as_str().starts_with("sec-fetch-"));
    if browser {
        tracing::warn!(
            origin = ?h.get(header::ORIGIN),
            path = %req.uri().path(),
            "refused a request from a web browser"
        );
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "requests from web browsers (with an Origin or Sec-Fetch header) are not allowed",
        )
        .into_response();
    }
    next.run(req).await
}

/// The API router, before version-prefix stripping.
fn routes(daemon: AppState) -> Router {
    use containers as c;
    let api = Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/berth/stats", get(berth_stats))
        .route("/containers/create", post(c::create))
        .route("/containers/json", get(c::list))
        .route("/containers/{id}/json", get(c::inspect))
        .route("/containers/{id}/start", post(c::start))
        .route("/containers/{id}/stop", post(c::stop))
        .route("/containers/{id}/kill", post(c::kill))
        .route("/containers/{id}/wait", post(c::wait))
        .route("/containers/{id}/attach", post(c::attach))
        .route("/containers/{id}/logs", get(c::logs))
        .route("/containers/{id}/resize", post(c::resize))
        .route("/containers/{id}", axum::routing::delete(c::remove))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/get", get(images::get_many))
        .route(
            "/images/load",
            post(images::load).layer(DefaultBodyLimit::disable()),
        )
        .route("/auth", post(images::auth))
        .route("/volumes", get(objects::volume_list))
        .route("/volumes/create", post(objects::volume_create))
        .route("/volumes/prune", post(objects::volume_prune))
        .route(
            "/volumes/{name}",
            get(objects::volume_inspect).delete(objects::volume_remove),
        )
        .route("/networks", get(objects::network_list))
        .route("/networks/create", post(objects::network_create))
        .route("/networks/prune", post(objects::network_prune))
        .route(
            "/networks/{id}",
            get(objects::network_inspect).delete(objects::network_remove),
        )
        .route("/networks/{id}/connect", post(objects::network_connect))
        .route(
            "/networks/{id}/disconnect",
            post(objects::network_disconnect),
        )
        .route("/images/{*rest}", any(images::by_name))
        .route(
            "/build",
            post(images::build).layer(DefaultBodyLimit::disable()),
        );
    unsupported::add_routes(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn(refuse_browsers))
        .layer(axum::middleware::from_fn(common_headers))
        .with_state(daemon)
}

/// The whole API as a service: version prefixes stripped, then routed.
pub fn router(
    daemon: AppState,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let inner = routes(daemon);
    tower::util::MapRequest::new(inner, |mut req: Request| {
        if let Some(uri) = strip_version(req.uri()) {
            *req.uri_mut() = uri;
        }
        req
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_are_stripped() {
        let cases = [
            (
                "/v1.44/containers/json?all=1",
                Some("/containers/json?all=1"),
            ),
            ("/v1.24/_ping", Some("/_ping")),
            ("/v1.99/version", Some("/version")),
            ("/containers/json", None),
            ("/v1/containers/json", None),
            ("/vx.y/containers/json", None),
            ("/volumes", None),
        ];
        for (input, want) in cases {
            let got = strip_version(&input.parse().unwrap()).map(|u| u.to_string());
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }

    #[test]
    fn malformed_json_is_a_400_in_api_format() {
        let e = parse_json::<berth_api::ContainerCreateRequest>(b"{nope").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse_json::<berth_api::ContainerCreateRequest>(br#"{"Env": 5}"#).unwrap_err();
        assert_eq!(e.status, 400);
    }
}
