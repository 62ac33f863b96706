//! A wasi:http service (the `wasi:http/proxy` world) for Berth.
//!
//! Berth serves it on the container port (80, or the image's first `EXPOSE`), with a fresh
//! instance for every request. Routes:
//! - `GET /` answers `hello from berth`;
//! - `GET /env/NAME` answers the value of the environment variable `NAME` (404 if unset);
//! - `GET /count` answers how many requests this instance has served: always 1, since every
//!   request gets its own instance;
//! - `GET /fetch?url=http://HOST[:PORT]/PATH` makes an outgoing request and answers its body,
//!   or `502` with the error (e.g. `DestinationIpProhibited` when the egress policy denies it);
//! - `GET /log` writes a line to stdout and one to stderr (the container's logs);
//! - `GET /trap` traps (the host answers 500 and keeps serving).
//!
//! Built as a binary so the component is `http-hello.wasm`; `main` only runs when the
//! component is started as a command instead of being served.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

/// Requests served by this instance.
static SERVED: AtomicU32 = AtomicU32::new(0);

/// Largest outgoing response body relayed by `/fetch`.
const FETCH_LIMIT: usize = 1024 * 1024;

struct HttpHello;

wasip2::http::proxy::export!(HttpHello);

impl wasip2::exports::http::incoming_handler::Guest for HttpHello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let count = SERVED.fetch_add(1, Ordering::SeqCst) + 1;
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_with_query.clone(), String::new()),
        };
        let (status, body) = match (request.method(), path.as_str()) {
            (Method::Get, "/") => (200, "hello from berth\n".to_string()),
            (Method::Get, "/count") => (200, format!("{count}\n")),
            (Method::Get, "/log") => {
                println!("http-hello: stdout line");
                eprintln!("http-hello: stderr line");
                (200, "logged\n".to_string())
            }
            (Method::Get, "/trap") => {
                drop(response_out);
                std::process::abort();
            }
            (Method::Get, "/fetch") => match query_param(&query, "url") {
                Some(url) => match fetch(&url) {
                    Ok(body) => (200, body),
                    Err(e) => (502, format!("fetch {url}: {e}\n")),
                },
                None => (400, "missing ?url=\n".to_string()),
            },
            (Method::Get, p) if p.starts_with("/env/") => match std::env::var(&p[5..]) {
                Ok(v) => (200, format!("{v}\n")),
                Err(_) => (404, format!("{} is not set\n", &p[5..])),
            },
            _ => (404, "not found\n".to_string()),
        };
        respond(response_out, status, body.as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[
        (
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        ),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .expect("valid headers");
    let resp = OutgoingResponse::new(headers);
    resp.set_status_code(status).expect("valid status");
    let outgoing = resp.body().expect("body taken once");
    ResponseOutparam::set(out, Ok(resp));
    {
        let mut stream = outgoing.write().expect("stream taken once");
        // blocking-write-and-flush takes at most 4096 bytes at a time.
        for chunk in body.chunks(4096) {
            stream.write_all(chunk).expect("write body");
        }
        stream.flush().expect("flush body");
    }
    OutgoingBody::finish(outgoing, None).expect("finish body");
}

/// `http://host[:port]/path?query` → GET, body as text.
fn fetch(url: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return Err("only http:// and https:// URLs".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    req.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    req.set_authority(Some(authority))
        .map_err(|()| "bad authority")?;
    req.set_path_with_query(Some(path))
        .map_err(|()| "bad path")?;
    let future = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    let resp = loop {
        match future.get() {
            Some(result) => {
                break result
                    .map_err(|()| "response taken twice".to_string())?
                    .map_err(|e| format!("{e:?}"))?;
            }
            None => future.subscribe().block(),
        }
    };
    let status = resp.status();
    let incoming = resp.consume().map_err(|()| "body taken twice")?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "stream taken twice")?;
        loop {
            match stream.blocking_read(16 * 1024) {
                Ok(chunk) if body.len() + chunk.len() <= FETCH_LIMIT => {
                    body.extend_from_slice(&chunk)
                }
                Ok(_) => return Err(format!("body larger than {FETCH_LIMIT} bytes")),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("reading body: {}", e.to_debug_string()));
                }
            }
        }
    }
    if status != 200 {
        return Err(format!("status {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The percent-decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn main() {
    println!("http-hello is a wasi:http service: run it with a published port, e.g.");
    println!("  berth run -p 8080:80 http-hello");
}
