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

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Asserts a `4xx` answer with Docker's `{"message": ...}` JSON body.
#[track_caller]
fn assert_json_4xx(what: &str, status: StatusCode, ctype: &str, text: &str) {
    assert!(status.is_client_error(), "{what}: {status} {text}");
    assert_eq!(ctype, "application/json", "{what}: {text}");
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert!(v["message"].is_string(), "{what}: {text}");
}

#[tokio::test]
async fn browser_requests_are_refused_on_every_route() {
    let (_dir, d) = daemon();
    let routes = [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/v1.44/version"),
        ("GET", "/containers/json"),
        ("POST", "/containers/create"),
        ("POST", "/containers/x/start"),
        ("DELETE", "/containers/x"),
        ("POST", "/build"),
        ("POST", "/images/load"),
        ("POST", "/images/create?fromImage=hello"),
        ("GET", "/images/hello/json"),
        ("POST", "/volumes/create"),
        ("GET", "/swarm"),
        ("GET", "/no/such/route"),
    ];
    let headers = [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "no-cors"),
    ];
    for (method, uri) in routes {
        for (name, value) in headers {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .header(name, value)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"Image":"hello:1","Name":"v"}"#))
                .unwrap();
            let resp = berth_server::router(d.clone()).oneshot(req).await.unwrap();
            let status = resp.status();
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri} {name}");
            assert_eq!(resp.headers()["api-version"], "1.44");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            if method != "HEAD" {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(v["message"].as_str().unwrap().contains("browser"), "{v}");
            }
        }
    }
    // Nothing was created by the refused requests.
    let (status, _, text) = call(&d, get("/containers/json?all=1")).await;
    assert_eq!((status, text.trim()), (StatusCode::OK, "[]"));
    let (status, _, text) = call(&d, get("/volumes")).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["Volumes"].as_array().is_none_or(|a| a.is_empty()),
        "{text}"
    );
    // Without the headers the same request is served.
    let (status, _, _) = call(&d, get("/_ping")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_json_route_limits_its_body() {
    let (_dir, d) = daemon();
    let big = format!(r#"{{"Name":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    for uri in [
        "/volumes/create",
        "/networks/create",
        "/networks/x/connect",
        "/networks/x/disconnect",
        "/auth",
        "/containers/create",
    ] {
        let (status, _, text) = call(&d, post(uri, big.clone())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {text}");
    }
    // Unknown and unsupported routes read at most the limit, then answer in JSON.
    for uri in ["/no/such/route", "/containers/x/exec", "/swarm/init"] {
        let (status, ctype, text) = call(&d, post(uri, big.clone())).await;
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{uri}: {status}"
        );
        assert_eq!(ctype, "application/json", "{uri}: {text}");
    }
}

#[tokio::test]
async fn declared_oversized_streams_are_refused_before_spooling() {
    let (dir, d) = daemon();
    for uri in ["/build", "/images/load"] {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-tar")
            .header(header::CONTENT_LENGTH, (2u64 << 30).to_string())
            .body(Body::empty())
            .unwrap();
        let (status, ctype, text) = call(&d, req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {text}");
        assert_eq!(ctype, "application/json");
    }
    // No spool file was left behind in the data root.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file() && e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn garbage_archives_and_contexts_leave_no_image() {
    let (_dir, d) = daemon();
    for uri in ["/build", "/images/load"] {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-tar")
            .body(Body::from(vec![0x5a_u8; 100_000]))
            .unwrap();
        let (status, _, text) = call(&d, req).await;
        // Streamed endpoints report errors in-band, as Docker does.
        if status == StatusCode::OK {
            assert!(text.contains("\"error"), "{uri}: {text}");
        } else {
            assert!(status.is_client_error(), "{uri}: {status} {text}");
        }
    }
    let (_, _, text) = call(&d, get("/images/json")).await;
    assert_eq!(text.trim(), "[]");
}

#[tokio::test]
async fn deep_and_mistyped_json_is_a_400_everywhere() {
    let (_dir, d) = daemon();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(r#"{{"Image":"x","Labels":{}}}"#, "{\"a\":".repeat(50_000));
    let cases: Vec<(&str, String)> = vec![
        ("/containers/create", deep.clone()),
        ("/containers/create", deep_obj),
        (
            "/containers/create",
            r#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#.into(),
        ),
        (
            "/containers/create",
            r#"{"Image":"x","Cmd":{"a":1}}"#.into(),
        ),
        (
            "/containers/create",
            r#"{"Image":"x","ExposedPorts":[1]}"#.into(),
        ),
        ("/containers/create", "\u{0}".into()),
        ("/volumes/create", deep.clone()),
        ("/volumes/create", r#"{"Name":5}"#.into()),
        ("/volumes/create", r#"{"Name":"v","Labels":[1]}"#.into()),
        ("/networks/create", r#"{"Name":["n"]}"#.into()),
        ("/networks/create", "not json".into()),
        ("/networks/create", "".into()),
        ("/networks/n/connect", r#"{"Container":5}"#.into()),
        ("/auth", r#"{"username":1}"#.into()),
        ("/auth", deep),
    ];
    for (uri, body) in cases {
        let (status, ctype, text) = call(&d, post(uri, body.clone())).await;
        let what = format!("{uri} {:.40}", body);
        assert_json_4xx(&what, status, &ctype, &text);
    }
}

#[tokio::test]
async fn hostile_object_names_are_a_400() {
    let (_dir, d) = daemon();
    let long = "n".repeat(300);
    for name in [
        "../x",
        "..",
        "a/b",
        "/abs",
        "x\u{0}y",
        ".hidden",
        "",
        long.as_str(),
    ] {
        let body = serde_json::json!({ "Name": name }).to_string();
        for uri in ["/volumes/create", "/networks/create"] {
            let (status, ctype, text) = call(&d, post(uri, body.clone())).await;
            // An empty volume name means "generate one", as in Docker.
            if name.is_empty() && uri == "/volumes/create" {
                assert_eq!(status, StatusCode::CREATED, "{text}");
                continue;
            }
            assert_json_4xx(&format!("{uri} {name:?}"), status, &ctype, &text);
        }
    }
    for path in [
        "/volumes/..%2F..%2Fetc",
        "/volumes/x%00y",
        "/networks/..%2F..%2Fetc",
        "/networks/x%00y",
    ] {
        let (status, ctype, text) = call(&d, get(path)).await;
        assert_json_4xx(path, status, &ctype, &text);
        let req = Request::delete(path).body(Body::empty()).unwrap();
        let (status, ctype, text) = call(&d, req).await;
        assert_json_4xx(path, status, &ctype, &text);
    }
}

#[tokio::test]
async fn hostile_references_are_a_400_before_any_stream() {
    let (_dir, d) = daemon();
    let long = format!("{}:1", "a".repeat(300));
    for image in [
        "../../etc",
        "a/../b",
        "UPPER/case",
        "x%00y",
        ":",
        "a:b:c",
        long.as_str(),
    ] {
        let uri = format!("/images/create?fromImage={image}");
        let (status, ctype, text) = call(&d, post(&uri, "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{image}: {text}");
        assert_eq!(ctype, "application/json", "{image}");
    }
    let (status, ctype, text) =
        call(&d, post("/images/create?fromImage=hello&tag=..%2F..", "")).await;
    assert_json_4xx("bad tag", status, &ctype, &text);
    for path in [
        "/images/x%00y/json",
        "/images/..%2F..%2Fetc%2Fpasswd/json",
        "/images/sha256:zz/json",
    ] {
        let (status, ctype, text) = call(&d, get(path)).await;
        assert_json_4xx(path, status, &ctype, &text);
    }
    for path in [
        "/images/nosuch:1/tag?repo=..%2F..%2Fx",
        "/images/nosuch:1/tag?repo=ok&tag=..",
    ] {
        let (status, ctype, text) = call(&d, post(path, "")).await;
        assert_json_4xx(path, status, &ctype, &text);
    }
    let req = Request::delete(format!("/images/{}", "a".repeat(5000)))
        .body(Body::empty())
        .unwrap();
    let (status, ctype, text) = call(&d, req).await;
    assert_json_4xx("long rmi", status, &ctype, &text);
}

#[tokio::test]
async fn unknown_ids_are_a_404_on_every_container_route() {
    let (_dir, d) = daemon();
    let long = "f".repeat(5000);
    for id in ["nosuch", "..%2F..", "x%00y", long.as_str()] {
        for (method, tail) in [
            ("GET", "/json"),
            ("POST", "/start"),
            ("POST", "/stop"),
            ("POST", "/kill"),
            ("POST", "/wait"),
            ("POST", "/attach?stream=1&stdout=1"),
            ("GET", "/logs?stdout=1"),
            ("POST", "/resize?h=1&w=1"),
            ("DELETE", ""),
        ] {
            let uri = format!("/containers/{id}{tail}");
            let req = Request::builder()
                .method(method)
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, ctype, text) = call(&d, req).await;
            assert_json_4xx(&format!("{method} {uri:.60}"), status, &ctype, &text);
        }
    }
}

#[tokio::test]
async fn mistyped_query_values_are_a_400() {
    let (_dir, d) = daemon();
    for (method, uri) in [
        ("GET", "/containers/json?filters=notjson"),
        ("GET", "/containers/json?filters=%7B%22name%22%3A5%7D"),
        ("GET", "/volumes?filters=%5B"),
        ("GET", "/networks?filters=x"),
        ("POST", "/build?buildargs=notjson"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, ctype, text) = call(&d, req).await;
        assert_json_4xx(uri, status, &ctype, &text);
    }
}
