//! The error kinds the CLI distinguishes when it decides what to print and how to exit.

use std::fmt;

/// The daemon could not be reached at all (connect error).
#[derive(Debug)]
pub struct ConnectError {
    pub host: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot connect to the Berth daemon at {}. Is berthd running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// A `4xx`/`5xx` answer of the daemon, with the `message` of its `{"message": ...}` body.
#[derive(Debug)]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

impl DaemonError {
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

/// Exit with `code`, printing `message` (if any) to stderr first.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: Option<String>,
}

impl StatusError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }

    /// Exit with `code` without printing anything (the message was printed already).
    pub fn silent(code: i32) -> Self {
        Self {
            code,
            message: None,
        }
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for StatusError {}

/// Whether `err` is a 404 from the daemon.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<DaemonError>()
        .is_some_and(DaemonError::is_not_found)
}

/// Print `err` the way the docker CLI does and return the exit code to use.
pub fn report(err: &anyhow::Error) -> i32 {
    if let Some(s) = err.downcast_ref::<StatusError>() {
        if let Some(m) = &s.message {
            eprintln!("{m}");
        }
        return s.code;
    }
    if let Some(d) = err.downcast_ref::<DaemonError>() {
        eprintln!("{d}");
        return 1;
    }
    if let Some(c) = err.downcast_ref::<ConnectError>() {
        eprintln!("{c}");
        return 1;
    }
    eprintln!("{err:#}");
    1
}

/// Re-map an error of `run`/`create` to exit code 125, as the docker CLI does for failures
/// that happen before the container runs (connect errors keep their exit code 1).
pub fn with_code(err: anyhow::Error, code: i32) -> anyhow::Error {
    if err.downcast_ref::<ConnectError>().is_some() || err.downcast_ref::<StatusError>().is_some() {
        return err;
    }
    let message = match err.downcast_ref::<DaemonError>() {
        Some(d) => d.to_string(),
        None => format!("{err:#}"),
    };
    StatusError::new(code, message).into()
}
