//! `berth logs`

use crate::attach::write_output;
use crate::client::{Client, next_chunk, path_escape, query};
use crate::error::StatusError;
use anyhow::Result;
use berth_api::stream::Demuxer;
use clap::Args;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Go's `time.ParseDuration` (`1h30m`, `10s`, `1.5h`, `300ms`), in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * mult;
    }
    let ns = total as i128;
    Some(if neg { -ns } else { ns })
}

/// docker's `timetypes.GetTimestamp`: a Go duration is relative to `now` (unix seconds with
/// nanoseconds), RFC 3339 times and dates become `seconds.nanoseconds`, plain numbers pass through.
pub fn get_timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    if let Some(ns) = parse_go_duration(value) {
        let now_ns = now.timestamp() as i128 * 1_000_000_000 + now.timestamp_subsec_nanos() as i128;
        let t = now_ns - ns;
        return Ok(format!(
            "{}.{:09}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        ));
    }
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    // without a zone, the client's local time zone applies (as docker)
    let local = |t: chrono::NaiveDateTime| {
        t.and_local_timezone(chrono::Local)
            .earliest()
            .map(|t| fmt(t.with_timezone(&chrono::Utc)))
    };
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
    ] {
        if let Some(t) = chrono::NaiveDateTime::parse_from_str(value, f)
            .ok()
            .and_then(local)
        {
            return Ok(t);
        }
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
    {
        return Ok(t);
    }
    let numeric = value.split_once('.').map_or(value, |(s, _)| s);
    if !numeric.is_empty()
        && numeric
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        return Ok(value.to_string());
    }
    anyhow::bail!("failed to parse value as time or duration: {value:?}")
}

pub async fn run(client: &Client, args: LogsArgs) -> Result<i32> {
    let info: serde_json::Value = client
        .get_json(&format!(
            "/containers/{}/json",
            path_escape(&args.container)
        ))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = chrono::Utc::now();
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    if let Some(s) = &args.since {
        q.push((
            "since",
            get_timestamp(s, now).map_err(|e| StatusError::new(1, e.to_string()))?,
        ));
    }
    if let Some(u) = &args.until {
        q.push((
            "until",
            get_timestamp(u, now).map_err(|e| StatusError::new(1, e.to_string()))?,
        ));
    }
    if args.timestamps {
        q.push(("timestamps", "1".into()));
    }
    if args.follow {
        q.push(("follow", "1".into()));
    }
    q.push(("tail", args.tail.clone()));
    if args.details {
        q.push(("details", "1".into()));
    }
    let resp = client
        .get(&format!(
            "/containers/{}/logs{}",
            path_escape(&args.container),
            query(&q)
        ))
        .await?;
    let mut body = resp.into_body();
    let mut demux = Demuxer::default();
    while let Some(chunk) = next_chunk(&mut body).await? {
        if tty {
            write_output(1, &chunk);
        } else {
            for (stream, payload) in demux.push(&chunk) {
                write_output(stream, &payload);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(10_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("2024-01-01"), None);
        assert_eq!(parse_go_duration("abc"), None);
    }

    #[test]
    fn timestamps() {
        let now = chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(get_timestamp("10s", now).unwrap(), "1699999990.000000000");
        assert_eq!(get_timestamp("1m", now).unwrap(), "1699999940.000000000");
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert!(get_timestamp("2013-01-02", now).is_ok());
        assert!(get_timestamp("2013-01-02T13:23:37", now).is_ok());
        assert_eq!(get_timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(get_timestamp("1357133017.5", now).unwrap(), "1357133017.5");
        assert!(get_timestamp("yesterday", now).is_err());
    }
}
