//! `/images/...` and `/build` routes.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, json};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::JsonMessage;
use berth_daemon::BuildRequest;
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
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
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
    let spool = tempfile::NamedTempFile::new_in(d.data_root()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("spooling build context: {e}"),
        )
    })?;
    let mut file = spool.reopen().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("spooling build context: {e}"),
        )
    })?;
    let mut body = req.into_body().into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading build context: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_BUILD_CONTEXT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("build context is larger than {MAX_BUILD_CONTEXT} bytes"),
            ));
        }
        file.write_all(&chunk).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("spooling build context: {e}"),
            )
        })?;
    }
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
