//! `berth pull`

use crate::client::{Client, query};
use crate::config::registry_auth_for;
use crate::error::StatusError;
use crate::{outln, progress};
use anyhow::Result;
use berth_image::reference::Reference;
use clap::Args;
use hyper::Method;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

/// A reference as typed, split into its name, tag and digest (`localhost:5000/app:v1@sha256:..`
/// gives `localhost:5000/app`, `v1`, `sha256:..`). The tag is after the last `:` that follows
/// the last `/`, so a registry port is never taken for a tag.
pub fn split_typed(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    match name_tag.rfind(':') {
        Some(i) if !name_tag[i + 1..].contains('/') => {
            (&name_tag[..i], Some(&name_tag[i + 1..]), digest)
        }
        _ => (name_tag, None, digest),
    }
}

/// What a pull sends and shows.
#[derive(Debug, PartialEq, Eq)]
pub struct PullTarget {
    /// The `fromImage` query value: the name as typed, without tag or digest.
    pub from_image: String,
    /// The `tag` query value: the digest of a digest reference, else the tag (`latest`).
    pub tag: String,
    /// Whether `latest` was supplied (docker says so).
    pub default_tag: bool,
    /// The registry host whose credentials are sent.
    pub registry: String,
    /// The canonical reference printed at the end (`docker.io/library/hello:1`).
    pub canonical: String,
}

/// Check and split a reference given to `pull`.
pub fn pull_target(image: &str) -> Result<PullTarget, String> {
    let r = Reference::parse(image).map_err(|e| e.to_string())?;
    let (name, tag, digest) = split_typed(image);
    let default_tag = tag.is_none() && digest.is_none();
    let tag = match (digest, tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    Ok(PullTarget {
        from_image: name.to_string(),
        tag,
        default_tag,
        registry: r.domain().to_string(),
        canonical: r.canonical(),
    })
}

/// The request path: `/images/create?fromImage=<name>&tag=<tag>`.
pub fn pull_path(t: &PullTarget) -> String {
    format!(
        "/images/create{}",
        query(&[("fromImage", t.from_image.clone()), ("tag", t.tag.clone())])
    )
}

pub async fn run(client: &Client, args: PullArgs) -> Result<i32> {
    let target = pull_target(&args.image).map_err(|m| StatusError::new(1, m))?;
    if target.default_tag && !args.quiet {
        outln!("Using default tag: latest");
    }
    let auth = registry_auth_for(&target.registry);
    let resp = client
        .send(
            Method::POST,
            &pull_path(&target),
            None,
            &[("x-registry-auth", auth)],
        )
        .await?;
    let mut renderer = progress::stdout_renderer(args.quiet);
    progress::display(resp, &mut renderer).await?;
    outln!("{}", target.canonical);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_references_split() {
        assert_eq!(split_typed("hello"), ("hello", None, None));
        assert_eq!(split_typed("hello:1"), ("hello", Some("1"), None));
        assert_eq!(
            split_typed("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
        assert_eq!(
            split_typed("localhost:5000/app:v1@sha256:ab"),
            ("localhost:5000/app", Some("v1"), Some("sha256:ab"))
        );
        assert_eq!(split_typed("a@sha256:ab"), ("a", None, Some("sha256:ab")));
    }

    #[test]
    fn targets() {
        let t = pull_target("hello:1").unwrap();
        assert_eq!(
            t,
            PullTarget {
                from_image: "hello".into(),
                tag: "1".into(),
                default_tag: false,
                registry: "docker.io".into(),
                canonical: "docker.io/library/hello:1".into(),
            }
        );
        assert_eq!(pull_path(&t), "/images/create?fromImage=hello&tag=1");

        let t = pull_target("127.0.0.1:5000/app").unwrap();
        assert!(t.default_tag);
        assert_eq!(t.registry, "127.0.0.1:5000");
        assert_eq!(t.canonical, "127.0.0.1:5000/app:latest");
        assert_eq!(
            pull_path(&t),
            "/images/create?fromImage=127.0.0.1%3A5000%2Fapp&tag=latest"
        );

        let digest = format!("sha256:{}", "a".repeat(64));
        let t = pull_target(&format!("me/app:v2@{digest}")).unwrap();
        assert_eq!(t.from_image, "me/app");
        assert_eq!(t.tag, digest);
        assert!(!t.default_tag);
        assert_eq!(t.canonical, format!("docker.io/me/app:v2@{digest}"));

        let e = pull_target("Hello").unwrap_err();
        assert!(e.contains("must be lowercase"), "{e}");
        assert!(pull_target("a b").is_err());
    }
}
