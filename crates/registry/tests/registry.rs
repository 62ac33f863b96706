//! berth-registry against a real registry (Debian's docker-registry, distribution 2.8).

mod common;

use berth_image::digest::Digest;
use berth_image::images::MAX_CONFIG_SIZE;
use berth_image::reference::Reference;
use berth_registry::{Credentials, Progress, Registry, RegistryConfig, RegistryError};
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn registry() -> Registry {
    Registry::new(RegistryConfig::default())
}

fn reference(reg: &TestRegistry, name: &str) -> Reference {
    Reference::parse(&format!("{}/{name}", reg.host())).unwrap()
}

fn read_blob(store: &berth_image::store::ContentStore, d: &Digest) -> Vec<u8> {
    store.read(d, u64::MAX).unwrap()
}

#[tokio::test]
async fn push_then_pull_round_trip() {
    let client = registry();
    let reg = TestRegistry::start();
    let (_d1, src) = new_store();
    let img = build_local_image(&src, b"round trip");
    let r = reference(&reg, "berth/roundtrip:v1");
    let events = Events::default();
    let pushed = client
        .push(
            &r,
            &Credentials::Anonymous,
            &src,
            &img.manifest,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert_eq!(pushed.size, img.manifest_bytes.len() as u64);
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerStart { .. })),
        1
    );
    assert_eq!(events.count(|p| matches!(p, Progress::LayerDone { .. })), 1);
    // The registry holds the exact bytes.
    let (served, ct) = get_manifest(&reg.url(), "berth/roundtrip", "v1").await;
    assert_eq!(served, img.manifest_bytes);
    assert_eq!(ct, OCI_MANIFEST);

    let (_d2, dst) = new_store();
    let events = Events::default();
    let pulled = client
        .pull(&r, &Credentials::Anonymous, &dst, &events.sink())
        .await
        .unwrap();
    assert_eq!(pulled.repo_digest, img.manifest);
    assert_eq!(pulled.manifest, img.manifest);
    assert_eq!(pulled.config, img.config);
    assert_eq!(read_blob(&dst, &img.manifest), img.manifest_bytes);
    assert_eq!(read_blob(&dst, &img.config), img.config_bytes);
    assert_eq!(read_blob(&dst, &img.layer), img.layer_bytes);
    let all = events.all();
    assert_eq!(
        all.iter()
            .filter(|p| matches!(p, Progress::Resolved { .. }))
            .count(),
        1
    );
    assert_eq!(
        all[0],
        Progress::Resolved {
            digest: img.manifest.clone()
        }
    );
    let id = img.layer.short().to_string();
    assert!(all.contains(&Progress::LayerStart {
        id: id.clone(),
        size: img.layer_bytes.len() as u64
    }));
    assert!(all.contains(&Progress::LayerDone { id }));

    // Pull by digest too.
    let by_digest =
        Reference::parse(&format!("{}/berth/roundtrip@{}", reg.host(), img.manifest)).unwrap();
    let (_d3, dst2) = new_store();
    let pulled = client
        .pull(&by_digest, &Credentials::Anonymous, &dst2, &|_| {})
        .await
        .unwrap();
    assert_eq!(pulled.repo_digest, img.manifest);
    assert_eq!(read_blob(&dst2, &img.layer), img.layer_bytes);
}

#[tokio::test]
async fn push_skips_layers_the_registry_has() {
    let reg = TestRegistry::start();
    let (_d, src) = new_store();
    let img = build_local_image(&src, b"dedup");
    let client = registry();
    let r1 = reference(&reg, "berth/dedup:one");
    client
        .push(&r1, &Credentials::Anonymous, &src, &img.manifest, &|_| {})
        .await
        .unwrap();
    // Same image again, to another tag: nothing is uploaded.
    let events = Events::default();
    let r2 = reference(&reg, "berth/dedup:two");
    let pushed = client
        .push(
            &r2,
            &Credentials::Anonymous,
            &src,
            &img.manifest,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(pushed.digest, img.manifest);
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerExists { .. })),
        1
    );
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerStart { .. })),
        0
    );
    let (served, _) = get_manifest(&reg.url(), "berth/dedup", "two").await;
    assert_eq!(served, img.manifest_bytes);
}

#[tokio::test]
async fn pull_skips_blobs_already_in_the_store() {
    let client = registry();
    let reg = TestRegistry::start();
    let (_d, src) = new_store();
    let img = build_local_image(&src, b"local");
    let r = reference(&reg, "berth/local:1");
    client
        .push(&r, &Credentials::Anonymous, &src, &img.manifest, &|_| {})
        .await
        .unwrap();
    let (_d2, dst) = new_store();
    dst.put(&img.layer_bytes).unwrap();
    let events = Events::default();
    client
        .pull(&r, &Credentials::Anonymous, &dst, &events.sink())
        .await
        .unwrap();
    let id = img.layer.short().to_string();
    assert!(events.all().contains(&Progress::LayerExists { id }));
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerStart { .. })),
        0
    );
    assert_eq!(read_blob(&dst, &img.manifest), img.manifest_bytes);
}

/// Publishes a wasi/wasm image, a linux/amd64 image and an attestation manifest, and an index
/// of the three; returns (index digest, wasm manifest digest, linux layer bytes).
async fn publish_mixed_index(reg: &TestRegistry, repo: &str) -> (Digest, Digest, Vec<u8>) {
    let base = reg.url();
    let wasm_layer = tar_gz("app.wasm", &wasm_bytes(false));
    let wasm_config = config_json("wasi", "wasm", &[]);
    let (wasm_digest, wasm_manifest) = publish_image(
        &base,
        repo,
        "wasm-only",
        Some(OCI_MANIFEST),
        (OCI_CONFIG, &wasm_config),
        &[(OCI_LAYER_GZIP, &wasm_layer)],
    )
    .await;
    let linux_layer = tar_gz("bin/sh", b"\x7fELF not really");
    let linux_config = config_json("linux", "amd64", &[]);
    let (linux_digest, linux_manifest) = publish_image(
        &base,
        repo,
        "linux-only",
        Some(OCI_MANIFEST),
        (OCI_CONFIG, &linux_config),
        &[(OCI_LAYER_GZIP, &linux_layer)],
    )
    .await;
    let att_layer = br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#.to_vec();
    let att_config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let (att_digest, att_manifest) = publish_image(
        &base,
        repo,
        "att",
        Some(OCI_MANIFEST),
        (OCI_CONFIG, &att_config),
        &[("application/vnd.in-toto+json", &att_layer)],
    )
    .await;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": linux_digest.to_string(), "size": linux_manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": att_digest.to_string(), "size": att_manifest.len(),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": wasm_digest.to_string()}},
            {"mediaType": OCI_MANIFEST, "digest": wasm_digest.to_string(), "size": wasm_manifest.len(),
             "platform": {"architecture": "wasm", "os": "wasi"}},
        ],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = put_manifest(&base, repo, "multi", OCI_INDEX, &index_bytes).await;
    (index_digest, wasm_digest, linux_layer)
}

#[tokio::test]
async fn pull_of_an_index_picks_the_wasm_entry() {
    let client = registry();
    let reg = TestRegistry::start();
    let (index_digest, wasm_digest, linux_layer) = publish_mixed_index(&reg, "berth/multi").await;
    let (_d, store) = new_store();
    let events = Events::default();
    let pulled = client
        .pull(
            &reference(&reg, "berth/multi:multi"),
            &Credentials::Anonymous,
            &store,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(pulled.repo_digest, index_digest);
    assert_eq!(pulled.manifest, wasm_digest);
    assert!(store.contains(&wasm_digest));
    assert!(!store.contains(&index_digest));
    assert!(!store.contains(&Digest::sha256_of(&linux_layer)));
    assert_eq!(
        events.all()[0],
        Progress::Resolved {
            digest: index_digest.clone()
        }
    );
    // And by the index digest.
    let (_d, store) = new_store();
    let r = Reference::parse(&format!("{}/berth/multi@{index_digest}", reg.host())).unwrap();
    let pulled = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap();
    assert_eq!(pulled.manifest, wasm_digest);
}

#[tokio::test]
async fn nested_index_is_followed_one_level() {
    let client = registry();
    let reg = TestRegistry::start();
    let (inner_digest, wasm_digest, _) = publish_mixed_index(&reg, "berth/nested").await;
    let (inner, _) = get_manifest(&reg.url(), "berth/nested", "multi").await;
    let outer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_INDEX, "digest": inner_digest.to_string(), "size": inner.len()},
        ],
    });
    let outer_bytes = serde_json::to_vec(&outer).unwrap();
    let outer_digest =
        put_manifest(&reg.url(), "berth/nested", "outer", OCI_INDEX, &outer_bytes).await;
    let (_d, store) = new_store();
    let pulled = client
        .pull(
            &reference(&reg, "berth/nested:outer"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pulled.repo_digest, outer_digest);
    assert_eq!(pulled.manifest, wasm_digest);

    // Two levels of nesting are refused.
    let outer2 = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_INDEX, "digest": outer_digest.to_string(), "size": outer_bytes.len()},
        ],
    });
    put_manifest(
        &reg.url(),
        "berth/nested",
        "outer2",
        OCI_INDEX,
        &serde_json::to_vec(&outer2).unwrap(),
    )
    .await;
    let (_d, store) = new_store();
    let err = client
        .pull(
            &reference(&reg, "berth/nested:outer2"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
}

#[tokio::test]
async fn index_without_wasm_is_not_wasm() {
    let client = registry();
    let reg = TestRegistry::start();
    let base = reg.url();
    let repo = "berth/linux";
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = tar_gz("bin/sh", arch.as_bytes());
        let config = config_json("linux", arch, &[]);
        let (d, m) = publish_image(
            &base,
            repo,
            arch,
            Some(OCI_MANIFEST),
            (OCI_CONFIG, &config),
            &[(OCI_LAYER_GZIP, &layer)],
        )
        .await;
        entries.push(serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    put_manifest(
        &base,
        repo,
        "latest",
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
    let (_d, store) = new_store();
    let r = reference(&reg, "berth/linux");
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    match &err {
        RegistryError::NotWasm { platforms, .. } => {
            assert_eq!(
                platforms,
                &vec!["linux/amd64".to_string(), "linux/arm64".to_string()]
            );
        }
        other => panic!("expected NotWasm, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "{}/berth/linux:latest is not a Wasm image: it has no wasm/wasi platform (found linux/amd64, linux/arm64)",
            reg.host()
        )
    );

    // A single linux manifest: found out from its config.
    let (_d, store) = new_store();
    let err = client
        .pull(
            &reference(&reg, "berth/linux:amd64"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::NotWasm { platforms, .. } if platforms == &vec!["linux/amd64".to_string()]),
        "{err:?}"
    );
}

#[tokio::test]
async fn pulls_docker_v2_and_manifests_without_media_type() {
    let client = registry();
    let reg = TestRegistry::start();
    let base = reg.url();
    let layer = tar_gz("app.wasm", &wasm_bytes(false));
    let config = config_json("wasi", "wasm32", &[]);
    let (docker_digest, _) = publish_image(
        &base,
        "berth/docker",
        "v2",
        Some(DOCKER_MANIFEST),
        (DOCKER_CONFIG, &config),
        &[(DOCKER_LAYER_GZIP, &layer)],
    )
    .await;
    let (_d, store) = new_store();
    let pulled = client
        .pull(
            &reference(&reg, "berth/docker:v2"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pulled.manifest, docker_digest);
    assert_eq!(read_blob(&store, &Digest::sha256_of(&layer)), layer);

    // No mediaType, and an in-toto layer that is listed but not downloaded.
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1"}"#.to_vec();
    let (bare_digest, bare_bytes) = publish_image(
        &base,
        "berth/bare",
        "v1",
        None,
        (OCI_CONFIG, &config),
        &[
            (OCI_LAYER_GZIP, &layer),
            ("application/vnd.in-toto+json", &statement),
        ],
    )
    .await;
    let (_d, store) = new_store();
    let pulled = client
        .pull(
            &reference(&reg, "berth/bare:v1"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pulled.manifest, bare_digest);
    assert_eq!(read_blob(&store, &bare_digest), bare_bytes);
    assert_eq!(read_blob(&store, &Digest::sha256_of(&layer)), layer);
    assert!(!store.contains(&Digest::sha256_of(&statement)));
}

#[tokio::test]
async fn unreachable_registry_is_a_transport_error() {
    let client = registry();
    let port = free_port();
    let r = Reference::parse(&format!("127.0.0.1:{port}/berth/none:1")).unwrap();
    let (_d, store) = new_store();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    let err = client
        .login(&format!("127.0.0.1:{port}"), "u", "p")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn wasm_artifact_push_then_pull() {
    let client = registry();
    let reg = TestRegistry::start();
    let r = reference(&reg, "berth/artifact:1.0");
    let wasm = wasm_bytes(true);
    let events = Events::default();
    let pushed = client
        .push_wasm_artifact(
            &r,
            &Credentials::Anonymous,
            &wasm,
            "/some/dir/hello.wasm",
            true,
            &events.sink(),
        )
        .await
        .unwrap();
    assert_eq!(
        events.count(|p| matches!(p, Progress::LayerStart { .. })),
        1
    );
    let (bytes, ct) = get_manifest(&reg.url(), "berth/artifact", "1.0").await;
    assert_eq!(ct, OCI_MANIFEST);
    assert_eq!(Digest::sha256_of(&bytes), pushed.digest);
    assert_eq!(bytes.len() as u64, pushed.size);
    let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    // Canonical JSON: re-serialising the parsed value (sorted keys, compact) gives the same bytes.
    assert_eq!(serde_json::to_vec(&m).unwrap(), bytes);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "hello.wasm"
    );
    assert!(m.get("artifactType").is_none());

    let (_d, store) = new_store();
    let pulled = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap();
    assert_eq!(pulled.manifest, pushed.digest);
    let layer_digest = Digest::sha256_of(&wasm);
    assert_eq!(read_blob(&store, &layer_digest), wasm);
    let config: serde_json::Value =
        serde_json::from_slice(&store.read(&pulled.config, MAX_CONFIG_SIZE).unwrap()).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert!(config["author"].is_null());
    assert_eq!(config["layerDigests"][0], layer_digest.to_string());
    assert_eq!(config["component"]["exports"], serde_json::json!([]));
    assert_eq!(config["component"]["imports"], serde_json::json!([]));
    assert!(config["created"].as_str().unwrap().ends_with('Z'));

    // A module: wasip1, component null; the layer is already there.
    let events = Events::default();
    let r2 = reference(&reg, "berth/artifact:module");
    client
        .push_wasm_artifact(
            &r2,
            &Credentials::Anonymous,
            &wasm_bytes(false),
            "m.wasm",
            false,
            &events.sink(),
        )
        .await
        .unwrap();
    let (_d, store) = new_store();
    let pulled = client
        .pull(&r2, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&store.read(&pulled.config, MAX_CONFIG_SIZE).unwrap()).unwrap();
    assert_eq!(config["os"], "wasip1");
    assert!(config["component"].is_null());

    // Not Wasm at all.
    let err = client
        .push_wasm_artifact(&r2, &Credentials::Anonymous, b"MZ", "x.exe", false, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn missing_tags_and_repositories_are_not_found() {
    let client = registry();
    let reg = TestRegistry::start();
    let (_d, store) = new_store();
    let err = client
        .pull(
            &reference(&reg, "berth/nothing:here"),
            &Credentials::Anonymous,
            &store,
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let r = Reference::parse(&format!(
        "{}/berth/nothing@{}",
        reg.host(),
        Digest::sha256_of(b"nope")
    ))
    .unwrap();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn corrupted_blobs_and_manifests_are_refused() {
    let client = registry();
    let reg = TestRegistry::start();
    let (_d, src) = new_store();
    let img = build_local_image(&src, b"to be corrupted");
    let r = reference(&reg, "berth/corrupt:1");
    client
        .push(&r, &Credentials::Anonymous, &src, &img.manifest, &|_| {})
        .await
        .unwrap();

    // Same size, different bytes: the digest check catches it, nothing is stored.
    let path = reg.blob_data_path(&img.layer);
    let mut evil = img.layer_bytes.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    std::fs::write(&path, &evil).unwrap();
    let (_d, store) = new_store();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == img.layer),
        "{err:?}"
    );
    assert!(!store.contains(&img.layer));
    assert!(!store.contains(&img.manifest));
    assert_eq!(
        std::fs::read_dir(_d.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );

    // Longer than the descriptor says.
    let mut longer = img.layer_bytes.clone();
    longer.extend_from_slice(b"trailing junk");
    std::fs::write(&path, &longer).unwrap();
    let (_d, store) = new_store();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");
    assert!(!store.contains(&img.layer));

    // A manifest fetched by digest must hash to that digest.
    std::fs::write(&path, &img.layer_bytes).unwrap();
    let mpath = reg.blob_data_path(&img.manifest);
    let mut tampered = img.manifest_bytes.clone();
    tampered.push(b'\n');
    std::fs::write(&mpath, &tampered).unwrap();
    let by_digest =
        Reference::parse(&format!("{}/berth/corrupt@{}", reg.host(), img.manifest)).unwrap();
    let (_d, store) = new_store();
    let err = client
        .pull(&by_digest, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == img.manifest),
        "{err:?}"
    );
}

#[tokio::test]
async fn login_checks_credentials() {
    let reg = TestRegistry::start_with_auth("user", "pass");
    let client = registry();
    client.login(&reg.host(), "user", "pass").await.unwrap();
    let err = client
        .login(&reg.host(), "user", "wrong")
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    let err = client
        .login(&reg.host(), "nobody", "pass")
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    // A registry without authentication accepts anyone.
    let open = TestRegistry::start();
    client.login(&open.host(), "x", "y").await.unwrap();
}

#[tokio::test]
async fn authenticated_registry_push_and_pull() {
    let reg = TestRegistry::start_with_auth("user", "pass");
    let (_d, src) = new_store();
    let img = build_local_image(&src, b"private");
    let r = reference(&reg, "private/app:1");
    let client = registry();

    let err = client
        .push(&r, &Credentials::Anonymous, &src, &img.manifest, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    let bad = Credentials::Basic {
        username: "user".into(),
        password: "wrong".into(),
    };
    let err = client
        .push(&r, &bad, &src, &img.manifest, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");

    let good = Credentials::Basic {
        username: "user".into(),
        password: "pass".into(),
    };
    client
        .push(&r, &good, &src, &img.manifest, &|_| {})
        .await
        .unwrap();

    let (_d, store) = new_store();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    let pulled = client.pull(&r, &good, &store, &|_| {}).await.unwrap();
    assert_eq!(pulled.manifest, img.manifest);
    assert_eq!(read_blob(&store, &img.layer), img.layer_bytes);
    // The anonymous client did not poison the authenticated one, nor the reverse.
    let (_d, store) = new_store();
    let err = client
        .pull(&r, &Credentials::Anonymous, &store, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
}

/// A TCP proxy in front of the registry that cuts the first connection whose response carries
/// more than `cut_after` bytes, and remembers whether a `Range` header went through.
struct FlakyProxy {
    port: u16,
    cuts: Arc<AtomicUsize>,
    saw_range: Arc<AtomicBool>,
}

async fn flaky_proxy(
    upstream: u16,
    cut_after: usize,
    max_cuts: usize,
    strip_range: bool,
) -> FlakyProxy {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cuts = Arc::new(AtomicUsize::new(0));
    let saw_range = Arc::new(AtomicBool::new(false));
    let (c, s) = (cuts.clone(), saw_range.clone());
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let (cuts, saw_range) = (c.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut data = buf[..n].to_vec();
                        let lower = String::from_utf8_lossy(&data).to_ascii_lowercase();
                        if let Some(at) = lower.find("\r\nrange: bytes=") {
                            saw_range.store(true, Ordering::SeqCst);
                            if strip_range {
                                // Play a registry that ignores Range: drop the header line.
                                let end = lower[at + 2..].find("\r\n").map_or(n, |e| at + 2 + e);
                                data.drain(at..end);
                            }
                        }
                        if sw.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 16 * 1024];
                let mut total = 0usize;
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let cut = total + n > cut_after && cuts.load(Ordering::SeqCst) < max_cuts;
                    if cut {
                        cuts.fetch_add(1, Ordering::SeqCst);
                        let keep = cut_after.saturating_sub(total);
                        let _ = cw.write_all(&buf[..keep]).await;
                        break;
                    }
                    total += n;
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
                let _ = cw.shutdown().await;
            });
        }
    });
    FlakyProxy {
        port,
        cuts,
        saw_range,
    }
}

#[tokio::test]
async fn dropped_connections_are_retried_and_resumed_with_range() {
    let client = registry();
    let reg = TestRegistry::start();
    let (_d, src) = new_store();
    // A big, incompressible layer: 4 MiB of pseudo-random bytes.
    let mut payload = vec![0u8; 4 * 1024 * 1024];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in payload.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let img = build_local_image(&src, &payload);
    assert!(img.layer_bytes.len() > 4 * 1024 * 1024);
    let direct = reference(&reg, "berth/big:1");
    client
        .push(
            &direct,
            &Credentials::Anonymous,
            &src,
            &img.manifest,
            &|_| {},
        )
        .await
        .unwrap();

    let proxy = flaky_proxy(reg.port, 1024 * 1024, 1, false).await;
    let via_proxy = Reference::parse(&format!("127.0.0.1:{}/berth/big:1", proxy.port)).unwrap();
    let (_d, store) = new_store();
    let events = Events::default();
    let pulled = client
        .pull(&via_proxy, &Credentials::Anonymous, &store, &events.sink())
        .await
        .unwrap();
    assert_eq!(pulled.manifest, img.manifest);
    assert_eq!(read_blob(&store, &img.layer), img.layer_bytes);
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    assert!(
        proxy.saw_range.load(Ordering::SeqCst),
        "no Range request was made"
    );
    let retries: Vec<Progress> = events
        .all()
        .into_iter()
        .filter(|p| matches!(p, Progress::Retrying { .. }))
        .collect();
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(
        matches!(&retries[0], Progress::Retrying { id, attempt: 2, .. } if *id == img.layer.short())
    );
    // Progress is bounded: at most one event per 512 KiB.
    let progress_events = events.count(|p| matches!(p, Progress::LayerProgress { .. }));
    assert!(progress_events >= 2, "{progress_events}");
    assert!(progress_events as u64 <= img.layer_bytes.len() as u64 / (512 * 1024) + 1);

    // A registry that ignores Range: the download starts over, and still verifies.
    let proxy = flaky_proxy(reg.port, 1024 * 1024, 1, true).await;
    let via_proxy = Reference::parse(&format!("127.0.0.1:{}/berth/big:1", proxy.port)).unwrap();
    let (_d, store) = new_store();
    let events = Events::default();
    client
        .pull(&via_proxy, &Credentials::Anonymous, &store, &events.sink())
        .await
        .unwrap();
    assert_eq!(read_blob(&store, &img.layer), img.layer_bytes);
    assert!(proxy.saw_range.load(Ordering::SeqCst));
    assert_eq!(events.count(|p| matches!(p, Progress::Retrying { .. })), 1);

    // A connection that keeps dropping: three attempts, then a transport error.
    let proxy = flaky_proxy(reg.port, 1024 * 1024, usize::MAX, false).await;
    let via_proxy = Reference::parse(&format!("127.0.0.1:{}/berth/big:1", proxy.port)).unwrap();
    let (_d, store) = new_store();
    let events = Events::default();
    let err = client
        .pull(&via_proxy, &Credentials::Anonymous, &store, &events.sink())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert_eq!(events.count(|p| matches!(p, Progress::Retrying { .. })), 2);
    assert!(!store.contains(&img.layer));
}
