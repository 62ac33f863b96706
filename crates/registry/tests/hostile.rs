//! Hostile registries: a lying proxy (`common::liar`) in front of a real `docker-registry`
//! rewrites answers, and every lie must be refused with an error that names it, store nothing,
//! and end in bounded time; the real registry keeps answering.

mod common;

use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_image::store::ContentStore;
use berth_registry::{Credentials, Pulled, Registry, RegistryConfig, RegistryError};
use common::liar::{Liar, Lie};
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const REPO: &str = "berth/app";
/// A hang guard, not a timing assertion.
const BOUND: Duration = Duration::from_secs(20);

/// A real registry holding one pushed image, and a liar in front of it.
struct Scene {
    reg: TestRegistry,
    liar: Liar,
    img: LocalImage,
    _src: tempfile::TempDir,
}

impl Scene {
    async fn new() -> Scene {
        Self::with_registry(TestRegistry::start(), &Credentials::Anonymous).await
    }

    async fn with_registry(reg: TestRegistry, creds: &Credentials) -> Scene {
        let (src_dir, src) = new_store();
        let img = build_local_image(&src, b"the real thing");
        let direct = Reference::parse(&format!("{}/{REPO}:1", reg.host())).unwrap();
        Registry::new(RegistryConfig::default())
            .push(&direct, creds, &src, &img.manifest, &|_| {})
            .await
            .unwrap();
        let liar = Liar::start(reg.port).await;
        Scene {
            reg,
            liar,
            img,
            _src: src_dir,
        }
    }

    /// `<liar>/berth/app:1` (or `@digest`).
    fn via_liar(&self, tag_or_digest: &str) -> Reference {
        let sep = if tag_or_digest.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        Reference::parse(&format!("{}/{REPO}{sep}{tag_or_digest}", self.liar.host())).unwrap()
    }

    fn blob_path(&self, d: &Digest) -> String {
        format!("/v2/{REPO}/blobs/{d}")
    }

    fn manifest_path(&self, target: &str) -> String {
        format!("/v2/{REPO}/manifests/{target}")
    }

    /// The real registry still serves the image, directly.
    async fn assert_registry_still_answers(&self, creds: &Credentials) {
        let direct = Reference::parse(&format!("{}/{REPO}:1", self.reg.host())).unwrap();
        let (_d, store) = new_store();
        let pulled = tokio::time::timeout(
            BOUND,
            Registry::new(RegistryConfig::default()).pull(&direct, creds, &store, &|_| {}),
        )
        .await
        .expect("the direct pull hung")
        .unwrap();
        assert_eq!(pulled.manifest, self.img.manifest);
    }
}

/// Pulls with `client` into a fresh store; fails the test if it takes longer than [`BOUND`].
async fn pull(
    client: &Registry,
    reference: &Reference,
    creds: &Credentials,
) -> (
    Result<Pulled, RegistryError>,
    tempfile::TempDir,
    ContentStore,
) {
    let (dir, store) = new_store();
    let started = Instant::now();
    let result = tokio::time::timeout(BOUND, client.pull(reference, creds, &store, &|_| {}))
        .await
        .unwrap_or_else(|_| panic!("the pull of {reference} did not end within {BOUND:?}"));
    eprintln!(
        "pull of {reference}: {:?} in {:?}",
        result,
        started.elapsed()
    );
    (result, dir, store)
}

/// Nothing committed, nothing left in the ingest directory.
fn assert_nothing_stored(dir: &Path) {
    let blobs: Vec<_> = std::fs::read_dir(dir.join("content/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(blobs.is_empty(), "blobs were stored: {blobs:?}");
    let ingest: Vec<_> = std::fs::read_dir(dir.join("content/ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(ingest.is_empty(), "ingest files were left: {ingest:?}");
}

fn client() -> Registry {
    Registry::new(RegistryConfig::default())
}

/// A client whose stall timeout is 2 s.
fn impatient_client() -> Registry {
    Registry::with_stall_timeout(RegistryConfig::default(), Duration::from_secs(2))
}

fn message(err: &RegistryError) -> String {
    err.to_string()
}

#[tokio::test]
async fn blob_whose_bytes_differ_from_its_digest_is_refused() {
    let s = Scene::new().await;
    let mut evil = s.img.layer_bytes.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    s.liar.lie(
        &s.blob_path(&s.img.layer),
        Lie::Body {
            body: evil,
            chunked: false,
        },
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == s.img.layer),
        "{err:?}"
    );
    assert!(message(&err).contains("digest mismatch"), "{err}");
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn manifest_that_differs_from_the_requested_digest_is_refused() {
    let s = Scene::new().await;
    let mut tampered = s.img.manifest_bytes.clone();
    tampered.push(b'\n');
    s.liar.lie(
        &s.manifest_path(s.img.manifest.as_str()),
        Lie::Body {
            body: tampered,
            chunked: false,
        },
    );
    let (res, dir, _) = pull(
        &client(),
        &s.via_liar(s.img.manifest.as_str()),
        &Credentials::Anonymous,
    )
    .await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == s.img.manifest),
        "{err:?}"
    );
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn wrong_docker_content_digest_headers_are_refused() {
    let s = Scene::new().await;
    let liar_digest = Digest::sha256_of(b"something else");

    // On the manifest of a tag (the body itself is right).
    s.liar.lie(
        &s.manifest_path("1"),
        Lie::Header("docker-content-digest", liar_digest.to_string()),
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("Docker-Content-Digest"), "{err}");
    assert!(message(&err).contains(liar_digest.as_str()), "{err}");
    assert_nothing_stored(dir.path());

    // On a blob (the body itself is right).
    s.liar.reform();
    s.liar.lie(
        &s.blob_path(&s.img.layer),
        Lie::Header("docker-content-digest", liar_digest.to_string()),
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("Docker-Content-Digest"), "{err}");
    assert!(message(&err).contains(liar_digest.as_str()), "{err}");
    assert_nothing_stored(dir.path());

    // The honest proxy works: the lies were what failed.
    s.liar.reform();
    let (res, _dir, store) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    assert_eq!(res.unwrap().manifest, s.img.manifest);
    assert!(store.contains(&s.img.layer));
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn blob_longer_or_shorter_than_declared_is_refused() {
    let s = Scene::new().await;
    let size = s.img.layer_bytes.len() as u64;
    let mut longer = s.img.layer_bytes.clone();
    longer.extend_from_slice(b"trailing junk");
    let shorter = s.img.layer_bytes[..s.img.layer_bytes.len() - 7].to_vec();
    for (body, chunked, actual) in [
        (longer.clone(), false, longer.len() as u64),
        (longer.clone(), true, longer.len() as u64),
        (shorter.clone(), false, shorter.len() as u64),
        (shorter.clone(), true, shorter.len() as u64),
    ] {
        s.liar.reform();
        s.liar
            .lie(&s.blob_path(&s.img.layer), Lie::Body { body, chunked });
        let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
        let err = res.unwrap_err();
        assert!(
            matches!(
                &err,
                RegistryError::SizeMismatch { digest, expected, actual: a, .. }
                    if *digest == s.img.layer && *expected == size && *a == actual
            ),
            "chunked={chunked} actual={actual}: {err:?}"
        );
        assert!(message(&err).contains("size mismatch"), "{err}");
        assert_nothing_stored(dir.path());
    }
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn absurd_declared_sizes_are_refused_before_any_download() {
    let s = Scene::new().await;
    let absurd: u64 = 1 << 62;
    let mut manifest: serde_json::Value = serde_json::from_slice(&s.img.manifest_bytes).unwrap();
    manifest["layers"][0]["size"] = absurd.into();
    s.liar.lie(
        &s.manifest_path("1"),
        Lie::Serve {
            content_type: OCI_MANIFEST.into(),
            body: serde_json::to_vec(&manifest).unwrap(),
            chunked: false,
        },
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::TooLarge { what, size, .. } if what == "layer" && *size == absurd),
        "{err:?}"
    );
    assert!(message(&err).contains("too large"), "{err}");
    assert_eq!(s.liar.hits(&s.blob_path(&s.img.layer)), 0);
    assert_nothing_stored(dir.path());

    // The same for the config.
    let mut manifest: serde_json::Value = serde_json::from_slice(&s.img.manifest_bytes).unwrap();
    manifest["config"]["size"] = absurd.into();
    s.liar.reform();
    s.liar.lie(
        &s.manifest_path("1"),
        Lie::Serve {
            content_type: OCI_MANIFEST.into(),
            body: serde_json::to_vec(&manifest).unwrap(),
            chunked: false,
        },
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::TooLarge { what, .. } if what == "config"),
        "{err:?}"
    );
    assert_eq!(s.liar.hits(&s.blob_path(&s.img.config)), 0);
    assert_nothing_stored(dir.path());

    // And for an index entry.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": s.img.manifest.to_string(),
            "size": absurd,
            "platform": {"os": "wasip1", "architecture": "wasm"},
        }],
    });
    s.liar.reform();
    s.liar.lie(
        &s.manifest_path("1"),
        Lie::Serve {
            content_type: OCI_INDEX.into(),
            body: serde_json::to_vec(&index).unwrap(),
            chunked: false,
        },
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::TooLarge { what, .. } if what == "manifest"),
        "{err:?}"
    );
    assert_eq!(s.liar.hits(&s.manifest_path(s.img.manifest.as_str())), 0);
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn truncated_body_is_retried_then_refused() {
    let s = Scene::new().await;
    let half = s.img.layer_bytes.len() / 2;
    s.liar.lie(&s.blob_path(&s.img.layer), Lie::Truncate(half));
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(message(&err).contains("cut short"), "{err}");
    assert!(message(&err).contains("after 3 attempts"), "{err}");
    assert_eq!(s.liar.hits(&s.blob_path(&s.img.layer)), 3);
    assert_nothing_stored(dir.path());

    // A truncated manifest too.
    s.liar.reform();
    s.liar.lie(&s.manifest_path("1"), Lie::Truncate(10));
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(message(&err).contains("after 3 attempts"), "{err}");
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn endless_bodies_are_cut_at_the_declared_size_or_the_limit() {
    let s = Scene::new().await;
    s.liar.lie(&s.blob_path(&s.img.layer), Lie::Endless);
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::SizeMismatch { digest, .. } if *digest == s.img.layer),
        "{err:?}"
    );
    assert_nothing_stored(dir.path());

    s.liar.reform();
    s.liar.lie(&s.manifest_path("1"), Lie::Endless);
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(
        matches!(&err, RegistryError::TooLarge { what, limit, size, .. }
            if what == "manifest" && *limit == 4 * 1024 * 1024 && *size <= limit + 1024 * 1024),
        "{err:?}"
    );
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn a_blob_at_one_byte_per_second_stalls_out() {
    let s = Scene::new().await;
    s.liar.lie(&s.blob_path(&s.img.layer), Lie::Slow);
    let started = Instant::now();
    let (res, dir, _) = pull(
        &impatient_client(),
        &s.via_liar("1"),
        &Credentials::Anonymous,
    )
    .await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(message(&err).contains("stalled"), "{err}");
    // Three attempts of about 2 s each, and the pauses between them.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn a_manifest_at_one_byte_per_second_stalls_out() {
    let s = Scene::new().await;
    s.liar.lie(&s.manifest_path("1"), Lie::Slow);
    let (res, dir, _) = pull(
        &impatient_client(),
        &s.via_liar("1"),
        &Credentials::Anonymous,
    )
    .await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(message(&err).contains("stalled"), "{err}");
    assert!(message(&err).contains("after 3 attempts"), "{err}");
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn a_registry_that_never_answers_stalls_out() {
    let s = Scene::new().await;
    // No answer at all (not even a status line).
    s.liar.lie(&s.manifest_path("1"), Lie::Hang);
    let (res, dir, _) = pull(
        &impatient_client(),
        &s.via_liar("1"),
        &Credentials::Anonymous,
    )
    .await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(message(&err).contains("after 3 attempts"), "{err}");
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn redirect_loops_are_bounded() {
    let s = Scene::new().await;
    s.liar.lie(&s.manifest_path("1"), Lie::RedirectLoop);
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("too many redirects"), "{err}");
    // The first request and five redirects, once: a policy error is not retried.
    assert_eq!(
        s.liar.hits(&s.manifest_path("1")),
        1 + berth_registry::MAX_REDIRECTS
    );
    assert_nothing_stored(dir.path());

    s.liar.reform();
    s.liar.lie(&s.blob_path(&s.img.layer), Lie::RedirectLoop);
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("too many redirects"), "{err}");
    assert_eq!(
        s.liar.hits(&s.blob_path(&s.img.layer)),
        1 + berth_registry::MAX_REDIRECTS
    );
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn redirects_to_another_host_never_carry_authorization() {
    let creds = Credentials::Basic {
        username: "user".into(),
        password: "pass".into(),
    };
    let s = Scene::with_registry(TestRegistry::start_with_auth("user", "pass"), &creds).await;
    // "Another host": another origin (same address, other port), as a CDN would be.
    let cdn = Liar::start_alone().await;
    cdn.lie(
        "/layer",
        Lie::Serve {
            content_type: "application/octet-stream".into(),
            body: s.img.layer_bytes.clone(),
            chunked: false,
        },
    );
    s.liar.lie(
        &s.blob_path(&s.img.layer),
        Lie::RedirectTo(format!("{}/layer", cdn.url())),
    );
    let (res, _dir, store) = pull(&client(), &s.via_liar("1"), &creds).await;
    assert_eq!(res.unwrap().manifest, s.img.manifest);
    assert!(store.contains(&s.img.layer));
    // The registry got the credentials, the other host did not.
    assert!(
        s.liar
            .seen()
            .iter()
            .any(|r| r.path.ends_with(&s.blob_path(&s.img.layer)) && r.authorization.is_some()),
        "{:?}",
        s.liar.seen()
    );
    let at_cdn = cdn.seen();
    assert_eq!(at_cdn.len(), 1, "{at_cdn:?}");
    assert!(
        at_cdn.iter().all(|r| r.authorization.is_none()),
        "{at_cdn:?}"
    );

    // Two hops: registry → other host → the same other host. reqwest would send the
    // registry's Authorization on the second hop (it compares each hop with the previous one
    // only); Berth refuses the hop.
    cdn.lie("/hop", Lie::RedirectTo(format!("{}/layer", cdn.url())));
    s.liar.reform();
    s.liar.lie(
        &s.blob_path(&s.img.layer),
        Lie::RedirectTo(format!("{}/hop", cdn.url())),
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &creds).await;
    let at_cdn = cdn.seen();
    assert!(
        at_cdn.iter().all(|r| r.authorization.is_none()),
        "{at_cdn:?}"
    );
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("credentials"), "{err}");
    assert_nothing_stored(dir.path());

    // The same for a manifest.
    s.liar.reform();
    s.liar.lie(
        &s.manifest_path("1"),
        Lie::RedirectTo(format!("{}/hop", cdn.url())),
    );
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &creds).await;
    let at_cdn = cdn.seen();
    assert!(
        at_cdn.iter().all(|r| r.authorization.is_none()),
        "{at_cdn:?}"
    );
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&creds).await;
}

#[tokio::test]
async fn huge_manifests_and_indexes_are_refused_while_reading() {
    let s = Scene::new().await;
    // 5 MiB of valid-looking JSON: an annotation that goes on and on.
    let huge = |media_type: &str| {
        let mut doc = serde_json::json!({"schemaVersion": 2, "mediaType": media_type});
        doc["annotations"] = serde_json::json!({"pad": "x".repeat(5 * 1024 * 1024)});
        serde_json::to_vec(&doc).unwrap()
    };
    for (media_type, chunked) in [
        (OCI_MANIFEST, false),
        (OCI_MANIFEST, true),
        (OCI_INDEX, false),
        (OCI_INDEX, true),
    ] {
        s.liar.reform();
        s.liar.lie(
            &s.manifest_path("1"),
            Lie::Serve {
                content_type: media_type.into(),
                body: huge(media_type),
                chunked,
            },
        );
        let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
        let err = res.unwrap_err();
        assert!(
            matches!(&err, RegistryError::TooLarge { limit, .. } if *limit == 4 * 1024 * 1024),
            "{media_type} chunked={chunked}: {err:?}"
        );
        assert_nothing_stored(dir.path());
    }
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}

#[tokio::test]
async fn deeply_nested_indexes_are_refused() {
    let s = Scene::new().await;
    // index 0 → index 1 → ... → index 7 → the real manifest, each served by the liar.
    let mut child = (
        OCI_MANIFEST.to_string(),
        s.img.manifest.clone(),
        s.img.manifest_bytes.len() as u64,
    );
    let mut top = Vec::new();
    for level in (0..8).rev() {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": child.0,
                "digest": child.1.to_string(),
                "size": child.2,
                "platform": {"os": "wasip1", "architecture": "wasm"},
            }],
        }))
        .unwrap();
        let digest = Digest::sha256_of(&index);
        let path = if level == 0 {
            s.manifest_path("1")
        } else {
            s.manifest_path(digest.as_str())
        };
        s.liar.lie(
            &path,
            Lie::Serve {
                content_type: OCI_INDEX.into(),
                body: index.clone(),
                chunked: false,
            },
        );
        child = (OCI_INDEX.to_string(), digest, index.len() as u64);
        top = index;
    }
    assert!(!top.is_empty());
    let (res, dir, _) = pull(&client(), &s.via_liar("1"), &Credentials::Anonymous).await;
    let err = res.unwrap_err();
    assert!(matches!(err, RegistryError::Protocol { .. }), "{err:?}");
    assert!(message(&err).contains("nested"), "{err}");
    // The tag and at most one nested index were fetched.
    let manifests = s
        .liar
        .seen()
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .count();
    assert!(manifests <= 3, "{:?}", s.liar.seen());
    assert_nothing_stored(dir.path());
    s.assert_registry_still_answers(&Credentials::Anonymous)
        .await;
}
