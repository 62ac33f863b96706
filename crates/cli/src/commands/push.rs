//! `berth push`

use super::pull::split_typed;
use crate::client::{Client, path_escape, query};
use crate::config::registry_auth_for;
use crate::error::StatusError;
use crate::{outln, progress};
use anyhow::Result;
use berth_image::reference::Reference;
use clap::Args;
use hyper::Method;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Format of the pushed image: an OCI image ("docker") or a Wasm OCI artifact
    /// ("wasm-artifact")
    #[arg(
        long,
        value_name = "string",
        value_parser = ["docker", "wasm-artifact"],
        default_value = "docker"
    )]
    pub format: String,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

/// What a push sends and shows.
#[derive(Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// The request path: `/images/<name as typed, without tag>/push?tag=<tag>[&format=...]`.
    pub path: String,
    /// Whether `latest` was supplied (docker says so).
    pub default_tag: bool,
    /// The registry host whose credentials are sent.
    pub registry: String,
    /// The canonical reference `-q` prints (`127.0.0.1:5000/app:v1`).
    pub canonical: String,
}

/// Check a reference given to `push` and build the request for it.
pub fn push_target(image: &str, format: &str) -> Result<PushTarget, String> {
    let r = Reference::parse(image).map_err(|e| e.to_string())?;
    let (name, tag, digest) = split_typed(image);
    if digest.is_some() {
        return Err("cannot push a digest reference".into());
    }
    let mut q = vec![("tag", tag.unwrap_or("latest").to_string())];
    if format == "wasm-artifact" {
        q.push(("format", format.to_string()));
    }
    Ok(PushTarget {
        path: format!("/images/{}/push{}", path_escape(name), query(&q)),
        default_tag: tag.is_none(),
        registry: r.domain().to_string(),
        canonical: r.canonical(),
    })
}

pub async fn run(client: &Client, args: PushArgs) -> Result<i32> {
    let target = push_target(&args.image, &args.format).map_err(|m| StatusError::new(1, m))?;
    if target.default_tag && !args.quiet {
        outln!("Using default tag: latest");
    }
    let auth = registry_auth_for(&target.registry);
    let resp = client
        .send(
            Method::POST,
            &target.path,
            None,
            &[("x-registry-auth", auth)],
        )
        .await?;
    let mut renderer = progress::stdout_renderer(args.quiet);
    progress::display(resp, &mut renderer).await?;
    if args.quiet {
        outln!("{}", target.canonical);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = push_target("127.0.0.1:5000/app:v1", "docker").unwrap();
        assert_eq!(
            t,
            PushTarget {
                path: "/images/127.0.0.1:5000/app/push?tag=v1".into(),
                default_tag: false,
                registry: "127.0.0.1:5000".into(),
                canonical: "127.0.0.1:5000/app:v1".into(),
            }
        );
        let t = push_target("localhost:5000/cw/app", "wasm-artifact").unwrap();
        assert_eq!(
            t.path,
            "/images/localhost:5000/cw/app/push?tag=latest&format=wasm-artifact"
        );
        assert!(t.default_tag);
        assert_eq!(t.canonical, "localhost:5000/cw/app:latest");
        let t = push_target("me/app:2", "docker").unwrap();
        assert_eq!(t.path, "/images/me/app/push?tag=2");
        assert_eq!(t.registry, "docker.io");
        assert_eq!(t.canonical, "docker.io/me/app:2");

        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            push_target(&format!("app@{digest}"), "docker").unwrap_err(),
            "cannot push a digest reference"
        );
        assert!(push_target("UPPER", "docker").is_err());
    }
}
