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
    #[arg(long = "type", value_name = "string", value_parser = ["container", "image", "network", "volume"])]
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
    let volume = || format!("/volumes/{}", path_escape(name));
    let network = || format!("/networks/{}", path_escape(name));
    match kind {
        Some("container") => client.get_raw(&container()).await,
        Some("image") => client.get_raw(&image()).await,
        Some("volume") => client.get_raw(&volume()).await,
        Some("network") => client.get_raw(&network()).await,
        _ => {
            // docker's order: container, image, volume, network
            for path in [container(), image(), volume(), network()] {
                match client.get_raw(&path).await {
                    Err(e) if is_not_found(&e) => continue,
                    other => return other,
                }
            }
            Err(anyhow::anyhow!("Error: No such object: {name}"))
        }
    }
}

/// A parsed `-f` of an inspect command: `None` for the default JSON output.
pub fn parse_format(format: Option<&str>) -> Result<Option<Template>> {
    Ok(match format {
        None | Some("") | Some("json") => None,
        Some(f) => Some(
            Template::parse(&unescape(f))
                .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?,
        ),
    })
}

/// The output of an inspect command: the raw objects as one indented JSON array, or each
/// rendered through the template.
pub fn render(found: &[Bytes], template: Option<&Template>) -> Result<String> {
    match template {
        None => {
            if found.is_empty() {
                return Ok("[]\n".into());
            }
            let mut joined = b"[".to_vec();
            for (i, raw) in found.iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(raw);
            }
            joined.push(b']');
            Ok(format!("{}\n", indent_json(&joined)))
        }
        Some(t) => {
            let mut text = String::new();
            for raw in found {
                let value: serde_json::Value = serde_json::from_slice(raw)?;
                let line = t
                    .render(&value)
                    .map_err(|e| StatusError::new(1, e.to_string()))?;
                text.push_str(&line);
                text.push('\n');
            }
            Ok(text)
        }
    }
}

/// Fetch every name with `fetch`, print what was found and report the rest as docker's
/// inspect commands do (one error per line, exit status 1).
pub async fn inspect_all<F, Fut>(names: &[String], format: Option<&str>, fetch: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Bytes>>,
{
    let template = parse_format(format)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match fetch(name.clone()).await {
            Ok(raw) => found.push(raw),
            Err(e) => {
                if e.downcast_ref::<crate::error::ConnectError>().is_some() {
                    return Err(e);
                }
                errors.push(e)
            }
        }
    }
    out(&render(&found, template.as_ref())?);
    finish_all(errors)
}

pub async fn run(client: &Client, args: InspectArgs) -> Result<i32> {
    let kind = args.kind.as_deref();
    inspect_all(&args.names, args.format.as_deref(), |name| async move {
        fetch(client, kind, &name, args.size).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_template_output() {
        let found = vec![
            Bytes::from_static(br#"{"Name":"a","Driver":"local"}"#),
            Bytes::from_static(br#"{"Name":"b","Driver":"local"}"#),
        ];
        assert_eq!(render(&[], None).unwrap(), "[]\n");
        assert_eq!(
            render(&found, None).unwrap(),
            "[\n    {\n        \"Name\": \"a\",\n        \"Driver\": \"local\"\n    },\n    {\n        \"Name\": \"b\",\n        \"Driver\": \"local\"\n    }\n]\n"
        );
        let t = parse_format(Some("{{.Name}}/{{.Driver}}")).unwrap();
        assert_eq!(render(&found, t.as_ref()).unwrap(), "a/local\nb/local\n");
        assert!(parse_format(Some("json")).unwrap().is_none());
        assert!(parse_format(Some("{{.Name")).is_err());
    }
}
