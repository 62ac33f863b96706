//! `berth build`: send a build context to the daemon and show the build output.

use crate::client::{Body, Client, JsonStream, query};
use crate::error::StatusError;
use crate::outln;
use anyhow::{Context, Result, bail};
use berth_api::JsonMessage;
use berth_image::dockerignore::{DockerIgnore, context_files};
use berth_image::reference::Reference;
use bytes::Bytes;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list", value_parser = parse_tag)]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub build_args: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Set the target build stage to build
    #[arg(long, value_name = "string")]
    pub target: Option<String>,
    #[arg(value_name = "PATH | -")]
    pub context: String,
}

fn parse_tag(s: &str) -> Result<String, String> {
    Reference::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// `--build-arg K=V` as the API's `buildargs` JSON; `K` alone takes the client's value (or null).
pub fn build_args_json(args: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if args.is_empty() {
        return None;
    }
    let mut map: BTreeMap<String, Option<String>> = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => map.insert(k.to_string(), Some(v.to_string())),
            None => map.insert(a.clone(), lookup(a)),
        };
    }
    serde_json::to_string(&map).ok()
}

/// A path inside the context, with `/` separators.
fn tar_name(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A tar of `files` (relative to `root`): modes and mtimes kept, owner 0:0, symlinks stored as
/// symlinks. `extra` files are appended with the given names and mode 0644.
pub fn context_tar(root: &Path, files: &[PathBuf], extra: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for rel in files {
        let full = root.join(rel);
        let meta = std::fs::symlink_metadata(&full)
            .with_context(|| format!("error checking context: {}", full.display()))?;
        let name = tar_name(rel);
        if name.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        {
            use std::os::unix::fs::PermissionsExt;
            // permission bits only, as Go's tar.FileInfoHeader writes them
            h.set_mode(meta.permissions().mode() & 0o7777);
        }
        h.set_uid(0);
        h.set_gid(0);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_size(0);
            b.append_data(&mut h, format!("{name}/"), std::io::empty())?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&full)?;
            h.set_size(0);
            b.append_link(&mut h, &name, &target)?;
        } else if ft.is_file() {
            let f = std::fs::File::open(&full).with_context(|| {
                format!("error checking context: can't open {}", full.display())
            })?;
            b.append_data(&mut h, &name, f)?;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name, data) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(now);
        b.append_data(&mut h, name, data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

/// A name for a Dockerfile from outside the context, unique within it.
fn unique_dockerfile_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = nanos ^ ((std::process::id() as u128) << 64);
    format!(".dockerfile.{:020x}", mix & ((1u128 << 80) - 1))
}

/// Whether `data` is a tar archive (the `ustar` magic).
fn is_tar(data: &[u8]) -> bool {
    data.len() >= 262 && &data[257..262] == b"ustar"
}

/// The prepared body and the `dockerfile` query value.
pub struct Prepared {
    pub tar: Vec<u8>,
    pub dockerfile: String,
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::stdin().read_to_end(&mut data)?;
    Ok(data)
}

/// Build the context tar for a directory, following docker's rules for `-f`.
pub fn prepare_dir(context: &Path, file: Option<&str>) -> Result<Prepared> {
    let meta = std::fs::metadata(context).map_err(|_| {
        anyhow::anyhow!(
            "unable to prepare context: path {:?} not found",
            context.display().to_string()
        )
    })?;
    if !meta.is_dir() {
        bail!(
            "unable to prepare context: context must be a directory: {}",
            context.display()
        );
    }
    let root = context
        .canonicalize()
        .with_context(|| format!("unable to prepare context: {}", context.display()))?;
    let ignore = match std::fs::read_to_string(root.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)
            .map_err(|e| anyhow::anyhow!("error reading .dockerignore: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::empty(),
        Err(e) => bail!("error reading .dockerignore: {e}"),
    };
    let mut files = context_files(&root, &ignore)
        .map_err(|e| anyhow::anyhow!("error checking context: {e}"))?;
    let mut extra = Vec::new();
    let dockerfile = match file {
        Some("-") => {
            let data = read_stdin()?;
            let name = unique_dockerfile_name();
            extra.push((name.clone(), data));
            name
        }
        Some(f) => {
            let path = std::env::current_dir()?.join(f);
            let abs = path.canonicalize().map_err(|_| {
                anyhow::anyhow!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                    path.display()
                )
            })?;
            match abs.strip_prefix(&root) {
                Ok(rel) if !rel.as_os_str().is_empty() => {
                    if !files.iter().any(|p| p == rel) {
                        files.push(rel.to_path_buf());
                    }
                    tar_name(rel)
                }
                _ => {
                    let data = std::fs::read(&abs)
                        .with_context(|| format!("unable to read {}", abs.display()))?;
                    let name = unique_dockerfile_name();
                    extra.push((name.clone(), data));
                    name
                }
            }
        }
        None => {
            if root.join("Dockerfile").exists() {
                "Dockerfile".to_string()
            } else if root.join("dockerfile").exists() {
                if !files.iter().any(|p| p == Path::new("dockerfile")) {
                    files.push(PathBuf::from("dockerfile"));
                }
                "dockerfile".to_string()
            } else {
                bail!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                    root.join("Dockerfile").display()
                );
            }
        }
    };
    let tar = context_tar(&root, &files, &extra)?;
    Ok(Prepared { tar, dockerfile })
}

/// The context read from stdin: a tar archive as is, or a lone Dockerfile.
fn prepare_stdin(file: Option<&str>) -> Result<Prepared> {
    if file == Some("-") {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    let data = read_stdin()?;
    if is_tar(&data) {
        return Ok(Prepared {
            tar: data,
            dockerfile: file.unwrap_or("Dockerfile").to_string(),
        });
    }
    let tar = context_tar(Path::new("."), &[], &[("Dockerfile".to_string(), data)])?;
    Ok(Prepared {
        tar,
        dockerfile: "Dockerfile".to_string(),
    })
}

pub async fn run(client: &Client, args: BuildArgs) -> Result<i32> {
    let prepared = if args.context == "-" {
        prepare_stdin(args.file.as_deref())
    } else {
        prepare_dir(Path::new(&args.context), args.file.as_deref())
    }
    .map_err(|e| StatusError::new(1, format!("{e:#}")))?;

    let mut q: Vec<(&str, String)> = args.tags.iter().map(|t| ("t", t.clone())).collect();
    q.push(("dockerfile", prepared.dockerfile.clone()));
    if let Some(b) = build_args_json(&args.build_args, &super::container_opts::process_env) {
        q.push(("buildargs", b));
    }
    if !args.labels.is_empty() {
        let labels = super::container_opts::parse_labels(&args.labels)?;
        q.push(("labels", serde_json::to_string(&labels)?));
    }
    if let Some(t) = &args.target {
        q.push(("target", t.clone()));
    }
    if args.no_cache {
        q.push(("nocache", "1".into()));
    }
    if args.quiet {
        q.push(("q", "1".into()));
    }
    let resp = client
        .post(
            &format!("/build{}", query(&q)),
            Some(Body {
                content_type: "application/x-tar",
                data: Bytes::from(prepared.tar),
            }),
        )
        .await?;

    let mut stream = JsonStream::new(resp);
    let mut buffered = String::new();
    let mut image_id: Option<String> = None;
    while let Some(msg) = stream.next::<JsonMessage>().await? {
        if let Some(detail) = &msg.error_detail {
            return Err(stream_error(args.quiet, &buffered, &detail.message));
        }
        if let Some(e) = &msg.error {
            return Err(stream_error(args.quiet, &buffered, e));
        }
        if let Some(id) = msg
            .aux
            .as_ref()
            .and_then(|a| a.get("ID"))
            .and_then(|i| i.as_str())
        {
            image_id = Some(id.to_string());
        }
        let mut text = String::new();
        if let Some(s) = &msg.stream {
            text.push_str(s);
        } else if let Some(status) = &msg.status {
            match &msg.id {
                Some(id) if !id.is_empty() => text.push_str(&format!("{id}: {status}\n")),
                _ => text.push_str(&format!("{status}\n")),
            }
        }
        if text.is_empty() {
            continue;
        }
        if args.quiet {
            buffered.push_str(&text);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
    if args.quiet {
        let id = image_id.or_else(|| {
            buffered
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("Successfully built "))
                .map(|s| s.trim().to_string())
        });
        if let Some(id) = id {
            outln!("{id}");
        }
    }
    Ok(0)
}

fn stream_error(quiet: bool, buffered: &str, message: &str) -> anyhow::Error {
    if quiet && !buffered.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(buffered.as_bytes());
    }
    StatusError::new(1, message.trim_end().to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entry = (String, tar::EntryType, u32, Vec<u8>, Option<String>);

    fn entries(tar: &[u8]) -> Vec<Entry> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let kind = e.header().entry_type();
                let mode = e.header().mode().unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, kind, mode, data, link)
            })
            .collect()
    }

    #[test]
    fn build_args() {
        let lookup = |k: &str| (k == "FROM_ENV").then(|| "v".to_string());
        assert_eq!(build_args_json(&[], &lookup), None);
        assert_eq!(
            build_args_json(&["A=1".into(), "FROM_ENV".into(), "NOPE".into()], &lookup).unwrap(),
            r#"{"A":"1","FROM_ENV":"v","NOPE":null}"#
        );
    }

    #[test]
    fn tar_keeps_modes_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("bin/run.sh", root.join("link")).unwrap();
        let files = vec![
            PathBuf::from("Dockerfile"),
            PathBuf::from("bin"),
            PathBuf::from("bin/run.sh"),
            PathBuf::from("link"),
        ];
        let tar = context_tar(
            root,
            &files,
            &[(".dockerfile.x".into(), b"FROM a\n".to_vec())],
        )
        .unwrap();
        let got = entries(&tar);
        assert_eq!(got[0].0, "Dockerfile");
        assert_eq!(got[0].3, b"FROM scratch\n");
        assert_eq!(got[1].0, "bin/");
        assert_eq!(got[1].1, tar::EntryType::Directory);
        assert_eq!(got[2].0, "bin/run.sh");
        assert_eq!(got[2].2 & 0o777, 0o755);
        assert_eq!(got[3].0, "link");
        assert_eq!(got[3].1, tar::EntryType::Symlink);
        assert_eq!(got[3].4.as_deref(), Some("bin/run.sh"));
        assert_eq!(got[4].0, ".dockerfile.x");
        assert_eq!(got[4].3, b"FROM a\n");
    }

    #[test]
    fn prepare_respects_dockerignore_and_outside_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "secret.txt\n").unwrap();
        std::fs::write(ctx.join("secret.txt"), "x").unwrap();
        std::fs::write(ctx.join("app.txt"), "y").unwrap();
        let p = prepare_dir(&ctx, None).unwrap();
        assert_eq!(p.dockerfile, "Dockerfile");
        let names: Vec<String> = entries(&p.tar).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&"app.txt".to_string()), "{names:?}");
        assert!(names.contains(&"Dockerfile".to_string()), "{names:?}");
        assert!(!names.contains(&"secret.txt".to_string()), "{names:?}");

        let outside = dir.path().join("Other.dockerfile");
        std::fs::write(&outside, "FROM other\n").unwrap();
        let p = prepare_dir(&ctx, Some(outside.to_str().unwrap())).unwrap();
        assert!(p.dockerfile.starts_with(".dockerfile."), "{}", p.dockerfile);
        let e = entries(&p.tar);
        let df = e.iter().find(|e| e.0 == p.dockerfile).unwrap();
        assert_eq!(df.3, b"FROM other\n");

        let inside = ctx.join("sub");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("Build.df"), "FROM in\n").unwrap();
        let p = prepare_dir(&ctx, Some(inside.join("Build.df").to_str().unwrap())).unwrap();
        assert_eq!(p.dockerfile, "sub/Build.df");

        assert!(prepare_dir(&dir.path().join("missing"), None).is_err());
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = prepare_dir(&empty, None).err().unwrap().to_string();
        assert!(err.contains("Dockerfile"), "{err}");
    }

    #[test]
    fn tar_detection() {
        let tar = context_tar(Path::new("."), &[], &[("a".into(), b"x".to_vec())]).unwrap();
        assert!(is_tar(&tar));
        assert!(!is_tar(b"FROM scratch\n"));
    }
}
