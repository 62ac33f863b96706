//! `berth load`: send an image tar (from a file or stdin) to the daemon, streamed.

use crate::client::{Client, ReaderBody, next_chunk};
use crate::error::StatusError;
use crate::progress;
use anyhow::{Context, Result};
use clap::Args;
use hyper::Method;
use std::io::{IsTerminal, Read, Write};

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The request path: `quiet=1` (no progress bars from the daemon) with `-q` or when stdout
/// is not a terminal, as the docker CLI does.
pub fn load_path(quiet: bool, stdout_tty: bool) -> String {
    if quiet || !stdout_tty {
        "/images/load?quiet=1".to_string()
    } else {
        "/images/load".to_string()
    }
}

/// An I/O error as Go prints it: `no such file or directory`, without Rust's
/// ` (os error 2)` and with a lowercase first letter.
pub fn go_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

pub async fn run(client: &Client, args: LoadArgs) -> Result<i32> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(path) => Box::new(
            std::fs::File::open(path)
                .map_err(|e| StatusError::new(1, format!("open {path}: {}", go_error(&e))))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(
                    StatusError::new(1, "requested load from stdin, but stdin is empty").into(),
                );
            }
            Box::new(std::io::stdin())
        }
    };
    let tty = std::io::stdout().is_terminal();
    let resp = client
        .send_streaming(
            Method::POST,
            &load_path(args.quiet, tty),
            "application/x-tar",
            ReaderBody::new(input),
            &[],
        )
        .await?;
    let json = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        let mut renderer = progress::stdout_renderer(false);
        progress::display(resp, &mut renderer).await?;
    } else {
        let mut body = resp.into_body();
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = next_chunk(&mut body).await? {
            out.write_all(&chunk).context("error writing to stdout")?;
        }
        let _ = out.flush();
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(load_path(false, true), "/images/load");
        assert_eq!(load_path(true, true), "/images/load?quiet=1");
        assert_eq!(load_path(false, false), "/images/load?quiet=1");
    }

    #[test]
    fn go_style_errors() {
        let e = std::fs::File::open("/nonexistent/x.tar").unwrap_err();
        assert_eq!(go_error(&e), "no such file or directory");
        assert_eq!(go_error(&std::io::Error::other("Custom")), "custom");
    }
}
