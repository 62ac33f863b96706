//! The client configuration file: Docker's `config.json`, so that existing `docker login`
//! credentials work with berth and the other way round.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Only the `auths`
//! map is read and written:
//!
//! ```json
//! {"auths": {"https://index.docker.io/v1/": {"auth": "<base64 user:password>"},
//!            "localhost:5000": {"auth": "...", "identitytoken": "..."}}}
//! ```
//!
//! Every other key of the file is kept as it is (the document round-trips through
//! [`serde_json::Value`]). Credential helpers (`credsStore`, `credHelpers`) are out of scope:
//! their keys are preserved but never consulted, so credentials kept by a helper are not
//! found and `login` always stores into the file.
//!
//! All functions take the path of the file, so that tests never touch the environment.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::Serialize;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The key of Docker Hub's credentials, as `docker login` writes it.
pub const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";
/// The host names that mean Docker Hub in a reference or on the command line.
const HUB_HOSTS: [&str; 2] = ["docker.io", "index.docker.io"];
/// `X-Registry-Auth` of an anonymous request: base64 of `{}`.
pub const ANONYMOUS_AUTH: &str = "e30=";

/// The configuration file's path from the values of `DOCKER_CONFIG` and `HOME`.
pub fn path_from(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(dir) = docker_config.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The configuration file of this process: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_path() -> Result<PathBuf> {
    path_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
        .context("cannot find the configuration file: neither DOCKER_CONFIG nor HOME is set")
}

/// The `X-Registry-Auth` value for images of the registry `host` (a reference's domain), from
/// this process's configuration file. A file that cannot be read is warned about and
/// ignored (the request goes out anonymously), as the docker CLI does.
pub fn registry_auth_for(host: &str) -> String {
    let creds = default_path()
        .and_then(|p| ConfigFile::load(&p))
        .and_then(|c| c.credentials(host));
    match creds {
        Ok(c) => registry_auth(c.as_ref()),
        Err(e) => {
            eprintln!("WARNING: Error loading config file: {e:#}");
            ANONYMOUS_AUTH.to_string()
        }
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth refresh token returned by a registry's login, used instead of the password.
    pub identity_token: Option<String>,
    /// The address the credentials are for (the key they are stored under).
    pub server_address: String,
}

/// The JSON of `X-Registry-Auth` (Docker's `registry.AuthConfig`).
#[derive(Serialize)]
struct AuthConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identitytoken: Option<&'a str>,
    serveraddress: &'a str,
}

/// The `X-Registry-Auth` header value: base64url (with padding) of
/// `{"username","password","serveraddress"}`, or of `{"identitytoken","serveraddress"}` when the
/// registry gave a token; `e30=` (`{}`) without credentials.
pub fn registry_auth(creds: Option<&Credentials>) -> String {
    let Some(c) = creds else {
        return ANONYMOUS_AUTH.to_string();
    };
    let config = match c.identity_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => AuthConfig {
            username: None,
            password: None,
            identitytoken: Some(token),
            serveraddress: &c.server_address,
        },
        None => AuthConfig {
            username: Some(&c.username),
            password: Some(&c.password),
            identitytoken: None,
            serveraddress: &c.server_address,
        },
    };
    let json = serde_json::to_vec(&config).expect("an AuthConfig always serialises");
    URL_SAFE.encode(json)
}

/// Docker's `credentials.ConvertToHostname`: the `host[:port]` of a config key or server
/// argument (`https://host:5000/v2/` → `host:5000`, `host/v1/` → `host`).
pub fn hostname(server: &str) -> &str {
    let rest = match server.split_once("://") {
        Some((_, rest)) => rest,
        None => server,
    };
    let host = rest.split('/').next().unwrap_or(rest);
    // user info is never part of a registry key, but drop it as a URL parser would
    match host.rsplit_once('@') {
        Some((_, h)) => h,
        None => host,
    }
}

fn is_hub(host: &str) -> bool {
    HUB_HOSTS.contains(&host)
}

/// The key `login`/`logout` use for a server argument: Docker Hub (no argument, `docker.io`,
/// `index.docker.io` or the Hub URL) is [`DEFAULT_SERVER`]; any other registry is its
/// `host[:port]`.
pub fn server_key(server: Option<&str>) -> String {
    let Some(server) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return DEFAULT_SERVER.to_string();
    };
    let host = hostname(server);
    if server == DEFAULT_SERVER || is_hub(host) {
        DEFAULT_SERVER.to_string()
    } else {
        host.to_string()
    }
}

/// Whether the config key `key` holds credentials for the registry `host` (a reference's
/// domain or a [`server_key`]).
fn key_matches(key: &str, host: &str) -> bool {
    let target = hostname(host);
    let k = hostname(key);
    if is_hub(target) {
        is_hub(k)
    } else {
        k == target
    }
}

/// The parsed configuration file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl ConfigFile {
    /// Read the file at `path`; a missing (or empty) file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("loading config file {}", path.display()));
            }
        };
        let doc = if text.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&text)
                .with_context(|| format!("loading config file {}", path.display()))?
            {
                Value::Object(m) => m,
                _ => bail!(
                    "loading config file {}: the file is not a JSON object",
                    path.display()
                ),
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file this configuration is read from and saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole document.
    pub fn document(&self) -> &Map<String, Value> {
        &self.doc
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The keys of `auths` that hold credentials for `host`, the exact key first.
    fn matching_keys(&self, host: &str) -> Vec<String> {
        let Some(auths) = self.auths() else {
            return Vec::new();
        };
        let exact = if is_hub(hostname(host)) {
            DEFAULT_SERVER
        } else {
            host
        };
        let mut keys: Vec<String> = auths
            .keys()
            .filter(|k| key_matches(k, host))
            .cloned()
            .collect();
        keys.sort_by_key(|k| k != exact);
        keys
    }

    /// The credentials for a registry host (`docker.io`, `localhost:5000`, ...): the entry
    /// under the host's canonical key, else one written as `https://host`, `host/v2/`, ...
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        let Some(auths) = self.auths() else {
            return Ok(None);
        };
        for key in self.matching_keys(host) {
            if let Some(c) = decode_entry(&auths[&key], &key)? {
                return Ok(Some(Credentials {
                    server_address: server_key(Some(host)),
                    ..c
                }));
            }
        }
        Ok(None)
    }

    /// Store credentials under `server` (a [`server_key`]), replacing any entry there.
    pub fn store(&mut self, server: &str, creds: &Credentials) {
        let mut entry = Map::new();
        let token = creds.identity_token.as_deref().filter(|t| !t.is_empty());
        let password = if token.is_some() { "" } else { &creds.password };
        entry.insert(
            "auth".into(),
            Value::String(STANDARD.encode(format!("{}:{password}", creds.username))),
        );
        if let Some(t) = token {
            entry.insert("identitytoken".into(), Value::String(t.to_string()));
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.insert(server.to_string(), Value::Object(entry));
        }
    }

    /// Remove every entry for `server` (its exact key and the keys of the same host);
    /// returns whether there was one.
    pub fn erase(&mut self, server: &str) -> bool {
        let keys = self.matching_keys(server);
        let Some(Value::Object(auths)) = self.doc.get_mut("auths") else {
            return false;
        };
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    /// Write the file atomically: a temporary file with mode 0600 in the same directory,
    /// fsync, rename over the file (the directory is created with mode 0700 if missing).
    /// A symlinked config file is replaced at its target, as Docker does.
    pub fn save(&self) -> Result<()> {
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&self.path)
                .with_context(|| format!("resolving {}", self.path.display()))?,
            _ => self.path.clone(),
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut data = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))?;
        data.push(b'\n');
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let (tmp_path, mut file) = create_temp(&dir, &format!(".{name}"), 0o600)?;
        let written = (|| -> std::io::Result<()> {
            // the mode given at creation is reduced by the umask: set it exactly
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(&data)?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp_path, &target)?;
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e).with_context(|| format!("saving {}", target.display()));
        }
        Ok(())
    }
}

/// Create a new file `<dir>/<prefix><random>` with `mode` (exclusively, so that nothing
/// else's file is ever truncated).
pub fn create_temp(dir: &Path, prefix: &str, mode: u32) -> Result<(PathBuf, std::fs::File)> {
    let mut last_err = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mix = (nanos as u64) ^ ((std::process::id() as u64) << 32) ^ (attempt as u64) << 16;
        let path = dir.join(format!("{prefix}.tmp-{mix:016x}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating a temporary file in {}", dir.display()));
            }
        }
    }
    Err(last_err.expect("the loop ran"))
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// The credentials of one `auths` entry; `None` for an entry without any (Docker writes
/// `{}` placeholders when a credential helper holds the secret).
fn decode_entry(entry: &Value, key: &str) -> Result<Option<Credentials>> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let (username, password) = match field("auth") {
        Some(auth) => {
            let decoded = STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .with_context(|| format!("invalid auth configuration for {key}"))?;
            let Some((u, p)) = decoded.split_once(':') else {
                bail!("invalid auth configuration for {key}");
            };
            (u.to_string(), p.to_string())
        }
        None => (
            field("username").unwrap_or_default(),
            field("password").unwrap_or_default(),
        ),
    };
    let identity_token = field("identitytoken");
    if username.is_empty() && password.is_empty() && identity_token.is_none() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username,
        password,
        identity_token,
        server_address: key.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: pass.into(),
            ..Default::default()
        }
    }

    fn with_auths(auths: Value) -> ConfigFile {
        let Value::Object(doc) = json!({ "auths": auths }) else {
            unreachable!()
        };
        ConfigFile {
            path: PathBuf::from("/nonexistent/config.json"),
            doc,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            path_from(Some("/cfg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            path_from(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn round_trip_keeps_unknown_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let original = json!({
            "auths": {"other.example:443": {"auth": STANDARD.encode("x:y"), "email": "e@x"}},
            "credsStore": "desktop",
            "psFormat": "table {{.ID}}",
            "proxies": {"default": {"httpProxy": "http://p:3128"}},
            "experimental": "enabled",
        });
        std::fs::write(&path, serde_json::to_vec(&original).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let mut cfg = ConfigFile::load(&path).unwrap();
        cfg.store("localhost:5000", &creds("alice", "s3cret:with:colons"));
        cfg.save().unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for key in ["credsStore", "psFormat", "proxies", "experimental"] {
            assert_eq!(saved[key], original[key], "{key}");
        }
        assert_eq!(
            saved["auths"]["other.example:443"],
            original["auths"]["other.example:443"]
        );
        assert_eq!(
            saved["auths"]["localhost:5000"],
            json!({"auth": STANDARD.encode("alice:s3cret:with:colons")})
        );
        // nothing left behind but the file itself
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);

        let again = ConfigFile::load(&path).unwrap();
        assert_eq!(
            again.credentials("localhost:5000").unwrap(),
            Some(Credentials {
                server_address: "localhost:5000".into(),
                ..creds("alice", "s3cret:with:colons")
            })
        );
    }

    #[test]
    fn save_creates_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("config.json");
        let mut cfg = ConfigFile::load(&path).unwrap();
        assert!(cfg.document().is_empty());
        cfg.store(DEFAULT_SERVER, &creds("bob", "pw"));
        cfg.save().unwrap();
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let fmode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(fmode, 0o600);
        let cfg = ConfigFile::load(&path).unwrap();
        assert_eq!(
            cfg.credentials("docker.io").unwrap().unwrap().username,
            "bob"
        );
    }

    #[test]
    fn save_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, b"{\"detachKeys\":\"ctrl-x\"}").unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut cfg = ConfigFile::load(&link).unwrap();
        cfg.store("r.example", &creds("u", "p"));
        cfg.save().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let saved: Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
        assert_eq!(saved["detachKeys"], "ctrl-x");
        assert!(saved["auths"]["r.example"].is_object());
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"[1]").unwrap();
        assert!(ConfigFile::load(&path).is_err());
        std::fs::write(&path, b"{nope").unwrap();
        assert!(ConfigFile::load(&path).is_err());
        std::fs::write(&path, b"\n").unwrap();
        assert!(ConfigFile::load(&path).unwrap().document().is_empty());
    }

    #[test]
    fn host_lookup() {
        let a = |s: &str| json!({"auth": STANDARD.encode(s)});
        let cfg = with_auths(json!({
            "https://index.docker.io/v1/": a("hub:1"),
            "localhost:5000": a("local:2"),
            "https://secure.example:8443": a("secure:3"),
            "legacy.example/v2/": a("legacy:4"),
            "http://plain.example/": a("plain:5"),
            "helper.example": {},
        }));
        let user = |host: &str| cfg.credentials(host).unwrap().map(|c| c.username);
        assert_eq!(user("docker.io").as_deref(), Some("hub"));
        assert_eq!(user("index.docker.io").as_deref(), Some("hub"));
        assert_eq!(user("localhost:5000").as_deref(), Some("local"));
        assert_eq!(user("localhost").as_deref(), None);
        assert_eq!(user("localhost:5001").as_deref(), None);
        assert_eq!(user("secure.example:8443").as_deref(), Some("secure"));
        assert_eq!(user("secure.example").as_deref(), None);
        assert_eq!(user("legacy.example").as_deref(), Some("legacy"));
        assert_eq!(user("plain.example").as_deref(), Some("plain"));
        assert_eq!(user("helper.example").as_deref(), None);
        assert_eq!(user("nowhere.example").as_deref(), None);
        let hub = cfg.credentials("docker.io").unwrap().unwrap();
        assert_eq!(hub.password, "1");
        assert_eq!(hub.server_address, DEFAULT_SERVER);
        assert_eq!(
            cfg.credentials("legacy.example")
                .unwrap()
                .unwrap()
                .server_address,
            "legacy.example"
        );

        // Hub credentials written under the short names are found too; the canonical key wins
        let cfg = with_auths(json!({"docker.io": a("short:1")}));
        assert_eq!(
            cfg.credentials("docker.io").unwrap().unwrap().username,
            "short"
        );
        let cfg = with_auths(json!({
            "index.docker.io": a("alias:1"),
            "https://index.docker.io/v1/": a("canonical:1"),
        }));
        assert_eq!(
            cfg.credentials("docker.io").unwrap().unwrap().username,
            "canonical"
        );

        // plain username/password fields and identity tokens
        let cfg = with_auths(json!({
            "u.example": {"username": "plainuser", "password": "pw"},
            "t.example": {"auth": STANDARD.encode("tok:"), "identitytoken": "refresh"},
            "bad.example": {"auth": "!!!"},
        }));
        assert_eq!(
            cfg.credentials("u.example").unwrap().unwrap().password,
            "pw"
        );
        assert_eq!(
            cfg.credentials("t.example")
                .unwrap()
                .unwrap()
                .identity_token
                .as_deref(),
            Some("refresh")
        );
        assert!(cfg.credentials("bad.example").is_err());
        assert!(
            with_auths(json!(null))
                .credentials("docker.io")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn server_keys() {
        assert_eq!(server_key(None), DEFAULT_SERVER);
        assert_eq!(server_key(Some("")), DEFAULT_SERVER);
        assert_eq!(server_key(Some("docker.io")), DEFAULT_SERVER);
        assert_eq!(server_key(Some("index.docker.io")), DEFAULT_SERVER);
        assert_eq!(server_key(Some(DEFAULT_SERVER)), DEFAULT_SERVER);
        assert_eq!(server_key(Some("localhost:5000")), "localhost:5000");
        assert_eq!(
            server_key(Some("https://localhost:5000/v2/")),
            "localhost:5000"
        );
        assert_eq!(server_key(Some("http://r.example")), "r.example");
        assert_eq!(hostname("https://u@h.example:1/x"), "h.example:1");
    }

    #[test]
    fn erase_removes_every_spelling() {
        let a = json!({"auth": STANDARD.encode("u:p")});
        let mut cfg = with_auths(json!({
            "localhost:5000": a,
            "https://localhost:5000": a,
            "localhost:5000/v2/": a,
            "localhost:5001": a,
            "https://index.docker.io/v1/": a,
        }));
        assert!(cfg.erase("localhost:5000"));
        assert!(!cfg.erase("localhost:5000"));
        let keys: Vec<&String> = cfg.auths().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(cfg.erase(DEFAULT_SERVER));
        assert!(cfg.credentials("docker.io").unwrap().is_none());
        assert!(cfg.credentials("localhost:5001").unwrap().is_some());
        let mut empty = with_auths(json!({}));
        assert!(!empty.erase(DEFAULT_SERVER));
    }

    #[test]
    fn identity_tokens_replace_the_password() {
        let mut cfg = with_auths(json!({}));
        cfg.store(
            "r.example",
            &Credentials {
                username: "u".into(),
                password: "secret".into(),
                identity_token: Some("tok".into()),
                server_address: "r.example".into(),
            },
        );
        assert_eq!(
            cfg.document()["auths"]["r.example"],
            json!({"auth": STANDARD.encode("u:"), "identitytoken": "tok"})
        );
    }

    #[test]
    fn registry_auth_encoding() {
        assert_eq!(registry_auth(None), "e30=");
        let c = Credentials {
            server_address: "localhost:5000".into(),
            ..creds("alice", "pa?s>s~")
        };
        let header = registry_auth(Some(&c));
        let json = r#"{"username":"alice","password":"pa?s>s~","serveraddress":"localhost:5000"}"#;
        let standard = STANDARD.encode(json);
        assert!(
            standard.contains('/') || standard.contains('+'),
            "{standard}"
        );
        assert!(standard.ends_with('='), "{standard}");
        // URL-safe alphabet, padding kept
        assert_eq!(header, standard.replace('+', "-").replace('/', "_"));
        assert_eq!(URL_SAFE.decode(&header).unwrap(), json.as_bytes());
        let t = Credentials {
            identity_token: Some("refresh".into()),
            ..c
        };
        let decoded = URL_SAFE.decode(registry_auth(Some(&t))).unwrap();
        assert_eq!(
            std::str::from_utf8(&decoded).unwrap(),
            r#"{"identitytoken":"refresh","serveraddress":"localhost:5000"}"#
        );
    }
}
