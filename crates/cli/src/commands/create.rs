//! `berth create`

use super::container_opts::{ContainerOpts, CreateSpec, process_env};
use crate::client::{Body, Client, query, read_body};
use crate::error::{StatusError, is_not_found, with_code};
use crate::outln;
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

pub async fn run(client: &Client, args: CreateArgs) -> Result<i32> {
    let spec = args
        .opts
        .to_spec(false, &process_env)
        .map_err(|e| StatusError::new(125, format!("{e:#}")))?;
    let id = create_container(client, &spec)
        .await
        .map_err(|e| with_code(e, 125))?;
    outln!("{id}");
    Ok(0)
}

/// The image as docker names it in "Unable to find image": familiar, with the default tag.
pub fn image_display(image: &str) -> String {
    berth_image::reference::Reference::parse(image)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| image.to_string())
}

/// `POST /containers/create[?name=N]`; returns the new container's id. A 404 (missing image)
/// prints docker's "Unable to find image" line before the error is returned.
pub async fn create_container(client: &Client, spec: &CreateSpec) -> Result<String> {
    let q = match &spec.name {
        Some(n) => query(&[("name", n.clone())]),
        None => String::new(),
    };
    let resp = match client
        .post(
            &format!("/containers/create{q}"),
            Some(Body::json(&spec.body)?),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            if is_not_found(&e) {
                eprintln!(
                    "Unable to find image '{}' locally",
                    image_display(&spec.image)
                );
            }
            return Err(e);
        }
    };
    let body = read_body(resp).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).context("invalid response from daemon to create")?;
    if let Some(warnings) = v.get("Warnings").and_then(|w| w.as_array()) {
        for w in warnings.iter().filter_map(|w| w.as_str()) {
            eprintln!("WARNING: {w}");
        }
    }
    v.get("Id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .context("the daemon's create response has no Id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unable_to_find_names_the_familiar_reference() {
        assert_eq!(image_display("alpine"), "alpine:latest");
        assert_eq!(image_display("docker.io/library/hello:1"), "hello:1");
        assert_eq!(
            image_display("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(image_display("Bad Name"), "Bad Name");
    }
}
