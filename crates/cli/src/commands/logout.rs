//! `berth logout`: forget the stored credentials of a registry (no daemon involved).

use crate::config::{self, ConfigFile};
use crate::outln;
use anyhow::Result;
use clap::Args;
use std::path::Path;

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// Remove the entries of `server` from the file at `path`; returns the line to print.
pub fn logout(path: &Path, server: Option<&str>) -> Result<String> {
    let key = config::server_key(server);
    let mut cfg = ConfigFile::load(path)?;
    if !cfg.erase(&key) {
        return Ok(format!("Not logged in to {key}"));
    }
    cfg.save()?;
    Ok(format!("Removing login credentials for {key}"))
}

pub async fn run(args: LogoutArgs) -> Result<i32> {
    let path = config::default_path()?;
    let line = logout(&path, args.server.as_deref())?;
    outln!("{line}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credentials;

    #[test]
    fn logout_removes_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, br#"{"auths":{},"credsStore":"x"}"#).unwrap();
        let mut cfg = ConfigFile::load(&path).unwrap();
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        cfg.store("localhost:5000", &c);
        cfg.store(config::DEFAULT_SERVER, &c);
        cfg.save().unwrap();

        assert_eq!(
            logout(&path, Some("https://localhost:5000/")).unwrap(),
            "Removing login credentials for localhost:5000"
        );
        assert_eq!(
            logout(&path, Some("localhost:5000")).unwrap(),
            "Not logged in to localhost:5000"
        );
        assert_eq!(
            logout(&path, None).unwrap(),
            "Removing login credentials for https://index.docker.io/v1/"
        );
        assert_eq!(
            logout(&path, Some("docker.io")).unwrap(),
            "Not logged in to https://index.docker.io/v1/"
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc, serde_json::json!({"auths": {}, "credsStore": "x"}));

        // no file at all: nothing to do, nothing created
        let missing = dir.path().join("none").join("config.json");
        assert_eq!(
            logout(&missing, Some("r.example")).unwrap(),
            "Not logged in to r.example"
        );
        assert!(!missing.exists());
    }
}
