//! The Dockerfile parser (with variable expansion and a build argument) and the
//! .dockerignore parser on arbitrary text: errors are fine, panics and hangs are not.
#![no_main]

use berth_image::dockerfile;
use berth_image::dockerignore::DockerIgnore;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut args = BTreeMap::new();
    let _ = dockerfile::parse(text, &args);
    args.insert("VERSION".to_string(), "1.0 $HOME ${X:-y}".to_string());
    if let Ok(instructions) = dockerfile::parse(text, &args) {
        for i in &instructions {
            let _ = i.kind.name();
        }
    }
    if let Ok(ignore) = DockerIgnore::parse(text) {
        let _ = ignore.patterns();
        for p in ["a", "a/b/c.txt", ".git", "Dockerfile", "x/../y"] {
            let _ = ignore.is_excluded(p);
        }
    }
});
