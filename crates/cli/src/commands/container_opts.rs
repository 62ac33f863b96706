//! The options `create` and `run` share, and how they become a `containers/create` body.

use anyhow::{Result, bail};
use berth_api::{ContainerConfig, ContainerCreateRequest, HostConfig, RestartPolicy};
use clap::Args;
use serde_json::{Map, Value, json};
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
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
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

/// The create body and the name to pass in the query.
pub struct CreateSpec {
    /// The body: the typed [`ContainerCreateRequest`] plus fields it does not model
    /// (`HostConfig.PortBindings`).
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
        let mut bindings: BTreeMap<String, Vec<Binding>> = BTreeMap::new();
        for p in &self.publish {
            for (key, b) in parse_publish(p)? {
                exposed.insert(key.clone(), json!({}));
                bindings.entry(key).or_default().push(b);
            }
        }
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
        };
        let host_config = HostConfig {
            auto_remove: Some(self.rm),
            network_mode: Some(self.network.clone().unwrap_or_else(|| "default".into())),
            restart_policy: Some(restart),
            binds: if self.volume.is_empty() {
                None
            } else {
                Some(self.volume.clone())
            },
            readonly_rootfs: Some(self.read_only),
            memory: Some(self.memory.unwrap_or(0)),
            ..HostConfig::default()
        };
        let req = ContainerCreateRequest {
            config,
            host_config: Some(host_config),
        };
        let mut body = serde_json::to_value(&req)?;
        let port_bindings: Map<String, Value> = bindings
            .into_iter()
            .map(|(k, bs)| {
                let list: Vec<Value> = bs
                    .into_iter()
                    .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                    .collect();
                (k, Value::Array(list))
            })
            .collect();
        if let Some(hc) = body.get_mut("HostConfig").and_then(Value::as_object_mut) {
            hc.insert("PortBindings".into(), Value::Object(port_bindings));
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
}
