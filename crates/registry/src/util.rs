//! Small helpers: host names, canonical JSON, timestamps, retry pauses.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attempts of a download (the first one and two retries).
pub(crate) const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled before each further one.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The pause after failed attempt number `attempt` (1-based): 200 ms, 400 ms, ...
pub(crate) fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(16))
}

/// Splits `host[:port]` (`[v6]:port` for IPv6; a bare IPv6 address has no port). Returns the
/// host without brackets and the port, if any.
pub(crate) fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').filter(|p| !p.is_empty())),
            None => (rest, None),
        };
    }
    match host.matches(':').count() {
        1 => {
            let (h, p) = host.split_once(':').unwrap_or((host, ""));
            (h, (!p.is_empty()).then_some(p))
        }
        _ => (host, None),
    }
}

/// `localhost`, 127.0.0.0/8, ::1 (and `::ffff:127.x.y.z`).
pub(crate) fn is_loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// An `--insecure-registry` entry, normalised: trimmed, lowercase, without scheme or trailing
/// slashes.
pub(crate) fn normalize_insecure_entry(entry: &str) -> String {
    let e = entry.trim().to_ascii_lowercase();
    let e = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"))
        .unwrap_or(&e);
    e.trim_end_matches('/').to_string()
}

/// Serialises a JSON value canonically: object keys sorted (by their UTF-8 bytes, as
/// olpc-cjson and Go's encoding/json do for ASCII keys), no whitespace.
pub(crate) fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Serialising a string or a scalar into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// The current UTC time as RFC 3339 (`2024-05-01T12:34:56.123456789Z`).
pub(crate) fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    rfc3339(since.as_secs(), since.subsec_nanos())
}

/// Formats seconds (and nanoseconds) since the Unix epoch as RFC 3339 UTC.
pub(crate) fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    if nanos == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hosts_and_ports() {
        assert_eq!(split_host_port("localhost"), ("localhost", None));
        assert_eq!(
            split_host_port("localhost:5000"),
            ("localhost", Some("5000"))
        );
        assert_eq!(split_host_port("[::1]:5000"), ("::1", Some("5000")));
        assert_eq!(split_host_port("[::1]"), ("::1", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
        assert_eq!(split_host_port("fd00::1"), ("fd00::1", None));
        assert_eq!(split_host_port("host:"), ("host", None));
        assert_eq!(split_host_port(""), ("", None));
    }

    #[test]
    fn backoff_doubles_from_200ms() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
    }

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": null, "x": "é\n"} ], "c": true}});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":true,"z":[{"x":"é\n","y":null}]},"b":1}"#
        );
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_446_330_176, 15_925_234),
            "2015-10-31T22:22:56.015925234Z"
        );
        assert_eq!(rfc3339(4_102_444_799, 0), "2099-12-31T23:59:59Z");
        assert!(now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn normalizes_insecure_entries() {
        assert_eq!(
            normalize_insecure_entry(" HTTP://Reg.LAN:5000/ "),
            "reg.lan:5000"
        );
        assert_eq!(normalize_insecure_entry("reg"), "reg");
    }
}
