//! `berth info`

use super::out;
use crate::client::Client;
use crate::error::{StatusError, report};
use crate::format::{Template, bytes_size, unescape};
use anyhow::Result;
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// The server section of `docker info`.
pub fn server_section(info: &Value) -> String {
    let mut o = String::from("Server:\n");
    let mut kv = |k: &str, v: String| o.push_str(&format!(" {k}: {v}\n"));
    kv("Containers", n(info, "Containers").to_string());
    kv(" Running", n(info, "ContainersRunning").to_string());
    kv(" Paused", n(info, "ContainersPaused").to_string());
    kv(" Stopped", n(info, "ContainersStopped").to_string());
    kv("Images", n(info, "Images").to_string());
    kv("Server Version", s(info, "ServerVersion").into());
    kv("Storage Driver", s(info, "Driver").into());
    kv("Logging Driver", s(info, "LoggingDriver").into());
    if !s(info, "CgroupDriver").is_empty() {
        kv("Cgroup Driver", s(info, "CgroupDriver").into());
    }
    if !s(info, "CgroupVersion").is_empty() {
        kv("Cgroup Version", s(info, "CgroupVersion").into());
    }
    if let Some(rt) = info.get("Runtimes").and_then(Value::as_object)
        && !rt.is_empty()
    {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        kv("Runtimes", names.join(" "));
    }
    kv("Default Runtime", s(info, "DefaultRuntime").into());
    let swarm = info
        .get("Swarm")
        .and_then(|sw| sw.get("LocalNodeState"))
        .and_then(Value::as_str)
        .unwrap_or("inactive");
    kv("Swarm", swarm.into());
    if !s(info, "KernelVersion").is_empty() {
        kv("Kernel Version", s(info, "KernelVersion").into());
    }
    kv("Operating System", s(info, "OperatingSystem").into());
    kv("OSType", s(info, "OSType").into());
    kv("Architecture", s(info, "Architecture").into());
    kv("CPUs", n(info, "NCPU").to_string());
    kv("Total Memory", bytes_size(n(info, "MemTotal") as f64));
    kv("Name", s(info, "Name").into());
    kv("ID", s(info, "ID").into());
    kv("Docker Root Dir", s(info, "DockerRootDir").into());
    kv("Debug Mode", "false".into());
    kv("Experimental", "false".into());
    kv(
        "Live Restore Enabled",
        info.get("LiveRestoreEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    o
}

fn client_section() -> String {
    format!(
        "Client:\n Version:    {}\n Debug Mode: false\n\n",
        env!("CARGO_PKG_VERSION")
    )
}

pub async fn run(client: &Client, args: InfoArgs) -> Result<i32> {
    if let Some(f) = args.format.as_deref().filter(|f| !f.is_empty()) {
        let t = Template::parse(&unescape(f))
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
        let info: Value = client.get_json("/info").await?;
        let text = t
            .render(&info)
            .map_err(|e| StatusError::new(1, e.to_string()))?;
        out(&format!("{text}\n"));
        return Ok(0);
    }
    out(&client_section());
    let info: Value = match client.get_json("/info").await {
        Ok(i) => i,
        Err(e) => {
            out("Server:\n");
            return Ok(report(&e));
        }
    };
    out(&server_section(&info));
    if let Some(w) = info.get("Warnings").and_then(Value::as_array) {
        for w in w.iter().filter_map(Value::as_str) {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields() {
        let info = json!({"Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0,
            "ContainersStopped": 2, "Images": 4, "ServerVersion": "0.1.0", "Driver": "berth",
            "LoggingDriver": "json-file", "DefaultRuntime": "wasmtime", "OperatingSystem": "Debian",
            "OSType": "linux", "Architecture": "x86_64", "NCPU": 2, "MemTotal": 16_663_314_432i64,
            "Name": "host", "ID": "abc", "DockerRootDir": "/var/lib/berth",
            "Swarm": {"LocalNodeState": "inactive"}});
        let text = server_section(&info);
        for want in [
            "Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n",
            " Server Version: 0.1.0\n",
            " Storage Driver: berth\n",
            " Logging Driver: json-file\n",
            " Default Runtime: wasmtime\n",
            " Operating System: Debian\n",
            " OSType: linux\n",
            " Architecture: x86_64\n",
            " CPUs: 2\n",
            " Total Memory: 15.52GiB\n",
            " Name: host\n",
            " ID: abc\n",
            " Docker Root Dir: /var/lib/berth\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
}
