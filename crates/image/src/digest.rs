//! Validated OCI content digests.
//!
//! A [`Digest`] is always `sha256:` followed by exactly 64 lowercase hexadecimal characters:
//! it is the only algorithm Berth produces or accepts. Anything else (another algorithm,
//! uppercase hex, a wrong length, stray characters) is rejected when the value is built, so a
//! `Digest` can be used as a file name (`blobs/sha256/<hex>`) without further checks.
//!
//! [`Sha256Hasher`] computes a digest incrementally, for streams that do not fit in memory.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// The only algorithm accepted.
pub const SHA256: &str = "sha256";

/// Length of the hex part of a sha256 digest.
const HEX_LEN: usize = 64;

/// Length of a Docker short id (`docker images` prints the first 12 hex characters).
const SHORT_LEN: usize = 12;

/// Inputs longer than this are cut short (and escaped) when quoted in an error message.
const SHOWN_MAX: usize = 100;

/// Quotes a hostile input for an error message: escaped like Rust's `{:?}`, truncated.
pub(crate) fn shown(input: &str) -> String {
    if input.chars().count() <= SHOWN_MAX {
        format!("{input:?}")
    } else {
        let head: String = input.chars().take(SHOWN_MAX).collect();
        format!("{head:?}... ({} bytes)", input.len())
    }
}

/// Why a string is not a valid digest. Every variant carries the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` prefix, or an empty algorithm or hex part.
    #[error("invalid digest {}: expected sha256:<64 lowercase hex characters>", shown(.input))]
    Malformed { input: String },
    /// A well-formed digest of an algorithm other than sha256.
    #[error("unsupported digest algorithm {} in {}: only sha256 is supported", shown(.algorithm), shown(.input))]
    UnsupportedAlgorithm { algorithm: String, input: String },
    /// The hex part is not 64 characters long.
    #[error("invalid sha256 digest {}: the hex part must be 64 characters, got {len}", shown(.input))]
    WrongLength { input: String, len: usize },
    /// The hex part contains something other than `[0-9a-f]` (uppercase is rejected too).
    #[error("invalid sha256 digest {}: the hex part must be lowercase hexadecimal [0-9a-f]", shown(.input))]
    InvalidHex { input: String },
}

/// A validated `sha256:<64 lowercase hex>` digest.
///
/// Ordering and hashing are those of the full string, so digests sort by their hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a hex part; `input` is what the error reports.
fn check_hex(hex: &str, input: &str) -> Result<(), DigestError> {
    if hex.is_empty() {
        return Err(DigestError::Malformed {
            input: input.to_string(),
        });
    }
    if !is_lower_hex(hex) {
        return Err(DigestError::InvalidHex {
            input: input.to_string(),
        });
    }
    if hex.len() != HEX_LEN {
        return Err(DigestError::WrongLength {
            input: input.to_string(),
            len: hex.len(),
        });
    }
    Ok(())
}

impl Digest {
    /// The digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest(format!("{SHA256}:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Builds a digest from the 64 lowercase hex characters of a sha256 (no `sha256:` prefix).
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, DigestError> {
        check_hex(hex, hex)?;
        Ok(Digest(format!("{SHA256}:{hex}")))
    }

    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::Malformed {
                input: input.to_string(),
            });
        };
        if algorithm.is_empty() {
            return Err(DigestError::Malformed {
                input: input.to_string(),
            });
        }
        if algorithm != SHA256 {
            return Err(DigestError::UnsupportedAlgorithm {
                algorithm: algorithm.to_string(),
                input: input.to_string(),
            });
        }
        check_hex(hex, input)?;
        Ok(Digest(input.to_string()))
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0[SHA256.len() + 1..]
    }

    /// The algorithm: always `sha256`.
    pub fn algorithm(&self) -> &str {
        SHA256
    }

    /// The first 12 hex characters, as Docker prints short image ids.
    pub fn short(&self) -> &str {
        &self.hex()[..SHORT_LEN]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Digest::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256, producing a [`Digest`].
#[derive(Clone, Default)]
pub struct Sha256Hasher {
    inner: Sha256,
}

impl Sha256Hasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest(format!("{SHA256}:{}", hex::encode(self.inner.finalize())))
    }
}

impl fmt::Debug for Sha256Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Hasher")
    }
}

impl std::io::Write for Sha256Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn sha256_of_known_vectors() {
        assert_eq!(Digest::sha256_of(b"").hex(), EMPTY);
        assert_eq!(
            Digest::sha256_of(b"hello").to_string(),
            format!("sha256:{HELLO}")
        );
    }

    #[test]
    fn hasher_matches_one_shot() {
        let mut h = Sha256Hasher::new();
        h.update(b"he");
        h.update(b"");
        h.update(b"llo");
        assert_eq!(h.finish(), Digest::sha256_of(b"hello"));
        assert_eq!(Sha256Hasher::new().finish().hex(), EMPTY);
    }

    #[test]
    fn hasher_as_io_write() {
        use std::io::Write;
        let mut h = Sha256Hasher::new();
        h.write_all(b"hello").unwrap();
        h.flush().unwrap();
        assert_eq!(h.finish().hex(), HELLO);
    }

    #[test]
    fn parse_roundtrip_and_accessors() {
        let s = format!("sha256:{HELLO}");
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d.as_str(), s);
        assert_eq!(d.hex(), HELLO);
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.short(), "2cf24dba5fb0");
        assert_eq!(Digest::try_from(s.as_str()).unwrap(), d);
        assert_eq!(Digest::try_from(s.clone()).unwrap(), d);
        assert_eq!(Digest::from_sha256_hex(HELLO).unwrap(), d);
        assert_eq!(String::from(d.clone()), s);
        assert_eq!(format!("{d:?}"), format!("Digest({s})"));
    }

    #[test]
    fn rejects_other_algorithms_naming_them() {
        let input = format!("sha512:{HELLO}{HELLO}");
        let err = Digest::parse(&input).unwrap_err();
        assert!(
            matches!(&err, DigestError::UnsupportedAlgorithm { algorithm, .. } if algorithm == "sha512")
        );
        assert!(err.to_string().contains("\"sha512\""), "{err}");
        assert!(err.to_string().contains("only sha256"), "{err}");
        let err = Digest::parse(&format!("SHA256:{HELLO}")).unwrap_err();
        assert!(matches!(err, DigestError::UnsupportedAlgorithm { .. }));
        let err = Digest::parse(&format!("md5:{HELLO}")).unwrap_err();
        assert!(err.to_string().contains("md5"));
    }

    #[test]
    fn rejects_uppercase_hex() {
        let upper = HELLO.to_uppercase();
        assert!(matches!(
            Digest::parse(&format!("sha256:{upper}")),
            Err(DigestError::InvalidHex { .. })
        ));
        assert!(matches!(
            Digest::from_sha256_hex(&upper),
            Err(DigestError::InvalidHex { .. })
        ));
    }

    #[test]
    fn rejects_wrong_length() {
        for hex in [&HELLO[..63], &format!("{HELLO}0")[..], &HELLO[..12]] {
            let err = Digest::parse(&format!("sha256:{hex}")).unwrap_err();
            assert_eq!(
                err,
                DigestError::WrongLength {
                    input: format!("sha256:{hex}"),
                    len: hex.len()
                }
            );
            assert!(Digest::from_sha256_hex(hex).is_err());
        }
    }

    #[test]
    fn rejects_malformed() {
        for input in [
            "",
            ":",
            "sha256",
            "sha256:",
            HELLO,
            &format!(":{HELLO}"),
            &format!("sha256:{HELLO}\n"),
            &format!(" sha256:{HELLO}"),
            &format!("sha256:{}\0", &HELLO[..63]),
            &format!("sha256: {}", &HELLO[..63]),
            &format!("sha256:{HELLO}:"),
            &format!("sha256:sha256:{HELLO}"),
            &format!("sha256:../../{}", &HELLO[..58]),
            &format!("sha256:{}g", &HELLO[..63]),
            &format!("sha256:{}é", &HELLO[..62]),
        ] {
            assert!(Digest::parse(input).is_err(), "accepted {input:?}");
        }
        assert!(Digest::from_sha256_hex("").is_err());
        assert!(Digest::from_sha256_hex(&format!("sha256:{HELLO}")).is_err());
    }

    #[test]
    fn errors_carry_input_and_truncate_display() {
        let long = format!("sha256:{}", "a".repeat(10_000));
        let err = Digest::parse(&long).unwrap_err();
        match &err {
            DigestError::WrongLength { input, len } => {
                assert_eq!(input, &long);
                assert_eq!(*len, 10_000);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().len() < 400, "{err}");
        let nul = format!("sha256:\0{}", &HELLO[1..]);
        let msg = Digest::parse(&nul).unwrap_err().to_string();
        assert!(msg.contains("\\0"), "{msg}");
        assert!(!msg.contains('\0'));
    }

    #[test]
    fn serde_roundtrip_and_validation() {
        let d = Digest::sha256_of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
        assert!(serde_json::from_str::<Digest>(&format!("\"sha512:{HELLO}\"")).is_err());
        assert!(serde_json::from_str::<Digest>("42").is_err());
        let err = serde_json::from_str::<Digest>("\"nope\"").unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }

    #[test]
    fn ordering_and_hash() {
        use std::collections::HashSet;
        let a = Digest::from_sha256_hex(&"0".repeat(64)).unwrap();
        let b = Digest::from_sha256_hex(&"f".repeat(64)).unwrap();
        assert!(a < b);
        let set: HashSet<Digest> = [a.clone(), a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(a.short(), "000000000000");
    }
}
