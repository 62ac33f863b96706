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
    d.build_wat("unreachable", "trap");
    let r = d.berth(&["run", "--name", "trapped", "trap"]);
    assert_eq!(r.code, 134, "{r:#?}");
    let st = d.berth(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.Error}}",
        "trapped",
    ]);
    let out = st.ok().stdout.clone();
    assert!(
        out.starts_with("134 ") && out.contains("unreachable"),
        "{out}"
    );
}

#[test]
fn preview1_exit_codes_pass_through() {
    let d = Daemon::start();
    d.build_wat("exit3", "exit3");
    let r = d.berth(&["run", "--rm", "exit3"]);
    assert_eq!((r.code, r.stdout.as_str()), (3, "bye!\n"), "{r:#?}");
}

#[test]
fn bad_mounts_ports_and_networks_are_refused_with_reasons() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let cases: [(&[&str], &str); 7] = [
        (&["-v", "data:relative"], "must be absolute"),
        (
            &["-v", "../up:/data"],
            "invalid characters for a local volume name",
        ),
        (&["-v", "a1:/x", "-v", "a2:/x"], "Duplicate mount point: /x"),
        (
            &["--network", "host"],
            "network mode \"host\" is not supported",
        ),
        (&["--network", "nosuch"], "network nosuch not found"),
        (
            &["--network", "none", "-p", "8080:80"],
            "conflicting options",
        ),
        (&["--log-opt", "max-file=0"], "max-file"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.push("hello:1");
        let r = d.berth(&args);
        assert_eq!(r.code, 125, "{flags:?}: {r:#?}");
        assert!(r.stderr.contains(want), "{flags:?}: {r:#?}");
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout.trim(), "");
    // Nothing half-made: the refused runs created no volume.
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(), "");
}
