//! The one place where errors become HTTP statuses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_daemon::{DaemonError, ErrorKind};

/// An error on its way to the client as `{"message": ...}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The status for each class of daemon error.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<DaemonError> for ApiError {
    fn from(e: DaemonError) -> Self {
        let status = status_of(e.kind());
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        Self::new(status, e.to_string())
    }
}

/// Docker's error body, with `Content-Type` exactly `application/json` (the docker CLI
/// compares the string); `304` has no body.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    if status == StatusCode::NOT_MODIFIED {
        return status.into_response();
    }
    let body = serde_json::to_vec(&berth_api::ErrorResponse {
        message: message.to_string(),
    })
    .unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, &self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_status() {
        let table = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::NotModified, 304),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Internal, 500),
        ];
        for (kind, code) in table {
            assert_eq!(status_of(kind).as_u16(), code, "{kind:?}");
        }
    }

    #[test]
    fn error_bodies_are_exact_json() {
        let resp = ApiError::bad_request("nope").into_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }
}
