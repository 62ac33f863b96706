//! `berth ps`

use super::out;
use crate::client::{Client, query};
use crate::format::{ListFormat, ellipsis, go_quote, go_time_string, truncate_id};
use anyhow::Result;
use berth_api::{ContainerSummary, Port, human_duration};
use clap::Args;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const DEFAULT_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

/// `-f key=value` flags as the API's `filters` JSON: `{"key":{"value":true}}`.
pub fn filters_json(filters: &[String]) -> Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut map: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            anyhow::bail!("bad format of filter (expected name=value)");
        };
        map.entry(k.trim().to_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(Some(serde_json::to_string(&map)?))
}

/// The column names of a `table` header.
pub fn header() -> Value {
    json!({
        "ID": "CONTAINER ID",
        "Image": "IMAGE",
        "Command": "COMMAND",
        "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED",
        "Ports": "PORTS",
        "Status": "STATUS",
        "State": "STATE",
        "Names": "NAMES",
        "Labels": "LABELS",
        "Mounts": "MOUNTS",
        "Networks": "NETWORKS",
        "LocalVolumes": "VOLUMES",
        "Size": "SIZE",
    })
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges, published ports as
/// `ip:public->private/proto`.
pub fn displayable_ports(ports: &[Port]) -> String {
    let mut ports: Vec<&Port> = ports.iter().collect();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| {
                a.ip.clone()
                    .unwrap_or_default()
                    .cmp(&b.ip.clone().unwrap_or_default())
            })
            .then_with(|| a.public_port.unwrap_or(0).cmp(&b.public_port.unwrap_or(0)))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut host_mappings = Vec::new();
    for p in ports {
        let current = p.private_port;
        let ip = p.ip.clone().unwrap_or_default();
        let mut key = p.kind.clone();
        if !ip.is_empty() {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                let host = if ip.contains(':') {
                    format!("[{ip}]:{public}")
                } else {
                    format!("{ip}:{public}")
                };
                host_mappings.push(format!("{host}->{}/{}", p.private_port, p.kind));
                continue;
            }
            key = format!("{ip}/{}", p.kind);
        }
        match open.get(&key) {
            None => {
                open.insert(key.clone(), groups.len());
                groups.push((key, current, current));
            }
            Some(&i) => {
                if current as u32 == groups[i].2 as u32 + 1 {
                    groups[i].2 = current;
                } else {
                    finished.push(form_group(&groups[i].0, groups[i].1, groups[i].2));
                    groups[i].1 = current;
                    groups[i].2 = current;
                }
            }
        }
    }
    let mut result = finished;
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, kind)) => (ip, kind),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{kind}")
}

/// What `ps` shows for a container's image.
fn image_column(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".into();
    }
    if trunc {
        let short = truncate_id(&c.image_id);
        if !short.is_empty() && short == truncate_id(&c.image) {
            return short;
        }
        if let Some((name, _digest)) = c.image.split_once('@') {
            return name.to_string();
        }
    }
    c.image.clone()
}

/// The status column: the daemon's text, or one derived from the state when it sent none.
pub fn status_text(status: &str, state: &str) -> String {
    if !status.is_empty() {
        return status.to_string();
    }
    match state {
        "created" => "Created".into(),
        "running" => "Up".into(),
        "paused" => "Up (Paused)".into(),
        "restarting" => "Restarting".into(),
        "removing" => "Removal In Progress".into(),
        "exited" => "Exited".into(),
        "dead" => "Dead".into(),
        other => other.to_string(),
    }
}

/// The template fields of one container, as strings (docker's `ContainerContext`).
pub fn row(c: &ContainerSummary, trunc: bool, now: i64) -> Value {
    let id = if trunc {
        truncate_id(&c.id)
    } else {
        c.id.clone()
    };
    let command = if trunc {
        go_quote(&ellipsis(&c.command, 20))
    } else {
        go_quote(&c.command)
    };
    let mut names: Vec<String> = c
        .names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    if trunc && let Some(n) = names.iter().find(|n| !n.contains('/')) {
        names = vec![n.clone()];
    }
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let created = go_time_string(c.created);
    let age = (now - c.created).max(0) as u64;
    let running_for = format!(
        "{} ago",
        human_duration(std::time::Duration::from_secs(age))
    );
    let networks: Vec<String> = c.network_settings.networks.keys().cloned().collect();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() {
                m.source.as_str()
            } else {
                m.name.as_str()
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c.mounts.iter().filter(|m| m.driver == "local").count();
    let mut m = Map::new();
    m.insert("ID".into(), id.into());
    m.insert("Image".into(), image_column(c, trunc).into());
    m.insert("Command".into(), command.into());
    m.insert("CreatedAt".into(), created.into());
    m.insert("RunningFor".into(), running_for.into());
    m.insert("Ports".into(), displayable_ports(&c.ports).into());
    m.insert("Status".into(), status_text(&c.status, &c.state).into());
    m.insert("State".into(), c.state.clone().into());
    m.insert("Names".into(), names.join(",").into());
    m.insert("Labels".into(), labels.join(",").into());
    m.insert("Mounts".into(), mounts.join(",").into());
    m.insert("Networks".into(), networks.join(",").into());
    m.insert("LocalVolumes".into(), local_volumes.to_string().into());
    m.insert("Size".into(), "0B".into());
    Value::Object(m)
}

pub async fn run(client: &Client, args: PsArgs) -> Result<i32> {
    let list =
        ListFormat::for_listing(args.quiet, "{{.ID}}", args.format.as_deref(), DEFAULT_TABLE)?;
    let mut q = Vec::new();
    if args.all {
        q.push(("all", "1".to_string()));
    }
    let limit = if args.latest { 1 } else { args.last };
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if args.size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&args.filter)? {
        q.push(("filters", f));
    }
    let containers: Vec<ContainerSummary> = client
        .get_json(&format!("/containers/json{}", query(&q)))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let trunc = !args.no_trunc;
    let rows: Vec<Value> = containers.iter().map(|c| row(c, trunc, now)).collect();
    let text = list
        .render(&rows, &header())
        .map_err(|e| crate::error::StatusError::new(1, e.to_string()))?;
    out(&text);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{SummaryHostConfig, SummaryNetworkSettings};

    fn port(ip: Option<&str>, private: u16, public: Option<u16>, kind: &str) -> Port {
        Port {
            ip: ip.map(str::to_string),
            private_port: private,
            public_port: public,
            kind: kind.into(),
        }
    }

    fn summary() -> ContainerSummary {
        ContainerSummary {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            names: vec!["/web".into()],
            image: "hello:1".into(),
            image_id: "sha256:fedcba9876543210".into(),
            command: "/bin/server --port 8080 --verbose".into(),
            created: 1_000,
            ports: vec![],
            labels: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
                .into_iter()
                .collect(),
            state: "running".into(),
            status: "Up 5 seconds".into(),
            host_config: SummaryHostConfig::default(),
            network_settings: SummaryNetworkSettings::default(),
            mounts: vec![],
        }
    }

    #[test]
    fn ports_display_like_docker() {
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(displayable_ports(&[port(None, 80, None, "tcp")]), "80/tcp");
        assert_eq!(
            displayable_ports(&[
                port(None, 81, None, "tcp"),
                port(None, 80, None, "tcp"),
                port(None, 82, None, "tcp"),
                port(None, 90, None, "udp"),
            ]),
            "80-82/tcp, 90/udp"
        );
        assert_eq!(
            displayable_ports(&[port(Some("0.0.0.0"), 80, Some(8080), "tcp")]),
            "0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[port(Some("::"), 80, Some(8080), "tcp")]),
            "[::]:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[port(Some("0.0.0.0"), 80, Some(80), "tcp")]),
            "0.0.0.0:80->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[port(None, 80, None, "tcp"), port(None, 83, None, "tcp")]),
            "80/tcp, 83/tcp"
        );
    }

    #[test]
    fn row_fields() {
        let c = summary();
        let r = row(&c, true, 1_000 + 3600);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"/bin/server --port …\"");
        assert_eq!(r["RunningFor"], "About an hour ago");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Image"], "hello:1");
        assert_eq!(r["Status"], "Up 5 seconds");
        let r = row(&c, false, 1_000);
        assert_eq!(r["ID"], c.id.as_str());
        assert_eq!(r["Command"], "\"/bin/server --port 8080 --verbose\"");
        let mut c2 = summary();
        c2.image = "sha256:fedcba9876543210".into();
        assert_eq!(row(&c2, true, 0)["Image"], "fedcba987654");
        c2.image = String::new();
        assert_eq!(row(&c2, true, 0)["Image"], "<no image>");
    }

    #[test]
    fn status_rendering() {
        assert_eq!(
            status_text("Exited (3) 2 seconds ago", "exited"),
            "Exited (3) 2 seconds ago"
        );
        assert_eq!(status_text("", "created"), "Created");
        assert_eq!(status_text("", "running"), "Up");
        assert_eq!(status_text("", "exited"), "Exited");
    }

    #[test]
    fn default_table_layout() {
        let c = summary();
        let list = ListFormat::parse(&format!("table {DEFAULT_TABLE}"), DEFAULT_TABLE).unwrap();
        let text = list.render(&[row(&c, true, 1_005)], &header()).unwrap();
        let expected = "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n\
                        0123456789ab   hello:1   \"/bin/server --port …\"   5 seconds ago   Up 5 seconds             web\n";
        assert_eq!(text, expected);
        let empty = list.render(&[], &header()).unwrap();
        assert_eq!(
            empty,
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert_eq!(
            filters_json(&["name=web".into(), "status=exited".into()])
                .unwrap()
                .unwrap(),
            r#"{"name":{"web":true},"status":{"exited":true}}"#
        );
        assert!(filters_json(&["bad".into()]).is_err());
    }

    #[test]
    fn published_and_exposed_ports() {
        assert_eq!(
            displayable_ports(&[
                port(Some("0.0.0.0"), 80, Some(8080), "tcp"),
                port(None, 90, None, "tcp"),
                port(Some("127.0.0.1"), 53, Some(5353), "udp"),
            ]),
            "90/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp"
        );
        let mut c = summary();
        c.ports = vec![port(Some("0.0.0.0"), 80, Some(8080), "tcp")];
        assert_eq!(row(&c, true, 0)["Ports"], "0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn mounts_column() {
        use berth_api::MountPoint;
        let mut c = summary();
        c.mounts = vec![
            MountPoint {
                kind: "volume".into(),
                name: "data".into(),
                source: "/var/lib/berth/volumes/data/_data".into(),
                destination: "/data".into(),
                driver: "local".into(),
                mode: "z".into(),
                rw: true,
                propagation: String::new(),
            },
            MountPoint {
                kind: "bind".into(),
                source: "/home/someone/project".into(),
                destination: "/src".into(),
                rw: true,
                ..MountPoint::default()
            },
        ];
        let r = row(&c, true, 0);
        assert_eq!(r["Mounts"], "data,/home/someone/…");
        assert_eq!(r["LocalVolumes"], "1");
        let r = row(&c, false, 0);
        assert_eq!(r["Mounts"], "data,/home/someone/project");
    }
}
