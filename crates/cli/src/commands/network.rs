//! `berth network`: create, ls, inspect, rm, connect, disconnect, prune.

use super::container_opts::kv_map;
use super::inspect::inspect_all;
use super::{confirm_stdin, describe, filter_query, out};
use crate::client::{Body, Client, path_escape, query, read_body};
use crate::error::{ConnectError, StatusError, is_not_found};
use crate::format::{ListFormat, go_time_of_rfc3339, natural_cmp, truncate_id};
use crate::outln;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

pub const DEFAULT_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

#[derive(Args, Debug)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub driver: String,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Provide filter values (e.g. "driver=bridge")
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
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The column names of a `network ls` table.
pub fn header() -> Value {
    json!({
        "ID": "NETWORK ID",
        "Name": "NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "IPv6": "IPV6",
        "Internal": "INTERNAL",
        "Labels": "LABELS",
        "CreatedAt": "CREATED",
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The template fields of one network (docker's `networkContext`).
pub fn row(n: &Value, trunc: bool) -> Value {
    let id = str_of(n, "Id");
    let mut m = Map::new();
    m.insert(
        "ID".into(),
        if trunc {
            truncate_id(id)
        } else {
            id.to_string()
        }
        .into(),
    );
    m.insert("Name".into(), str_of(n, "Name").into());
    m.insert("Driver".into(), str_of(n, "Driver").into());
    m.insert("Scope".into(), str_of(n, "Scope").into());
    m.insert("IPv6".into(), bool_of(n, "EnableIPv6").to_string().into());
    m.insert("Internal".into(), bool_of(n, "Internal").to_string().into());
    m.insert(
        "Labels".into(),
        super::volume::labels_text(n.get("Labels")).into(),
    );
    m.insert(
        "CreatedAt".into(),
        go_time_of_rfc3339(str_of(n, "Created")).into(),
    );
    Value::Object(m)
}

/// The networks of a `GET /networks` answer, sorted by name as docker lists them.
pub fn sorted_networks(list: &Value) -> Vec<Value> {
    let mut nets: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| natural_cmp(str_of(a, "Name"), str_of(b, "Name")));
    nets
}

/// The `networks/create` body as the docker CLI sends it.
pub fn create_body(args: &CreateArgs) -> Value {
    json!({
        "Name": args.name,
        "Driver": args.driver,
        "Scope": "",
        "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Internal": args.internal,
        "Attachable": args.attachable,
        "Ingress": false,
        "ConfigOnly": false,
        "ConfigFrom": null,
        "Options": kv_map(&args.opt),
        "Labels": kv_map(&args.label),
    })
}

/// The text `network prune` prints for a prune report (nothing when nothing was deleted).
pub fn prune_output(report: &Value) -> String {
    let deleted: Vec<&str> = report
        .get("NetworksDeleted")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if deleted.is_empty() {
        return String::new();
    }
    let mut text = "Deleted Networks:\n".to_string();
    for d in deleted {
        text.push_str(d);
        text.push('\n');
    }
    text.push('\n');
    text
}

pub async fn run(client: &Client, args: NetworkArgs) -> Result<i32> {
    match args.command {
        NetworkCommand::Create(a) => {
            let resp = client
                .post("/networks/create", Some(Body::json(&create_body(&a))?))
                .await?;
            let body = read_body(resp).await?;
            let v: Value = serde_json::from_slice(&body).context("invalid response from daemon")?;
            let warning = str_of(&v, "Warning");
            if !warning.is_empty() {
                eprintln!("WARNING: {warning}");
            }
            outln!("{}", str_of(&v, "Id"));
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let list =
                ListFormat::for_listing(a.quiet, "{{.ID}}", a.format.as_deref(), DEFAULT_TABLE)?;
            let q = match filter_query(&a.filter, &[])? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let resp: Value = client.get_json(&format!("/networks{q}")).await?;
            let rows: Vec<Value> = sorted_networks(&resp)
                .iter()
                .map(|n| row(n, !a.no_trunc))
                .collect();
            let text = list
                .render(&rows, &header())
                .map_err(|e| StatusError::new(1, e.to_string()))?;
            out(&text);
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            let q = if a.verbose { "?verbose=true" } else { "" };
            inspect_all(&a.networks, a.format.as_deref(), |name| async move {
                client
                    .get_raw(&format!("/networks/{}{q}", path_escape(&name)))
                    .await
            })
            .await
        }
        NetworkCommand::Rm(a) => {
            let mut status = 0;
            for name in &a.networks {
                match client
                    .delete(&format!("/networks/{}", path_escape(name)))
                    .await
                {
                    Ok(_) => outln!("{name}"),
                    Err(e) if a.force && is_not_found(&e) => {}
                    Err(e) if e.downcast_ref::<ConnectError>().is_some() => return Err(e),
                    Err(e) => {
                        eprintln!("{}", describe(&e));
                        status = 1;
                    }
                }
            }
            if status != 0 {
                return Err(StatusError::silent(status).into());
            }
            Ok(0)
        }
        NetworkCommand::Connect(a) => {
            let body = json!({"Container": a.container, "EndpointConfig": {}});
            client
                .post(
                    &format!("/networks/{}/connect", path_escape(&a.network)),
                    Some(Body::json(&body)?),
                )
                .await?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            client
                .post(
                    &format!("/networks/{}/disconnect", path_escape(&a.network)),
                    Some(Body::json(&body)?),
                )
                .await?;
            Ok(0)
        }
        NetworkCommand::Prune(a) => {
            if !a.force && !confirm_stdin(PRUNE_WARNING) {
                return Ok(0);
            }
            let q = match filter_query(&a.filter, &[])? {
                Some(f) => query(&[("filters", f)]),
                None => String::new(),
            };
            let resp = client.post(&format!("/networks/prune{q}"), None).await?;
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

    fn net(id: &str, name: &str, driver: &str, scope: &str) -> Value {
        json!({
            "Name": name, "Id": id, "Created": "2024-05-06T07:08:09.5Z", "Scope": scope,
            "Driver": driver, "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": {}, "Config": []},
            "Internal": true, "Attachable": false, "Ingress": false, "ConfigOnly": false,
            "Containers": {}, "Options": {}, "Labels": {"x": "y"}
        })
    }

    fn sample() -> Value {
        json!([
            net(&"b".repeat(64), "web", "bridge", "local"),
            net(&"a".repeat(64), "bridge", "bridge", "local"),
            net(&"c".repeat(64), "none", "null", "local"),
        ])
    }

    #[test]
    fn default_table() {
        let rows: Vec<Value> = sorted_networks(&sample())
            .iter()
            .map(|n| row(n, true))
            .collect();
        let fmt = ListFormat::parse(&format!("table {DEFAULT_TABLE}"), DEFAULT_TABLE).unwrap();
        assert_eq!(
            fmt.render(&rows, &header()).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             aaaaaaaaaaaa   bridge    bridge    local\n\
             cccccccccccc   none      null      local\n\
             bbbbbbbbbbbb   web       bridge    local\n"
        );
        let quiet = ListFormat::parse("{{.ID}}", DEFAULT_TABLE).unwrap();
        assert_eq!(
            quiet.render(&rows[..1], &header()).unwrap(),
            "aaaaaaaaaaaa\n"
        );
        let full = row(&sample()[0], false);
        assert_eq!(full["ID"], "b".repeat(64));
    }

    #[test]
    fn other_fields() {
        let r = row(&sample()[0], true);
        assert_eq!(r["Internal"], "true");
        assert_eq!(r["IPv6"], "false");
        assert_eq!(r["Labels"], "x=y");
        assert_eq!(r["CreatedAt"], "2024-05-06 07:08:09.5 +0000 UTC");
    }

    #[test]
    fn create_request_body() {
        let a = CreateArgs {
            driver: "bridge".into(),
            internal: true,
            attachable: false,
            label: vec!["x=y".into()],
            opt: vec!["com.a=1".into()],
            name: "net1".into(),
        };
        assert_eq!(
            create_body(&a),
            json!({"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{"com.a":"1"},"Labels":{"x":"y"},"Name":"net1"})
        );
    }

    #[test]
    fn prune_text() {
        assert_eq!(
            prune_output(&json!({"NetworksDeleted": ["n1", "n2"]})),
            "Deleted Networks:\nn1\nn2\n\n"
        );
        assert_eq!(prune_output(&json!({"NetworksDeleted": null})), "");
    }
}
