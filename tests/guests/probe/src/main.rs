//! A hostile test guest: each command tries one thing a container might do to its host and
//! prints exactly one result line, so the isolation tests can assert the precise outcome.
//!
//! ```text
//! probe CMD ARGS... [-- CMD ARGS...]...
//! ```
//!
//! A result line is `ok` (plus data) or `err: <io::ErrorKind>` (the full error goes to
//! stderr). The exit code is 0 when every command succeeded, 1 otherwise, 2 for a usage error.
//!
//! Commands: `cat PATH`, `write PATH TEXT`, `append PATH TEXT`, `ls DIR`, `mkdir PATH`,
//! `rm PATH`, `rmdir PATH`, `rename FROM TO`, `link FROM TO` (hard link),
//! `symlink TARGET LINK`, `readlink PATH`, `truncate PATH`, `stat PATH`, `pwd`, `env` (one
//! `K=V` line per variable, no `ok` line), `alloc MIB` (allocate and touch MIB MiB),
//! `spin` (a CPU loop without host calls, never returns), `sleep SECS`, `exit N`,
//! `stdin-count` (bytes on stdin), `spew MIB` (MIB MiB of 1 KiB lines on stdout, then `ok`).
//! Network commands live in `net.rs`.

mod net;

use std::io::{self, Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = net::main(&args) {
        std::process::exit(code)
    }
    if args.is_empty() {
        eprintln!("usage: probe CMD ARGS... [-- CMD ARGS...]...");
        return ExitCode::from(2);
    }
    let mut all_ok = true;
    for cmd in args.split(|a| a == "--") {
        match run(cmd) {
            Some(Ok(line)) => say(&line),
            Some(Err(e)) => {
                all_ok = false;
                say(&format!("err: {}", describe(&e)));
                eprintln!("probe {}: {e}", cmd.join(" "));
            }
            None => {
                say(&format!("err: usage: {}", cmd.join(" ")));
                return ExitCode::from(2);
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The error kind's name, which is what the tests assert; the message only when the kind says
/// nothing (`Uncategorized`, `Other`).
fn describe(e: &io::Error) -> String {
    let kind = format!("{:?}", e.kind());
    if kind == "Uncategorized" || kind == "Other" {
        format!("{kind}: {e}")
    } else {
        kind
    }
}

/// Runs one command; `None` for an unknown command or wrong arguments.
fn run(cmd: &[String]) -> Option<io::Result<String>> {
    use std::fs;
    let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let ok = |data: String| {
        if data.is_empty() {
            "ok".to_string()
        } else {
            format!("ok {data}")
        }
    };
    Some(match words.as_slice() {
        ["cat", path] => fs::read(path).map(|b| {
            let text = String::from_utf8_lossy(&b);
            ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
        }),
        ["write", path, text] => fs::write(path, text).map(|()| ok(String::new())),
        ["append", path, text] => fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map(|()| ok(String::new())),
        ["ls", dir] => list(dir).map(ok),
        ["mkdir", path] => fs::create_dir(path).map(|()| ok(String::new())),
        ["rm", path] => fs::remove_file(path).map(|()| ok(String::new())),
        ["rmdir", path] => fs::remove_dir(path).map(|()| ok(String::new())),
        ["rename", from, to] => fs::rename(from, to).map(|()| ok(String::new())),
        ["link", from, to] => fs::hard_link(from, to).map(|()| ok(String::new())),
        ["symlink", target, link] => symlink(target, link).map(|()| ok(String::new())),
        ["readlink", path] => fs::read_link(path).map(|t| ok(t.display().to_string())),
        ["truncate", path] => fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map(|_| ok(String::new())),
        ["stat", path] => fs::symlink_metadata(path).map(|m| {
            let ft = m.file_type();
            ok(if ft.is_symlink() {
                "symlink".to_string()
            } else if ft.is_dir() {
                "dir".to_string()
            } else {
                format!("file {}", m.len())
            })
        }),
        ["pwd"] => std::env::current_dir().map(|d| ok(d.display().to_string())),
        ["env"] => {
            let vars: Vec<String> = std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect();
            Ok(vars.join("\n"))
        }
        // Opens `path` up to `n` times, keeping every handle: prints how many opened, then
        // fails with the error that stopped it, if any.
        ["open-many", path, n] => {
            let n: usize = n.parse().ok()?;
            let mut files = Vec::new();
            let mut stopped = None;
            while files.len() < n {
                match fs::File::open(path) {
                    Ok(f) => files.push(f),
                    Err(e) => {
                        stopped = Some(e);
                        break;
                    }
                }
            }
            println!("opened {}", files.len());
            match stopped {
                Some(e) => Err(e),
                None => Ok(ok(String::new())),
            }
        }
        ["alloc", mib] => {
            let mib: usize = mib.parse().ok()?;
            Ok(ok(format!("{}", alloc(mib))))
        }
        ["spin"] => spin(),
        ["sleep", secs] => {
            let secs: f64 = secs.parse().ok()?;
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            Ok(ok(String::new()))
        }
        ["exit", code] => {
            let code: i32 = code.parse().ok()?;
            let _ = io::stdout().flush();
            std::process::exit(code)
        }
        ["spew", mib] => {
            let mib: usize = mib.parse().ok()?;
            spew(mib).map(|()| ok(String::new()))
        }
        ["stdin-count"] => {
            let mut buf = Vec::new();
            io::stdin().read_to_end(&mut buf).map(|n| ok(n.to_string()))
        }
        _ => return None,
    })
}

/// Writes `mib` MiB to stdout as 1 KiB lines (1023 characters and a newline).
fn spew(mib: usize) -> io::Result<()> {
    let mut line = [b'x'; 1024];
    line[1023] = b'\n';
    let mut out = io::stdout().lock();
    for _ in 0..mib * 1024 {
        out.write_all(&line)?;
    }
    out.flush()
}

/// `symlink(2)` through wasi-libc (std's `symlink_path` is unstable).
fn symlink(target: &str, link: &str) -> io::Result<()> {
    use std::ffi::{CString, c_char, c_int};
    unsafe extern "C" {
        fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    }
    let nul = |s: &str| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let (target, link) = (nul(target)?, nul(link)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    if unsafe { symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sorted entry names; directories end in `/`, symlinks in `@`.
fn list(dir: &str) -> io::Result<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let mut name = entry.file_name().to_string_lossy().into_owned();
        if ft.is_symlink() {
            name.push('@');
        } else if ft.is_dir() {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    Ok(names.join(" "))
}

/// Allocates `mib` MiB in 1 MiB chunks and writes to every page, so the memory is really
/// used. Returns the MiB held at the end (all of them, or the guest aborted on the way).
fn alloc(mib: usize) -> usize {
    const MIB: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for i in 0..mib {
        let mut chunk = vec![0u8; MIB];
        for page in chunk.chunks_mut(4096) {
            page[0] = (i as u8).wrapping_add(1);
        }
        chunks.push(std::hint::black_box(chunk));
    }
    std::hint::black_box(&chunks);
    chunks.len()
}

/// Burns CPU forever without calling the host.
fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
