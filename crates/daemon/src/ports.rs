//! Published ports: `-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]` and `-P`.
//!
//! The CLI sends `HostConfig.PortBindings` (`"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`)
//! and `Config.ExposedPorts`. Host ports of 0 are chosen at each start; a host port held by
//! another running container, or by anything else on the host, fails the start as Docker's
//! "port is already allocated" does.

use crate::container::PortSpec;
use crate::error::{DaemonError, Result};
use berth_api as api;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// `80`, `80/tcp`, `53/udp` → (port, proto).
pub fn parse_port_key(key: &str) -> Result<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp") {
        return Err(DaemonError::Invalid(format!(
            "invalid proto {proto:?} in port {key:?}: Berth publishes tcp and udp"
        )));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, proto)),
        _ => Err(DaemonError::Invalid(format!(
            "invalid containerPort: {}",
            key.chars().take(40).collect::<String>()
        ))),
    }
}

/// The exposed ports of image and request, normalised to `PORT/PROTO`, sorted.
pub fn exposed<'a>(
    maps: impl IntoIterator<Item = Option<&'a std::collections::BTreeMap<String, serde_json::Value>>>,
) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for map in maps.into_iter().flatten() {
        for key in map.keys() {
            let (p, proto) = parse_port_key(key)?;
            out.insert(format!("{p}/{proto}"));
        }
    }
    Ok(out.into_iter().collect())
}

/// Requested publications from `PortBindings`, plus every exposed port for `-P`.
pub fn parse(host: &api::HostConfig, exposed: &[String]) -> Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    for (key, bindings) in host.port_bindings.iter().flatten() {
        let (container_port, proto) = parse_port_key(key)?;
        for b in bindings.iter().flatten() {
            let host_ip = match b.host_ip.as_str() {
                "" => "0.0.0.0".to_string(),
                ip => ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| {
                        DaemonError::Invalid(format!("invalid host IP {:?} for port {key}", ip))
                    })?
                    .to_string(),
            };
            let host_port = match b.host_port.as_str() {
                "" => 0,
                p => p.parse::<u16>().map_err(|_| {
                    DaemonError::Invalid(format!(
                        "invalid host port {:?} for port {key}: a single port 0-65535",
                        p.chars().take(20).collect::<String>()
                    ))
                })?,
            };
            out.push(PortSpec {
                container_port,
                proto: proto.clone(),
                host_ip,
                host_port,
            });
        }
    }
    if host.publish_all_ports.unwrap_or(false) {
        for key in exposed {
            let (container_port, proto) = parse_port_key(key)?;
            if !out
                .iter()
                .any(|p| p.container_port == container_port && p.proto == proto)
            {
                out.push(PortSpec {
                    container_port,
                    proto,
                    host_ip: "0.0.0.0".into(),
                    host_port: 0,
                });
            }
        }
    }
    let mut seen = BTreeSet::new();
    for p in &out {
        if p.host_port != 0 && !seen.insert((p.host_ip.clone(), p.host_port, p.proto.clone())) {
            return Err(DaemonError::Invalid(format!(
                "Bind for {}:{} failed: port is already allocated",
                p.host_ip, p.host_port
            )));
        }
    }
    Ok(out)
}

/// Whether two publications would fight for the same host socket.
pub fn overlaps(a: &PortSpec, b: &PortSpec) -> bool {
    let unspecified = |ip: &str| ip == "0.0.0.0" || ip == "::";
    a.proto == b.proto
        && a.host_port == b.host_port
        && (a.host_ip == b.host_ip || unspecified(&a.host_ip) || unspecified(&b.host_ip))
}

/// Chooses host ports for `0` and checks each one is free on the host right now (bind and
/// release), so a clash shows at start as Docker's error instead of inside the guest.
pub fn allocate(requested: &[PortSpec], taken: &[PortSpec]) -> Result<Vec<PortSpec>> {
    let mut out: Vec<PortSpec> = Vec::new();
    for p in requested {
        let ip: IpAddr = p
            .host_ip
            .parse()
            .map_err(|_| DaemonError::Invalid(format!("invalid host IP {:?}", p.host_ip)))?;
        let mut p = p.clone();
        let in_use = |p: &PortSpec| taken.iter().chain(out.iter()).any(|t| overlaps(t, p));
        if p.host_port != 0 && in_use(&p) {
            return Err(already_allocated(&p));
        }
        let addr = SocketAddr::new(ip, p.host_port);
        let bound = if p.proto == "udp" {
            std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr())
        } else {
            std::net::TcpListener::bind(addr).and_then(|s| s.local_addr())
        };
        match bound {
            Ok(a) => p.host_port = a.port(),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(already_allocated(&p));
            }
            Err(e) => {
                return Err(DaemonError::Invalid(format!(
                    "cannot publish {}:{}/{}: {e}",
                    p.host_ip, p.host_port, p.proto
                )));
            }
        }
        out.push(p);
    }
    Ok(out)
}

fn already_allocated(p: &PortSpec) -> DaemonError {
    DaemonError::Conflict(format!(
        "driver failed programming external connectivity: Bind for {}:{} failed: port is already allocated",
        p.host_ip, p.host_port
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ip: &str, port: &str) -> api::PortBinding {
        api::PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn bindings_and_publish_all() {
        let host = api::HostConfig {
            port_bindings: Some(
                [
                    ("80/tcp".to_string(), Some(vec![binding("", "8080")])),
                    ("53/udp".to_string(), Some(vec![binding("127.0.0.1", "")])),
                    ("9000".to_string(), None),
                ]
                .into(),
            ),
            publish_all_ports: Some(true),
            ..Default::default()
        };
        let got = parse(&host, &["80/tcp".into(), "443/tcp".into()]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].container_port, got[0].proto.as_str()), (53, "udp"));
        assert_eq!(got[0].host_ip, "127.0.0.1");
        assert_eq!((got[1].container_port, got[1].host_port), (80, 8080));
        assert_eq!((got[2].container_port, got[2].host_port), (443, 0));
    }

    #[test]
    fn bad_ports_are_refused() {
        for (key, b) in [
            ("0/tcp", binding("", "1")),
            ("80/sctp", binding("", "1")),
            ("x", binding("", "1")),
            ("80", binding("not-an-ip", "1")),
            ("80", binding("", "70000")),
            ("80", binding("", "80-81")),
        ] {
            let host = api::HostConfig {
                port_bindings: Some([(key.to_string(), Some(vec![b]))].into()),
                ..Default::default()
            };
            assert!(parse(&host, &[]).is_err(), "{key}");
        }
    }

    #[test]
    fn allocation_picks_free_ports_and_refuses_taken_ones() {
        let spec = |port| PortSpec {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            host_port: port,
        };
        let got = allocate(&[spec(0)], &[]).unwrap();
        assert_ne!(got[0].host_port, 0);
        // Held by another container (0.0.0.0 overlaps every address).
        let mut other = got[0].clone();
        other.host_ip = "0.0.0.0".into();
        assert!(matches!(
            allocate(&[got[0].clone()], &[other]),
            Err(DaemonError::Conflict(m)) if m.contains("port is already allocated")
        ));
        // Held by some other process on the host.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(allocate(&[spec(port)], &[]).is_err());
    }
}
