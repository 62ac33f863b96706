//! Per-container logs in Docker's `json-file` format: one JSON object per line,
//! `{"log":"...","stream":"stdout","time":"<RFC3339Nano>"}`.
//!
//! The file is both the log and the buffer for attached clients: `attach` and `logs -f` read it
//! from an offset and wait on a watch channel for more, so a slow client never makes the daemon
//! buffer guest output in memory, and never loses any of it.

use berth_runtime::{OutputSink, StreamKind};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// One line of the log file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogRecord {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl LogRecord {
    pub fn stream_id(&self) -> u8 {
        if self.stream == "stderr" {
            berth_api::stream::STDERR
        } else {
            berth_api::stream::STDOUT
        }
    }
}

/// Progress of a log: bytes in the file, and whether a writer may still append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    pub len: u64,
    pub open: bool,
    /// Bumped at every rotation; readers of an older file finish it, then reopen.
    pub generation: u64,
}

/// Appends guest output to the container's log file.
pub struct LogWriter {
    path: PathBuf,
    file: Mutex<Option<File>>,
    state: watch::Sender<LogState>,
    rotation: Option<Rotation>,
    /// The last write failed (e.g. the disk is full): output is being dropped.
    failing: std::sync::atomic::AtomicBool,
}

/// `--log-opt max-size=... max-file=...`: the log is rotated to `<path>.1`, `.2`, ... once
/// it reaches `max_size`; with `max_files` = 1 the full log is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_files: u32,
}

impl LogWriter {
    /// Opens (creating) the log at `path` for appending; starts closed (no guest running).
    pub fn open(path: &Path, rotation: Option<Rotation>) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let (state, _) = watch::channel(LogState {
            len,
            open: false,
            generation: 0,
        });
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(Some(file)),
            state,
            rotation,
            failing: Default::default(),
        })
    }

    /// Moves the full log aside and starts an empty one. Called with the file lock held.
    fn rotate(&self, file: &mut File, r: Rotation) -> std::io::Result<()> {
        let rotated = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if r.max_files <= 1 {
            std::fs::remove_file(&self.path)?;
        } else {
            for i in (1..r.max_files - 1).rev() {
                if rotated(i).exists() {
                    std::fs::rename(rotated(i), rotated(i + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(1))?;
        }
        *file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.state.send_modify(|s| {
            s.len = 0;
            s.generation += 1;
        });
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks the log as being written by a running guest.
    pub fn set_open(&self, open: bool) {
        self.state.send_modify(|s| s.open = open);
    }

    pub fn subscribe(&self) -> watch::Receiver<LogState> {
        self.state.subscribe()
    }

    pub fn state(&self) -> LogState {
        *self.state.borrow()
    }

    /// Stops writing (the container is being removed).
    pub fn close(&self) {
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.set_open(false);
    }

    fn append(&self, stream: StreamKind, data: &[u8]) {
        let stream = match stream {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut out = Vec::with_capacity(data.len() + 64);
        for line in data.split_inclusive(|b| *b == b'\n') {
            let record = LogRecord {
                log: String::from_utf8_lossy(line).into_owned(),
                stream: stream.into(),
                time: time.clone(),
            };
            if serde_json::to_writer(&mut out, &record).is_ok() {
                out.push(b'\n');
            }
        }
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = guard.as_mut() {
            match file.write_all(&out) {
                Ok(()) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(path = %self.path.display(), "log writes resumed");
                    }
                    self.state.send_modify(|s| s.len += out.len() as u64);
                    if let Some(r) = self.rotation
                        && self.state.borrow().len >= r.max_size
                        && let Err(e) = self.rotate(file, r)
                    {
                        tracing::warn!(path = %self.path.display(), error = %e, "log rotation failed");
                    }
                }
                Err(e) => {
                    // Part of the records may have been written (a full disk): cut them off,
                    // so that the log stays whole records and its length what readers expect.
                    let len = self.state.borrow().len;
                    if let Err(e) = file.set_len(len) {
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot cut a partial log record");
                    }
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(path = %self.path.display(), error = %e, "dropping guest output until the log can be written again: log write failed");
                    }
                }
            }
        }
    }
}

impl OutputSink for LogWriter {
    fn write(&self, stream: StreamKind, data: &[u8]) {
        self.append(stream, data);
    }
}

/// Reads records from a log file starting at a byte offset.
pub struct LogReader {
    reader: BufReader<File>,
    offset: u64,
    /// The writer's generation this file belongs to.
    pub generation: u64,
}

impl LogReader {
    pub fn open(path: &Path, offset: u64) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            reader: BufReader::new(file),
            offset,
            generation: 0,
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete record before `limit` bytes, if any. Partial trailing lines are left
    /// for a later call.
    pub fn next_record(&mut self, limit: u64) -> std::io::Result<Option<LogRecord>> {
        loop {
            if self.offset >= limit {
                return Ok(None);
            }
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(None);
            }
            if line.last() != Some(&b'\n') {
                // Not yet complete: rewind and wait for the writer.
                self.reader.seek(SeekFrom::Start(self.offset))?;
                return Ok(None);
            }
            self.offset += n as u64;
            if let Ok(rec) = serde_json::from_slice::<LogRecord>(&line) {
                return Ok(Some(rec));
            }
        }
    }
}

/// Byte offset where the last `n` records of the file start.
pub fn tail_offset(path: &Path, n: usize) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut starts: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
    let mut reader = BufReader::new(&mut file);
    let mut offset = 0u64;
    let mut line = Vec::new();
    while offset < len {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        starts.push_back(offset);
        if starts.len() > n {
            starts.pop_front();
        }
        offset += read as u64;
    }
    Ok(if n == 0 {
        offset
    } else {
        starts.front().copied().unwrap_or(offset)
    })
}

/// `HostConfig.LogConfig` → (`max-size` bytes, `max-file` count). Only the `json-file`
/// driver exists; unknown drivers and options are refused rather than ignored.
pub fn parse_log_config(
    config: Option<&berth_api::LogConfig>,
) -> crate::Result<(Option<u64>, Option<u32>)> {
    use crate::DaemonError;
    let Some(config) = config else {
        return Ok((None, None));
    };
    match config.kind.as_deref() {
        None | Some("") | Some("json-file") => {}
        Some(other) => {
            return Err(DaemonError::Invalid(format!(
                "logging driver {other:?} is not supported: Berth writes json-file logs"
            )));
        }
    }
    let (mut size, mut files) = (None, None);
    for (k, v) in config.config.iter().flatten() {
        match k.as_str() {
            "max-size" => {
                size = Some(parse_size(v).ok_or_else(|| {
                    DaemonError::Invalid(format!("invalid value for log opt max-size: {v:?}"))
                })?)
            }
            "max-file" => match v.parse::<u32>() {
                Ok(n) if n >= 1 => files = Some(n),
                _ => {
                    return Err(DaemonError::Invalid(format!(
                        "invalid value for log opt max-file: {v:?}, it must be at least 1"
                    )));
                }
            },
            other => {
                return Err(DaemonError::Invalid(format!(
                    "unknown log opt '{other}' for json-file log driver"
                )));
            }
        }
    }
    if files.is_some_and(|n| n > 1) && size.is_none() {
        return Err(DaemonError::Invalid(
            "max-file cannot be set without max-size".into(),
        ));
    }
    Ok((size, files))
}

/// `10m`, `512k`, `1g`, `4096` (decimal units as Docker's `units.FromHumanSize`).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let mult = match s[digits..].trim_end_matches('b') {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|n| *n > 0)
}

impl LogWriter {
    /// The rotation settings of a container.
    pub fn rotation_of(max_size: Option<u64>, max_files: Option<u32>) -> Option<Rotation> {
        max_size.map(|max_size| Rotation {
            max_size,
            max_files: max_files.unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_lines_split_at_newlines_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let w = LogWriter::open(&path, None).unwrap();
        w.write(StreamKind::Stdout, b"one\ntwo\npart");
        w.write(StreamKind::Stderr, b"err\n");
        let mut r = LogReader::open(&path, 0).unwrap();
        let limit = w.state().len;
        let mut got = Vec::new();
        while let Some(rec) = r.next_record(limit).unwrap() {
            got.push((rec.stream.clone(), rec.log.clone()));
        }
        assert_eq!(
            got,
            vec![
                ("stdout".to_string(), "one\n".to_string()),
                ("stdout".to_string(), "two\n".to_string()),
                ("stdout".to_string(), "part".to_string()),
                ("stderr".to_string(), "err\n".to_string()),
            ]
        );
        assert_eq!(r.offset(), limit);
    }

    #[test]
    fn tail_offsets_point_at_the_last_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let w = LogWriter::open(&path, None).unwrap();
        w.write(StreamKind::Stdout, b"1\n2\n3\n");
        let off = tail_offset(&path, 2).unwrap();
        let mut r = LogReader::open(&path, off).unwrap();
        assert_eq!(r.next_record(u64::MAX).unwrap().unwrap().log, "2\n");
        assert_eq!(tail_offset(&path, 0).unwrap(), w.state().len);
        assert_eq!(tail_offset(&path, 10).unwrap(), 0);
    }

    #[test]
    fn closed_writer_drops_output_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let w = LogWriter::open(&dir.path().join("l"), None).unwrap();
        w.close();
        w.write(StreamKind::Stdout, b"late\n");
        assert_eq!(w.state().len, 0);
    }

    #[test]
    fn logs_rotate_at_max_size_and_keep_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let w = LogWriter::open(
            &path,
            Some(Rotation {
                max_size: 200,
                max_files: 3,
            }),
        )
        .unwrap();
        w.set_open(true);
        for i in 0..40 {
            w.write(StreamKind::Stdout, format!("line {i}\n").as_bytes());
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) < 200, "current log is bounded");
        let r1 = PathBuf::from(format!("{}.1", path.display()));
        let r2 = PathBuf::from(format!("{}.2", path.display()));
        assert!(size(&r1) >= 200 && size(&r2) >= 200);
        assert!(!PathBuf::from(format!("{}.3", path.display())).exists());
        assert!(w.state().generation >= 3);
        // The newest record is in the current file (or the just-rotated one).
        let all = std::fs::read_to_string(&path).unwrap() + &std::fs::read_to_string(&r1).unwrap();
        assert!(all.contains("line 39"));
        // A single file: the full log is dropped.
        let path = dir.path().join("one.log");
        let w = LogWriter::open(
            &path,
            Some(Rotation {
                max_size: 100,
                max_files: 1,
            }),
        )
        .unwrap();
        for i in 0..40 {
            w.write(StreamKind::Stderr, format!("x{i}\n").as_bytes());
        }
        assert!(size(&path) < 100);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn log_options_are_validated() {
        let cfg = |kind: &str, opts: &[(&str, &str)]| berth_api::LogConfig {
            kind: Some(kind.into()),
            config: Some(
                opts.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        };
        assert_eq!(
            parse_log_config(Some(&cfg(
                "json-file",
                &[("max-size", "10m"), ("max-file", "3")]
            )))
            .unwrap(),
            (Some(10_000_000), Some(3))
        );
        assert_eq!(parse_log_config(None).unwrap(), (None, None));
        for (kind, opts) in [
            ("syslog", vec![]),
            ("json-file", vec![("max-size", "ten")]),
            ("json-file", vec![("max-size", "0")]),
            ("json-file", vec![("max-file", "0")]),
            ("json-file", vec![("max-file", "2")]),
            ("json-file", vec![("compress", "true")]),
        ] {
            assert!(
                parse_log_config(Some(&cfg(kind, &opts))).is_err(),
                "{kind} {opts:?}"
            );
        }
    }
}
