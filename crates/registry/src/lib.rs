//! berth-registry: Berth's client for OCI registries (Docker Hub, GHCR, `registry:2`, zot, ...).
//!
//! - [`Registry::pull`] resolves a tag or digest, picks the Wasm entry of an image index,
//!   and downloads the manifest, the config and the layers into a
//!   [`ContentStore`]. Every byte is checked against the
//!   digest and size it was requested by while it streams; `Docker-Content-Digest` is never
//!   trusted. Layers download four at a time, resume with `Range` after a dropped connection,
//!   and are skipped when already in the store.
//! - [`Registry::push`] uploads an image from the store, streaming blobs from disk and
//!   skipping those the registry already has, then the manifest's exact stored bytes.
//! - [`Registry::push_wasm_artifact`] publishes a bare `.wasm` as the CNCF Wasm OCI artifact,
//!   byte-compatible with what `wkg oci push` (oci-wasm) writes.
//! - [`Registry::login`] checks credentials before the daemon stores them.
//!
//! Plain HTTP is used only for loopback hosts and the hosts given with
//! `berthd --insecure-registry` ([`Registry::is_insecure`]); every other registry is HTTPS,
//! with no fallback.
//!
//! The token handshake and uploads use `oci-client` 0.18. Manifests and blob downloads are
//! plain `reqwest` requests carrying the same token, on Berth's own client: `oci-client`'s
//! `pull_manifest_raw` neither exposes the `Content-Type` (needed to refuse documents whose
//! `mediaType` contradicts it, CVE-2021-41190) nor bounds the body it buffers, and its client
//! cannot be given a redirect policy. Berth's client follows at most [`MAX_REDIRECTS`]
//! redirects and never one that would carry credentials to another host, and every request
//! and body is under the stall timeout ([`Registry::with_stall_timeout`]). A pull commits
//! nothing until every blob has arrived and been verified.

mod auth;
mod document;
mod error;
mod pull;
mod push;
mod session;
mod util;

pub use auth::Credentials;
pub use error::RegistryError;

use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_image::store::ContentStore;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Connect timeout of every registry request.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default stall timeout: a request whose response headers take longer, or a body that brings
/// less than [`STALL_MIN_BYTES`] in this long, fails (and is retried like a dropped connection).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The least a body must bring in each stall window (unless fewer bytes remain): a registry
/// sending one byte a second makes no progress.
pub const STALL_MIN_BYTES: u64 = 1024;
/// Redirects followed for one request, at most.
pub const MAX_REDIRECTS: usize = 5;
/// `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));
/// At most this many `oci-client` clients (one per protocol and credential set) are kept.
const MAX_CACHED_CLIENTS: usize = 32;

/// Registry settings of the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Hosts reached over plain HTTP, as given with `berthd --insecure-registry`: `host` (any
    /// port) or `host:port`. A leading `http://` or `https://` and a trailing `/` are ignored.
    pub insecure: Vec<String>,
}

/// A progress event of a pull or a push, for Docker-style JSON progress messages.
///
/// Layers are named by their 12-hex short digest, as Docker names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The digest the reference resolved to: the index or the manifest the tag points to (for
    /// a pull), the manifest pushed (for a push). Sent once.
    Resolved {
        /// That digest.
        digest: Digest,
    },
    /// A layer starts downloading (pull) or uploading (push).
    LayerStart {
        /// The 12-hex short digest.
        id: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A layer is already present: in the local store (pull) or in the registry (push).
    LayerExists {
        /// The 12-hex short digest.
        id: String,
    },
    /// Bytes transferred so far; sent at most every 512 KiB.
    LayerProgress {
        /// The 12-hex short digest.
        id: String,
        /// Bytes so far.
        current: u64,
        /// The layer size.
        total: u64,
    },
    /// A layer is complete (verified and stored, or accepted by the registry).
    LayerDone {
        /// The 12-hex short digest.
        id: String,
    },
    /// A transfer failed and is retried after a pause.
    Retrying {
        /// The 12-hex short digest of the blob (or of the manifest).
        id: String,
        /// The attempt about to start: 2 for the first retry, 3 for the last.
        attempt: u32,
        /// Why the previous attempt failed.
        error: String,
    },
}

/// The outcome of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// What the reference points to in the registry: the index digest for a multi-platform
    /// image, otherwise the manifest digest. This is the `RepoDigest` Docker shows.
    pub repo_digest: Digest,
    /// The image manifest stored locally (the Wasm entry of an index).
    pub manifest: Digest,
    /// The config blob (the image id).
    pub config: Digest,
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The digest of the manifest pushed.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A registry client. Cheap to clone (the state is shared), `Send + Sync`.
///
/// It keeps one `oci-client` client per protocol (HTTP or HTTPS) and credential set: an
/// `oci-client` client remembers the first credentials it is given for a registry and never
/// replaces them, so sharing one between callers with different credentials would send the
/// wrong ones.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// `insecure` entries, normalised (lowercase, no scheme, no trailing slash).
    insecure: Vec<String>,
    /// `reqwest` clients for manifests and login: plain HTTP, and HTTPS-only. Built on first
    /// use (building one loads the system's root certificates).
    http_plain: OnceLock<Result<reqwest::Client, String>>,
    http_tls: OnceLock<Result<reqwest::Client, String>>,
    /// `(insecure, credentials fingerprint)` → client.
    oci: Mutex<HashMap<(bool, String), oci_client::Client>>,
    /// The stall timeout (see [`DEFAULT_STALL_TIMEOUT`]).
    stall: Duration,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("insecure", &self.inner.insecure)
            .field("stall_timeout", &self.inner.stall)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client with these settings. Building it does no I/O: HTTP clients are set up on
    /// first use.
    pub fn new(config: RegistryConfig) -> Self {
        Self::with_stall_timeout(config, DEFAULT_STALL_TIMEOUT)
    }

    /// A client with these settings and this stall timeout: a request waits at most this long
    /// for its response headers (redirects included), and a response body must bring at least
    /// [`STALL_MIN_BYTES`] (or what remains of it) in every period this long. A stalled
    /// download is retried like a dropped connection, then fails as
    /// [`RegistryError::Transport`]. [`Registry::new`] uses [`DEFAULT_STALL_TIMEOUT`].
    pub fn with_stall_timeout(config: RegistryConfig, stall: Duration) -> Self {
        let stall = stall.max(Duration::from_millis(100));
        let insecure = config
            .insecure
            .iter()
            .map(|h| util::normalize_insecure_entry(h))
            .filter(|h| !h.is_empty())
            .collect();
        Registry {
            inner: Arc::new(Inner {
                insecure,
                http_plain: OnceLock::new(),
                http_tls: OnceLock::new(),
                oci: Mutex::new(HashMap::new()),
                stall,
            }),
        }
    }

    /// Whether plain HTTP is used for this registry host: localhost, 127.0.0.0/8, ::1 (any
    /// port), or listed in `insecure`. Everything else is HTTPS, with no fallback to HTTP ever.
    ///
    /// `host` is `host[:port]` as in a reference (`localhost:5000`, `[::1]:5000`,
    /// `registry.example.com`). Matching is case-insensitive; an `insecure` entry without a
    /// port matches every port of its host, one with a port only that port.
    pub fn is_insecure(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = util::split_host_port(&host);
        if util::is_loopback_name(name) {
            return true;
        }
        self.inner.insecure.iter().any(|entry| {
            let (entry_name, entry_port) = util::split_host_port(entry);
            !entry_name.is_empty()
                && entry_name == name
                && (entry_port.is_none() || entry_port == port)
        })
    }

    /// Checks credentials against the registry before they are stored: GET /v2/; on a 401 with
    /// a Bearer challenge, fetch a token from the realm with the basic credentials; on a Basic
    /// challenge retry /v2/ with basic auth. Ok only if the registry accepts them; Unauthorized
    /// otherwise.
    ///
    /// `server` is `host[:port]`; a scheme and a path are ignored (`https://index.docker.io/v1/`
    /// is Docker Hub), and the protocol follows [`Registry::is_insecure`]. A registry that asks
    /// for no authentication at all accepts any credentials. Credentials are never sent to a
    /// token realm over plain HTTP unless its host is itself insecure.
    pub async fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
    ) -> Result<(), RegistryError> {
        let host = auth::normalize_server(server)?;
        let insecure = self.is_insecure(&host);
        let (scheme, http) = self.http_for(insecure, &host)?;
        let realm_allowed = |url: &reqwest::Url| match url.scheme() {
            "https" => true,
            "http" => {
                let h = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => return false,
                };
                self.is_insecure(&h)
            }
            _ => false,
        };
        auth::login(http, scheme, &host, username, password, &realm_allowed).await
    }

    /// Pulls into `store`. Resolves the reference (tag or digest), verifies every byte against
    /// its digest and size while streaming (never trusting Docker-Content-Digest), picks the
    /// Wasm entry of an index, downloads layers in parallel (at most 4 at once), skips blobs
    /// already in the store, retries dropped connections with backoff (3 attempts, 200ms
    /// doubling) resuming with Range where the registry allows it. Stores the chosen manifest's
    /// exact bytes, the config and the layers; returns the digests.
    ///
    /// Accepted: OCI and Docker v2 manifests (with or without `mediaType`), OCI indexes and
    /// Docker manifest lists (the first `wasm`/`wasm32` entry on `wasi`/`wasip1`/`wasip2`,
    /// skipping attestations and `unknown/unknown`; failing that an entry without platform;
    /// one level of nested index). Configs: OCI, Docker, `application/vnd.wasm.config.v0+json`
    /// and `v1+json`; an OCI or Docker config must say `architecture` `wasm`/`wasm32`
    /// ([`RegistryError::NotWasm`] otherwise). Layers of other types than tarballs and raw Wasm
    /// (in-toto, Spin data, ...) are not downloaded; they stay listed in the stored manifest.
    /// Foreign-layer `urls` are never followed. Every declared size is checked before a byte is
    /// fetched (layers at most 16 GiB, at most 256 layers); a `Docker-Content-Digest` that
    /// disagrees is refused. Blobs wait verified in ingest files and are committed only when
    /// all have arrived, the manifest last: a failed pull stores nothing.
    pub async fn pull(
        &self,
        reference: &Reference,
        creds: &Credentials,
        store: &ContentStore,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Pulled, RegistryError> {
        pull::pull(self, reference, creds, store, progress).await
    }

    /// Pushes the image whose manifest `manifest` is in `store`: uploads only the blobs the
    /// registry lacks (HEAD check), streaming from disk (never the whole layer in memory), then
    /// the manifest's exact stored bytes with its media type. Returns the manifest digest and
    /// size.
    ///
    /// The manifest goes to the reference's tag; a reference with only a digest must name this
    /// manifest. Blobs are checked against their digest and size while they are read from disk.
    /// A blob missing both locally (a layer type pull does not download) and in the registry
    /// is an error. Events: `LayerExists`/`LayerStart`/`LayerProgress`/`LayerDone` for layers
    /// (not the config), then `Resolved` with the manifest digest once it is accepted.
    pub async fn push(
        &self,
        reference: &Reference,
        creds: &Credentials,
        store: &ContentStore,
        manifest: &Digest,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Pushed, RegistryError> {
        push::push(self, reference, creds, store, manifest, progress).await
    }

    /// Pushes a single Wasm binary as the CNCF Wasm OCI artifact, exactly as oci-wasm/wkg write
    /// it: config mediaType application/vnd.wasm.config.v0+json with {"created","author":null,
    /// "architecture":"wasm","os":"wasip2" for components / "wasip1" for modules,
    /// "layerDigests":[...],"component":null or {"exports":[],"imports":[]}}, exactly one layer
    /// application/wasm annotated `org.opencontainers.image.title=<file name>`, manifest mediaType
    /// set explicitly to application/vnd.oci.image.manifest.v1+json, canonical JSON (sorted
    /// keys).
    ///
    /// Berth does not decode the component's WIT world, so `component.exports` and
    /// `component.imports` are always empty lists (wkg fills them from `wit_component::decode`;
    /// consumers only use them for indexing). `created` is the current UTC time in RFC 3339.
    /// `file_name` is reduced to its last path component. `wasm` must start with the `\0asm`
    /// magic. Nothing is stored locally.
    pub async fn push_wasm_artifact(
        &self,
        reference: &Reference,
        creds: &Credentials,
        wasm: &[u8],
        file_name: &str,
        component: bool,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Pushed, RegistryError> {
        push::push_wasm_artifact(self, reference, creds, wasm, file_name, component, progress).await
    }

    /// The stall timeout.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.inner.stall
    }

    /// The `reqwest` client and scheme for a host.
    pub(crate) fn http_for(
        &self,
        insecure: bool,
        host: &str,
    ) -> Result<(&'static str, &reqwest::Client), RegistryError> {
        let (scheme, cell) = if insecure {
            ("http", &self.inner.http_plain)
        } else {
            ("https", &self.inner.http_tls)
        };
        let client = cell.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(self.inner.stall)
                .redirect(redirect_policy())
                .user_agent(USER_AGENT)
                .https_only(!insecure)
                .build()
                .map_err(|e| error::error_chain(&e))
        });
        match client {
            Ok(c) => Ok((scheme, c)),
            Err(e) => Err(RegistryError::Transport {
                registry: host.to_string(),
                message: format!("cannot set up the HTTP client: {e}"),
            }),
        }
    }

    /// The `oci-client` client for a protocol and credential set.
    pub(crate) fn oci_client(
        &self,
        insecure: bool,
        creds: &Credentials,
        host: &str,
    ) -> Result<oci_client::Client, RegistryError> {
        let key = (insecure, creds.fingerprint());
        let cache = || {
            self.inner
                .oci
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some(c) = cache().get(&key) {
            return Ok(c.clone());
        }
        // Built without holding the lock: it takes a moment (root certificates are loaded).
        let config = oci_client::client::ClientConfig {
            protocol: if insecure {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            // Index selection is Berth's: indexes are never resolved by oci-client.
            platform_resolver: Some(Box::new(|_| None)),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(self.inner.stall),
            user_agent: USER_AGENT,
            max_concurrent_download: pull::MAX_PARALLEL,
            max_concurrent_upload: pull::MAX_PARALLEL,
            ..Default::default()
        };
        let client =
            oci_client::Client::try_from(config).map_err(|e| RegistryError::Transport {
                registry: host.to_string(),
                message: format!(
                    "cannot set up the registry client: {}",
                    error::error_chain(&e)
                ),
            })?;
        let mut cache = cache();
        if let Some(c) = cache.get(&key) {
            // Another caller built one meanwhile: share it.
            return Ok(c.clone());
        }
        if cache.len() >= MAX_CACHED_CLIENTS {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(client)
    }
}

/// The redirect policy of Berth's own requests (manifests, blob downloads, login): at most
/// [`MAX_REDIRECTS`] hops, and never a hop that would carry the first host's credentials to
/// another origin.
///
/// reqwest 0.13 (through tower-http's `FollowRedirect`) rebuilds every hop from the original
/// request's headers and drops `Authorization` only when the hop changes origin compared with
/// the previous URL. After a first hop to another origin, a second hop within that origin would
/// carry the original registry's `Authorization` again. Such a hop is refused.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let previous = attempt.previous();
        if previous.len() > MAX_REDIRECTS {
            let error = format!(
                "too many redirects: more than {MAX_REDIRECTS}, the last to {}",
                attempt.url()
            );
            return attempt.error(error);
        }
        if let (Some(first), Some(last)) = (previous.first(), previous.last())
            && !same_origin(attempt.url(), first)
            && same_origin(attempt.url(), last)
            && !same_origin(last, first)
        {
            let error = format!(
                "refusing a second redirect within {} (reached by a redirect from {}): it would carry the credentials meant for {}",
                origin(last),
                origin(first),
                origin(first)
            );
            return attempt.error(error);
        }
        attempt.follow()
    })
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn origin(u: &reqwest::Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        _ => u.scheme().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(insecure: &[&str]) -> Registry {
        Registry::new(RegistryConfig {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn loopback_is_insecure_on_any_port() {
        let r = reg(&[]);
        for h in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
            "::1",
            "[0:0:0:0:0:0:0:1]:5000",
            "[::ffff:127.0.0.1]:5000",
        ] {
            assert!(r.is_insecure(h), "{h}");
        }
    }

    #[test]
    fn everything_else_is_https() {
        let r = reg(&[]);
        for h in [
            "docker.io",
            "ghcr.io",
            "registry.example.com:5000",
            "10.0.0.1:5000",
            "128.0.0.1",
            "localhost.example.com",
            "mylocalhost:5000",
            "[::2]:5000",
            "0.0.0.0:5000",
            "",
        ] {
            assert!(!r.is_insecure(h), "{h}");
        }
    }

    #[test]
    fn insecure_list_matches_host_and_port() {
        let r = reg(&[
            "registry.lan",
            "build.lan:5000",
            "http://Other.LAN:8080/",
            "[fd00::1]",
            "[fd00::2]:5000",
        ]);
        assert!(r.is_insecure("registry.lan"));
        assert!(r.is_insecure("registry.lan:5000"));
        assert!(r.is_insecure("REGISTRY.lan:443"));
        assert!(r.is_insecure("build.lan:5000"));
        assert!(!r.is_insecure("build.lan"));
        assert!(!r.is_insecure("build.lan:5001"));
        assert!(r.is_insecure("other.lan:8080"));
        assert!(!r.is_insecure("other.lan"));
        assert!(r.is_insecure("[fd00::1]:5000"));
        assert!(r.is_insecure("[fd00::2]:5000"));
        assert!(!r.is_insecure("[fd00::2]:5001"));
        assert!(!r.is_insecure("sub.registry.lan"));
        assert!(!r.is_insecure("registry.lan.evil.com"));
    }

    #[test]
    fn registry_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<Registry>();
        let r = reg(&["a"]);
        let r2 = r.clone();
        assert!(Arc::ptr_eq(&r.inner, &r2.inner));
        assert!(format!("{r:?}").contains("insecure"));
    }

    #[test]
    fn clients_are_cached_per_protocol_and_credentials() {
        let r = reg(&[]);
        let anon = Credentials::Anonymous;
        let basic = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        r.oci_client(true, &anon, "h").unwrap();
        r.oci_client(true, &anon, "h").unwrap();
        r.oci_client(false, &anon, "h").unwrap();
        r.oci_client(true, &basic, "h").unwrap();
        assert_eq!(r.inner.oci.lock().unwrap().len(), 3);
    }

    #[test]
    fn pull_and_push_futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let r = reg(&[]);
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let reference = Reference::parse("localhost:5000/app:1").unwrap();
        let creds = Credentials::Anonymous;
        let progress = |_: Progress| {};
        let digest = Digest::sha256_of(b"x");
        assert_send(r.pull(&reference, &creds, &store, &progress));
        assert_send(r.push(&reference, &creds, &store, &digest, &progress));
        assert_send(r.push_wasm_artifact(&reference, &creds, b"\0asm", "a.wasm", true, &progress));
        assert_send(r.login("localhost:5000", "u", "p"));
    }
}
