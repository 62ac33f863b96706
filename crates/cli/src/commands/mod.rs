//! One module per `berth` command.

use crate::client::Client;
use anyhow::Result;
use clap::Subcommand;

pub mod build;
pub mod container_opts;
pub mod create;
pub mod images;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod network;
pub mod port;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stop;
pub mod tag;
pub mod version;
pub mod volume;
pub mod wait;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Create a new container
    Create(create::CreateArgs),
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Kill one or more running containers
    Kill(kill::KillArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Return low-level information on Berth objects
    Inspect(inspect::InspectArgs),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Manage volumes
    Volume(volume::VolumeArgs),
    /// Manage networks
    Network(network::NetworkArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(rmi::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(load::LoadArgs),
    /// Authenticate to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(logout::LogoutArgs),
    /// Show the Berth version information
    Version(version::VersionArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
}

/// Run one command against the daemon at `host`; returns the process exit code.
pub async fn dispatch(host: &str, command: Command) -> Result<i32> {
    // `version` prints its client section even when the host is malformed or unreachable.
    if let Command::Version(args) = command {
        return version::run(host, args).await;
    }
    // `logout` only edits the configuration file.
    if let Command::Logout(args) = command {
        return logout::run(args).await;
    }
    let client = Client::new(host)?;
    match command {
        Command::Build(a) => build::run(&client, a).await,
        Command::Create(a) => create::run(&client, a).await,
        Command::Run(a) => run::run(&client, a).await,
        Command::Start(a) => start::run(&client, a).await,
        Command::Ps(a) => ps::run(&client, a).await,
        Command::Logs(a) => logs::run(&client, a).await,
        Command::Stop(a) => stop::run(&client, a).await,
        Command::Kill(a) => kill::run(&client, a).await,
        Command::Rm(a) => rm::run(&client, a).await,
        Command::Wait(a) => wait::run(&client, a).await,
        Command::Inspect(a) => inspect::run(&client, a).await,
        Command::Port(a) => port::run(&client, a).await,
        Command::Volume(a) => volume::run(&client, a).await,
        Command::Network(a) => network::run(&client, a).await,
        Command::Images(a) => images::run(&client, a).await,
        Command::Rmi(a) => rmi::run(&client, a).await,
        Command::Tag(a) => tag::run(&client, a).await,
        Command::Pull(a) => pull::run(&client, a).await,
        Command::Push(a) => push::run(&client, a).await,
        Command::Save(a) => save::run(&client, a).await,
        Command::Load(a) => load::run(&client, a).await,
        Command::Login(a) => login::run(&client, a).await,
        Command::Info(a) => info::run(&client, a).await,
        Command::Version(_) | Command::Logout(_) => unreachable!("handled above"),
    }
}

/// Print the errors of a multi-target command (each on its own line) and turn them into the
/// exit status: 0 when there were none, else 1.
pub fn finish_all(errors: Vec<anyhow::Error>) -> Result<i32> {
    if errors.is_empty() {
        return Ok(0);
    }
    if let Some(i) = errors
        .iter()
        .position(|e| e.downcast_ref::<crate::error::ConnectError>().is_some())
    {
        return Err(errors.into_iter().nth(i).expect("index is in range"));
    }
    for e in &errors {
        eprintln!("{}", describe(e));
    }
    Err(crate::error::StatusError::silent(1).into())
}

/// The one-line text docker prints for an error.
pub fn describe(e: &anyhow::Error) -> String {
    if let Some(d) = e.downcast_ref::<crate::error::DaemonError>() {
        return d.to_string();
    }
    format!("{e:#}")
}

/// `println!` that does not panic when stdout is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

/// Write text to stdout as is.
pub fn out(text: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// docker's `prompt.Confirm`: print `message [y/N] ` and read one line; only `y`/`Y` (after
/// trimming) confirms. End of input declines.
pub fn confirm<R: std::io::BufRead, W: std::io::Write>(
    input: &mut R,
    out: &mut W,
    message: &str,
) -> bool {
    let _ = write!(out, "{message} [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    if input.read_line(&mut line).is_err() {
        return false;
    }
    line.trim().eq_ignore_ascii_case("y")
}

/// [`confirm`] on the process's stdin and stdout.
pub fn confirm_stdin(message: &str) -> bool {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    confirm(&mut input, &mut output, message)
}

/// `--filter` flags as the `filters` query parameter (docker's JSON map form).
pub fn filter_query(filters: &[String], extra: &[(&str, &str)]) -> Result<Option<String>> {
    let mut all: Vec<String> = filters.to_vec();
    for (k, v) in extra {
        all.push(format!("{k}={v}"));
    }
    ps::filters_json(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_prompt() {
        let mut out = Vec::new();
        assert!(confirm(&mut &b"y\n"[..], &mut out, "Sure?"));
        assert_eq!(out, b"Sure? [y/N] ");
        assert!(confirm(&mut &b"  Y \r\n"[..], &mut Vec::new(), "x"));
        assert!(!confirm(&mut &b"yes\n"[..], &mut Vec::new(), "x"));
        assert!(!confirm(&mut &b"n\n"[..], &mut Vec::new(), "x"));
        assert!(!confirm(&mut &b""[..], &mut Vec::new(), "x"));
    }

    #[test]
    fn filter_queries() {
        assert_eq!(filter_query(&[], &[]).unwrap(), None);
        assert_eq!(
            filter_query(&["label=a".into()], &[("all", "true")])
                .unwrap()
                .unwrap(),
            r#"{"all":{"true":true},"label":{"a":true}}"#
        );
    }
}
