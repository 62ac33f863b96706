//! Credentials, `WWW-Authenticate` challenges and `login`.

use crate::error::{ErrCtx, RegistryError, error_chain};
use oci_client::secrets::RegistryAuth;
use std::collections::BTreeMap;
use std::fmt;

/// Credentials for one registry.
///
/// `Debug` never shows the password or the token.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials: anonymous access (Docker Hub still hands out an anonymous token).
    #[default]
    Anonymous,
    /// A user name and a password (or a personal access token used as a password).
    Basic {
        /// The user name.
        username: String,
        /// The password; never printed.
        password: String,
    },
    /// A token sent as `Authorization: Bearer <token>` to the registry.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => {
                f.debug_tuple("IdentityToken").field(&"<redacted>").finish()
            }
        }
    }
}

impl Credentials {
    /// The `oci-client` form: `IdentityToken` becomes `Bearer`.
    pub(crate) fn to_oci(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::IdentityToken(t) => RegistryAuth::Bearer(t.clone()),
        }
    }

    /// A key naming this credential set without holding the secret in clear: the sha256 of
    /// its parts. Used to keep one `oci-client` client per credential set.
    pub(crate) fn fingerprint(&self) -> String {
        let text = match self {
            Credentials::Anonymous => "anonymous".to_string(),
            Credentials::Basic { username, password } => {
                format!("basic\0{username}\0{password}")
            }
            Credentials::IdentityToken(t) => format!("token\0{t}"),
        };
        berth_image::digest::Digest::sha256_of(text.as_bytes()).to_string()
    }
}

/// One challenge of a `WWW-Authenticate` header: its scheme (lowercased) and parameters
/// (keys lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` header value (RFC 7235): one or more challenges, each a scheme
/// followed by comma-separated `key=value` or `key="quoted value"` parameters.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b);
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t' || bytes[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            break;
        }
        // A token: either a new scheme or a parameter name.
        let start = i;
        while i < bytes.len() && is_tchar(bytes[i]) {
            i += 1;
        }
        if start == i {
            // Garbage: skip one byte.
            i += 1;
            continue;
        }
        let token = &header[start..i];
        let mut j = i;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            i = j + 1;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            let value = if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    // Copy one UTF-8 character.
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1; // closing quote
                v
            } else {
                let vs = i;
                while i < bytes.len() && bytes[i] != b',' && bytes[i] != b' ' {
                    i += 1;
                }
                header[vs..i].to_string()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            // A new challenge; a token68 credential after it is ignored.
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// Normalises the server given to `login`: strips a scheme and a path, lowercases, and maps
/// Docker Hub's names to its registry API host. Returns `host[:port]`.
pub(crate) fn normalize_server(server: &str) -> Result<String, RegistryError> {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !valid {
        return Err(RegistryError::Invalid {
            message: format!(
                "invalid registry server {:?}: expected host[:port]",
                server.escape_debug().to_string()
            ),
        });
    }
    Ok(match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "registry-1.docker.io".to_string()
        }
        _ => host,
    })
}

/// The `WWW-Authenticate` challenges of a response.
pub(crate) fn response_challenges(res: &reqwest::Response) -> Vec<Challenge> {
    res.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// Reads at most `limit` bytes of a response body (for error messages).
pub(crate) async fn read_capped(mut res: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    // An error body is only for the message: a registry trickling it gets a few seconds.
    let deadline = tokio::time::Instant::now() + ERROR_BODY_TIME;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, res.chunk()).await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// How long an error response's body is read for its message.
const ERROR_BODY_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET url` with basic credentials: Ok on a 2xx, the registry's answer as the error otherwise.
async fn get_with_basic(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    username: &str,
    password: &str,
    what: &str,
    ctx: &ErrCtx,
) -> Result<(), RegistryError> {
    let res = http
        .get(url)
        .basic_auth(username, Some(password))
        .send()
        .await
        .map_err(|e| ctx.transport(error_chain(&e)))?;
    let status = res.status().as_u16();
    if res.status().is_success() {
        return Ok(());
    }
    let body = read_capped(res, 4096).await;
    Err(ctx.status(status, what, &body))
}

/// Performs `login` against `host` with `http` (the client for that host's protocol).
///
/// `realm_allowed` decides whether a token realm URL may receive the credentials.
pub(crate) async fn login(
    http: &reqwest::Client,
    scheme: &str,
    host: &str,
    username: &str,
    password: &str,
    realm_allowed: &(dyn Fn(&reqwest::Url) -> bool + Sync),
) -> Result<(), RegistryError> {
    let ctx = ErrCtx {
        registry: host.to_string(),
        reference: host.to_string(),
    };
    let url = format!("{scheme}://{host}/v2/");
    let res = http
        .get(&url)
        .send()
        .await
        .map_err(|e| ctx.transport(error_chain(&e)))?;
    let status = res.status().as_u16();
    if res.status().is_success() {
        // The registry wants no authentication: any credentials are accepted.
        return Ok(());
    }
    if status != 401 {
        let body = read_capped(res, 4096).await;
        return Err(ctx.status(status, "GET /v2/", &body));
    }
    let challenges = response_challenges(&res);
    drop(res);
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let Some(realm) = bearer.params.get("realm") else {
            return Err(ctx.protocol("Bearer challenge without a realm"));
        };
        let mut realm_url = reqwest::Url::parse(realm)
            .map_err(|e| ctx.protocol(format!("invalid token realm {realm:?}: {e}")))?;
        if !realm_allowed(&realm_url) {
            return Err(ctx.protocol(format!(
                "refusing to send credentials to token realm {realm}: it is not HTTPS"
            )));
        }
        {
            let mut q = realm_url.query_pairs_mut();
            if let Some(service) = bearer.params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("account", username);
            q.append_pair("client_id", "berth");
        }
        return get_with_basic(http, realm_url, username, password, "token request", &ctx).await;
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return get_with_basic(
            http,
            &url,
            username,
            password,
            "GET /v2/ with credentials",
            &ctx,
        )
        .await;
    }
    Err(ctx.protocol("GET /v2/ answered 401 without a Bearer or Basic challenge"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let basic = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let s = format!("{basic:?}");
        assert!(s.contains("alice"), "{s}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("redacted"), "{s}");
        let s = format!("{:?}", Credentials::IdentityToken("tok-secret".into()));
        assert!(!s.contains("tok-secret"), "{s}");
        assert!(s.contains("redacted"), "{s}");
        assert_eq!(format!("{:?}", Credentials::Anonymous), "Anonymous");
        // Alternate form too.
        let s = format!("{basic:#?}");
        assert!(!s.contains("hunter2"), "{s}");
    }

    #[test]
    fn maps_to_oci_auth() {
        assert_eq!(Credentials::Anonymous.to_oci(), RegistryAuth::Anonymous);
        assert_eq!(
            Credentials::IdentityToken("t".into()).to_oci(),
            RegistryAuth::Bearer("t".into())
        );
        assert_eq!(
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
            .to_oci(),
            RegistryAuth::Basic("u".into(), "p".into())
        );
    }

    #[test]
    fn fingerprints_differ_and_hide_the_secret() {
        let a = Credentials::Basic {
            username: "u".into(),
            password: "p1".into(),
        };
        let b = Credentials::Basic {
            username: "u".into(),
            password: "p2".into(),
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert!(!a.fingerprint().contains("p1"));
        assert_ne!(
            Credentials::Anonymous.fingerprint(),
            Credentials::IdentityToken("anonymous".into()).fingerprint()
        );
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/hello:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/hello:pull");

        let c = parse_challenges(r#"Basic realm="test""#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "test");

        let c = parse_challenges(
            r#"Basic realm="a \"quoted\" realm", Bearer realm=https://x/token, service=svc"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["realm"], r#"a "quoted" realm"#);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "https://x/token");
        assert_eq!(c[1].params["service"], "svc");

        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Negotiate")[0].scheme, "negotiate");
        // Unterminated quotes do not panic.
        let c = parse_challenges(r#"Bearer realm="unterminated"#);
        assert_eq!(c[0].params["realm"], "unterminated");
        let c = parse_challenges("Bearer realm=\"caf\u{e9}\"");
        assert_eq!(c[0].params["realm"], "caf\u{e9}");
    }

    #[test]
    fn normalizes_login_servers() {
        assert_eq!(
            normalize_server("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert_eq!(
            normalize_server("https://index.docker.io/v1/").unwrap(),
            "registry-1.docker.io"
        );
        assert_eq!(
            normalize_server("docker.io").unwrap(),
            "registry-1.docker.io"
        );
        assert_eq!(normalize_server("GHCR.io").unwrap(), "ghcr.io");
        assert_eq!(normalize_server("[::1]:5000").unwrap(), "[::1]:5000");
        assert!(normalize_server("").is_err());
        assert!(normalize_server("host with space").is_err());
        assert!(normalize_server("user@host").is_err());
    }
}
