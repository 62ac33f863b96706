//! One pull or push against one repository: its clients, its credentials, its token, and the
//! manifest requests Berth makes itself.

use crate::auth::{Credentials, read_capped};
use crate::document::MANIFEST_TYPES;
use crate::error::{ErrCtx, RegistryError, error_chain, reqwest_is_retryable};
use crate::util::{ATTEMPTS, backoff};
use crate::{Progress, Registry, STALL_MIN_BYTES};
use berth_image::digest::Digest;
use berth_image::reference::Reference;
use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A fetched manifest or index: the exact bytes, and the response `Content-Type`.
pub(crate) struct FetchedDocument {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The `Docker-Content-Digest` header, if any (checked against the bytes, never used).
    pub digest_header: Option<String>,
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
    /// The stall timeout.
    stall: Duration,
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
            stall: registry.stall_timeout(),
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
    /// only after the registry answers 401 to a request without them. Each send (redirects
    /// included) must bring the response headers within the stall timeout.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, String)],
    ) -> Result<reqwest::Response, NetError> {
        let build = |basic: bool| {
            let mut req = self.http.request(method.clone(), url);
            for (name, value) in headers {
                req = req.header(name, value);
            }
            if let Some(b) = &self.bearer {
                req = req.header(reqwest::header::AUTHORIZATION, b);
            } else if basic && let Credentials::Basic { username, password } = self.creds {
                req = req.basic_auth(username, Some(password));
            }
            req
        };
        let timed = |req: reqwest::RequestBuilder| async move {
            match tokio::time::timeout(self.stall, req.send()).await {
                Ok(res) => res.map_err(NetError::Http),
                Err(_) => Err(NetError::Stalled(format!(
                    "no response from the registry within {} s",
                    self.stall.as_secs_f64()
                ))),
            }
        };
        let basic = self.basic.load(Ordering::Relaxed);
        let res = timed(build(basic)).await?;
        if res.status().as_u16() == 401
            && !basic
            && self.bearer.is_none()
            && matches!(self.creds, Credentials::Basic { .. })
        {
            self.basic.store(true, Ordering::Relaxed);
            return timed(build(true)).await;
        }
        Ok(res)
    }

    /// The stall timeout of this session.
    pub fn stall(&self) -> Duration {
        self.stall
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
            .send(reqwest::Method::HEAD, &url, &[])
            .await
            .map_err(|e| e.into_error(&ctx))?;
        match res.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            status => Err(ctx.status(status, "HEAD blob", &[])),
        }
    }

    /// `GET` a blob, from byte `offset` on (a `Range` request) when it is not 0. Only the
    /// response headers have arrived when this returns.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<reqwest::Response, NetError> {
        let url = format!(
            "{}://{}/v2/{}/blobs/{digest}",
            self.scheme, self.api_host, self.path
        );
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push((reqwest::header::RANGE, format!("bytes={offset}-")));
        }
        self.send(reqwest::Method::GET, &url, &headers).await
    }

    /// GETs a manifest or index by tag or digest, with the four manifest types in `Accept`,
    /// refusing bodies over `limit` bytes, retrying transport failures, stalls and 5xx.
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
        let headers = [(reqwest::header::ACCEPT, accept)];
        let ctx = self.ctx();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.send(reqwest::Method::GET, &url, &headers).await {
                Ok(res) => {
                    let status = res.status();
                    if status.is_success() {
                        match read_limited(res, limit, self.stall).await {
                            Ok(doc) => return Ok(doc),
                            Err(ReadFailure::TooLarge(size)) => {
                                return Err(RegistryError::TooLarge {
                                    reference: self.display.clone(),
                                    what: what.to_string(),
                                    size,
                                    limit,
                                });
                            }
                            Err(ReadFailure::Net(e)) if e.is_retryable() => e.message(),
                            Err(ReadFailure::Net(e)) => return Err(e.into_error(&ctx)),
                        }
                    } else if status.is_server_error() || status.as_u16() == 429 {
                        format!("HTTP {status}")
                    } else {
                        let body = read_capped(res, 4096).await;
                        return Err(ctx.status(status.as_u16(), &format!("GET {what}"), &body));
                    }
                }
                Err(e) if e.is_retryable() => e.message(),
                Err(e) => return Err(e.into_error(&ctx)),
            };
            if attempt >= ATTEMPTS {
                return Err(ctx.transport(format!(
                    "GET {what} failed after {ATTEMPTS} attempts: {failure}"
                )));
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

/// A failed request or body read.
#[derive(Debug)]
pub(crate) enum NetError {
    /// reqwest failed (connection, TLS, redirect policy, body decoding, ...).
    Http(reqwest::Error),
    /// The registry stopped making progress (see [`crate::DEFAULT_STALL_TIMEOUT`]).
    Stalled(String),
}

impl NetError {
    /// Whether another attempt is worth it.
    pub fn is_retryable(&self) -> bool {
        match self {
            NetError::Http(e) => reqwest_is_retryable(e),
            NetError::Stalled(_) => true,
        }
    }

    /// What failed, with its causes.
    pub fn message(&self) -> String {
        match self {
            NetError::Http(e) => error_chain(e),
            NetError::Stalled(m) => m.clone(),
        }
    }

    /// The final error.
    pub fn into_error(self, ctx: &ErrCtx) -> RegistryError {
        match self {
            NetError::Http(e) => ctx.reqwest(&e),
            NetError::Stalled(m) => ctx.transport(m),
        }
    }
}

/// Reads a response body while making sure it keeps moving: every `window`, at least
/// [`STALL_MIN_BYTES`] must have arrived (or all that remains, and at least one byte), however
/// the registry spreads them out.
pub(crate) struct StallGuard {
    window: Duration,
    started: Instant,
    bytes: u64,
    need: u64,
}

impl StallGuard {
    /// A guard whose first window starts now, for a body with `remaining` bytes to come.
    pub fn new(window: Duration, remaining: u64) -> StallGuard {
        StallGuard {
            window,
            started: Instant::now(),
            bytes: 0,
            need: Self::need(remaining),
        }
    }

    fn need(remaining: u64) -> u64 {
        remaining.clamp(1, STALL_MIN_BYTES)
    }

    /// The next chunk of `res`, `None` at its end. `remaining` is how many bytes are still
    /// expected (or allowed).
    pub async fn next_chunk(
        &mut self,
        res: &mut reqwest::Response,
        remaining: u64,
    ) -> Result<Option<bytes::Bytes>, NetError> {
        loop {
            let deadline = tokio::time::Instant::from_std(self.started + self.window);
            let read = tokio::time::timeout_at(deadline, res.chunk()).await;
            let now = Instant::now();
            if let Ok(Ok(Some(chunk))) = &read {
                self.bytes += chunk.len() as u64;
            }
            if now >= self.started + self.window {
                if self.bytes < self.need {
                    return Err(NetError::Stalled(format!(
                        "the registry stalled: {} bytes in {:.1} s (at least {} expected)",
                        self.bytes,
                        now.duration_since(self.started).as_secs_f64(),
                        self.need
                    )));
                }
                let left = match &read {
                    Ok(Ok(Some(chunk))) => remaining.saturating_sub(chunk.len() as u64),
                    _ => remaining,
                };
                self.started = now;
                self.bytes = 0;
                self.need = Self::need(left);
            }
            match read {
                Ok(r) => return r.map_err(NetError::Http),
                // The window ended with enough bytes: a new one has started.
                Err(_) => continue,
            }
        }
    }
}

enum ReadFailure {
    TooLarge(u64),
    Net(NetError),
}

/// Reads a successful manifest response, refusing more than `limit` bytes (checked against
/// `Content-Length` first, then while reading, so that no more than `limit` plus one chunk is
/// ever held), and a body that stalls.
async fn read_limited(
    mut res: reqwest::Response,
    limit: u64,
    stall: Duration,
) -> Result<FetchedDocument, ReadFailure> {
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let digest_header = res
        .headers()
        .get(DOCKER_CONTENT_DIGEST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    if let Some(len) = res.content_length()
        && len > limit
    {
        return Err(ReadFailure::TooLarge(len));
    }
    let mut guard = StallGuard::new(stall, limit);
    let mut bytes = Vec::new();
    while let Some(chunk) = guard
        .next_chunk(&mut res, limit - bytes.len() as u64)
        .await
        .map_err(ReadFailure::Net)?
    {
        let total = bytes.len() as u64 + chunk.len() as u64;
        if total > limit {
            return Err(ReadFailure::TooLarge(total));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchedDocument {
        bytes,
        content_type,
        digest_header,
    })
}

/// The header a registry names content by. Never trusted: Berth hashes what it receives.
pub(crate) const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
