//! [`RegistryError`] and the mapping of `oci-client` and `reqwest` failures onto it.

use berth_image::digest::Digest;
use berth_image::store::StoreError;
use oci_client::errors::{OciDistributionError, OciErrorCode};

/// Everything that can go wrong talking to a registry. Each variant names the registry host,
/// the reference or the digest involved, so that the daemon can print it as it is.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused the credentials given (or their absence): HTTP 401 or 403, a
    /// failed token exchange, or a `UNAUTHORIZED`/`DENIED` error code.
    #[error(
        "unauthorized: {registry} denied access: authentication is required, the credentials were rejected, or the repository does not exist"
    )]
    Unauthorized {
        /// The registry host (`host[:port]`).
        registry: String,
    },
    /// The manifest, tag, repository or blob does not exist (HTTP 404, `MANIFEST_UNKNOWN`, ...).
    #[error("manifest for {reference} not found: manifest unknown")]
    NotFound {
        /// The reference (or `repository@digest` for a blob) that was not found.
        reference: String,
    },
    /// The image has no Wasm variant: an index without a wasm/wasi entry, or a single image
    /// whose config `architecture` is not `wasm`/`wasm32`.
    #[error("{reference} is not a Wasm image: it has no wasm/wasi platform (found {})", .platforms.join(", "))]
    NotWasm {
        /// The reference pulled.
        reference: String,
        /// The `os/architecture[/variant]` platforms found instead.
        platforms: Vec<String>,
    },
    /// Content does not hash to the digest it was requested by.
    #[error("digest mismatch for {reference}: expected {expected}, the content hashes to {actual}")]
    DigestMismatch {
        /// The reference or blob being fetched.
        reference: String,
        /// The digest requested (from the reference or the parent descriptor).
        expected: Digest,
        /// The digest of what the registry sent.
        actual: Digest,
    },
    /// Content is not as long as its descriptor says. `actual` is a lower bound when the
    /// transfer was cut short as soon as too many bytes arrived.
    #[error(
        "size mismatch for {reference} ({digest}): the descriptor says {expected} bytes, the registry sent {actual}"
    )]
    SizeMismatch {
        /// The reference or blob being fetched.
        reference: String,
        /// The digest of the blob.
        digest: Digest,
        /// The size from the descriptor.
        expected: u64,
        /// The bytes received (at least this many).
        actual: u64,
    },
    /// A manifest or config larger than Berth accepts.
    #[error("{what} of {reference} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The reference being pulled.
        reference: String,
        /// `manifest`, `index` or `config`.
        what: String,
        /// Its size (at least this many bytes when the transfer was cut short).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The network failed: connection refused, TLS, timeout, connection dropped (after the
    /// retries, for blob and manifest downloads).
    #[error("cannot reach registry {registry}: {message}")]
    Transport {
        /// The registry host.
        registry: String,
        /// What failed, with its causes.
        message: String,
    },
    /// The registry answered something that breaks the distribution or image spec: an
    /// unexpected status, a malformed or ambiguous manifest, a Content-Type that contradicts
    /// the document, an unsupported schema.
    #[error("registry {registry}: {message}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// What was wrong.
        message: String,
    },
    /// A config media type Berth does not run (a Helm chart, a Spin 1.x app, ...).
    #[error(
        "{reference} is not a Wasm image Berth can run: unsupported {what} media type {media_type}"
    )]
    UnsupportedMediaType {
        /// The reference pulled.
        reference: String,
        /// `config` or `manifest`.
        what: String,
        /// The media type found.
        media_type: String,
    },
    /// The request itself is invalid (a malformed server name, a local manifest that cannot be
    /// pushed, a file that is not Wasm).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// A failure inside Berth (a background task panicked).
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// The local content store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// Whether the registry refused access (bad or missing credentials).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, RegistryError::Unauthorized { .. })
    }

    /// Whether the reference (manifest, tag, repository or blob) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}

/// Context used to turn a low-level failure into a [`RegistryError`].
#[derive(Debug, Clone)]
pub(crate) struct ErrCtx {
    /// The registry host as the user wrote it (`localhost:5000`, `docker.io`).
    pub registry: String,
    /// What was being fetched or pushed: a reference or `repo@digest`.
    pub reference: String,
}

impl ErrCtx {
    pub(crate) fn transport(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Transport {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    pub(crate) fn protocol(&self, message: impl Into<String>) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
        }
    }

    pub(crate) fn not_found(&self) -> RegistryError {
        RegistryError::NotFound {
            reference: self.reference.clone(),
        }
    }

    /// Maps an HTTP status that is not a success, with (a prefix of) the response body.
    pub(crate) fn status(&self, status: u16, what: &str, body: &[u8]) -> RegistryError {
        match status {
            401 | 403 => self.unauthorized(),
            404 => self.not_found(),
            _ => self.protocol(format!(
                "{what}: unexpected HTTP status {status}{}",
                body_excerpt(body)
            )),
        }
    }

    /// Maps an `oci-client` error.
    pub(crate) fn oci(&self, err: OciDistributionError) -> RegistryError {
        match err {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => self.unauthorized(),
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    self.unauthorized()
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    self.not_found()
                } else {
                    self.protocol(envelope.to_string())
                }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                self.status(code, "request failed", message.as_bytes())
            }
            OciDistributionError::RequestError(e) => self.reqwest(&e),
            OciDistributionError::IoError(e) => self.transport(error_chain(&e)),
            other => self.protocol(error_chain(&other)),
        }
    }

    /// Maps a `reqwest` error: an error status becomes Unauthorized / NotFound, anything
    /// else is a transport failure.
    pub(crate) fn reqwest(&self, e: &reqwest::Error) -> RegistryError {
        if e.is_redirect() {
            // A redirect loop, too many hops, or a hop refused to keep credentials home.
            return self.protocol(error_chain(e));
        }
        match e.status() {
            Some(s) if s.as_u16() == 401 || s.as_u16() == 403 => self.unauthorized(),
            Some(s) if s.as_u16() == 404 => self.not_found(),
            Some(s) => self.protocol(format!("unexpected HTTP status {s}")),
            None => self.transport(error_chain(e)),
        }
    }
}

/// Whether a `reqwest` failure is worth retrying.
pub(crate) fn reqwest_is_retryable(e: &reqwest::Error) -> bool {
    match e.status() {
        Some(s) => s.is_server_error() || s.as_u16() == 429,
        None if e.is_redirect() => false,
        None => e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode(),
    }
}

/// `error: cause: cause ...`, so that "error sending request" shows why.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// `: <first 200 characters of the body>` for error messages, or nothing.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!(": {}...", cut.escape_debug())
    } else {
        format!(": {}", cut.escape_debug())
    }
}

/// Maps a store error met while committing a downloaded blob: digest and size mismatches
/// become the registry's fault, naming what was fetched.
pub(crate) fn commit_error(reference: &str, err: StoreError) -> RegistryError {
    match err {
        StoreError::DigestMismatch { expected, actual } => RegistryError::DigestMismatch {
            reference: reference.to_string(),
            expected,
            actual,
        },
        StoreError::SizeMismatch {
            digest,
            expected,
            actual,
        } => RegistryError::SizeMismatch {
            reference: reference.to_string(),
            digest,
            expected,
            actual,
        },
        other => RegistryError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ErrCtx {
        ErrCtx {
            registry: "r.example:5000".into(),
            reference: "r.example:5000/app:1".into(),
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert!(ctx().status(401, "x", b"").is_unauthorized());
        assert!(ctx().status(403, "x", b"").is_unauthorized());
        assert!(ctx().status(404, "x", b"").is_not_found());
        let e = ctx().status(500, "GET manifest", b"boom");
        assert!(matches!(e, RegistryError::Protocol { .. }));
        assert!(e.to_string().contains("500"), "{e}");
        assert!(e.to_string().contains("boom"), "{e}");
    }

    #[test]
    fn oci_errors_map_to_kinds() {
        let e = ctx().oci(OciDistributionError::UnauthorizedError { url: "u".into() });
        assert!(e.is_unauthorized());
        let e = ctx().oci(OciDistributionError::ServerError {
            code: 401,
            url: "u".into(),
            message: String::new(),
        });
        assert!(e.is_unauthorized());
        let envelope: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"m"}]}"#)
                .unwrap();
        let e = ctx().oci(OciDistributionError::RegistryError {
            envelope,
            url: "u".into(),
        });
        assert!(e.is_not_found());
        let envelope: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"DENIED","message":"m"}]}"#).unwrap();
        let e = ctx().oci(OciDistributionError::RegistryError {
            envelope,
            url: "u".into(),
        });
        assert!(e.is_unauthorized());
    }

    #[test]
    fn not_wasm_message_lists_platforms() {
        let e = RegistryError::NotWasm {
            reference: "docker.io/library/hello:latest".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert_eq!(
            e.to_string(),
            "docker.io/library/hello:latest is not a Wasm image: it has no wasm/wasi platform (found linux/amd64, linux/arm64)"
        );
    }

    #[test]
    fn body_excerpt_is_bounded_and_escaped() {
        assert_eq!(body_excerpt(b"  "), "");
        assert_eq!(body_excerpt(b"no\nway"), ": no\\nway");
        let long = "a".repeat(1000);
        assert!(body_excerpt(long.as_bytes()).len() < 220);
    }
}
