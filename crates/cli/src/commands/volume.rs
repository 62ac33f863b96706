//! `berth volume`: create, ls, inspect, rm, prune.

use super::container_opts::kv_map;
use super::inspect::inspect_all;
use super::{confirm_stdin, filter_query, finish_all, out};
use crate::client::{Body, Client, path_escape, query, read_body};
use crate::error::StatusError;
use crate::format::{ListFormat, human_size, natural_cmp};
use crate::outln;
use anyhow::{Context, Result};
use berth_api::VolumeCreateRequest;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

pub const DEFAULT_TABLE: &str = "{{.Driver}}\t{{.Name}}";

const UNUSED_VOLUMES_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_VOLUMES_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes. You cannot remove a volume that is in use by a container.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string", hide = true)]
    pub name: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub volume: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The column names of a `volume ls` table.
pub fn header() -> Value {
    json!({
        "Name": "VOLUME NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS",
        "Links": "LINKS",
        "Size": "SIZE",
        "Group": "GROUP",
        "Availability": "AVAILABILITY",
        "Status": "STATUS",
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `k=v` pairs of a labels object, joined by `,`.
pub fn labels_text(labels: Option<&Value>) -> String {
    labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The template fields of one volume (docker's `VolumeContext`).
pub fn row(v: &Value) -> Value {
    let usage = v.get("UsageData").filter(|u| u.is_object());
    let links = usage
        .and_then(|u| u.get("RefCount"))
        .and_then(Value::as_i64)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "N/A".into());
    let size = usage
        .and_then(|u| u.get("Size"))
        .and_then(Value::as_i64)
        .map(|n| human_size(n as f64))
        .unwrap_or_else(|| "N/A".into());
    let mut m = Map::new();
    m.insert("Name".into(), str_of(v, "Name").into());
    m.insert("Driver".into(), str_of(v, "Driver").into());
    m.insert("Scope".into(), str_of(v, "Scope").into());
    m.insert("Mountpoint".into(), str_of(v, "Mountpoint").into());
    m.insert("Labels".into(), labels_text(v.get("Labels")).into());
    m.insert("Links".into(), links.into());
    m.insert("Size".into(), size.into());
    m.insert("Group".into(), "N/A".into());
    m.insert("Availability".into(), "N/A".into());
    m.insert("Status".into(), "N/A".into());
    Value::Object(m)
}

/// The volumes of a `GET /volumes` answer, sorted by name as docker lists them.
pub fn sorted_volumes(list: &Value) -> Vec<Value> {
    let mut vols: Vec<Value> = list
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    vols.sort_by(|a, b| natural_cmp(str_of(a, "Name"), str_of(b, "Name")));
    vols
}

/// The text `volume prune` prints for a prune report.
pub fn prune_output(report: &Value) -> String {
    let deleted: Vec<&str> = report
        .get("VolumesDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut text = String::new();
    let mut reclaimed = 0u64;
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for d in deleted {
            text.push_str(d);
            text.push('\n');
        }
        text.push('\n');
        reclaimed = report
            .get("SpaceReclaimed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    text
}

/// The `volumes/create` body of `volume create`.
pub fn create_request(args: &CreateArgs) -> Result<VolumeCreateRequest> {
    let mut name = args.name.clone();
    if let Some(v) = &args.volume {
        if name.is_some() {
            anyhow::bail!(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
            );
        }
        name = Some(v.clone());
    }
    let opts = kv_map(&args.opt);
    let labels = kv_map(&args.label);
    Ok(VolumeCreateRequest {
        name: name.filter(|n| !n.is_empty()),
        driver: Some(args.driver.clone()),
        driver_opts: if opts.is_empty() { None } else { Some(opts) },
        labels: if labels.is_empty() {
            None
        } else {
            Some(labels)
        },
    })
}

/// The JSON of a create request as docker sends it (no `null` members).
fn request_json(req: &VolumeCreateRequest) -> Result<Value> {
    let mut v = serde_json::to_value(req)?;
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    Ok(v)
}

pub async fn run(client: &Client, args: VolumeArgs) -> Result<i32> {
    match args.command {
        VolumeCommand::Create(a) => {
            let req = create_request(&a)?;
            let resp = client
                .post("/volumes/create", Some(Body::json(&request_json(&req)?)?))
                .await?;
            let body = read_body(resp).await?;
            let v: Value = serde_json::from_slice(&body).context("invalid response from daemon")?;
            outln!("{}", str_of(&v, "Name"));
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let list =
                ListFormat::for_listing(a.quiet, "{{.Name}}", a.format.as_deref(), DEFAULT_TABLE)?;
            let q = match filter_query(&a.filter, &[])? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let resp: Value = client.get_json(&format!("/volumes{q}")).await?;
            let rows: Vec<Value> = sorted_volumes(&resp).iter().map(row).collect();
            let text = list
                .render(&rows, &header())
                .map_err(|e| StatusError::new(1, e.to_string()))?;
            out(&text);
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            inspect_all(&a.volumes, a.format.as_deref(), |name| async move {
                client
                    .get_raw(&format!("/volumes/{}", path_escape(&name)))
                    .await
            })
            .await
        }
        VolumeCommand::Rm(a) => {
            let q = if a.force {
                query(&[("force", "1".to_string())])
            } else {
                String::new()
            };
            let mut errors = Vec::new();
            for name in &a.volumes {
                match client
                    .delete(&format!("/volumes/{}{q}", path_escape(name)))
                    .await
                {
                    Ok(_) => outln!("{name}"),
                    Err(e) => errors.push(e),
                }
            }
            finish_all(errors)
        }
        VolumeCommand::Prune(a) => {
            let mut extra = Vec::new();
            let mut warning = UNUSED_VOLUMES_WARNING;
            if a.all {
                if a.filter.iter().any(|f| {
                    f.split_once('=')
                        .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("all"))
                }) {
                    return Err(StatusError::new(
                        1,
                        "conflicting options: cannot specify both --all and --filter all=1",
                    )
                    .into());
                }
                extra.push(("all", "true"));
                warning = ALL_VOLUMES_WARNING;
            }
            if !a.force && !confirm_stdin(warning) {
                return Ok(0);
            }
            let q = match filter_query(&a.filter, &extra)? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let resp = client.post(&format!("/volumes/prune{q}"), None).await?;
            let body = read_body(resp).await?;
            let report: Value =
                serde_json::from_slice(&body).context("invalid response from daemon")?;
            out(&prune_output(&report));
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, labels: Value) -> Value {
        json!({
            "Name": name, "Driver": "local", "Mountpoint": format!("/var/lib/berth/volumes/{name}/_data"),
            "CreatedAt": "2024-01-01T00:00:00Z", "Labels": labels, "Scope": "local", "Options": null
        })
    }

    #[test]
    fn default_table() {
        let list = json!({"Volumes": [vol("web10", json!({})), vol("data", json!(null)), vol("web9", json!({}))], "Warnings": []});
        let rows: Vec<Value> = sorted_volumes(&list).iter().map(row).collect();
        let fmt = ListFormat::parse(&format!("table {DEFAULT_TABLE}"), DEFAULT_TABLE).unwrap();
        assert_eq!(
            fmt.render(&rows, &header()).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     data\nlocal     web9\nlocal     web10\n"
        );
        assert_eq!(
            fmt.render(&[], &header()).unwrap(),
            "DRIVER    VOLUME NAME\n"
        );
        let q = ListFormat::parse("{{.Name}}", DEFAULT_TABLE).unwrap();
        assert_eq!(q.render(&rows, &header()).unwrap(), "data\nweb9\nweb10\n");
        assert!(sorted_volumes(&json!({"Volumes": null})).is_empty());
    }

    #[test]
    fn row_fields_and_json() {
        let r = row(&vol("v", json!({"a": "1", "b": ""})));
        assert_eq!(r["Labels"], "a=1,b=");
        assert_eq!(r["Links"], "N/A");
        assert_eq!(r["Size"], "N/A");
        assert_eq!(r["Mountpoint"], "/var/lib/berth/volumes/v/_data");
        let mut with_usage = vol("v", json!({}));
        with_usage["UsageData"] = json!({"RefCount": 2, "Size": 2048});
        let r = row(&with_usage);
        assert_eq!(r["Links"], "2");
        assert_eq!(r["Size"], "2.05kB");
        let j = ListFormat::parse("json", DEFAULT_TABLE).unwrap();
        assert_eq!(
            j.render(&[row(&vol("v", json!({})))], &header()).unwrap(),
            "{\"Availability\":\"N/A\",\"Driver\":\"local\",\"Group\":\"N/A\",\"Labels\":\"\",\"Links\":\"N/A\",\"Mountpoint\":\"/var/lib/berth/volumes/v/_data\",\"Name\":\"v\",\"Scope\":\"local\",\"Size\":\"N/A\",\"Status\":\"N/A\"}\n"
        );
        let custom =
            ListFormat::parse("table {{.Name}}\t{{.Scope}}\t{{.Labels}}", DEFAULT_TABLE).unwrap();
        assert_eq!(
            custom
                .render(&[row(&vol("v", json!({"k": "v"})))], &header())
                .unwrap(),
            "VOLUME NAME   SCOPE     LABELS\nv             local     k=v\n"
        );
    }

    #[test]
    fn prune_text() {
        assert_eq!(
            prune_output(&json!({"VolumesDeleted": ["a", "b"], "SpaceReclaimed": 1500})),
            "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.5kB\n"
        );
        assert_eq!(
            prune_output(&json!({"VolumesDeleted": null, "SpaceReclaimed": 0})),
            "Total reclaimed space: 0B\n"
        );
    }

    fn create_args(volume: Option<&str>, name: Option<&str>) -> CreateArgs {
        CreateArgs {
            driver: "local".into(),
            label: vec!["a=b".into(), "c".into()],
            opt: vec!["type=tmpfs".into(), "o=size=1m".into()],
            name: name.map(str::to_string),
            volume: volume.map(str::to_string),
        }
    }

    #[test]
    fn create_bodies() {
        let req = create_request(&create_args(Some("data"), None)).unwrap();
        assert_eq!(
            request_json(&req).unwrap(),
            json!({"Name": "data", "Driver": "local", "DriverOpts": {"type": "tmpfs", "o": "size=1m"}, "Labels": {"a": "b", "c": ""}})
        );
        let mut bare = create_args(None, None);
        bare.label.clear();
        bare.opt.clear();
        assert_eq!(
            request_json(&create_request(&bare).unwrap()).unwrap(),
            json!({"Driver": "local"})
        );
        let named = create_request(&create_args(None, Some("n"))).unwrap();
        assert_eq!(named.name.as_deref(), Some("n"));
        assert!(
            create_request(&create_args(Some("a"), Some("b")))
                .unwrap_err()
                .to_string()
                .starts_with("conflicting options")
        );
    }
}
