//! Errors are clear, name what failed, and use Docker's exit codes.

use crate::harness::{BERTH, Daemon, context};

#[test]
fn unknown_image() {
    let d = Daemon::start();
    let r = d.berth(&["run", "--rm", "nosuch:1"]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("No such image: nosuch:1"), "{r:#?}");
}

#[test]
fn duplicate_name() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    d.berth(&["create", "--name", "twin", "hello:1"]).ok();
    let r = d.berth(&["create", "--name", "twin", "hello:1"]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(
        r.stderr
            .contains("Conflict. The container name \"/twin\" is already in use by container"),
        "{r:#?}"
    );
}

#[test]
fn unsupported_dockerfile_instruction_names_it_and_its_line() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(
        tmp.path(),
        &[("Dockerfile", b"FROM scratch\n# a comment\nRUN make\n")],
    );
    let r = d.berth(&["build", "-t", "bad", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("line 3") && all.contains("RUN"), "{r:#?}");
    assert!(!d.berth(&["images"]).stdout.contains("bad"));
}

#[test]
fn invalid_wasm_entrypoint_fails_the_build() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(
        tmp.path(),
        &[
            ("app.wasm", b"#!/bin/sh\necho not wasm\n"),
            (
                "Dockerfile",
                b"FROM scratch\nCOPY app.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
            ),
        ],
    );
    let r = d.berth(&["build", "-t", "notwasm", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("/app.wasm") && all.contains("not a valid WebAssembly"),
        "{r:#?}"
    );
    assert!(!d.berth(&["images"]).stdout.contains("notwasm"));

    // A module that parses but does not validate is refused too.
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(
        tmp.path(),
        &[
            ("app.wasm", b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00"),
            (
                "Dockerfile",
                b"FROM scratch\nCOPY app.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
            ),
        ],
    );
    let r = d.berth(&["build", "-t", "broken", ctx.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:#?}");
}

#[test]
fn no_daemon_names_the_address_it_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/nobody.sock", tmp.path().display());
    let out = std::process::Command::new(BERTH)
        .args(["-H", &host, "ps"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&host) && err.contains("Cannot connect"),
        "{err}"
    );
}

#[test]
fn trap_is_non_zero_with_the_reason_in_inspect() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    // A preview1 module whose _start hits `unreachable`.
    let wasm = wat_unreachable();
    let ctx = context(
        tmp.path(),
        &[
            ("trap.wasm", &wasm),
            (
                "Dockerfile",
                b"FROM scratch\nCOPY trap.wasm /trap.wasm\nENTRYPOINT [\"/trap.wasm\"]\n",
            ),
        ],
    );
    d.berth(&["build", "-t", "trap", ctx.to_str().unwrap()])
        .ok();
    let r = d.berth(&["run", "--name", "t", "trap"]);
    assert_eq!(r.code, 134, "{r:#?}");
    let err = d.berth(&["inspect", "-f", "{{.State.Error}}", "t"]);
    assert!(err.ok().stdout.contains("unreachable"), "{err:#?}");
}

/// `(module (func (export "_start") unreachable) (memory (export "memory") 1))` in binary form.
fn wat_unreachable() -> Vec<u8> {
    vec![
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
        0x03, 0x02, 0x01, 0x00, // func 0: type 0
        0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
        0x07, 0x13, 0x02, // exports: 2
        0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // "_start" func 0
        0x06, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, // "memory" memory 0
        0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // code: unreachable, end
    ]
}
