//! `berth version`

use super::out;
use crate::client::Client;
use crate::error::report;
use crate::format::{Template, unescape};
use anyhow::Result;
use berth_api::{API_VERSION, Version};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

/// Go's platform names.
pub fn go_os_arch() -> (String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    (std::env::consts::OS.to_string(), arch.to_string())
}

/// A `label:   value` line, the value in column 21 (docker's tabwriter, min width 20).
fn line(out: &mut String, label: &str, value: &str) {
    let label = format!("{label}:");
    let pad = 20usize.saturating_sub(label.len()).max(1);
    out.push_str(&label);
    out.push_str(&" ".repeat(pad));
    out.push_str(value);
    out.push('\n');
}

pub fn client_section() -> String {
    let (os, arch) = go_os_arch();
    let mut s = String::from("Client:\n");
    line(&mut s, " Version", env!("CARGO_PKG_VERSION"));
    line(&mut s, " API version", API_VERSION);
    line(&mut s, " OS/Arch", &format!("{os}/{arch}"));
    s
}

pub fn server_section(v: &Version) -> String {
    let mut s = String::from("Server:");
    if !v.platform.name.is_empty() {
        s.push(' ');
        s.push_str(&v.platform.name);
    }
    s.push('\n');
    s.push_str(" Engine:\n");
    line(&mut s, "  Version", &v.version);
    line(
        &mut s,
        "  API version",
        &format!("{} (minimum version {})", v.api_version, v.min_api_version),
    );
    if !v.git_commit.is_empty() {
        line(&mut s, "  Git commit", &v.git_commit);
    }
    if !v.build_time.is_empty() {
        line(&mut s, "  Built", &v.build_time);
    }
    line(&mut s, "  OS/Arch", &format!("{}/{}", v.os, v.arch));
    line(&mut s, "  Experimental", &v.experimental.to_string());
    for c in v.components.iter().filter(|c| c.name != "Engine") {
        s.push_str(&format!(" {}:\n", c.name));
        line(&mut s, "  Version", &c.version);
        for (k, val) in &c.details {
            line(&mut s, &format!("  {k}"), val);
        }
    }
    s
}

fn client_value() -> Value {
    let (os, arch) = go_os_arch();
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "Os": os,
        "Arch": arch,
    })
}

pub async fn run(host: &str, args: VersionArgs) -> Result<i32> {
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some(f) => Some(Template::parse(&unescape(f)).map_err(|e| {
            crate::error::StatusError::new(1, format!("template parsing error: {e}"))
        })?),
    };
    let server = match Client::new(host) {
        Ok(client) => client.get_json::<Value>("/version").await,
        Err(e) => Err(e),
    };
    if let Some(t) = template {
        let data = json!({
            "Client": client_value(),
            "Server": server.as_ref().ok().cloned().unwrap_or(Value::Null),
        });
        let text = t
            .render(&data)
            .map_err(|e| crate::error::StatusError::new(1, e.to_string()))?;
        out(&format!("{text}\n"));
        return match server {
            Ok(_) => Ok(0),
            Err(e) => Ok(report(&e)),
        };
    }
    out(&client_section());
    match server {
        Ok(v) => {
            let v: Version = serde_json::from_value(v)?;
            out(&format!("\n{}", server_section(&v)));
            Ok(0)
        }
        Err(e) => {
            out("\n");
            Ok(report(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{VersionComponent, VersionPlatform};
    use std::collections::BTreeMap;

    #[test]
    fn sections() {
        let c = client_section();
        assert!(c.starts_with("Client:\n Version:           "), "{c}");
        assert!(c.contains("\n API version:       1.44\n"), "{c}");
        let v = Version {
            platform: VersionPlatform {
                name: "Berth Engine".into(),
            },
            version: "0.1.0".into(),
            api_version: "1.44".into(),
            min_api_version: "1.24".into(),
            git_commit: String::new(),
            go_version: String::new(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: String::new(),
            build_time: String::new(),
            experimental: false,
            components: vec![VersionComponent {
                name: "wasmtime".into(),
                version: "48.0.8".into(),
                details: BTreeMap::new(),
            }],
        };
        assert_eq!(
            server_section(&v),
            "Server: Berth Engine\n Engine:\n  Version:          0.1.0\n  API version:      1.44 (minimum version 1.24)\n  OS/Arch:          linux/amd64\n  Experimental:     false\n wasmtime:\n  Version:          48.0.8\n"
        );
    }
}
