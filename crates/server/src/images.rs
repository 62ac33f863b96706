//! `/images/...` and `/build` routes.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, json};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::JsonMessage;
use berth_daemon::BuildRequest;
use berth_daemon::transfer::PushFormat;
use berth_registry::Credentials;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::Write;

/// Largest build context accepted, in bytes.
pub const MAX_BUILD_CONTEXT: u64 = 1024 * 1024 * 1024;

pub async fn list(State(d): State<AppState>) -> Response {
    json(&d.images())
}

/// Image names contain `/` and `:` unescaped, so one catch-all route serves
/// `GET {name}/json`, `POST {name}/tag` and `DELETE {name}`.
pub async fn by_name(
    State(d): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    if method == Method::POST
        && let Some(name) = rest.strip_suffix("/push")
    {
        return push(d, name.to_string(), p, &headers).await;
    }
    if method == Method::GET
        && let Some(name) = rest.strip_suffix("/get")
    {
        return save(d, vec![name.to_string()]).await;
    }
    if method == Method::DELETE {
        let items = d.image_remove(&rest, p.bool("force")).await?;
        return Ok(json(&items));
    }
    if method == Method::GET
        && let Some(name) = rest.strip_suffix("/json")
    {
        return Ok(json(&d.image_inspect(name)?));
    }
    if method == Method::POST
        && let Some(name) = rest.strip_suffix("/tag")
    {
        let repo = p
            .get("repo")
            .ok_or_else(|| ApiError::bad_request("repository name is required"))?;
        d.image_tag(name, repo, p.get("tag").unwrap_or_default())
            .await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {method} /images/{rest}"),
    ))
}

/// `POST /build`: the body is a tar of the build context. It is spooled to a temp file
/// (bounded), then the build streams Docker's JSON progress lines; errors after the `200`
/// travel in-band.
pub async fn build(
    State(d): State<AppState>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let build_args: BTreeMap<String, String> = match p.get("buildargs") {
        None => BTreeMap::new(),
        Some(s) => {
            let raw: BTreeMap<String, Option<String>> = serde_json::from_str(s)
                .map_err(|e| ApiError::bad_request(format!("invalid buildargs: {e}")))?;
            raw.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        }
    };
    let quiet = p.bool("q");
    let request = BuildRequest {
        dockerfile: p.get("dockerfile").unwrap_or("Dockerfile").to_string(),
        build_args,
        tags: p.all("t"),
        no_cache: p.bool("nocache"),
    };
    let spool = spool_body(&d, req, "the build context").await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<JsonMessage>();
    let daemon = d.clone();
    tokio::spawn(async move {
        let path = spool.path().to_path_buf();
        let result = daemon.build(path, request, tx.clone()).await;
        drop(spool);
        if let Err(e) = result {
            let _ = tx.send(JsonMessage::error(e.to_string()));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).filter_map(move |m| {
        let keep = !quiet || m.stream.is_none();
        async move { keep.then(|| Ok::<_, std::io::Error>(Bytes::from(m.to_line()))) }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Registry credentials from Docker's `X-Registry-Auth` header: base64url JSON
/// (`{"username","password","serveraddress"}` or `{"identitytoken"}`); `e30=` or absent means
/// anonymous. Credentials are never logged.
pub fn registry_auth(headers: &HeaderMap) -> ApiResult<Credentials> {
    let Some(raw) = headers.get("x-registry-auth") else {
        return Ok(Credentials::Anonymous);
    };
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Auth is not valid text"))?
        .trim();
    if raw.is_empty() {
        return Ok(Credentials::Anonymous);
    }
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
        })
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
        .map_err(|_| ApiError::bad_request("X-Registry-Auth is not base64"))?;
    let auth: AuthConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth is not valid JSON: {e}")))?;
    Ok(auth.credentials())
}

/// Docker's `AuthConfig`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
}

impl AuthConfig {
    fn credentials(self) -> Credentials {
        if !self.identitytoken.is_empty() {
            Credentials::IdentityToken(self.identitytoken)
        } else if !self.username.is_empty() {
            Credentials::Basic {
                username: self.username,
                password: self.password,
            }
        } else {
            Credentials::Anonymous
        }
    }
}

/// A JSON-lines response fed by a channel: headers go out at once, errors after them travel
/// in-band.
fn json_lines(mut rx: tokio::sync::mpsc::UnboundedReceiver<JsonMessage>) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|m| Ok::<_, std::io::Error>(Bytes::from(m.to_line())));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Runs `job` in the background, sending its error in-band when it fails.
fn spawn_with_stream<F>(
    job: impl FnOnce(tokio::sync::mpsc::UnboundedSender<JsonMessage>) -> F,
) -> Response
where
    F: std::future::Future<Output = berth_daemon::Result<()>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<JsonMessage>();
    let fut = job(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            let _ = tx.send(JsonMessage::error(e.to_string()));
        }
    });
    json_lines(rx)
}

/// `POST /images/create?fromImage=&tag=`: pull.
pub async fn create(
    State(d): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    if p.get("fromSrc").is_some() {
        return Err(ApiError::bad_request(
            "importing a root filesystem (fromSrc) is not supported: Berth images need a Wasm entrypoint; use berth build",
        ));
    }
    let from = p
        .get("fromImage")
        .ok_or_else(|| ApiError::bad_request("fromImage is required"))?
        .to_string();
    let tag = p.get("tag").map(str::to_string);
    // A malformed reference is a 400 before the stream starts (as dockerd), not an in-band
    // error after a 200.
    let input = match tag.as_deref() {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.clone(),
    };
    berth_image::reference::Reference::parse(&input)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format: {e}")))?;
    let creds = registry_auth(&headers)?;
    Ok(spawn_with_stream(move |tx| async move {
        d.pull(&from, tag.as_deref(), creds, tx).await
    }))
}

/// `POST /images/{name}/push?tag=` (Berth also takes `format=wasm-artifact`).
async fn push(d: AppState, name: String, p: Params, headers: &HeaderMap) -> ApiResult<Response> {
    let format = PushFormat::parse(p.get("format"))?;
    let creds = registry_auth(headers)?;
    let tag = p.get("tag").map(str::to_string);
    Ok(spawn_with_stream(move |tx| async move {
        d.push(&name, tag.as_deref(), format, creds, tx).await
    }))
}

/// `POST /auth`.
pub async fn auth(State(d): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let auth: AuthConfig = crate::parse_json(&body)?;
    if auth.username.is_empty() {
        return Err(ApiError::bad_request("username is required"));
    }
    d.login(&auth.serveraddress, &auth.username, &auth.password)
        .await?;
    Ok(json(&serde_json::json!({
        "Status": "Login Succeeded",
        "IdentityToken": "",
    })))
}

/// `GET /images/get?names=...` and `GET /images/{name}/get`: an OCI image-layout tarball.
async fn save(d: AppState, names: Vec<String>) -> ApiResult<Response> {
    let file = d.save(names).await?;
    let reader = tokio::fs::File::open(file.path()).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading archive: {e}"),
        )
    })?;
    // Keep the temp file alive until the body has been sent.
    let stream = tokio_util_stream(reader).map(move |chunk| {
        let _keep = &file;
        chunk
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(resp)
}

pub async fn get_many(State(d): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    save(d, Params::parse(q.as_deref()).all("names")).await
}

/// Reads a file as a stream of chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

/// `POST /images/load`: the body is an image archive (OCI layout or `docker save`).
pub async fn load(State(d): State<AppState>, req: Request) -> ApiResult<Response> {
    let spool = spool_body(&d, req, "the image archive").await?;
    Ok(spawn_with_stream(move |tx| async move {
        let path = spool.path().to_path_buf();
        let r = d.load(path, tx).await;
        drop(spool);
        r
    }))
}

/// Writes a request body to a temp file under the data root, up to [`MAX_BUILD_CONTEXT`],
/// one chunk at a time: memory use does not grow with the body. The file is removed on every
/// error (the `NamedTempFile` is dropped). `what` names the body in errors.
async fn spool_body(d: &AppState, req: Request, what: &str) -> ApiResult<tempfile::NamedTempFile> {
    let internal = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing {what} to {}: {e}", d.data_root().display()),
        )
    };
    // A declared length over the limit is refused before anything is written.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BUILD_CONTEXT) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BUILD_CONTEXT} bytes"),
        ));
    }
    let spool = tempfile::NamedTempFile::new_in(d.data_root()).map_err(internal)?;
    let mut file = spool.reopen().map_err(internal)?;
    let mut body = req.into_body().into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_BUILD_CONTEXT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_BUILD_CONTEXT} bytes"),
            ));
        }
        file.write_all(&chunk).map_err(internal)?;
    }
    Ok(spool)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn registry_auth_header_decodes_dockers_forms() {
        use base64::Engine;
        let mut h = HeaderMap::new();
        assert!(matches!(registry_auth(&h).unwrap(), Credentials::Anonymous));
        h.insert("x-registry-auth", HeaderValue::from_static("e30="));
        assert!(matches!(registry_auth(&h).unwrap(), Credentials::Anonymous));
        let json = r#"{"username":"alice","password":"s3cret","serveraddress":"localhost:5000"}"#;
        let enc = base64::engine::general_purpose::URL_SAFE.encode(json);
        h.insert("x-registry-auth", HeaderValue::from_str(&enc).unwrap());
        match registry_auth(&h).unwrap() {
            Credentials::Basic { username, password } => {
                assert_eq!((username.as_str(), password.as_str()), ("alice", "s3cret"))
            }
            _ => panic!("expected basic credentials"),
        }
        h.insert("x-registry-auth", HeaderValue::from_static("!!!"));
        assert!(registry_auth(&h).is_err());
    }
}
