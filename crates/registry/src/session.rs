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
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The host requests go to (`index.docker.io` for `docker.io`).
    api_host: String,
    /// `Authorization` value for Berth's own requests, from the token handshake.
    bearer: Option<String>,
    /// Set once the registry answered 401 to a request without credentials while Basic
    /// credentials are at hand: they are sent from then on.
    basic: AtomicBool,
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
        let api_host = oci_client::Reference::with_tag(
            domain.clone(),
            reference.path().to_string(),
            "latest".to_string(),
        )
        .resolve_registry()
        .to_string();
        Ok(Session {
            api_host,
            basic: AtomicBool::new(false),
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

    /// Sends a request to the registry with the session's token; Basic credentials are sent
    /// only after the registry answers 401 to a request without them.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let build = |basic: bool| {
            let mut req = self.http.request(method.clone(), url);
            if let Some(accept) = accept {
                req = req.header(reqwest::header::ACCEPT, accept);
            }
            if let Some(b) = &self.bearer {
                req = req.header(reqwest::header::AUTHORIZATION, b);
            } else if basic && let Credentials::Basic { username, password } = self.creds {
                req = req.basic_auth(username, Some(password));
            }
            req
        };
        let basic = self.basic.load(Ordering::Relaxed);
        let res = build(basic).send().await?;
        if res.status().as_u16() == 401
            && !basic
            && self.bearer.is_none()
            && matches!(self.creds, Credentials::Basic { .. })
        {
            self.basic.store(true, Ordering::Relaxed);
            return build(true).send().await;
        }
        Ok(res)
    }

    /// Whether the repository has a blob (`HEAD`), with the session's token: during a push
    /// that is the push token, which some registries require even to look.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = format!(
            "{}://{}/v2/{}/blobs/{digest}",
            self.scheme, self.api_host, self.path
        );
        let ctx = self.blob_ctx(digest);
        let res = self
            .send(reqwest::Method::HEAD, &url, None)
            .await
            .map_err(|e| ctx.reqwest(&e))?;
        match res.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(ctx.status(status, "HEAD blob", &[])),
        }
    }

    /// GETs a manifest or index by tag or digest, with the four manifest types in `Accept`,
    /// refusing bodies over `limit` bytes, retrying transport failures and 5xx.
    pub async fn get_manifest(
        &self,
        target: &str,
        limit: u64,
        what: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<FetchedDocument, RegistryError> {
        let url = format!(
            "{}://{}/v2/{}/manifests/{target}",
            self.scheme, self.api_host, self.path
        );
        let accept = MANIFEST_TYPES.join(", ");
        let ctx = self.ctx();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send(reqwest::Method::GET, &url, Some(&accept)).await {
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
                    } else if status.is_server_error() || status.as_u16() == 429 {
                        format!("HTTP {status}")
                    } else {
                        let body = read_capped(res, 4096).await;
                        return Err(ctx.status(status.as_u16(), &format!("GET {what}"), &body));
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
