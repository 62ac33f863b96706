//! `berth inspect`

use super::{finish_all, out};
use crate::client::{Client, path_escape};
use crate::error::{StatusError, is_not_found};
use crate::format::{Template, indent_json, unescape};
use anyhow::Result;
use bytes::Bytes;
use clap::Args;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type", value_name = "string", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
}

async fn fetch(client: &Client, kind: Option<&str>, name: &str, size: bool) -> Result<Bytes> {
    let container = || {
        format!(
            "/containers/{}/json{}",
            path_escape(name),
            if size { "?size=1" } else { "" }
        )
    };
    let image = || format!("/images/{}/json", path_escape(name));
    match kind {
        Some("container") => client.get_raw(&container()).await,
        Some("image") => client.get_raw(&image()).await,
        _ => match client.get_raw(&container()).await {
            Err(e) if is_not_found(&e) => match client.get_raw(&image()).await {
                Err(e) if is_not_found(&e) => Err(anyhow::anyhow!("Error: No such object: {name}")),
                other => other,
            },
            other => other,
        },
    }
}

pub async fn run(client: &Client, args: InspectArgs) -> Result<i32> {
    let template = match args.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(
            Template::parse(&unescape(f))
                .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?,
        ),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match fetch(client, args.kind.as_deref(), name, args.size).await {
            Ok(raw) => found.push(raw),
            Err(e) => {
                if e.downcast_ref::<crate::error::ConnectError>().is_some() {
                    return Err(e);
                }
                errors.push(e)
            }
        }
    }
    match template {
        None => {
            if found.is_empty() {
                out("[]\n");
            } else {
                let mut joined = b"[".to_vec();
                for (i, raw) in found.iter().enumerate() {
                    if i > 0 {
                        joined.push(b',');
                    }
                    joined.extend_from_slice(raw);
                }
                joined.push(b']');
                out(&format!("{}\n", indent_json(&joined)));
            }
        }
        Some(t) => {
            for raw in &found {
                let value: serde_json::Value = serde_json::from_slice(raw)?;
                let text = t
                    .render(&value)
                    .map_err(|e| StatusError::new(1, e.to_string()))?;
                out(&format!("{text}\n"));
            }
        }
    }
    finish_all(errors)
}
