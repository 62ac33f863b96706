//! Inputs found by the fuzz targets in `fuzz/` (see `scripts/fuzz.sh`), replayed as tests.
//!
//! Each file under `tests/fuzz-regressions/<target>/` and `fuzz/seeds/<target>/` goes through
//! the same checks as the fuzz target of that name; a new crash input is added by copying it from
//! `fuzz/artifacts/<target>/` into that directory. Inputs whose finding was a documented
//! behaviour rather than a bug also get a named test below that pins the behaviour.

use berth_image::digest::Digest;
use berth_image::dockerfile;
use berth_image::dockerignore::DockerIgnore;
use berth_image::images::{self, ImageConfig, Manifest};
use berth_image::reference::{Reference, ReferenceError};
use berth_image::unpack::{self, Limits};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The target's committed seeds (`fuzz/seeds/<target>`) and its past findings
/// (`tests/fuzz-regressions/<target>`): never empty, so every replay test checks something.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        crate_dir.join("../../fuzz/seeds").join(target),
        crate_dir.join("tests/fuzz-regressions").join(target),
    ];
    let mut out: Vec<_> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|e| {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    assert!(
        !out.is_empty(),
        "no seeds or findings for fuzz target {target}"
    );
    out.sort();
    out
}

/// `fuzz/fuzz_targets/reference.rs`.
fn check_reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }
    for parsed in [Reference::parse(s), Reference::parse_no_default_tag(s)] {
        let Ok(r) = parsed else { continue };
        let canonical = r.canonical();
        let again = Reference::parse_no_default_tag(&canonical).unwrap();
        assert_eq!(again.canonical(), canonical);
        match Reference::parse_no_default_tag(&r.familiar()) {
            Ok(again) => assert_eq!(again.canonical(), canonical),
            Err(ReferenceError::HexIdentifier { .. }) => {}
            Err(e) => panic!("familiar form of {s:?} does not parse: {e}"),
        }
    }
}

/// `fuzz/fuzz_targets/manifest.rs`, the `berth_image` half (the registry's document parser
/// is tested in `crates/registry`).
fn check_manifest(data: &[u8]) {
    let Some((_, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(m) = serde_json::from_slice::<Manifest>(bytes) {
        let json = images::canonical_json(&m);
        let again: Manifest = serde_json::from_slice(&json).unwrap();
        assert_eq!(images::canonical_json(&again), json);
        for l in &m.layers {
            let path = images::Image::wasm_layer_path(l);
            assert!(path.starts_with('/') && !path[1..].contains('/'));
        }
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfig>(bytes) {
        let json = images::canonical_json(&c);
        let again: ImageConfig = serde_json::from_slice(&json).unwrap();
        assert_eq!(again, c);
    }
}

/// `fuzz/fuzz_targets/dockerfile.rs`.
fn check_dockerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut args = BTreeMap::new();
    let _ = dockerfile::parse(text, &args);
    args.insert("VERSION".to_string(), "1.0 $HOME ${X:-y}".to_string());
    let _ = dockerfile::parse(text, &args);
    if let Ok(ignore) = DockerIgnore::parse(text) {
        for p in ["a", "a/b/c.txt", ".git", "Dockerfile", "x/../y"] {
            let _ = ignore.is_excluded(p);
        }
    }
}

/// `fuzz/fuzz_targets/unpack.rs`.
fn check_unpack(data: &[u8]) {
    let outer = tempfile::tempdir().unwrap();
    let sentinel = outer.path().join("sentinel");
    std::fs::write(&sentinel, b"untouched").unwrap();
    let root_path = outer.path().join("root");
    std::fs::create_dir(&root_path).unwrap();
    let root = Dir::open_ambient_dir(&root_path, ambient_authority()).unwrap();
    let limits = Limits {
        entries: 256,
        bytes: 1 << 20,
    };
    for _ in 0..2 {
        let reader = unpack::decompress(std::io::Cursor::new(data.to_vec()));
        let _ = unpack::apply_tar_with(&root, reader, limits);
    }
    let mut names: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["root", "sentinel"]);
    assert_eq!(std::fs::read(&sentinel).unwrap(), b"untouched");
}

#[test]
fn reference_inputs() {
    for (path, data) in inputs("reference") {
        eprintln!("{}", path.display());
        check_reference(&data);
    }
}

#[test]
fn manifest_inputs() {
    for (path, data) in inputs("manifest") {
        eprintln!("{}", path.display());
        check_manifest(&data);
    }
}

#[test]
fn dockerfile_inputs() {
    for (path, data) in inputs("dockerfile") {
        eprintln!("{}", path.display());
        check_dockerfile(&data);
    }
}

#[test]
fn unpack_inputs() {
    for (path, data) in inputs("unpack") {
        eprintln!("{}", path.display());
        check_unpack(&data);
    }
}

/// `reference/familiar-hex-name`: `library/<64 hex>` is a valid name, as in Docker, but its
/// familiar form (`<64 hex>`) reads as an image id and is refused. The fuzz target's
/// round-trip check was too strict; the behaviour is Docker's and is kept.
#[test]
fn familiar_form_of_a_hex_library_name_is_an_image_id() {
    let hex = "1".repeat(64);
    let r = Reference::parse_no_default_tag(&format!("library/{hex}")).unwrap();
    assert_eq!(r.canonical(), format!("docker.io/library/{hex}"));
    assert_eq!(r.familiar(), hex);
    assert!(matches!(
        Reference::parse_no_default_tag(&r.familiar()),
        Err(ReferenceError::HexIdentifier { .. })
    ));
    // With a tag it is no longer a bare id.
    let tagged = Reference::parse(&format!("library/{hex}")).unwrap();
    assert_eq!(tagged.familiar(), format!("{hex}:latest"));
    assert!(Reference::parse(&tagged.familiar()).is_ok());
}

/// `reference/docker-hub-path-like-a-domain`: `docker.io/<x.y>/z` is a Docker Hub name whose
/// first path component looks like a registry. Its familiar form used to drop `docker.io/`,
/// printing (and parsing back to) an image on registry `x.y`. It now keeps the prefix.
#[test]
fn docker_hub_paths_that_look_like_a_registry_keep_their_domain() {
    for input in [
        "docker.io/ghcr.io/org/app:1",
        "docker.io/localhost/app",
        "index.docker.io/example.com/app",
        "docker.io/8541.2.3inffghcr.io/orgo/8541.2.3inin.e320",
    ] {
        let r = Reference::parse(input).unwrap();
        assert_eq!(r.domain(), "docker.io", "{input}");
        let familiar = r.familiar();
        assert!(familiar.starts_with("docker.io/"), "{input} -> {familiar}");
        let again = Reference::parse(&familiar).unwrap();
        assert_eq!(again.canonical(), r.canonical(), "{input}");
    }
    // Ordinary Docker Hub names still print short.
    assert_eq!(
        Reference::parse("docker.io/library/alpine")
            .unwrap()
            .familiar(),
        "alpine:latest"
    );
    assert_eq!(
        Reference::parse("myuser/app:1").unwrap().familiar(),
        "myuser/app:1"
    );
    assert_eq!(
        Reference::parse("myuser/a.b").unwrap().familiar(),
        "myuser/a.b:latest"
    );
}
