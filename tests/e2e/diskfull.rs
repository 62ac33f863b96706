//! Disk full (issue 6): berthd runs with its data root on a small tmpfs that the test mounts.
//! A pull, a build, a log write or a state write that runs out of space must fail with an
//! error that says so, leave no partial file behind, and the daemon must keep serving; once
//! space is freed, a small operation succeeds.
//!
//! These tests need root (to mount the tmpfs); without it they fail and say so.

use crate::harness::{Daemon, Run, context, example};
use crate::registry::Registry;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// A tmpfs of a given size on a temp dir, unmounted on drop (on panic too). Declare it before
/// the [`Daemon`] using it, so that the daemon is stopped first.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mib: u64) -> Self {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the disk-full tests need root to mount a tmpfs (running as uid {euid})"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "the disk-full tests need root to mount a tmpfs: mount -t tmpfs on {} failed: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a daemon that did not die yet): detach it.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Bytes free for an unprivileged writer on the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Fills the file system holding `dir` with a ballast file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [MIB as usize, 4096, 512, 1] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write_all(&buf) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    assert!(
        free_bytes(dir) < 4096,
        "the tmpfs is not full: {} bytes free",
        free_bytes(dir)
    );
    path
}

fn random(len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    buf
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A tar of the given files (mode 0755).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Publishes a Wasm image (one uncompressed tar layer holding `files`, entrypoint
/// `/hello.wasm`) as `repo:tag`.
fn publish(reg: &Registry, repo: &str, tag: &str, files: &[(&str, &[u8])]) {
    let layer = tar_of(files);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm", "os": "wasi",
        "config": {"Entrypoint": ["/hello.wasm"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    let config_digest = reg.put_blob(repo, &config);
    let layer_digest = reg.put_blob(repo, &layer);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    reg.put_manifest(
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
}

/// Names of the entries of `dir` (empty if it does not exist).
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What an interrupted write may leave in the data root: ingests, temp snapshots, container
/// and volume dirs, build contexts, spooled request bodies and atomic-write temp files.
fn leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for name in entries(&root.join("content/ingest")) {
        found.push(format!("content/ingest/{name}"));
    }
    for (dir, prefixes) in [
        ("", &[".tmp"][..]),
        ("images", &[".tmp"]),
        ("snapshots", &[".tmp"]),
        ("containers", &[".tmp", ".trash"]),
        ("volumes", &[".tmp"]),
        ("buildcache", &[".tmp", ".build-"]),
        ("buildcache/layers", &[".tmp"]),
    ] {
        for name in entries(&root.join(dir)) {
            if prefixes.iter().any(|p| name.starts_with(p)) {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    for c in entries(&root.join("containers")) {
        for name in entries(&root.join("containers").join(&c)) {
            if name.starts_with(".tmp") {
                found.push(format!("containers/{c}/{name}"));
            }
        }
    }
    found
}

#[track_caller]
fn assert_no_leftovers(d: &Daemon) {
    let found = leftovers(&d.state());
    assert!(found.is_empty(), "partial files left behind: {found:?}");
}

/// The command failed and its error says the disk is full.
#[track_caller]
fn assert_no_space(r: &Run, what: &str) {
    assert_ne!(r.code, 0, "{what} should fail on a full disk: {r:#?}");
    assert!(
        r.stderr.contains("No space left on device"),
        "{what}: the error does not say the disk is full: {r:#?}"
    );
}

/// `ps` and `images` still answer.
#[track_caller]
fn assert_serving(d: &Daemon) {
    d.berth(&["ps", "-a"]).ok();
    d.berth(&["images"]).ok();
}

fn blobs(d: &Daemon) -> BTreeSet<String> {
    entries(&d.state().join("content/blobs/sha256"))
}

#[track_caller]
fn assert_space_back(d: &Daemon, before: u64) {
    // Allow a few pages for metadata (refs.json, the empty log of a container, ...).
    let now = free_bytes(&d.state());
    assert!(
        now + 64 * 1024 >= before,
        "space was not given back: {before} bytes free before, {now} after; {:?}",
        entries(&d.state())
    );
}

#[test]
fn pull_larger_than_the_disk_fails_cleanly() {
    let reg = Registry::start(None);
    let hello = std::fs::read(example("hello").join("hello.wasm")).unwrap();
    let big = random(40 * MIB);
    publish(
        &reg,
        "diskfull/big",
        "v1",
        &[("hello.wasm", &hello), ("big.bin", &big)],
    );
    publish(&reg, "diskfull/small", "v1", &[("hello.wasm", &hello)]);

    let tmpfs = Tmpfs::mount(16);
    let d = Daemon::start_on(tmpfs.path());
    let free = free_bytes(tmpfs.path());
    assert!(free < 40 * MIB);

    let image = format!("{}/diskfull/big:v1", reg.addr);
    let r = d.berth(&["pull", &image]);
    assert_no_space(&r, "pull");
    assert!(r.stderr.contains("sha256:"), "names the blob: {r:#?}");
    assert!(blobs(&d).is_empty(), "blobs stored: {:?}", blobs(&d));
    assert_no_leftovers(&d);
    assert!(entries(&d.state().join("snapshots")).is_empty());
    assert_serving(&d);
    assert!(
        !d.berth(&["images"]).stdout.contains("diskfull/big"),
        "the image is listed"
    );
    assert_ne!(d.berth(&["image", "inspect", &image]).code, 0);
    assert_space_back(&d, free);

    // A pull that fits works.
    let small = format!("{}/diskfull/small:v1", reg.addr);
    d.berth(&["pull", &small]).ok();
    let r = d.berth(&["run", "--rm", "-e", "NAME=disk", &small]);
    assert_eq!(r.ok().stdout, "Hello, disk!\n");
}

#[test]
fn build_that_does_not_fit_fails_cleanly() {
    let tmpfs = Tmpfs::mount(16);
    let d = Daemon::start_on(tmpfs.path());
    let free = free_bytes(tmpfs.path());
    let dockerfile = b"FROM scratch\nCOPY big.bin /big.bin\nCOPY hello.wasm /hello.wasm\nENTRYPOINT [\"/hello.wasm\"]\n";
    let hello = std::fs::read(example("hello").join("hello.wasm")).unwrap();

    // 1. A context larger than the disk: it cannot even be received.
    let ctx = tempfile::tempdir().unwrap();
    let big = random(free + 4 * MIB);
    context(
        ctx.path(),
        &[
            ("Dockerfile", dockerfile),
            ("hello.wasm", &hello),
            ("big.bin", &big),
        ],
    );
    let r = d.berth(&["build", "-t", "big:1", ctx.path().to_str().unwrap()]);
    assert_no_space(&r, "build of a context larger than the disk");
    assert!(
        r.stderr.contains("build context"),
        "says what was written: {r:#?}"
    );
    assert!(blobs(&d).is_empty(), "blobs stored: {:?}", blobs(&d));
    assert_no_leftovers(&d);
    assert_serving(&d);
    assert_ne!(d.berth(&["image", "inspect", "big:1"]).code, 0);
    assert_space_back(&d, free);

    // 2. A context that fits, whose layer does not: the context is received (spooled) and
    //    unpacked, then the layer runs out of space.
    let ctx = tempfile::tempdir().unwrap();
    let big = random(free * 2 / 5);
    context(
        ctx.path(),
        &[
            ("Dockerfile", dockerfile),
            ("hello.wasm", &hello),
            ("big.bin", &big),
        ],
    );
    let r = d.berth(&["build", "-t", "big:2", ctx.path().to_str().unwrap()]);
    assert_no_space(&r, "build of a layer larger than the free space");
    assert!(r.stderr.contains("layer"), "says what was written: {r:#?}");
    assert!(blobs(&d).is_empty(), "blobs stored: {:?}", blobs(&d));
    assert!(entries(&d.state().join("buildcache/layers")).is_empty());
    assert_no_leftovers(&d);
    assert_serving(&d);
    assert_ne!(d.berth(&["image", "inspect", "big:2"]).code, 0);
    assert_space_back(&d, free);

    // A build that fits works.
    d.build_example("hello", "hello:1");
    let r = d.berth(&["run", "--rm", "hello:1"]);
    assert_eq!(r.ok().stdout, "Hello, world!\n");
}

#[test]
fn log_filling_the_disk_keeps_whole_records() {
    let tmpfs = Tmpfs::mount(16);
    let d = Daemon::start_on(tmpfs.path());
    d.build_test_guest("probe", "probe:1");
    let free = free_bytes(tmpfs.path());
    let line = "x".repeat(1023);

    // More output than the disk holds (each 1 KiB line takes more in the JSON log).
    let spew_mib = free / MIB + 4;
    d.berth(&[
        "run",
        "-d",
        "--name",
        "spew",
        "probe:1",
        "spew",
        &spew_mib.to_string(),
    ])
    .ok();
    let w = d.berth(&["wait", "spew"]);
    assert_eq!(w.ok().stdout.trim(), "0", "the guest ends normally");
    assert_eq!(d.inspect("spew", "{{.State.Status}}"), "exited");
    assert!(
        free_bytes(tmpfs.path()) < 64 * 1024,
        "the log did not fill the disk"
    );
    assert_serving(&d);

    // The log holds whole records only, and `logs` returns them.
    let id = d.inspect("spew", "{{.Id}}");
    let file = d
        .state()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let raw = std::fs::read(&file).unwrap();
    assert!(raw.ends_with(b"\n"), "the log ends with a partial record");
    let records: Vec<String> = raw
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!("not a JSON record ({e}): {}", String::from_utf8_lossy(l))
            });
            v["log"].as_str().unwrap().to_string()
        })
        .collect();
    let logs = d.berth(&["logs", "spew"]);
    let mut got: Vec<&str> = logs.ok().stdout.lines().collect();
    assert_eq!(got.len(), records.len(), "`logs` returns every record");
    // The guest's last line (`ok`) may fit where a cut-off record was.
    if got.last() == Some(&"ok") {
        got.pop();
        assert_eq!(records.last().unwrap(), "ok\n");
    }
    assert!(got.len() > 1024, "too little was logged: {}", got.len());
    assert!(
        (got.len() as u64) < spew_mib * 1024,
        "everything was logged on a full disk?"
    );
    assert!(got.iter().all(|l| *l == line), "a log line is damaged");
    assert!(
        records[..got.len()]
            .iter()
            .all(|r| *r == format!("{line}\n")),
        "a log record is damaged"
    );

    // Freeing the space: the daemon logs again.
    d.berth(&["rm", "spew"]).ok();
    assert_no_leftovers(&d);
    d.berth(&["run", "-d", "--name", "small", "probe:1", "spew", "1"])
        .ok();
    assert_eq!(d.berth(&["wait", "small"]).ok().stdout.trim(), "0");
    let logs = d.berth(&["logs", "small"]);
    let got: Vec<&str> = logs.ok().stdout.lines().collect();
    assert_eq!(got.len(), 1025, "1 MiB of lines and `ok`");
    assert_eq!(got[1024], "ok");
}

#[test]
fn state_writes_on_a_full_disk_fail_cleanly() {
    let tmpfs = Tmpfs::mount(16);
    let d = Daemon::start_on(tmpfs.path());
    d.build_test_guest("probe", "probe:1");
    d.berth(&["create", "--name", "before", "probe:1", "exit", "0"])
        .ok();
    let containers = entries(&d.state().join("containers"));
    let free = free_bytes(tmpfs.path());
    let ballast = fill(tmpfs.path());

    let r = d.berth(&["create", "--name", "c1", "probe:1", "exit", "0"]);
    assert_no_space(&r, "create");
    assert!(r.stderr.contains("container"), "says what: {r:#?}");
    let r = d.berth(&["run", "--name", "c2", "probe:1", "exit", "0"]);
    assert_no_space(&r, "run");
    assert_eq!(
        entries(&d.state().join("containers")),
        containers,
        "a container directory was left behind"
    );
    assert_no_leftovers(&d);
    assert_ne!(d.berth(&["inspect", "c1"]).code, 0);
    assert_ne!(d.berth(&["inspect", "c2"]).code, 0);

    // A start cannot record its state: it fails, and the container stays created.
    let r = d.berth(&["start", "before"]);
    assert_no_space(&r, "start");
    assert!(r.stderr.contains("state.json"), "says what: {r:#?}");
    assert_eq!(d.inspect("before", "{{.State.Status}}"), "created");

    // A tag cannot be recorded: it fails and is not listed.
    let r = d.berth(&["tag", "probe:1", "probe:2"]);
    assert_no_space(&r, "tag");
    assert!(r.stderr.contains("refs.json"), "says what: {r:#?}");
    assert_ne!(d.berth(&["image", "inspect", "probe:2"]).code, 0);

    // A volume cannot be created.
    let r = d.berth(&["volume", "create", "v1"]);
    assert_no_space(&r, "volume create");
    assert!(!d.berth(&["volume", "ls"]).ok().stdout.contains("v1"));

    assert_no_leftovers(&d);
    assert_serving(&d);
    let ps = d.berth(&["ps", "-a"]);
    assert!(ps.stdout.contains("before"), "{ps:#?}");

    // Space freed: everything works again.
    std::fs::remove_file(&ballast).unwrap();
    assert_space_back(&d, free);
    d.berth(&["create", "--name", "c1", "probe:1", "exit", "0"])
        .ok();
    let r = d.berth(&["start", "-a", "before"]);
    assert_eq!(r.ok().stdout, "", "{r:#?}");
    assert_eq!(d.inspect("before", "{{.State.ExitCode}}"), "0");
    d.berth(&["tag", "probe:1", "probe:2"]).ok();
    d.berth(&["volume", "create", "v1"]).ok();
    let r = d.berth(&["run", "--rm", "probe:2", "write", "/tmp-file", "hi"]);
    assert_eq!(r.ok().stdout, "ok\n");
}
