//! `berth save`: stream the daemon's tar of one or more images to a file or to stdout.

use crate::client::{Client, next_chunk, query};
use crate::config::create_temp;
use crate::error::StatusError;
use anyhow::{Context, Result};
use clap::Args;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `/images/get?names=<a>&names=<b>`, the names as typed.
pub fn save_path(images: &[String]) -> String {
    let pairs: Vec<(&str, String)> = images.iter().map(|i| ("names", i.clone())).collect();
    format!("/images/get{}", query(&pairs))
}

/// Docker's `ValidateOutputPath`: the directory must exist and the path must not be
/// something other than a regular file.
pub fn check_output(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        return Err(format!(
            "invalid output path: directory {:?} does not exist",
            dir.display().to_string()
        ));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!(
            "invalid output path: {:?} is a directory",
            path.display().to_string()
        )),
        Ok(m) if !m.is_file() => Err(format!(
            "invalid output path: {:?} must be a directory or a regular file",
            path.display().to_string()
        )),
        _ => Ok(()),
    }
}

/// A file written under a temporary name in its final directory and renamed into place by
/// [`AtomicFile::commit`]; dropped uncommitted, it is removed and the target left alone.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<Self> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // mode 0600, as docker's temporary file has
        let (tmp, file) = create_temp(dir, ".berth_save", 0o600)?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let file = self.file.as_mut().expect("not committed yet");
        file.write_all(data)
            .with_context(|| format!("error writing {}", self.tmp.display()))
    }

    /// Flush to disk and rename over the target.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed once");
        file.sync_all()
            .with_context(|| format!("error writing {}", self.tmp.display()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target)
            .with_context(|| format!("error writing {}", self.target.display()))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

pub async fn run(client: &Client, args: SaveArgs) -> Result<i32> {
    match &args.output {
        None if std::io::stdout().is_terminal() => {
            return Err(StatusError::new(
                1,
                "Cowardly refusing to save to a terminal. Use the -o flag or redirect.",
            )
            .into());
        }
        Some(o) => check_output(Path::new(o))
            .map_err(|m| StatusError::new(1, format!("failed to save image: {m}")))?,
        None => {}
    }
    let resp = client.get(&save_path(&args.images)).await?;
    let mut body = resp.into_body();
    match &args.output {
        Some(o) => {
            let mut file = AtomicFile::create(Path::new(o))?;
            while let Some(chunk) = next_chunk(&mut body).await? {
                file.write_all(&chunk)?;
            }
            file.commit()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = next_chunk(&mut body).await? {
                out.write_all(&chunk).context("error writing to stdout")?;
            }
            out.flush().context("error writing to stdout")?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn paths() {
        assert_eq!(
            save_path(&["hello:1".into(), "localhost:5000/app".into()]),
            "/images/get?names=hello%3A1&names=localhost%3A5000%2Fapp"
        );
    }

    #[test]
    fn output_checks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output(&dir.path().join("a.tar")).is_ok());
        assert!(check_output(Path::new("relative.tar")).is_ok());
        let e = check_output(&dir.path().join("missing/a.tar")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = check_output(dir.path()).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        assert!(check_output(Path::new("/dev/null")).is_err());
    }

    #[test]
    fn atomic_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        std::fs::write(&target, b"old").unwrap();

        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new ").unwrap();
        f.write_all(b"data").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
