//! State that survives: restart policies, `kill -9` of berthd at awkward moments, pulls cut
//! short or run twice at once, and lifecycle calls racing each other.

use crate::harness::{Daemon, context, example};
use crate::registry::Registry;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const PROBE: &str = "probe:1";

fn probe_daemon() -> Daemon {
    let d = Daemon::start();
    d.build_test_guest("probe", PROBE);
    d
}

/// `berth ps -a` as `name state` lines, sorted.
fn ps_states(d: &Daemon) -> Vec<String> {
    let r = d.berth(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut lines: Vec<String> = r.ok().stdout.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn on_failure_restarts_up_to_its_maximum_then_stays_exited() {
    let d = probe_daemon();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        PROBE,
        "exit",
        "1",
    ])
    .ok();
    // Runs three times (two restarts), then stays down with its last exit code.
    let done = d.wait_inspect_until(
        "flaky",
        "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{.State.Restarting}}",
        |v| v.starts_with("exited"),
    );
    assert_eq!(done, "exited 2 1 false");
    assert_eq!(
        d.inspect(
            "flaky",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:2"
    );
    // A clean exit is not a failure.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure",
        PROBE,
        "exit",
        "0",
    ])
    .ok();
    d.berth(&["wait", "clean"]).ok();
    assert_eq!(
        d.inspect(
            "clean",
            "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"
        ),
        "exited 0 0"
    );
    // `--rm` with a restart policy is refused.
    let r = d.berth(&["run", "--rm", "--restart", "always", PROBE, "exit", "0"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("conflicting options: cannot specify both --restart and --rm"),
        "{r:#?}"
    );
}

#[test]
fn always_restarts_with_backoff_and_a_manual_stop_suspends_it() {
    let d = probe_daemon();
    d.berth(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        PROBE,
        "exit",
        "1",
    ])
    .ok();
    // (A WASI 0.2 guest's exit code is 0 or 1.) Backoff doubles from 100 ms: after a few restarts the wait is long enough to be seen.
    d.wait_inspect_until("loop", "{{.RestartCount}}", |v| {
        v.parse::<i64>().is_ok_and(|n| n >= 4)
    });
    // ps and inspect while it waits: Docker's `Restarting (code) X ago`, Running and
    // Restarting both true.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let r = d.berth(&["ps", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
        let line = r.ok().stdout.trim().to_string();
        if let Some(status) = line.strip_prefix("loop|restarting|") {
            break status.to_string();
        }
        assert!(Instant::now() < deadline, "never restarting: {line}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.starts_with("Restarting (1) "), "{status}");
    assert!(status.ends_with(" ago"), "{status}");
    d.wait_inspect_until(
        "loop",
        "{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.ExitCode}}",
        |v| v == "restarting true true 1",
    );

    // `stop` during the backoff cancels the restart.
    d.berth(&["stop", "loop"]).ok();
    let count = d.inspect("loop", "{{.RestartCount}}");
    assert_eq!(
        d.inspect(
            "loop",
            "{{.State.Status}} {{.State.Running}} {{.State.Restarting}} {{.State.ExitCode}}"
        ),
        "exited false false 1"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.inspect("loop", "{{.State.Status}} {{.RestartCount}}"),
        format!("exited {count}")
    );

    // A manual start resets the count and the policy applies again.
    d.berth(&["start", "loop"]).ok();
    d.wait_inspect_until("loop", "{{.RestartCount}}", |v| {
        v.parse::<i64>().is_ok_and(|n| (1..=3).contains(&n))
    });

    // `stop` of a running `always` container: exited at once, no restart scheduled.
    d.berth(&[
        "run",
        "-d",
        "--name",
        "steady",
        "--restart",
        "always",
        PROBE,
        "sleep",
        "300",
    ])
    .ok();
    d.wait_inspect("steady", "{{.State.Status}}", "running");
    d.berth(&["stop", "steady"]).ok();
    assert_eq!(
        d.inspect(
            "steady",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
        ),
        "exited 143 0"
    );
    // `kill` too.
    d.berth(&["start", "steady"]).ok();
    d.wait_inspect("steady", "{{.State.Status}}", "running");
    d.berth(&["kill", "steady"]).ok();
    assert_eq!(
        d.inspect(
            "steady",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
        ),
        "exited 137 0"
    );

    // `rm -f` during the backoff removes it.
    d.berth(&["start", "loop"]).ok();
    d.wait_inspect_until("loop", "{{.State.Status}}", |v| v == "restarting");
    let r = d.berth(&["rm", "loop"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("container is restarting"), "{r:#?}");
    d.berth(&["rm", "-f", "loop"]).ok();
    assert_eq!(ps_states(&d), vec!["steady exited"]);
}

#[test]
fn daemon_start_applies_restart_policies() {
    let mut d = probe_daemon();
    let run = |name: &str, policy: &str| {
        d.berth(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            PROBE,
            "sleep",
            "300",
        ])
        .ok();
        d.wait_inspect(name, "{{.State.Status}}", "running");
    };
    run("always-up", "always");
    run("always-stopped", "always");
    run("unless-up", "unless-stopped");
    run("unless-stopped", "unless-stopped");
    run("on-failure", "on-failure");
    run("none", "no");
    d.berth(&[
        "create",
        "--name",
        "never-started",
        "--restart",
        "always",
        PROBE,
    ])
    .ok();
    d.berth(&["stop", "always-stopped", "unless-stopped"]).ok();

    d.crash_and_restart();
    for name in ["always-up", "always-stopped", "unless-up"] {
        d.wait_inspect(name, "{{.State.Status}} {{.RestartCount}}", "running 0");
    }
    assert_eq!(
        ps_states(&d),
        vec![
            "always-stopped running",
            "always-up running",
            "never-started created",
            "none exited",
            "on-failure exited",
            "unless-stopped exited",
            "unless-up running",
        ]
    );
    assert_eq!(
        d.inspect("on-failure", "{{.State.ExitCode}} {{.State.Error}}"),
        "255 berthd stopped while the container was running"
    );
    assert_eq!(d.inspect("unless-stopped", "{{.State.ExitCode}}"), "143");

    // A clean shutdown is not a manual stop: the same containers come back.
    d.restart();
    for name in ["always-up", "always-stopped", "unless-up"] {
        d.wait_inspect(name, "{{.State.Status}}", "running");
    }
    assert_eq!(
        ps_states(&d),
        vec![
            "always-stopped running",
            "always-up running",
            "never-started created",
            "none exited",
            "on-failure exited",
            "unless-stopped exited",
            "unless-up running",
        ]
    );
    // The manual-stop flag is in state.json.
    let id = d.inspect("unless-stopped", "{{.Id}}");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.state().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["manually_stopped"], true);
    assert_eq!(state["status"], "exited");
}

#[test]
fn a_crash_during_runs_and_between_writes_is_reconciled_at_start() {
    let mut d = probe_daemon();
    d.berth(&[
        "run", "-d", "--name", "talker", PROBE, "write", "/app/x", "hi", "--", "sleep", "300",
    ])
    .ok();
    d.wait_inspect("talker", "{{.State.Status}}", "running");
    let logs_before = d.berth(&["logs", "talker"]);
    // The first line may not be out yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.berth(&["logs", "talker"]).stdout != "ok\n" {
        assert!(Instant::now() < deadline, "{logs_before:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.berth(&[
        "run",
        "-d",
        "--name",
        "looper",
        "--restart",
        "always",
        PROBE,
        "exit",
        "1",
    ])
    .ok();
    d.wait_inspect_until("looper", "{{.RestartCount}}", |v| {
        v.parse::<i64>().is_ok_and(|n| n >= 2)
    });
    d.berth(&[
        "create",
        "--name",
        "waiting",
        "--restart",
        "on-failure",
        PROBE,
    ])
    .ok();
    let waiting = d.inspect("waiting", "{{.Id}}");
    let talker = d.inspect("talker", "{{.Id}}");

    // kill -9 while `talker` runs and `looper` restarts over and over.
    d.stop_hard();
    // What a crash between writes leaves: temp files of atomic writes, a half-made
    // container dir, an unfinished snapshot, ingest and volume, a container caught waiting
    // for its restart.
    let st = d.state();
    let cdir = st.join("containers").join(&talker);
    std::fs::write(cdir.join(".tmp-AbC123"), b"{\"status\": \"exi").unwrap();
    std::fs::create_dir_all(
        st.join("containers")
            .join(format!(".tmp-{}", "f".repeat(64))),
    )
    .unwrap();
    std::fs::create_dir_all(st.join("snapshots/.tmp-half/x")).unwrap();
    std::fs::write(st.join("content/ingest/ingest-stale"), b"partial").unwrap();
    std::fs::create_dir_all(st.join("volumes/.tmp-half/_data")).unwrap();
    std::fs::write(st.join("images/.tmp-refs"), b"{").unwrap();
    std::fs::write(st.join(".tmp-networks"), b"[").unwrap();
    let wpath = st.join("containers").join(&waiting).join("state.json");
    let mut wstate: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&wpath).unwrap()).unwrap();
    wstate["status"] = "restarting".into();
    wstate["exit_code"] = 7.into();
    wstate["restart_count"] = 1.into();
    wstate["started_at"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(&wpath, serde_json::to_vec(&wstate).unwrap()).unwrap();

    d.start_again();
    assert_eq!(
        d.inspect(
            "talker",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}"
        ),
        "exited 255 berthd stopped while the container was running"
    );
    assert_eq!(d.berth(&["logs", "talker"]).ok().stdout, "ok\n");
    assert_eq!(
        d.inspect(
            "waiting",
            "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
        ),
        "exited 7 1"
    );
    // `always` comes back.
    d.wait_inspect_until("looper", "{{.State.Status}}", |v| {
        v == "running" || v == "restarting"
    });
    let names: Vec<String> = ps_states(&d)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["looper", "talker", "waiting"]);
    let leftovers = [
        cdir.join(".tmp-AbC123"),
        st.join("containers")
            .join(format!(".tmp-{}", "f".repeat(64))),
        st.join("snapshots/.tmp-half"),
        st.join("content/ingest/ingest-stale"),
        st.join("volumes/.tmp-half"),
        st.join("images/.tmp-refs"),
        st.join(".tmp-networks"),
    ];
    for p in leftovers {
        assert!(!p.exists(), "{} survived the restart", p.display());
    }
    // Every state file on disk agrees with inspect.
    for name in ["talker", "waiting"] {
        let id = d.inspect(name, "{{.Id}}");
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(st.join("containers").join(&id).join("state.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(state["status"], "exited", "{name}");
    }
    // It runs again, logs appended to the same file.
    d.berth(&["start", "talker"]).ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.berth(&["logs", "talker"]).stdout != "ok\nok\n" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    d.berth(&["rm", "-f", "talker", "looper", "waiting"]).ok();
    assert!(ps_states(&d).is_empty());
}

#[test]
fn concurrent_start_stop_and_rm_end_consistent() {
    let mut d = probe_daemon();
    let names = ["race-a", "race-b", "race-c", "race-d"];
    for (i, n) in names.iter().enumerate() {
        let policy = ["no", "always", "unless-stopped", "on-failure"][i];
        d.berth(&[
            "create",
            "--name",
            n,
            "--restart",
            policy,
            PROBE,
            "sleep",
            "300",
        ])
        .ok();
    }
    let ops: &[&[&str]] = &[
        &["start"],
        &["stop"],
        &["start"],
        &["kill"],
        &["start"],
        &["stop", "-t", "0"],
        &["start"],
    ];
    std::thread::scope(|s| {
        for (i, n) in names.iter().enumerate() {
            for (j, op) in ops.iter().enumerate() {
                let d = &d;
                s.spawn(move || {
                    let mut args: Vec<&str> = op.to_vec();
                    args.push(n);
                    d.berth(&args);
                });
                // Two of the four also get removed midway.
                if i % 2 == 0 && j == 3 {
                    s.spawn(move || {
                        d.berth(&["rm", "-f", n]);
                    });
                }
            }
        }
    });
    check_consistent(&d, &names);
    d.restart();
    check_consistent(&d, &names);
    d.crash_and_restart();
    check_consistent(&d, &names);
    for n in ["race-b", "race-d"] {
        assert!(d.berth(&["inspect", n]).code == 0, "{n} was never removed");
    }
}

/// ps, inspect and state.json agree on every container, removed ones are gone everywhere,
/// and no half-removed directory is left. After a daemon start, restart policies may still be
/// starting containers, so this waits (30 s hang guard) for a moment where all agree.
fn check_consistent(d: &Daemon, names: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consistency(d, names) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{e}\n{}", d.log()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn consistency(d: &Daemon, names: &[&str]) -> Result<(), String> {
    let listed = ps_states(d);
    for n in names {
        let r = d.berth(&["inspect", "-f", "{{.Id}} {{.State.Status}}", n]);
        let in_ps = listed.iter().find(|l| l.starts_with(&format!("{n} ")));
        if r.code != 0 {
            if !r.stderr.contains("No such") {
                return Err(format!("{r:#?}"));
            }
            if in_ps.is_some() {
                return Err(format!("{n} listed but not inspectable: {listed:?}"));
            }
            continue;
        }
        let out = r.stdout.trim().to_string();
        let (id, status) = out.split_once(' ').unwrap();
        if in_ps.map(String::as_str) != Some(format!("{n} {status}").as_str()) {
            return Err(format!(
                "ps and inspect disagree on {n} ({status}): {listed:?}"
            ));
        }
        if !matches!(status, "running" | "exited" | "created" | "restarting") {
            return Err(format!("{n}: {status}"));
        }
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.state().join("containers").join(id).join("state.json")).unwrap(),
        )
        .unwrap();
        if state["status"] != status {
            return Err(format!(
                "{n}: state.json says {}, inspect {status}",
                state["status"]
            ));
        }
    }
    let dirs: Vec<String> = std::fs::read_dir(d.state().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if dirs.len() != listed.len() || dirs.iter().any(|n| n.starts_with('.')) {
        return Err(format!("directories {dirs:?} vs containers {listed:?}"));
    }
    Ok(())
}

// ----- pulls -----

/// A TCP proxy to `target` that sends the responses at `bytes_per_sec`, so a pull lasts long
/// enough to be interrupted or joined. Its threads end with their connections.
struct SlowProxy {
    addr: String,
}

impl SlowProxy {
    fn start(target: &str, bytes_per_sec: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = target.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || throttled_copy(server, client, bytes_per_sec));
            }
        });
        Self { addr }
    }
}

fn throttled_copy(mut from: TcpStream, mut to: TcpStream, rate: u64) {
    let mut buf = [0u8; 16 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

const BIG: usize = 24 * 1024 * 1024;

/// Builds `hello` plus a 24 MiB incompressible file in a scratch daemon and pushes it to
/// `reg` as `big/hello:1`.
fn publish_big_image(reg: &Registry) {
    let d = Daemon::start();
    let mut data = vec![0u8; BIG];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let hello = std::fs::read(example("hello").join("hello.wasm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(
        dir.path(),
        &[
            ("hello.wasm", &hello),
            ("big.bin", &data),
            (
                "Dockerfile",
                b"FROM scratch\nCOPY hello.wasm /hello.wasm\nCOPY big.bin /big.bin\nENTRYPOINT [\"/hello.wasm\"]\n",
            ),
        ],
    );
    let target = format!("{}/big/hello:1", reg.addr);
    d.berth(&["build", "-t", &target, ctx.to_str().unwrap()])
        .ok();
    d.berth(&["push", &target]).ok();
}

/// Waits until a blob of at least 1 MiB is being written into `content/ingest`.
fn wait_for_ingest(d: &Daemon) {
    let ingest = d.state().join("content/ingest");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let big = std::fs::read_dir(&ingest)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() >= 1024 * 1024));
        if big {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pull never started: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn dir_entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `GET .../blobs/<digest>` answered 200 in the registry's access log, per digest.
fn blob_fetches(reg: &Registry, repo: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let prefix = format!("\"GET /v2/{repo}/blobs/");
    for line in reg.log().lines() {
        if let Some(rest) = line.split_once(&prefix).map(|(_, r)| r)
            && let Some((digest, tail)) = rest.split_once(' ')
            && tail.contains("\" 200 ")
        {
            *out.entry(digest.to_string()).or_default() += 1;
        }
    }
    out
}

#[test]
fn a_pull_cut_by_kill_9_leaves_no_image_and_pulls_again() {
    let reg = Registry::start(None);
    publish_big_image(&reg);
    let proxy = SlowProxy::start(&reg.addr, 8 * 1024 * 1024);
    let reference = format!("{}/big/hello:1", proxy.addr);
    let mut d = Daemon::start();
    let pull = d.berth_spawn(&["pull", &reference]);
    wait_for_ingest(&d);
    d.crash_and_restart();
    let out = pull.wait_with_output().unwrap();
    assert!(!out.status.success(), "the pull finished before the crash");

    assert_eq!(
        d.berth(&["images", "-q"]).ok().stdout,
        "",
        "a partial image is visible"
    );
    assert_ne!(d.berth(&["image", "inspect", &reference]).code, 0);
    assert!(dir_entries(&d.state().join("content/ingest")).is_empty());

    let again = d.berth(&["pull", &reference]);
    assert!(
        again.ok().stdout.contains("Downloaded newer image"),
        "{again:#?}"
    );
    assert_eq!(
        d.berth(&["run", "--rm", &reference]).ok().stdout,
        "Hello, world!\n"
    );
    assert!(dir_entries(&d.state().join("content/ingest")).is_empty());
}

#[test]
fn concurrent_pulls_of_one_image_share_one_download() {
    let reg = Registry::start(None);
    publish_big_image(&reg);
    let pushed = blob_fetches(&reg, "big/hello");
    assert!(pushed.is_empty(), "the push fetched blobs: {pushed:?}");
    let proxy = SlowProxy::start(&reg.addr, 8 * 1024 * 1024);
    let reference = format!("{}/big/hello:1", proxy.addr);
    let d = Daemon::start();
    let first = d.berth_spawn(&["pull", &reference]);
    // The second starts while the first is downloading the big layer.
    wait_for_ingest(&d);
    let second = d.berth_spawn(&["pull", &reference]);
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    for out in [&first, &second] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.contains("Digest: sha256:"), "{stdout}");
        assert!(stdout.trim_end().ends_with(&reference), "{stdout}");
    }
    let fetched = blob_fetches(&reg, "big/hello");
    // Config, hello.wasm's layer and the big layer, each fetched once.
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert!(fetched.values().all(|n| *n == 1), "{fetched:?}");
    assert_eq!(d.berth(&["images", "-q"]).ok().stdout.lines().count(), 1);
    assert_eq!(
        d.berth(&["run", "--rm", &reference]).ok().stdout,
        "Hello, world!\n"
    );
}
