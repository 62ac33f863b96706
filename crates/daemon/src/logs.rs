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
}

/// Appends guest output to the container's log file.
pub struct LogWriter {
    path: PathBuf,
    file: Mutex<Option<File>>,
    state: watch::Sender<LogState>,
}

impl LogWriter {
    /// Opens (creating) the log at `path` for appending; starts closed (no guest running).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        let (state, _) = watch::channel(LogState { len, open: false });
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(Some(file)),
            state,
        })
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
                Ok(()) => self.state.send_modify(|s| s.len += out.len() as u64),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "dropping guest output: log write failed")
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
}

impl LogReader {
    pub fn open(path: &Path, offset: u64) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            reader: BufReader::new(file),
            offset,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_lines_split_at_newlines_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let w = LogWriter::open(&path).unwrap();
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
        let w = LogWriter::open(&path).unwrap();
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
        let w = LogWriter::open(&dir.path().join("l")).unwrap();
        w.close();
        w.write(StreamKind::Stdout, b"late\n");
        assert_eq!(w.state().len, 0);
    }
}
