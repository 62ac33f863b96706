//! Hostile layer tarballs against the public unpack API (`docs/threat-model.md`, "Images").
//!
//! Every tarball is written block by block with `tar::Header` (names and link names go
//! straight into the header bytes), so entries the high-level `tar::Builder` refuses — `..`,
//! absolute names, links to anywhere — can be built. Each case unpacks into `snapshot/` inside
//! a temp dir that also holds a sentinel file and a sentinel directory *outside* the snapshot,
//! then checks that nothing outside changed and that the result is the documented one:
//! refused with a clear error, or neutralised.
//!
//! The unit tests in `src/unpack.rs` cover the basics (`../escape`, a write through a symlink
//! to outside, symlink-then-file, whiteouts of lower entries, the count and size limits on a
//! plain tar); these cases extend them.

use berth_image::digest::Digest;
use berth_image::images::{Descriptor, Image, ImageConfig, Manifest, RootFs, media};
use berth_image::store::ContentStore;
use berth_image::unpack::{
    self, Limits, MAX_EXTENSION_BYTES, MAX_LAYER_ENTRIES, MAX_TRAILER_BYTES, UnpackError,
    UnpackStats,
};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

// ---------------------------------------------------------------------------------------------
// Tarballs, block by block.

/// A tar stream written with the low-level header API.
#[derive(Default)]
struct Tar(Vec<u8>);

/// A header with `name` and `link` written into the raw (old-style) fields, so no check of
/// `tar::Header::set_path` applies.
fn header(kind: EntryType, name: &str, link: &str, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let old = h.as_old_mut();
    assert!(name.len() <= old.name.len() && link.len() <= old.linkname.len());
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

/// One PAX record: `<len> <key>=<value>\n`, where `len` counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl Tar {
    fn block(&mut self, h: &Header, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = header(EntryType::Regular, name, "", mode, data.len() as u64);
        self.block(&h, data)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.block(&header(EntryType::Directory, name, "", mode, 0), &[])
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.block(&header(EntryType::Symlink, name, target, 0o777, 0), &[])
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.block(&header(EntryType::Link, name, target, 0o644, 0), &[])
    }

    /// A PAX `x` header (applies to the next entry) made of `records`.
    fn pax(&mut self, records: &[u8]) -> &mut Self {
        let h = header(EntryType::XHeader, "pax", "", 0o644, records.len() as u64);
        self.block(&h, records)
    }

    /// The stream with its end-of-archive marker.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Appends gzip members that inflate to `n` zero bytes: one precompressed 1 MiB member
/// repeated (a multi-member stream, as `decompress` reads it), so building a gigabyte bomb
/// takes a millisecond and a megabyte.
fn gzip_zeros(out: &mut Vec<u8>, n: u64) {
    static MIB_OF_ZEROS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    const MIB: u64 = 1024 * 1024;
    let member = MIB_OF_ZEROS.get_or_init(|| gzip(&vec![0u8; MIB as usize]));
    for _ in 0..n / MIB {
        out.extend_from_slice(member);
    }
    out.extend(gzip(&vec![0u8; (n % MIB) as usize]));
}

/// Counts the bytes read through it, to show a limit fired before the stream was consumed.
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// The snapshot and what lies outside it.

/// `outer/{sentinel, sentinel-dir/keep, snapshot/}`; layers unpack into `snapshot/`.
struct Fixture {
    outer: tempfile::TempDir,
    root: Dir,
}

const SENTINEL: &[u8] = b"untouched";

impl Fixture {
    fn new() -> Fixture {
        let outer = tempfile::tempdir().unwrap();
        let sentinel = outer.path().join("sentinel");
        std::fs::write(&sentinel, SENTINEL).unwrap();
        std::fs::set_permissions(&sentinel, std::fs::Permissions::from_mode(0o644)).unwrap();
        let sdir = outer.path().join("sentinel-dir");
        std::fs::create_dir(&sdir).unwrap();
        std::fs::write(sdir.join("keep"), SENTINEL).unwrap();
        std::fs::set_permissions(&sdir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(outer.path().join("snapshot")).unwrap();
        let root =
            Dir::open_ambient_dir(outer.path().join("snapshot"), ambient_authority()).unwrap();
        Fixture { outer, root }
    }

    fn outer(&self) -> &Path {
        self.outer.path()
    }

    fn snapshot(&self) -> PathBuf {
        self.outer.path().join("snapshot")
    }

    /// Absolute path of something outside the snapshot, as a link target.
    fn outside(&self, name: &str) -> String {
        self.outer.path().join(name).display().to_string()
    }

    fn apply(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        unpack::apply_tar(&self.root, tar)
    }

    /// Nothing was created, removed, written, chmodded or hard-linked outside `snapshot/`.
    fn assert_outside_untouched(&self) {
        let names = |dir: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(self.outer()),
            ["sentinel", "sentinel-dir", "snapshot"],
            "something was created or removed next to the snapshot"
        );
        let sentinel = self.outer().join("sentinel");
        let meta = std::fs::symlink_metadata(&sentinel).unwrap();
        assert!(meta.is_file(), "the sentinel was replaced");
        assert_eq!(std::fs::read(&sentinel).unwrap(), SENTINEL);
        assert_eq!(meta.mode() & 0o7777, 0o644, "the sentinel was chmodded");
        assert_eq!(meta.nlink(), 1, "the sentinel was hard-linked");
        let sdir = self.outer().join("sentinel-dir");
        let meta = std::fs::symlink_metadata(&sdir).unwrap();
        assert!(meta.is_dir(), "the sentinel dir was replaced");
        assert_eq!(meta.mode() & 0o7777, 0o755, "the sentinel dir was chmodded");
        assert_eq!(names(&sdir), ["keep"]);
        assert_eq!(std::fs::read(sdir.join("keep")).unwrap(), SENTINEL);
        assert_eq!(std::fs::metadata(sdir.join("keep")).unwrap().nlink(), 1);
    }
}

fn assert_unsafe(r: Result<UnpackStats, UnpackError>, why: &str) {
    match r {
        Err(UnpackError::UnsafeEntry { reason, .. }) if reason.contains(why) => {}
        other => panic!("expected an unsafe-entry error mentioning {why:?}, got {other:?}"),
    }
}

fn assert_err(r: Result<UnpackStats, UnpackError>) -> UnpackError {
    match r {
        Err(e) => {
            // Errors must say what went wrong.
            assert!(!e.to_string().is_empty());
            e
        }
        Ok(s) => panic!("the layer was accepted: {s:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Names.

#[test]
fn dotdot_entries_are_refused_and_absolute_entries_stay_inside() {
    for name in [
        "../escape",
        "a/../../escape",
        "/../escape",
        "./../sentinel",
        "a/b/../../..",
    ] {
        let f = Fixture::new();
        let tar = Tar::default()
            .file("ok", b"1", 0o644)
            .file(name, b"x", 0o644)
            .finish();
        assert_unsafe(f.apply(&tar), "'..'");
        f.assert_outside_untouched();
    }
    // `..` hidden in a PAX path (the ustar name is harmless) is refused the same way.
    let f = Fixture::new();
    let tar = Tar::default()
        .pax(&pax_record("path", b"../sentinel"))
        .file("harmless", b"evil", 0o644)
        .finish();
    assert_unsafe(f.apply(&tar), "'..'");
    f.assert_outside_untouched();
    // Absolute names are taken relative to the snapshot root (chroot-style).
    let f = Fixture::new();
    let abs = f.outside("sentinel");
    let tar = Tar::default()
        .file(&abs, b"inside", 0o644)
        .file("//etc///passwd", b"root", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
    let inside = f.snapshot().join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
    assert_eq!(
        std::fs::read(f.snapshot().join("etc/passwd")).unwrap(),
        b"root"
    );
}

// ---------------------------------------------------------------------------------------------
// Symlinks.

#[test]
fn entries_written_through_a_symlink_to_outside_are_refused() {
    // A symlink to outside (absolute or relative), then a file, a directory, a hardlink or a
    // second symlink written through it.
    type Case = fn(&Fixture) -> Vec<u8>;
    let cases: [Case; 7] = [
        |f| {
            Tar::default()
                .symlink("evil", &f.outside(""))
                .file("evil/planted", b"x", 0o644)
                .finish()
        },
        |f| {
            Tar::default()
                .symlink("evil", &f.outside(""))
                .file("evil/sentinel", b"x", 0o644)
                .finish()
        },
        |f| {
            Tar::default()
                .symlink("evil", &f.outside("sentinel-dir"))
                .dir("evil/newdir", 0o777)
                .finish()
        },
        |f| {
            Tar::default()
                .file("f", b"x", 0o644)
                .symlink("evil", &f.outside("sentinel-dir"))
                .hardlink("evil/keep2", "f")
                .finish()
        },
        |_| {
            Tar::default()
                .symlink("evil", "../sentinel-dir")
                .symlink("evil/link", "/etc/passwd")
                .finish()
        },
        |_| {
            Tar::default()
                .symlink("evil", "../sentinel-dir")
                .file("evil/keep", b"overwritten", 0o644)
                .finish()
        },
        |f| {
            Tar::default()
                .symlink("evil", &f.outside("sentinel"))
                .file("evil/x", b"x", 0o644)
                .finish()
        },
    ];
    for case in cases {
        let f = Fixture::new();
        assert_err(f.apply(&case(&f)));
        f.assert_outside_untouched();
    }
}

#[test]
fn directory_entry_over_a_symlink_does_not_chmod_outside() {
    // CVE-2026-33056: a directory entry named like a symlink to an outside directory must not
    // chmod that directory; the symlink is replaced by a real directory inside.
    let f = Fixture::new();
    let tar = Tar::default()
        .symlink("d", &f.outside("sentinel-dir"))
        .dir("d", 0o777)
        .file("d/inside", b"1", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
    let d = std::fs::symlink_metadata(f.snapshot().join("d")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o777, 0o777);
    assert_eq!(std::fs::read(f.snapshot().join("d/inside")).unwrap(), b"1");
}

#[test]
fn symlink_to_dotdot_used_as_a_path_prefix_is_refused() {
    // RUSTSEC-2021-0080: `up -> ..` then `up/exploit/foo/bar` created directories outside.
    for (links, entry) in [
        (vec![("up", "..")], "up/exploit/foo/bar"),
        (vec![("up", "..")], "up/sentinel"),
        (vec![("up", "../..")], "up/exploit"),
        (vec![("up", "./.././snapshot/..")], "up/exploit"),
        (vec![("a", "b"), ("b", "..")], "a/exploit/x"),
        (vec![("d", "sub/../..")], "d/exploit"),
    ] {
        for as_dir in [false, true] {
            let f = Fixture::new();
            let mut t = Tar::default();
            t.dir("sub", 0o755);
            for (name, target) in &links {
                t.symlink(name, target);
            }
            if as_dir {
                t.dir(entry, 0o777);
            } else {
                t.file(entry, b"x", 0o644);
            }
            assert_err(f.apply(&t.finish()));
            f.assert_outside_untouched();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hardlinks.

#[test]
fn hardlinks_to_outside_are_refused() {
    let f = Fixture::new();
    // Relative climb: refused by name.
    let tar = Tar::default().hardlink("h", "../sentinel").finish();
    assert_unsafe(f.apply(&tar), "'..'");
    // Absolute path of the sentinel: resolved inside the snapshot, where it does not exist.
    let tar = Tar::default()
        .hardlink("h", &f.outside("sentinel"))
        .finish();
    assert!(matches!(f.apply(&tar), Err(UnpackError::Io { .. })));
    // To a symlink that points outside: refused, the link is not followed.
    let tar = Tar::default()
        .symlink("s", &f.outside("sentinel"))
        .hardlink("h", "s")
        .finish();
    assert_unsafe(f.apply(&tar), "not a regular file");
    let tar = Tar::default()
        .symlink("s2", "../sentinel")
        .hardlink("h", "s2")
        .finish();
    assert_unsafe(f.apply(&tar), "not a regular file");
    // Through a symlinked directory that points outside.
    let tar = Tar::default()
        .symlink("d", &f.outside(""))
        .hardlink("h", "d/sentinel")
        .finish();
    assert_err(f.apply(&tar));
    let tar = Tar::default()
        .symlink("d2", "..")
        .hardlink("h", "d2/sentinel")
        .finish();
    assert_err(f.apply(&tar));
    // To a directory inside.
    let tar = Tar::default()
        .dir("dir", 0o755)
        .hardlink("h", "dir")
        .finish();
    assert_unsafe(f.apply(&tar), "not a regular file");
    f.assert_outside_untouched();
    assert!(std::fs::symlink_metadata(f.snapshot().join("h")).is_err());
}

#[test]
fn duplicate_entry_over_a_hardlink_does_not_write_through_it() {
    let f = Fixture::new();
    let tar = Tar::default()
        .file("a", b"original", 0o644)
        .hardlink("b", "a")
        .file("b", b"replaced", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    assert_eq!(std::fs::read(f.snapshot().join("a")).unwrap(), b"original");
    assert_eq!(std::fs::read(f.snapshot().join("b")).unwrap(), b"replaced");
    assert_eq!(
        std::fs::metadata(f.snapshot().join("a")).unwrap().nlink(),
        1
    );
    f.assert_outside_untouched();
}

// ---------------------------------------------------------------------------------------------
// Duplicates.

#[test]
fn duplicate_entries_file_symlink_file_end_as_the_last_file() {
    // RUSTSEC-2018-0002 extended: file, then a symlink of the same name to outside, then the
    // file again (and the same through a directory).
    let f = Fixture::new();
    let tar = Tar::default()
        .file("f", b"one", 0o644)
        .symlink("f", &f.outside("sentinel"))
        .file("f", b"three", 0o600)
        .symlink("g", "../sentinel")
        .file("g", b"g", 0o644)
        .dir("d", 0o755)
        .file("d/x", b"x", 0o644)
        .symlink("d", &f.outside("sentinel-dir"))
        .dir("d", 0o700)
        .file("d/keep", b"inside", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
    let s = f.snapshot();
    assert!(std::fs::symlink_metadata(s.join("f")).unwrap().is_file());
    assert_eq!(std::fs::read(s.join("f")).unwrap(), b"three");
    assert_eq!(std::fs::read(s.join("g")).unwrap(), b"g");
    assert!(std::fs::symlink_metadata(s.join("d")).unwrap().is_dir());
    assert_eq!(std::fs::read(s.join("d/keep")).unwrap(), b"inside");
    // The symlink replaced the first `d` (and its `x`): the layer's last word wins.
    assert!(!s.join("d/x").exists());

    // A symlink left in place, then a file *under* it: refused, nothing written outside.
    let f = Fixture::new();
    let tar = Tar::default()
        .dir("d", 0o755)
        .symlink("d", &f.outside("sentinel-dir"))
        .file("d/keep", b"overwritten", 0o644)
        .finish();
    assert_err(f.apply(&tar));
    f.assert_outside_untouched();
}

// ---------------------------------------------------------------------------------------------
// Special files and modes.

#[test]
fn device_nodes_and_fifos_are_skipped_and_special_bits_stripped() {
    let f = Fixture::new();
    let mut t = Tar::default();
    for (kind, name) in [
        (EntryType::Char, "dev/null"),
        (EntryType::Block, "dev/sda"),
        (EntryType::Fifo, "run/fifo"),
        (EntryType::Char, "sentinel"),
    ] {
        let mut h = header(kind, name, "", 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        t.block(&h, &[]);
    }
    t.file("suid", b"s", 0o4755)
        .file("sgid", b"g", 0o2755)
        .file("all", b"a", 0o7777)
        .dir("sticky", 0o1777)
        .dir("sgid-dir", 0o2750)
        .dir("locked", 0o000)
        .file("locked/f", b"f", 0o000);
    let stats = f.apply(&t.finish()).unwrap();
    assert_eq!(stats.skipped, 4);
    f.assert_outside_untouched();
    let s = f.snapshot();
    for name in ["dev/null", "dev/sda", "run/fifo", "sentinel"] {
        assert!(
            std::fs::symlink_metadata(s.join(name)).is_err(),
            "{name} was created"
        );
    }
    let mode = |p: &str| std::fs::symlink_metadata(s.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("suid"), 0o755);
    assert_eq!(mode("sgid"), 0o755);
    assert_eq!(mode("all"), 0o777);
    // Directories lose the special bits and stay writable by the daemon.
    assert_eq!(mode("sticky"), 0o777);
    assert_eq!(mode("sgid-dir"), 0o750);
    assert_eq!(mode("locked"), 0o700);
    assert_eq!(mode("locked/f"), 0o000);
    // Ownership is ignored: everything belongs to the daemon's user, not uid 0 of the layer.
    let uid = std::fs::metadata(f.outer()).unwrap().uid();
    assert_eq!(std::fs::metadata(s.join("suid")).unwrap().uid(), uid);
}

// ---------------------------------------------------------------------------------------------
// Whiteouts.

#[test]
fn whiteouts_aimed_at_parents_or_outside_are_refused() {
    // Whiteouts that name no entry, or the parent.
    for (name, why) in [
        (".wh...", "whiteout without a name"),
        (".wh..", "whiteout without a name"),
        (".wh.", "whiteout without a name"),
        ("a/.wh.", "whiteout without a name"),
        ("a/.wh...", "whiteout without a name"),
        ("a/../../.wh.sentinel", "'..'"),
        ("../.wh.sentinel", "'..'"),
        ("a/../.wh.x", "'..'"),
    ] {
        let f = Fixture::new();
        let tar = Tar::default()
            .file("a/x", b"1", 0o644)
            .file(name, b"", 0o644)
            .finish();
        assert_unsafe(f.apply(&tar), why);
        f.assert_outside_untouched();
        assert_eq!(std::fs::read(f.snapshot().join("a/x")).unwrap(), b"1");
    }
    // Whiteouts under a symlink that leads outside: refused, or nothing outside removed.
    for (link, entry) in [
        ("out", ".wh.sentinel"),
        ("out", ".wh.sentinel-dir"),
        ("out", ".wh..wh..opq"),
        ("out", "sentinel-dir/.wh.keep"),
        ("out", "sentinel-dir/.wh..wh..opq"),
    ] {
        for target in [Fixture::new().outside(""), "..".to_string()] {
            let f = Fixture::new();
            let target = if target == ".." {
                target
            } else {
                f.outside("")
            };
            let tar = Tar::default()
                .symlink(link, &target)
                .file(&format!("{link}/{entry}"), b"", 0o644)
                .finish();
            let _ = f.apply(&tar);
            f.assert_outside_untouched();
        }
    }
    // Absolute whiteouts and an opaque whiteout at the root stay inside the snapshot.
    let f = Fixture::new();
    f.apply(&Tar::default().file("lower", b"1", 0o644).finish())
        .unwrap();
    let tar = Tar::default()
        .file(&format!("{}/.wh.sentinel", f.outside("")), b"", 0o644)
        .file("/.wh.sentinel", b"", 0o644)
        .file("/.wh..wh..opq", b"", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    f.assert_outside_untouched();
    assert!(!f.snapshot().join("lower").exists());
    assert!(f.snapshot().is_dir());
}

// ---------------------------------------------------------------------------------------------
// Bombs and limits.

/// A gzip stream of a tar with `entries` (data all zeros), then `trailer` zero bytes after
/// the end-of-archive marker.
fn gzip_bomb(entries: &[(EntryType, &str, u64)], trailer: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, name, size) in entries {
        out.extend(gzip(header(*kind, name, "", 0o644, *size).as_bytes()));
        gzip_zeros(&mut out, size.div_ceil(512) * 512);
    }
    gzip_zeros(&mut out, 1024 + trailer);
    out
}

fn apply_counting(
    f: &Fixture,
    compressed: Vec<u8>,
    limits: Limits,
) -> (Result<UnpackStats, UnpackError>, u64) {
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let reader = Counting {
        inner: unpack::decompress(io::Cursor::new(compressed)),
        read: read.clone(),
    };
    let r = unpack::apply_tar_with(&f.root, reader, limits);
    (r, read.get())
}

#[test]
fn gzip_bombs_hit_the_size_limit_before_they_are_inflated() {
    const MIB: u64 = 1024 * 1024;
    let limits = Limits {
        entries: 1000,
        bytes: 4 * MIB,
    };
    // One file that claims 1 GiB: refused on its header, nothing inflated past it.
    let f = Fixture::new();
    let bomb = gzip_bomb(&[(EntryType::Regular, "bomb", 1024 * MIB)], 0);
    assert!(bomb.len() < 2 * MIB as usize, "{} bytes", bomb.len());
    let (r, read) = apply_counting(&f, bomb, limits);
    assert!(
        matches!(r, Err(UnpackError::TooLarge(b)) if b == 4 * MIB),
        "{r:?}"
    );
    assert!(read < MIB, "{read} bytes inflated");
    assert!(!f.snapshot().join("bomb").exists());
    f.assert_outside_untouched();
    // Many files under the limit each: the running total fires.
    let f = Fixture::new();
    let names: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let entries: Vec<_> = names
        .iter()
        .map(|n| (EntryType::Regular, n.as_str(), MIB))
        .collect();
    let (r, read) = apply_counting(&f, gzip_bomb(&entries, 0), limits);
    assert!(matches!(r, Err(UnpackError::TooLarge(_))), "{r:?}");
    assert!(read <= 5 * MIB, "{read} bytes inflated");
    f.assert_outside_untouched();
    // Data on entries that are skipped (a symlink, a FIFO, a global header) counts too: the
    // daemon must not inflate gigabytes to throw them away.
    for kind in [EntryType::Symlink, EntryType::Fifo, EntryType::Directory] {
        let f = Fixture::new();
        let (r, read) = apply_counting(&f, gzip_bomb(&[(kind, "x", 1024 * MIB)], 0), limits);
        assert!(
            matches!(r, Err(UnpackError::TooLarge(_))),
            "{kind:?}: {r:?}"
        );
        assert!(read < MIB, "{kind:?}: {read} bytes inflated");
        f.assert_outside_untouched();
    }
    // The default limit (16 GiB) fires on a stream of a few hundred bytes.
    let f = Fixture::new();
    let claim = unpack::MAX_UNPACKED_BYTES + 1;
    let (r, _) = apply_counting(
        &f,
        gzip_bomb(&[(EntryType::Regular, "huge", claim)], 0)[..200].to_vec(),
        Limits::default(),
    );
    assert!(matches!(r, Err(UnpackError::TooLarge(_))), "{r:?}");
}

#[test]
fn zeros_after_the_end_of_the_archive_are_bounded() {
    // A bomb hidden after the end-of-archive marker, where the tar parser never looks but
    // the diff_id hash reads: `drain_trailer` stops after MAX_TRAILER_BYTES.
    let bomb = gzip_bomb(&[(EntryType::Regular, "ok", 3)], 64 * MAX_TRAILER_BYTES);
    let f = Fixture::new();
    let mut reader = unpack::decompress(io::Cursor::new(bomb));
    unpack::apply_tar(&f.root, &mut reader).unwrap();
    let e = unpack::drain_trailer(&mut reader).unwrap_err();
    assert!(matches!(e, UnpackError::Malformed(_)), "{e:?}");
    assert!(
        e.to_string().contains("after the end of the tar archive"),
        "{e}"
    );
    // Ordinary padding is fine.
    let mut reader = unpack::decompress(io::Cursor::new(gzip_bomb(&[], 9 * 1024)));
    unpack::apply_tar(&f.root, &mut reader).unwrap();
    assert_eq!(unpack::drain_trailer(&mut reader).unwrap(), 9 * 1024 + 512);
}

#[test]
fn snapshot_refuses_a_trailer_bomb_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let mut layer = Tar::default().file("app.wasm", b"\0asm", 0o644).finish();
    layer.resize(layer.len() + 2 * MAX_TRAILER_BYTES as usize, 0);
    let diff_id = Digest::sha256_of(&layer);
    let blob = gzip(&layer);
    let digest = store.put(&blob).unwrap();
    let config = ImageConfig {
        architecture: "wasm".into(),
        os: "wasip1".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        ..Default::default()
    };
    let config_digest = store.put(&serde_json_bytes(&config)).unwrap();
    let image = Image {
        manifest_digest: config_digest.clone(),
        id: config_digest.clone(),
        manifest: Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: media::OCI_CONFIG.into(),
                digest: config_digest,
                size: 0,
                annotations: None,
            },
            layers: vec![Descriptor {
                media_type: media::OCI_LAYER_GZIP.into(),
                digest,
                size: blob.len() as u64,
                annotations: None,
            }],
            annotations: None,
        },
        config,
    };
    let snapshots = dir.path().join("snapshots");
    let e = unpack::snapshot(&store, &snapshots, &image).unwrap_err();
    assert!(matches!(e, UnpackError::Malformed(_)), "{e:?}");
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 0);
}

fn serde_json_bytes(c: &ImageConfig) -> Vec<u8> {
    berth_image::images::canonical_json(c)
}

#[test]
fn zstd_and_xz_layers_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    // An (empty) zstd frame: magic, frame header, one empty last raw block.
    let zstd_frame: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x48, 0x01, 0x00, 0x00];
    let d = store.put(zstd_frame).unwrap();
    let e = unpack::open_layer(&store, &d, "application/vnd.oci.image.layer.v1.tar+zstd")
        .err()
        .unwrap();
    assert!(
        matches!(e, UnpackError::UnsupportedMediaType { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("tar+zstd"), "{e}");
    // zstd or xz data behind a tar media type: refused by its magic, not parsed as tar.
    let xz: &[u8] = &[
        0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4, 0xe6, 0xd6, 0xb4, 0x46,
    ];
    for (data, name) in [(zstd_frame, "zstd"), (xz, "xz")] {
        let d = store.put(data).unwrap();
        let reader = unpack::open_layer(&store, &d, media::OCI_LAYER_TAR).unwrap();
        let f = Fixture::new();
        let e = unpack::apply_tar(&f.root, reader).unwrap_err();
        assert!(
            matches!(e, UnpackError::UnsupportedCompression(n) if n == name),
            "{e:?}"
        );
        assert!(e.to_string().contains("only gzip"), "{e}");
    }
}

/// An endless tar stream of identical `kind` entries, made on demand.
struct EndlessTar {
    block: [u8; 512],
    produced: u64,
    /// Entries to produce (then the end marker).
    total: u64,
    offset: usize,
    names: bool,
}

impl EndlessTar {
    fn new(kind: EntryType, total: u64, names: bool) -> Self {
        let h = header(kind, "e", "", 0o644, 0);
        let mut block = [0u8; 512];
        block.copy_from_slice(h.as_bytes());
        EndlessTar {
            block,
            produced: 0,
            total,
            offset: 512,
            names,
        }
    }
}

impl Read for EndlessTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == 512 {
            if self.produced >= self.total {
                return Ok(0);
            }
            self.produced += 1;
            self.offset = 0;
            if self.names {
                let mut h = Header::new_old();
                h.as_mut_bytes().copy_from_slice(&self.block);
                let name = format!("f{}", self.produced);
                let field = &mut h.as_old_mut().name;
                field.fill(0);
                field[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                self.block.copy_from_slice(h.as_bytes());
            }
        }
        let n = buf.len().min(512 - self.offset);
        buf[..n].copy_from_slice(&self.block[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

#[test]
fn millions_of_entries_stop_at_the_entry_limit() {
    // Five million entries, generated lazily, against the default limit of one million:
    // FIFOs, which are skipped, so the test measures the parser and not the file system.
    let f = Fixture::new();
    let mut stream = EndlessTar::new(EntryType::Fifo, 5_000_000, false);
    let r = unpack::apply_tar(&f.root, &mut stream);
    assert!(
        matches!(r, Err(UnpackError::TooManyEntries(n)) if n == MAX_LAYER_ENTRIES),
        "{r:?}"
    );
    assert_eq!(
        stream.produced,
        MAX_LAYER_ENTRIES + 1,
        "the stream was read past the limit"
    );
    // Real files, with a small limit: exactly `entries` files exist afterwards.
    let f = Fixture::new();
    let mut stream = EndlessTar::new(EntryType::Regular, 5_000_000, true);
    let limits = Limits {
        entries: 2000,
        bytes: u64::MAX,
    };
    let r = unpack::apply_tar_with(&f.root, &mut stream, limits);
    assert!(matches!(r, Err(UnpackError::TooManyEntries(2000))), "{r:?}");
    assert_eq!(stream.produced, 2001);
    assert_eq!(std::fs::read_dir(f.snapshot()).unwrap().count(), 2000);
    f.assert_outside_untouched();
}

// ---------------------------------------------------------------------------------------------
// Not a tar.

#[test]
fn non_tar_data_inside_valid_gzip_is_refused() {
    let mut noise = vec![0u8; 64 * 1024];
    let mut x: u32 = 0x9e37_79b9;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut one_block_ok = Tar::default().file("a", b"1", 0o644).finish();
    one_block_ok.truncate(512 + 100); // a header, then the data stops
    for (data, what) in [
        (gzip(&noise), "random bytes"),
        (gzip(b"this is not a tar archive, just text"), "text"),
        (
            gzip(&[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0]),
            "gzip of a gzip header",
        ),
        (gzip(&one_block_ok), "a truncated tar"),
        (gzip(&noise)[..100].to_vec(), "a truncated gzip stream"),
        (noise[..4096].to_vec(), "random bytes, not compressed"),
    ] {
        let f = Fixture::new();
        let reader = unpack::decompress(io::Cursor::new(data));
        let e = unpack::apply_tar(&f.root, reader);
        match e {
            Err(UnpackError::Malformed(m)) => assert!(!m.is_empty()),
            other => panic!("{what}: expected Malformed, got {other:?}"),
        }
        f.assert_outside_untouched();
    }
    // All zeros is an empty archive (tar's end marker), not an error.
    let f = Fixture::new();
    let reader = unpack::decompress(io::Cursor::new(gzip(&[0u8; 4096])));
    assert_eq!(unpack::apply_tar(&f.root, reader).unwrap().entries, 0);
}

// ---------------------------------------------------------------------------------------------
// PAX.

#[test]
fn pax_size_overrides_a_zero_header_size_and_the_stream_stays_in_step() {
    // POSIX: a PAX size replaces the header size (GNU tar, Go and tar-rs >= 0.4.45 agree).
    let f = Fixture::new();
    let tar = Tar::default()
        .pax(&pax_record("size", b"5"))
        .block(&header(EntryType::Regular, "sized", "", 0o644, 0), b"hello")
        .file("next", b"after", 0o644)
        .finish();
    f.apply(&tar).unwrap();
    assert_eq!(std::fs::read(f.snapshot().join("sized")).unwrap(), b"hello");
    assert_eq!(std::fs::read(f.snapshot().join("next")).unwrap(), b"after");
    f.assert_outside_untouched();
}

#[test]
fn ambiguous_pax_headers_are_refused() {
    // The smuggling shape of CVE-2026-33055 / TARmageddon: the header size covers a hidden
    // entry that a parser honouring the PAX size would read as the next header.
    let hidden = Tar::default().file("smuggled", b"evil", 0o644).0.clone();
    let smuggle = |pax: &[u8]| {
        Tar::default()
            .pax(pax)
            .block(
                &header(EntryType::Regular, "cover", "", 0o644, hidden.len() as u64),
                &hidden,
            )
            .finish()
    };
    let mut two_sizes = pax_record("size", b"0");
    two_sizes.extend(pax_record("size", b"1536"));
    let mut bad_then_size = b"99 path=x\n".to_vec(); // wrong length prefix
    bad_then_size.extend(pax_record("size", b"0"));
    let mut two_paths = pax_record("path", b"a");
    two_paths.extend(pax_record("path", b"b"));
    for (pax, why) in [
        (pax_record("size", b"0"), "disagrees"),
        (pax_record("size", b"-1"), "not a number"),
        (pax_record("size", b"0x10"), "not a number"),
        (two_sizes, "repeated"),
        (bad_then_size, "malformed PAX record"),
        (two_paths, "repeated"),
    ] {
        let f = Fixture::new();
        assert_unsafe(f.apply(&smuggle(&pax)), why);
        assert!(!f.snapshot().join("smuggled").exists());
        f.assert_outside_untouched();
    }
    // A global header that sets size or path (tar-rs ignores it, other tools apply it).
    for key in ["size", "path", "linkpath"] {
        let f = Fixture::new();
        let records = pax_record(key, b"0");
        let tar = Tar::default()
            .block(
                &header(
                    EntryType::XGlobalHeader,
                    "g",
                    "",
                    0o644,
                    records.len() as u64,
                ),
                &records,
            )
            .file("a", b"1", 0o644)
            .finish();
        assert_unsafe(f.apply(&tar), "global PAX header");
    }
    // A global header with harmless records (git archive's `comment`) is skipped.
    let f = Fixture::new();
    let records = pax_record("comment", b"3f1d2c");
    let tar = Tar::default()
        .block(
            &header(
                EntryType::XGlobalHeader,
                "g",
                "",
                0o644,
                records.len() as u64,
            ),
            &records,
        )
        .file("a", b"1", 0o644)
        .finish();
    let stats = f.apply(&tar).unwrap();
    assert_eq!(stats.skipped, 1);
}

#[test]
fn huge_pax_records_and_long_names_are_bounded() {
    const MIB: usize = 1024 * 1024;
    // A PAX path of 2 MiB: the parser would hold it in memory; refused after 1 MiB.
    let f = Fixture::new();
    let big = pax_record("path", &vec![b'a'; 2 * MIB]);
    let tar = Tar::default().pax(&big).file("x", b"1", 0o644).finish();
    let (r, read) = apply_counting(&f, gzip(&tar), Limits::default());
    assert!(
        matches!(r, Err(UnpackError::HeaderTooLarge(n)) if n == MAX_EXTENSION_BYTES),
        "{r:?}"
    );
    assert!(read <= MAX_EXTENSION_BYTES + 64 * 1024, "{read} bytes read");
    // A PAX header that claims 1 TiB of records, backed by a gzip of zeros.
    let f = Fixture::new();
    let mut bomb = gzip(header(EntryType::XHeader, "pax", "", 0o644, 1 << 40).as_bytes());
    gzip_zeros(&mut bomb, 64 * MIB as u64);
    let (r, read) = apply_counting(&f, bomb, Limits::default());
    assert!(matches!(r, Err(UnpackError::HeaderTooLarge(_))), "{r:?}");
    assert!(read <= MAX_EXTENSION_BYTES + 64 * 1024, "{read} bytes read");
    // A GNU long name of 2 MiB, the same.
    let f = Fixture::new();
    let long = vec![b'n'; 2 * MIB];
    let tar = Tar::default()
        .block(
            &header(
                EntryType::GNULongName,
                "././@LongLink",
                "",
                0o644,
                long.len() as u64,
            ),
            &long,
        )
        .file("x", b"1", 0o644)
        .finish();
    assert!(matches!(f.apply(&tar), Err(UnpackError::HeaderTooLarge(_))));
    // A long name under the header bound but over the path bound is refused by name.
    let f = Fixture::new();
    let long = vec![b'n'; unpack::MAX_PATH_LEN + 1];
    let tar = Tar::default()
        .block(
            &header(
                EntryType::GNULongName,
                "././@LongLink",
                "",
                0o644,
                long.len() as u64,
            ),
            &long,
        )
        .file("x", b"1", 0o644)
        .finish();
    assert_unsafe(f.apply(&tar), "name too long");
    // A PAX size far beyond the limit with a zero header size hits the size limit; one that
    // overflows the parser's arithmetic is malformed.
    for (size, too_large) in [(1u64 << 62, true), (u64::MAX, false)] {
        let f = Fixture::new();
        let tar = Tar::default()
            .pax(&pax_record("size", size.to_string().as_bytes()))
            .block(&header(EntryType::Regular, "x", "", 0o644, 0), &[])
            .finish();
        let r = f.apply(&tar);
        if too_large {
            assert!(matches!(r, Err(UnpackError::TooLarge(_))), "{r:?}");
        } else {
            assert!(matches!(r, Err(UnpackError::Malformed(_))), "{r:?}");
        }
        f.assert_outside_untouched();
    }
}
