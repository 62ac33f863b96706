//! The router called directly (no socket): limits, error format, version prefixes.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn daemon() -> (tempfile::TempDir, berth_server::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let d = berth_daemon::Daemon::open(berth_daemon::DaemonConfig {
        data_root: dir.path().to_path_buf(),
        max_instances: 10,
        insecure_registries: vec![],
    })
    .unwrap();
    (dir, d)
}

async fn call(d: &berth_server::AppState, req: Request<Body>) -> (StatusCode, String, String) {
    let resp = berth_server::router(d.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn oversized_json_bodies_are_refused() {
    let (_dir, d) = daemon();
    let huge = format!(
        r#"{{"Image":"x","Env":["{}"]}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, _, _) = call(&d, post("/v1.44/containers/create", huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_and_mistyped_json_get_a_json_400() {
    let (_dir, d) = daemon();
    for body in [r#"{"Image": "#, r#"{"Image": 5}"#, r#"[]"#, ""] {
        let (status, ctype, text) = call(&d, post("/containers/create", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {text}");
        assert_eq!(ctype, "application/json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["message"].is_string(), "{text}");
    }
}

#[tokio::test]
async fn hostile_names_and_unknown_ids_are_4xx() {
    let (_dir, d) = daemon();
    for name in ["../../etc", "a/b", "x%00y", &"n".repeat(300)] {
        let uri = format!("/containers/create?name={name}");
        let (status, _, text) = call(&d, post(&uri, r#"{"Image":"hello:1"}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {text}");
    }
    for path in [
        "/containers/nosuch/json",
        "/containers/..%2F..%2Fetc/json",
        "/images/nosuch:1/json",
        "/images/..%2F..%2Fetc/json",
    ] {
        let (status, ctype, text) = call(&d, Request::get(path).body(Body::empty()).unwrap()).await;
        assert!(status.is_client_error(), "{path}: {status} {text}");
        assert_eq!(ctype, "application/json", "{path}");
    }
    let (status, _, text) = call(
        &d,
        post("/containers/create", r#"{"Image":"../../etc/passwd"}"#),
    )
    .await;
    assert!(status.is_client_error(), "{status} {text}");
}

#[tokio::test]
async fn ping_answers_on_any_version_prefix_with_api_version() {
    let (_dir, d) = daemon();
    for uri in ["/_ping", "/v1.24/_ping", "/v1.99/_ping"] {
        let resp = berth_server::router(d.clone())
            .oneshot(Request::head(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        assert_eq!(resp.headers()["api-version"], "1.44");
    }
    let (status, _, body) = call(&d, Request::get("/version").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ApiVersion"], "1.44");
}
