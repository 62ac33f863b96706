//! `berth wait`

use super::finish_all;
use crate::client::{Client, path_escape, read_body};
use crate::outln;
use anyhow::{Context, Result};
use berth_api::WaitResponse;
use clap::Args;

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, args: WaitArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for c in &args.containers {
        let result: Result<WaitResponse> = async {
            let resp = client
                .post(&format!("/containers/{}/wait", path_escape(c)), None)
                .await?;
            let body = read_body(resp).await?;
            serde_json::from_slice(&body).context("invalid wait response from daemon")
        }
        .await;
        match result {
            Ok(w) => match w.error {
                Some(e) if !e.message.is_empty() => errors.push(anyhow::anyhow!(e.message)),
                _ => outln!("{}", w.status_code),
            },
            Err(e) => errors.push(e),
        }
    }
    finish_all(errors)
}
