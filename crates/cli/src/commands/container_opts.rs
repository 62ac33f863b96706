//! The options `create` and `run` share, and how they become a `containers/create` body.

use anyhow::{Result, bail};
use berth_api::{
    ContainerConfig, ContainerCreateRequest, HostConfig, LogConfig, Mount, PortBinding,
    RestartPolicy,
};
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(
        short = 'e',
        long = "env",
        value_name = "list",
        allow_hyphen_values = true
    )]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount", value_parser = parse_mount)]
    pub mount: Vec<Mount>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Allow outbound connections to HOST[:PORT] or CIDR[:PORT] (Berth extension)
    #[arg(long = "allow-outbound", value_name = "list")]
    pub allow_outbound: Vec<String>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal", value_parser = parse_cpus, allow_negative_numbers = true)]
    pub cpus: Option<i64>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Connect a container to a network
    #[arg(long, value_name = "network")]
    pub network: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", value_parser = parse_memory)]
    pub memory: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int")]
    pub stop_timeout: Option<i64>,
    /// The image to create the container from
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// docker's `units.RAMInBytes`: a number with an optional binary unit (`b`, `k`, `m`, `g`, `t`,
/// `p`, optionally followed by `b`/`ib`), e.g. `512m`, `1.5g`, `1024`.
pub fn parse_memory(s: &str) -> Result<i64, String> {
    let err = || format!("invalid size: '{s}'");
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(err());
    }
    let value: f64 = num.parse().map_err(|_| err())?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let (letter, suffix) = match unit.chars().next() {
        Some(c) if "kmgtp".contains(c) => (Some(c), &unit[1..]),
        _ => (None, unit.as_str()),
    };
    if !matches!(suffix, "" | "b" | "i" | "ib") {
        return Err(err());
    }
    if letter.is_none() && suffix.starts_with('i') {
        return Err(err());
    }
    let mult: f64 = match letter {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024.0 * 1024.0,
        Some('g') => 1024.0 * 1024.0 * 1024.0,
        Some('t') => 1024f64.powi(4),
        _ => 1024f64.powi(5),
    };
    Ok((value * mult) as i64)
}

/// docker's `opts.ValidateEnv` for `-e`: `K=V` as is, `K` takes the client's value of `K` when
/// set, else stays `K` (which tells the daemon to unset it).
pub fn resolve_env(entry: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let (key, has_value) = match entry.split_once('=') {
        Some((k, _)) => (k, true),
        None => (entry, false),
    };
    if key.is_empty() {
        bail!("invalid environment variable: {entry}");
    }
    if has_value {
        return Ok(entry.to_string());
    }
    Ok(match lookup(key) {
        Some(v) => format!("{key}={v}"),
        None => entry.to_string(),
    })
}

/// docker's `opts.ParseEnvFile` over the text of an env file: `K=V` lines verbatim, `#`
/// comments and blank lines skipped, `K` alone takes the client's value (and is dropped when
/// the client has none).
pub fn parse_env_file(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, raw) in content.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let variable = variable.trim_start_matches([' ', '\t']);
        if variable.contains([' ', '\t']) {
            bail!("variable '{variable}' contains whitespaces");
        }
        if variable.is_empty() {
            bail!("no variable name on line '{line}'");
        }
        match value {
            Some(v) => out.push(format!("{variable}={v}")),
            None => {
                if let Some(v) = lookup(variable) {
                    out.push(format!("{variable}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// `-l K=V` (`-l K` means an empty value).
pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.trim().is_empty() {
            bail!("invalid label '{l}': empty name");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// One port binding of `HostConfig.PortBindings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub host_ip: String,
    pub host_port: String,
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    if a == 0 || b < a {
        return None;
    }
    Some((a, b))
}

/// docker's `nat.ParsePortSpecs` for one `-p` value:
/// `[ip:][hostPort:]containerPort[/proto]`, with ranges (`8080-8081:80-81`) and bracketed IPv6
/// addresses. Returns `(port/proto, binding)` pairs.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, Binding)>> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let (ip, host, container) = if let Some(stripped) = rest.strip_prefix('[') {
        let Some((ip, after)) = stripped.split_once(']') else {
            bail!("invalid IP address: {rest}");
        };
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| anyhow::anyhow!("invalid port format: {spec}"))?;
        let (host, container) = after
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("invalid port format: {spec}"))?;
        (ip.to_string(), host.to_string(), container.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [c] => (String::new(), String::new(), c.to_string()),
            [h, c] => (String::new(), h.to_string(), c.to_string()),
            [ip, h, c] => (ip.to_string(), h.to_string(), c.to_string()),
            _ => bail!("invalid port format: {spec}"),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {spec}<empty>");
    }
    let (c_start, c_end) = parse_port_range(&container)
        .ok_or_else(|| anyhow::anyhow!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_port_range(&host).ok_or_else(|| anyhow::anyhow!("invalid hostPort: {host}"))?)
    };
    let c_len = c_end - c_start;
    if let Some((h_start, h_end)) = host_range
        && c_len != 0
        && h_end - h_start != c_len
    {
        bail!("invalid ranges specified for container and host Ports: {container} and {host}");
    }
    let mut out = Vec::new();
    for i in 0..=c_len {
        let port = c_start + i;
        let host_port = match host_range {
            None => String::new(),
            Some((h_start, h_end)) => {
                if c_len == 0 {
                    if h_start == h_end {
                        h_start.to_string()
                    } else {
                        format!("{h_start}-{h_end}")
                    }
                } else {
                    (h_start + i).to_string()
                }
            }
        };
        out.push((
            format!("{port}/{proto}"),
            Binding {
                host_ip: ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// docker's `opts.ParseRestartPolicy` plus its validation.
pub fn parse_restart(policy: &str) -> Result<RestartPolicy> {
    if policy.is_empty() {
        return Ok(RestartPolicy {
            name: Some("no".into()),
            maximum_retry_count: Some(0),
        });
    }
    let (name, count) = match policy.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (policy, None),
    };
    if count.is_some() && name.is_empty() {
        bail!("invalid restart policy format: no policy provided before colon");
    }
    let count = match count {
        Some(c) if !c.is_empty() => c.parse::<i64>().map_err(|_| {
            anyhow::anyhow!("invalid restart policy format: maximum retry count must be an integer")
        })?,
        _ => 0,
    };
    match name {
        "no" | "always" | "unless-stopped" => {
            if count != 0 {
                bail!(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                );
            }
        }
        "on-failure" => {
            if count < 0 {
                bail!("invalid restart policy: maximum retry count cannot be negative");
            }
        }
        other => bail!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
    }
    Ok(RestartPolicy {
        name: Some(name.to_string()),
        maximum_retry_count: Some(count),
    })
}

/// Split one line of CSV the way Go's `encoding/csv` reads a `--mount` value: fields separated
/// by `,`, a field starting with `"` is quoted (`""` is a literal quote).
pub fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A `./rel` or `.` source made absolute against the current directory, as docker does for
/// bind sources.
fn absolutize(source: &str) -> String {
    if (source == "." || source.starts_with("./"))
        && let Ok(cwd) = std::env::current_dir()
    {
        let rel = source.trim_start_matches('.').trim_start_matches('/');
        let joined = if rel.is_empty() { cwd } else { cwd.join(rel) };
        return joined.to_string_lossy().into_owned();
    }
    source.to_string()
}

/// docker's `opts.MountOpt.Set` for one `--mount` value:
/// `type=volume|bind|tmpfs,source|src=..,target|destination|dst=..,readonly|ro[=bool],`
/// `volume-opt=k=v,volume-label=k=v,volume-driver=..,volume-nocopy,bind-propagation=..,`
/// `tmpfs-size=..,tmpfs-mode=..`; the type defaults to `volume`. Besides docker's own checks it
/// applies the daemon's (a bind needs a source, a tmpfs must not have one) so that the user
/// gets the error before anything is sent.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("value is empty".into());
    }
    let fields = split_csv(value)?;
    let mut kind = "volume".to_string();
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut read_only = false;
    let mut volume: Option<Map> = None;
    let mut bind: Option<Map> = None;
    let mut tmpfs: Option<Map> = None;
    type Map = serde_json::Map<String, Value>;
    fn kv_into(obj: &mut Map, key: &str, val: &str) {
        let (k, v) = val.split_once('=').unwrap_or((val, ""));
        if k.is_empty() {
            return;
        }
        let map = obj
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = map.as_object_mut() {
            m.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => read_only = true,
                "volume-nocopy" => {
                    volume
                        .get_or_insert_with(Map::new)
                        .insert("NoCopy".into(), Value::Bool(true));
                }
                "bind-nonrecursive" => {
                    bind.get_or_insert_with(Map::new)
                        .insert("NonRecursive".into(), Value::Bool(true));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let bad = || format!("invalid value for {key}: {val}");
        match key.as_str() {
            "type" => kind = val.to_ascii_lowercase(),
            "source" | "src" => source = Some(absolutize(val)),
            "target" | "dst" | "destination" => target = Some(val.to_string()),
            "readonly" | "ro" => read_only = parse_go_bool(val).ok_or_else(bad)?,
            "consistency" => {}
            "bind-propagation" => {
                bind.get_or_insert_with(Map::new).insert(
                    "Propagation".into(),
                    Value::String(val.to_ascii_lowercase()),
                );
            }
            "bind-nonrecursive" => {
                let b = parse_go_bool(val).ok_or_else(bad)?;
                bind.get_or_insert_with(Map::new)
                    .insert("NonRecursive".into(), Value::Bool(b));
            }
            "volume-nocopy" => {
                let b = parse_go_bool(val)
                    .ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?;
                volume
                    .get_or_insert_with(Map::new)
                    .insert("NoCopy".into(), Value::Bool(b));
            }
            "volume-label" => kv_into(volume.get_or_insert_with(Map::new), "Labels", val),
            "volume-driver" => {
                let v = volume.get_or_insert_with(Map::new);
                let dc = v
                    .entry("DriverConfig")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(dc) = dc.as_object_mut() {
                    dc.insert("Name".into(), Value::String(val.to_string()));
                }
            }
            "volume-opt" => {
                let v = volume.get_or_insert_with(Map::new);
                let dc = v
                    .entry("DriverConfig")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(dc) = dc.as_object_mut() {
                    kv_into(dc, "Options", val);
                }
            }
            "tmpfs-size" => {
                let size = parse_memory(val).map_err(|_| bad())?;
                tmpfs
                    .get_or_insert_with(Map::new)
                    .insert("SizeBytes".into(), json!(size));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(val, 8).map_err(|_| bad())?;
                tmpfs
                    .get_or_insert_with(Map::new)
                    .insert("Mode".into(), json!(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if kind.is_empty() {
        return Err("type is required".into());
    }
    let target = target.filter(|t| !t.is_empty());
    if target.is_none() {
        return Err("target is required".into());
    }
    if volume.is_some() && kind != "volume" {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{kind}'"
        ));
    }
    if bind.is_some() && kind != "bind" {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{kind}'"
        ));
    }
    if tmpfs.is_some() && kind != "tmpfs" {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{kind}'"
        ));
    }
    match kind.as_str() {
        "volume" => {}
        "bind" => {
            if source.as_deref().unwrap_or("").is_empty() {
                return Err(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                );
            }
        }
        "tmpfs" => {
            if source.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified"
                        .into(),
                );
            }
        }
        other => {
            return Err(format!(
                "mount type unknown: '{other}' (supported: volume, bind, tmpfs)"
            ));
        }
    }
    Ok(Mount {
        kind: Some(kind),
        source: source.filter(|s| !s.is_empty()),
        target,
        read_only: read_only.then_some(true),
        volume_options: volume.map(Value::Object),
        bind_options: bind.map(Value::Object),
        tmpfs_options: tmpfs.map(Value::Object),
    })
}

/// docker's `--tmpfs` handling: `/path[:opts]` becomes `Tmpfs["/path"] = "opts"`.
pub fn parse_tmpfs(specs: &[String]) -> BTreeMap<String, String> {
    specs
        .iter()
        .map(|t| {
            let (k, v) = t.split_once(':').unwrap_or((t.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// docker's `opts.NanoCPUs`: a rational number (`1.5`, `3/2`, `2e-1`) of CPUs, in units of
/// 10^-9 CPUs.
pub fn parse_cpus(value: &str) -> Result<i64, String> {
    let not_rational = || format!("failed to parse {value} as a rational number");
    let too_precise = || "value is too precise".to_string();
    let too_large = || "value is too large".to_string();
    const NANO: i128 = 1_000_000_000;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (neg, body) = match value.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let nanos: i128 = if let Some((a, b)) = body.split_once('/') {
        if !digits(a) || !digits(b) {
            return Err(not_rational());
        }
        let a: i128 = a.parse().map_err(|_| too_large())?;
        let b: i128 = b.parse().map_err(|_| too_large())?;
        if b == 0 {
            return Err(not_rational());
        }
        let n = a.checked_mul(NANO).ok_or_else(too_large)?;
        if n % b != 0 {
            return Err(too_precise());
        }
        n / b
    } else {
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = &body[i + 1..];
                let e_digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if !digits(e_digits) {
                    return Err(not_rational());
                }
                (&body[..i], e.parse::<i32>().map_err(|_| not_rational())?)
            }
            None => (body, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int.is_empty() && frac.is_empty())
            || !(int.is_empty() || digits(int))
            || !(frac.is_empty() || digits(frac))
        {
            return Err(not_rational());
        }
        let all = format!("{int}{frac}");
        let all = all.trim_start_matches('0');
        let mut n: i128 = if all.is_empty() {
            0
        } else {
            all.parse().map_err(|_| too_large())?
        };
        let scale = exp - frac.len() as i32 + 9;
        if n != 0 {
            if scale >= 0 {
                for _ in 0..scale {
                    n = n.checked_mul(10).ok_or_else(too_large)?;
                }
            } else {
                for _ in 0..(-scale) {
                    if n % 10 != 0 {
                        return Err(too_precise());
                    }
                    n /= 10;
                }
            }
        }
        n
    };
    let nanos = if neg { -nanos } else { nanos };
    i64::try_from(nanos).map_err(|_| too_large())
}

/// docker's `opts.ConvertKVStringsToMap` (`--log-opt`, `--label`, `-o`): `k=v`, or `k` alone
/// for an empty value.
pub fn kv_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// docker's `parseLoggingOpts`: the `HostConfig.LogConfig` of `--log-driver` and `--log-opt`.
pub fn parse_log_config(driver: Option<&str>, opts: &[String]) -> Result<LogConfig> {
    let driver = driver.unwrap_or("");
    if driver == "none" && !opts.is_empty() {
        bail!("invalid logging opts for driver {driver}");
    }
    Ok(LogConfig {
        kind: Some(driver.to_string()),
        config: Some(kv_map(opts)),
    })
}

/// docker's `--expose` handling: `PORT[/PROTO]` or `START-END[/PROTO]`, each port becoming an
/// `ExposedPorts` key `port/proto`.
pub fn parse_expose(spec: &str) -> Result<Vec<String>> {
    if spec.contains(':') {
        bail!("invalid port format for --expose: {spec}");
    }
    let parts: Vec<&str> = spec.split('/').collect();
    let (proto, port) = if spec.is_empty() || parts[0].is_empty() {
        ("", "")
    } else if parts.len() == 1 || parts[1].is_empty() {
        ("tcp", parts[0])
    } else {
        (parts[1], parts[0])
    };
    let range_err =
        |why: String| anyhow::anyhow!("invalid range format for --expose: {spec}, error: {why}");
    let parse_u16 = |s: &str| {
        s.parse::<u16>().map_err(|_| {
            range_err(format!(
                "strconv.ParseUint: parsing {}: invalid syntax",
                go_quote_simple(s)
            ))
        })
    };
    if port.is_empty() {
        return Err(range_err("empty string specified for ports".into()));
    }
    let (start, end) = match port.split_once('-') {
        None => {
            let p = parse_u16(port)?;
            (p, p)
        }
        Some((a, b)) => {
            let b = b.split('-').next().unwrap_or(b);
            let (a, b) = (parse_u16(a)?, parse_u16(b)?);
            if b < a {
                return Err(range_err(format!(
                    "invalid range specified for port: {port}"
                )));
            }
            (a, b)
        }
    };
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn go_quote_simple(s: &str) -> String {
    crate::format::go_quote(s)
}

/// `--allow-outbound` values are passed to the daemon as they are (it parses
/// `HOST[:PORT]`/`CIDR[:PORT]`); only empty values are refused here.
pub fn parse_allow_outbound(list: &[String]) -> Result<Option<Vec<String>>> {
    if list.is_empty() {
        return Ok(None);
    }
    for v in list {
        if v.trim().is_empty() {
            bail!("invalid argument \"{v}\" for \"--allow-outbound\" flag: empty destination");
        }
    }
    Ok(Some(list.to_vec()))
}

/// docker's `-v` handling on the client side: a `.`/`./...` host part is made absolute.
pub fn normalize_bind(spec: &str) -> String {
    match spec.split_once(':') {
        Some((host, rest)) if host == "." || host.starts_with("./") => {
            format!("{}:{rest}", absolutize(host))
        }
        _ => spec.to_string(),
    }
}

/// Network modes that are not user-defined networks (no endpoint config is sent for them).
fn is_builtin_network(mode: &str) -> bool {
    matches!(mode, "default" | "bridge" | "host" | "none") || mode.starts_with("container:")
}

/// The create body and the name to pass in the query.
pub struct CreateSpec {
    /// The body: the typed [`ContainerCreateRequest`] plus what it does not model
    /// (`NetworkingConfig`).
    pub body: Value,
    pub name: Option<String>,
    pub image: String,
}

impl ContainerOpts {
    /// Build the `containers/create` body. `detach` is true for `run -d`.
    pub fn to_spec(
        &self,
        detach: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CreateSpec> {
        let restart = parse_restart(self.restart.as_deref().unwrap_or(""))?;
        if self.rm && restart.name.as_deref().is_some_and(|n| n != "no") {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        let mut env = Vec::new();
        for file in &self.env_file {
            let content = std::fs::read(file)
                .map_err(|e| anyhow::anyhow!("open {}: {}", file.display(), io_reason(&e)))?;
            let content = String::from_utf8(content).map_err(|_| {
                anyhow::anyhow!("env file {} contains invalid utf8 bytes", file.display())
            })?;
            env.extend(
                parse_env_file(&content, lookup)
                    .map_err(|e| anyhow::anyhow!("poorly formatted environment: {e}"))?,
            );
        }
        for e in &self.env {
            env.push(resolve_env(e, lookup)?);
        }
        let labels = parse_labels(&self.label)?;
        let mut exposed: BTreeMap<String, Value> = BTreeMap::new();
        let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
        for p in &self.publish {
            for (key, b) in parse_publish(p)? {
                exposed.insert(key.clone(), json!({}));
                bindings
                    .entry(key)
                    .or_default()
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: b.host_ip,
                        host_port: b.host_port,
                    });
            }
        }
        for e in &self.expose {
            for key in parse_expose(e)? {
                exposed.entry(key).or_insert_with(|| json!({}));
            }
        }
        let log_config = parse_log_config(self.log_driver.as_deref(), &self.log_opt)?;
        let tmpfs = parse_tmpfs(&self.tmpfs);
        let allow_outbound = parse_allow_outbound(&self.allow_outbound)?;
        let entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        let attach = !detach;
        let config = ContainerConfig {
            hostname: Some(String::new()),
            domainname: Some(String::new()),
            user: Some(self.user.clone().unwrap_or_default()),
            attach_stdin: Some(attach && self.interactive),
            attach_stdout: Some(attach),
            attach_stderr: Some(attach),
            exposed_ports: if exposed.is_empty() {
                None
            } else {
                Some(exposed)
            },
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(attach && self.interactive),
            env: Some(env),
            cmd: if self.args.is_empty() {
                None
            } else {
                Some(self.args.clone())
            },
            image: Some(self.image.clone()),
            working_dir: Some(self.workdir.clone().unwrap_or_default()),
            entrypoint,
            labels: Some(labels),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            volumes: None,
        };
        let network_mode = self.network.clone().unwrap_or_else(|| "default".into());
        // `..default()` keeps this compiling when HostConfig gains fields
        #[allow(clippy::needless_update)]
        let host_config = HostConfig {
            auto_remove: Some(self.rm),
            network_mode: Some(network_mode.clone()),
            restart_policy: Some(restart),
            binds: if self.volume.is_empty() {
                None
            } else {
                Some(self.volume.iter().map(|v| normalize_bind(v)).collect())
            },
            readonly_rootfs: Some(self.read_only),
            memory: Some(self.memory.unwrap_or(0)),
            port_bindings: Some(bindings),
            publish_all_ports: Some(self.publish_all),
            mounts: if self.mount.is_empty() {
                None
            } else {
                Some(self.mount.clone())
            },
            tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
            nano_cpus: Some(self.cpus.unwrap_or(0)),
            log_config: Some(log_config),
            allow_outbound,
            ..HostConfig::default()
        };
        let req = ContainerCreateRequest {
            config,
            host_config: Some(host_config),
        };
        let mut body = serde_json::to_value(&req)?;
        // docker sends the endpoints of the networks named with --network
        let mut endpoints = serde_json::Map::new();
        if self.network.is_some() && !is_builtin_network(&network_mode) {
            endpoints.insert(network_mode, json!({}));
        }
        // docker omits the empty members of a mount (`omitempty`)
        if let Some(mounts) = body
            .pointer_mut("/HostConfig/Mounts")
            .and_then(Value::as_array_mut)
        {
            for m in mounts.iter_mut().filter_map(Value::as_object_mut) {
                m.retain(|_, v| !v.is_null());
            }
        }
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "NetworkingConfig".into(),
                json!({ "EndpointsConfig": endpoints }),
            );
        }
        Ok(CreateSpec {
            body,
            name: self.name.clone(),
            image: self.image.clone(),
        })
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The client's environment, for `-e K` and env files.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var_os(key).map(|v| v.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1k"), Ok(1024));
        assert_eq!(parse_memory("1K"), Ok(1024));
        assert_eq!(parse_memory("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("512mb"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_memory("2g"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_memory("1.5g"), Ok(1536 * 1024 * 1024));
        assert_eq!(parse_memory("1GiB"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_memory("10b"), Ok(10));
        assert_eq!(parse_memory("1 m"), Ok(1024 * 1024));
        assert_eq!(parse_memory("x"), Err("invalid size: 'x'".into()));
        assert!(parse_memory("1x").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("-1m").is_err());
        assert!(parse_memory("1mm").is_err());
    }

    #[test]
    fn env_from_client_environment() {
        let lookup = env_of(&[("HOME", "/root"), ("EMPTY", "")]);
        assert_eq!(resolve_env("A=1", &lookup).unwrap(), "A=1");
        assert_eq!(resolve_env("A=", &lookup).unwrap(), "A=");
        assert_eq!(resolve_env("A=b=c", &lookup).unwrap(), "A=b=c");
        assert_eq!(resolve_env("HOME", &lookup).unwrap(), "HOME=/root");
        assert_eq!(resolve_env("EMPTY", &lookup).unwrap(), "EMPTY=");
        assert_eq!(resolve_env("UNSET", &lookup).unwrap(), "UNSET");
        assert!(resolve_env("=x", &lookup).is_err());
    }

    #[test]
    fn env_files() {
        let lookup = env_of(&[("FROM_ENV", "yes")]);
        let content = "\u{feff}# comment\n\nA=1\n  B=two words  \nC=\nFROM_ENV\nNOT_SET\n   # indented comment\nD=x=y\n";
        assert_eq!(
            parse_env_file(content, &lookup).unwrap(),
            vec!["A=1", "B=two words  ", "C=", "FROM_ENV=yes", "D=x=y"]
        );
        assert_eq!(
            parse_env_file("=x\n", &lookup).unwrap_err().to_string(),
            "no variable name on line '=x'"
        );
        assert_eq!(
            parse_env_file("A B=1\n", &lookup).unwrap_err().to_string(),
            "variable 'A B' contains whitespaces"
        );
        assert_eq!(parse_env_file("", &lookup).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_env_file("X=1\r\nY=2\r\n", &lookup).unwrap(),
            vec!["X=1", "Y=2"]
        );
        assert!(parse_env_file("FROM_ENV \n", &lookup).is_err());
    }

    #[test]
    fn publish_specs() {
        let b = |ip: &str, port: &str| Binding {
            host_ip: ip.into(),
            host_port: port.into(),
        };
        assert_eq!(
            parse_publish("80").unwrap(),
            vec![("80/tcp".into(), b("", ""))]
        );
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![("80/tcp".into(), b("", "8080"))]
        );
        assert_eq!(
            parse_publish("127.0.0.1:9090:90/udp").unwrap(),
            vec![("90/udp".into(), b("127.0.0.1", "9090"))]
        );
        assert_eq!(
            parse_publish("127.0.0.1::90").unwrap(),
            vec![("90/tcp".into(), b("127.0.0.1", ""))]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            vec![("80/tcp".into(), b("::1", "8080"))]
        );
        assert_eq!(
            parse_publish("8080-8081:80-81").unwrap(),
            vec![
                ("80/tcp".into(), b("", "8080")),
                ("81/tcp".into(), b("", "8081"))
            ]
        );
        assert_eq!(
            parse_publish("8080-8090:80").unwrap(),
            vec![("80/tcp".into(), b("", "8080-8090"))]
        );
        assert!(parse_publish("8080-8082:80-81").is_err());
        assert!(parse_publish("abc").is_err());
        assert!(parse_publish("80/xyz").is_err());
        assert!(parse_publish("1:2:3:4").is_err());
        assert!(parse_publish("nope:80:80").is_err());
        assert!(parse_publish("70000").is_err());
    }

    #[test]
    fn restart_policies() {
        let p = parse_restart("on-failure:3").unwrap();
        assert_eq!(p.name.as_deref(), Some("on-failure"));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert_eq!(parse_restart("").unwrap().name.as_deref(), Some("no"));
        assert_eq!(
            parse_restart("always").unwrap().name.as_deref(),
            Some("always")
        );
        assert!(parse_restart("always:3").is_err());
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart(":3").is_err());
        assert!(parse_restart("on-failure:x").is_err());
    }

    fn opts(image: &str) -> ContainerOpts {
        ContainerOpts {
            image: image.into(),
            ..ContainerOpts::default()
        }
    }

    #[test]
    fn create_body() {
        let mut o = opts("hello:1");
        o.args = vec!["-x".into(), "--y".into()];
        o.env = vec!["A=1".into(), "HOME".into()];
        o.label = vec!["k=v".into(), "flag".into()];
        o.publish = vec!["8080:80".into()];
        o.volume = vec!["/srv:/data:ro".into()];
        o.memory = Some(1024);
        o.rm = true;
        o.entrypoint = Some(String::new());
        o.interactive = true;
        let spec = o.to_spec(false, &env_of(&[("HOME", "/h")])).unwrap();
        let b = &spec.body;
        assert_eq!(b["Image"], "hello:1");
        assert_eq!(b["Cmd"], json!(["-x", "--y"]));
        assert_eq!(b["Env"], json!(["A=1", "HOME=/h"]));
        assert_eq!(b["Labels"], json!({"flag": "", "k": "v"}));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        assert_eq!(b["HostConfig"]["Binds"], json!(["/srv:/data:ro"]));
        assert_eq!(b["HostConfig"]["Memory"], 1024);
        assert_eq!(b["HostConfig"]["NetworkMode"], "default");
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        // it must still parse as the typed request
        let typed: ContainerCreateRequest = serde_json::from_value(b.clone()).unwrap();
        assert_eq!(typed.config.image.as_deref(), Some("hello:1"));

        let spec = opts("img").to_spec(true, &env_of(&[])).unwrap();
        assert_eq!(spec.body["Cmd"], Value::Null);
        assert_eq!(spec.body["Entrypoint"], Value::Null);
        assert_eq!(spec.body["AttachStdout"], false);
    }

    #[test]
    fn rm_conflicts_with_restart() {
        let mut o = opts("img");
        o.rm = true;
        o.restart = Some("always".into());
        assert_eq!(
            o.to_spec(false, &env_of(&[])).err().unwrap().to_string(),
            "conflicting options: cannot specify both --restart and --rm"
        );
        o.restart = Some("no".into());
        assert!(o.to_spec(false, &env_of(&[])).is_ok());
    }

    #[test]
    fn mount_specs() {
        let m =
            parse_mount("type=volume,source=data,target=/data,readonly,volume-opt=a=b").unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true,
                   "VolumeOptions": {"DriverConfig": {"Options": {"a": "b"}}}})
        );
        let m = parse_mount("type=bind,src=/h,dst=/b").unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"Type": "bind", "Source": "/h", "Target": "/b", "ReadOnly": null})
        );
        let m = parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        assert_eq!(m.kind.as_deref(), Some("tmpfs"));
        assert_eq!(m.source, None);
        assert_eq!(
            m.tmpfs_options,
            Some(json!({"SizeBytes": 1048576, "Mode": 1023}))
        );
        // type defaults to volume; ro=false, keys are case-insensitive; quoted CSV fields
        let m = parse_mount("target=/x,RO=false,\"source=a,b\"").unwrap();
        assert_eq!(m.kind.as_deref(), Some("volume"));
        assert_eq!(m.read_only, None);
        assert_eq!(m.source.as_deref(), Some("a,b"));
        assert_eq!(parse_mount("target=/x,ro=1").unwrap().read_only, Some(true));
        // anonymous volume
        assert_eq!(parse_mount("type=volume,dst=/v").unwrap().source, None);
        let m =
            parse_mount("type=volume,target=/v,volume-nocopy,volume-label=k=v,volume-driver=local")
                .unwrap();
        assert_eq!(
            m.volume_options,
            Some(json!({"NoCopy": true, "Labels": {"k": "v"}, "DriverConfig": {"Name": "local"}}))
        );
        // relative bind sources become absolute
        let m = parse_mount("type=bind,source=./sub,target=/s").unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(m.source.unwrap(), cwd.join("sub").to_string_lossy());

        let err = |s: &str| parse_mount(s).unwrap_err();
        assert_eq!(err("type=bind,source=/x"), "target is required");
        assert_eq!(err("type=volume,target="), "target is required");
        assert_eq!(err(""), "value is empty");
        assert_eq!(err("type=,target=/x"), "type is required");
        assert_eq!(
            err("type=bind,target=/x"),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err("type=tmpfs,source=x,target=/x"),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        assert_eq!(
            err("target=/x,foo"),
            "invalid field 'foo' must be a key=value pair"
        );
        assert_eq!(err("target=/x,foo=1"), "unexpected key 'foo' in 'foo=1'");
        assert_eq!(
            err("type=tmpfs,target=/x,volume-opt=a=b"),
            "cannot mix 'volume-*' options with mount type 'tmpfs'"
        );
        assert_eq!(
            err("type=volume,target=/x,tmpfs-size=1m"),
            "cannot mix 'tmpfs-*' options with mount type 'volume'"
        );
        assert_eq!(
            err("type=volume,target=/x,bind-propagation=rshared"),
            "cannot mix 'bind-*' options with mount type 'volume'"
        );
        assert_eq!(err("target=/x,ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(
            err("type=tmpfs,target=/x,tmpfs-size=zz"),
            "invalid value for tmpfs-size: zz"
        );
        assert_eq!(
            err("type=tmpfs,target=/x,tmpfs-mode=99"),
            "invalid value for tmpfs-mode: 99"
        );
        assert!(err("type=npipe,target=/x").starts_with("mount type unknown"));
        assert!(err("target=/x,\"src=a").contains("quoted-field"));
    }

    #[test]
    fn csv_fields() {
        assert_eq!(split_csv("a,b,,c").unwrap(), vec!["a", "b", "", "c"]);
        assert_eq!(
            split_csv("\"x,\"\"y\"\"\",z").unwrap(),
            vec!["x,\"y\"", "z"]
        );
        assert!(split_csv("a\"b").is_err());
        assert!(split_csv("\"ab\"c").is_err());
    }

    #[test]
    fn tmpfs_specs() {
        let t = parse_tmpfs(&["/run".into(), "/tmp:rw,size=64m".into(), "/a:b:c".into()]);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"/run": "", "/tmp": "rw,size=64m", "/a": "b:c"})
        );
        assert!(parse_tmpfs(&[]).is_empty());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("1e3"), Ok(1_000_000_000_000));
        assert_eq!(parse_cpus("25e-2"), Ok(250_000_000));
        assert_eq!(parse_cpus("0.000000001"), Ok(1));
        assert_eq!(parse_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_cpus("0"), Ok(0));
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(parse_cpus("1/3"), Err("value is too precise".into()));
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus(".").is_err());
        assert!(parse_cpus("1/0").is_err());
        assert!(parse_cpus("1.5x").is_err());
        assert!(parse_cpus("1e").is_err());
        assert!(parse_cpus("1e30").is_err());
    }

    #[test]
    fn log_opts() {
        let lc = parse_log_config(
            Some("json-file"),
            &["max-size=1m".into(), "max-file=3".into()],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&lc).unwrap(),
            json!({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}})
        );
        // as docker: no driver is an empty type, `k` alone an empty value
        let lc = parse_log_config(None, &["maxsize".into(), "a=b=c".into()]).unwrap();
        assert_eq!(
            serde_json::to_value(&lc).unwrap(),
            json!({"Type": "", "Config": {"maxsize": "", "a": "b=c"}})
        );
        assert_eq!(
            parse_log_config(Some("none"), &["a=b".into()])
                .unwrap_err()
                .to_string(),
            "invalid logging opts for driver none"
        );
        assert!(parse_log_config(Some("none"), &[]).is_ok());
    }

    #[test]
    fn expose_specs() {
        assert_eq!(parse_expose("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec!["53/udp"]);
        assert_eq!(parse_expose("80/").unwrap(), vec!["80/tcp"]);
        assert_eq!(
            parse_expose("91-93/udp").unwrap(),
            vec!["91/udp", "92/udp", "93/udp"]
        );
        assert_eq!(
            parse_expose("abc").unwrap_err().to_string(),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse_expose("80-70").unwrap_err().to_string(),
            "invalid range format for --expose: 80-70, error: invalid range specified for port: 80-70"
        );
        assert_eq!(
            parse_expose("8080:80").unwrap_err().to_string(),
            "invalid port format for --expose: 8080:80"
        );
        assert!(parse_expose("").is_err());
        assert!(parse_expose("70000").is_err());
    }

    #[test]
    fn allow_outbound_passes_through() {
        assert_eq!(parse_allow_outbound(&[]).unwrap(), None);
        let list = vec![
            "api.example.com:443".to_string(),
            "10.0.0.0/8".into(),
            "10.1.2.3:5432".into(),
            "[::1]:80".into(),
        ];
        assert_eq!(parse_allow_outbound(&list).unwrap(), Some(list.clone()));
        assert!(parse_allow_outbound(&["".into()]).is_err());
    }

    #[test]
    fn bind_sources() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(normalize_bind("/a:/b:ro"), "/a:/b:ro");
        assert_eq!(normalize_bind("/data"), "/data");
        assert_eq!(normalize_bind("vol:/data"), "vol:/data");
        assert_eq!(
            normalize_bind("./x:/y"),
            format!("{}:/y", cwd.join("x").display())
        );
        assert_eq!(normalize_bind(".:/y"), format!("{}:/y", cwd.display()));
    }

    #[test]
    fn create_body_with_new_flags() {
        let mut o = opts("img");
        o.tmpfs = vec!["/run".into(), "/tmp:size=64m".into()];
        o.mount = vec![parse_mount("type=volume,src=data,dst=/data").unwrap()];
        o.publish_all = true;
        o.expose = vec!["90".into(), "91-92/udp".into()];
        o.publish = vec![
            "8080:80".into(),
            "127.0.0.1::81".into(),
            "9000-9001:9000-9001/udp".into(),
            "[::1]:8443:443".into(),
            "8444:443".into(),
        ];
        o.cpus = Some(parse_cpus("1.5").unwrap());
        o.log_driver = Some("json-file".into());
        o.log_opt = vec!["max-size=1m".into()];
        o.allow_outbound = vec!["example.com:443".into(), "10.0.0.0/8".into()];
        o.network = Some("mynet".into());
        let b = o.to_spec(true, &env_of(&[])).unwrap().body;
        let hc = &b["HostConfig"];
        assert_eq!(hc["Tmpfs"], json!({"/run": "", "/tmp": "size=64m"}));
        assert_eq!(
            hc["Mounts"],
            json!([{"Type": "volume", "Source": "data", "Target": "/data"}])
        );
        assert_eq!(hc["PublishAllPorts"], true);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(
            hc["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-size": "1m"}})
        );
        assert_eq!(
            hc["AllowOutbound"],
            json!(["example.com:443", "10.0.0.0/8"])
        );
        assert_eq!(hc["NetworkMode"], "mynet");
        assert_eq!(
            b["NetworkingConfig"],
            json!({"EndpointsConfig": {"mynet": {}}})
        );
        assert_eq!(
            hc["PortBindings"],
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "443/tcp": [{"HostIp": "::1", "HostPort": "8443"}, {"HostIp": "", "HostPort": "8444"}],
                "9000/udp": [{"HostIp": "", "HostPort": "9000"}],
                "9001/udp": [{"HostIp": "", "HostPort": "9001"}],
            })
        );
        assert_eq!(
            b["ExposedPorts"],
            json!({"80/tcp": {}, "81/tcp": {}, "443/tcp": {}, "90/tcp": {}, "91/udp": {},
                   "92/udp": {}, "9000/udp": {}, "9001/udp": {}})
        );
        // the typed request reads it back
        let typed: ContainerCreateRequest = serde_json::from_value(b.clone()).unwrap();
        let thc = typed.host_config.unwrap();
        assert_eq!(thc.nano_cpus, Some(1_500_000_000));
        assert_eq!(thc.mounts.unwrap()[0].target.as_deref(), Some("/data"));
        assert_eq!(
            thc.port_bindings.unwrap()["81/tcp"],
            Some(vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: String::new()
            }])
        );

        // defaults: what docker sends without these flags
        let b = opts("img").to_spec(true, &env_of(&[])).unwrap().body;
        let hc = &b["HostConfig"];
        assert_eq!(hc["PortBindings"], json!({}));
        assert_eq!(hc["PublishAllPorts"], false);
        assert_eq!(hc["NanoCpus"], 0);
        assert_eq!(hc["LogConfig"], json!({"Type": "", "Config": {}}));
        assert!(hc.get("Tmpfs").is_none() && hc.get("Mounts").is_none());
        assert!(hc.get("AllowOutbound").is_none());
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));
        let mut o = opts("img");
        o.network = Some("none".into());
        let b = o.to_spec(true, &env_of(&[])).unwrap().body;
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert_eq!(b["NetworkingConfig"], json!({"EndpointsConfig": {}}));

        let mut o = opts("img");
        o.expose = vec!["x".into()];
        assert!(o.to_spec(true, &env_of(&[])).is_err());
        let mut o = opts("img");
        o.log_driver = Some("none".into());
        o.log_opt = vec!["a=b".into()];
        assert!(o.to_spec(true, &env_of(&[])).is_err());
    }
}
