//! Running containers: output, env, args, exit codes, detach, ps, logs, stop, rm, inspect.

use crate::harness::Daemon;

#[test]
fn run_streams_output_env_args_and_exit_code() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let r = d.berth(&["run", "--rm", "-e", "NAME=Ada", "hello:1", "x", "y"]);
    r.ok();
    assert_eq!(r.stdout, "Hello, Ada!\nargs: x y\n");

    // The image's ENV applies when -e does not override it.
    let r = d.berth(&["run", "--rm", "hello:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");

    // A failing guest fails berth, and stderr stays on stderr. (WASI 0.2 components built by
    // Rust 1.95 can only report success or failure, so exit(3) arrives as 1; preview1 modules
    // pass exact codes, see errors::preview1_exit_codes_pass_through.)
    let r = d.berth(&["run", "--rm", "hello:1", "exit=3"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(r.stdout, "Hello, world!\nargs: exit=3\n");
    assert_eq!(r.stderr, "exiting with 3\n");
}

#[test]
fn env_file_workdir_and_entrypoint_flags() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let env = d.dir.path().join("env.list");
    std::fs::write(&env, "# comment\nNAME=Grace\n").unwrap();
    let r = d.berth(&[
        "run",
        "--rm",
        "--env-file",
        env.to_str().unwrap(),
        "hello:1",
    ]);
    assert_eq!(r.ok().stdout, "Hello, Grace!\n");
    // --entrypoint replaces the image's entrypoint (and its CMD).
    let r = d.berth(&["run", "--rm", "--entrypoint", "/hello.wasm", "hello:1", "a"]);
    assert_eq!(r.ok().stdout, "Hello, world!\nargs: a\n");
    // A missing entrypoint is a clear create error.
    let r = d.berth(&["run", "--rm", "--entrypoint", "/nope.wasm", "hello:1"]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(
        r.stderr.contains("/nope.wasm") && r.stderr.contains("not found"),
        "{r:#?}"
    );
}

#[test]
fn stdin_is_fed_with_interactive() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let r = d.berth_in(
        &["run", "--rm", "-i", "hello:1", "cat"],
        Some(b"piped input\n"),
    );
    assert_eq!(r.ok().stdout, "Hello, world!\nargs: cat\npiped input\n");
}

#[test]
fn detach_ps_logs_stop_rm() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let r = d.berth(&["run", "-d", "--name", "sleeper", "hello:1", "sleep=300"]);
    let id = r.ok().stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:#?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

    let ps = d.berth(&["ps"]);
    let line = ps
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains("sleeper"))
        .unwrap_or_default()
        .to_string();
    assert!(line.starts_with(&id[..12]), "{ps:#?}");
    assert!(line.contains("Up "), "{ps:#?}");
    let q = d.berth(&["ps", "-q"]);
    assert_eq!(q.ok().stdout.trim(), &id[..12]);
    let f = d.berth(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(f.ok().stdout.trim(), "sleeper running");

    d.wait_inspect("sleeper", "{{.State.Running}}", "true");
    let logs = d.berth(&["logs", "sleeper"]);
    assert_eq!(logs.ok().stdout, "Hello, world!\nargs: sleep=300\n");
    let logs = d.berth(&["logs", "-t", "--tail", "1", "sleeper"]);
    let line = logs.ok().stdout.clone();
    assert!(
        line.ends_with(" args: sleep=300\n") && line.starts_with("20"),
        "{line:?}"
    );

    // rm of a running container is refused without -f.
    let r = d.berth(&["rm", "sleeper"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("container is running"), "{r:#?}");

    let r = d.berth(&["stop", "sleeper"]);
    assert_eq!(r.ok().stdout.trim(), "sleeper");
    d.wait_inspect("sleeper", "{{.State.Status}}", "exited");
    let code = d.berth(&["inspect", "-f", "{{.State.ExitCode}}", "sleeper"]);
    assert_eq!(code.ok().stdout.trim(), "143");
    assert!(
        d.berth(&["ps"])
            .stdout
            .lines()
            .all(|l| !l.contains("sleeper"))
    );
    let all = d.berth(&["ps", "-a"]);
    assert!(all.ok().stdout.contains("Exited (143)"), "{all:#?}");

    d.berth(&["rm", "sleeper"]).ok();
    assert!(!d.berth(&["ps", "-a"]).stdout.contains("sleeper"));
    assert!(!d.state().join("containers").join(&id).exists());
}

#[test]
fn logs_follow_returns_when_the_container_stops() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let id = d
        .berth(&["run", "-d", "hello:1", "sleep=1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let r = d.berth(&["logs", "-f", &id]);
    assert_eq!(r.ok().stdout, "Hello, world!\nargs: sleep=1\n");
    let r = d.berth(&["wait", &id]);
    assert_eq!(r.ok().stdout.trim(), "0");
}

#[test]
fn inspect_by_name_and_short_id() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let id = d
        .berth(&["create", "--name", "web", "hello:1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let by_name = d.berth(&[
        "inspect",
        "-f",
        "{{.Id}} {{.Name}} {{.State.Status}}",
        "web",
    ]);
    assert_eq!(by_name.ok().stdout.trim(), format!("{id} /web created"));
    let by_short = d.berth(&["inspect", "-f", "{{.Name}}", &id[..6]]);
    assert_eq!(by_short.ok().stdout.trim(), "/web");
    let json = d.berth(&["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["Config"]["Image"], "hello:1");
    assert_eq!(v[0]["Path"], "/hello.wasm");
    // start -a runs it attached.
    let r = d.berth(&["start", "-a", "web"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
}

#[test]
fn rm_flag_leaves_nothing_behind() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    d.berth(&["run", "--rm", "--name", "gone", "hello:1"]).ok();
    d.berth(&["run", "--rm", "hello:1", "exit=4"]);
    let all = d.berth(&["ps", "-a", "-q"]);
    assert_eq!(all.ok().stdout.trim(), "", "{all:#?}");
    let left: Vec<_> = std::fs::read_dir(d.state().join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The name is free again.
    d.berth(&["run", "--rm", "--name", "gone", "hello:1"]).ok();
}

#[test]
fn preview1_module_reads_files_shipped_in_its_image() {
    let d = Daemon::start();
    d.build_example("quotes", "quotes:1");
    // CMD ["sea"] with WORKDIR /usr/share/quotes: relative paths resolve there.
    let r = d.berth(&["run", "--rm", "quotes:1"]);
    assert!(
        r.ok().stdout.starts_with("A ship in harbor is safe"),
        "{r:#?}"
    );
    let r = d.berth(&["run", "--rm", "quotes:1", "code", "2"]);
    assert_eq!(
        r.ok().stdout,
        "Simplicity is prerequisite for reliability. (Edsger W. Dijkstra)\n"
    );
    let r = d.berth(&["run", "--rm", "quotes:1", "missing"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.starts_with("quotes: "), "{r:#?}");
    // Each container's root is writable and private.
    let id = d
        .berth(&["create", "quotes:1", "--save", "mine", "fair winds"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let r = d.berth(&["start", "-a", &id]);
    assert_eq!(r.ok().stdout, "saved to mine.txt\n");
    let r = d.berth(&["run", "--rm", "quotes:1", "mine"]);
    assert_eq!(
        r.code, 1,
        "another container must not see the write: {r:#?}"
    );
    // --entrypoint drops the image's CMD: with no arguments quotes lists its collections.
    let r = d.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/quotes.wasm",
        "quotes:1",
    ]);
    assert_eq!(r.ok().stdout, "code\nsea\n");
}

#[test]
fn containers_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.build_example("hello", "hello:1");
    d.berth(&["create", "--name", "keep", "hello:1"]).ok();
    d.berth(&["run", "-d", "--name", "running", "hello:1", "sleep=300"])
        .ok();
    d.wait_inspect("running", "{{.State.Running}}", "true");
    d.restart();
    let all = d.berth(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut lines: Vec<_> = all.ok().stdout.lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, vec!["keep created", "running exited"]);
    let r = d.berth(&["run", "--rm", "hello:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
}

#[test]
fn ctrl_c_on_run_stops_the_container() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let child = d.berth_spawn(&["run", "--name", "cc", "hello:1", "sleep=300"]);
    d.wait_inspect("cc", "{{.State.Running}}", "true");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    d.wait_inspect("cc", "{{.State.Status}} {{.State.ExitCode}}", "exited 130");
}

#[test]
fn a_spinning_guest_does_not_stall_the_daemon_and_stops() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    d.build_wat("spin", "spin");
    d.berth(&["run", "-d", "--name", "spinner", "spin"]).ok();
    d.berth(&["run", "-d", "--name", "spinner2", "spin"]).ok();
    d.wait_inspect("spinner", "{{.State.Running}}", "true");
    // Two spinning guests on two cores: the API and other containers still answer.
    for _ in 0..5 {
        assert!(d.berth(&["ps", "-q"]).ok().stdout.lines().count() == 2);
        assert_eq!(
            d.berth(&["run", "--rm", "hello:1"]).ok().stdout,
            "Hello, world!\n"
        );
    }
    d.berth(&["stop", "spinner", "spinner2"]).ok();
    d.wait_inspect("spinner", "{{.State.Status}}", "exited");
    d.wait_inspect("spinner2", "{{.State.Status}}", "exited");
}

#[test]
fn a_killed_daemon_marks_running_containers_exited_and_refuses_corrupt_state() {
    let mut d = Daemon::start();
    d.build_example("hello", "hello:1");
    let id = d
        .berth(&["run", "-d", "--name", "victim", "hello:1", "sleep=300"])
        .ok()
        .stdout
        .trim()
        .to_string();
    d.wait_inspect("victim", "{{.State.Running}}", "true");
    d.crash_and_restart();
    let st = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
        "victim",
    ]);
    assert_eq!(
        st.ok().stdout.trim(),
        "exited 255 berthd stopped while the container was running"
    );
    // It can run again.
    d.berth(&["start", "victim"]).ok();
    d.wait_inspect("victim", "{{.State.Running}}", "true");

    // A truncated state file stops the daemon with an error naming the file.
    d.stop();
    let state = d.state().join("containers").join(&id).join("state.json");
    std::fs::write(&state, b"{\"status\": \"runn").unwrap();
    let (status, stderr) = d.run_to_exit();
    assert!(!status.success());
    assert!(stderr.contains(&state.display().to_string()), "{stderr}");
}

#[test]
fn berth_stats_count_creates_and_guest_entries() {
    let d = Daemon::start();
    d.build_example("hello", "hello:1");
    let stats = |query: &str| -> serde_json::Value {
        let out = std::process::Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(d.socket())
            .arg(format!("http://berth/berth/stats{query}"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for _ in 0..3 {
        d.berth(&["run", "--rm", "hello:1"]).ok();
    }
    d.berth(&["create", "--name", "idle", "hello:1"]).ok();
    let s = stats("?reset=1");
    assert_eq!(s["create"]["count"], 4, "{s}");
    assert_eq!(s["start_to_entry"]["count"], 3, "{s}");
    let p = &s["start_to_entry"];
    assert!(p["p50_us"].as_u64() <= p["p99_us"].as_u64(), "{s}");
    assert!(p["p99_us"].as_u64() <= p["max_us"].as_u64(), "{s}");
    // Reset: nothing until the next run.
    let s = stats("");
    assert!(
        s["create"].is_null() && s["start_to_entry"].is_null(),
        "{s}"
    );
}
