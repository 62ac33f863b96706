//! Clear answers for the parts of the Docker Engine API that Berth does not implement, so
//! the docker CLI prints a useful error instead of `page not found` (or a broken pipe).
//!
//! Like Podman: swarm endpoints answer **503** (`Berth does not support swarm: <path>`), so
//! clients can tell "no swarm here" apart from a missing object; plugin and distribution
//! endpoints answer **404** (the `docker inspect X` fallback ends in `GET /plugins/X/json` and
//! only treats 404 as "try the next kind"); the other features answer **501**.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};

/// Path prefixes of Docker's swarm-mode API.
pub const SWARM_PREFIXES: [&str; 6] = [
    "/swarm",
    "/services",
    "/nodes",
    "/tasks",
    "/secrets",
    "/configs",
];

/// True when `path` is `prefix` itself or lies under it (`/swarm/init`, not `/swarmx`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The error for an unsupported `method path` (the path without its `/v1.NN` prefix), or
/// `None` if the path is not one of the known unsupported endpoints.
pub fn answer(method: &Method, path: &str) -> Option<ApiError> {
    if SWARM_PREFIXES.iter().any(|p| under(path, p)) {
        return Some(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Berth does not support swarm: {path}"),
        ));
    }
    let not_found = |what: &str| {
        Some(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{what} ({method} {path}) is not supported by Berth"),
        ))
    };
    if under(path, "/plugins") {
        return not_found("the plugin API");
    }
    if under(path, "/distribution") {
        return not_found("the distribution API");
    }
    let not_implemented = |what: &str, hint: &str| {
        Some(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("{what} is not supported by Berth{hint}"),
        ))
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["containers", "prune"] if method == Method::POST => {
            not_implemented("container prune", ": remove containers with docker rm")
        }
        ["containers", _, "exec"] | ["exec", ..] => not_implemented(
            "exec",
            ": a Wasm container runs a single guest and has no shell or second process",
        ),
        ["containers", _, "export"] => not_implemented("container export", ""),
        ["containers", _, "archive"] => {
            not_implemented("copying files to and from containers (docker cp)", "")
        }
        ["commit"] => not_implemented("commit", ": build images with docker build"),
        ["events"] => not_implemented("the event stream (docker events)", ""),
        ["system", "df"] => not_implemented("disk usage (docker system df)", ""),
        ["images", "prune"] if method == Method::POST => {
            not_implemented("image prune", ": remove images with docker rmi")
        }
        ["build", "prune"] => not_implemented("build cache prune", ""),
        _ => None,
    }
}

/// Handler for every unsupported route: reads (and drops) the request body first, so a
/// client still writing it does not see a broken pipe, then answers with [`answer`].
pub async fn unsupported(req: Request) -> ApiError {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // A bounded read: the router's body limit applies; the content does not matter.
    let _ = axum::body::to_bytes(req.into_body(), crate::MAX_JSON_BODY).await;
    answer(&method, &path).unwrap_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{path} is not supported by Berth"),
        )
    })
}

/// `DELETE /containers/prune` removes a container named `prune`; only `POST` is the prune.
async fn remove_container_named_prune(
    state: State<AppState>,
    query: RawQuery,
) -> Result<StatusCode, ApiError> {
    crate::containers::remove(state, Path("prune".to_string()), query).await
}

/// Any other method on `/images/prune` is about an image named `prune` (`docker rmi prune`).
async fn image_named_prune(
    state: State<AppState>,
    query: RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    crate::images::by_name(state, Path("prune".to_string()), query, method, headers)
        .await
        .into_response()
}

/// Adds the unsupported endpoints to `router`.
pub fn add_routes(mut router: Router<AppState>) -> Router<AppState> {
    for prefix in SWARM_PREFIXES {
        router = router
            .route(prefix, any(unsupported))
            .route(&format!("{prefix}/{{*rest}}"), any(unsupported));
    }
    router
        .route("/plugins", any(unsupported))
        .route("/plugins/{*rest}", any(unsupported))
        .route("/distribution/{*rest}", any(unsupported))
        .route("/containers/{id}/exec", any(unsupported))
        .route("/exec/{*rest}", any(unsupported))
        .route("/containers/{id}/export", any(unsupported))
        .route("/containers/{id}/archive", any(unsupported))
        .route(
            "/containers/prune",
            post(unsupported).delete(remove_container_named_prune),
        )
        .route(
            "/images/prune",
            post(unsupported).fallback(image_named_prune),
        )
        .route("/build/prune", any(unsupported))
        .route("/commit", any(unsupported))
        .route("/events", any(unsupported))
        .route("/system/df", any(unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[test]
    fn classification() {
        let swarm = [
            "/swarm",
            "/swarm/init",
            "/services",
            "/services/create",
            "/nodes/abc",
            "/tasks",
            "/secrets/x",
            "/configs",
        ];
        for path in swarm {
            let e = answer(&Method::GET, path).unwrap();
            assert_eq!(e.status, 503, "{path}");
            assert_eq!(e.message, format!("Berth does not support swarm: {path}"));
        }
        for path in ["/plugins", "/plugins/x/json", "/distribution/alpine/json"] {
            let e = answer(&Method::GET, path).unwrap();
            assert_eq!(e.status, 404, "{path}");
            assert!(e.message.ends_with("is not supported by Berth"), "{path}");
        }
        let not_implemented = [
            (Method::POST, "/containers/x/exec"),
            (Method::POST, "/exec/abc/start"),
            (Method::GET, "/exec/abc/json"),
            (Method::GET, "/containers/x/export"),
            (Method::HEAD, "/containers/x/archive"),
            (Method::PUT, "/containers/x/archive"),
            (Method::POST, "/commit"),
            (Method::GET, "/events"),
            (Method::GET, "/system/df"),
            (Method::POST, "/containers/prune"),
            (Method::POST, "/images/prune"),
            (Method::POST, "/build/prune"),
        ];
        for (method, path) in not_implemented {
            let e = answer(&method, path).unwrap();
            assert_eq!(e.status, 501, "{method} {path}");
            assert!(e.message.contains("is not supported by Berth"), "{path}");
        }
        // Look-alikes and real routes are not claimed.
        for (method, path) in [
            (Method::GET, "/swarmx"),
            (Method::GET, "/pluginsx"),
            (Method::DELETE, "/containers/prune"),
            (Method::DELETE, "/images/prune"),
            (Method::GET, "/containers/x/json"),
            (Method::GET, "/system/info"),
        ] {
            assert!(answer(&method, path).is_none(), "{method} {path}");
        }
    }

    /// The whole router, with a real (empty) daemon.
    fn app() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let daemon = berth_daemon::Daemon::open(berth_daemon::DaemonConfig {
            data_root: dir.path().join("root"),
            max_instances: 4,
            insecure_registries: Vec::new(),
        })
        .unwrap();
        (dir, daemon)
    }

    async fn call(d: &AppState, method: Method, uri: &str, body: &str) -> (u16, String, String) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = crate::router(d.clone()).oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn message(body: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["message"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn router_answers_unsupported_endpoints() {
        let (_dir, d) = app();
        let (status, ctype, body) = call(&d, Method::POST, "/v1.44/swarm/init", "{}").await;
        assert_eq!((status, ctype.as_str()), (503, "application/json"));
        assert_eq!(message(&body), "Berth does not support swarm: /swarm/init");
        let (status, _, body) = call(&d, Method::GET, "/services", "").await;
        assert_eq!(status, 503);
        assert_eq!(message(&body), "Berth does not support swarm: /services");

        // The `docker inspect` fallback: 404 so the CLI reports "No such object".
        let (status, ctype, body) = call(&d, Method::GET, "/v1.44/plugins/x/json", "").await;
        assert_eq!((status, ctype.as_str()), (404, "application/json"));
        assert!(
            message(&body).contains("is not supported by Berth"),
            "{body}"
        );

        for (method, uri) in [
            (Method::POST, "/v1.44/containers/abc/exec"),
            (Method::POST, "/v1.44/exec/abc/start"),
            (Method::GET, "/v1.44/events"),
            (Method::GET, "/v1.44/system/df"),
            (Method::GET, "/v1.44/containers/abc/export"),
            (Method::GET, "/v1.44/containers/abc/archive?path=/x"),
            (Method::POST, "/v1.44/commit?container=abc"),
            (Method::POST, "/v1.44/containers/prune"),
            (Method::POST, "/v1.44/images/prune"),
            (Method::POST, "/v1.44/build/prune"),
        ] {
            let (status, ctype, body) = call(&d, method.clone(), uri, "").await;
            assert_eq!(status, 501, "{method} {uri}: {body}");
            assert_eq!(ctype, "application/json", "{uri}");
            assert!(
                message(&body).contains("is not supported by Berth"),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn prune_paths_still_reach_objects_named_prune() {
        let (_dir, d) = app();
        let (status, _, body) = call(&d, Method::DELETE, "/v1.44/containers/prune", "").await;
        assert_eq!(status, 404, "{body}");
        assert!(message(&body).contains("prune"), "{body}");
        let (status, _, body) = call(&d, Method::DELETE, "/v1.44/images/prune", "").await;
        assert_eq!(status, 404, "{body}");
        let (status, _, _) = call(&d, Method::GET, "/v1.44/images/prune/json", "").await;
        assert_eq!(status, 404);
        // Real routes are untouched.
        let (status, _, body) = call(&d, Method::GET, "/v1.44/containers/json", "").await;
        assert_eq!((status, body.as_str()), (200, "[]"));
    }
}
