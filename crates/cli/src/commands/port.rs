//! `berth port`

use crate::client::{Client, path_escape};
use crate::error::StatusError;
use crate::format::natural_cmp;
use crate::outln;
use anyhow::Result;
use berth_api::PortBinding;
use clap::Args;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// docker's `port` output lines for `NetworkSettings.Ports`, naturally sorted; `Err` is the
/// message for an invalid or unpublished `private` port.
pub fn port_lines(
    ports: &BTreeMap<String, Option<Vec<PortBinding>>>,
    private: Option<&str>,
    container: &str,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    match private {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if port.parse::<u16>().is_err() {
                return Err(format!(
                    "Error: invalid port ({port}): strconv.ParseUint: parsing {}: invalid syntax",
                    crate::format::go_quote(port)
                ));
            }
            let frontends = ports
                .get(&format!("{port}/{proto}"))
                .and_then(|f| f.as_ref())
                .filter(|f| !f.is_empty())
                .ok_or_else(|| {
                    format!("Error: No public port '{spec}' published for {container}")
                })?;
            for f in frontends {
                out.push(join_host_port(&f.host_ip, &f.host_port));
            }
        }
        None => {
            for (from, frontends) in ports {
                for f in frontends.iter().flatten() {
                    out.push(format!(
                        "{from} -> {}",
                        join_host_port(&f.host_ip, &f.host_port)
                    ));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

pub async fn run(client: &Client, args: PortArgs) -> Result<i32> {
    let inspect: serde_json::Value = client
        .get_json(&format!(
            "/containers/{}/json",
            path_escape(&args.container)
        ))
        .await?;
    let ports: BTreeMap<String, Option<Vec<PortBinding>>> = inspect
        .get("NetworkSettings")
        .and_then(|n| n.get("Ports"))
        .filter(|p| p.is_object())
        .map(|p| serde_json::from_value(p.clone()))
        .transpose()?
        .unwrap_or_default();
    let lines = port_lines(&ports, args.port.as_deref(), &args.container)
        .map_err(|m| StatusError::new(1, m))?;
    for line in lines {
        outln!("{line}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    fn ports() -> BTreeMap<String, Option<Vec<PortBinding>>> {
        [
            (
                "80/tcp".to_string(),
                Some(vec![b("0.0.0.0", "8080"), b("::", "8080")]),
            ),
            ("9000/tcp".to_string(), Some(vec![b("127.0.0.1", "9000")])),
            ("53/udp".to_string(), Some(vec![b("0.0.0.0", "5353")])),
            ("81/tcp".to_string(), None),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn all_mappings() {
        assert_eq!(
            port_lines(&ports(), None, "web").unwrap(),
            vec![
                "53/udp -> 0.0.0.0:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "9000/tcp -> 127.0.0.1:9000",
            ]
        );
        assert!(
            port_lines(&BTreeMap::new(), None, "web")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn one_port() {
        assert_eq!(
            port_lines(&ports(), Some("80"), "web").unwrap(),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            port_lines(&ports(), Some("53/udp"), "web").unwrap(),
            vec!["0.0.0.0:5353"]
        );
        assert_eq!(
            port_lines(&ports(), Some("81"), "web").unwrap_err(),
            "Error: No public port '81' published for web"
        );
        assert_eq!(
            port_lines(&ports(), Some("53"), "web").unwrap_err(),
            "Error: No public port '53' published for web"
        );
        assert!(
            port_lines(&ports(), Some("http"), "web")
                .unwrap_err()
                .starts_with("Error: invalid port (http)")
        );
    }
}
