//! Showing Docker's JSON-message progress streams (`pull`, `push`, `load`) the way the docker
//! CLI's `jsonmessage.DisplayJSONMessagesStream` does.
//!
//! On a terminal every layer id gets its own line, rewritten in place as its status changes:
//! a new id adds a line, and an update moves the cursor up to the id's line (`ESC[nA`),
//! clears it (`ESC[2K`), writes `<id>: <status> <progress bar>` and moves back down
//! (`ESC[nB`). A message that is not about a layer is written below them and starts a new
//! block of lines.
//!
//! Elsewhere (a pipe, a file) nothing is rewritten: a layer line `<id>: <status>` is printed
//! when the layer's status changes, so the many `Downloading` updates of a layer print once.
//!
//! `aux` messages (push's `{"Tag","Digest","Size"}`) are never printed; an in-band error
//! (`{"error":..,"errorDetail":{"message":..}}`) ends the display with its message.

use crate::client::JsonStream;
use crate::error::StatusError;
use anyhow::Result;
use berth_api::JsonMessage;
use hyper::Response;
use hyper::body::Incoming;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

/// The width assumed when the terminal's is unknown (Docker's default).
const DEFAULT_WIDTH: usize = 200;
/// Progress bars are shown only on terminals wider than this.
const BAR_MIN_WIDTH: usize = 110;

/// Renders a stream of [`JsonMessage`]s to `out`.
pub struct Renderer<W: Write> {
    out: W,
    tty: bool,
    width: usize,
    /// On a terminal: the line of each layer id in the current block (0 = first).
    lines: HashMap<String, usize>,
    /// Elsewhere: the last status printed for each layer id.
    shown: HashMap<String, String>,
}

impl<W: Write> Renderer<W> {
    /// A renderer writing terminal frames (`tty`) or plain lines; `width` is the terminal's
    /// width in columns (bars are drawn only above 110).
    pub fn new(out: W, tty: bool, width: usize) -> Self {
        Self {
            out,
            tty,
            width,
            lines: HashMap::new(),
            shown: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Show one message. An in-band error is returned as its message (nothing is written).
    pub fn message(&mut self, m: &JsonMessage) -> Result<(), String> {
        if let Some(e) = error_of(m) {
            return Err(e);
        }
        if m.aux.is_some() {
            return Ok(());
        }
        let text = if self.tty {
            self.tty_frame(m)
        } else {
            self.plain_line(m)
        };
        if !text.is_empty() {
            // a closed stdout ends the process (SIGPIPE) or is not worth an error
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
        Ok(())
    }

    fn tty_frame(&mut self, m: &JsonMessage) -> String {
        let mut s = String::new();
        let id = m.id.as_deref().filter(|i| !i.is_empty());
        let has_detail = m.progress_detail.is_some();
        let mut diff = 0;
        match id {
            Some(id) if has_detail || m.progress.is_some() => {
                let line = match self.lines.get(id) {
                    Some(&l) => l,
                    None => {
                        let l = self.lines.len();
                        self.lines.insert(id.to_string(), l);
                        s.push('\n');
                        l
                    }
                };
                diff = self.lines.len() - line;
                if diff > 0 {
                    s.push_str(&format!("\x1b[{diff}A"));
                }
            }
            // Anything else starts a new block: earlier layer lines are not updated again.
            _ => self.lines.clear(),
        }
        let status = m.status.as_deref().unwrap_or("");
        let mut endl = "";
        if m.stream.is_none() && has_detail {
            s.push_str("\x1b[2K\r");
            endl = "\r";
        }
        if let Some(id) = id {
            s.push_str(id);
            s.push_str(": ");
        }
        if has_detail {
            let bar = self.bar(m);
            s.push_str(&format!("{status} {bar}{endl}"));
        } else if let Some(p) = m.progress.as_deref().filter(|p| !p.is_empty()) {
            s.push_str(&format!("{status} {p}{endl}"));
        } else if let Some(stream) = &m.stream {
            s.push_str(stream);
            s.push_str(endl);
        } else {
            s.push_str(&format!("{status}{endl}\n"));
        }
        if id.is_some() && diff > 0 {
            s.push_str(&format!("\x1b[{diff}B"));
        }
        s
    }

    /// The bar of a layer message: drawn from `progressDetail` as Docker does, else the
    /// daemon's own `progress` text.
    fn bar(&self, m: &JsonMessage) -> String {
        let drawn = m
            .progress_detail
            .as_ref()
            .map(|d| progress_bar(d, self.width))
            .unwrap_or_default();
        if drawn.is_empty() {
            m.progress.clone().unwrap_or_default()
        } else {
            drawn
        }
    }

    fn plain_line(&mut self, m: &JsonMessage) -> String {
        let id = m.id.as_deref().filter(|i| !i.is_empty());
        let status = m.status.as_deref().unwrap_or("");
        if let Some(stream) = &m.stream {
            self.shown.clear();
            return match id {
                Some(id) => format!("{id}: {stream}"),
                None => stream.clone(),
            };
        }
        let is_layer = m.progress_detail.is_some() || m.progress.is_some();
        match id {
            Some(id) if is_layer => {
                if self.shown.get(id).map(String::as_str) == Some(status) {
                    return String::new();
                }
                self.shown.insert(id.to_string(), status.to_string());
                format!("{id}: {status}\n")
            }
            Some(id) => {
                self.shown.clear();
                format!("{id}: {status}\n")
            }
            None if m.status.is_none() && m.progress.is_none() => String::new(),
            None => {
                self.shown.clear();
                format!("{status}\n")
            }
        }
    }
}

/// The message of an in-band error, if `m` is one.
pub fn error_of(m: &JsonMessage) -> Option<String> {
    if let Some(d) = &m.error_detail
        && !d.message.is_empty()
    {
        return Some(d.message.clone());
    }
    m.error.clone().filter(|e| !e.is_empty())
}

/// Docker's `JSONProgress.String()` (without the time estimate): `[=====>    ] 1.5MB/3MB`
/// (the bar only when `width` > 110), `1.5MB` without a total, `""` without numbers.
pub fn progress_bar(detail: &Value, width: usize) -> String {
    let num = |k: &str| detail.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (current, total) = (num("current"), num("total"));
    let units = detail.get("units").and_then(Value::as_str).unwrap_or("");
    let hide_counts = detail
        .get("hidecounts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return if units.is_empty() {
            format!("{:>8}", size(current))
        } else {
            format!("{current} {units}")
        };
    }
    let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let mut s = String::new();
    if width > BAR_MIN_WIDTH {
        s.push_str(&format!(
            "[{}>{}] ",
            "=".repeat(percentage),
            " ".repeat(50 - percentage)
        ));
    }
    if !hide_counts {
        if units.is_empty() {
            if current > total {
                s.push_str(&format!("{:>8}", size(current)));
            } else {
                s.push_str(&format!("{:>8}/{}", size(current), size(total)));
            }
        } else {
            s.push_str(&format!("{current}/{total} {units}"));
        }
    }
    s
}

/// go-units' `HumanSize`: decimal units, 4 significant digits.
fn size(n: i64) -> String {
    crate::format::size_with(
        n as f64,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
        4,
    )
}

/// The width of the terminal on stdout, else [`DEFAULT_WIDTH`].
pub fn terminal_width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointed-to struct, which lives for the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        DEFAULT_WIDTH
    }
}

/// A renderer for stdout: terminal frames when stdout is a terminal, plain lines otherwise,
/// nothing at all when `quiet` (errors are still reported).
pub fn stdout_renderer(quiet: bool) -> Renderer<Box<dyn Write>> {
    if quiet {
        return Renderer::new(Box::new(std::io::sink()), false, DEFAULT_WIDTH);
    }
    let tty = std::io::stdout().is_terminal();
    let width = if tty { terminal_width() } else { DEFAULT_WIDTH };
    Renderer::new(Box::new(std::io::stdout()), tty, width)
}

/// Show a whole progress stream; an in-band error becomes exit status 1 with its message.
pub async fn display<W: Write>(resp: Response<Incoming>, renderer: &mut Renderer<W>) -> Result<()> {
    let mut stream = JsonStream::new(resp);
    while let Some(m) = stream.next::<JsonMessage>().await? {
        if let Err(e) = renderer.message(&m) {
            return Err(StatusError::new(1, e.trim_end().to_string()).into());
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pull as berthd and Docker send it (two layers, progress interleaved).
    pub const PULL: &str = concat!(
        r#"{"status":"Pulling from library/hello","id":"1"}"#,
        "\r\n",
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}"#,
        "\r\n",
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"bbb"}"#,
        "\r\n",
        r#"{"status":"Downloading","progressDetail":{"current":500,"total":1000},"progress":"[====>   ]","id":"aaa"}"#,
        "\r\n",
        r#"{"status":"Downloading","progressDetail":{"current":1000,"total":1000},"progress":"[========>]","id":"aaa"}"#,
        "\r\n",
        r#"{"status":"Downloading","progressDetail":{"current":1500,"total":2000},"id":"bbb"}"#,
        "\r\n",
        r#"{"status":"Download complete","progressDetail":{},"id":"aaa"}"#,
        "\r\n",
        r#"{"status":"Pull complete","progressDetail":{},"id":"aaa"}"#,
        "\r\n",
        r#"{"status":"Pull complete","progressDetail":{},"id":"bbb"}"#,
        "\r\n",
        r#"{"status":"Digest: sha256:0123"}"#,
        "\r\n",
        r#"{"status":"Status: Downloaded newer image for hello:1"}"#,
        "\r\n",
    );

    pub fn messages(transcript: &str) -> Vec<JsonMessage> {
        serde_json::Deserializer::from_str(transcript)
            .into_iter::<JsonMessage>()
            .map(Result::unwrap)
            .collect()
    }

    fn render(transcript: &str, tty: bool, width: usize) -> (String, Option<String>) {
        let mut r = Renderer::new(Vec::new(), tty, width);
        let mut err = None;
        for m in messages(transcript) {
            if let Err(e) = r.message(&m) {
                err = Some(e);
                break;
            }
        }
        (String::from_utf8(r.into_inner()).unwrap(), err)
    }

    #[test]
    fn plain_lines_once_per_status() {
        let (out, err) = render(PULL, false, 80);
        assert_eq!(err, None);
        assert_eq!(
            out,
            "1: Pulling from library/hello\n\
             aaa: Pulling fs layer\n\
             bbb: Pulling fs layer\n\
             aaa: Downloading\n\
             bbb: Downloading\n\
             aaa: Download complete\n\
             aaa: Pull complete\n\
             bbb: Pull complete\n\
             Digest: sha256:0123\n\
             Status: Downloaded newer image for hello:1\n"
        );
    }

    #[test]
    fn tty_frames_rewrite_layer_lines() {
        let (out, err) = render(PULL, true, 80);
        assert_eq!(err, None);
        let expected = [
            "1: Pulling from library/hello\n",
            // new layer: a line for it, up 1, clear, write, down 1
            "\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B",
            "\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B",
            // first layer is two lines up
            "\x1b[2A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[2B",
            "\x1b[2A\x1b[2K\raaa: Downloading      1kB/1kB\r\x1b[2B",
            "\x1b[1A\x1b[2K\rbbb: Downloading    1.5kB/2kB\r\x1b[1B",
            "\x1b[2A\x1b[2K\raaa: Download complete \r\x1b[2B",
            "\x1b[2A\x1b[2K\raaa: Pull complete \r\x1b[2B",
            "\x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B",
            "Digest: sha256:0123\n",
            "Status: Downloaded newer image for hello:1\n",
        ]
        .concat();
        assert_eq!(out, expected, "\n{out:?}\n{expected:?}");
    }

    #[test]
    fn tty_bars_on_wide_terminals() {
        let (out, _) = render(
            r#"{"status":"Downloading","progressDetail":{"current":500,"total":1000},"id":"aaa"}"#,
            true,
            120,
        );
        assert_eq!(
            out,
            format!(
                "\n\x1b[1A\x1b[2K\raaa: Downloading [{}>{}]     500B/1kB\r\x1b[1B",
                "=".repeat(25),
                " ".repeat(25)
            )
        );
    }

    #[test]
    fn a_new_block_after_a_plain_line() {
        let t = concat!(
            r#"{"status":"Preparing","progressDetail":{},"id":"aaa"}"#,
            r#"{"status":"v1: digest: sha256:ab size: 528"}"#,
            r#"{"status":"Preparing","progressDetail":{},"id":"aaa"}"#,
        );
        let (out, _) = render(t, true, 80);
        assert_eq!(
            out,
            "\n\x1b[1A\x1b[2K\raaa: Preparing \r\x1b[1B\
             v1: digest: sha256:ab size: 528\n\
             \n\x1b[1A\x1b[2K\raaa: Preparing \r\x1b[1B"
        );
        let (out, _) = render(t, false, 80);
        assert_eq!(
            out,
            "aaa: Preparing\nv1: digest: sha256:ab size: 528\naaa: Preparing\n"
        );
    }

    #[test]
    fn push_aux_is_not_printed_and_errors_stop() {
        let t = concat!(
            r#"{"status":"The push refers to repository [localhost:5000/app]"}"#,
            r#"{"status":"Pushed","progressDetail":{},"id":"aaa"}"#,
            r#"{"status":"v1: digest: sha256:ab size: 528"}"#,
            r#"{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:ab","Size":528}}"#,
        );
        let (out, err) = render(t, false, 80);
        assert_eq!(err, None);
        assert_eq!(
            out,
            "The push refers to repository [localhost:5000/app]\n\
             aaa: Pushed\n\
             v1: digest: sha256:ab size: 528\n"
        );
        let t = concat!(
            r#"{"status":"Pulling from library/nope","id":"latest"}"#,
            r#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#,
            r#"{"status":"never shown"}"#,
        );
        let (out, err) = render(t, true, 80);
        assert_eq!(out, "latest: Pulling from library/nope\n");
        assert_eq!(err.as_deref(), Some("manifest unknown"));
        let (_, err) = render(r#"{"error":"only the old field"}"#, false, 80);
        assert_eq!(err.as_deref(), Some("only the old field"));
    }

    #[test]
    fn stream_messages_print_as_is() {
        let t = r#"{"stream":"Loaded image: hello:1\n"}"#;
        assert_eq!(render(t, false, 80).0, "Loaded image: hello:1\n");
        assert_eq!(render(t, true, 80).0, "Loaded image: hello:1\n");
    }

    #[test]
    fn bars() {
        let d = |v: Value| progress_bar(&v, 80);
        assert_eq!(d(serde_json::json!({})), "");
        assert_eq!(d(serde_json::json!({"current": 1234567})), " 1.235MB");
        assert_eq!(
            d(serde_json::json!({"current": 3, "total": 10, "units": "layers"})),
            "3/10 layers"
        );
        assert_eq!(
            d(serde_json::json!({"current": 3000, "total": 1000})),
            "     3kB"
        );
        assert_eq!(
            progress_bar(&serde_json::json!({"current": 10, "total": 10}), 200),
            format!("[{}>] {:>8}/10B", "=".repeat(50), "10B")
        );
    }
}
