//! berth-cli: the `berth` command-line client of berthd, with Docker's command names, flags
//! and output.
//!
//! [`main`] parses the arguments with clap (before any other work), then runs one command on
//! a current-thread tokio runtime. The HTTP client is in [`client`], the output formatting
//! (Go templates, tables, sizes) in [`format`], registry credentials (Docker's `config.json`)
//! in [`config`], the progress display of pull/push/load streams in `progress`, and each
//! command in its own module under `commands`.

mod attach;
pub mod client;
mod commands;
pub mod config;
pub mod error;
pub mod format;
mod progress;

use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for WebAssembly containers",
    disable_version_flag = true,
    subcommand_required = false
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", env = "BERTH_HOST", value_name = "list")]
    host: Option<String>,
    /// Use TLS and verify the daemon; present the client certificate (implied by
    /// DOCKER_TLS_VERIFY and by the --tlscacert, --tlscert, --tlskey flags)
    #[arg(long = "tlsverify")]
    tlsverify: bool,
    /// Trust certs signed only by this CA [default: $DOCKER_CERT_PATH/ca.pem]
    #[arg(long = "tlscacert", value_name = "string")]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file [default: $DOCKER_CERT_PATH/cert.pem]
    #[arg(long = "tlscert", value_name = "string")]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file [default: $DOCKER_CERT_PATH/key.pem]
    #[arg(long = "tlskey", value_name = "string")]
    tlskey: Option<PathBuf>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<commands::Command>,
}

/// The subcommand named on the command line (skipping global options), if any.
fn subcommand_name(args: &[OsString]) -> Option<String> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if matches!(
            a.as_ref(),
            "-H" | "--host" | "--tlscacert" | "--tlscert" | "--tlskey"
        ) {
            it.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        return Some(a.into_owned());
    }
    None
}

/// The TLS options as the docker CLI resolves them: TLS when `--tlsverify`, a non-empty
/// `DOCKER_TLS_VERIFY` or any of the file flags is given; files default to `ca.pem`,
/// `cert.pem` and `key.pem` in `DOCKER_CERT_PATH` (else `DOCKER_CONFIG`, else `~/.docker`),
/// and a default client certificate that does not exist is simply not presented.
fn tls_options(
    cli: &Cli,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<client::TlsOptions>, String> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let explicit = cli.tlscacert.is_some() || cli.tlscert.is_some() || cli.tlskey.is_some();
    if !(cli.tlsverify || explicit || set("DOCKER_TLS_VERIFY").is_some()) {
        return Ok(None);
    }
    let dir = set("DOCKER_CERT_PATH")
        .or_else(|| set("DOCKER_CONFIG"))
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"));
    let ca = cli.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem"));
    let identity = match (&cli.tlscert, &cli.tlskey) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => {
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            (cert.exists() && key.exists()).then_some((cert, key))
        }
        _ => return Err("--tlscert and --tlskey must be given together".into()),
    };
    Ok(Some(client::TlsOptions { ca, identity }))
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}

/// Parse the command line, run the command, and return its exit status.
pub fn main() -> ExitCode {
    // SIGPIPE stays ignored (Rust's default): a daemon that closes the connection while a
    // build context is still uploading must give an error, not kill the client silently.
    // Writes to a closed stdout fail quietly instead (`outln!`).
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if !e.use_stderr() {
                0
            } else if matches!(
                subcommand_name(&args).as_deref(),
                Some("run") | Some("create")
            ) {
                125
            } else {
                e.exit_code()
            };
            return exit_code(code);
        }
    };
    if cli.version {
        commands::out(&format!("Berth version {}\n", env!("CARGO_PKG_VERSION")));
        return ExitCode::SUCCESS;
    }
    match tls_options(&cli, |k| std::env::var(k).ok()) {
        Ok(tls) => client::set_tls(tls),
        Err(e) => {
            eprintln!("{e}");
            return exit_code(1);
        }
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    let host = cli
        .host
        .filter(|h| !h.is_empty())
        .unwrap_or_else(berth_api::default_host);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the runtime: {e}");
            return exit_code(1);
        }
    };
    let result = runtime.block_on(commands::dispatch(&host, command));
    // A task may still be blocked on stdin: do not wait for it.
    runtime.shutdown_background();
    let code = match result {
        Ok(code) => code,
        Err(e) => error::report(&e),
    };
    exit_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::Command;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn tls_flags_and_docker_env() {
        let none = |_: &str| None::<String>;
        let cli = parse(&["ps"]).unwrap();
        assert_eq!(tls_options(&cli, none).unwrap(), None);
        // DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: files in the cert path; a client certificate
        // that is not there is not presented.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let env = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "DOCKER_CERT_PATH" => Some(d.clone()),
            _ => None,
        };
        let t = tls_options(&cli, env).unwrap().unwrap();
        assert_eq!(t.ca, dir.path().join("ca.pem"));
        assert_eq!(t.identity, None);
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        std::fs::write(dir.path().join("key.pem"), "").unwrap();
        let t = tls_options(&cli, env).unwrap().unwrap();
        assert_eq!(
            t.identity,
            Some((dir.path().join("cert.pem"), dir.path().join("key.pem")))
        );
        // An empty DOCKER_TLS_VERIFY is off, as in the docker CLI.
        let empty = |k: &str| (k == "DOCKER_TLS_VERIFY").then(String::new);
        assert_eq!(tls_options(&cli, empty).unwrap(), None);
        // Flags override the cert path and imply --tlsverify.
        let cli = parse(&[
            "--tlscacert",
            "/c/ca",
            "--tlscert",
            "/c/cert",
            "--tlskey",
            "/c/key",
            "-H",
            "tcp://127.0.0.1:1",
            "version",
        ])
        .unwrap();
        let t = tls_options(&cli, env).unwrap().unwrap();
        assert_eq!(t.ca, PathBuf::from("/c/ca"));
        assert_eq!(
            t.identity,
            Some((PathBuf::from("/c/cert"), PathBuf::from("/c/key")))
        );
        let cli = parse(&["--tlsverify", "--tlscert", "/c/cert", "ps"]).unwrap();
        assert!(tls_options(&cli, none).is_err());
        assert_eq!(
            subcommand_name(
                &["berth", "--tlscacert", "ca", "--tlsverify", "run", "x"].map(OsString::from)
            ),
            Some("run".into())
        );
    }

    #[test]
    fn run_passes_everything_after_the_image_to_the_guest() {
        let cli = parse(&[
            "run", "--rm", "-e", "A=1", "img", "-x", "--y", "--help", "-e", "B",
        ])
        .unwrap();
        let Some(Command::Run(r)) = cli.command else {
            panic!("not run")
        };
        assert!(r.opts.rm);
        assert_eq!(r.opts.env, vec!["A=1"]);
        assert_eq!(r.opts.image, "img");
        assert_eq!(r.opts.args, vec!["-x", "--y", "--help", "-e", "B"]);
    }

    #[test]
    fn run_flags() {
        let cli = parse(&[
            "run",
            "-d",
            "-i",
            "-t",
            "--name",
            "web",
            "-p",
            "8080:80",
            "-v",
            "/a:/b",
            "-m",
            "64m",
            "--restart",
            "on-failure:2",
            "--entrypoint",
            "",
            "-w",
            "/app",
            "-l",
            "k=v",
            "--env-file",
            "f.env",
            "--network",
            "none",
            "--read-only",
            "img",
        ])
        .unwrap();
        let Some(Command::Run(r)) = cli.command else {
            panic!("not run")
        };
        assert!(r.detach && r.opts.interactive && r.opts.tty && r.opts.read_only);
        assert_eq!(r.opts.name.as_deref(), Some("web"));
        assert_eq!(r.opts.memory, Some(64 * 1024 * 1024));
        assert_eq!(r.opts.entrypoint.as_deref(), Some(""));
        assert_eq!(r.opts.workdir.as_deref(), Some("/app"));
        assert!(r.opts.args.is_empty());
    }

    #[test]
    fn run_and_create_flag_errors() {
        assert!(parse(&["run", "-m", "lots", "img"]).is_err());
        assert!(parse(&["run"]).is_err());
        assert_eq!(
            subcommand_name(&["berth", "-H", "unix:///x", "run", "-z"].map(OsString::from)),
            Some("run".into())
        );
        assert_eq!(
            subcommand_name(&["berth", "--bogus"].map(OsString::from)),
            None
        );
    }

    #[test]
    fn global_host_and_other_commands() {
        let cli = parse(&[
            "-H",
            "unix:///tmp/x.sock",
            "ps",
            "-a",
            "-q",
            "--format",
            "{{.ID}}",
        ])
        .unwrap();
        assert_eq!(cli.host.as_deref(), Some("unix:///tmp/x.sock"));
        assert!(matches!(cli.command, Some(Command::Ps(ref p)) if p.all && p.quiet));
        assert!(parse(&["logs", "-f", "--tail", "10", "-t", "c"]).is_ok());
        assert!(parse(&["stop", "-t", "3", "a", "b"]).is_ok());
        assert!(parse(&["kill", "-s", "INT", "a"]).is_ok());
        assert!(parse(&["rm", "-f", "-v", "a"]).is_ok());
        assert!(parse(&["inspect", "-f", "{{.Id}}", "--type", "image", "a"]).is_ok());
        assert!(parse(&["inspect", "--type", "volume", "a"]).is_ok());
        assert!(parse(&["inspect", "--type", "network", "a"]).is_ok());
        assert!(parse(&["inspect", "--type", "plugin", "a"]).is_err());
        assert!(parse(&["images", "-q", "-a", "--no-trunc"]).is_ok());
        assert!(parse(&["rmi", "-f", "a", "b"]).is_ok());
        assert!(parse(&["tag", "a", "b:1"]).is_ok());
        assert!(
            parse(&[
                "build",
                "-t",
                "x:1",
                "-t",
                "y",
                "-f",
                "D",
                "--build-arg",
                "A=1",
                "-q",
                "--no-cache",
                "."
            ])
            .is_ok()
        );
        assert!(parse(&["build", "-t", "Bad Tag", "."]).is_err());
        assert!(parse(&["start", "-a", "-i", "c"]).is_ok());
        assert!(parse(&["wait", "a", "b"]).is_ok());
        assert!(parse(&["version"]).is_ok());
        assert!(parse(&["info"]).is_ok());
        assert!(parse(&["nope"]).is_err());
    }

    #[test]
    fn registry_and_archive_commands() {
        assert!(matches!(
            parse(&["pull", "-q", "hello:1"]).unwrap().command,
            Some(Command::Pull(ref p)) if p.quiet && p.image == "hello:1"
        ));
        assert!(parse(&["pull"]).is_err());
        assert!(matches!(
            parse(&["push", "--format", "wasm-artifact", "r:5000/a:v1"]).unwrap().command,
            Some(Command::Push(ref p)) if p.format == "wasm-artifact" && !p.quiet
        ));
        assert!(matches!(
            parse(&["push", "-q", "a"]).unwrap().command,
            Some(Command::Push(ref p)) if p.format == "docker" && p.quiet
        ));
        assert!(parse(&["push", "--format", "tarball", "a"]).is_err());
        assert!(matches!(
            parse(&["login", "-u", "u", "--password-stdin", "r:5000"]).unwrap().command,
            Some(Command::Login(ref l)) if l.password_stdin
                && l.username.as_deref() == Some("u")
                && l.server.as_deref() == Some("r:5000")
        ));
        assert!(parse(&["login", "-u", "u", "-p", "p"]).is_ok());
        assert!(parse(&["logout"]).is_ok());
        assert!(parse(&["logout", "r:5000"]).is_ok());
        assert!(matches!(
            parse(&["save", "-o", "x.tar", "a", "b"]).unwrap().command,
            Some(Command::Save(ref s)) if s.output.as_deref() == Some("x.tar") && s.images.len() == 2
        ));
        assert!(parse(&["save"]).is_err());
        assert!(matches!(
            parse(&["load", "-i", "x.tar", "-q"]).unwrap().command,
            Some(Command::Load(ref l)) if l.quiet && l.input.as_deref() == Some("x.tar")
        ));
    }

    #[test]
    fn volume_network_and_port_commands() {
        use commands::network::NetworkCommand;
        use commands::volume::VolumeCommand;
        let Some(Command::Volume(v)) = parse(&[
            "volume", "create", "-d", "local", "-o", "a=b", "--label", "x", "data",
        ])
        .unwrap()
        .command
        else {
            panic!("not volume")
        };
        assert!(
            matches!(v.command, VolumeCommand::Create(ref c) if c.volume.as_deref() == Some("data") && c.opt == ["a=b"])
        );
        assert!(parse(&["volume", "create"]).is_ok());
        assert!(parse(&["volume", "create", "a", "b"]).is_err());
        assert!(
            parse(&[
                "volume",
                "ls",
                "-q",
                "-f",
                "dangling=true",
                "--format",
                "{{.Name}}"
            ])
            .is_ok()
        );
        assert!(parse(&["volume", "list"]).is_ok());
        assert!(parse(&["volume", "inspect", "-f", "{{.Name}}", "a", "b"]).is_ok());
        assert!(parse(&["volume", "inspect"]).is_err());
        assert!(parse(&["volume", "rm", "-f", "a", "b"]).is_ok());
        assert!(parse(&["volume", "rm"]).is_err());
        assert!(matches!(
            parse(&["volume", "prune", "-f", "-a"]).unwrap().command,
            Some(Command::Volume(ref v)) if matches!(v.command, VolumeCommand::Prune(ref p) if p.force && p.all)
        ));
        assert!(parse(&["volume"]).is_err());

        let Some(Command::Network(n)) = parse(&[
            "network",
            "create",
            "-d",
            "bridge",
            "--internal",
            "--label",
            "a=b",
            "-o",
            "k=v",
            "net",
        ])
        .unwrap()
        .command
        else {
            panic!("not network")
        };
        assert!(
            matches!(n.command, NetworkCommand::Create(ref c) if c.internal && c.name == "net" && c.driver == "bridge")
        );
        assert!(parse(&["network", "create"]).is_err());
        assert!(
            parse(&[
                "network",
                "ls",
                "-q",
                "--no-trunc",
                "-f",
                "driver=bridge",
                "--format",
                "json"
            ])
            .is_ok()
        );
        assert!(parse(&["network", "inspect", "-f", "{{.Id}}", "n"]).is_ok());
        assert!(parse(&["network", "rm", "a", "b"]).is_ok());
        assert!(parse(&["network", "connect", "n", "c"]).is_ok());
        assert!(parse(&["network", "connect", "n"]).is_err());
        assert!(matches!(
            parse(&["network", "disconnect", "-f", "n", "c"]).unwrap().command,
            Some(Command::Network(ref n)) if matches!(n.command, NetworkCommand::Disconnect(ref d) if d.force && d.container == "c")
        ));
        assert!(parse(&["network", "prune", "-f"]).is_ok());

        assert!(matches!(
            parse(&["port", "web", "80/tcp"]).unwrap().command,
            Some(Command::Port(ref p)) if p.container == "web" && p.port.as_deref() == Some("80/tcp")
        ));
        assert!(parse(&["port"]).is_err());
    }

    #[test]
    fn new_run_flags() {
        let cli = parse(&[
            "run",
            "--tmpfs",
            "/run",
            "--mount",
            "type=tmpfs,target=/t",
            "-P",
            "--expose",
            "80",
            "--allow-outbound",
            "example.com:443",
            "--cpus",
            "1.5",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "--network",
            "net",
            "img",
            "arg",
        ])
        .unwrap();
        let Some(Command::Run(r)) = cli.command else {
            panic!("not run")
        };
        assert!(r.opts.publish_all);
        assert_eq!(r.opts.cpus, Some(1_500_000_000));
        assert_eq!(r.opts.mount.len(), 1);
        assert_eq!(r.opts.tmpfs, vec!["/run"]);
        assert_eq!(r.opts.allow_outbound, vec!["example.com:443"]);
        assert_eq!(r.opts.args, vec!["arg"]);
        assert!(parse(&["run", "--cpus", "-1", "img"]).is_ok());
        assert!(parse(&["run", "--cpus", "lots", "img"]).is_err());
        assert!(parse(&["create", "--mount", "type=bind,target=/x", "img"]).is_err());
        assert!(parse(&["create", "--mount", "src=/x", "img"]).is_err());
    }
}
