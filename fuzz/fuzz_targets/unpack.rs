//! Layer unpacking of arbitrary bytes (gzip-sniffed, like a pulled layer) into a directory
//! inside a temp dir, with small limits. Errors are fine; panics, hangs and anything created
//! or changed outside the unpack root are not.
#![no_main]

use berth_image::unpack::{self, Limits};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One temp dir for the whole run (creating one per input halves the exec rate): the
/// sentinel lives there for good, the root is created and removed for each input.
static OUTER: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let outer = OUTER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sentinel = dir.path().join("sentinel");
        std::fs::write(&sentinel, b"untouched").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&sentinel, mode).unwrap();
        }
        dir
    });
    let sentinel = outer.path().join("sentinel");
    let root_path = outer.path().join("root");
    std::fs::create_dir(&root_path).unwrap();
    let before = listing(outer.path());
    let root = Dir::open_ambient_dir(&root_path, ambient_authority()).unwrap();
    let limits = Limits {
        entries: 256,
        bytes: 1 << 20,
    };
    let reader = unpack::decompress(std::io::Cursor::new(data.to_vec()));
    let _ = unpack::apply_tar_with(&root, reader, limits);
    // Apply it twice: the second pass meets the first pass's symlinks and files.
    let reader = unpack::decompress(std::io::Cursor::new(data.to_vec()));
    let _ = unpack::apply_tar_with(&root, reader, limits);
    assert_eq!(
        listing(outer.path()),
        before,
        "an entry was created next to the root"
    );
    assert_eq!(
        std::fs::read(&sentinel).unwrap(),
        b"untouched",
        "the sentinel changed"
    );
    let meta = std::fs::symlink_metadata(&sentinel).unwrap();
    assert!(meta.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(
            meta.nlink(),
            1,
            "the sentinel was hard-linked into the root"
        );
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o644,
            "the sentinel was chmodded"
        );
    }
    assert!(std::fs::symlink_metadata(&root_path).unwrap().is_dir());
    std::fs::remove_dir_all(&root_path).unwrap();
});
