//! Streaming a running container to the terminal: the attach connection, the wait request,
//! stdin forwarding and signal proxying shared by `run` and `start -a`.

use crate::client::{Client, RawStream, path_escape, read_body};
use crate::error::StatusError;
use anyhow::Result;
use berth_api::WaitResponse;
use berth_api::stream::{Demuxer, STDERR};
use std::io::Write;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long to wait for the `/wait` response headers before starting anyway.
const WAIT_HEADERS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to keep reading output after the container exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// An in-flight `POST /containers/{id}/wait`.
pub struct Waiter {
    handle: JoinHandle<Result<WaitResponse>>,
}

impl Waiter {
    /// Wait for the answer at most `limit`.
    pub async fn finish_within(self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.handle).await;
    }
}

/// Send `POST /containers/{id}/wait?condition=...` and return once its response headers have
/// arrived (the daemon has registered the waiter), without waiting for the body.
pub async fn start_waiter(client: &Client, id: &str, condition: &str) -> Waiter {
    let (tx, rx) = oneshot::channel::<()>();
    let client = client.clone();
    let path = format!("/containers/{}/wait?condition={condition}", path_escape(id));
    let handle = tokio::spawn(async move {
        let resp = client.post(&path, None).await;
        let _ = tx.send(());
        let body = read_body(resp?).await?;
        Ok(serde_json::from_slice::<WaitResponse>(&body)?)
    });
    let _ = tokio::time::timeout(WAIT_HEADERS_TIMEOUT, rx).await;
    Waiter { handle }
}

/// The attach query: `stream=1&stdout=1&stderr=1[&stdin=1]`.
pub fn attach_path(id: &str, stdin: bool) -> String {
    format!(
        "/containers/{}/attach?stream=1&stdout=1&stderr=1{}",
        path_escape(id),
        if stdin { "&stdin=1" } else { "" }
    )
}

/// Write one piece of output to stdout or stderr, flushed at once.
pub fn write_output(stream: u8, data: &[u8]) {
    if stream == STDERR {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(data);
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        if out.write_all(data).and_then(|_| out.flush()).is_err() {
            // stdout is gone (closed pipe): nothing more can be shown
        }
    }
}

/// Copy a (multiplexed unless `tty`) stream to stdout/stderr until EOF.
pub async fn pump<R: AsyncRead + Unpin>(rd: R, tty: bool) -> Result<()> {
    pump_with(rd, tty, write_output).await
}

/// Read a (multiplexed unless `tty`) stream until EOF, handing each piece to `sink` with its
/// stream id (1 = stdout, 2 = stderr; raw `tty` output counts as stdout).
pub async fn pump_with<R, F>(mut rd: R, tty: bool, mut sink: F) -> Result<()>
where
    R: AsyncRead + Unpin,
    F: FnMut(u8, &[u8]),
{
    let mut demux = Demuxer::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if tty {
            sink(1, &buf[..n]);
        } else {
            for (stream, payload) in demux.push(&buf[..n]) {
                sink(stream, &payload);
            }
        }
    }
}

/// Forward SIGINT and SIGTERM to the container (`POST /containers/{id}/kill?signal=...`), as
/// docker's sig-proxy does. The handlers are installed before this returns.
pub fn spawn_signal_proxy(client: &Client, id: &str) -> Option<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut term = signal(SignalKind::terminate()).ok()?;
    let client = client.clone();
    let id = path_escape(id);
    Some(tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = int.recv() => "INT",
                Some(()) = term.recv() => "TERM",
                else => break,
            };
            let _ = client
                .post(&format!("/containers/{id}/kill?signal={name}"), None)
                .await;
        }
    }))
}

/// Read the client's stdin on a plain thread (it may block forever; the process exit ends it)
/// and hand the chunks over; the channel closes at EOF.
fn read_stdin_chunks() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut input = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// Stream the attached container until it exits; returns its exit code.
pub async fn stream_until_exit(
    io: RawStream,
    tty: bool,
    stdin: bool,
    waiter: Waiter,
    proxy: Option<JoinHandle<()>>,
) -> Result<i32> {
    let (rd, mut wr) = tokio::io::split(io);
    if stdin {
        let mut input = read_stdin_chunks();
        tokio::spawn(async move {
            while let Some(chunk) = input.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // EOF on stdin: half-close so that the guest sees EOF too
            let _ = wr.shutdown().await;
        });
    } else {
        // As the docker CLI does: nothing will be written, so half-close at once.
        let _ = wr.shutdown().await;
    }
    let output = pump(rd, tty);
    tokio::pin!(output);
    let mut handle = waiter.handle;
    let joined = tokio::select! {
        r = &mut handle => {
            // The container exited: output sent just before the exit may still be in flight.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, &mut output).await;
            r
        }
        _ = &mut output => handle.await,
    };
    if let Some(p) = proxy {
        p.abort();
    }
    let resp = match joined {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            return Err(
                StatusError::new(125, format!("Error waiting for container: {e:#}")).into(),
            );
        }
        Err(e) => {
            return Err(StatusError::new(125, format!("Error waiting for container: {e}")).into());
        }
    };
    if let Some(err) = resp.error
        && !err.message.is_empty()
    {
        eprintln!("Error waiting for container: {}", err.message);
        return Ok(125);
    }
    Ok(resp.status_code as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::stream::{STDOUT, frame};

    #[test]
    fn attach_paths() {
        assert_eq!(
            attach_path("abc", false),
            "/containers/abc/attach?stream=1&stdout=1&stderr=1"
        );
        assert_eq!(
            attach_path("abc", true),
            "/containers/abc/attach?stream=1&stdout=1&stderr=1&stdin=1"
        );
    }

    async fn collect(wire: Vec<u8>, tty: bool) -> Vec<(u8, Vec<u8>)> {
        let (mut a, b) = tokio::io::duplex(16);
        let writer = tokio::spawn(async move {
            for chunk in wire.chunks(3) {
                a.write_all(chunk).await.unwrap();
            }
        });
        let mut got = Vec::new();
        pump_with(b, tty, |s, d| got.push((s, d.to_vec())))
            .await
            .unwrap();
        writer.await.unwrap();
        got
    }

    #[tokio::test]
    async fn demultiplexes_frames_split_across_reads() {
        let mut wire = frame(STDOUT, b"hello\n");
        wire.extend(frame(STDERR, b"oops\n"));
        wire.extend(frame(STDOUT, b""));
        wire.extend(frame(STDOUT, &[b'x'; 100]));
        let got = collect(wire, false).await;
        assert_eq!(
            got,
            vec![
                (STDOUT, b"hello\n".to_vec()),
                (STDERR, b"oops\n".to_vec()),
                (STDOUT, Vec::new()),
                (STDOUT, vec![b'x'; 100]),
            ]
        );
    }

    #[tokio::test]
    async fn tty_output_is_raw() {
        let got = collect(b"raw bytes".to_vec(), true).await;
        let all: Vec<u8> = got
            .iter()
            .flat_map(|(s, d)| {
                assert_eq!(*s, STDOUT);
                d.clone()
            })
            .collect();
        assert_eq!(all, b"raw bytes");
    }
}
