//! `berth tag`

use crate::client::{Client, path_escape, query};
use crate::error::StatusError;
use anyhow::Result;
use berth_image::reference::Reference;
use clap::Args;

#[derive(Args, Debug)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// The `repo` and `tag` query values for a target, as the docker client computes them:
/// the normalised repository name (`docker.io/library/app`) and the tag (default `latest`).
pub fn target_query(target: &str) -> Result<(String, String), String> {
    let r = Reference::parse(target).map_err(|e| {
        format!("Error parsing reference: {target:?} is not a valid repository/tag: {e}")
    })?;
    if r.digest().is_some() {
        return Err("refusing to create a tag with a digest reference".into());
    }
    Ok((r.repository(), r.tag().unwrap_or("latest").to_string()))
}

pub async fn run(client: &Client, args: TagArgs) -> Result<i32> {
    let (repo, tag) = target_query(&args.target).map_err(|m| StatusError::new(1, m))?;
    client
        .post(
            &format!(
                "/images/{}/tag{}",
                path_escape(&args.source),
                query(&[("repo", repo), ("tag", tag)])
            ),
            None,
        )
        .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised() {
        assert_eq!(
            target_query("app").unwrap(),
            ("docker.io/library/app".into(), "latest".into())
        );
        assert_eq!(
            target_query("me/app:v2").unwrap(),
            ("docker.io/me/app".into(), "v2".into())
        );
        assert_eq!(
            target_query("localhost:5000/app:v1").unwrap(),
            ("localhost:5000/app".into(), "v1".into())
        );
        assert!(target_query("Bad").is_err());
    }
}
