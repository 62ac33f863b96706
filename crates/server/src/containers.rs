//! `/containers/...` routes.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, json, parse_json};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_daemon::{LogsOptions, WaitCondition};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

pub async fn create(
    State(d): State<AppState>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let req: berth_api::ContainerCreateRequest = parse_json(&body)?;
    let (id, warnings) = d.create(req, p.get("name").map(str::to_string)).await?;
    Ok((
        StatusCode::CREATED,
        json(&berth_api::ContainerCreateResponse {
            id: id.to_string(),
            warnings,
        }),
    )
        .into_response())
}

pub async fn list(State(d): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    // Malformed filters are a 400 rather than silently ignored.
    p.filters()?;
    Ok(json(&d.list(p.bool("all"))))
}

pub async fn inspect(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(json(&d.inspect(&id)?))
}

pub async fn start(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.start(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stop(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref());
    p.int("t")?;
    d.stop(&id, p.get("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kill(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref());
    d.kill(&id, p.get("signal")).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref());
    d.remove_with_volumes(&id, p.bool("force"), p.bool("v"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Headers go out at once; the body follows when the condition is met (the docker CLI
/// does not send `start` until it has the headers).
pub async fn wait(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let cond = WaitCondition::parse(p.get("condition").unwrap_or_default())?;
    let fut = d.wait(&id, cond)?;
    let body = futures_util::stream::once(async move {
        let resp = fut.await;
        let mut line = serde_json::to_vec(&resp).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

pub async fn logs(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let tail = match p.get("tail") {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail value: {n:?}")))?,
        ),
    };
    let (stdout, stderr) = (p.bool("stdout"), p.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let opts = LogsOptions {
        follow: p.bool("follow"),
        stdout,
        stderr,
        timestamps: p.bool("timestamps"),
        tail,
        since: p
            .get("since")
            .and_then(|s| s.split('.').next()?.parse().ok()),
    };
    let stream = d.logs(&id, opts)?;
    let mut resp = Response::new(Body::from_stream(stream.map(Ok::<_, std::io::Error>)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MULTIPLEXED));
    Ok(resp)
}

/// `POST /containers/{id}/attach`: a `101` upgrade to a raw stream of multiplexed frames
/// (as the docker CLI expects), or a plain streamed `200` when the client did not ask to
/// upgrade. The client's half of the connection feeds the guest's stdin when `stdin=1`; its
/// half-close is not a disconnect.
pub async fn attach(
    State(d): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let (stdout, stderr, want_stdin) = (p.bool("stdout"), p.bool("stderr"), p.bool("stdin"));
    let (mut output, container) = d.attach(&id, stdout, stderr)?;
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !upgrade {
        let mut resp = Response::new(Body::from_stream(output.map(Ok::<_, std::io::Error>)));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(MULTIPLEXED));
        return Ok(resp);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let stdin = if want_stdin {
        container.take_stdin()
    } else {
        None
    };
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (mut rd, mut wr) = tokio::io::split(io);
        let input = async move {
            let Some(mut stdin) = stdin else {
                return;
            };
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stdin.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            // Dropping the writer closes the guest's stdin (EOF).
            let _ = stdin.shutdown().await;
        };
        let out = async move {
            while let Some(chunk) = output.next().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
                let _ = wr.flush().await;
            }
            let _ = wr.shutdown().await;
        };
        // Output decides when the connection ends; input may finish (half-close) earlier.
        tokio::pin!(out);
        tokio::select! {
            _ = &mut out => {}
            _ = async { input.await; std::future::pending::<()>().await } => {}
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MULTIPLEXED));
    Ok(resp)
}

/// `POST /containers/{id}/resize`: guests have no terminal; accepted and ignored.
pub async fn resize(State(d): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    d.container(&id)?;
    Ok(StatusCode::OK)
}
