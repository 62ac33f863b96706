//! What a container is granted besides its root: volumes, bind mounts and tmpfs dirs.
//!
//! `-v`, `--mount` and `--tmpfs` arrive as `HostConfig.Binds`, `.Mounts` and `.Tmpfs`; they
//! are parsed once at create into [`MountSpec`]s, persisted in the container's config, and
//! turned into WASI preopens at every start.

use crate::error::{DaemonError, Result};
use berth_api as api;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Bind => "bind",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// One grant, as persisted in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Volume name, absolute host path, or empty (tmpfs; anonymous volume before create).
    pub source: String,
    /// Normalised absolute guest path, never `/`.
    pub target: String,
    pub read_only: bool,
    /// For `bind`: whether a missing source is created (`-v`) or an error (`--mount`).
    #[serde(default)]
    pub create_source: bool,
}

/// Parses `Binds`, `Mounts` and `Tmpfs` of a create request. Targets must be absolute,
/// distinct and not `/`.
pub fn parse(host: &api::HostConfig) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    for bind in host.binds.iter().flatten() {
        out.push(parse_bind(bind)?);
    }
    for m in host.mounts.iter().flatten() {
        out.push(parse_mount(m)?);
    }
    for (path, opts) in host.tmpfs.iter().flatten() {
        check_tmpfs_opts(opts)?;
        out.push(MountSpec {
            kind: MountKind::Tmpfs,
            source: String::new(),
            target: target(path)?,
            read_only: opts.split(',').any(|o| o == "ro"),
            create_source: false,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &out {
        if !seen.insert(m.target.as_str()) {
            return Err(DaemonError::Invalid(format!(
                "Duplicate mount point: {}",
                m.target
            )));
        }
    }
    Ok(out)
}

fn invalid(what: &str, why: impl std::fmt::Display) -> DaemonError {
    let what: String = what.chars().take(200).collect();
    DaemonError::Invalid(format!("invalid mount config {what:?}: {why}"))
}

/// A guest path: absolute, normalised, not `/`, no NUL.
fn target(path: &str) -> Result<String> {
    if path.contains('\0') || path.len() > 4096 {
        return Err(invalid(path, "the target path is not valid"));
    }
    if !path.starts_with('/') {
        return Err(invalid(
            path,
            "invalid mount path: the mount path must be absolute",
        ));
    }
    let normal = berth_runtime::normalise_guest_path(path);
    if normal == "/" {
        return Err(invalid(
            path,
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(normal)
}

fn host_path(path: &str) -> Result<String> {
    if path.contains('\0') || path.len() > 4096 || !path.starts_with('/') {
        return Err(invalid(
            path,
            "the bind source must be an absolute host path",
        ));
    }
    Ok(path.to_string())
}

/// `-v SRC:DST[:OPTS]`, `-v DST` (anonymous volume).
fn parse_bind(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(invalid(spec, "too many colons")),
    };
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // SELinux relabel, copy and propagation options have nothing to act on here.
            "z" | "Z" | "nocopy" | "copy" | "private" | "rprivate" | "shared" | "rshared"
            | "slave" | "rslave" | "consistent" | "cached" | "delegated" => {}
            other => return Err(invalid(spec, format!("invalid mode: {other}"))),
        }
    }
    let target = target(dst)?;
    if source.starts_with('/') {
        return Ok(MountSpec {
            kind: MountKind::Bind,
            source: host_path(source)?,
            target,
            read_only,
            create_source: true,
        });
    }
    if !source.is_empty() {
        crate::volumes::validate_name(source)?;
    }
    Ok(MountSpec {
        kind: MountKind::Volume,
        source: source.to_string(),
        target,
        read_only,
        create_source: false,
    })
}

/// One `HostConfig.Mounts` entry (`--mount`).
fn parse_mount(m: &api::Mount) -> Result<MountSpec> {
    let kind = m.kind.as_deref().unwrap_or("volume");
    let dst = m
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            DaemonError::Invalid("invalid mount config: Target must not be empty".into())
        })?;
    let target = target(dst)?;
    let source = m.source.clone().unwrap_or_default();
    let read_only = m.read_only.unwrap_or(false);
    match kind {
        "volume" => {
            if !source.is_empty() {
                crate::volumes::validate_name(&source)?;
            }
            if m.bind_options.is_some() || m.tmpfs_options.is_some() {
                return Err(invalid(
                    dst,
                    "only VolumeOptions may be set for type \"volume\"",
                ));
            }
            Ok(MountSpec {
                kind: MountKind::Volume,
                source,
                target,
                read_only,
                create_source: false,
            })
        }
        "bind" => {
            if source.is_empty() {
                return Err(invalid(
                    dst,
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            Ok(MountSpec {
                kind: MountKind::Bind,
                source: host_path(&source)?,
                target,
                read_only,
                create_source: false,
            })
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(invalid(
                    dst,
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            Ok(MountSpec {
                kind: MountKind::Tmpfs,
                source,
                target,
                read_only,
                create_source: false,
            })
        }
        other => Err(invalid(
            dst,
            format!("mount type {other:?} is not supported (volume, bind or tmpfs)"),
        )),
    }
}

/// `--tmpfs /path:size=64m,mode=1777`: options are checked for shape; the size is not
/// enforced (the scratch dir lives on the daemon's disk; see docs/threat-model.md).
fn check_tmpfs_opts(opts: &str) -> Result<()> {
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or_default();
        if !matches!(
            key,
            "size"
                | "mode"
                | "ro"
                | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "uid"
                | "gid"
                | "nr_inodes"
        ) {
            return Err(invalid(opts, format!("unknown tmpfs option {key:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(binds: &[&str]) -> api::HostConfig {
        api::HostConfig {
            binds: Some(binds.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn binds_parse_like_docker() {
        let m = parse(&host(&["data:/data:ro", "/srv/x:/x/./y/", "/anon"])).unwrap();
        assert_eq!(
            m[0],
            MountSpec {
                kind: MountKind::Volume,
                source: "data".into(),
                target: "/data".into(),
                read_only: true,
                create_source: false
            }
        );
        assert_eq!(m[1].kind, MountKind::Bind);
        assert_eq!(m[1].target, "/x/y");
        assert!(m[1].create_source && !m[1].read_only);
        assert_eq!((m[2].kind, m[2].source.as_str()), (MountKind::Volume, ""));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, why) in [
            ("data:relative", "must be absolute"),
            ("data:/", "can't be '/'"),
            ("data:/a/..", "can't be '/'"),
            ("../x:/x", "invalid characters"),
            ("a/b:/x", "invalid characters"),
            ("data:/x:rx", "invalid mode"),
            ("a:b:c:d", "too many colons"),
            ("/srv\0:/x", "absolute host path"),
        ] {
            let err = parse(&host(&[spec])).unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
        }
        let err = parse(&host(&["a1:/x", "/srv:/x/"]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Duplicate mount point: /x");
    }

    #[test]
    fn mounts_and_tmpfs() {
        let h = api::HostConfig {
            mounts: Some(vec![
                api::Mount {
                    kind: Some("bind".into()),
                    source: Some("/srv".into()),
                    target: Some("/srv".into()),
                    read_only: Some(true),
                    ..Default::default()
                },
                api::Mount {
                    kind: Some("tmpfs".into()),
                    target: Some("/scratch".into()),
                    ..Default::default()
                },
            ]),
            tmpfs: Some([("/run".to_string(), "size=64m".to_string())].into()),
            ..Default::default()
        };
        let m = parse(&h).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m[0].read_only && !m[0].create_source);
        assert_eq!(m[1].kind, MountKind::Tmpfs);
        assert_eq!(m[2].target, "/run");

        let bad = |m: api::Mount| {
            parse(&api::HostConfig {
                mounts: Some(vec![m]),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert!(
            bad(api::Mount {
                kind: Some("bind".into()),
                target: Some("/x".into()),
                ..Default::default()
            })
            .contains("Source must not be empty")
        );
        assert!(
            bad(api::Mount {
                kind: Some("tmpfs".into()),
                source: Some("x".into()),
                target: Some("/x".into()),
                ..Default::default()
            })
            .contains("Source must be empty")
        );
        assert!(
            bad(api::Mount {
                kind: Some("npipe".into()),
                target: Some("/x".into()),
                ..Default::default()
            })
            .contains("not supported")
        );
        assert!(bad(api::Mount::default()).contains("Target must not be empty"));
        let err = parse(&api::HostConfig {
            tmpfs: Some([("/t".to_string(), "exec,evil=1".to_string())].into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("unknown tmpfs option"));
    }
}
