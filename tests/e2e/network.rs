//! Network views through the real CLI: published wasi:http services, names on user networks,
//! the egress policy and `--network none`. Loopback only.

use crate::harness::{Daemon, Run};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// One HTTP/1.0 GET; the body.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to published port");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// The host port `berth port` reports for container port 80.
fn host_port(d: &Daemon, name: &str) -> u16 {
    let r = d.berth(&["port", name, "80"]);
    let line = r.ok().stdout.trim().to_string();
    line.rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{r:#?}"))
}

fn wait_listening(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

#[test]
fn two_wasi_http_services_on_container_port_80_serve_many_requests() {
    let d = Daemon::start();
    d.build_example("http-hello", "web:1").ok();
    for name in ["web1", "web2"] {
        d.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "-e",
            &format!("WHO={name}"),
            "-p",
            "127.0.0.1::80",
            "web:1",
        ])
        .ok();
    }
    let (p1, p2) = (host_port(&d, "web1"), host_port(&d, "web2"));
    assert_ne!(p1, p2);
    wait_listening(p1);
    wait_listening(p2);
    for i in 0..100 {
        let port = if i % 2 == 0 { p1 } else { p2 };
        assert_eq!(http_get(port, "/"), "hello from berth\n");
        // A fresh instance per request: the guest's counter never passes 1.
        assert_eq!(http_get(port, "/count").trim(), "1");
    }
    assert_eq!(http_get(p1, "/env/WHO").trim(), "web1");
    assert_eq!(http_get(p2, "/env/WHO").trim(), "web2");
    let ps = d.berth(&["ps"]).ok().stdout.clone();
    assert!(ps.contains(&format!("127.0.0.1:{p1}->80/tcp")), "{ps}");
    d.berth(&["stop", "web1"]).ok();
    assert!(
        TcpStream::connect(("127.0.0.1", p1)).is_err(),
        "stopped service still listens"
    );
    assert_eq!(http_get(p2, "/"), "hello from berth\n");
}

#[test]
fn the_host_port_must_be_free() {
    let d = Daemon::start();
    d.build_example("http-hello", "web:1").ok();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let r = d.berth(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "web:1",
    ]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("port is already allocated"), "{r:#?}");
    assert_eq!(d.berth(&["ps", "-q"]).ok().stdout.trim(), "");
}

fn probe(d: &Daemon) {
    d.build_test_guest("probe", "probe:1");
}

fn run_probe(d: &Daemon, flags: &[&str], args: &[&str]) -> Run {
    let mut v = vec!["run", "--rm"];
    v.extend_from_slice(flags);
    v.push("probe:1");
    v.extend_from_slice(args);
    d.berth(&v)
}

#[test]
fn containers_reach_each_other_by_name_on_a_user_network_and_not_across() {
    let d = Daemon::start();
    probe(&d);
    d.berth(&["network", "create", "front"]).ok();
    d.berth(&["network", "create", "back"]).ok();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "front",
        "-e",
        "HOSTNAME=srv",
        "probe:1",
        "listen",
        "80",
    ])
    .ok();
    // Same network: the name resolves and the listener answers.
    let mut reached = None;
    for _ in 0..100 {
        let r = run_probe(&d, &["--network", "front"], &["connect", "srv:80"]);
        if r.code == 0 {
            reached = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = reached.expect("srv:80 never answered on its own network");
    assert!(
        r.stdout.contains("connected") && r.stdout.contains("hello from srv"),
        "{r:#?}"
    );
    // Another network, and the default one: no name, no route.
    let r = run_probe(&d, &["--network", "back"], &["connect", "srv:80"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let r = run_probe(&d, &["--network", "back"], &["resolve", "srv"]);
    assert_eq!(r.code, 1, "{r:#?}");
    let r = run_probe(&d, &[], &["connect", "srv:80"]);
    assert_eq!(r.code, 1, "{r:#?}");
    // Inspect shows the member.
    let r = d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}{{end}}",
        "front",
    ]);
    assert_eq!(r.ok().stdout.trim(), "srv");
}

#[test]
fn egress_to_the_host_is_denied_unless_allowed() {
    let d = Daemon::start();
    probe(&d);
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (mut s, _) = host.accept().unwrap();
        s.write_all(b"from the host\n").unwrap();
    });
    let target = format!("127.0.0.1:{port}");
    for t in [
        target.as_str(),
        "10.1.2.3:80",
        "169.254.169.254:80",
        "[::1]:22",
    ] {
        let r = run_probe(&d, &[], &["connect", t]);
        assert_eq!(r.code, 1, "{t}: {r:#?}");
        assert!(!r.stdout.contains("connected"), "{t}: {r:#?}");
    }
    let r = run_probe(&d, &["--allow-outbound", &target], &["connect", &target]);
    assert!(r.ok().stdout.contains("from the host"), "{r:#?}");
    served.join().unwrap();
    // The daemon's own API socket is not reachable either: it is a unix socket outside
    // every grant, and the API has no TCP listener.
    let r = run_probe(&d, &[], &["cat", d.host().trim_start_matches("unix://")]);
    assert_eq!(r.code, 1, "{r:#?}");
}

#[test]
fn network_none_has_no_listener_and_no_connect() {
    let d = Daemon::start();
    probe(&d);
    let r = run_probe(&d, &["--network", "none"], &["listen", "80", "1"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(!r.stdout.contains("listening"), "{r:#?}");
    let r = run_probe(&d, &["--network", "none"], &["connect", "1.1.1.1:53"]);
    assert_eq!(r.code, 1, "{r:#?}");
    // A wasi:http service cannot run without a network.
    d.build_example("http-hello", "web:1").ok();
    let r = d.berth(&["run", "--network", "none", "--name", "nonet", "web:1"]);
    assert_ne!(r.code, 0, "{r:#?}");
    let r = d.berth(&["inspect", "-f", "{{.State.Error}}", "nonet"]);
    assert!(r.ok().stdout.contains("needs a network"), "{r:#?}");
}
