//! `berth stop`

use super::finish_all;
use crate::client::{Client, path_escape, query};
use crate::outln;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub timeout: Option<i64>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, args: StopArgs) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(s) = &args.signal {
        q.push(("signal", s.clone()));
    }
    if let Some(t) = args.timeout {
        q.push(("t", t.to_string()));
    }
    let q = query(&q);
    let mut errors = Vec::new();
    for c in &args.containers {
        // 204 and 304 (already stopped) are both success
        match client
            .post(&format!("/containers/{}/stop{q}", path_escape(c)), None)
            .await
        {
            Ok(_) => outln!("{c}"),
            Err(e) => errors.push(e),
        }
    }
    finish_all(errors)
}
