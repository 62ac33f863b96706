//! `/volumes` and `/networks`.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, json, parse_json};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

fn filter_bool(values: Option<&Vec<String>>, key: &str) -> ApiResult<Option<bool>> {
    match values.and_then(|v| v.last()).map(String::as_str) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid filter '{key}={other}'"
        ))),
    }
}

pub async fn volume_list(State(d): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::parse(q.as_deref()).filters()?;
    let dangling = filter_bool(filters.get("dangling"), "dangling")?;
    let mut list = d.volume_list(dangling)?;
    if let Some(names) = filters.get("name") {
        list.volumes
            .retain(|v| names.iter().any(|n| v.name.contains(n.as_str())));
    }
    Ok(json(&list))
}

pub async fn volume_create(State(d): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: berth_api::VolumeCreateRequest = if body.is_empty() {
        Default::default()
    } else {
        parse_json(&body)?
    };
    let v = d.volume_create(req).await?;
    let mut resp = json(&v);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

pub async fn volume_inspect(
    State(d): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(json(&d.volume_inspect(&name)?))
}

pub async fn volume_remove(
    State(d): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let p = Params::parse(q.as_deref());
    d.volume_remove(&name, p.bool("force"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn volume_prune(State(d): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::parse(q.as_deref()).filters()?;
    let all = filter_bool(filters.get("all"), "all")?.unwrap_or(false);
    Ok(json(&d.volume_prune(all)?))
}

pub async fn network_list(State(d): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let filters = Params::parse(q.as_deref()).filters()?;
    let mut list = d.network_list();
    if let Some(names) = filters.get("name") {
        list.retain(|n| names.iter().any(|x| n.name.contains(x.as_str())));
    }
    if let Some(ids) = filters.get("id") {
        list.retain(|n| ids.iter().any(|x| n.id.starts_with(x.as_str())));
    }
    Ok(json(&list))
}

pub async fn network_create(State(d): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: berth_api::NetworkCreateRequest = parse_json(&body)?;
    let created = d.network_create(req)?;
    let mut resp = json(&created);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

pub async fn network_inspect(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(json(&d.network_inspect(&id)?))
}

pub async fn network_remove(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    d.network_remove(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn network_prune(State(d): State<AppState>) -> ApiResult<Response> {
    let deleted = d.network_prune()?;
    Ok(json(&serde_json::json!({ "NetworksDeleted": deleted })))
}

pub async fn network_connect(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: berth_api::NetworkConnectRequest = parse_json(&body)?;
    d.network_connect(&id, &req.container, true)?;
    Ok(StatusCode::OK.into_response())
}

pub async fn network_disconnect(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: berth_api::NetworkConnectRequest = parse_json(&body)?;
    d.network_connect(&id, &req.container, false)?;
    Ok(StatusCode::OK.into_response())
}
