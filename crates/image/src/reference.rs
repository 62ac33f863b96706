//! Validated image references, with Docker's normalisation.
//!
//! The grammar and the normalisation follow the `reference` package of
//! `github.com/distribution/reference` (what `docker pull`, `docker tag` and `docker run` use):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component [ "/" path-component ]*
//! domain     := host [ ":" port ]          host := dns-name | IPv4 | "[" IPv6 "]"
//! path-component := [a-z0-9]+ ( ( [._] | "__" | [-]+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := sha256:<64 lowercase hex>   (see [`Digest`])
//! ```
//!
//! The first `/`-separated component is a domain only if it contains `.` or `:` or is
//! exactly `localhost`. Without a domain the reference lives on `docker.io`, where a
//! single-component path gets the `library/` prefix (`hello` is `docker.io/library/hello`);
//! `index.docker.io` is an alias of `docker.io`. [`Reference::parse`] gives a reference with
//! neither tag nor digest the tag `latest`; [`Reference::parse_no_default_tag`] does not.
//!
//! The "familiar" form is the short one Docker prints (`hello:1`, `myuser/app`,
//! `localhost:5000/app:v1`); the canonical form is the fully qualified one
//! (`docker.io/library/hello:1`), used for storage, `Display` and serialisation.
//!
//! A string of exactly 64 lowercase hex characters is refused, as Docker refuses it: it is an
//! image id, and callers resolve it as one.

use crate::digest::{Digest, DigestError, shown};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The registry of references without a domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// An alias of [`DEFAULT_DOMAIN`], normalised away.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of single-component names on the default domain.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag given when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length of `domain/path`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Maximum length of a tag.
const TAG_MAX: usize = 128;

/// Why a string is not a valid reference. Every variant carries the offending input.
///
/// The messages are Docker's own, so that the daemon can print them unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Anything that does not fit the grammar: empty, whitespace, NUL, empty or `..`
    /// components, bad characters, a bad tag.
    #[error("invalid reference format")]
    InvalidFormat { input: String },
    /// Uppercase letters in the repository path (`name` is the normalised path).
    #[error("invalid reference format: repository name ({}) must be lowercase", .name.escape_debug())]
    Uppercase { input: String, name: String },
    /// `domain/path` is longer than 255 characters.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    NameTooLong { input: String },
    /// The input is a 64-character hex string: an image id, not a name.
    #[error("invalid repository name ({}), cannot specify 64-byte hexadecimal strings", .input.escape_debug())]
    HexIdentifier { input: String },
    /// The part after `@` is not a valid (sha256) digest.
    #[error("invalid reference format: {source}")]
    InvalidDigest {
        input: String,
        #[source]
        source: DigestError,
    },
    /// A tag given to [`Reference::with_tag`] is not valid.
    #[error("invalid tag format: {}", shown(.tag))]
    InvalidTag { tag: String },
}

impl ReferenceError {
    /// The rejected input (the tag, for [`ReferenceError::InvalidTag`]).
    pub fn input(&self) -> &str {
        match self {
            ReferenceError::InvalidFormat { input }
            | ReferenceError::Uppercase { input, .. }
            | ReferenceError::NameTooLong { input }
            | ReferenceError::HexIdentifier { input }
            | ReferenceError::InvalidDigest { input, .. } => input,
            ReferenceError::InvalidTag { tag } => tag,
        }
    }
}

/// A validated, normalised image reference.
///
/// Fields are ordered domain, path, tag, digest, which is also the derived ordering.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !is_lower_alnum(first) || !is_lower_alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `host [":" port]`, host a DNS name / IPv4 (`a.b.c`) or `[IPv6]`.
fn is_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let (v6, after) = (&rest[..end], &rest[end + 1..]);
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(host) = host
        && !host.split('.').all(is_domain_component)
    {
        return false;
    }
    match port {
        Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    b.len() <= TAG_MAX
        && (first.is_ascii_alphanumeric() || first == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Reference {
    /// Parses and normalises `input`; a reference with neither tag nor digest gets `latest`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_no_default_tag(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises `input`, leaving the tag absent if none is written.
    pub fn parse_no_default_tag(input: &str) -> Result<Reference, ReferenceError> {
        let invalid = || ReferenceError::InvalidFormat {
            input: input.to_string(),
        };
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid());
        }
        if is_hex_identifier(input) {
            return Err(ReferenceError::HexIdentifier {
                input: input.to_string(),
            });
        }

        // name[:tag][@digest]
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        let tag_sep = name_tag
            .rfind(':')
            .filter(|&i| !name_tag[i + 1..].contains('/'));
        let (name, tag) = match tag_sep {
            Some(i) => (&name_tag[..i], Some(&name_tag[i + 1..])),
            None => (name_tag, None),
        };

        // Split off the domain as Docker's splitDockerDomain does.
        let (mut domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, rest)
            }
            _ => (DEFAULT_DOMAIN, name),
        };
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN;
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_string()
        };

        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.to_string(),
                name: path,
            });
        }
        if !is_domain(domain) || !path.split('/').all(is_path_component) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_string(),
            });
        }
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(invalid());
        }
        let digest = match digest {
            Some(d) => Some(
                Digest::parse(d).map_err(|source| ReferenceError::InvalidDigest {
                    input: input.to_string(),
                    source,
                })?,
            ),
            None => None,
        };
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry: `docker.io`, `localhost:5000`, `[::1]:5000`, ...
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry: `library/hello`, `myuser/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`: `docker.io/library/hello`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as Docker prints it: `hello`, `myuser/app`, `localhost:5000/app`.
    ///
    /// A Docker Hub path whose first component would read as a registry (`docker.io/ghcr.io/x`,
    /// `docker.io/localhost/x`) keeps its `docker.io/`: without it the name would print as, and
    /// parse back to, an image on another registry (found by fuzzing; Docker prints these
    /// ambiguously).
    pub fn familiar_repository(&self) -> String {
        let looks_like_domain =
            |first: &str| first.contains('.') || first.contains(':') || first == "localhost";
        if self.domain == DEFAULT_DOMAIN {
            let first = self.path.split('/').next().unwrap_or_default();
            if self.path.contains('/') && looks_like_domain(first) {
                return self.repository();
            }
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The reference as Docker prints it: `hello:1`, `hello@sha256:...`, `hello:1@sha256:...`.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_repository())
    }

    /// The fully qualified form: `docker.io/library/hello:1`.
    pub fn canonical(&self) -> String {
        self.with_suffix(self.repository())
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
        s
    }

    /// The same repository with `tag` (replacing any tag; a digest is kept, as Docker does).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same reference without its digest (the tag, if any, is kept; none is added).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// As [`Reference::parse`] (the `latest` tag is added).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl TryFrom<&str> for Reference {
    type Error = ReferenceError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical())
    }
}

impl<'de> Deserialize<'de> for Reference {
    /// Reads the canonical string back; no default tag is added, so a tag-less reference
    /// (digest only, or [`Reference::without_digest`]) round-trips unchanged.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse_no_default_tag(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> ReferenceError {
        match Reference::parse(s) {
            Ok(r) => panic!("{s:?} accepted as {r}"),
            Err(e) => e,
        }
    }

    #[test]
    fn normalises_official_images() {
        let r = p("hello");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/hello");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.repository(), "docker.io/library/hello");
        assert_eq!(r.familiar_repository(), "hello");
        assert_eq!(r.familiar(), "hello:latest");
        assert_eq!(r.canonical(), "docker.io/library/hello:latest");
        assert_eq!(r.to_string(), r.canonical());
        for same in [
            "hello:latest",
            "library/hello",
            "docker.io/hello",
            "docker.io/library/hello:latest",
            "index.docker.io/hello",
            "index.docker.io/library/hello:latest",
        ] {
            assert_eq!(p(same), r, "{same}");
        }
    }

    #[test]
    fn user_repositories_and_registries() {
        let r = p("myuser/app:1.0");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "myuser/app");
        assert_eq!(r.familiar(), "myuser/app:1.0");
        assert_eq!(r.canonical(), "docker.io/myuser/app:1.0");

        let r = p("localhost:5000/app:v1");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "app");
        assert_eq!(r.familiar_repository(), "localhost:5000/app");
        assert_eq!(r.familiar(), "localhost:5000/app:v1");
        assert_eq!(r.canonical(), "localhost:5000/app:v1");

        let r = p("localhost/app");
        assert_eq!(r.domain(), "localhost");
        assert_eq!(r.familiar(), "localhost/app:latest");

        let r = p("ghcr.io/org/team/app");
        assert_eq!(r.domain(), "ghcr.io");
        assert_eq!(r.path(), "org/team/app");
        assert_eq!(r.familiar_repository(), "ghcr.io/org/team/app");

        let r = p("index.docker.io/myuser/app:2");
        assert_eq!(r.canonical(), "docker.io/myuser/app:2");
        assert_eq!(r.familiar(), "myuser/app:2");

        let r = p("docker.io/library/a/b");
        assert_eq!(r.familiar_repository(), "library/a/b");

        let r = p("127.0.0.1:5000/x");
        assert_eq!(r.domain(), "127.0.0.1:5000");
        let r = p("[::1]:5000/x:tag");
        assert_eq!(r.domain(), "[::1]:5000");
        assert_eq!(r.tag(), Some("tag"));
        let r = p("[fe80::1]/x");
        assert_eq!(r.domain(), "[fe80::1]");
        let r = p("Registry.Example.COM/x");
        assert_eq!(r.domain(), "Registry.Example.COM");
        let r = p("my-registry.io:443/a__b/c--d/e.f_g");
        assert_eq!(r.path(), "a__b/c--d/e.f_g");
    }

    #[test]
    fn without_domain_the_first_component_is_a_path() {
        // "localhost" alone is a name, and "localhost:5000" is name "localhost", tag "5000".
        let r = p("localhost");
        assert_eq!(r.repository(), "docker.io/library/localhost");
        let r = p("localhost:5000");
        assert_eq!(r.path(), "library/localhost");
        assert_eq!(r.tag(), Some("5000"));
        let r = p("foo/bar");
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "foo/bar");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{HEX}");
        let r = p(&format!("hello@{d}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(|d| d.hex()), Some(HEX));
        assert_eq!(r.familiar(), format!("hello@{d}"));
        assert_eq!(r.canonical(), format!("docker.io/library/hello@{d}"));

        let r = p(&format!("hello:1@{d}"));
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.familiar(), format!("hello:1@{d}"));
        assert_eq!(r.canonical(), format!("docker.io/library/hello:1@{d}"));
        let w = r.without_digest();
        assert_eq!(w.canonical(), "docker.io/library/hello:1");
        assert_eq!(
            p(&format!("hello@{d}")).without_digest().canonical(),
            "docker.io/library/hello"
        );

        let r = p(&format!("localhost:5000/app@{d}"));
        assert_eq!(r.familiar(), format!("localhost:5000/app@{d}"));
    }

    #[test]
    fn bad_digests() {
        for s in [
            "hello@sha256:abc",
            &format!("hello@sha512:{HEX}"),
            &format!("hello@SHA256:{HEX}"),
            &format!("hello@sha256:{}", HEX.to_uppercase()),
            "hello@",
            &format!("hello@sha256:{HEX}@sha256:{HEX}"),
        ] {
            assert!(
                matches!(err(s), ReferenceError::InvalidDigest { .. }),
                "{s}"
            );
        }
        let e = err(&format!("hello@sha512:{HEX}"));
        assert!(e.to_string().contains("sha512"), "{e}");
    }

    #[test]
    fn no_default_tag() {
        let r = Reference::parse_no_default_tag("hello").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.familiar(), "hello");
        assert_eq!(r.canonical(), "docker.io/library/hello");
        assert_eq!(
            Reference::parse_no_default_tag("hello:2").unwrap().tag(),
            Some("2")
        );
    }

    #[test]
    fn with_tag() {
        let r = p("hello:1");
        let t = r.with_tag("2.0-rc_1").unwrap();
        assert_eq!(t.canonical(), "docker.io/library/hello:2.0-rc_1");
        let d = p(&format!("hello@sha256:{HEX}"));
        assert_eq!(
            d.with_tag("x").unwrap().familiar(),
            format!("hello:x@sha256:{HEX}")
        );
        for bad in ["", "-x", ".x", "a b", "a/b", "a:b", "a\0", &"a".repeat(129)] {
            assert_eq!(
                r.with_tag(bad),
                Err(ReferenceError::InvalidTag {
                    tag: bad.to_string()
                })
            );
        }
        assert!(r.with_tag(&"a".repeat(128)).is_ok());
        assert!(r.with_tag("_").is_ok());
    }

    #[test]
    fn tags() {
        assert_eq!(p("a:Tag_1.2-3").tag(), Some("Tag_1.2-3"));
        assert_eq!(
            p(&format!("a:{}", "t".repeat(128))).tag().map(str::len),
            Some(128)
        );
        for bad in [
            "a:",
            "a:-x",
            "a:.x",
            &format!("a:{}", "t".repeat(129)),
            "a:b:c",
            "a:t@",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uppercase_message_is_dockers() {
        let e = err("Hello");
        assert_eq!(
            e.to_string(),
            "invalid reference format: repository name (library/Hello) must be lowercase"
        );
        assert!(matches!(
            err("myuser/App:1"),
            ReferenceError::Uppercase { ref name, .. } if name == "myuser/App"
        ));
        assert!(matches!(
            err("localhost:5000/App"),
            ReferenceError::Uppercase { .. }
        ));
        // An uppercase tag is fine.
        assert_eq!(p("hello:LATEST").tag(), Some("LATEST"));
    }

    #[test]
    fn hex_identifiers_are_rejected() {
        let e = err(HEX);
        assert_eq!(
            e,
            ReferenceError::HexIdentifier {
                input: HEX.to_string()
            }
        );
        assert!(
            e.to_string()
                .contains("cannot specify 64-byte hexadecimal strings")
        );
        // Shorter or longer hex strings are ordinary names.
        assert_eq!(p(&HEX[..63]).path(), format!("library/{}", &HEX[..63]));
        assert!(Reference::parse(&format!("{HEX}0")).is_ok());
        assert!(Reference::parse(&format!("{HEX}:1")).is_ok());
        assert!(Reference::parse("cafe").is_ok());
    }

    #[test]
    fn hostile_inputs_are_invalid_format() {
        for s in [
            "",
            " ",
            "hello world",
            " hello",
            "hello ",
            "hello\n",
            "hel\0lo",
            "hello\t:1",
            "a//b",
            "/hello",
            "hello/",
            "../hello",
            "a/../b",
            "a/./b",
            "..",
            ".",
            "a..b",
            "a._b",
            "_a",
            "a_",
            "a___b",
            "-a",
            "a-",
            "héllo",
            "localhost:5000/",
            "localhost:/a",
            "localhost:50a0/a",
            "-bad.com/a",
            "bad-.com/a",
            "a..com/x",
            "[::1/x",
            "[]/x",
            "[::g]/x",
            "[::1]x/a",
            ":5000/a",
            "a@b:c",
            "a:b/c",
            ":tag",
            "@sha256:abc",
            "docker.io/",
        ] {
            let e = Reference::parse(s).err();
            assert!(
                matches!(
                    e,
                    Some(
                        ReferenceError::InvalidFormat { .. } | ReferenceError::InvalidDigest { .. }
                    )
                ),
                "{s:?}: {e:?}"
            );
        }
        assert_eq!(err("a//b").to_string(), "invalid reference format");
        assert_eq!(err("a\0").input(), "a\0");
    }

    #[test]
    fn name_length_limit() {
        // docker.io/library/ is 18 characters.
        let ok = "a".repeat(NAME_TOTAL_LENGTH_MAX - 18);
        assert_eq!(p(&ok).repository().len(), 255);
        let long = "a".repeat(NAME_TOTAL_LENGTH_MAX - 17);
        assert!(matches!(err(&long), ReferenceError::NameTooLong { .. }));
        let huge = format!("example.com/{}", "a/".repeat(100_000)) + "a";
        assert!(matches!(err(&huge), ReferenceError::NameTooLong { .. }));
        let e = err(&long).to_string();
        assert!(e.contains("255"), "{e}");
    }

    #[test]
    fn serde_is_canonical_string() {
        let r = p("hello:1");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/hello:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        // Tag-less references round-trip without gaining `latest`.
        let d = p(&format!("hello@sha256:{HEX}"));
        let back: Reference = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Reference>("\"Hello\"").is_err());
        assert!(serde_json::from_str::<Reference>("\"a b\"").is_err());
        assert!(serde_json::from_str::<Reference>("1").is_err());
    }

    #[test]
    fn from_str_and_ordering() {
        let a: Reference = "alpha".parse().unwrap();
        let b = Reference::try_from("beta").unwrap();
        assert!(a < b);
        assert!(p("docker.io/z") < p("ghcr.io/a"));
        let mut set = std::collections::HashSet::new();
        set.insert(p("hello"));
        set.insert(p("docker.io/library/hello:latest"));
        assert_eq!(set.len(), 1);
    }
}
