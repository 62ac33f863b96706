//! `berth rmi`

use super::finish_all;
use crate::client::{Client, path_escape, query, read_body};
use crate::outln;
use anyhow::{Context, Result};
use berth_api::ImageDeleteItem;
use clap::Args;

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub async fn run(client: &Client, args: RmiArgs) -> Result<i32> {
    let mut q = Vec::new();
    if args.force {
        q.push(("force", "1".to_string()));
    }
    if args.no_prune {
        q.push(("noprune", "1".to_string()));
    }
    let q = query(&q);
    let mut errors = Vec::new();
    for image in &args.images {
        let result: Result<Vec<ImageDeleteItem>> = async {
            let resp = client
                .delete(&format!("/images/{}{q}", path_escape(image)))
                .await?;
            let body = read_body(resp).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Vec::new());
            }
            serde_json::from_slice(&body).context("invalid image delete response from daemon")
        }
        .await;
        match result {
            Ok(items) => {
                for item in items {
                    if let Some(u) = item.untagged {
                        outln!("Untagged: {u}");
                    }
                    if let Some(d) = item.deleted {
                        outln!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    finish_all(errors)
}
