//! Output formatting: a subset of Go's `text/template` (as the docker CLI uses for `--format`),
//! Go's `text/tabwriter` column layout, and docker's human-readable numbers.

use serde_json::Value;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------
// Template engine
// ---------------------------------------------------------------------------------------------

/// A template parsing or execution error, worded like Go's.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

type TResult<T> = Result<T, TemplateError>;

fn parse_err(line: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("template: :{line}: {msg}"))
}

/// The functions templates may call (docker's basic functions plus Go's builtins).
const FUNCTIONS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "pad", "truncate", "println", "print",
    "printf", "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "not", "and", "or",
];

/// Functions that print their first argument unchanged when a table header is rendered
/// (docker's `HeaderFunctions`).
const HEADER_FUNCTIONS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "truncate", "pad",
];

#[derive(Debug, Clone)]
enum Tok {
    /// `.` (empty) or `.A.B`
    Field(Vec<String>),
    /// `$` or `$x`, with an optional field chain
    Var(String, Vec<String>),
    /// a field chain directly after `)`
    Chain(Vec<String>),
    Ident(String),
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Operand {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Paren(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action {
        line: usize,
        text: String,
        pipe: Pipeline,
    },
    If {
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        line: usize,
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// A raw piece of a template: literal text or the tokens of one `{{ }}` action.
#[derive(Debug)]
enum Item {
    Text(String),
    Action {
        line: usize,
        text: String,
        toks: Vec<Tok>,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parse `src` (after the caller has turned `\t`/`\n` escapes into characters).
    pub fn parse(src: &str) -> TResult<Self> {
        let items = split_items(src)?;
        let mut parser = Parser { items, pos: 0 };
        let (nodes, stop) = parser.parse_list()?;
        match stop {
            Stop::Eof => Ok(Self { nodes }),
            Stop::End(line) => Err(parse_err(line, "unexpected {{end}}")),
            Stop::Else(line, _) => Err(parse_err(line, "unexpected {{else}}")),
        }
    }

    /// Render with `data` as `.` (and `$`).
    pub fn render(&self, data: &Value) -> TResult<String> {
        self.exec(data, false)
    }

    /// Render a table header: fields resolve to the column names in `header`, and the
    /// formatting functions print their argument unchanged.
    pub fn render_header(&self, header: &Value) -> TResult<String> {
        self.exec(header, true)
    }

    fn exec(&self, data: &Value, header: bool) -> TResult<String> {
        let mut ex = Exec {
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
            header,
        };
        ex.list(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// Docker's pre-processing of a `--format` value: `\t` and `\n` become tab and newline.
pub fn unescape(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}

fn split_items(src: &str) -> TResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut text = rest.to_string();
            if trim_next {
                text = text.trim_start().to_string();
            }
            items.push(Item::Text(text));
            break;
        };
        let mut text = rest[..open].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[open + 2..];
        let trim_left = after.starts_with('-') && after[1..].starts_with([' ', '\t', '\n', '\r']);
        if trim_left {
            text = text.trim_end().to_string();
        }
        line += rest[..open].matches('\n').count();
        if !text.is_empty() {
            items.push(Item::Text(text));
        }
        let body_start = if trim_left { 2 } else { 0 };
        let (body, consumed, trim_right) =
            action_body(&after[body_start..]).ok_or_else(|| parse_err(line, "unclosed action"))?;
        let action_line = line;
        line += body.matches('\n').count();
        let body_trimmed = body.trim();
        // comments: {{/* ... */}}
        if !(body_trimmed.starts_with("/*") && body_trimmed.ends_with("*/")) {
            let toks = lex(body, action_line)?;
            items.push(Item::Action {
                line: action_line,
                text: body_trimmed.to_string(),
                toks,
            });
        }
        trim_next = trim_right;
        rest = &after[body_start + consumed..];
    }
    Ok(items)
}

/// Find the end of an action body: returns (body, bytes consumed including `}}`, right-trim).
fn action_body(s: &str) -> Option<(&str, usize, bool)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'`' | b'\'' => quote = Some(c),
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                let body = &s[..i];
                let trim_right = body.ends_with(" -")
                    || body.ends_with("\t-")
                    || body.ends_with("\n-")
                    || body.ends_with("\r-");
                let body = if trim_right {
                    &body[..body.len() - 1]
                } else {
                    body
                };
                return Some((body, i + 2, trim_right));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex_chain(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut fields = Vec::new();
    while *i < chars.len()
        && chars[*i] == '.'
        && *i + 1 < chars.len()
        && is_ident_char(chars[*i + 1])
    {
        *i += 1;
        let start = *i;
        while *i < chars.len() && is_ident_char(chars[*i]) {
            *i += 1;
        }
        fields.push(chars[start..*i].iter().collect());
    }
    fields
}

fn lex(body: &str, line: usize) -> TResult<Vec<Tok>> {
    let chars: Vec<char> = body.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
                let chain = lex_chain(&chars, &mut i);
                if !chain.is_empty() {
                    toks.push(Tok::Chain(chain));
                }
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '.' => {
                if chars.get(i + 1).is_some_and(|&c| is_ident_char(c)) {
                    let chain = lex_chain(&chars, &mut i);
                    toks.push(Tok::Field(chain));
                } else {
                    toks.push(Tok::Field(Vec::new()));
                    i += 1;
                }
            }
            '$' => {
                i += 1;
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = std::iter::once('$')
                    .chain(chars[start..i].iter().copied())
                    .collect();
                let chain = lex_chain(&chars, &mut i);
                toks.push(Tok::Var(name, chain));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(parse_err(line, "unterminated quoted string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(parse_err(line, "unterminated quoted string"));
                            };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(parse_err(line, "unterminated raw quoted string"));
                }
                toks.push(Tok::Str(chars[start..i].iter().collect()));
                i += 1;
            }
            '\'' => {
                // a character constant: Go treats it as a number; keep the character's code.
                let Some(&ch) = chars.get(i + 1) else {
                    return Err(parse_err(line, "unterminated character constant"));
                };
                if chars.get(i + 2) != Some(&'\'') {
                    return Err(parse_err(line, "unterminated character constant"));
                }
                toks.push(Tok::Num((ch as u32).into()));
                i += 3;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let text = text.trim_start_matches('+').replace('_', "");
                let num = if let Ok(n) = text.parse::<i64>() {
                    serde_json::Number::from(n)
                } else if let Ok(n) = text.parse::<u64>() {
                    serde_json::Number::from(n)
                } else if let Some(n) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    n
                } else {
                    return Err(parse_err(line, format!("bad number syntax: {text:?}")));
                };
                toks.push(Tok::Num(num));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                toks.push(match word.as_str() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word),
                });
            }
            other => {
                return Err(parse_err(line, format!("unexpected {other:?} in command")));
            }
        }
    }
    Ok(toks)
}

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}` or `{{else if ...}}` (the tokens after `else`)
    Else(usize, Vec<Tok>),
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
}

impl Parser {
    fn parse_list(&mut self) -> TResult<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let (line, text, toks) = match &self.items[idx] {
                Item::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action { line, text, toks } => (*line, text.clone(), toks.clone()),
            };
            let keyword = match toks.first() {
                Some(Tok::Ident(w)) => w.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() > 1 {
                        return Err(parse_err(line, "unexpected token in end"));
                    }
                    return Ok((nodes, Stop::End(line)));
                }
                "else" => return Ok((nodes, Stop::Else(line, toks[1..].to_vec()))),
                "if" | "with" => {
                    let pipe = parse_pipeline(&toks[1..], line, keyword)?;
                    let node = self.parse_branches(keyword, line, pipe)?;
                    nodes.push(node);
                }
                "range" => {
                    let pipe = parse_pipeline(&toks[1..], line, "range")?;
                    let (body, stop) = self.parse_list()?;
                    let otherwise = match stop {
                        Stop::End(_) => Vec::new(),
                        Stop::Else(l, rest) => {
                            if !rest.is_empty() {
                                return Err(parse_err(l, "unexpected tokens after else in range"));
                            }
                            self.expect_end(line)?
                        }
                        Stop::Eof => return Err(parse_err(line, "unexpected EOF")),
                    };
                    nodes.push(Node::Range {
                        line,
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(parse_err(
                        line,
                        format!("{{{{{keyword}}}}} is not supported"),
                    ));
                }
                _ => {
                    let pipe = parse_pipeline(&toks, line, "command")?;
                    nodes.push(Node::Action { line, text, pipe });
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn expect_end(&mut self, line: usize) -> TResult<Vec<Node>> {
        let (nodes, stop) = self.parse_list()?;
        match stop {
            Stop::End(_) => Ok(nodes),
            Stop::Else(l, _) => Err(parse_err(l, "expected end; found {{else}}")),
            Stop::Eof => Err(parse_err(line, "unexpected EOF")),
        }
    }

    /// Parse the `then` and `else` lists of an `if` or `with` (including `else if` chains).
    fn parse_branches(&mut self, keyword: &str, line: usize, pipe: Pipeline) -> TResult<Node> {
        let (then, stop) = self.parse_list()?;
        let otherwise = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Eof => return Err(parse_err(line, "unexpected EOF")),
            Stop::Else(l, rest) => {
                if rest.is_empty() {
                    self.expect_end(line)?
                } else {
                    match rest.first() {
                        Some(Tok::Ident(w)) if w == "if" || w == "with" => {
                            let kw = w.clone();
                            let inner = parse_pipeline(&rest[1..], l, &kw)?;
                            vec![self.parse_branches(&kw, l, inner)?]
                        }
                        _ => return Err(parse_err(l, "unexpected tokens after else")),
                    }
                }
            }
        };
        Ok(if keyword == "with" {
            Node::With {
                pipe,
                then,
                otherwise,
            }
        } else {
            Node::If {
                pipe,
                then,
                otherwise,
            }
        })
    }
}

fn parse_pipeline(toks: &[Tok], line: usize, context: &str) -> TResult<Pipeline> {
    let mut pos = 0;
    let pipe = parse_pipeline_at(toks, &mut pos, line, context, false)?;
    if pos < toks.len() {
        return Err(parse_err(
            line,
            format!("unexpected {:?} in {context}", toks[pos]),
        ));
    }
    Ok(pipe)
}

fn parse_pipeline_at(
    toks: &[Tok],
    pos: &mut usize,
    line: usize,
    context: &str,
    in_paren: bool,
) -> TResult<Pipeline> {
    let mut decl = Vec::new();
    let mut assign = false;
    // declarations: `$x :=`, `$k, $v :=`, `$x =`
    let mut look = *pos;
    let mut names = Vec::new();
    while let Some(Tok::Var(name, chain)) = toks.get(look) {
        if !chain.is_empty() {
            break;
        }
        names.push(name.clone());
        look += 1;
        match toks.get(look) {
            Some(Tok::Comma) => look += 1,
            Some(Tok::Declare) | Some(Tok::Assign) => {
                assign = matches!(toks[look], Tok::Assign);
                decl = names.clone();
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    loop {
        match toks.get(*pos) {
            None => break,
            Some(Tok::RParen) if in_paren => break,
            Some(Tok::RParen) => return Err(parse_err(line, "unexpected right paren")),
            Some(Tok::Pipe) => {
                if args.is_empty() {
                    return Err(parse_err(line, "missing value for command"));
                }
                cmds.push(Command {
                    args: std::mem::take(&mut args),
                });
                *pos += 1;
            }
            Some(tok) => {
                let tok = tok.clone();
                *pos += 1;
                let operand = match tok {
                    Tok::Field(f) => Operand::Field(f),
                    Tok::Var(n, c) => Operand::Var(n, c),
                    Tok::Ident(name) => {
                        if !FUNCTIONS.contains(&name.as_str()) {
                            return Err(parse_err(line, format!("function {name:?} not defined")));
                        }
                        Operand::Func(name)
                    }
                    Tok::Str(s) => Operand::Lit(Value::String(s)),
                    Tok::Num(n) => Operand::Lit(Value::Number(n)),
                    Tok::Bool(b) => Operand::Lit(Value::Bool(b)),
                    Tok::Nil => Operand::Lit(Value::Null),
                    Tok::LParen => {
                        let inner = parse_pipeline_at(toks, pos, line, context, true)?;
                        if !matches!(toks.get(*pos), Some(Tok::RParen)) {
                            return Err(parse_err(line, "unclosed left paren"));
                        }
                        *pos += 1;
                        let chain = match toks.get(*pos) {
                            Some(Tok::Chain(c)) => {
                                *pos += 1;
                                c.clone()
                            }
                            _ => Vec::new(),
                        };
                        Operand::Paren(Box::new(inner), chain)
                    }
                    other => {
                        return Err(parse_err(
                            line,
                            format!("unexpected {other:?} in {context}"),
                        ));
                    }
                };
                args.push(operand);
            }
        }
    }
    if args.is_empty() {
        if cmds.is_empty() {
            return Err(parse_err(line, format!("missing value for {context}")));
        }
        return Err(parse_err(line, "missing value for command"));
    }
    cmds.push(Command { args });
    Ok(Pipeline { decl, assign, cmds })
}

/// A value during execution: `None` is Go's "no value" (a missing map key).
type Val = Option<Value>;

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
    header: bool,
}

fn exec_err(msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("template: :1: executing \"\": {msg}"))
}

fn lookup(base: Val, chain: &[String]) -> Val {
    let mut cur = base;
    for name in chain {
        cur = match cur {
            Some(Value::Object(map)) => map.get(name).cloned(),
            _ => None,
        };
    }
    cur
}

/// Go's notion of truth: false, 0, nil, and empty strings, arrays and maps are false.
pub fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

impl Exec {
    fn list(&mut self, nodes: &[Node], dot: &Value) -> TResult<()> {
        let scope = self.vars.len();
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { line, text, pipe } => {
                    let v = self.pipeline(pipe, dot).map_err(|e| {
                        TemplateError(format!(
                            "template: :{line}: executing \"\" at <{text}>: {}",
                            e.0.trim_start_matches("template: :1: executing \"\": ")
                        ))
                    })?;
                    if pipe.decl.is_empty() {
                        match v {
                            None => self.out.push_str("<no value>"),
                            Some(v) => self.out.push_str(&go_fmt(&v)),
                        }
                    }
                }
                Node::If {
                    pipe,
                    then,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if truthy(&v) {
                        self.list(then, dot)?;
                    } else {
                        self.list(otherwise, dot)?;
                    }
                }
                Node::With {
                    pipe,
                    then,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if truthy(&v) {
                        let inner = v.unwrap_or(Value::Null);
                        self.list(then, &inner)?;
                    } else {
                        self.list(otherwise, dot)?;
                    }
                }
                Node::Range {
                    line,
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mut plain = pipe.clone();
                    plain.decl.clear();
                    let v = self.pipeline(&plain, dot)?;
                    let entries: Vec<(Value, Value)> = match v {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(a)) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v))
                            .collect(),
                        Some(Value::Object(o)) => {
                            let mut e: Vec<(Value, Value)> =
                                o.into_iter().map(|(k, v)| (Value::String(k), v)).collect();
                            e.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                            e
                        }
                        Some(Value::Number(n)) if n.as_u64().is_some() => {
                            (0..n.as_u64().unwrap_or(0))
                                .map(|i| (Value::from(i), Value::from(i)))
                                .collect()
                        }
                        Some(other) => {
                            return Err(TemplateError(format!(
                                "template: :{line}: range can't iterate over {}",
                                go_fmt(&other)
                            )));
                        }
                    };
                    if entries.is_empty() {
                        self.list(otherwise, dot)?;
                    }
                    for (k, v) in entries {
                        let saved = self.vars.len();
                        match pipe.decl.len() {
                            0 => {}
                            1 => self.vars.push((pipe.decl[0].clone(), v.clone())),
                            _ => {
                                self.vars.push((pipe.decl[0].clone(), k));
                                self.vars.push((pipe.decl[1].clone(), v.clone()));
                            }
                        }
                        self.list(body, &v)?;
                        self.vars.truncate(saved);
                    }
                }
            }
        }
        self.vars.truncate(scope);
        Ok(())
    }

    fn var(&self, name: &str) -> TResult<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| exec_err(format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, pipe: &Pipeline, dot: &Value) -> TResult<Val> {
        let mut last: Option<Val> = None;
        for cmd in &pipe.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(None);
        if !pipe.decl.is_empty() {
            let value = v.clone().unwrap_or(Value::Null);
            if pipe.assign {
                let name = &pipe.decl[0];
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value,
                    None => return Err(exec_err(format!("undefined variable: {name}"))),
                }
            } else {
                for name in &pipe.decl {
                    self.vars.push((name.clone(), value.clone()));
                }
            }
        }
        Ok(v)
    }

    fn operand(&mut self, op: &Operand, dot: &Value) -> TResult<Val> {
        match op {
            Operand::Field(chain) => Ok(lookup(Some(dot.clone()), chain)),
            Operand::Var(name, chain) => Ok(lookup(Some(self.var(name)?), chain)),
            Operand::Lit(v) => Ok(Some(v.clone())),
            Operand::Paren(pipe, chain) => {
                let v = self.pipeline(pipe, dot)?;
                Ok(lookup(v, chain))
            }
            Operand::Func(name) => self.call(name, Vec::new()),
        }
    }

    fn command(&mut self, cmd: &Command, dot: &Value, fin: Option<Val>) -> TResult<Val> {
        match &cmd.args[0] {
            Operand::Func(name) => {
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.operand(a, dot)?);
                }
                if let Some(f) = fin {
                    args.push(f);
                }
                self.call(name, args)
            }
            first => {
                if cmd.args.len() > 1 || fin.is_some() {
                    return Err(exec_err("can't give argument to non-function"));
                }
                self.operand(first, dot)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Val>) -> TResult<Val> {
        if self.header && HEADER_FUNCTIONS.contains(&name) {
            return Ok(args.into_iter().next().unwrap_or(None));
        }
        call_function(name, args)
    }
}

fn want_args(name: &str, args: &[Val], n: usize) -> TResult<()> {
    if args.len() != n {
        return Err(exec_err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn as_string(v: &Val) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => go_fmt(v),
    }
}

fn as_int(name: &str, v: &Val) -> TResult<i64> {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| exec_err(format!("{name}: bad number"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| exec_err(format!("{name}: expected integer; found {s:?}"))),
        other => Err(exec_err(format!(
            "{name}: expected integer; found {}",
            as_string(other)
        ))),
    }
}

fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Some(Value::Number(_)), Some(Value::Number(_))) => {
            compare(a, b) == Some(std::cmp::Ordering::Equal)
        }
        (None, None) => true,
        (None, Some(Value::Null)) | (Some(Value::Null), None) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither side is a string.
fn sprint(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Some(Value::String(_)));
        if i > 0 && !is_str && !matches!(args[i - 1], Some(Value::String(_))) {
            out.push(' ');
        }
        out.push_str(&as_string(a));
    }
    out
}

fn sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // flags and width are accepted and ignored, except a plain width for %s/%d/%v
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' || d == '+' || d == ' ' || d == '#' || d == '.' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match verb {
            'q' => go_quote(&as_string(arg)),
            'd' => match arg {
                Some(Value::Number(n)) => n.to_string(),
                other => format!("%!d({})", as_string(other)),
            },
            _ => as_string(arg),
        };
        let left = spec.starts_with('-');
        let width: usize = spec
            .trim_start_matches(['-', '+', ' ', '#'])
            .split('.')
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        let len = text.chars().count();
        if len < width {
            let pad = " ".repeat(width - len);
            if left {
                out.push_str(&text);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    out
}

fn call_function(name: &str, args: Vec<Val>) -> TResult<Val> {
    let s = |v: String| Ok(Some(Value::String(v)));
    match name {
        "json" => {
            want_args(name, &args, 1)?;
            s(go_json(args[0].as_ref().unwrap_or(&Value::Null)))
        }
        "join" => {
            want_args(name, &args, 2)?;
            let sep = as_string(&args[1]);
            match &args[0] {
                Some(Value::Array(a)) => s(a.iter().map(go_fmt).collect::<Vec<_>>().join(&sep)),
                other => s(as_string(other)),
            }
        }
        "split" => {
            want_args(name, &args, 2)?;
            let text = as_string(&args[0]);
            let sep = as_string(&args[1]);
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "lower" => {
            want_args(name, &args, 1)?;
            s(as_string(&args[0]).to_lowercase())
        }
        "upper" => {
            want_args(name, &args, 1)?;
            s(as_string(&args[0]).to_uppercase())
        }
        "title" => {
            want_args(name, &args, 1)?;
            s(title_case(&as_string(&args[0])))
        }
        "pad" => {
            want_args(name, &args, 3)?;
            let before = as_int(name, &args[1])?.max(0) as usize;
            let after = as_int(name, &args[2])?.max(0) as usize;
            s(format!(
                "{}{}{}",
                " ".repeat(before),
                as_string(&args[0]),
                " ".repeat(after)
            ))
        }
        "truncate" => {
            want_args(name, &args, 2)?;
            let text = as_string(&args[0]);
            let n = as_int(name, &args[1])?.max(0) as usize;
            s(text.chars().take(n).collect())
        }
        "println" => s(format!(
            "{}\n",
            args.iter().map(as_string).collect::<Vec<_>>().join(" ")
        )),
        "print" => s(sprint(&args)),
        "printf" => {
            if args.is_empty() {
                return Err(exec_err(
                    "wrong number of args for printf: want at least 1 got 0",
                ));
            }
            s(sprintf(&as_string(&args[0]), &args[1..]))
        }
        "len" => {
            want_args(name, &args, 1)?;
            let n = match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(Value::String(t)) => t.len(),
                other => {
                    return Err(exec_err(format!(
                        "error calling len: len of type {}",
                        as_string(other)
                    )));
                }
            };
            Ok(Some(Value::from(n)))
        }
        "index" => {
            if args.is_empty() {
                return Err(exec_err(
                    "wrong number of args for index: want at least 1 got 0",
                ));
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Some(Value::Array(a)), k) => {
                        let i = as_int("index", k)?;
                        if i < 0 || i as usize >= a.len() {
                            return Err(exec_err(format!(
                                "error calling index: index out of range: {i}"
                            )));
                        }
                        Some(a[i as usize].clone())
                    }
                    (Some(Value::Object(o)), k) => o.get(&as_string(k)).cloned(),
                    (None | Some(Value::Null), _) => None,
                    (Some(other), _) => {
                        return Err(exec_err(format!(
                            "error calling index: can't index item of type {}",
                            go_fmt(other)
                        )));
                    }
                };
            }
            Ok(cur)
        }
        "eq" => {
            if args.len() < 2 {
                return Err(exec_err("missing argument for comparison"));
            }
            Ok(Some(Value::Bool(
                args[1..].iter().any(|b| equal(&args[0], b)),
            )))
        }
        "ne" => {
            want_args(name, &args, 2)?;
            Ok(Some(Value::Bool(!equal(&args[0], &args[1]))))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(name, &args, 2)?;
            let ord = compare(&args[0], &args[1]).ok_or_else(|| {
                exec_err(format!(
                    "error calling {name}: incompatible types for comparison"
                ))
            })?;
            use std::cmp::Ordering::*;
            let r = match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            };
            Ok(Some(Value::Bool(r)))
        }
        "not" => {
            want_args(name, &args, 1)?;
            Ok(Some(Value::Bool(!truthy(&args[0]))))
        }
        "and" => {
            if args.is_empty() {
                return Err(exec_err("wrong number of args for and"));
            }
            for a in &args {
                if !truthy(a) {
                    return Ok(a.clone());
                }
            }
            Ok(args.last().cloned().unwrap_or(None))
        }
        "or" => {
            if args.is_empty() {
                return Err(exec_err("wrong number of args for or"));
            }
            for a in &args {
                if truthy(a) {
                    return Ok(a.clone());
                }
            }
            Ok(args.last().cloned().unwrap_or(None))
        }
        other => Err(exec_err(format!("function {other:?} not defined"))),
    }
}

/// Print a value like Go's `fmt.Print` of the decoded JSON: strings bare, `<nil>` for null,
/// `[a b]` for arrays and `map[k:v]` (keys sorted) for objects.
pub fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_fmt(&o[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Compact JSON with object keys sorted, like Go's `json.Marshal` of decoded JSON.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(e, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_json(&o[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

/// Re-indent raw JSON text the way Go's `json.Indent(dst, src, "", "    ")` does, keeping
/// object keys in the order they were sent.
pub fn indent_json(src: &[u8]) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let text = String::from_utf8_lossy(src);
    let chars: Vec<char> = text.chars().collect();
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    let next_significant = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' {
                        if i < chars.len() {
                            out.push(chars[i]);
                            i += 1;
                        }
                    } else if d == '"' {
                        break;
                    }
                }
                continue;
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                if next_significant(i + 1) == Some(close) {
                    // empty object or array stays compact
                    let j = i + 1 + chars[i + 1..].iter().position(|&x| x == close).unwrap_or(0);
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Lists rendered through a template: tables and plain lines
// ---------------------------------------------------------------------------------------------

/// A parsed `--format` value: `table ...` formats print a header and align columns.
pub struct ListFormat {
    table: bool,
    template: Template,
}

impl ListFormat {
    /// The format of a `ls`-style command: `quiet_template` with `-q`, else `--format`, else
    /// the table of `default_table`. Errors become exit status 1, as the docker CLI does.
    pub fn for_listing(
        quiet: bool,
        quiet_template: &str,
        format: Option<&str>,
        default_table: &str,
    ) -> Result<Self, crate::error::StatusError> {
        let chosen = if quiet {
            quiet_template.to_string()
        } else {
            match format {
                Some(f) if !f.is_empty() => f.to_string(),
                _ => format!("table {default_table}"),
            }
        };
        Self::parse(&chosen, default_table)
            .map_err(|e| crate::error::StatusError::new(1, e.to_string()))
    }

    /// Parse a user format. `json` means `{{json .}}`, `table` alone means `default_table`.
    pub fn parse(format: &str, default_table: &str) -> Result<Self, TemplateError> {
        let trimmed = format.trim();
        let (table, body) = if trimmed == "json" {
            (false, "{{json .}}".to_string())
        } else if let Some(rest) = trimmed.strip_prefix("table") {
            let rest = rest.trim();
            if rest.is_empty() {
                (true, default_table.to_string())
            } else {
                (true, rest.to_string())
            }
        } else {
            (false, format.to_string())
        };
        let template = Template::parse(&unescape(&body))
            .map_err(|e| TemplateError(format!("template parsing error: {e}")))?;
        Ok(Self { table, template })
    }

    /// Render all rows (and the header for tables) into the final output text.
    pub fn render(&self, rows: &[Value], header: &Value) -> Result<String, TemplateError> {
        let mut text = String::new();
        if self.table {
            text.push_str(&self.template.render_header(header)?);
            text.push('\n');
        }
        for row in rows {
            text.push_str(&self.template.render(row)?);
            text.push('\n');
        }
        if self.table {
            Ok(tabwrite(&text, 10, 3))
        } else {
            Ok(text)
        }
    }
}

/// Go's `text/tabwriter` with padchar ' ' and no flags: tab-terminated cells are aligned in
/// columns of `max(minwidth, widest cell + padding)`; the last cell of a line is not aligned.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    tab_format(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    out
}

fn tab_format(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut line0 = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        tab_write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            let w = lines[this][column].chars().count() + padding;
            width = width.max(w);
            this += 1;
        }
        widths.push(width);
        tab_format(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    tab_write_lines(lines, line0, line1, widths, out);
}

fn tab_write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() {
                let w = cell.chars().count();
                for _ in w..widths[j] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers and strings as docker prints them
// ---------------------------------------------------------------------------------------------

/// Go's `%.{prec}g` formatting of a float.
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, v.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if v < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= prec as i32 {
        let (first, rest) = digits.split_at(1);
        let mant = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.abs())
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

/// `size` in the largest unit of `units` (each `base` times the previous) below it, with `prec`
/// significant digits.
pub(crate) fn size_with(size: f64, base: f64, units: &[&str], prec: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", fmt_g(size, prec), units[i])
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units (`1.23kB`, `45.6MB`, `0B`).
pub fn human_size(size: f64) -> String {
    size_with(
        size,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
        3,
    )
}

/// docker's `units.BytesSize`: binary units with 4 significant digits (`15.52GiB`).
pub fn bytes_size(size: f64) -> String {
    size_with(
        size,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
        4,
    )
}

/// Go's `time.Time.String()` of a unix timestamp in the local zone:
/// `2024-01-02 15:04:05 +0000 UTC` (zones other than UTC are named by their offset).
pub fn go_time_string(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| {
            let local = t.with_timezone(&chrono::Local);
            let offset = local.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                offset.clone()
            };
            format!("{} {offset} {zone}", local.format("%Y-%m-%d %H:%M:%S"))
        })
        .unwrap_or_default()
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `formatter.Ellipsis`: cut to `max` characters, the last being `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let count = s.chars().count();
    if count <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// docker's `stringid.TruncateID`: drop an algorithm prefix and keep 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = match id.find(':') {
        Some(i) => &id[i + 1..],
        None => id,
    };
    id.chars().take(12).collect()
}

/// `sortorder.NaturalLess` (how docker sorts volume and network names and port lines): runs of
/// digits compare by value, digits sort before other characters.
pub fn natural_less(a: &str, b: &str) -> bool {
    natural_cmp(a, b) == std::cmp::Ordering::Less
}

/// The ordering of [`natural_less`].
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (s1, s2) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < s1.len() && j < s2.len() {
        let (c1, c2) = (s1[i], s2[j]);
        let (d1, d2) = (c1.is_ascii_digit(), c2.is_ascii_digit());
        if d1 != d2 {
            return if d1 {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !d1 {
            if c1 != c2 {
                return c1.cmp(&c2);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < s1.len() && s1[i] == b'0' {
            i += 1;
        }
        while j < s2.len() && s2[j] == b'0' {
            j += 1;
        }
        let (nz1, nz2) = (i, j);
        while i < s1.len() && s1[i].is_ascii_digit() {
            i += 1;
        }
        while j < s2.len() && s2[j].is_ascii_digit() {
            j += 1;
        }
        let (l1, l2) = (i - nz1, j - nz2);
        if l1 != l2 {
            return l1.cmp(&l2);
        }
        let (n1, n2) = (&s1[nz1..i], &s2[nz2..j]);
        if n1 != n2 {
            return n1.cmp(n2);
        }
        if nz1 != nz2 {
            return nz1.cmp(&nz2);
        }
    }
    // identical so far and at least one ended: the shorter sorts first
    s1.len().cmp(&s2.len())
}

/// Go's `time.Time.String()` of an RFC 3339 timestamp, in the timestamp's own offset
/// (`2024-01-02 15:04:05.5 +0000 UTC`); the text as is when it does not parse.
pub fn go_time_of_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return s.to_string();
    };
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{}{frac} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn listing_format_prefers_quiet_then_format_then_the_table() {
        let rows = [serde_json::json!({"ID": "abc", "Name": "n"})];
        let header = serde_json::json!({"ID": "ID", "Name": "NAME"});
        let render = |f: ListFormat| f.render(&rows, &header).unwrap();
        let quiet =
            ListFormat::for_listing(true, "{{.ID}}", Some("{{.Name}}"), "{{.Name}}").unwrap();
        assert_eq!(render(quiet), "abc\n");
        let custom =
            ListFormat::for_listing(false, "{{.ID}}", Some("{{.Name}}"), "{{.ID}}").unwrap();
        assert_eq!(render(custom), "n\n");
        let table = ListFormat::for_listing(false, "{{.ID}}", Some(""), "{{.Name}}").unwrap();
        assert_eq!(render(table), "NAME\nn\n");
        let bad = ListFormat::for_listing(false, "{{.ID}}", Some("{{.Name"), "{{.ID}}");
        assert!(bad.is_err());
    }

    use super::*;
    use serde_json::json;

    fn render(tpl: &str, data: &Value) -> String {
        Template::parse(&unescape(tpl))
            .unwrap()
            .render(data)
            .unwrap()
    }

    #[test]
    fn literal_and_fields() {
        let d = json!({"Name": "/web", "State": {"Status": "running", "Pid": 42}, "N": null});
        assert_eq!(render("hello", &d), "hello");
        assert_eq!(render("{{.Name}}", &d), "/web");
        assert_eq!(
            render("{{ .State.Status }}-{{.State.Pid}}", &d),
            "running-42"
        );
        assert_eq!(render("{{.Missing}}", &d), "<no value>");
        assert_eq!(render("{{.State.Missing.Deeper}}", &d), "<no value>");
        assert_eq!(render("{{.N}}", &d), "<nil>");
        assert_eq!(render("a\\tb\\nc", &d), "a\tb\nc");
    }

    #[test]
    fn go_value_printing() {
        let d = json!({"B": true, "F": false, "A": ["x", "y", 3], "M": {"z": 1, "a": "b", "n": null},
                       "E": [], "O": {}, "Fl": 1.5});
        assert_eq!(render("{{.B}} {{.F}}", &d), "true false");
        assert_eq!(render("{{.A}}", &d), "[x y 3]");
        assert_eq!(render("{{.M}}", &d), "map[a:b n:<nil> z:1]");
        assert_eq!(render("{{.E}} {{.O}}", &d), "[] map[]");
        assert_eq!(render("{{.Fl}}", &d), "1.5");
    }

    #[test]
    fn json_function() {
        let d = json!({"Config": {"Env": ["A=1", "B=<x>&"], "Labels": {"b": "2", "a": "1"}}, "N": null});
        assert_eq!(render("{{json .Config.Env}}", &d), r#"["A=1","B=<x>&"]"#);
        assert_eq!(
            render("{{json .Config.Labels}}", &d),
            r#"{"a":"1","b":"2"}"#
        );
        assert_eq!(
            render("{{json .}}", &d),
            r#"{"Config":{"Env":["A=1","B=<x>&"],"Labels":{"a":"1","b":"2"}},"N":null}"#
        );
        assert_eq!(render("{{json .Missing}}", &d), "null");
        assert_eq!(
            render("{{.Config.Labels | json}}", &d),
            r#"{"a":"1","b":"2"}"#
        );
    }

    #[test]
    fn dot() {
        assert_eq!(render("{{.}}", &json!("x")), "x");
        assert_eq!(render("{{.}}", &json!({"a": 1})), "map[a:1]");
    }

    #[test]
    fn parse_errors() {
        let e = Template::parse("{{.Name").unwrap_err();
        assert_eq!(e.0, "template: :1: unclosed action");
        let e = Template::parse("{{nope .Name}}").unwrap_err();
        assert_eq!(e.0, "template: :1: function \"nope\" not defined");
        let e = Template::parse("a\n{{if .X}}").unwrap_err();
        assert_eq!(e.0, "template: :2: unexpected EOF");
        let e = Template::parse("{{end}}").unwrap_err();
        assert_eq!(e.0, "template: :1: unexpected {{end}}");
        assert!(Template::parse("{{}}").is_err());
        assert!(Template::parse("{{\"abc}}").is_err());
        let lf = ListFormat::parse("{{.ID", "").err().unwrap();
        assert_eq!(
            lf.0,
            "template parsing error: template: :1: unclosed action"
        );
    }

    #[test]
    fn control_structures() {
        let d = json!({"Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Labels": {"b": "2", "a": "1"},
                       "Running": true, "Empty": []});
        assert_eq!(render("{{range .Mounts}}{{.Source}} {{end}}", &d), "/a /b ");
        assert_eq!(
            render("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", &d),
            "a=1;b=2;"
        );
        assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &d), "none");
        assert_eq!(render("{{if .Running}}up{{else}}down{{end}}", &d), "up");
        assert_eq!(
            render("{{if .Nope}}up{{else if .Running}}mid{{end}}", &d),
            "mid"
        );
        assert_eq!(render("{{with .Labels}}{{.a}}{{end}}", &d), "1");
        assert_eq!(render("{{$x := .Labels.b}}[{{$x}}]", &d), "[2]");
        assert_eq!(
            render("{{range .Mounts}}{{$.Running}}{{end}}", &d),
            "truetrue"
        );
        assert_eq!(render("{{- \" a \" -}}  {{- .Running}}", &d), " a true");
        assert_eq!(render("x {{- /* comment */ -}} y", &d), "xy");
    }

    #[test]
    fn functions() {
        let d = json!({"Names": ["a", "b"], "S": "Hello World", "L": {"k": "v"}, "N": 3});
        assert_eq!(render("{{join .Names \",\"}}", &d), "a,b");
        assert_eq!(
            render("{{upper .S}} {{lower .S}}", &d),
            "HELLO WORLD hello world"
        );
        assert_eq!(render("{{title \"hello world\"}}", &d), "Hello World");
        assert_eq!(render("{{index .L \"k\"}}", &d), "v");
        assert_eq!(render("{{index .Names 1}}", &d), "b");
        assert_eq!(render("{{len .Names}}", &d), "2");
        assert_eq!(render("{{truncate .S 5}}", &d), "Hello");
        assert_eq!(render("{{pad .N 1 2}}|", &d), " 3  |");
        assert_eq!(render("{{split .S \" \"}}", &d), "[Hello World]");
        assert_eq!(render("{{if eq .N 3}}three{{end}}", &d), "three");
        assert_eq!(render("{{if ne .S \"x\"}}ne{{end}}", &d), "ne");
        assert_eq!(render("{{if and .N (not .Missing)}}ok{{end}}", &d), "ok");
        assert_eq!(render("{{printf \"%s-%d\" .S .N}}", &d), "Hello World-3");
        assert_eq!(render("{{println .N}}", &d), "3\n");
        assert_eq!(render("{{(index .Names 0)}}", &d), "a");
        assert_eq!(render("{{gt .N 2}}", &d), "true");
        let e = Template::parse("{{.N 1}}").unwrap().render(&d).unwrap_err();
        assert!(
            e.0.contains("can't give argument to non-function"),
            "{}",
            e.0
        );
    }

    #[test]
    fn header_rendering() {
        let h = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let t = Template::parse("{{.ID}}\t{{upper .Names}}\t{{json .ID}}").unwrap();
        assert_eq!(
            t.render_header(&h).unwrap(),
            "CONTAINER ID\tNAMES\tCONTAINER ID"
        );
    }

    #[test]
    fn list_format_tables() {
        let rows = vec![
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "0123456789ab", "Names": "db"}),
        ];
        let header = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let f = ListFormat::parse("table {{.ID}}\\t{{.Names}}", "").unwrap();
        assert_eq!(
            f.render(&rows, &header).unwrap(),
            "CONTAINER ID   NAMES\nabc            web\n0123456789ab   db\n"
        );
        let f = ListFormat::parse("{{.ID}}:{{.Names}}", "").unwrap();
        assert_eq!(
            f.render(&rows, &header).unwrap(),
            "abc:web\n0123456789ab:db\n"
        );
        let f = ListFormat::parse("table", "{{.Names}}").unwrap();
        assert_eq!(f.render(&rows, &header).unwrap(), "NAMES\nweb\ndb\n");
        let f = ListFormat::parse("json", "").unwrap();
        assert_eq!(
            f.render(&rows[..1], &header).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
        // header alone when there are no rows
        let f = ListFormat::parse("table {{.ID}}\t{{.Names}}", "").unwrap();
        assert_eq!(f.render(&[], &header).unwrap(), "CONTAINER ID   NAMES\n");
    }

    #[test]
    fn tabwriter_matches_go() {
        // minwidth 10, padding 3: short columns are 10 wide
        assert_eq!(
            tabwrite("A\tB\tC\nxx\tyyyyyyyyyyyy\tz\n", 10, 3),
            "A         B              C\nxx        yyyyyyyyyyyy   z\n"
        );
        // a line without tabs ends the column block
        assert_eq!(
            tabwrite("a\tb\nplain\nccc\td\n", 1, 1),
            "a b\nplain\nccc d\n"
        );
        // width counts characters, not bytes
        assert_eq!(tabwrite("é…\tx\nab\ty\n", 1, 1), "é… x\nab y\n");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(fmt_g(0.0, 3), "0");
        assert_eq!(fmt_g(1.234, 3), "1.23");
        assert_eq!(fmt_g(45.6, 3), "45.6");
        assert_eq!(fmt_g(100.0, 3), "100");
        assert_eq!(fmt_g(10.0, 3), "10");
        assert_eq!(fmt_g(999.999, 3), "1e+03");
        assert_eq!(fmt_g(1.5, 3), "1.5");
        assert_eq!(fmt_g(0.0001234, 3), "0.000123");
        assert_eq!(fmt_g(0.00001234, 3), "1.23e-05");
        assert_eq!(fmt_g(15.519, 4), "15.52");
    }

    #[test]
    fn docker_sizes() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1234.0), "1.23kB");
        assert_eq!(human_size(45_600_000.0), "45.6MB");
        assert_eq!(human_size(7_797_760.0), "7.8MB");
        assert_eq!(human_size(1_500_000_000.0), "1.5GB");
        assert_eq!(human_size(999_999.0), "1e+03kB");
        assert_eq!(bytes_size(16_663_314_432.0), "15.52GiB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn quoting_and_truncation() {
        assert_eq!(go_quote("echo hi"), "\"echo hi\"");
        assert_eq!(go_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(go_quote("\u{1}é"), "\"\\x01é\"");
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("12345678901234567890", 20), "12345678901234567890");
        assert_eq!(
            ellipsis("123456789012345678901", 20),
            "1234567890123456789…"
        );
        assert_eq!(ellipsis("abc", 1), "a");
        assert_eq!(truncate_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate_id("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(truncate_id("abc"), "abc");
    }

    #[test]
    fn json_indent_keeps_order() {
        let src = br#"[{"Id":"x","Args":[],"Config":{"Z":1,"A":{}},"S":"a,b:{c}"}]"#;
        assert_eq!(
            indent_json(src),
            "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {\n            \"Z\": 1,\n            \"A\": {}\n        },\n        \"S\": \"a,b:{c}\"\n    }\n]"
        );
        assert_eq!(indent_json(b"[]"), "[]");
        assert_eq!(
            indent_json(br#"{"a":"q\"}"}"#),
            "{\n    \"a\": \"q\\\"}\"\n}"
        );
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("web9", "web10"));
        assert!(!natural_less("web10", "web9"));
        assert!(natural_less("a", "b"));
        assert!(natural_less("1", "a"));
        assert!(natural_less("a", "ab"));
        assert!(natural_less("a01", "a001"));
        assert!(!natural_less("x", "x"));
        let mut v = vec!["80/tcp -> x", "8080/tcp -> y", "443/tcp -> z"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["80/tcp -> x", "443/tcp -> z", "8080/tcp -> y"]);
    }

    #[test]
    fn go_times_of_rfc3339() {
        assert_eq!(
            go_time_of_rfc3339("2024-01-02T03:04:05Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(
            go_time_of_rfc3339("2024-01-02T03:04:05.120000000+02:00"),
            "2024-01-02 03:04:05.12 +0200 +0200"
        );
        assert_eq!(go_time_of_rfc3339("garbage"), "garbage");
    }
}
