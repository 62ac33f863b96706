//! berthd: the Berth daemon. Parses flags, sets up logging, opens the daemon and serves the
//! API until SIGTERM or SIGINT.

use anyhow::Context;
use berth_server::listen::{self, Host};
use berth_server::tls::TlsFiles;
use clap::Parser;
use std::path::PathBuf;

/// The Berth daemon: runs WebAssembly containers and serves a Docker-compatible API.
#[derive(Parser, Debug)]
#[command(name = "berthd", version)]
struct Args {
    /// Root of persistent state [default: /var/lib/berth as root, else $XDG_DATA_HOME/berth]
    #[arg(long, env = "BERTH_ROOT")]
    data_root: Option<PathBuf>,
    /// Address to listen on, unix:///path or tcp://HOST:PORT (needs --tlsverify) (repeatable)
    /// [default: /run/berth/berth.sock as root, else $XDG_RUNTIME_DIR/berth.sock]
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Serve TCP listeners with mutual TLS: clients must present a certificate signed by
    /// --tlscacert
    #[arg(long)]
    tlsverify: bool,
    /// CA certificate (PEM) that client certificates must be signed by
    #[arg(long, value_name = "PATH")]
    tlscacert: Option<PathBuf>,
    /// The daemon's TLS certificate (PEM)
    #[arg(long, value_name = "PATH")]
    tlscert: Option<PathBuf>,
    /// The daemon's TLS private key (PEM)
    #[arg(long, value_name = "PATH")]
    tlskey: Option<PathBuf>,
    /// Group allowed to use the socket (mode 0660 instead of 0600)
    #[arg(long)]
    group: Option<String>,
    /// How many containers may run at once (sizes the instance pool)
    #[arg(long, default_value_t = 1000)]
    max_containers: u32,
    /// Registry (host[:port]) to reach over plain HTTP; localhost, 127.0.0.0/8 and ::1 always
    /// are (repeatable)
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
}

fn default_data_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/berth");
    }
    match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("berth"),
        _ => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/share/berth"))
            .unwrap_or_else(|| PathBuf::from("/tmp/berth-data")),
    }
}

/// The TLS files of `--tlsverify`, all three required; without `--tlsverify` none may be given
/// (dockerd's `--tls` without client verification is not offered).
fn tls_files(args: &Args) -> anyhow::Result<Option<TlsFiles>> {
    if !args.tlsverify {
        if args.tlscacert.is_some() || args.tlscert.is_some() || args.tlskey.is_some() {
            anyhow::bail!(
                "--tlscacert, --tlscert and --tlskey need --tlsverify (TLS without client certificates is not supported)"
            );
        }
        return Ok(None);
    }
    match (&args.tlscacert, &args.tlscert, &args.tlskey) {
        (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })),
        _ => anyhow::bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
    }
}

/// Every container holds its log file open: raise the soft open-file limit to the hard one,
/// as dockerd and containerd do. Failure only means fewer containers fit.
fn raise_open_file_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read or write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() -> anyhow::Result<()> {
    raise_open_file_limit();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let data_root = args.data_root.clone().unwrap_or_else(default_data_root);
    let hosts = if args.hosts.is_empty() {
        vec![berth_api::default_host()]
    } else {
        args.hosts.clone()
    };
    let hosts: Vec<Host> = hosts
        .iter()
        .map(|h| Host::parse(h).map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    let tls_files = tls_files(&args)?;
    listen::require_tls(&hosts, tls_files.as_ref()).map_err(anyhow::Error::msg)?;
    let tls = if hosts.iter().any(|h| matches!(h, Host::Tcp(_))) {
        tls_files
            .as_ref()
            .map(berth_server::tls::server_config)
            .transpose()
            .map_err(anyhow::Error::msg)?
    } else {
        None
    };
    let group = args
        .group
        .as_deref()
        .map(listen::group_id)
        .transpose()
        .context("--group")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berthd")
        .build()?;
    runtime.block_on(run(args, data_root, hosts, group, tls))
}

async fn run(
    args: Args,
    data_root: PathBuf,
    hosts: Vec<Host>,
    group: Option<u32>,
    tls: Option<std::sync::Arc<berth_server::tls::ServerConfig>>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("creating data root {}", data_root.display()))?;
    let daemon = berth_daemon::Daemon::open(berth_daemon::DaemonConfig {
        data_root: data_root.clone(),
        max_instances: args.max_containers,
        insecure_registries: args.insecure_registries.clone(),
    })
    .with_context(|| format!("opening data root {}", data_root.display()))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut sockets = Vec::new();
    for host in hosts {
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let opts = listen::ServeOptions::default();
        match host {
            Host::Unix(path) => {
                let listener = listen::bind_unix(&path, group)
                    .with_context(|| format!("listening on unix://{}", path.display()))?;
                tracing::info!(socket = %path.display(), "API listening");
                sockets.push(path);
                servers.push(tokio::spawn(listen::serve_unix(
                    daemon.clone(),
                    listener,
                    opts,
                    shutdown,
                )));
            }
            Host::Tcp(addr) => {
                let Some(tls) = tls.clone() else {
                    // require_tls ran before; never serve TCP without it.
                    anyhow::bail!("tcp://{addr}: TCP listeners need mutual TLS");
                };
                let listener = tokio::net::TcpListener::bind(addr.as_str())
                    .await
                    .with_context(|| format!("listening on tcp://{addr}"))?;
                let local = listener.local_addr()?;
                tracing::info!(address = %local, "API listening (TLS, client certificates required)");
                servers.push(tokio::spawn(listen::serve_tls(
                    daemon.clone(),
                    listener,
                    tls,
                    opts,
                    shutdown,
                )));
            }
        }
    }
    tracing::info!(root = %data_root.display(), version = env!("CARGO_PKG_VERSION"), "berthd started");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
    let _ = stop_tx.send(true);
    daemon.shutdown().await;
    for s in servers {
        // Long-lived streams (logs -f, attach) end with their containers; don't hang on them.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
    }
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("berthd stopped");
    Ok(())
}
