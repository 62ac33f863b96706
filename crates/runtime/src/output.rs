//! Guest stdout/stderr: every write goes straight to an [`OutputSink`] owned by the daemon.
//!
//! The stream is always ready and takes at most [`WRITE_BUDGET`] bytes per write, so the host
//! never buffers guest output beyond one write. This replaces wasmtime-wasi's
//! `AsyncWriteStream`, which in 48.0.8 grows without bound on empty writes
//! (GHSA-5m8g-xhq4-4h93).

use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest single write a guest may hand the host.
pub const WRITE_BUDGET: usize = 64 * 1024;

/// Which guest stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

/// Receives guest output. Called on the guest's thread; must not block for long.
pub trait OutputSink: Send + Sync {
    fn write(&self, stream: StreamKind, data: &[u8]);
}

#[derive(Clone)]
pub(crate) struct GuestOutput {
    sink: Arc<dyn OutputSink>,
    kind: StreamKind,
}

impl GuestOutput {
    pub(crate) fn new(sink: Arc<dyn OutputSink>, kind: StreamKind) -> Self {
        Self { sink, kind }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !bytes.is_empty() {
            self.sink.write(self.kind, &bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(WRITE_BUDGET);
        if n > 0 {
            self.sink.write(self.kind, &buf[..n]);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
