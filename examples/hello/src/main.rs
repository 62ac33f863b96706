//! Greets `$NAME` (default "world") and echoes its arguments.
//!
//! A few arguments make it useful for trying out the platform:
//! - `exit=N` exits with code N;
//! - `sleep=S` sleeps S seconds before exiting (a long-running container);
//! - `cat` copies stdin to stdout (try `berth run -i`).

use std::io::{Read, Write};

fn main() {
    let name = std::env::var("NAME").unwrap_or_else(|_| "world".to_string());
    println!("Hello, {name}!");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        println!("args: {}", args.join(" "));
    }
    for arg in &args {
        if arg == "cat" {
            let mut input = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut input);
            let _ = std::io::stdout().write_all(&input);
        } else if let Some(s) = arg.strip_prefix("sleep=") {
            let secs: u64 = s.parse().unwrap_or(1);
            std::thread::sleep(std::time::Duration::from_secs(secs));
        } else if let Some(code) = arg.strip_prefix("exit=") {
            eprintln!("exiting with {code}");
            std::process::exit(code.parse().unwrap_or(1));
        }
    }
}
