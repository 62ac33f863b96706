//! `berth run`: create, attach, wait, start, stream, exit with the container's code.

use super::container_opts::{ContainerOpts, process_env};
use super::create::create_container;
use crate::attach::{attach_path, spawn_signal_proxy, start_waiter, stream_until_exit};
use crate::client::{Client, path_escape};
use crate::error::{StatusError, with_code};
use crate::outln;
use anyhow::Result;
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// docker's `runStartContainerErr`: 127 when the command is missing, 126 when it cannot be
/// executed, else 125.
pub fn start_error_code(message: &str) -> i32 {
    let m = message.trim_start_matches("Error response from daemon: ");
    if m.contains("executable file not found") {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// `POST /containers/{id}/start` (a 304 "already started" counts as success).
pub async fn start_container(client: &Client, id: &str) -> Result<()> {
    client
        .post(&format!("/containers/{}/start", path_escape(id)), None)
        .await?;
    Ok(())
}

pub async fn run(client: &Client, args: RunArgs) -> Result<i32> {
    let opts = &args.opts;
    let spec = opts
        .to_spec(args.detach, &process_env)
        .map_err(|e| StatusError::new(125, format!("{e:#}")))?;
    let id = create_container(client, &spec)
        .await
        .map_err(|e| with_code(e, 125))?;

    if args.detach {
        if let Err(e) = start_container(client, &id).await {
            let e = with_code(e, 125);
            let code = start_error_code(&e.to_string());
            return Err(StatusError::new(code, e.to_string()).into());
        }
        outln!("{id}");
        return Ok(0);
    }

    let io = client
        .attach(&attach_path(&id, opts.interactive))
        .await
        .map_err(|e| with_code(e, 125))?;
    let condition = if opts.rm { "removed" } else { "next-exit" };
    let waiter = start_waiter(client, &id, condition).await;
    // Ctrl-C from here on stops the container (as docker's sig-proxy), even before streaming.
    let proxy = spawn_signal_proxy(client, &id);
    if let Err(e) = start_container(client, &id).await {
        let e = with_code(e, 125);
        let message = e.to_string();
        if opts.rm {
            // let the daemon finish removing the container before we exit
            waiter.finish_within(Duration::from_secs(5)).await;
        }
        return Err(StatusError::new(start_error_code(&message), message).into());
    }
    stream_until_exit(io, opts.tty, opts.interactive, waiter, proxy).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_docker_codes() {
        assert_eq!(
            start_error_code(
                "Error response from daemon: exec: \"x\": executable file not found in $PATH"
            ),
            127
        );
        assert_eq!(start_error_code("open /app: permission denied"), 126);
        assert_eq!(start_error_code("something else"), 125);
    }
}
