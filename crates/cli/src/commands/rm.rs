//! `berth rm`

use super::finish_all;
use crate::client::{Client, path_escape, query};
use crate::error::is_not_found;
use crate::outln;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, args: RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if args.force {
        q.push(("force", "1".to_string()));
    }
    if args.volumes {
        q.push(("v", "1".to_string()));
    }
    if args.link {
        q.push(("link", "1".to_string()));
    }
    let q = query(&q);
    let mut errors = Vec::new();
    for c in &args.containers {
        let name = c.trim_matches('/');
        match client
            .delete(&format!("/containers/{}{q}", path_escape(name)))
            .await
        {
            Ok(_) => outln!("{c}"),
            // `rm -f` of something that does not exist is not an error (as docker)
            Err(e) if args.force && is_not_found(&e) => {}
            Err(e) => errors.push(e),
        }
    }
    finish_all(errors)
}
