//! Isolation: a hostile guest (`tests/guests/probe`) tries to reach the host through the
//! filesystem, the environment, memory and CPU, with and without volumes, bind mounts and
//! tmpfs mounts. Every test keeps a sentinel directory outside the granted roots and checks it
//! afterwards, and checks that the daemon still answers.
//!
//! The probe prints one result line per command (`ok ...` or `err: <io::ErrorKind>`), so the
//! tests assert the exact outcome. Where Docker's answer and a capability refusal are both
//! sound (`cat /data/../x` is `NotFound` under Docker, which resolves it inside the container,
//! and `PermissionDenied` under WASI, which refuses to leave a preopen), a test accepts exactly
//! those; what it never accepts is the host's data.

use crate::harness::{Daemon, Run};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PROBE: &str = "probe:1";

/// The image's files (tests/guests/probe/etc, app), as `cat` prints them.
const PASSWD: &str = "ok probe:x:1000:1000:probe image user:/app:/probe.wasm";
const MOTD: &str = "ok welcome to the probe image";
const README: &str = "ok app file in the image";
const IMAGE_HOSTNAME: &str = "ok probe-image";

const OK: &str = "ok";
const DENIED: &str = "err: PermissionDenied";
const NOT_FOUND: &str = "err: NotFound";
/// Linux's `EXDEV`: a rename or link between two mounts.
const XDEV: &str = "err: CrossesDevices";
/// A path outside every grant: absent from the container (Docker) or refused (WASI).
const UNREACHABLE: &[&str] = &[NOT_FOUND, DENIED];
/// A write to a read-only grant: WASI's `not-permitted` or Linux's `EROFS`.
const READ_ONLY: &[&str] = &[DENIED, "err: ReadOnlyFilesystem"];
/// Moving or linking into a read-only grant from another grant: refused as read-only, or as
/// a cross-device operation.
const READ_ONLY_XDEV: &[&str] = &[DENIED, "err: ReadOnlyFilesystem", XDEV];
/// A write that follows a link or `..` out of a grant: it may land inside the container
/// (Docker resolves there), find no such directory there, or be refused; never the host.
const CONTAINED_WRITE: &[&str] = &[OK, NOT_FOUND, DENIED, XDEV];
/// Reading the image's /etc/passwd through `..` or a link: Docker resolves it inside the
/// container; WASI refuses to leave the grant.
const PASSWD_OR_DENIED: &[&str] = &[PASSWD, DENIED];

/// Marker in every host sentinel file: no probe output may ever contain it.
const HOST_MARK: &str = "host-secret-6b1d";

/// `cases![CMD => ALLOWED, ...]`: probe commands and the result lines each may print.
macro_rules! cases {
    ($($cmd:expr => $allowed:expr),* $(,)?) => {
        &[$((AsRef::<str>::as_ref(&$cmd), &$allowed[..])),*]
    };
}

fn start() -> Daemon {
    let d = Daemon::start();
    d.build_test_guest("probe", PROBE);
    d
}

/// Splits a command line on whitespace (none of the tests' arguments contain any).
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Runs `berth ARGS`, failing the test instead of hanging if it takes more than `secs`.
#[track_caller]
fn berth_within(d: &Daemon, args: &[&str], secs: u64) -> Run {
    let mut child = d.berth_spawn(args);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "berth {args:?} did not answer within {secs}s: {out:?}\n{}",
                d.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The daemon still answers the API.
#[track_caller]
fn assert_alive(d: &Daemon) {
    berth_within(d, &["ps", "-a"], 60).ok();
}

/// Runs `berth run --rm FLAGS probe:1 CMD -- CMD ...` and checks each command's result line
/// against the outcomes allowed for it, and the exit code (0 when every command succeeded).
#[track_caller]
fn check(d: &Daemon, flags: &[&str], cases: &[(&str, &[&str])]) -> Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.push(PROBE);
    for (i, (cmd, _)) in cases.iter().enumerate() {
        if i > 0 {
            args.push("--");
        }
        args.extend(cmd.split_whitespace());
    }
    let r = berth_within(d, &args, 120);
    assert!(
        !r.stdout.contains(HOST_MARK) && !r.stderr.contains(HOST_MARK),
        "host data reached the guest: {r:#?}"
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "expected one result line per command for {args:?}: {r:#?}"
    );
    for ((cmd, allowed), line) in cases.iter().zip(&lines) {
        assert!(
            allowed.contains(line),
            "`{cmd}` printed {line:?}, expected one of {allowed:?} (flags {flags:?}): {r:#?}"
        );
    }
    let all_ok = lines.iter().all(|l| *l == "ok" || l.starts_with("ok "));
    assert_eq!(r.code, if all_ok { 0 } else { 1 }, "exit code: {r:#?}");
    r
}

/// A host directory outside every grant, with a secret file and directory, plus `bind/`, the
/// one subdirectory tests may grant. Everything but `bind/` must stay as it was.
struct Outside {
    dir: tempfile::TempDir,
    before: BTreeMap<PathBuf, String>,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("secret.txt"), format!("{HOST_MARK} file\n")).unwrap();
        std::fs::create_dir(p.join("secret-dir")).unwrap();
        let inner = format!("{HOST_MARK} inner\n");
        std::fs::write(p.join("secret-dir/inner.txt"), inner).unwrap();
        std::fs::create_dir(p.join("bind")).unwrap();
        std::fs::write(p.join("bind/hostfile.txt"), "from the host\n").unwrap();
        let mut o = Self {
            dir,
            before: BTreeMap::new(),
        };
        o.before = o.snapshot();
        o
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn secret(&self) -> PathBuf {
        self.path().join("secret.txt")
    }

    fn bind(&self) -> PathBuf {
        self.path().join("bind")
    }

    /// `BIND:GUEST[:OPTS]` for `-v`.
    fn bind_flag(&self, guest: &str) -> String {
        format!("{}:{guest}", self.bind().display())
    }

    /// Every path under the directory except `bind/`, with its kind and content.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let bind = self.bind();
        walk(self.path(), &mut |p, desc| {
            if !p.starts_with(&bind) {
                out.insert(p.to_path_buf(), desc);
            }
        });
        out
    }

    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            self.snapshot(),
            self.before,
            "the sentinel directory outside the grants changed"
        );
    }
}

/// Calls `f` for every entry under `dir` (not following symlinks) with a description: the
/// file's contents, `dir`, or `-> target`.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, String)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&p).unwrap_or_default();
            f(&p, format!("-> {}", target.display()));
        } else if meta.is_dir() {
            f(&p, "dir".into());
            walk(&p, f);
        } else {
            let data = std::fs::read(&p).unwrap_or_default();
            f(&p, String::from_utf8_lossy(&data).into_owned());
        }
    }
}

/// Paths under `dir` (not following symlinks) whose file name is `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(dir, &mut |p, _| {
        if p.file_name().is_some_and(|n| n == name) {
            found.push(p.to_path_buf());
        }
    });
    found
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn dotdot_never_climbs_out_of_the_root_a_volume_or_a_bind_mount() {
    let d = start();
    let o = Outside::new();
    // Create the volume, then plant files next to its data directory and at the data root.
    check(
        &d,
        &["-v", "vol:/data"],
        cases!["write /data/f in-volume" => [OK]],
    );
    let vol_dir = d.state().join("volumes").join("vol");
    let planted = [d.state().join("secret.txt"), vol_dir.join("secret.txt")];
    for p in &planted {
        if p.parent().unwrap().is_dir() {
            std::fs::write(p, format!("{HOST_MARK} state\n")).unwrap();
        }
    }
    let bind = o.bind_flag("/host");
    let host_passwd = host_file("/etc/passwd");
    assert!(!host_passwd.starts_with("probe:"));
    check(
        &d,
        &["-v", "vol:/data", "-v", &bind],
        cases![
            // From the root, absolute and relative to the working directory (/app).
            "cat /../../../etc/passwd" => PASSWD_OR_DENIED,
            "cat ../../../../../../etc/passwd" => PASSWD_OR_DENIED,
            "cat /app/../../../../etc/motd" => [MOTD, DENIED],
            // From the volume: its metadata, the daemon's state, the host.
            "cat /data/../secret.txt" => UNREACHABLE,
            "cat /data/../../secret.txt" => UNREACHABLE,
            "cat /data/../../../secret.txt" => UNREACHABLE,
            "cat /data/../volume.json" => UNREACHABLE,
            "cat /data/../../../../../../../../etc/passwd" => PASSWD_OR_DENIED,
            "write /data/../pwned x" => [OK, DENIED],
            "mkdir /data/../../pwned-dir" => [OK, DENIED],
            "cat /data/f" => ["ok in-volume"],
            // From the bind mount: the sentinels next to it, the host.
            "cat /host/../secret.txt" => UNREACHABLE,
            "cat /host/../secret-dir/inner.txt" => UNREACHABLE,
            "cat /host/../../../../../../../../etc/passwd" => PASSWD_OR_DENIED,
            "ls /host/../secret-dir" => UNREACHABLE,
            "write /host/../pwned x" => [OK, DENIED],
            "write /host/../secret.txt pwned" => [OK, DENIED],
            "mkdir /host/../pwned-dir" => [OK, DENIED],
            "rename /host/hostfile.txt /host/../moved.txt" => [OK, DENIED, XDEV],
            "cat /host/hostfile.txt" => ["ok from the host", NOT_FOUND],
            // Pulling an outside file into a grant by hard link or rename.
            "link /host/../secret.txt /host/stolen" => UNREACHABLE,
            "rename /host/../secret.txt /host/stolen" => UNREACHABLE,
            "link /data/../../secret.txt /data/stolen" => UNREACHABLE,
            "link /../../../../etc/passwd /data/stolen" => [DENIED, XDEV],
            "cat /host/stolen" => [NOT_FOUND],
            "cat /data/stolen" => [NOT_FOUND],
        ],
    );
    // `ls ..` from a grant lists the container's root or is refused; never the host's.
    for dir in ["/data/..", "/host/..", "/..", "/data/../.."] {
        let r = d.berth(&[
            "run",
            "--rm",
            "-v",
            "vol:/data",
            "-v",
            &bind,
            PROBE,
            "ls",
            dir,
        ]);
        let line = r.stdout.trim_end();
        assert!(
            line == DENIED || (line.starts_with("ok app/ ") && line.contains(" etc/ ")),
            "ls {dir}: {r:#?}"
        );
        assert!(
            !line.contains("secret") && !line.contains("volume.json"),
            "{r:#?}"
        );
    }
    o.assert_untouched();
    assert!(!o.path().join("pwned").exists() && !o.path().join("moved.txt").exists());
    for p in planted.iter().filter(|p| p.exists()) {
        assert_eq!(
            host_file(p.to_str().unwrap()),
            format!("{HOST_MARK} state\n")
        );
    }
    assert!(!vol_dir.join("pwned").exists());
    assert!(!d.state().join("volumes/pwned-dir").exists());
    assert_eq!(host_file("/etc/passwd"), host_passwd);
    assert_alive(&d);
}

#[test]
fn absolute_paths_name_the_image_never_the_host() {
    let d = start();
    let o = Outside::new();
    let host_hostname = host_file("/etc/hostname");
    let r = d.berth(&["run", "--name", "abs", PROBE, "cat", "/etc/hostname"]);
    let line = r.stdout.trim_end().to_string();
    let inspect = d.berth(&["inspect", "-f", "{{.Config.Hostname}}", "abs"]);
    let container_hostname = inspect.ok().stdout.trim();
    // The image's /etc/hostname, or the container's own hostname as Docker writes it.
    assert!(
        line == IMAGE_HOSTNAME
            || (!container_hostname.is_empty() && line == format!("ok {container_hostname}")),
        "{r:#?}"
    );
    let shown = line.strip_prefix("ok ").unwrap_or_default();
    assert_ne!(shown, host_hostname.trim_end(), "the host's /etc/hostname");
    d.berth(&["rm", "abs"]).ok();

    let (secret, outside) = (o.secret().display().to_string(), o.path().display());
    check(
        &d,
        &[],
        cases![
            "cat /etc/motd" => [MOTD],
            "cat /etc/passwd" => [PASSWD],
            "cat /app/readme.txt" => [README],
            // Host paths do not exist in the container.
            format!("cat {secret}") => UNREACHABLE,
            format!("write {secret} pwned") => UNREACHABLE,
            format!("ls {outside}") => UNREACHABLE,
            format!("write {outside}/pwned x") => UNREACHABLE,
            "cat /proc/self/environ" => UNREACHABLE,
            "cat /proc/1/cmdline" => UNREACHABLE,
            "ls /root" => UNREACHABLE,
            "ls /home" => UNREACHABLE,
            "cat /etc/shadow" => UNREACHABLE,
        ],
    );
    // The root holds the image's entries, not the host's.
    // (At `-w /`: what `/` shows with another working directory is
    // pwd_and_the_root_look_as_under_docker_with_a_working_directory's concern.)
    let r = d.berth(&["run", "--rm", "-w", "/", PROBE, "ls", "/"]);
    let names: Vec<&str> = r.ok().stdout.trim_end().split(' ').collect();
    assert_eq!(names[0], "ok", "{r:#?}");
    for want in ["app/", "etc/", "probe.wasm"] {
        assert!(names.contains(&want), "{want} missing from /: {r:#?}");
    }
    for host_only in ["usr/", "bin/", "home/", "root/", "boot/", "var/", "sbin/"] {
        assert!(
            !names.contains(&host_only),
            "host's {host_only} in /: {r:#?}"
        );
    }
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn symlinks_planted_in_a_bind_mount_do_not_lead_out() {
    let d = start();
    let o = Outside::new();
    let b = o.bind();
    let link = |target: &Path, name: &str| {
        std::fs::create_dir_all(b.join(name).parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, b.join(name)).unwrap();
    };
    link(&o.secret(), "abs-file");
    link(Path::new("../secret.txt"), "rel-file");
    link(Path::new("../../secret.txt"), "sub/deep");
    link(o.path(), "abs-dir");
    link(Path::new(".."), "rel-dir");
    link(Path::new("../secret-dir"), "rel-secret-dir");
    link(Path::new("/etc/passwd"), "host-passwd");
    link(Path::new("../nonexistent-target"), "dangling");
    let bind = o.bind_flag("/host");
    check(
        &d,
        &["-v", &bind],
        cases![
            "cat /host/abs-file" => UNREACHABLE,
            "cat /host/rel-file" => UNREACHABLE,
            "cat /host/sub/deep" => UNREACHABLE,
            "ls /host/abs-dir" => UNREACHABLE,
            "ls /host/rel-secret-dir" => UNREACHABLE,
            "cat /host/abs-dir/secret.txt" => UNREACHABLE,
            "cat /host/rel-dir/secret.txt" => UNREACHABLE,
            "cat /host/rel-dir/secret-dir/inner.txt" => UNREACHABLE,
            // Docker resolves a link inside the container: this is the image's passwd.
            "cat /host/host-passwd" => PASSWD_OR_DENIED,
            // Writes through the links: into the container at most, never the host.
            "write /host/abs-file pwned" => CONTAINED_WRITE,
            "write /host/rel-file pwned" => CONTAINED_WRITE,
            "append /host/sub/deep pwned" => CONTAINED_WRITE,
            "truncate /host/rel-file" => UNREACHABLE,
            "write /host/abs-dir/new.txt x" => CONTAINED_WRITE,
            "write /host/rel-dir/new.txt x" => CONTAINED_WRITE,
            "mkdir /host/rel-dir/new-dir" => CONTAINED_WRITE,
            "write /host/dangling x" => CONTAINED_WRITE,
            "rm /host/rel-dir/secret.txt" => UNREACHABLE,
            "rename /host/hostfile.txt /host/rel-dir/moved.txt" => CONTAINED_WRITE,
            "link /host/hostfile.txt /host/rel-dir/linked.txt" => CONTAINED_WRITE,
            // A hard link to a link is a link, leading nowhere new.
            "link /host/rel-file /host/hard" => [OK, DENIED],
            "cat /host/hard" => UNREACHABLE,
            // The links themselves are visible as links.
            "readlink /host/rel-file" => ["ok ../secret.txt"],
            "stat /host/abs-file" => ["ok symlink"],
        ],
    );
    o.assert_untouched();
    assert!(
        !o.path().join("nonexistent-target").exists(),
        "a dangling link was written through"
    );
    assert_alive(&d);
}

#[test]
fn symlinks_made_by_the_guest_do_not_lead_out() {
    let d = start();
    let o = Outside::new();
    let bind = o.bind_flag("/host");
    let outside = o.path().display();
    let up = "../../../../../../../../../..";
    let made = [OK, DENIED];
    let passwd = [PASSWD, DENIED, NOT_FOUND];
    let grants = ["-v", &bind, "-v", "vol:/data"];
    check(
        &d,
        &grants,
        cases![
            format!("symlink {outside}/secret.txt /host/abs") => made,
            "symlink ../secret.txt /host/up" => made,
            format!("symlink {up}{outside}/secret.txt /app/rel") => made,
            format!("symlink {up}{outside} /data/reldir") => made,
            "symlink /etc/passwd /data/passwd" => made,
            "symlink ../../../../../../../../etc/passwd /host/passwd" => made,
            "cat /host/abs" => UNREACHABLE,
            "cat /host/up" => UNREACHABLE,
            "cat /app/rel" => UNREACHABLE,
            "ls /data/reldir" => UNREACHABLE,
            "cat /data/reldir/secret.txt" => UNREACHABLE,
            "cat /data/passwd" => passwd,
            "cat /host/passwd" => passwd,
            "write /host/abs pwned" => CONTAINED_WRITE,
            "write /host/up pwned" => CONTAINED_WRITE,
            "write /app/rel pwned" => CONTAINED_WRITE,
            "write /data/reldir/new.txt x" => CONTAINED_WRITE,
        ],
    );
    // A second container on the same grants follows the links no further. (Where making a
    // link was refused, the write made a plain file in the grant instead.)
    check(
        &d,
        &grants,
        cases![
            "cat /host/abs" => [NOT_FOUND, DENIED, "ok pwned"],
            "cat /host/up" => UNREACHABLE,
            "cat /data/reldir/secret.txt" => UNREACHABLE,
            "write /host/up pwned" => CONTAINED_WRITE,
            "write /data/reldir/new.txt x" => CONTAINED_WRITE,
        ],
    );
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn a_working_directory_or_mount_point_swapped_for_a_symlink_does_not_lead_out() {
    let d = start();
    let o = Outside::new();
    let t = format!("../../../../../../../../../..{}", o.path().display());
    // The first run replaces its working directory and its mount point (in its own root) with
    // links to the host, trying spellings that reach them through different grants; later
    // runs of the same container must neither follow the links nor fail to start safely.
    let mut cmds = Vec::new();
    for dir in [
        "/app/./sub",
        "/app/../app/sub",
        "/mnt/./data",
        "/mnt/../mnt/data",
    ] {
        cmds.push(format!("rmdir {dir} -- symlink {t} {dir}"));
    }
    cmds.push("write escaped.txt pwned -- write /mnt/data/escaped-mount.txt pwned".into());
    cmds.push("ls . -- ls /mnt/data -- ls /app -- ls /mnt".into());
    let create = format!(
        "create --name swap -w /app/sub -v vol:/mnt/data {PROBE} {}",
        cmds.join(" -- ")
    );
    d.berth(&words(&create)).ok();
    for _ in 0..3 {
        let r = berth_within(&d, &["start", "-a", "swap"], 120);
        assert!(!r.stdout.contains("secret"), "{r:#?}");
        o.assert_untouched();
        assert!(!o.path().join("escaped.txt").exists(), "{r:#?}");
        assert!(!o.path().join("escaped-mount.txt").exists(), "{r:#?}");
    }
    d.berth(&["rm", "swap"]).ok();
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn read_only_grants_refuse_every_write() {
    let d = start();
    let o = Outside::new();
    let b = o.bind();
    std::fs::write(b.join("f"), "original\n").unwrap();
    std::fs::create_dir(b.join("d")).unwrap();
    // The volume gets the same contents through a writable run.
    let rw = ["-v", "rovol:/data"];
    check(
        &d,
        &rw,
        cases!["write /data/f original" => [OK], "mkdir /data/d" => [OK]],
    );
    let bind_ro = o.bind_flag("/data:ro");
    let bind_mount = format!("type=bind,source={},target=/data,readonly", b.display());
    let grants: [(&[&str], &str); 4] = [
        (&["-v", "rovol:/data:ro"], "ok d/ f"),
        (
            &["--mount", "type=volume,source=rovol,target=/data,readonly"],
            "ok d/ f",
        ),
        (&["-v", &bind_ro], "ok d/ f hostfile.txt"),
        (&["--mount", &bind_mount], "ok d/ f hostfile.txt"),
    ];
    for (grant, listing) in grants {
        let mut flags = grant.to_vec();
        flags.extend(["-v", "rwvol:/rw"]);
        check(
            &d,
            &flags,
            cases![
                "write /rw/src x" => [OK],
                "write /data/new x" => READ_ONLY,
                "write /data/f x" => READ_ONLY,
                "append /data/f x" => READ_ONLY,
                "truncate /data/f" => READ_ONLY,
                "rename /data/f /data/g" => READ_ONLY,
                "link /data/f /data/h" => READ_ONLY,
                "symlink f /data/s" => READ_ONLY,
                "rm /data/f" => READ_ONLY,
                "mkdir /data/nd" => READ_ONLY,
                "rmdir /data/d" => READ_ONLY,
                "write /data/d/new x" => READ_ONLY,
                "rename /rw/src /data/moved" => READ_ONLY_XDEV,
                "link /rw/src /data/linked" => READ_ONLY_XDEV,
                // Reading still works, and nothing changed.
                "cat /data/f" => ["ok original"],
                "ls /data" => [listing],
            ],
        );
    }
    assert_eq!(host_file(b.join("f").to_str().unwrap()), "original\n");
    let mut left: Vec<_> = std::fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["d", "f", "hostfile.txt"]);
    assert_eq!(std::fs::read_dir(b.join("d")).unwrap().count(), 0);
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn a_read_only_root_refuses_every_write() {
    let d = start();
    let o = Outside::new();
    check(
        &d,
        &["--read-only"],
        cases![
            "write /new x" => READ_ONLY,
            "write /etc/motd x" => READ_ONLY,
            "append /etc/motd x" => READ_ONLY,
            "truncate /etc/motd" => READ_ONLY,
            "rename /etc/motd /etc/moved" => READ_ONLY,
            "rename /etc/motd /app/moved" => READ_ONLY,
            "link /etc/motd /etc/linked" => READ_ONLY,
            "symlink motd /etc/link" => READ_ONLY,
            "rm /etc/motd" => READ_ONLY,
            "rm /probe.wasm" => READ_ONLY,
            "mkdir /etc/new" => READ_ONLY,
            "rmdir /app" => READ_ONLY,
            "write relative.txt x" => READ_ONLY,
            "cat /etc/motd" => [MOTD],
        ],
    );
    // With a writable tmpfs, moving or linking from it into the root is refused too.
    check(
        &d,
        &["--read-only", "--tmpfs", "/scratch"],
        cases![
            "write /scratch/f x" => [OK],
            "rename /scratch/f /f" => READ_ONLY_XDEV,
            "link /scratch/f /etc/f" => READ_ONLY_XDEV,
            "cat /scratch/f" => ["ok x"],
        ],
    );
    // The image is unchanged.
    check(
        &d,
        &[],
        cases![
            "cat /etc/motd" => [MOTD],
            "ls /etc" => ["ok hostname motd passwd"],
            "ls /app" => ["ok readme.txt"],
        ],
    );
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn open_handles_are_bounded_per_container() {
    let d = start();
    // wasmtime-wasi ends the guest when its handle table is full (a trap, not EMFILE).
    let r = berth_within(
        &d,
        &[
            "run",
            "--name",
            "hoarder",
            PROBE,
            "open-many",
            "/etc/motd",
            "100000",
        ],
        120,
    );
    assert_eq!(r.code, 134, "the guest must hit the handle limit: {r:#?}");
    let r = d.berth(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.Error}}",
        "hoarder",
    ]);
    assert_eq!(
        r.ok().stdout.trim(),
        "134 too many open handles: the limit is 4096 per container"
    );
    // Another container starts with a fresh budget.
    let r = berth_within(
        &d,
        &["run", "--rm", PROBE, "open-many", "/etc/motd", "1000"],
        120,
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("opened 1000"), "{r:#?}");
    assert_alive(&d);
}

#[test]
fn a_memory_limit_stops_a_memory_bomb() {
    let d = start();
    let bomb = format!("run --name bomb -m 64m {PROBE} alloc 256");
    let r = berth_within(&d, &words(&bomb), 120);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(!r.stdout.contains("ok"), "{r:#?}");
    d.wait_inspect("bomb", "{{.State.Status}}", "exited");
    let st = d.berth(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "bomb",
    ]);
    let st = st.ok().stdout.trim();
    assert!(st.starts_with("true ") && st != "true 0", "{st}");
    let r = d.berth(&["inspect", "-f", "{{.HostConfig.Memory}}", "bomb"]);
    assert_eq!(r.ok().stdout.trim(), (64u64 << 20).to_string());
    // A modest allocation works within the limit and without one.
    check(&d, &["-m", "64m"], cases!["alloc 16" => ["ok 16"]]);
    check(&d, &[], cases!["alloc 16" => ["ok 16"]]);
    assert_alive(&d);
}

#[test]
fn a_spinning_or_sleeping_guest_stops_and_the_daemon_answers() {
    let d = start();
    d.berth(&["run", "-d", "--name", "spinner", PROBE, "spin"])
        .ok();
    d.berth(&["run", "-d", "--name", "sleeper", PROBE, "sleep", "1000"])
        .ok();
    d.wait_inspect("spinner", "{{.State.Running}}", "true");
    d.wait_inspect("sleeper", "{{.State.Running}}", "true");
    let ps = berth_within(&d, &["ps", "--format", "{{.Names}}"], 60);
    let mut names: Vec<&str> = ps.ok().stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["sleeper", "spinner"]);
    // Another container still runs to completion meanwhile.
    let r = berth_within(&d, &["run", "--rm", PROBE, "sleep", "0"], 120);
    assert_eq!(r.ok().stdout, "ok\n");
    for name in ["spinner", "sleeper"] {
        let r = berth_within(&d, &["stop", name], 60);
        assert_eq!(r.ok().stdout.trim(), name);
        d.wait_inspect(name, "{{.State.Status}} {{.State.ExitCode}}", "exited 143");
    }
    let ps = berth_within(&d, &["ps", "-q"], 60);
    assert_eq!(ps.ok().stdout.trim(), "");
    assert_alive(&d);
}

#[test]
fn the_host_environment_does_not_reach_the_guest() {
    let daemon_var = ("BERTH_PROBE_DAEMON_SECRET", "daemon-6b1d");
    let client_var = ("BERTH_PROBE_CLIENT_SECRET", "client-6b1d");
    let d = Daemon::start_with_env(&[daemon_var]);
    d.build_test_guest("probe", PROBE);
    let env_file = d.dir.path().join("env.list");
    std::fs::write(&env_file, "# a comment\n\nFROM_FILE=file value\n").unwrap();
    let env_file = env_file.to_str().unwrap();
    // Docker adds HOSTNAME, PATH and HOME; nothing else may come from anywhere but the image
    // and the flags.
    let optional = ["HOSTNAME", "PATH", "HOME"];
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--rm",
            "-e",
            "FROM_FLAG=flag",
            "--env-file",
            env_file,
        ];
        args.extend_from_slice(extra);
        args.extend([PROBE, "env"]);
        let r = d.berth_env(&args, &[client_var]);
        r.ok();
        assert!(
            !r.stdout.contains("6b1d"),
            "host environment in the guest: {r:#?}"
        );
        let mut env: BTreeMap<String, String> = r
            .stdout
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        env.retain(|k, _| !optional.contains(&k.as_str()));
        env
    };
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        run(&[]),
        want(&[
            ("FROM_FILE", "file value"),
            ("FROM_FLAG", "flag"),
            ("PROBE_IMAGE_ENV", "from-image"),
        ])
    );
    // -e overrides the image's value.
    assert_eq!(
        run(&["-e", "PROBE_IMAGE_ENV=overridden"]),
        want(&[
            ("FROM_FILE", "file value"),
            ("FROM_FLAG", "flag"),
            ("PROBE_IMAGE_ENV", "overridden"),
        ])
    );
    assert_alive(&d);
}

#[test]
fn working_directory_from_the_image_and_from_w() {
    let d = start();
    let o = Outside::new();
    // The image's WORKDIR /app.
    check(
        &d,
        &[],
        cases![
            "cat readme.txt" => [README],
            "cat ./readme.txt" => [README],
            "cat /etc/motd" => [MOTD],
            "ls ." => ["ok readme.txt"],
            "write made-here.txt x" => [OK],
            "cat /app/made-here.txt" => ["ok x"],
        ],
    );
    // -w replaces it; absolute paths still start at the root.
    check(
        &d,
        &["-w", "/etc"],
        cases![
            "cat motd" => [MOTD],
            "cat /app/readme.txt" => [README],
            "ls ." => ["ok hostname motd passwd"],
        ],
    );
    // A missing working directory is created, as Docker does.
    check(
        &d,
        &["-w", "/new/dir"],
        cases![
            "write f x" => [OK],
            "cat /new/dir/f" => ["ok x"],
            "cat /etc/motd" => [MOTD],
            "ls /new/dir" => ["ok f"],
        ],
    );
    // A working directory inside a volume (`..` out of it resolves like `cat /data/..`).
    check(
        &d,
        &["-v", "wvol:/data", "-w", "/data"],
        cases![
            "write rel.txt x" => [OK],
            "cat /data/rel.txt" => ["ok x"],
            "cat ../etc/motd" => [MOTD, DENIED],
            "ls ." => ["ok rel.txt"],
        ],
    );
    o.assert_untouched();
    assert_alive(&d);
}

/// What Docker shows beyond resolving paths in the working directory: `pwd` names it, `..`
/// leaves it for its parent, and `/` is the root with all its entries.
///
/// Not met yet: wasi-libc starts every guest in `/` and never reads `initial-cwd`, so Berth
/// preopens the working directory as `.` (docs/architecture.md, "Filesystem view"). Meeting
/// this needs a Berth-owned `wasi:filesystem` with one virtual tree. Run it with
/// `cargo nextest run --run-ignored all pwd_and_the_root`.
#[test]
#[ignore = "needs a Berth-owned wasi:filesystem: wasi-libc ignores the initial working directory"]
fn pwd_and_the_root_look_as_under_docker_with_a_working_directory() {
    let d = start();
    let size = std::fs::metadata(crate::harness::test_guest("probe").join("probe.wasm"))
        .unwrap()
        .len();
    let probe_file = format!("ok file {size}");
    let root = ["ok app/ etc/ probe.wasm"];
    check(
        &d,
        &[],
        cases![
            "ls /" => root,
            "stat /probe.wasm" => [probe_file.as_str()],
            "cat ../etc/motd" => [MOTD],
            "pwd" => ["ok /app"],
        ],
    );
    check(
        &d,
        &["-w", "/etc"],
        cases![
            "ls /" => root,
            "cat ../app/readme.txt" => [README],
            "pwd" => ["ok /etc"],
        ],
    );
    check(&d, &["-w", "/new/dir"], cases!["pwd" => ["ok /new/dir"]]);
    check(
        &d,
        &["-v", "wvol:/data", "-w", "/data"],
        cases!["ls /" => ["ok app/ data/ etc/ probe.wasm"], "pwd" => ["ok /data"]],
    );
    assert_alive(&d);
}

#[test]
fn a_named_volume_is_created_on_first_use_and_shared() {
    let d = start();
    let o = Outside::new();
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(), "");
    check(
        &d,
        &["-v", "shared:/data"],
        cases!["write /data/msg hello" => [OK], "mkdir /data/sub" => [OK]],
    );
    assert_eq!(
        d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(),
        "shared"
    );
    // Another container sees it, at another path, read-only too.
    check(
        &d,
        &["-v", "shared:/srv:ro"],
        cases!["cat /srv/msg" => ["ok hello"], "ls /srv" => ["ok msg sub/"]],
    );
    // Two at once: one waits, the other writes, the first reads.
    let reader = format!("run -d --name reader -v shared:/data {PROBE} sleep 3 -- cat /data/later");
    d.berth(&words(&reader)).ok();
    d.wait_inspect("reader", "{{.State.Running}}", "true");
    check(
        &d,
        &["-v", "shared:/data"],
        cases!["write /data/later written" => [OK]],
    );
    let r = berth_within(&d, &["wait", "reader"], 60);
    assert_eq!(r.ok().stdout.trim(), "0");
    let r = d.berth(&["logs", "reader"]);
    assert_eq!(r.ok().stdout, "ok\nok written\n");
    // The data lives at the volume's Mountpoint on the host.
    let mp = d.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", "shared"]);
    let mp = PathBuf::from(mp.ok().stdout.trim());
    assert_eq!(host_file(mp.join("msg").to_str().unwrap()), "hello");
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn a_writable_bind_mount_shows_writes_on_the_host() {
    let d = start();
    let o = Outside::new();
    let b = o.bind();
    let bind = o.bind_flag("/host");
    check(
        &d,
        &["-v", &bind],
        cases![
            "cat /host/hostfile.txt" => ["ok from the host"],
            "write /host/out.txt from-guest" => [OK],
            "mkdir /host/dir" => [OK],
            "write /host/dir/inner x" => [OK],
            "rename /host/dir/inner /host/dir/renamed" => [OK],
            "ls /host" => ["ok dir/ hostfile.txt out.txt"],
        ],
    );
    assert_eq!(host_file(b.join("out.txt").to_str().unwrap()), "from-guest");
    assert_eq!(host_file(b.join("dir/renamed").to_str().unwrap()), "x");
    // --mount type=bind is the same grant.
    let mount = format!("type=bind,source={},target=/m", b.display());
    check(
        &d,
        &["--mount", &mount],
        cases!["cat /m/out.txt" => ["ok from-guest"], "rm /m/out.txt" => [OK]],
    );
    assert!(!b.join("out.txt").exists());
    // --mount refuses a missing source, as Docker does.
    let missing = o.path().join("missing");
    let missing = format!("type=bind,source={},target=/m", missing.display());
    let r = d.berth(&["run", "--rm", "--mount", &missing, PROBE, "pwd"]);
    assert_eq!(r.code, 125, "{r:#?}");
    assert!(r.stderr.contains("does not exist"), "{r:#?}");
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn tmpfs_is_private_scratch_that_goes_with_the_container() {
    let d = start();
    let o = Outside::new();
    let marker = "tmpfs-marker-6b1d.txt";
    let create = format!(
        "create --name scratchy --tmpfs /scratch {PROBE} append /scratch/{marker} x -- cat \
         /scratch/{marker} -- ls /scratch"
    );
    d.berth(&words(&create)).ok();
    let want = format!("ok\nok x\nok {marker}\n");
    let r = berth_within(&d, &["start", "-a", "scratchy"], 120);
    assert_eq!(r.ok().stdout, want);
    // Fresh at every start, as a tmpfs mount is.
    let r = berth_within(&d, &["start", "-a", "scratchy"], 120);
    assert_eq!(r.ok().stdout, want);
    // Another container has its own.
    check(&d, &["--tmpfs", "/scratch"], cases!["ls /scratch" => [OK]]);
    d.berth(&["rm", "scratchy"]).ok();
    let left = find_named(&d.state(), marker);
    assert!(left.is_empty(), "tmpfs data left behind: {left:?}");
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn volume_lifecycle_create_ls_inspect_rm_prune() {
    let d = start();
    let o = Outside::new();
    let r = d.berth(&["volume", "create", "life"]);
    assert_eq!(r.ok().stdout.trim(), "life");
    let ls = d.berth(&["volume", "ls"]);
    assert!(ls.ok().stdout.starts_with("DRIVER"), "{ls:#?}");
    let rows: Vec<Vec<&str>> = ls.stdout.lines().skip(1).map(words).collect();
    assert_eq!(rows, [["local", "life"]], "{ls:#?}");
    let json = d.berth(&["volume", "inspect", "life"]);
    let v: serde_json::Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert_eq!(v[0]["Name"], "life");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    let mountpoint = v[0]["Mountpoint"].as_str().unwrap_or_default();
    assert!(Path::new(mountpoint).is_dir(), "{v}");
    let r = d.berth(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "life"]);
    assert_eq!(r.ok().stdout.trim(), "life local");

    // In use by a container, even one never started: refused.
    let create = format!("create --name user -v life:/data {PROBE} pwd");
    d.berth(&words(&create)).ok();
    let r = d.berth(&["volume", "rm", "life"]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("volume is in use"), "{r:#?}");
    d.berth(&["rm", "user"]).ok();
    assert_eq!(
        d.berth(&["volume", "rm", "life"]).ok().stdout.trim(),
        "life"
    );
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(), "");
    assert!(!Path::new(mountpoint).exists());
    let r = d.berth(&["volume", "inspect", "life"]);
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("no such volume"), "{r:#?}");
    assert_ne!(d.berth(&["volume", "rm", "life"]).code, 0);

    // Prune: only unused volumes go, and named ones only with --all (Docker 23+).
    for name in ["unused", "busy"] {
        d.berth(&["volume", "create", name]).ok();
    }
    let create = format!("create --name holder -v busy:/data {PROBE} pwd");
    d.berth(&words(&create)).ok();
    d.berth(&["volume", "prune", "-f"]).ok();
    let ls = d.berth(&["volume", "ls", "-q"]);
    let mut names: Vec<&str> = ls.ok().stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["busy", "unused"]);
    let r = d.berth(&["volume", "prune", "-f", "-a"]);
    assert!(
        r.ok().stdout.lines().any(|l| l.trim() == "unused"),
        "{r:#?}"
    );
    assert!(!r.stdout.lines().any(|l| l.trim() == "busy"), "{r:#?}");
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(), "busy");

    // Hostile names are refused and create nothing.
    for bad in ["../escape", "..", ".", "a/b", "/abs", "../../../../tmp"] {
        let r = d.berth(&["volume", "create", bad]);
        assert_ne!(r.code, 0, "volume create {bad}: {r:#?}");
        assert!(r.stderr.contains("invalid"), "{r:#?}");
    }
    assert!(!d.state().join("escape").exists() && !d.dir.path().join("escape").exists());
    assert_eq!(d.berth(&["volume", "ls", "-q"]).ok().stdout.trim(), "busy");
    o.assert_untouched();
    assert_alive(&d);
}

#[test]
fn writes_to_the_root_stay_in_their_container() {
    let d = start();
    let o = Outside::new();
    let marker = "root-marker-6b1d.txt";
    let create = format!(
        "create --name writer {PROBE} append /app/{marker} x -- cat /app/{marker} -- write \
         /etc/motd changed -- rm /app/readme.txt"
    );
    d.berth(&words(&create)).ok();
    let r = berth_within(&d, &["start", "-a", "writer"], 120);
    assert_eq!(r.ok().stdout, "ok\nok x\nok\nok\n");
    // The container keeps its own writes across starts (so the second rm fails).
    let r = berth_within(&d, &["start", "-a", "writer"], 120);
    assert_eq!(r.stdout, "ok\nok xx\nok\nerr: NotFound\n", "{r:#?}");
    // Another container from the same image sees the image.
    check(
        &d,
        &[],
        cases![
            format!("cat /app/{marker}") => [NOT_FOUND],
            "cat /etc/motd" => [MOTD],
            "cat /app/readme.txt" => [README],
        ],
    );
    // The image's shared snapshot is untouched.
    let snapshots = d.state().join("snapshots");
    assert!(find_named(&snapshots, marker).is_empty());
    assert!(!find_named(&snapshots, "readme.txt").is_empty());
    d.berth(&["rm", "writer"]).ok();
    assert!(find_named(&d.state(), marker).is_empty());
    o.assert_untouched();
    assert_alive(&d);
}
