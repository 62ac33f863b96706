//! A lying registry: an HTTP proxy (tokio + hyper) in front of the real `docker-registry` that
//! rewrites the answers to chosen paths, or serves documents of its own.
//!
//! Every request is recorded (path and `Authorization` header) so that tests can tell what
//! reached it. Without an upstream it is a plain scripted server, used as "another host" to
//! redirect to.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// How to answer a `GET` whose path ends with a given suffix.
#[derive(Clone, Debug)]
pub enum Lie {
    /// The upstream answer with this body instead (status and headers kept, `Content-Length`
    /// matching the new body, or none when `chunked`).
    Body { body: Vec<u8>, chunked: bool },
    /// The upstream answer with this header set.
    Header(&'static str, String),
    /// The upstream answer's headers (its `Content-Length` included) and only its first `n`
    /// bytes (always at least one byte short); then the connection is cut.
    Truncate(usize),
    /// `200`, the upstream headers without `Content-Length`, and a body of zeros that never
    /// ends.
    Endless,
    /// The upstream answer, one byte per second (its `Content-Length` kept).
    Slow,
    /// Never answers: the connection stays open without a status line.
    Hang,
    /// `307` to the very same URL, forever.
    RedirectLoop,
    /// `307` to this URL (absolute, or a path on this server).
    RedirectTo(String),
    /// Serves this document itself: `200`, this `Content-Type`, and the body (without
    /// `Content-Length` when `chunked`).
    Serve {
        content_type: String,
        body: Vec<u8>,
        chunked: bool,
    },
}

/// One request that reached the liar.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    upstream: Option<u16>,
    rules: Mutex<Vec<(String, Lie)>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running liar. It serves until the test's runtime ends.
pub struct Liar {
    pub port: u16,
    state: Arc<State>,
}

impl Liar {
    /// A liar in front of the registry on `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Liar {
        Self::start_with(Some(upstream)).await
    }

    /// A server that only answers its rules (404 otherwise): "another host".
    pub async fn start_alone() -> Liar {
        Self::start_with(None).await
    }

    async fn start_with(upstream: Option<u16>) -> Liar {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            ..State::default()
        });
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(handle(st, port, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Liar { port, state }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers `GET`s whose path ends with `suffix` this way (the first matching rule wins).
    pub fn lie(&self, suffix: &str, lie: Lie) {
        self.state
            .rules
            .lock()
            .unwrap()
            .push((suffix.to_string(), lie));
    }

    /// Forgets every rule: the liar becomes an honest proxy.
    pub fn reform(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests had a path ending with `suffix`.
    pub fn hits(&self, suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.ends_with(suffix))
            .count()
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body from a stream of chunks (no size hint: sent chunked unless a `Content-Length` header
/// says otherwise).
fn streamed<S>(chunks: S) -> Body
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    use futures_util::StreamExt;
    BodyExt::boxed_unsync(StreamBody::new(chunks.map(|c| c.map(Frame::data))))
}

fn status(code: StatusCode, text: &str) -> Response<Body> {
    let mut res = Response::new(full(text.to_string()));
    *res.status_mut() = code;
    res
}

async fn handle(
    state: Arc<State>,
    port: u16,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.to_string());
    state.seen.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        path: path.clone(),
        authorization: req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    });
    let rule = if req.method() == hyper::Method::GET {
        state
            .rules
            .lock()
            .unwrap()
            .iter()
            .find(|(suffix, _)| path.ends_with(suffix.as_str()))
            .map(|(_, lie)| lie.clone())
    } else {
        None
    };
    // Answers that need nothing from upstream.
    match &rule {
        Some(Lie::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return status(StatusCode::GATEWAY_TIMEOUT, "");
        }
        Some(Lie::RedirectLoop) => {
            let mut res = status(StatusCode::TEMPORARY_REDIRECT, "");
            res.headers_mut().insert(
                hyper::header::LOCATION,
                format!("http://127.0.0.1:{port}{path_and_query}")
                    .parse()
                    .unwrap(),
            );
            return res;
        }
        Some(Lie::RedirectTo(location)) => {
            let mut res = status(StatusCode::TEMPORARY_REDIRECT, "");
            res.headers_mut()
                .insert(hyper::header::LOCATION, location.parse().unwrap());
            return res;
        }
        Some(Lie::Serve {
            content_type,
            body,
            chunked,
        }) => {
            let body = Bytes::from(body.clone());
            let mut res = Response::new(if *chunked {
                streamed(futures_util::stream::iter([Ok(body)]))
            } else {
                full(body)
            });
            res.headers_mut()
                .insert(hyper::header::CONTENT_TYPE, content_type.parse().unwrap());
            return res;
        }
        _ => {}
    }
    let Some(upstream) = state.upstream else {
        return status(StatusCode::NOT_FOUND, "no such path");
    };

    // Ask the real registry.
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut up = client
        .request(
            parts.method.clone(),
            format!("http://127.0.0.1:{upstream}{path_and_query}"),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            up = up.header(name, value);
        }
    }
    let up = match up.send().await {
        Ok(r) => r,
        Err(e) => return status(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let code = up.status();
    let mut headers = up.headers().clone();
    let real = up.bytes().await.unwrap_or_default();
    for h in [
        hyper::header::TRANSFER_ENCODING,
        hyper::header::CONNECTION,
        hyper::header::CONTENT_LENGTH,
    ] {
        headers.remove(h);
    }
    let length = |n: usize| -> hyper::header::HeaderValue { n.to_string().parse().unwrap() };
    let (body, content_length) = match rule {
        None => (full(real.clone()), None),
        Some(Lie::Body { body, chunked }) => {
            let body = Bytes::from(body);
            if chunked {
                (streamed(futures_util::stream::iter([Ok(body)])), None)
            } else {
                (full(body), None)
            }
        }
        Some(Lie::Header(name, value)) => {
            headers.insert(name, value.parse().unwrap());
            (full(real.clone()), None)
        }
        Some(Lie::Truncate(n)) => {
            let head = real.slice(..n.min(real.len().saturating_sub(1)));
            // The error comes a moment later, so that the head and the first bytes are
            // flushed before the connection is cut.
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(std::io::Error::other("cut by the liar"))
            });
            let chunks =
                futures_util::StreamExt::chain(futures_util::stream::iter([Ok(head)]), cut);
            (streamed(chunks), Some(length(real.len())))
        }
        Some(Lie::Endless) => {
            let zeros = Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = futures_util::stream::repeat_with(move || Ok(zeros.clone()));
            (streamed(chunks), None)
        }
        Some(Lie::Slow) => {
            let bytes = real.clone();
            let chunks = futures_util::stream::unfold(0usize, move |i| {
                let bytes = bytes.clone();
                async move {
                    if i >= bytes.len() {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok(bytes.slice(i..i + 1)), i + 1))
                }
            });
            (streamed(chunks), Some(length(real.len())))
        }
        Some(Lie::Hang | Lie::RedirectLoop | Lie::RedirectTo(_) | Lie::Serve { .. }) => {
            unreachable!("answered above")
        }
    };
    let mut res = Response::new(body);
    *res.status_mut() = code;
    *res.headers_mut() = headers;
    if let Some(len) = content_length {
        res.headers_mut().insert(hyper::header::CONTENT_LENGTH, len);
    }
    res
}
