//! Network probes, for the network-view tests (`crates/runtime/tests/net.rs`).
//!
//! ```text
//! listen PORT [N]        bind 0.0.0.0:PORT, print `listening <local_addr>`, then accept N
//!                        connections (default: no limit); for each print
//!                        `accepted <peer_addr> <local_addr>`, write
//!                        `hello from <HOSTNAME or probe>\n` and close
//! connect HOST:PORT      print `connected <peer_addr>` and the first line read
//! resolve NAME           print each address NAME resolves to (exit 1 if none)
//! udp-send HOST:PORT MSG send MSG as one datagram from a socket bound to 0.0.0.0:0
//! ```
//!
//! Exit code 0 on success; 1 on failure, with the error on stderr.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

/// Runs a network command if `args` names one; `None` when it is not a network command.
pub fn main(args: &[String]) -> Option<i32> {
    let (cmd, rest) = args.split_first()?;
    let result = match (cmd.as_str(), rest) {
        ("listen", [port]) => listen(port, None),
        ("listen", [port, n]) => match n.parse() {
            Ok(n) => listen(port, Some(n)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
        },
        ("connect", [target]) => connect(target),
        ("resolve", [name]) => resolve(name),
        ("udp-send", [target, msg]) => udp_send(target, msg),
        ("listen" | "connect" | "resolve" | "udp-send", _) => {
            eprintln!("probe {cmd}: wrong arguments");
            return Some(2);
        }
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("probe {}: {e} ({:?})", args.join(" "), e.kind());
            1
        }
    })
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn listen(port: &str, n: Option<usize>) -> io::Result<()> {
    let port: u16 = port
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(("0.0.0.0", port))?;
    say(&format!("listening {}", listener.local_addr()?));
    let hostname = std::env::var("HOSTNAME").unwrap_or_else(|_| "probe".to_string());
    let mut served = 0;
    while n.is_none_or(|n| served < n) {
        let (mut stream, peer) = listener.accept()?;
        let local = stream
            .local_addr()
            .map_or_else(|e| format!("?{e}"), |a| a.to_string());
        say(&format!("accepted {peer} {local}"));
        stream.write_all(format!("hello from {hostname}\n").as_bytes())?;
        drop(stream);
        served += 1;
    }
    Ok(())
}

fn connect(target: &str) -> io::Result<()> {
    let stream = TcpStream::connect(target)?;
    say(&format!("connected {}", stream.peer_addr()?));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    say(line.trim_end());
    Ok(())
}

fn resolve(name: &str) -> io::Result<()> {
    let addrs: Vec<_> = (name, 0).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
    }
    for a in addrs {
        say(&a.ip().to_string());
    }
    Ok(())
}

fn udp_send(target: &str, msg: &str) -> io::Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    let sent = socket.send_to(msg.as_bytes(), target)?;
    say(&format!("sent {sent}"));
    Ok(())
}
