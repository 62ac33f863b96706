//! `.dockerignore` semantics, after `moby/patternmatcher` and the docker CLI's build context.
//!
//! Each line of a `.dockerignore` is a pattern:
//!
//! - A line whose first character is `#` is a comment (as in Docker, only at column 0: an
//!   indented `#` starts a pattern). Whitespace around a pattern is trimmed; blank lines are
//!   skipped. A leading `!` makes the pattern an exception, which re-includes what it matches.
//! - Patterns are cleaned like Go's `filepath.Clean` (`./a//b/../c` is `a/c`) and a leading
//!   `/` is dropped: every pattern is relative to the context root.
//! - `*` matches any run of characters except `/`, `?` one character except `/`, `[...]` a
//!   character class (`[^...]` negated, `a-z` ranges, `\` escapes), `\x` the character `x`;
//!   `**` matches any number of directories, including none (`**/*.log`, `a/**/b`), and a
//!   trailing `**` matches everything below (`a/**`). Malformed patterns (an unclosed `[`, a
//!   trailing `\`, a bare `!`) are errors, as with Docker.
//! - A path is excluded if the last pattern matching it, or matching one of its parent
//!   directories, is not an exception (`target` excludes `target/x/y`; `!target/keep`
//!   afterwards re-includes that one file).
//!
//! [`context_files`] walks a build context with those rules, as `docker build` does.

use crate::digest::shown;
use std::io;
use std::path::{Path, PathBuf};

/// Longest pattern accepted (the longest path Linux accepts).
const MAX_PATTERN_LEN: usize = 4096;

/// Why a `.dockerignore` was refused. Every variant carries the 1-based line and the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerIgnoreError {
    /// The pattern is not valid syntax (unclosed `[`, bad range, trailing `\`, ...).
    #[error(".dockerignore line {line}: invalid pattern {}: {reason}", shown(.pattern))]
    BadPattern {
        line: usize,
        pattern: String,
        reason: String,
    },
    /// A `!` with no pattern after it.
    #[error(".dockerignore line {line}: illegal exclusion pattern: \"!\"")]
    IllegalExclusion { line: usize, pattern: String },
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    Any,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: `(.*/)?`, any number of whole directories.
    DirStar,
    /// `**` at the end: `.*`, anything.
    TailStar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exception: bool,
    /// The cleaned pattern, without `!`.
    text: String,
    tokens: Vec<Token>,
    /// No wildcard or escape: matching is string equality.
    literal: bool,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// Compiles a cleaned pattern, validating it as Go's `filepath.Match` does.
fn compile(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::TailStar
                } else {
                    Token::DirStar
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Any),
            '\\' => match chars.get(i) {
                Some(&c) => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
                None => return Err("trailing backslash".to_string()),
            },
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    if chars.get(i) == Some(&']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let lo = class_char(&chars, &mut i)?;
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        hi = class_char(&chars, &mut i)?;
                    }
                    if lo > hi {
                        return Err(format!("character range {lo}-{hi} is reversed"));
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    Ok(tokens)
}

/// One character of a class (Go's `getEsc`).
fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let bad = || "malformed character class".to_string();
    let c = *chars
        .get(*i)
        .ok_or_else(|| "unclosed character class".to_string())?;
    if c == '-' || c == ']' {
        return Err(bad());
    }
    *i += 1;
    if c == '\\' {
        let e = *chars
            .get(*i)
            .ok_or_else(|| "unclosed character class".to_string())?;
        *i += 1;
        return Ok(e);
    }
    Ok(c)
}

/// Whether `tokens` match all of `path` (dynamic programming: linear in pattern × path).
fn matches_tokens(tokens: &[Token], path: &[char]) -> bool {
    let n = path.len();
    // next[j]: the tokens after the current one match path[j..].
    let mut next = vec![false; n + 1];
    next[n] = true;
    let mut cur = vec![false; n + 1];
    for tok in tokens.iter().rev() {
        match tok {
            Token::Star => {
                cur[n] = next[n];
                for j in (0..n).rev() {
                    cur[j] = next[j] || (path[j] != '/' && cur[j + 1]);
                }
            }
            Token::TailStar => {
                cur[n] = next[n];
                for j in (0..n).rev() {
                    cur[j] = next[j] || cur[j + 1];
                }
            }
            Token::DirStar => {
                cur[n] = next[n];
                let mut any = false;
                for j in (0..n).rev() {
                    any = any || (path[j] == '/' && next[j + 1]);
                    cur[j] = next[j] || any;
                }
            }
            Token::Char(c) => {
                cur[n] = false;
                for j in 0..n {
                    cur[j] = path[j] == *c && next[j + 1];
                }
            }
            Token::Any => {
                cur[n] = false;
                for j in 0..n {
                    cur[j] = path[j] != '/' && next[j + 1];
                }
            }
            Token::Class { negated, ranges } => {
                cur[n] = false;
                for j in 0..n {
                    let c = path[j];
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    cur[j] = inside != *negated && next[j + 1];
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        if self.literal {
            return path == self.text;
        }
        let chars: Vec<char> = path.chars().collect();
        matches_tokens(&self.tokens, &chars)
    }
}

impl DockerIgnore {
    /// No patterns: nothing is excluded.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, DockerIgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let bad = |reason: &str| DockerIgnoreError::BadPattern {
                line,
                pattern: raw.to_string(),
                reason: reason.to_string(),
            };
            if p.contains('\0') {
                return Err(bad("NUL byte in pattern"));
            }
            if p.len() > MAX_PATTERN_LEN {
                return Err(bad(&format!("pattern longer than {MAX_PATTERN_LEN} bytes")));
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(DockerIgnoreError::IllegalExclusion {
                        line,
                        pattern: raw.to_string(),
                    });
                }
            }
            let mut text = clean(p);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            let tokens = compile(&text).map_err(|reason| bad(&reason))?;
            let literal =
                tokens.iter().all(|t| matches!(t, Token::Char(_))) && !text.contains('\\');
            patterns.push(Pattern {
                exception,
                text,
                tokens,
                literal,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!...`): walkers must then look inside excluded
    /// directories for re-included files.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// The cleaned patterns, exceptions prefixed with `!`, in order.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exception {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether `rel_path` (`/`-separated, relative to the context root) is excluded. The root
    /// itself (`""` or `.`) never is.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let cleaned = clean(rel_path);
        let path = cleaned.trim_start_matches('/');
        if path.is_empty() || path == "." {
            return false;
        }
        // The parent directories: "a", "a/b" for "a/b/c".
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that can change the outcome is worth matching.
            if p.exception != excluded {
                continue;
            }
            if p.matches(path) || parents.iter().any(|d| p.matches(d)) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether an exception could re-include something below the excluded directory `dir`
    /// (BuildKit's shortcut: exceptions without wildcards are compared as path prefixes).
    fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| !p.literal || format!("{}/", p.text).starts_with(&dir_slash))
    }
}

/// Entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names)
}

/// The relative paths of every file, symlink and directory under `root` that `ignore` does
/// not exclude, in [`Path`] order (each directory's entries sorted by name, a directory
/// before its contents).
///
/// Symlinks are not followed: they are listed as entries themselves. Other special files
/// (FIFOs, sockets, devices) are left out. An excluded directory is not descended into
/// unless an exception could re-include something below it (its own entry stays out even
/// then). `Dockerfile` and `.dockerignore` at the root are always listed, as Docker sends
/// them whatever the patterns say. Entries that vanish during the walk are skipped.
pub fn context_files(root: &Path, ignore: &DockerIgnore) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .rev()
        .map(PathBuf::from)
        .collect();
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let rel_str = rel
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        let always = rel_str == "Dockerfile" || rel_str == ".dockerignore";
        let excluded = !always && ignore.is_excluded(&rel_str);
        let ft = meta.file_type();
        if ft.is_dir() {
            if !excluded {
                out.push(rel.clone());
            }
            if !excluded || ignore.may_reinclude_below(&rel_str) {
                let names = match sorted_entries(&full) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                stack.extend(names.into_iter().rev().map(|n| rel.join(n)));
            }
        } else if (ft.is_file() || ft.is_symlink()) && !excluded {
            out.push(rel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn di(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn check(text: &str, excluded: &[&str], included: &[&str]) {
        let d = di(text);
        for p in excluded {
            assert!(d.is_excluded(p), "{text:?} should exclude {p:?}");
        }
        for p in included {
            assert!(!d.is_excluded(p), "{text:?} should include {p:?}");
        }
    }

    #[test]
    fn empty_excludes_nothing() {
        let d = DockerIgnore::empty();
        assert!(d.is_empty());
        assert!(!d.has_exceptions());
        assert!(!d.is_excluded("anything"));
        assert!(!d.is_excluded(""));
        assert!(di("").is_empty());
        assert!(di("\n\n   \n# only a comment\n").is_empty());
    }

    #[test]
    fn basic_patterns() {
        check(
            "target\n*.log\nsecret.txt\ndocs/*.md\n",
            &["target", "target/x/y", "a.log", "secret.txt", "docs/a.md"],
            &[
                "src/a.log",
                "targets",
                "src/target",
                "docs/sub/a.md",
                "docs",
                "secret.txt.bak",
            ],
        );
        check("?.txt", &["a.txt"], &["ab.txt", "/.txt", "a/b.txt"]);
        check("a*b", &["ab", "axxb"], &["a/b", "ax/xb"]);
        check("*", &["a", "b/c", ".hidden"], &[]);
        check(".git", &[".git", ".git/HEAD"], &["a/.git", ".github"]);
    }

    #[test]
    fn cleaning_and_leading_slash() {
        check("/target", &["target", "target/a"], &["x/target"]);
        check("./a//b/../c/", &["a/c", "a/c/d"], &["a/b", "c"]);
        check("  spaced  \n", &["spaced"], &[" spaced"]);
        assert_eq!(
            di("/a\n!/b/./c\n../x\n").patterns(),
            vec!["a", "!b/c", "../x"]
        );
        // Paths are cleaned too.
        let d = di("a/b");
        assert!(d.is_excluded("a//b"));
        assert!(d.is_excluded("./a/b"));
        assert!(d.is_excluded("/a/b/c"));
        assert!(!d.is_excluded("."));
    }

    #[test]
    fn double_star() {
        check(
            "**/*.go",
            &["a.go", "x/a.go", "x/y/z.go"],
            &["a.go.txt", "x/go"],
        );
        check(
            "a/**/b",
            &["a/b", "a/x/b", "a/x/y/b", "a/b/c"],
            &["a/xb", "b", "xa/b"],
        );
        check("a/**", &["a/x", "a/x/y"], &["a", "ab"]);
        check("**", &["a", "a/b"], &[]);
        check(
            "**/node_modules",
            &["node_modules/x", "a/b/node_modules/c"],
            &["a/node_modules2"],
        );
        check("a**b", &["ab", "ax/b"], &["axb"]);
    }

    #[test]
    fn classes_and_escapes() {
        check("[abc].txt", &["a.txt", "c.txt"], &["d.txt", "ab.txt"]);
        check("[^abc].txt", &["d.txt"], &["a.txt"]);
        check("[a-c]x", &["bx"], &["dx"]);
        check("[\\]]x", &["]x"], &["x"]);
        check("\\*.txt", &["*.txt"], &["a.txt"]);
        check("a\\?", &["a?"], &["ab"]);
        check("file[0-9].log", &["file7.log"], &["filex.log"]);
        check("a.b+c(d)", &["a.b+c(d)"], &["axb+c(d)"]);
        for bad in [
            "[", "[a", "a[]", "[]a]", "[z-a]", "[a-]", "x\\", "[^", "[a\\",
        ] {
            let e = DockerIgnore::parse(&format!("ok\n{bad}\n")).unwrap_err();
            assert!(
                matches!(&e, DockerIgnoreError::BadPattern { line: 2, pattern, .. } if pattern == bad),
                "{bad}: {e:?}"
            );
            assert!(
                e.to_string()
                    .starts_with(".dockerignore line 2: invalid pattern"),
                "{e}"
            );
        }
    }

    #[test]
    fn exceptions_last_match_wins() {
        let text = "*.md\n!README.md\n";
        check(text, &["a.md"], &["README.md", "x/a.md"]);
        assert!(di(text).has_exceptions());
        // A later exclusion overrides an earlier exception.
        check(
            "*.md\n!README*.md\nREADME-secret.md\n",
            &["README-secret.md", "a.md"],
            &["README.md"],
        );
        // Exceptions inside an excluded directory.
        check(
            "target\n!target/keep\n",
            &["target", "target/other", "target/x/y"],
            &["target/keep", "target/keep/inner"],
        );
        // An exception before the exclusion has no effect.
        check("!keep\n*\n", &["keep", "other"], &[]);
        // Everything but one file.
        check(
            "*\n!app.wasm\n",
            &["Dockerfile", "src", "src/app.wasm"],
            &["app.wasm"],
        );
        check("**\n!**/*.wasm\n", &["a", "b/c"], &["a.wasm", "b/c.wasm"]);
        // Exception re-including a parent re-includes the children.
        check("a/b\n!a\n", &[], &["a/b", "a/b/c", "a"]);
    }

    #[test]
    fn comments() {
        // Only a `#` in the first column starts a comment, as in Docker.
        check(
            "# comment\n#*.txt\n  #notcomment\nfoo#bar\n",
            &["#notcomment", "foo#bar"],
            &["# comment", "a.txt", "comment"],
        );
    }

    #[test]
    fn hostile_patterns_and_paths() {
        let e = DockerIgnore::parse("a\n!\n").unwrap_err();
        assert_eq!(
            e,
            DockerIgnoreError::IllegalExclusion {
                line: 2,
                pattern: "!".into()
            }
        );
        assert_eq!(
            e.to_string(),
            ".dockerignore line 2: illegal exclusion pattern: \"!\""
        );
        assert!(matches!(
            DockerIgnore::parse("!   \n"),
            Err(DockerIgnoreError::IllegalExclusion { line: 1, .. })
        ));
        let e = DockerIgnore::parse("a\0b\n").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        let e = DockerIgnore::parse(&long).unwrap_err();
        assert!(e.to_string().len() < 400, "{e}");
        // Traversal patterns never match context paths.
        check("../x\n../../etc/passwd\n", &[], &["x", "etc/passwd"]);
        // A traversal path is matched as written after cleaning, never panics.
        let d = di("*");
        assert!(d.is_excluded("../x"));
        assert!(!d.is_excluded(""));
        assert!(!d.is_excluded("/"));
        // Pathological pattern: linear, not exponential.
        let pat = "*a".repeat(200) + "b";
        let d = di(&pat);
        let path = "a".repeat(2000);
        assert!(!d.is_excluded(&path));
        // Non-ASCII.
        check("données/*", &["données/x"], &["donnees/x"]);
        check("?", &["é"], &["ab"]);
        // BOM and CRLF.
        check("\u{feff}a\r\nb\r\n", &["a", "b"], &["c"]);
    }

    // --- context_files -----------------------------------------------------------------------

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!(
                "berth-dockerignore-test-{}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }

        fn file(&self, rel: &str) {
            let p = self.0.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(p, rel).expect("write");
        }

        fn dir(&self, rel: &str) {
            std::fs::create_dir_all(self.0.join(rel)).expect("mkdir");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn listing(root: &Path, ignore: &DockerIgnore) -> Vec<String> {
        context_files(root, ignore)
            .expect("walk")
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    fn populate(t: &TempDir) {
        for f in [
            "Dockerfile",
            ".dockerignore",
            "app.wasm",
            "a.txt",
            "a/b.txt",
            "a/c/d.txt",
            "target/debug/x.wasm",
            "target/keep.txt",
            "docs/readme.md",
            "docs/notes.md",
            "node_modules/m/index.js",
        ] {
            t.file(f);
        }
        t.dir("empty");
    }

    #[test]
    fn context_files_no_ignore_lists_everything_in_order() {
        let t = TempDir::new();
        populate(&t);
        let all = listing(&t.0, &DockerIgnore::empty());
        assert_eq!(
            all,
            vec![
                ".dockerignore",
                "Dockerfile",
                "a",
                "a/b.txt",
                "a/c",
                "a/c/d.txt",
                "a.txt",
                "app.wasm",
                "docs",
                "docs/notes.md",
                "docs/readme.md",
                "empty",
                "node_modules",
                "node_modules/m",
                "node_modules/m/index.js",
                "target",
                "target/debug",
                "target/debug/x.wasm",
                "target/keep.txt",
            ]
        );
        // The order is Path order, so a BTreeSet<PathBuf> of the result has the same order.
        let paths = context_files(&t.0, &DockerIgnore::empty()).expect("walk");
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn context_files_with_patterns() {
        let t = TempDir::new();
        populate(&t);
        let ignore = di("target\nnode_modules\n**/*.md\n!docs/readme.md\na/c\n");
        assert!(ignore.has_exceptions());
        assert_eq!(
            listing(&t.0, &ignore),
            vec![
                ".dockerignore",
                "Dockerfile",
                "a",
                "a/b.txt",
                "a.txt",
                "app.wasm",
                "docs",
                "docs/readme.md",
                "empty",
            ]
        );
        // Re-including a file inside an excluded directory: the directory stays out, the
        // file comes back.
        let ignore = di("target\n!target/keep.txt\n");
        let got = listing(&t.0, &ignore);
        assert!(got.contains(&"target/keep.txt".to_string()), "{got:?}");
        assert!(!got.contains(&"target".to_string()), "{got:?}");
        assert!(
            !got.iter().any(|p| p.starts_with("target/debug")),
            "{got:?}"
        );
        // A wildcard exception makes the walker look everywhere.
        let ignore = di("*\n!**/*.wasm\n");
        assert_eq!(
            listing(&t.0, &ignore),
            vec![
                ".dockerignore",
                "Dockerfile",
                "app.wasm",
                "target/debug/x.wasm"
            ]
        );
    }

    #[test]
    fn context_files_always_keeps_dockerfile_and_dockerignore() {
        let t = TempDir::new();
        populate(&t);
        let ignore = di("*\n");
        assert_eq!(listing(&t.0, &ignore), vec![".dockerignore", "Dockerfile"]);
        let ignore = di("Dockerfile\n.dockerignore\n");
        let got = listing(&t.0, &ignore);
        assert!(got.contains(&"Dockerfile".to_string()));
        assert!(got.contains(&".dockerignore".to_string()));
        // Only at the root.
        t.file("sub/Dockerfile");
        let got = listing(&t.0, &di("sub/Dockerfile\n"));
        assert!(!got.contains(&"sub/Dockerfile".to_string()), "{got:?}");
    }

    #[cfg(unix)]
    #[test]
    fn context_files_does_not_follow_symlinks() {
        let t = TempDir::new();
        let outside = TempDir::new();
        outside.file("secret/key");
        t.file("real/f.txt");
        std::os::unix::fs::symlink(outside.0.join("secret"), t.0.join("link-dir"))
            .expect("symlink");
        std::os::unix::fs::symlink("real/f.txt", t.0.join("link-file")).expect("symlink");
        std::os::unix::fs::symlink("/nonexistent/dangling", t.0.join("dangling")).expect("symlink");
        let got = listing(&t.0, &DockerIgnore::empty());
        assert_eq!(
            got,
            vec!["dangling", "link-dir", "link-file", "real", "real/f.txt"]
        );
        // Symlinks are matched by their own name.
        let got = listing(&t.0, &di("link-*\n"));
        assert_eq!(got, vec!["dangling", "real", "real/f.txt"]);
    }

    #[test]
    fn context_files_missing_root_is_an_error() {
        let t = TempDir::new();
        let missing = t.0.join("nope");
        assert!(context_files(&missing, &DockerIgnore::empty()).is_err());
        let empty = listing(&t.0, &DockerIgnore::empty());
        assert!(empty.is_empty());
    }
}
