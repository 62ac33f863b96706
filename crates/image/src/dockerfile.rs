//! Dockerfile parser and evaluator for Wasm images.
//!
//! [`parse`] reads a Dockerfile with Docker's syntax (BuildKit's `dockerfile/parser`) and
//! returns one [`Instruction`] per instruction, with variables already substituted:
//!
//! - Comments are lines whose first non-blank character is `#`; blank lines are skipped.
//!   Parser directives (`# escape=`` ` ``, `# syntax=...`, `# check=...`) are read from the
//!   top of the file until the first line that is not a directive; only `escape` has an
//!   effect. A line ending with the escape character (default `\`, optionally followed by
//!   blanks) continues on the next line; comment and blank lines inside a continuation are
//!   skipped, and the pieces are joined as written (this joined text is
//!   [`Instruction::original`]). Instruction names are case-insensitive.
//! - Variables are substituted as Docker does (`$V`, `${V}`, `${V:-w}`, `${V:+w}`,
//!   `${V:?msg}`, and `${V-w}`, `${V+w}`, `${V?msg}` which test "unset" rather than "empty";
//!   quotes are removed, the escape character escapes the next one), in FROM, COPY, ADD,
//!   ENV, ARG, WORKDIR, LABEL, EXPOSE, USER, STOPSIGNAL and VOLUME, never in ENTRYPOINT or
//!   CMD. In the JSON form of COPY, ADD and VOLUME, variables are substituted but quotes are
//!   left alone.
//! - Scoping is Docker's: an ARG before FROM is visible only in FROM; after FROM, ARGs
//!   declared so far and ENVs are visible, ENV winning over an ARG of the same name. A
//!   build-arg overrides a declared ARG's default; an ARG with no default inherits the value
//!   of the pre-FROM ARG of the same name; an ARG with neither is unset. Build-args that no
//!   ARG declares are ignored. All the variables of one ENV instruction see the values from
//!   before it (`ENV a=1 b=$a` uses the old `a`).
//!
//! What a Wasm image cannot do is refused with an error naming the line: `RUN`, `SHELL`,
//! `HEALTHCHECK`, `ONBUILD` and `MAINTAINER` are rejected (none is silently ignored),
//! ENTRYPOINT and CMD must use the exec (JSON) form, only one FROM (one stage) is allowed,
//! `COPY --from` and remote `ADD` sources are refused, and so is any flag other than
//! `--chown` (ignored: ownership means nothing to Wasm), `--chmod=<octal>` and `--link`
//! (ignored).
//!
//! Resolved values: [`InstructionKind::Arg`] carries the effective value (build-arg, else
//! default, else inherited), `Workdir` the absolute cleaned directory, `Expose` normalised
//! `port/proto` entries (ranges expanded), COPY/ADD the destination as written (relative
//! destinations resolve against the WORKDIR in force). Sources that climb out of the build
//! context (`../x`) are refused.

use crate::digest::shown;
use crate::reference::Reference;
use std::collections::BTreeMap;
use std::fmt;

/// Longest value one substitution may produce.
const MAX_WORD_LEN: usize = 1024 * 1024;
/// Total bytes all substitutions of one Dockerfile may produce.
const MAX_TOTAL_EXPANSION: usize = 64 * 1024 * 1024;
/// How deeply `${a:-${b:-...}}` may nest.
const MAX_NESTING: usize = 32;
/// Most ports one EXPOSE range may expand to.
const MAX_PORT_RANGE: usize = 1024;

/// One instruction of a Dockerfile, after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written, continuation lines joined, trimmed: the build-cache key
    /// and the text of `Step N/M : <original>`.
    pub original: String,
    pub kind: InstructionKind,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    /// `scratch` or an image reference (validated), after substitution.
    From {
        image: String,
    },
    Copy {
        sources: Vec<String>,
        dest: String,
        chmod: Option<u32>,
    },
    Add {
        sources: Vec<String>,
        dest: String,
        chmod: Option<u32>,
    },
    Env(Vec<(String, String)>),
    /// `value` is the effective value: the build-arg, else the default, else the value of the
    /// pre-FROM ARG of the same name; `None` when the variable is unset.
    Arg {
        name: String,
        value: Option<String>,
    },
    /// Absolute and cleaned.
    Workdir(String),
    /// Exec form; empty for `ENTRYPOINT []`.
    Entrypoint(Vec<String>),
    /// Exec form; empty for `CMD []`.
    Cmd(Vec<String>),
    Label(Vec<(String, String)>),
    /// Normalised `80/tcp`, `53/udp`, in order, without duplicates.
    Expose(Vec<String>),
    User(String),
    StopSignal(String),
    Volume(Vec<String>),
}

impl InstructionKind {
    /// The instruction name, uppercase (`COPY`).
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::From { .. } => "FROM",
            InstructionKind::Copy { .. } => "COPY",
            InstructionKind::Add { .. } => "ADD",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Arg { .. } => "ARG",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::User(_) => "USER",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Volume(_) => "VOLUME",
        }
    }

    /// Every string the instruction carries (for checks that apply to all of them).
    fn strings(&self) -> Vec<&str> {
        match self {
            InstructionKind::From { image } => vec![image],
            InstructionKind::Copy { sources, dest, .. }
            | InstructionKind::Add { sources, dest, .. } => sources
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(dest.as_str()))
                .collect(),
            InstructionKind::Env(pairs) | InstructionKind::Label(pairs) => pairs
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()])
                .collect(),
            InstructionKind::Arg { name, value } => std::iter::once(name.as_str())
                .chain(value.as_deref())
                .collect(),
            InstructionKind::Workdir(s)
            | InstructionKind::User(s)
            | InstructionKind::StopSignal(s) => vec![s],
            InstructionKind::Entrypoint(v)
            | InstructionKind::Cmd(v)
            | InstructionKind::Expose(v)
            | InstructionKind::Volume(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Formats `Dockerfile line N: message`, or `Dockerfile: message` for whole-file errors.
fn located(line: &usize, message: &str) -> String {
    if *line == 0 {
        format!("Dockerfile: {message}")
    } else {
        format!("Dockerfile line {line}: {message}")
    }
}

/// Why a Dockerfile was refused. `line` is 1-based (0 for errors about the whole file);
/// `message` names the instruction and quotes the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileError {
    /// Malformed syntax or arguments.
    #[error("{}", located(.line, .message))]
    Syntax { line: usize, message: String },
    /// An instruction, form or flag Berth does not support for Wasm images.
    #[error("{}", located(.line, .message))]
    Unsupported {
        line: usize,
        instruction: String,
        message: String,
    },
    /// An instruction Docker does not know either.
    #[error("{}", located(.line, .message))]
    UnknownInstruction {
        line: usize,
        instruction: String,
        message: String,
    },
    /// A variable substitution failed (bad `${...}`, unterminated quote, `${V:?}`, too long).
    #[error("{}", located(.line, .message))]
    Substitution { line: usize, message: String },
    /// Missing FROM, instructions before FROM, several FROMs, an empty file.
    #[error("{}", located(.line, .message))]
    Stage { line: usize, message: String },
}

impl DockerfileError {
    /// The 1-based line (0 when the error is about the whole file).
    pub fn line(&self) -> usize {
        match self {
            DockerfileError::Syntax { line, .. }
            | DockerfileError::Unsupported { line, .. }
            | DockerfileError::UnknownInstruction { line, .. }
            | DockerfileError::Substitution { line, .. }
            | DockerfileError::Stage { line, .. } => *line,
        }
    }

    /// The message, without the `Dockerfile line N: ` prefix.
    pub fn message(&self) -> &str {
        match self {
            DockerfileError::Syntax { message, .. }
            | DockerfileError::Unsupported { message, .. }
            | DockerfileError::UnknownInstruction { message, .. }
            | DockerfileError::Substitution { message, .. }
            | DockerfileError::Stage { message, .. } => message,
        }
    }
}

fn syntax(line: usize, message: impl Into<String>) -> DockerfileError {
    DockerfileError::Syntax {
        line,
        message: message.into(),
    }
}

fn unsupported(line: usize, instruction: &str, message: impl Into<String>) -> DockerfileError {
    DockerfileError::Unsupported {
        line,
        instruction: instruction.to_string(),
        message: message.into(),
    }
}

fn stage(line: usize, message: impl Into<String>) -> DockerfileError {
    DockerfileError::Stage {
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Lines, directives, continuations.

/// One instruction's text, continuation lines joined.
struct RawInstruction {
    line: usize,
    text: String,
}

/// `# name = value` at the top of the file.
fn parse_directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value = rest.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value))
}

/// Strips a trailing escape character (and blanks after it); `true` if the line continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Splits the file into instructions; returns them and the escape character.
fn split_instructions(text: &str) -> Result<(Vec<RawInstruction>, char), DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if let Some(i) = lines.iter().position(|l| l.contains('\0')) {
        return Err(syntax(i + 1, "the Dockerfile contains a NUL byte"));
    }

    let mut escape = '\\';
    let mut directives_done = false;
    let mut seen_directives: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if !directives_done {
            match parse_directive(line) {
                Some((name, value)) if matches!(name.as_str(), "escape" | "syntax" | "check") => {
                    if seen_directives.contains(&name) {
                        return Err(syntax(
                            lineno,
                            format!("only one {name} parser directive can be used"),
                        ));
                    }
                    if name == "escape" {
                        escape = match value {
                            "\\" => '\\',
                            "`" => '`',
                            other => {
                                return Err(syntax(
                                    lineno,
                                    format!(
                                        "invalid escape token {} does not match ` or \\",
                                        shown(other)
                                    ),
                                ));
                            }
                        };
                    }
                    seen_directives.push(name);
                    continue;
                }
                _ => directives_done = true,
            }
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (first, mut continues) = trim_continuation(line, escape);
        let mut joined = first.to_string();
        while continues && i < lines.len() {
            let next = lines[i];
            i += 1;
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (piece, more) = trim_continuation(next, escape);
            joined.push_str(piece);
            continues = more;
        }
        let joined = joined.trim();
        if !joined.is_empty() {
            out.push(RawInstruction {
                line: lineno,
                text: joined.to_string(),
            });
        }
    }
    Ok((out, escape))
}

// ---------------------------------------------------------------------------------------------
// Words and flags, as BuildKit's parser splits them.

/// Splits on blanks, keeping quotes and escapes in the words (BuildKit's `parseWords`).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut pos = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                phase = Phase::Word;
                pos -= 1;
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    phase = Phase::Spaces;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    match chars.get(pos) {
                        None => continue,
                        Some(&next) => {
                            word.push(ch);
                            word.push(next);
                            pos += 1;
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                if ch == escape && q != '\'' {
                    match chars.get(pos) {
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                        Some(&next) => {
                            word.push(ch);
                            word.push(next);
                            pos += 1;
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits off leading `--flag[=value]` words (BuildKit's `extractBuilderFlags`).
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let bytes = line.as_bytes();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if !line[pos..].starts_with("--") {
            return (&line[pos..], flags);
        }
        // Read one word, honouring quotes and backslashes.
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = line[pos..].char_indices().peekable();
        let mut end = line.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_ascii_whitespace() => {
                    end = start + i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            return (line[pos..].trim_start(), flags);
        }
        flags.push(word);
    }
}

/// A parsed `--name[=value]`.
struct Flag {
    name: String,
    value: Option<String>,
}

fn parse_flags(line: usize, instr: &str, words: Vec<String>) -> Result<Vec<Flag>, DockerfileError> {
    let mut flags: Vec<Flag> = Vec::new();
    for w in words {
        let body = w.strip_prefix("--").unwrap_or(&w);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        if flags.iter().any(|f| f.name == name) {
            return Err(syntax(
                line,
                format!(
                    "{instr}: duplicate flag specified: --{}",
                    name.escape_debug()
                ),
            ));
        }
        flags.push(Flag { name, value });
    }
    Ok(flags)
}

fn no_flags(line: usize, instr: &str, flags: &[Flag]) -> Result<(), DockerfileError> {
    match flags.first() {
        None => Ok(()),
        Some(f) => Err(unsupported(
            line,
            instr,
            format!(
                "{instr}: unknown flag: --{}",
                shown(&f.name).trim_matches('"')
            ),
        )),
    }
}

/// `["a", "b"]`: `Ok(Some(items))`; not JSON: `Ok(None)`; JSON but not all strings: error.
fn parse_json_array(rest: &str) -> Result<Option<Vec<String>>, &'static str> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(rest)
    else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err("when using JSON array syntax, arrays must be comprised of strings only"),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn split_blank(s: &str) -> Vec<&str> {
    s.split_ascii_whitespace().collect()
}

// ---------------------------------------------------------------------------------------------
// Variable substitution (BuildKit's shell/lex.go, the ProcessWord flavour).

/// The variables visible to one instruction.
struct Vars<'a> {
    env: &'a BTreeMap<String, String>,
    args: &'a BTreeMap<String, Option<String>>,
}

impl<'a> Vars<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        if let Some(v) = self.env.get(name) {
            return Some(v);
        }
        self.args.get(name).and_then(|v| v.as_deref())
    }
}

struct Lexer<'v, 'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    quotes: bool,
    vars: &'v Vars<'a>,
    depth: usize,
}

impl Lexer<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn push(out: &mut String, s: &str) -> Result<(), String> {
        if out.len() + s.len() > MAX_WORD_LEN {
            return Err(format!(
                "value too long after variable substitution (more than {MAX_WORD_LEN} bytes)"
            ));
        }
        out.push_str(s);
        Ok(())
    }

    fn push_char(out: &mut String, c: char) -> Result<(), String> {
        Self::push(out, c.encode_utf8(&mut [0; 4]))
    }

    /// Processes up to `stop` (consumed) or the end of input.
    fn process(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '\'' if self.quotes => {
                    let s = self.single_quote()?;
                    Self::push(&mut out, &s)?;
                }
                '"' if self.quotes => {
                    let s = self.double_quote()?;
                    Self::push(&mut out, &s)?;
                }
                '$' => {
                    let s = self.dollar()?;
                    Self::push(&mut out, &s)?;
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.next() {
                            None => break,
                            Some(c) => Self::push_char(&mut out, c)?,
                        }
                    } else {
                        Self::push_char(&mut out, ch)?;
                    }
                }
            }
        }
        match stop {
            Some(_) => Err("syntax error: missing '}'".to_string()),
            None => Ok(out),
        }
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => Self::push_char(&mut out, c)?,
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let s = self.dollar()?;
                    Self::push(&mut out, &s)?;
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                Self::push_char(&mut out, n)?;
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    Self::push_char(&mut out, c)?;
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(c);
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn nested(&mut self) -> Result<String, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "variable substitutions nested more than {MAX_NESTING} deep"
            ));
        }
        self.depth += 1;
        let r = self.process(Some('}'));
        self.depth -= 1;
        r
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.vars.get(&name).unwrap_or("").to_string());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.name();
        let value = self.vars.get(&name);
        let unset_msg = |word: &str, what: &str| {
            let msg = if word.is_empty() { what } else { word };
            format!("{name}: {msg}")
        };
        match self.next() {
            None => Err("syntax error: missing '}'".to_string()),
            Some('}') => Ok(value.unwrap_or("").to_string()),
            Some(':') => {
                let Some(modifier) = self.next() else {
                    return Err("syntax error: missing '}'".to_string());
                };
                let word = self.nested()?;
                let v = value.unwrap_or("");
                match modifier {
                    '-' => Ok(if v.is_empty() { word } else { v.to_string() }),
                    '+' => Ok(if v.is_empty() { String::new() } else { word }),
                    '?' => match value {
                        None => Err(unset_msg(&word, "is not allowed to be unset")),
                        Some("") => Err(unset_msg(&word, "is not allowed to be empty")),
                        Some(v) => Ok(v.to_string()),
                    },
                    m => Err(format!(
                        "unsupported modifier ({}) in substitution",
                        m.escape_debug()
                    )),
                }
            }
            Some('-') => {
                let word = self.nested()?;
                Ok(value.map_or(word, str::to_string))
            }
            Some('+') => {
                let word = self.nested()?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('?') => {
                let word = self.nested()?;
                value
                    .map(str::to_string)
                    .ok_or_else(|| unset_msg(&word, "is not allowed to be unset"))
            }
            Some(m) => Err(format!(
                "unsupported modifier ({}) in substitution",
                m.escape_debug()
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

struct State<'b> {
    escape: char,
    build_args: &'b BTreeMap<String, String>,
    /// ARGs declared before FROM.
    meta_args: BTreeMap<String, Option<String>>,
    /// ARGs declared after FROM.
    args: BTreeMap<String, Option<String>>,
    env: BTreeMap<String, String>,
    /// Line of the FROM, once seen.
    from_line: Option<usize>,
    workdir: String,
    /// Bytes substitution may still produce.
    budget: usize,
}

/// Whether the word goes through quote removal (shell form) or only substitution (JSON form).
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Shell,
    Json,
}

static NO_ENV: BTreeMap<String, String> = BTreeMap::new();

impl State<'_> {
    fn vars(&self) -> Vars<'_> {
        if self.from_line.is_some() {
            Vars {
                env: &self.env,
                args: &self.args,
            }
        } else {
            Vars {
                env: &NO_ENV,
                args: &self.meta_args,
            }
        }
    }

    /// Substitutes variables in `word` with the current scope.
    fn expand(
        &mut self,
        line: usize,
        instr: &str,
        word: &str,
        form: Form,
    ) -> Result<String, DockerfileError> {
        let vars = self.vars();
        let mut lexer = Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape: self.escape,
            quotes: form == Form::Shell,
            vars: &vars,
            depth: 0,
        };
        let out = lexer
            .process(None)
            .map_err(|e| DockerfileError::Substitution {
                line,
                message: format!("{instr}: {e} in {}", shown(word)),
            })?;
        if out.len() > self.budget {
            return Err(DockerfileError::Substitution {
                line,
                message: format!(
                    "{instr}: variable substitution produced more than {MAX_TOTAL_EXPANSION} bytes in total"
                ),
            });
        }
        self.budget -= out.len();
        Ok(out)
    }

    fn expand_all(
        &mut self,
        line: usize,
        instr: &str,
        words: &[String],
        form: Form,
    ) -> Result<Vec<String>, DockerfileError> {
        words
            .iter()
            .map(|w| self.expand(line, instr, w, form))
            .collect()
    }
}

/// Parses `text` and evaluates it with `build_args`; see the module documentation.
pub fn parse(
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<Instruction>, DockerfileError> {
    let (raw, escape) = split_instructions(text)?;
    if raw.is_empty() {
        return Err(stage(
            0,
            "the Dockerfile is empty: it needs at least a FROM instruction",
        ));
    }
    let mut state = State {
        escape,
        build_args,
        meta_args: BTreeMap::new(),
        args: BTreeMap::new(),
        env: BTreeMap::new(),
        from_line: None,
        workdir: "/".to_string(),
        budget: MAX_TOTAL_EXPANSION,
    };
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let kind = instruction(&mut state, r.line, &r.text)?;
        if let Some(s) = kind.strings().into_iter().find(|s| s.contains('\0')) {
            return Err(syntax(
                r.line,
                format!(
                    "{}: NUL byte in {} after variable substitution",
                    kind.name(),
                    shown(s)
                ),
            ));
        }
        out.push(Instruction {
            line: r.line,
            original: r.text,
            kind,
        });
    }
    if state.from_line.is_none() {
        return Err(stage(
            0,
            "no FROM instruction: a Dockerfile must have FROM (only ARG may come before it)",
        ));
    }
    Ok(out)
}

/// Evaluates one instruction.
fn instruction(
    state: &mut State<'_>,
    line: usize,
    text: &str,
) -> Result<InstructionKind, DockerfileError> {
    let (name, rest) = match text.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((n, r)) => (n, r.trim()),
        None => (text, ""),
    };
    let instr = name.to_ascii_uppercase();
    let reason = match instr.as_str() {
        "RUN" => Some("Wasm images cannot execute commands at build time"),
        "SHELL" => Some("a Wasm image has no shell"),
        "HEALTHCHECK" => Some("a Wasm container has no commands to probe its health with"),
        "ONBUILD" => Some("build triggers would run commands in later builds"),
        "MAINTAINER" => Some("it is deprecated; use LABEL maintainer=\"...\" instead"),
        "FROM" | "COPY" | "ADD" | "ENV" | "ARG" | "WORKDIR" | "ENTRYPOINT" | "CMD" | "LABEL"
        | "EXPOSE" | "USER" | "STOPSIGNAL" | "VOLUME" => None,
        _ => {
            let shown_name = if name.chars().count() > 40 {
                format!("{}...", name.chars().take(40).collect::<String>())
            } else {
                name.to_string()
            };
            return Err(DockerfileError::UnknownInstruction {
                line,
                instruction: name.to_string(),
                message: format!(
                    "unknown instruction: {}",
                    shown_name.to_uppercase().escape_debug()
                ),
            });
        }
    };
    if let Some(reason) = reason {
        return Err(unsupported(
            line,
            &instr,
            format!("{instr} is not supported: {reason}"),
        ));
    }
    if state.from_line.is_none() && instr != "FROM" && instr != "ARG" {
        return Err(stage(
            line,
            format!(
                "{instr} before FROM: a Dockerfile must start with FROM (only ARG may come before it)"
            ),
        ));
    }

    let (rest, flag_words) = extract_flags(rest);
    let flags = parse_flags(line, &instr, flag_words)?;
    let i = instr.as_str();
    match i {
        "FROM" => from(state, line, rest, &flags),
        "ARG" => {
            no_flags(line, i, &flags)?;
            arg(state, line, rest)
        }
        "ENV" => {
            no_flags(line, i, &flags)?;
            let pairs = name_values(state, line, i, rest)?;
            for (k, v) in &pairs {
                state.env.insert(k.clone(), v.clone());
            }
            Ok(InstructionKind::Env(pairs))
        }
        "LABEL" => {
            no_flags(line, i, &flags)?;
            Ok(InstructionKind::Label(name_values(state, line, i, rest)?))
        }
        "COPY" | "ADD" => copy(state, line, i, rest, &flags),
        "WORKDIR" => {
            no_flags(line, i, &flags)?;
            if rest.is_empty() {
                return Err(syntax(line, "WORKDIR requires exactly one argument"));
            }
            let dir = state.expand(line, i, rest, Form::Shell)?;
            if dir.is_empty() {
                return Err(syntax(
                    line,
                    format!(
                        "WORKDIR {}: the path is empty after substitution",
                        shown(rest)
                    ),
                ));
            }
            let joined = if dir.starts_with('/') {
                dir
            } else {
                format!("{}/{dir}", state.workdir)
            };
            state.workdir = clean_absolute(&joined);
            Ok(InstructionKind::Workdir(state.workdir.clone()))
        }
        "ENTRYPOINT" | "CMD" => {
            no_flags(line, i, &flags)?;
            let args = exec_form(line, i, rest)?;
            Ok(if i == "CMD" {
                InstructionKind::Cmd(args)
            } else {
                InstructionKind::Entrypoint(args)
            })
        }
        "EXPOSE" => {
            no_flags(line, i, &flags)?;
            let words = split_blank(rest);
            if words.is_empty() {
                return Err(syntax(line, "EXPOSE requires at least one argument"));
            }
            let mut ports: Vec<String> = Vec::new();
            for w in words {
                let expanded = state.expand(line, i, w, Form::Shell)?;
                for spec in expanded.split_ascii_whitespace() {
                    for p in expose_ports(spec).map_err(|m| syntax(line, format!("EXPOSE: {m}")))? {
                        if !ports.contains(&p) {
                            ports.push(p);
                        }
                    }
                }
            }
            if ports.is_empty() {
                return Err(syntax(
                    line,
                    format!("EXPOSE {}: no port left after substitution", shown(rest)),
                ));
            }
            Ok(InstructionKind::Expose(ports))
        }
        "USER" => {
            no_flags(line, i, &flags)?;
            if rest.is_empty() {
                return Err(syntax(line, "USER requires exactly one argument"));
            }
            let user = state.expand(line, i, rest, Form::Shell)?;
            if user.is_empty() {
                return Err(syntax(
                    line,
                    format!("USER {}: the user is empty after substitution", shown(rest)),
                ));
            }
            Ok(InstructionKind::User(user))
        }
        "STOPSIGNAL" => {
            no_flags(line, i, &flags)?;
            if rest.is_empty() {
                return Err(syntax(line, "STOPSIGNAL requires exactly one argument"));
            }
            let sig = state.expand(line, i, rest, Form::Shell)?;
            if !is_signal(&sig) {
                return Err(syntax(
                    line,
                    format!("STOPSIGNAL: invalid signal {}", shown(&sig)),
                ));
            }
            Ok(InstructionKind::StopSignal(sig))
        }
        "VOLUME" => {
            no_flags(line, i, &flags)?;
            let vols =
                match parse_json_array(rest).map_err(|m| syntax(line, format!("VOLUME: {m}")))? {
                    Some(items) => state.expand_all(line, i, &items, Form::Json)?,
                    None => {
                        let words: Vec<String> =
                            split_blank(rest).into_iter().map(str::to_string).collect();
                        state.expand_all(line, i, &words, Form::Shell)?
                    }
                };
            if vols.is_empty() {
                return Err(syntax(line, "VOLUME requires at least one argument"));
            }
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err(syntax(line, "VOLUME specified can not be an empty string"));
            }
            Ok(InstructionKind::Volume(vols))
        }
        _ => Err(DockerfileError::UnknownInstruction {
            line,
            instruction: name.to_string(),
            message: format!("unknown instruction: {instr}"),
        }),
    }
}

fn from(
    state: &mut State<'_>,
    line: usize,
    rest: &str,
    flags: &[Flag],
) -> Result<InstructionKind, DockerfileError> {
    if let Some(f) = flags.first() {
        return Err(unsupported(
            line,
            "FROM",
            format!(
                "FROM --{} is not supported: Wasm images have a single platform",
                shown(&f.name).trim_matches('"')
            ),
        ));
    }
    if let Some(first) = state.from_line {
        return Err(stage(
            line,
            format!(
                "multi-stage builds are not supported: a second FROM (the first is on line {first}); a Wasm image is built from a single stage"
            ),
        ));
    }
    let args = split_blank(rest);
    let alias = match args.as_slice() {
        [_] => None,
        [_, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => Some(*alias),
        _ => {
            return Err(syntax(
                line,
                "FROM requires either one or three arguments (FROM image [AS name])",
            ));
        }
    };
    if let Some(alias) = alias {
        let a = alias.to_ascii_lowercase();
        let valid = a.starts_with(|c: char| c.is_ascii_lowercase())
            && a.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if !valid {
            return Err(syntax(
                line,
                format!(
                    "FROM: invalid name for build stage: {}, name can't start with a number or contain symbols",
                    shown(alias)
                ),
            ));
        }
    }
    let raw = args[0];
    let image = state.expand(line, "FROM", raw, Form::Shell)?;
    if image.is_empty() {
        return Err(syntax(
            line,
            format!(
                "FROM: base name ({}) should not be blank",
                raw.escape_debug()
            ),
        ));
    }
    if image != "scratch"
        && let Err(e) = Reference::parse_no_default_tag(&image)
    {
        return Err(syntax(
            line,
            format!("FROM: invalid image reference {}: {e}", shown(&image)),
        ));
    }
    state.from_line = Some(line);
    Ok(InstructionKind::From { image })
}

fn arg(state: &mut State<'_>, line: usize, rest: &str) -> Result<InstructionKind, DockerfileError> {
    let words = parse_words(rest, state.escape);
    let word = match words.as_slice() {
        [] => return Err(syntax(line, "ARG requires at least one argument")),
        [w] => w,
        _ => {
            return Err(syntax(
                line,
                "ARG with several variables is not supported: declare one ARG per line",
            ));
        }
    };
    let (raw_name, raw_default) = match word.split_once('=') {
        Some((n, d)) => (n, Some(d)),
        None => (word.as_str(), None),
    };
    let name = state.expand(line, "ARG", raw_name, Form::Shell)?;
    if name.is_empty() {
        return Err(syntax(line, "ARG names can not be blank"));
    }
    let default = match raw_default {
        Some(d) => Some(state.expand(line, "ARG", d, Form::Shell)?),
        None => None,
    };
    let value = match state.build_args.get(&name) {
        Some(v) => Some(v.clone()),
        None => match default {
            Some(d) => Some(d),
            None if state.from_line.is_some() => state.meta_args.get(&name).cloned().flatten(),
            None => None,
        },
    };
    let scope = if state.from_line.is_some() {
        &mut state.args
    } else {
        &mut state.meta_args
    };
    scope.insert(name.clone(), value.clone());
    Ok(InstructionKind::Arg { name, value })
}

/// ENV and LABEL: `k=v k2="v 2"` or the legacy `k v w`.
fn name_values(
    state: &mut State<'_>,
    line: usize,
    instr: &str,
    rest: &str,
) -> Result<Vec<(String, String)>, DockerfileError> {
    let words = parse_words(rest, state.escape);
    let Some(first) = words.first() else {
        return Err(syntax(
            line,
            format!("{instr} requires at least one argument"),
        ));
    };
    let raw: Vec<(String, String)> = if !first.contains('=') {
        let (k, v) = match rest.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((k, v)) => (k, v.trim_start()),
            None => return Err(syntax(line, format!("{instr} must have two arguments"))),
        };
        vec![(k.to_string(), v.to_string())]
    } else {
        words
            .iter()
            .map(|w| {
                w.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        syntax(
                            line,
                            format!(
                                "{instr}: syntax error - can't find = in {}. Must be of the form: name=value",
                                shown(w)
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?
    };
    // Every pair sees the variables from before this instruction.
    let mut pairs = Vec::with_capacity(raw.len());
    for (k, v) in raw {
        let key = state.expand(line, instr, &k, Form::Shell)?;
        if key.is_empty() {
            return Err(syntax(line, format!("{instr} names can not be blank")));
        }
        let value = state.expand(line, instr, &v, Form::Shell)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn copy(
    state: &mut State<'_>,
    line: usize,
    instr: &str,
    rest: &str,
    flags: &[Flag],
) -> Result<InstructionKind, DockerfileError> {
    let mut chmod_raw: Option<&str> = None;
    for f in flags {
        match (f.name.as_str(), f.value.as_deref()) {
            ("chown", Some(_)) => {}
            ("chmod", Some(v)) => chmod_raw = Some(v),
            ("chown" | "chmod", None) => {
                return Err(syntax(
                    line,
                    format!("{instr}: missing a value on flag: --{}", f.name),
                ));
            }
            ("link", None | Some("true" | "false")) => {}
            ("link", Some(v)) => {
                return Err(syntax(
                    line,
                    format!(
                        "{instr}: expecting boolean value for flag --link, not: {}",
                        shown(v)
                    ),
                ));
            }
            ("from", _) => {
                return Err(unsupported(
                    line,
                    instr,
                    format!(
                        "{instr} --from is not supported: multi-stage builds are not supported for Wasm images"
                    ),
                ));
            }
            _ => {
                return Err(unsupported(
                    line,
                    instr,
                    format!(
                        "{instr}: unknown flag: --{}",
                        shown(&f.name).trim_matches('"')
                    ),
                ));
            }
        }
    }
    let chmod = match chmod_raw {
        None => None,
        Some(raw) => {
            let v = state.expand(line, instr, raw, Form::Shell)?;
            Some(parse_chmod(&v).ok_or_else(|| {
                syntax(
                    line,
                    format!(
                        "{instr}: invalid chmod parameter {}: expected an octal mode such as 0644",
                        shown(&v)
                    ),
                )
            })?)
        }
    };
    let mut args = match parse_json_array(rest)
        .map_err(|m| syntax(line, format!("{instr}: {m}")))?
    {
        Some(items) => state.expand_all(line, instr, &items, Form::Json)?,
        None => {
            let words: Vec<String> = split_blank(rest).into_iter().map(str::to_string).collect();
            if words.iter().any(|w| w.starts_with("<<")) {
                return Err(unsupported(
                    line,
                    instr,
                    format!("{instr}: heredocs are not supported"),
                ));
            }
            state.expand_all(line, instr, &words, Form::Shell)?
        }
    };
    if args.len() < 2 {
        return Err(syntax(
            line,
            format!(
                "{instr} requires at least two arguments, but only {} provided. Destination could not be determined",
                args.len()
            ),
        ));
    }
    let dest = args.pop().unwrap_or_default();
    if dest.is_empty() {
        return Err(syntax(line, format!("{instr}: the destination is empty")));
    }
    for src in &args {
        if src.is_empty() {
            return Err(syntax(line, format!("{instr}: a source path is empty")));
        }
        if instr == "ADD" {
            let lower = src.to_ascii_lowercase();
            if ["http://", "https://", "git@", "git://", "ssh://"]
                .iter()
                .any(|p| lower.starts_with(p))
            {
                return Err(unsupported(
                    line,
                    instr,
                    format!(
                        "ADD {}: remote sources are not supported; download the file into the build context and COPY it",
                        shown(src)
                    ),
                ));
            }
        }
        if climbs_out(src) {
            return Err(syntax(
                line,
                format!(
                    "{instr}: forbidden path outside the build context: {}",
                    shown(src)
                ),
            ));
        }
    }
    Ok(if instr == "ADD" {
        InstructionKind::Add {
            sources: args,
            dest,
            chmod,
        }
    } else {
        InstructionKind::Copy {
            sources: args,
            dest,
            chmod,
        }
    })
}

/// `["a", "b"]`, for ENTRYPOINT and CMD.
fn exec_form(line: usize, instr: &str, rest: &str) -> Result<Vec<String>, DockerfileError> {
    let hint = format!("a Wasm image has no shell; use the exec form, {instr} [\"arg\", ...]");
    if rest.is_empty() {
        return Err(syntax(
            line,
            format!("{instr} requires an argument: {hint}"),
        ));
    }
    match parse_json_array(rest) {
        Ok(Some(args)) => Ok(args),
        Err(m) => Err(syntax(line, format!("{instr}: {m}"))),
        Ok(None) if rest.starts_with('[') => Err(unsupported(
            line,
            instr,
            format!(
                "{instr} {}: not a valid JSON array of strings, and the shell form is not supported: {hint}",
                shown(rest)
            ),
        )),
        Ok(None) => Err(unsupported(
            line,
            instr,
            format!("{instr} in shell form is not supported: {hint}"),
        )),
    }
}

/// Octal mode, at most 0o7777.
fn parse_chmod(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 8 || !v.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(v, 8).ok().filter(|m| *m <= 0o7777)
}

/// Whether a context-relative source climbs above the context root (`../x`, `a/../../x`).
fn climbs_out(src: &str) -> bool {
    if src.starts_with('/') {
        return false;
    }
    let mut depth: usize = 0;
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// Cleans an absolute path: `/a/./b/../c/` → `/a/c`; `..` never climbs above `/`.
fn clean_absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parse_port(s: &str, spec: &str) -> Result<u32, String> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {} in {}", shown(s), shown(spec)));
    }
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid port {} in {}: ports are 1 to 65535",
            shown(s),
            shown(spec)
        )),
    }
}

/// `80`, `80/tcp`, `53/UDP`, `8000-8010` → `["80/tcp"]`, ...
fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    if spec.contains(':') {
        return Err(format!(
            "{}: EXPOSE does not support port mappings (host:container); use `berth run -p`",
            shown(spec)
        ));
    }
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid protocol {} in {}: expected tcp, udp or sctp",
            shown(&proto),
            shown(spec)
        ));
    }
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse_port(a, spec)?, parse_port(b, spec)?),
        None => {
            let p = parse_port(ports, spec)?;
            (p, p)
        }
    };
    if start > end {
        return Err(format!(
            "invalid port range {}: start above end",
            shown(spec)
        ));
    }
    if (end - start) as usize >= MAX_PORT_RANGE {
        return Err(format!(
            "port range {} is too large: at most {MAX_PORT_RANGE} ports per range",
            shown(spec)
        ));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// Linux signal names (without `SIG`), as Docker's signal map knows them.
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN",
    "RTMAX",
];

/// `SIGTERM`, `TERM`, `sigterm`, `15`, `SIGRTMIN+3`, `RTMAX-1`.
fn is_signal(s: &str) -> bool {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return matches!(s.parse::<u32>(), Ok(1..=64));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&name) {
        return true;
    }
    let offset = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"));
    matches!(offset.map(str::parse::<u32>), Some(Ok(1..=15)))
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_args() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(text: &str) -> Vec<Instruction> {
        parse(text, &no_args()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn kinds(text: &str) -> Vec<InstructionKind> {
        ok(text).into_iter().map(|i| i.kind).collect()
    }

    /// The kind of the last instruction of `FROM scratch\n<body>`.
    fn last(body: &str) -> InstructionKind {
        last_with(body, &no_args())
    }

    fn last_with(body: &str, build_args: &BTreeMap<String, String>) -> InstructionKind {
        let text = format!("FROM scratch\n{body}");
        let mut v = parse(&text, build_args).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        v.pop()
            .map(|i| i.kind)
            .unwrap_or_else(|| panic!("no instruction"))
    }

    fn err(text: &str) -> DockerfileError {
        match parse(text, &no_args()) {
            Ok(v) => panic!("{text:?} accepted: {v:?}"),
            Err(e) => e,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn copy(sources: &[&str], dest: &str, chmod: Option<u32>) -> InstructionKind {
        InstructionKind::Copy {
            sources: s(sources),
            dest: dest.to_string(),
            chmod,
        }
    }

    #[test]
    fn minimal_and_every_instruction() {
        let text = r#"FROM scratch
COPY app.wasm /app.wasm
ADD data.tar /data/
ENV A=1
ARG B=2
WORKDIR /srv
ENTRYPOINT ["/app.wasm"]
CMD ["--port", "80"]
LABEL org.opencontainers.image.title="hello world"
EXPOSE 80 53/udp
USER 1000:1000
STOPSIGNAL SIGTERM
VOLUME /data
"#;
        let v = ok(text);
        assert_eq!(v.len(), 13);
        let k: Vec<_> = v.iter().map(|i| i.kind.clone()).collect();
        assert_eq!(
            k,
            vec![
                InstructionKind::From {
                    image: "scratch".into()
                },
                copy(&["app.wasm"], "/app.wasm", None),
                InstructionKind::Add {
                    sources: s(&["data.tar"]),
                    dest: "/data/".into(),
                    chmod: None
                },
                InstructionKind::Env(kv(&[("A", "1")])),
                InstructionKind::Arg {
                    name: "B".into(),
                    value: Some("2".into())
                },
                InstructionKind::Workdir("/srv".into()),
                InstructionKind::Entrypoint(s(&["/app.wasm"])),
                InstructionKind::Cmd(s(&["--port", "80"])),
                InstructionKind::Label(kv(&[("org.opencontainers.image.title", "hello world")])),
                InstructionKind::Expose(s(&["80/tcp", "53/udp"])),
                InstructionKind::User("1000:1000".into()),
                InstructionKind::StopSignal("SIGTERM".into()),
                InstructionKind::Volume(s(&["/data"])),
            ]
        );
        for (n, i) in v.iter().enumerate() {
            assert_eq!(i.line, n + 1);
        }
        assert_eq!(v[1].original, "COPY app.wasm /app.wasm");
        assert_eq!(v[1].to_string(), "COPY app.wasm /app.wasm");
        assert_eq!(v[12].kind.name(), "VOLUME");
    }

    #[test]
    fn names_are_case_insensitive_and_indented() {
        let v = ok("  from scratch\n\tCoPy a /b\n");
        assert_eq!(v[1].kind, copy(&["a"], "/b", None));
        assert_eq!(v[0].original, "from scratch");
        assert_eq!(v[1].original, "CoPy a /b");
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "# a comment\n\n   # indented comment\nFROM scratch # not a comment\n";
        let e = err(text);
        // `#` after an instruction is part of its arguments, as in Docker.
        assert_eq!(e.line(), 4);
        let v = ok("# c\n\n\nFROM scratch\n\n# c2\nCOPY a b\n   \n");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].line, 4);
        assert_eq!(v[1].line, 7);
        // CRLF line endings and a BOM.
        let v = ok("\u{feff}FROM scratch\r\nCOPY a b\r\n");
        assert_eq!(v[1].kind, copy(&["a"], "b", None));
        assert_eq!(v[1].original, "COPY a b");
    }

    #[test]
    fn continuation_lines() {
        let text =
            "FROM scratch\nCOPY a \\\n     b \\\n  # comment inside\n\n  /dest/\nCMD [\"x\"]\n";
        let v = ok(text);
        assert_eq!(v[1].line, 2);
        assert_eq!(v[1].kind, copy(&["a", "b"], "/dest/", None));
        assert_eq!(v[1].original, "COPY a      b   /dest/");
        assert_eq!(v[2].line, 7);
        // Blanks after the backslash still continue the line.
        let v = ok("FROM scratch\nENV A=1 \\  \n B=2\n");
        assert_eq!(
            v[1].kind,
            InstructionKind::Env(kv(&[("A", "1"), ("B", "2")]))
        );
        // A continuation at the end of the file just ends the instruction.
        let v = ok("FROM scratch\nCMD [\"a\"] \\");
        assert_eq!(v[1].kind, InstructionKind::Cmd(s(&["a"])));
        // Continued instruction name.
        let v = ok("FR\\\nOM scratch\n");
        assert_eq!(v[0].original, "FROM scratch");
    }

    #[test]
    fn line_numbers_across_continuations() {
        let text = "ARG V=1\n\nFROM \\\n  scratch\nCOPY a \\\n  b \\\n  c/\nRUN x\n";
        let e = err(text);
        assert_eq!(e.line(), 8);
        assert_eq!(
            e.to_string(),
            "Dockerfile line 8: RUN is not supported: Wasm images cannot execute commands at build time"
        );
        let v = parse(&text.replace("RUN x\n", "USER me\n"), &no_args()).unwrap();
        assert_eq!(
            v.iter().map(|i| i.line).collect::<Vec<_>>(),
            vec![1, 3, 5, 8]
        );
    }

    #[test]
    fn escape_directive() {
        let text = "# escape=`\nFROM scratch\nCOPY a `\n  b c:/\nENV P=C:\\dir\\x\n";
        let v = ok(text);
        assert_eq!(v[0].line, 2);
        assert_eq!(v[1].kind, copy(&["a", "b"], "c:/", None));
        assert_eq!(v[2].kind, InstructionKind::Env(kv(&[("P", "C:\\dir\\x")])));
        // Backtick escapes `$`.
        let v = ok("#escape = `\nFROM scratch\nENV A=`$HOME\n");
        assert_eq!(v[1].kind, InstructionKind::Env(kv(&[("A", "$HOME")])));
        // Other directives are accepted and ignored; after a blank line it is a comment.
        let v = ok(
            "# syntax=docker/dockerfile:1\n# check=skip=all\n\n# escape=`\nFROM scratch\nENV A=\\$x\n",
        );
        assert_eq!(v[1].kind, InstructionKind::Env(kv(&[("A", "$x")])));
        // Errors.
        assert_eq!(err("# escape=x\nFROM scratch\n").line(), 1);
        let e = err("# escape=`\n# escape=\\\nFROM scratch\n");
        assert_eq!(e.line(), 2);
        assert!(e.message().contains("only one escape"), "{e}");
    }

    #[test]
    fn env_forms_and_quotes() {
        assert_eq!(
            last(r#"ENV k=v k2="v 2" k3='single $x' k4=a\ b"#),
            InstructionKind::Env(kv(&[
                ("k", "v"),
                ("k2", "v 2"),
                ("k3", "single $x"),
                ("k4", "a b")
            ]))
        );
        assert_eq!(
            last("ENV legacy value with  spaces"),
            InstructionKind::Env(kv(&[("legacy", "value with  spaces")]))
        );
        assert_eq!(last("ENV K="), InstructionKind::Env(kv(&[("K", "")])));
        assert_eq!(
            last(r#"ENV "quoted key"=1"#),
            InstructionKind::Env(kv(&[("quoted key", "1")]))
        );
        assert_eq!(err("FROM scratch\nENV").line(), 2);
        assert_eq!(err("FROM scratch\nENV onlyname").line(), 2);
        assert!(
            err("FROM scratch\nENV a=1 b")
                .message()
                .contains("can't find =")
        );
        assert!(err("FROM scratch\nENV =1").message().contains("blank"));
        assert!(matches!(
            err("FROM scratch\nENV a=\"open"),
            DockerfileError::Substitution { line: 2, .. }
        ));
    }

    #[test]
    fn labels() {
        assert_eq!(
            last(r#"LABEL a=1 "b c"="d e" version=${V:-0.1}"#),
            InstructionKind::Label(kv(&[("a", "1"), ("b c", "d e"), ("version", "0.1")]))
        );
        assert_eq!(
            last("LABEL legacy some text"),
            InstructionKind::Label(kv(&[("legacy", "some text")]))
        );
        assert!(
            err("FROM scratch\nLABEL")
                .message()
                .contains("LABEL requires")
        );
    }

    #[test]
    fn substitution_forms() {
        let body = "ARG SET=val\nARG EMPTY=\nARG UNSET\nLABEL \
            a=$SET b=${SET} c=${UNSET:-def} d=${EMPTY:-def} e=${SET:-def} \
            f=${SET:+alt} g=${UNSET:+alt} h=${EMPTY:+alt} i=\\$SET j=$ k=$UNSET \
            l=${EMPTY-def} m=${UNSET-def} n=${EMPTY+alt} o=${UNSET+alt} \
            p=${UNSET:-${SET}x} q=\"$SET in dq\" r='$SET in sq' s=$SET/x t=${SET}_1 \
            u=pre${SET}post v=\"\\$SET\" w=\"a\\b\"";
        let InstructionKind::Label(pairs) = last(body) else {
            panic!()
        };
        let got: BTreeMap<_, _> = pairs.into_iter().collect();
        let want = [
            ("a", "val"),
            ("b", "val"),
            ("c", "def"),
            ("d", "def"),
            ("e", "val"),
            ("f", "alt"),
            ("g", ""),
            ("h", ""),
            ("i", "$SET"),
            ("j", "$"),
            ("k", ""),
            ("l", ""),
            ("m", "def"),
            ("n", "alt"),
            ("o", ""),
            ("p", "valx"),
            ("q", "val in dq"),
            ("r", "$SET in sq"),
            ("s", "val/x"),
            ("t", "val_1"),
            ("u", "prevalpost"),
            ("v", "$SET"),
            ("w", "a\\b"),
        ];
        for (k, v) in want {
            assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn substitution_errors() {
        for (body, needle) in [
            ("ENV a=${", "missing '}'"),
            ("ENV a=${X", "missing '}'"),
            ("ENV a=${}", "bad substitution"),
            ("ENV a=${:-x}", "bad substitution"),
            ("ENV a=${X:-abc", "missing '}'"),
            ("ENV a=${X:=y}", "unsupported modifier"),
            ("ENV a=${X#y}", "unsupported modifier"),
            ("ENV a=\"${X:?must be set}\"", "X: must be set"),
            ("ENV a=${X?}", "X: is not allowed to be unset"),
            ("ENV a='open", "single-quote"),
        ] {
            let e = err(&format!("FROM scratch\n{body}\n"));
            assert!(
                matches!(e, DockerfileError::Substitution { line: 2, .. }),
                "{body}: {e:?}"
            );
            assert!(e.message().contains(needle), "{body}: {e}");
        }
        assert_eq!(
            last("ENV X=\nENV a=${X?}\n"),
            InstructionKind::Env(kv(&[("a", "")]))
        );
        let e = err("FROM scratch\nENV X=\nENV a=${X:?}\n");
        assert!(e.message().contains("X: is not allowed to be empty"), "{e}");
    }

    #[test]
    fn substitution_is_bounded() {
        // Doubling a value each line would need 2^40 bytes.
        let mut text = String::from("FROM scratch\nENV a=xxxxxxxxxxxxxxxx\n");
        for _ in 0..40 {
            text.push_str("ENV a=$a$a\n");
        }
        let e = parse(&text, &no_args()).unwrap_err();
        assert!(matches!(e, DockerfileError::Substitution { .. }), "{e}");
        assert!(e.message().contains("too long"), "{e}");

        // Many 512 KiB labels exhaust the total budget.
        let big = "y".repeat(512 * 1024);
        let mut text = String::from("FROM scratch\n");
        text.push_str(&format!("ENV big={big}\n"));
        for _ in 0..200 {
            text.push_str("LABEL x=$big\n");
        }
        let e = parse(&text, &no_args()).unwrap_err();
        assert!(e.message().contains("in total"), "{e}");

        // Deep nesting is refused, not a stack overflow.
        let deep = format!("ENV a={}x{}\n", "${U:-".repeat(10_000), "}".repeat(10_000));
        let e = err(&format!("FROM scratch\n{deep}"));
        assert!(e.message().contains("nested"), "{e}");
        let fine = format!("ENV a={}x{}\n", "${U:-".repeat(20), "}".repeat(20));
        assert_eq!(last(&fine), InstructionKind::Env(kv(&[("a", "x")])));
    }

    #[test]
    fn env_sees_values_from_before_the_instruction() {
        let v = kinds("FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
        assert_eq!(
            v[2],
            InstructionKind::Env(kv(&[("abc", "bye"), ("def", "hello")]))
        );
        assert_eq!(v[3], InstructionKind::Env(kv(&[("ghi", "bye")])));
    }

    #[test]
    fn args_and_build_args() {
        let text = "ARG TAG=1.0\nARG REG\nFROM ${REG:-localhost:5000}/app:$TAG\nARG TAG\nARG OTHER=x\nARG UNSET_ARG\nENV T=$TAG O=$OTHER U=${UNSET_ARG:-none}\n";
        let v = kinds(text);
        assert_eq!(
            v[0],
            InstructionKind::Arg {
                name: "TAG".into(),
                value: Some("1.0".into())
            }
        );
        assert_eq!(
            v[1],
            InstructionKind::Arg {
                name: "REG".into(),
                value: None
            }
        );
        assert_eq!(
            v[2],
            InstructionKind::From {
                image: "localhost:5000/app:1.0".into()
            }
        );
        assert_eq!(
            v[3],
            InstructionKind::Arg {
                name: "TAG".into(),
                value: Some("1.0".into())
            }
        );
        assert_eq!(
            v[6],
            InstructionKind::Env(kv(&[("T", "1.0"), ("O", "x"), ("U", "none")]))
        );

        let ba = args(&[
            ("TAG", "2.0"),
            ("REG", "ghcr.io"),
            ("OTHER", "y"),
            ("UNDECLARED", "z"),
        ]);
        let v: Vec<_> = parse(&format!("{text}ENV Z=${{UNDECLARED:-undeclared}}\n"), &ba)
            .unwrap()
            .into_iter()
            .map(|i| i.kind)
            .collect();
        assert_eq!(
            v[2],
            InstructionKind::From {
                image: "ghcr.io/app:2.0".into()
            }
        );
        assert_eq!(
            v[6],
            InstructionKind::Env(kv(&[("T", "2.0"), ("O", "y"), ("U", "none")]))
        );
        assert_eq!(v[7], InstructionKind::Env(kv(&[("Z", "undeclared")])));
    }

    #[test]
    fn arg_scoping() {
        // A pre-FROM ARG is not visible after FROM unless redeclared.
        let v = kinds("ARG V=1\nFROM scratch\nENV A=${V:-unset}\nARG V\nENV B=$V\n");
        assert_eq!(v[2], InstructionKind::Env(kv(&[("A", "unset")])));
        assert_eq!(v[4], InstructionKind::Env(kv(&[("B", "1")])));
        // ENV wins over ARG.
        let v = parse(
            "FROM scratch\nENV X=env\nARG X=arg\nLABEL x=$X\n",
            &args(&[("X", "ba")]),
        )
        .unwrap();
        assert_eq!(v[3].kind, InstructionKind::Label(kv(&[("x", "env")])));
        // ARG default refers to earlier variables.
        assert_eq!(
            last("ENV BASE=/opt\nARG DIR=$BASE/app\nWORKDIR $DIR"),
            InstructionKind::Workdir("/opt/app".into())
        );
        // A build-arg is used verbatim (no substitution inside it).
        assert_eq!(
            last_with("ARG A\nLABEL a=$A", &args(&[("A", "$HOME ${X}")])),
            InstructionKind::Label(kv(&[("a", "$HOME ${X}")]))
        );
        // ARG errors.
        assert!(err("FROM scratch\nARG").message().contains("ARG requires"));
        assert!(
            err("FROM scratch\nARG a=1 b=2")
                .message()
                .contains("one ARG per line")
        );
        assert!(err("FROM scratch\nARG =1").message().contains("blank"));
        assert_eq!(
            last("ARG Q=\"a b\""),
            InstructionKind::Arg {
                name: "Q".into(),
                value: Some("a b".into())
            }
        );
    }

    #[test]
    fn no_substitution_in_entrypoint_and_cmd() {
        let v = kinds("FROM scratch\nENV X=1\nENTRYPOINT [\"$X\", \"${X}\"]\nCMD [\"\\\\$X\"]\n");
        assert_eq!(v[2], InstructionKind::Entrypoint(s(&["$X", "${X}"])));
        assert_eq!(v[3], InstructionKind::Cmd(s(&["\\$X"])));
    }

    #[test]
    fn exec_form_required() {
        let e = err("FROM scratch\nENV A=1\n\nCMD echo hi\n");
        assert_eq!(
            e.to_string(),
            "Dockerfile line 4: CMD in shell form is not supported: a Wasm image has no shell; use the exec form, CMD [\"arg\", ...]"
        );
        assert!(
            matches!(e, DockerfileError::Unsupported { ref instruction, .. } if instruction == "CMD")
        );
        let e = err("FROM scratch\nENTRYPOINT /app.wasm\n");
        assert_eq!(e.line(), 2);
        assert!(e.message().starts_with("ENTRYPOINT in shell form"), "{e}");
        let e = err("FROM scratch\nCMD [\"a\", 1]\n");
        assert!(e.message().contains("strings only"), "{e}");
        let e = err("FROM scratch\nCMD [\"unterminated\"\n");
        assert!(e.message().contains("not a valid JSON array"), "{e}");
        assert!(
            err("FROM scratch\nCMD\n")
                .message()
                .contains("requires an argument")
        );
        assert_eq!(last("CMD []"), InstructionKind::Cmd(vec![]));
        assert_eq!(last("ENTRYPOINT [ ]"), InstructionKind::Entrypoint(vec![]));
        assert_eq!(
            last("CMD [\"a b\", \"\\u00e9\", \"\"]"),
            InstructionKind::Cmd(s(&["a b", "é", ""]))
        );
    }

    #[test]
    fn unsupported_instructions() {
        for (instr, line) in [
            (
                "RUN echo hi",
                "RUN is not supported: Wasm images cannot execute commands at build time",
            ),
            ("run [\"x\"]", "RUN is not supported"),
            ("SHELL [\"/bin/sh\"]", "SHELL is not supported"),
            ("HEALTHCHECK NONE", "HEALTHCHECK is not supported"),
            ("ONBUILD COPY a b", "ONBUILD is not supported"),
            ("MAINTAINER me", "MAINTAINER is not supported"),
        ] {
            let e = err(&format!("FROM scratch\n\n{instr}\n"));
            assert!(
                matches!(e, DockerfileError::Unsupported { line: 3, .. }),
                "{e:?}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("Dockerfile line 3: {line}")),
                "{e}"
            );
        }
        let e = err("FROM scratch\nFOO bar\n");
        assert_eq!(e.to_string(), "Dockerfile line 2: unknown instruction: FOO");
        assert!(
            matches!(e, DockerfileError::UnknownInstruction { ref instruction, .. } if instruction == "FOO")
        );
        let e = err(&format!("FROM scratch\n{} x\n", "Z".repeat(10_000)));
        assert!(e.to_string().len() < 200, "{e}");
        let e = err("FROM scratch\n{\"json\": 1}\n");
        assert!(e.message().starts_with("unknown instruction"), "{e}");
    }

    #[test]
    fn from_rules() {
        let e = err("");
        assert!(matches!(e, DockerfileError::Stage { line: 0, .. }));
        assert!(
            e.to_string()
                .starts_with("Dockerfile: the Dockerfile is empty"),
            "{e}"
        );
        assert!(matches!(
            err("# only\n\n  \n"),
            DockerfileError::Stage { line: 0, .. }
        ));
        let e = err("ARG A=1\n");
        assert!(e.message().contains("no FROM"), "{e}");
        let e = err("ARG A=1\nCOPY a b\n");
        assert!(matches!(e, DockerfileError::Stage { line: 2, .. }), "{e:?}");
        assert!(e.message().contains("COPY before FROM"), "{e}");
        let e = err("FROM scratch AS build\nCOPY a b\nFROM scratch\n");
        assert!(matches!(e, DockerfileError::Stage { line: 3, .. }), "{e:?}");
        assert!(e.message().contains("multi-stage"), "{e}");
        assert!(e.message().contains("line 1"), "{e}");
        assert_eq!(
            kinds("FROM hello:1 AS base\n")[0],
            InstructionKind::From {
                image: "hello:1".into()
            }
        );
        assert_eq!(
            kinds("FROM hello as b")[0],
            InstructionKind::From {
                image: "hello".into()
            }
        );
        assert!(err("FROM\n").message().contains("one or three"));
        assert!(err("FROM a b\n").message().contains("one or three"));
        assert!(err("FROM a AS\n").message().contains("one or three"));
        assert!(
            err("FROM a AS 1bad\n")
                .message()
                .contains("invalid name for build stage")
        );
        assert!(err("FROM Hello\n").message().contains("must be lowercase"));
        assert!(
            err("FROM a//b\n")
                .message()
                .contains("invalid image reference")
        );
        assert!(
            err("FROM $NOPE\n")
                .message()
                .contains("should not be blank")
        );
        let e = err("FROM --platform=wasi/wasm scratch\n");
        assert!(matches!(e, DockerfileError::Unsupported { .. }), "{e:?}");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            kinds(&format!("FROM ghcr.io/x/y:1@{d}"))[0],
            InstructionKind::From {
                image: format!("ghcr.io/x/y:1@{d}")
            }
        );
    }

    #[test]
    fn copy_and_add_forms_and_flags() {
        assert_eq!(last("COPY a b dest/"), copy(&["a", "b"], "dest/", None));
        assert_eq!(
            last(r#"COPY ["a b", "c", "/dest dir/"]"#),
            copy(&["a b", "c"], "/dest dir/", None)
        );
        assert_eq!(
            last("COPY --chown=1000:1000 --link a /b"),
            copy(&["a"], "/b", None)
        );
        assert_eq!(
            last("COPY --chmod=0644 a /b"),
            copy(&["a"], "/b", Some(0o644))
        );
        assert_eq!(
            last("COPY --chmod=755 --link=false a /b"),
            copy(&["a"], "/b", Some(0o755))
        );
        assert_eq!(
            last("ARG M=4750\nCOPY --chmod=$M a /b"),
            copy(&["a"], "/b", Some(0o4750))
        );
        assert_eq!(
            last("ADD --chmod=600 [\"x\", \"y/\"]"),
            InstructionKind::Add {
                sources: s(&["x"]),
                dest: "y/".into(),
                chmod: Some(0o600)
            }
        );
        assert_eq!(
            last("ENV D=/opt\nCOPY \"*.wasm\" $D/"),
            copy(&["*.wasm"], "/opt/", None)
        );
        assert_eq!(
            last("ENV D=/opt\nCOPY [\"$D\", \"${D}/x\"]"),
            copy(&["/opt"], "/opt/x", None)
        );
        for (body, needle) in [
            ("COPY --from=build /a /b", "--from is not supported"),
            ("COPY --exclude=x a b", "unknown flag: --exclude"),
            ("ADD --checksum=sha256:x a b", "unknown flag: --checksum"),
            ("COPY --chmod a b", "missing a value"),
            ("COPY --chmod=u+x a b", "invalid chmod"),
            ("COPY --chmod=10000 a b", "invalid chmod"),
            ("COPY --chmod=0888 a b", "invalid chmod"),
            ("COPY --chmod= a b", "invalid chmod"),
            ("COPY --chmod=644 --chmod=600 a b", "duplicate flag"),
            ("COPY --link=maybe a b", "boolean"),
            ("COPY onlyone", "at least two arguments"),
            ("COPY", "at least two arguments"),
            ("COPY [\"a\"]", "at least two arguments"),
            ("COPY [\"a\", 1]", "strings only"),
            ("COPY ../secret /x", "outside the build context"),
            ("COPY a/../../secret /x", "outside the build context"),
            ("COPY [\"..\", \"/x\"]", "outside the build context"),
            ("COPY $EMPTY /x", "source path is empty"),
            ("COPY a $EMPTY", "destination is empty"),
            ("COPY <<EOF /x", "heredocs"),
            (
                "ADD http://example.com/a.wasm /a.wasm",
                "remote sources are not supported",
            ),
            (
                "ADD HTTPS://example.com/a /a",
                "remote sources are not supported",
            ),
            (
                "ADD git@github.com:x/y.git /src",
                "remote sources are not supported",
            ),
            (
                "ADD [\"https://x/y\", \"/z\"]",
                "remote sources are not supported",
            ),
            ("ENV --x=1", "unknown flag"),
        ] {
            let e = err(&format!("FROM scratch\n{body}\n"));
            assert_eq!(e.line(), 2, "{body}");
            assert!(e.message().contains(needle), "{body}: {e}");
        }
        // Paths that stay inside the context are fine.
        assert_eq!(last("COPY a/../b /x"), copy(&["a/../b"], "/x", None));
        assert_eq!(
            last("COPY /../etc/passwd ./x"),
            copy(&["/../etc/passwd"], "./x", None)
        );
    }

    #[test]
    fn workdir_resolution() {
        let v = kinds(
            "FROM scratch\nWORKDIR app\nWORKDIR sub/./dir/\nWORKDIR ../x\nWORKDIR /a/../..\nWORKDIR /tmp//y/\nENV D=rel\nWORKDIR $D\nWORKDIR /my dir\n",
        );
        let dirs: Vec<_> = v
            .into_iter()
            .filter_map(|k| match k {
                InstructionKind::Workdir(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(
            dirs,
            s(&[
                "/app",
                "/app/sub/dir",
                "/app/sub/x",
                "/",
                "/tmp/y",
                "/tmp/y/rel",
                "/my dir"
            ])
        );
        assert_eq!(
            last(&format!("WORKDIR {}", "../".repeat(1000))),
            InstructionKind::Workdir("/".into())
        );
        assert!(
            err("FROM scratch\nWORKDIR\n")
                .message()
                .contains("WORKDIR requires")
        );
        assert!(
            err("FROM scratch\nWORKDIR $NOPE\n")
                .message()
                .contains("empty")
        );
    }

    #[test]
    fn expose() {
        assert_eq!(
            last("EXPOSE 80 80/tcp 53/UDP 132/sctp 8000-8002"),
            InstructionKind::Expose(s(&[
                "80/tcp", "53/udp", "132/sctp", "8000/tcp", "8001/tcp", "8002/tcp"
            ]))
        );
        assert_eq!(
            last("ARG PORTS=\"7 9/udp\"\nEXPOSE $PORTS"),
            InstructionKind::Expose(s(&["7/tcp", "9/udp"]))
        );
        for bad in [
            "EXPOSE",
            "EXPOSE 0",
            "EXPOSE 65536",
            "EXPOSE 99999999999999999999",
            "EXPOSE -1",
            "EXPOSE 80/icmp",
            "EXPOSE 8080:80",
            "EXPOSE 9-1",
            "EXPOSE 1-65535",
            "EXPOSE abc",
            "EXPOSE 80/",
            "EXPOSE $UNSET_PORT",
        ] {
            assert_eq!(err(&format!("FROM scratch\n{bad}\n")).line(), 2, "{bad}");
        }
    }

    #[test]
    fn user_stopsignal_volume() {
        assert_eq!(
            last("ENV U=app\nUSER $U"),
            InstructionKind::User("app".into())
        );
        assert!(
            err("FROM scratch\nUSER\n")
                .message()
                .contains("USER requires")
        );
        for sig in [
            "SIGTERM",
            "TERM",
            "sigint",
            "9",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGUSR1",
        ] {
            assert_eq!(
                last(&format!("STOPSIGNAL {sig}")),
                InstructionKind::StopSignal(sig.into())
            );
        }
        for bad in ["SIGFOO", "0", "65", "RTMIN+99", "", "SIG"] {
            assert!(
                parse(&format!("FROM scratch\nSTOPSIGNAL {bad}\n"), &no_args()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            last("VOLUME /a /b"),
            InstructionKind::Volume(s(&["/a", "/b"]))
        );
        assert_eq!(
            last("ENV V=/v\nVOLUME [\"/data\", \"$V\"]"),
            InstructionKind::Volume(s(&["/data", "/v"]))
        );
        assert!(
            err("FROM scratch\nVOLUME\n")
                .message()
                .contains("VOLUME requires")
        );
        assert!(
            err("FROM scratch\nVOLUME [\"\"]\n")
                .message()
                .contains("empty string")
        );
    }

    #[test]
    fn hostile_inputs() {
        // NUL in the file.
        let e = err("FROM scratch\nENV A=a\0b\n");
        assert_eq!(e.line(), 2);
        assert!(e.message().contains("NUL"));
        // NUL smuggled in through a build-arg.
        let e = parse("FROM scratch\nARG A\nENV B=$A\n", &args(&[("A", "x\0y")])).unwrap_err();
        assert!(e.message().contains("NUL"), "{e}");
        // NUL in a JSON string.
        let e = err("FROM scratch\nCMD [\"a\\u0000b\"]\n");
        assert!(e.message().contains("NUL"), "{e}");
        // Very long lines and many lines are fine.
        let long = "a".repeat(200_000);
        assert_eq!(
            last(&format!("LABEL x={long}")),
            InstructionKind::Label(vec![("x".into(), long.clone())])
        );
        let many = "LABEL a=b\n".repeat(5_000);
        assert_eq!(ok(&format!("FROM scratch\n{many}")).len(), 5_001);
        // Deeply nested JSON is refused by serde_json's recursion limit, not a crash.
        let deep = format!("CMD {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&format!("FROM scratch\n{deep}\n"), &no_args()).is_err());
        // Non-ASCII is carried through.
        assert_eq!(
            last("LABEL ключ=значение"),
            InstructionKind::Label(kv(&[("ключ", "значение")]))
        );
        // Only blanks and escapes.
        assert!(matches!(
            err("\\\n\\\n"),
            DockerfileError::UnknownInstruction { .. } | DockerfileError::Stage { .. }
        ));
        assert!(matches!(
            err("   \n\t\n"),
            DockerfileError::Stage { line: 0, .. }
        ));
    }

    #[test]
    fn word_splitting_helpers() {
        assert_eq!(
            parse_words(r#"a "b c" 'd e' f\ g"#, '\\'),
            s(&["a", "\"b c\"", "'d e'", "f\\ g"])
        );
        assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
        assert_eq!(parse_words("\"\"", '\\'), s(&["\"\""]));
        let (rest, flags) = extract_flags("--a=1 --b=\"x y\" rest of --line");
        assert_eq!(rest, "rest of --line");
        assert_eq!(flags, s(&["--a=1", "--b=x y"]));
        let (rest, flags) = extract_flags("-- --notflag x");
        assert_eq!(rest, "--notflag x");
        assert!(flags.is_empty());
        let (rest, flags) = extract_flags("--only");
        assert_eq!(rest, "");
        assert_eq!(flags, s(&["--only"]));
        assert!(climbs_out(".."));
        assert!(climbs_out("a/../../b"));
        assert!(!climbs_out("a/.."));
        assert!(!climbs_out("/.."));
        assert_eq!(clean_absolute("/a/./b/../../../c/"), "/c");
    }
}
