//! Prints quotes from text files shipped in the image.
//!
//! `quotes` lists the collections in the quotes directory (the working directory, from
//! `WORKDIR`); `quotes NAME` prints the collection `NAME.txt`; `quotes NAME N` prints its N-th
//! quote. `--save NAME TEXT` appends a quote to `NAME.txt`, showing that the container's root
//! filesystem is writable and private.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("quotes: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &[String]) -> std::io::Result<()> {
    match args {
        [] => {
            let mut names: Vec<String> = std::fs::read_dir(".")?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".txt").map(str::to_string))
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
            Ok(())
        }
        [flag, name, text @ ..] if flag == "--save" => {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(format!("{name}.txt"))?;
            writeln!(f, "{}", text.join(" "))?;
            println!("saved to {name}.txt");
            Ok(())
        }
        [name, rest @ ..] => {
            let text = std::fs::read_to_string(format!("{name}.txt"))?;
            let quotes: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            match rest.first().map(|n| n.parse::<usize>()) {
                Some(Ok(n)) if n >= 1 && n <= quotes.len() => println!("{}", quotes[n - 1]),
                Some(_) => {
                    return Err(std::io::Error::other(format!(
                        "{name} has {} quotes",
                        quotes.len()
                    )));
                }
                None => quotes.iter().for_each(|q| println!("{q}")),
            }
            Ok(())
        }
    }
}
