//! One pull or push against one repository: its clients, its credentials, its token, and the
//! manifest requests Berth makes itself.

use crate::auth::{Credentials, read_capped};
use crate::document::MANIFEST_TYPES;
use crate::error::{ErrCtx, RegistryError, error_chain, reqwest_is_retryable};
use crate::util::{ATTEMPTS, backoff};
use crate::{Progress, Registry};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;

/// A fetched manifest or index: the exact bytes, and the response `Content-Type`.
pub(crate) struct FetchedDocument {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// The state of one operation on one repository.
pub(crate) struct Session<'a> {
    pub client: oci_client::Client,
    http: reqwest::Client,
    scheme: &'static str,
    creds: &'a Credentials,
    pub auth: RegistryAuth,
    /// The registry as written in the reference (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// The repository path (`library/hello`).
    pub path: String,
    /// `Authorization` value for Berth's own requests, from the token handshake.
    bearer: Option<String>,
    /// The reference as printed in errors.
    pub display: String,
}

impl<'a> Session<'a> {
    /// Sets up a session for `reference` (no I/O yet).
    pub fn new(
        registry: &Registry,
        reference: &Reference,
        creds: &'a Credentials,
    ) -> Result<Session<'a>, RegistryError> {
        let domain = reference.domain().to_string();
        let insecure = registry.is_insecure(&domain);
        let (scheme, http) = registry.http_for(insecure, &domain)?;
        let client = registry.oci_client(insecure, creds, &domain)?;
        Ok(Session {
            client,
            http: http.clone(),
            scheme,
            creds,
            auth: creds.to_oci(),
            domain,
            path: reference.path().to_string(),
            bearer: None,
            display: reference.familiar(),
        })
    }

    /// Error context naming the reference.
    pub fn ctx(&self) -> ErrCtx {
        ErrCtx {
            registry: self.domain.clone(),
            reference: self.display.clone(),
        }
    }

    /// Error context naming a blob of the repository.
    pub fn blob_ctx(&self, digest: &Digest) -> ErrCtx {
        ErrCtx {
            registry: self.domain.clone(),
            reference: format!("{}/{}@{digest}", self.domain, self.path),
        }
    }

    /// The `oci-client` reference for a tag of this repository.
    pub fn oci_tag(&self, tag: &str) -> oci_client::Reference {
        oci_client::Reference::with_tag(self.domain.clone(), self.path.clone(), tag.to_string())
    }

    /// The `oci-client` reference for a digest in this repository.
    pub fn oci_digest(&self, digest: &Digest) -> oci_client::Reference {
        oci_client::Reference::with_digest(
            self.domain.clone(),
            self.path.clone(),
            digest.to_string(),
        )
    }

    /// Runs the token handshake for this repository and operation (`oci-client` caches the
    /// token for its own requests; Berth keeps it for manifest requests).
    pub async fn authorize(&mut self, op: RegistryOperation) -> Result<(), RegistryError> {
        let reference = self.oci_tag("latest");
        match self.client.auth(&reference, &self.auth, op).await {
            Ok(Some(token)) => self.bearer = Some(format!("Bearer {token}")),
            Ok(None) => self.bearer = None,
            Err(e) => return Err(self.ctx().oci(e)),
        }
        Ok(())
    }

    /// GETs a manifest or index by tag or digest, with the four manifest types in `Accept`,
    /// refusing bodies over `limit` bytes, retrying transport failures and 5xx. Basic
    /// credentials are sent only after the registry answers 401.
    pub async fn get_manifest(
        &self,
        target: &str,
        limit: u64,
        what: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<FetchedDocument, RegistryError> {
        let host = self.oci_tag("latest").resolve_registry().to_string();
        let url = format!(
            "{}://{host}/v2/{}/manifests/{target}",
            self.scheme, self.path
        );
        let ctx = self.ctx();
        let mut attempt = 0;
        let mut send_basic = false;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .get(&url)
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "));
            if let Some(b) = &self.bearer {
                req = req.header(reqwest::header::AUTHORIZATION, b);
            } else if send_basic && let Credentials::Basic { username, password } = self.creds {
                req = req.basic_auth(username, Some(password));
            }
            let failure = match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    if status.is_success() {
                        match read_limited(res, limit).await {
                            Ok(doc) => return Ok(doc),
                            Err(ReadFailure::TooLarge(size)) => {
                                return Err(RegistryError::TooLarge {
                                    reference: self.display.clone(),
                                    what: what.to_string(),
                                    size,
                                    limit,
                                });
                            }
                            Err(ReadFailure::Transport(e)) if reqwest_is_retryable(&e) => {
                                error_chain(&e)
                            }
                            Err(ReadFailure::Transport(e)) => return Err(ctx.reqwest(&e)),
                        }
                    } else if status.as_u16() == 401
                        && !send_basic
                        && self.bearer.is_none()
                        && matches!(self.creds, Credentials::Basic { .. })
                    {
                        send_basic = true;
                        attempt -= 1;
                        continue;
                    } else if status.is_server_error() || status.as_u16() == 429 {
                        format!("HTTP {status}")
                    } else {
                        let body = read_capped(res, 4096).await;
                        let err = ctx.status(status.as_u16(), &format!("GET {what}"), &body);
                        return Err(err);
                    }
                }
                Err(e) if reqwest_is_retryable(&e) => error_chain(&e),
                Err(e) => return Err(ctx.reqwest(&e)),
            };
            if attempt >= ATTEMPTS {
                return Err(ctx.transport(failure));
            }
            let id = Digest::parse(target)
                .map(|d| d.short().to_string())
                .unwrap_or_else(|_| target.to_string());
            progress(Progress::Retrying {
                id,
                attempt: attempt + 1,
                error: failure,
            });
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

enum ReadFailure {
    TooLarge(u64),
    Transport(reqwest::Error),
}

/// Reads a successful manifest response, refusing more than `limit` bytes (checked against
/// `Content-Length` first, then while reading).
async fn read_limited(
    mut res: reqwest::Response,
    limit: u64,
) -> Result<FetchedDocument, ReadFailure> {
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(len) = res.content_length()
        && len > limit
    {
        return Err(ReadFailure::TooLarge(len));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(ReadFailure::Transport)? {
        let total = bytes.len() as u64 + chunk.len() as u64;
        if total > limit {
            return Err(ReadFailure::TooLarge(total));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchedDocument {
        bytes,
        content_type,
    })
}
