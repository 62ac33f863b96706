//! `berth start`

use super::run::start_container;
use super::{describe, finish_all};
use crate::attach::{attach_path, spawn_signal_proxy, start_waiter, stream_until_exit};
use crate::client::{Client, path_escape};
use crate::error::StatusError;
use crate::outln;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

pub async fn run(client: &Client, args: StartArgs) -> Result<i32> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            return Err(StatusError::new(
                1,
                "you cannot start and attach multiple containers at once",
            )
            .into());
        }
        return start_attached(client, &args.containers[0], args.interactive).await;
    }
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for c in &args.containers {
        match start_container(client, c).await {
            Ok(()) => outln!("{c}"),
            Err(e) => {
                if e.downcast_ref::<crate::error::ConnectError>().is_some() {
                    return Err(e);
                }
                eprintln!("{}", describe(&e));
                failed.push(c.clone());
                errors.push(e);
            }
        }
    }
    if failed.is_empty() {
        return finish_all(Vec::new());
    }
    Err(StatusError::new(
        1,
        format!("Error: failed to start containers: {}", failed.join(", ")),
    )
    .into())
}

async fn start_attached(client: &Client, name: &str, stdin: bool) -> Result<i32> {
    let info: serde_json::Value = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let auto_remove = info["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let io = client.attach(&attach_path(&id, stdin)).await?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let waiter = start_waiter(client, &id, condition).await;
    let proxy = spawn_signal_proxy(client, &id);
    start_container(client, &id).await?;
    stream_until_exit(io, tty, stdin, waiter, proxy).await
}
