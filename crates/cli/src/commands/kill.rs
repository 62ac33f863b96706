//! `berth kill`

use super::finish_all;
use crate::client::{Client, path_escape, query};
use crate::outln;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, args: KillArgs) -> Result<i32> {
    let q = match &args.signal {
        Some(s) if !s.is_empty() => query(&[("signal", s.clone())]),
        _ => String::new(),
    };
    let mut errors = Vec::new();
    for c in &args.containers {
        match client
            .post(&format!("/containers/{}/kill{q}", path_escape(c)), None)
            .await
        {
            Ok(_) => outln!("{c}"),
            Err(e) => errors.push(e),
        }
    }
    finish_all(errors)
}
