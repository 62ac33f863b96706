//! `berth login`: check credentials with the daemon (`POST /auth`) and store them in the
//! configuration file (see [`crate::config`]).

use crate::client::{Body, Client, read_body};
use crate::config::{self, ConfigFile, Credentials};
use crate::error::StatusError;
use crate::outln;
use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, IsTerminal, Read, Write};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username", value_name = "string")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long = "password", value_name = "string")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// The body of `POST /auth`.
#[derive(Serialize, Debug)]
pub struct AuthRequest<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub serveraddress: &'a str,
}

/// The answer of `POST /auth`.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AuthResponse {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub identity_token: String,
}

/// A password given on stdin: everything, without one trailing `\n` and then one `\r`.
pub fn password_from<R: Read>(mut input: R) -> std::io::Result<String> {
    let mut s = String::new();
    input.read_to_string(&mut s)?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    let s = s.strip_suffix('\r').unwrap_or(s);
    Ok(s.to_string())
}

/// Write `label` and read one line (without its line ending).
pub fn prompt<R: BufRead, W: Write>(input: &mut R, out: &mut W, label: &str) -> Result<String> {
    let _ = out.write_all(label.as_bytes());
    let _ = out.flush();
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("error reading the answer")?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
}

/// Turns terminal echo off on stdin until dropped (when stdin is a terminal).
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> Self {
        if !std::io::stdin().is_terminal() {
            return Self(None);
        }
        // SAFETY: tcgetattr fills the zeroed termios; tcsetattr only reads it.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return Self(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return Self(None);
            }
            Self(Some(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
            }
        }
    }
}

/// The username and password to try, from the flags, stdin or prompts.
fn credentials(args: &LoginArgs) -> Result<(String, String)> {
    if args.password.is_some() && args.password_stdin {
        return Err(
            StatusError::new(1, "--password and --password-stdin are mutually exclusive").into(),
        );
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let mut password = args.password.clone();
    if args.password_stdin {
        if args.username.is_none() {
            return Err(
                StatusError::new(1, "Must provide --username with --password-stdin").into(),
            );
        }
        password =
            Some(password_from(std::io::stdin().lock()).context("error reading the password")?);
    }
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout();
    let username = match &args.username {
        Some(u) => u.trim().to_string(),
        None => prompt(&mut stdin, &mut stdout, "Username: ")?
            .trim()
            .to_string(),
    };
    if username.is_empty() {
        return Err(StatusError::new(1, "Error: Non-null Username Required").into());
    }
    let password = match password {
        Some(p) => p,
        None => {
            let _quiet = NoEcho::new();
            prompt(&mut stdin, &mut stdout, "Password: ")?
        }
    };
    if password.is_empty() {
        return Err(StatusError::new(1, "Error: Password Required").into());
    }
    Ok((username, password))
}

/// Record a successful login: the identity token replaces the password when there is one.
pub fn remember(
    cfg: &mut ConfigFile,
    server: &str,
    username: &str,
    password: &str,
    resp: &AuthResponse,
) {
    let token = Some(resp.identity_token.clone()).filter(|t| !t.is_empty());
    cfg.store(
        server,
        &Credentials {
            username: username.to_string(),
            password: if token.is_some() {
                String::new()
            } else {
                password.to_string()
            },
            identity_token: token,
            server_address: server.to_string(),
        },
    );
}

pub async fn run(client: &Client, args: LoginArgs) -> Result<i32> {
    let server = config::server_key(args.server.as_deref());
    // a broken configuration file fails before anything is sent
    let path = config::default_path()?;
    let mut cfg = ConfigFile::load(&path)?;
    let (username, password) = credentials(&args)?;
    let body = Body::json(&AuthRequest {
        username: &username,
        password: &password,
        serveraddress: &server,
    })?;
    let resp = client.post("/auth", Some(body)).await?;
    let data = read_body(resp).await?;
    let answer: AuthResponse = if data.iter().all(u8::is_ascii_whitespace) {
        AuthResponse::default()
    } else {
        serde_json::from_slice(&data).context("invalid response from daemon for /auth")?
    };
    remember(&mut cfg, &server, &username, &password, &answer);
    cfg.save()?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        cfg.path().display()
    );
    if !answer.status.is_empty() {
        outln!("{}", answer.status);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_from_stdin_lose_one_line_ending() {
        assert_eq!(password_from(&b"pw\n"[..]).unwrap(), "pw");
        assert_eq!(password_from(&b"pw\r\n"[..]).unwrap(), "pw");
        assert_eq!(password_from(&b"pw"[..]).unwrap(), "pw");
        assert_eq!(password_from(&b" p w \n\n"[..]).unwrap(), " p w \n");
    }

    #[test]
    fn prompts_read_one_line() {
        let mut input = &b"alice\r\nsecret\n"[..];
        let mut out = Vec::new();
        assert_eq!(prompt(&mut input, &mut out, "Username: ").unwrap(), "alice");
        assert_eq!(
            prompt(&mut input, &mut out, "Password: ").unwrap(),
            "secret"
        );
        assert_eq!(prompt(&mut input, &mut out, "More: ").unwrap(), "");
        assert_eq!(out, b"Username: Password: More: ");
    }

    #[test]
    fn request_and_response_shapes() {
        let body = serde_json::to_value(AuthRequest {
            username: "u",
            password: "p",
            serveraddress: config::DEFAULT_SERVER,
        })
        .unwrap();
        assert_eq!(
            body,
            json!({"username": "u", "password": "p", "serveraddress": "https://index.docker.io/v1/"})
        );
        let r: AuthResponse =
            serde_json::from_str(r#"{"Status":"Login Succeeded","IdentityToken":""}"#).unwrap();
        assert_eq!(r.status, "Login Succeeded");
        assert_eq!(r.identity_token, "");
    }

    #[test]
    fn successful_logins_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let mut cfg = ConfigFile::load(&path).unwrap();
        let ok = AuthResponse {
            status: "Login Succeeded".into(),
            identity_token: String::new(),
        };
        remember(&mut cfg, "localhost:5000", "alice", "pw", &ok);
        let token = AuthResponse {
            identity_token: "refresh".into(),
            ..ok
        };
        remember(&mut cfg, "r.example", "bob", "pw2", &token);
        cfg.save().unwrap();
        let cfg = ConfigFile::load(&path).unwrap();
        let a = cfg.credentials("localhost:5000").unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("alice", "pw"));
        let b = cfg.credentials("r.example").unwrap().unwrap();
        assert_eq!(b.password, "");
        assert_eq!(b.identity_token.as_deref(), Some("refresh"));
    }
}
