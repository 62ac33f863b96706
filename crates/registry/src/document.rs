//! Manifest and index documents as fetched from a registry: telling them apart safely, and
//! choosing the Wasm entry of an index.
//!
//! Everything here works on the exact bytes that were hashed (CVE-2014-8179): the caller
//! verifies the digest first and then parses *that* buffer.

use berth_image::images::{Manifest, media};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The four manifest media types Berth asks for (the `Accept` list of manifest requests).
pub(crate) const MANIFEST_TYPES: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

/// Annotation buildx puts on attestation manifests in an index.
pub(crate) const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
/// Its value for attestation manifests.
pub(crate) const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// Whether a media type is one of the two index types.
pub(crate) fn is_index_type(media_type: &str) -> bool {
    media_type == media::OCI_INDEX || media_type == media::DOCKER_MANIFEST_LIST
}

/// Whether a media type is one of the two image manifest types.
pub(crate) fn is_manifest_type(media_type: &str) -> bool {
    media_type == media::OCI_MANIFEST || media_type == media::DOCKER_MANIFEST
}

/// An OCI image index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    #[allow(dead_code)]
    pub schema_version: u32,
    pub manifests: Vec<IndexEntry>,
}

/// One entry of an index. The digest stays a string until the entry is chosen, so that an
/// entry with a digest Berth does not support (sha512) does not make the whole index fail.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexEntry {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]`, as Docker prints platforms.
    pub fn display(&self) -> String {
        match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// `wasm`/`wasm32` on `wasi`/`wasip1`/`wasip2`, compared case-insensitively (Spin's canary
    /// writes `Wasip1`).
    pub fn is_wasm(&self) -> bool {
        is_wasm_arch(&self.architecture)
            && matches!(
                self.os.to_ascii_lowercase().as_str(),
                "wasi" | "wasip1" | "wasip2"
            )
    }

    fn is_unknown(&self) -> bool {
        self.os.eq_ignore_ascii_case("unknown") && self.architecture.eq_ignore_ascii_case("unknown")
    }
}

/// Whether a config or platform `architecture` is Wasm (runwasi's rule, plus Docker's
/// `wasm32`).
pub(crate) fn is_wasm_arch(architecture: &str) -> bool {
    matches!(
        architecture.to_ascii_lowercase().as_str(),
        "wasm" | "wasm32"
    )
}

impl IndexEntry {
    fn is_attestation(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(REFERENCE_TYPE_ANNOTATION))
            .is_some_and(|v| v == ATTESTATION_MANIFEST)
    }
}

/// A fetched document, told apart by its content.
#[derive(Debug, Clone)]
pub(crate) enum Document {
    Index(Index),
    Manifest(Manifest),
}

/// The `Content-Type` without parameters, lowercased.
pub(crate) fn bare_content_type(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?;
    let bare = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!bare.is_empty()).then_some(bare)
}

/// Parses a manifest or index from the exact bytes that were verified.
///
/// - The document must be a JSON object with `schemaVersion` 2.
/// - A document with both `manifests` and `layers`/`config` is refused as ambiguous
///   (CVE-2021-41190).
/// - A `mediaType` field must be one of the four manifest types, must agree with the shape
///   of the document, and must equal the response `Content-Type` when that is a known manifest
///   type.
/// - Without a `mediaType`, the shape decides (`manifests` → index, `config` → manifest).
pub(crate) fn parse_document(bytes: &[u8], content_type: Option<&str>) -> Result<Document, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let Some(obj) = value.as_object() else {
        return Err("the manifest is not a JSON object".to_string());
    };
    match obj.get("schemaVersion").and_then(|v| v.as_u64()) {
        Some(2) => {}
        Some(1) => {
            return Err(
                "Docker image manifest schema 1 is not supported (deprecated since 2017); push the image again with a current client"
                    .to_string(),
            );
        }
        Some(v) => return Err(format!("unsupported manifest schemaVersion {v}")),
        None => return Err("the manifest has no schemaVersion".to_string()),
    }
    let has_manifests = obj.contains_key("manifests");
    let has_image_fields = obj.contains_key("layers") || obj.contains_key("config");
    if has_manifests && has_image_fields {
        return Err(
            "refusing an ambiguous document that has both \"manifests\" and \"layers\"/\"config\" (CVE-2021-41190)"
                .to_string(),
        );
    }
    let media_type = match obj.get("mediaType") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err("the manifest mediaType is not a string".to_string()),
    };
    if let Some(mt) = media_type {
        if !MANIFEST_TYPES.contains(&mt) {
            return Err(format!("unsupported manifest media type {mt:?}"));
        }
        if let Some(ct) = bare_content_type(content_type)
            && MANIFEST_TYPES.contains(&ct.as_str())
            && ct != mt
        {
            return Err(format!(
                "the manifest says mediaType {mt} but the registry sent Content-Type {ct}"
            ));
        }
        if is_index_type(mt) && !has_manifests {
            return Err(format!("a {mt} document without \"manifests\""));
        }
        if is_manifest_type(mt) && has_manifests {
            return Err(format!("a {mt} document with \"manifests\""));
        }
    }
    if has_manifests {
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image index: {e}"))?;
        Ok(Document::Index(index))
    } else if has_image_fields {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid image manifest: {e}"))?;
        Ok(Document::Manifest(manifest))
    } else {
        Err("the document is neither an image manifest nor an index".to_string())
    }
}

/// The outcome of looking for the Wasm entry of an index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Selection<'a> {
    /// An entry whose platform is wasm/wasi.
    Wasm(&'a IndexEntry),
    /// No entry has a Wasm platform, but this one has no platform at all (a nested index, or a
    /// manifest whose config will say what it is).
    Unlabelled(&'a IndexEntry),
    /// No candidate: the platforms found (attestations and `unknown/unknown` left out).
    None(Vec<String>),
}

impl PartialEq for IndexEntry {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest && self.media_type == other.media_type
    }
}
impl Eq for IndexEntry {}

/// Chooses the Wasm entry of an index: the first entry whose platform is wasm/wasi, skipping
/// attestation manifests and `unknown/unknown`; failing that the first entry without a
/// platform; failing that, the list of platforms for the `NotWasm` error.
pub(crate) fn select_wasm(index: &Index) -> Selection<'_> {
    let candidates = || {
        index.manifests.iter().filter(|e| {
            !e.is_attestation() && !e.platform.as_ref().is_some_and(Platform::is_unknown)
        })
    };
    if let Some(e) = candidates().find(|e| e.platform.as_ref().is_some_and(Platform::is_wasm)) {
        return Selection::Wasm(e);
    }
    if let Some(e) = candidates().find(|e| e.platform.is_none()) {
        return Selection::Unlabelled(e);
    }
    Selection::None(
        candidates()
            .filter_map(|e| e.platform.as_ref().map(Platform::display))
            .collect(),
    )
}

/// Config media types Berth accepts.
pub(crate) fn is_supported_config(media_type: &str) -> bool {
    matches!(
        media_type,
        media::OCI_CONFIG | media::DOCKER_CONFIG | media::WASM_CONFIG_V0 | WASM_CONFIG_V1
    )
}

/// wasm-to-oci's (and Krustlet's) config type: its content is `{}`.
pub(crate) const WASM_CONFIG_V1: &str = "application/vnd.wasm.config.v1+json";

/// Layer media types Berth downloads: filesystem tarballs (plain, gzip, zstd, and the
/// non-distributable variants, fetched from the registry itself, never from `urls`) and raw
/// Wasm. Anything else (in-toto attestations, Spin data layers, ...) stays listed in the stored
/// manifest but is not downloaded.
pub(crate) fn is_wanted_layer(media_type: &str) -> bool {
    media::is_tar_layer(media_type)
        || media::is_wasm_layer(media_type)
        || media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
}

/// The `architecture` and `os` of a config blob, for the Wasm check. Every config type Berth
/// accepts has these fields or none at all (wasm-to-oci's `{}`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigPlatform {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

/// Checks that a config describes a Wasm image. `Ok(())` when it is, `Err(platforms)` with the
/// config's `os/architecture` otherwise.
///
/// OCI and Docker configs must say `architecture` `wasm` or `wasm32`. The Wasm config types are
/// Wasm by definition: an `architecture`, if present, must still be Wasm.
pub(crate) fn check_wasm_config(
    media_type: &str,
    bytes: &[u8],
) -> Result<(), Result<Vec<String>, String>> {
    let platform: ConfigPlatform =
        if media_type == WASM_CONFIG_V1 && bytes.iter().all(u8::is_ascii_whitespace) {
            ConfigPlatform::default()
        } else {
            serde_json::from_slice(bytes).map_err(|e| Err(format!("invalid image config: {e}")))?
        };
    let arch = platform.architecture.unwrap_or_default();
    let os = platform.os.unwrap_or_default();
    let is_wasm_type = media_type == media::WASM_CONFIG_V0 || media_type == WASM_CONFIG_V1;
    if is_wasm_arch(&arch) || (is_wasm_type && arch.is_empty()) {
        Ok(())
    } else {
        let or_unknown = |s: String| {
            if s.is_empty() {
                "unknown".to_string()
            } else {
                s
            }
        };
        Err(Ok(vec![format!("{}/{}", or_unknown(os), or_unknown(arch))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn entry(digest: &str, platform: Option<(&str, &str)>, attestation: bool) -> serde_json::Value {
        let mut e = serde_json::json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": digest,
            "size": 10,
        });
        if let Some((os, arch)) = platform {
            e["platform"] = serde_json::json!({"os": os, "architecture": arch});
        }
        if attestation {
            e["annotations"] = serde_json::json!({
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": D1,
            });
        }
        e
    }

    fn index(entries: Vec<serde_json::Value>) -> Index {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": entries,
        }))
        .unwrap()
    }

    #[test]
    fn picks_the_wasm_entry_skipping_linux_and_attestations() {
        let idx = index(vec![
            entry(D1, Some(("linux", "amd64")), false),
            entry(D2, Some(("unknown", "unknown")), true),
            entry(D3, Some(("wasi", "wasm")), false),
        ]);
        match select_wasm(&idx) {
            Selection::Wasm(e) => assert_eq!(e.digest, D3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn os_is_case_insensitive_and_wasm32_and_wasip_variants_count() {
        for (os, arch) in [
            ("wasip1", "wasm"),
            ("Wasip1", "wasm"),
            ("WASIP2", "wasm"),
            ("wasi", "wasm32"),
        ] {
            let idx = index(vec![
                entry(D1, Some(("linux", "amd64")), false),
                entry(D2, Some((os, arch)), false),
            ]);
            assert!(
                matches!(select_wasm(&idx), Selection::Wasm(e) if e.digest == D2),
                "{os}/{arch}"
            );
        }
        // wasm with a non-wasi os is not a Wasm entry.
        let idx = index(vec![entry(D1, Some(("linux", "wasm")), false)]);
        assert_eq!(
            select_wasm(&idx),
            Selection::None(vec!["linux/wasm".to_string()])
        );
    }

    #[test]
    fn attestation_with_wasm_platform_is_skipped() {
        let idx = index(vec![
            entry(D1, Some(("wasi", "wasm")), true),
            entry(D2, Some(("wasip2", "wasm")), false),
        ]);
        assert!(matches!(select_wasm(&idx), Selection::Wasm(e) if e.digest == D2));
    }

    #[test]
    fn linux_only_index_lists_its_platforms() {
        let mut arm = entry(D2, Some(("linux", "arm")), false);
        arm["platform"]["variant"] = "v7".into();
        let idx = index(vec![
            entry(D1, Some(("linux", "amd64")), false),
            arm,
            entry(D3, Some(("unknown", "unknown")), true),
        ]);
        assert_eq!(
            select_wasm(&idx),
            Selection::None(vec!["linux/amd64".into(), "linux/arm/v7".into()])
        );
    }

    #[test]
    fn entry_without_platform_is_a_fallback() {
        let mut nested = entry(D2, None, false);
        nested["mediaType"] = media::OCI_INDEX.into();
        let idx = index(vec![entry(D1, Some(("linux", "amd64")), false), nested]);
        assert!(matches!(select_wasm(&idx), Selection::Unlabelled(e) if e.digest == D2));
        let idx = index(vec![]);
        assert_eq!(select_wasm(&idx), Selection::None(vec![]));
    }

    fn manifest_json(media_type: Option<&str>) -> serde_json::Value {
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": media::OCI_CONFIG, "digest": D1, "size": 2},
            "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": D2, "size": 3}],
        });
        if let Some(mt) = media_type {
            m["mediaType"] = mt.into();
        }
        m
    }

    #[test]
    fn parses_manifests_with_and_without_media_type() {
        let bytes = serde_json::to_vec(&manifest_json(Some(media::OCI_MANIFEST))).unwrap();
        assert!(matches!(
            parse_document(&bytes, Some(media::OCI_MANIFEST)),
            Ok(Document::Manifest(_))
        ));
        let bytes = serde_json::to_vec(&manifest_json(None)).unwrap();
        for ct in [None, Some(media::OCI_MANIFEST), Some("application/json")] {
            assert!(matches!(
                parse_document(&bytes, ct),
                Ok(Document::Manifest(_))
            ));
        }
        let bytes = serde_json::to_vec(&manifest_json(Some(media::DOCKER_MANIFEST))).unwrap();
        assert!(matches!(
            parse_document(
                &bytes,
                Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8")
            ),
            Ok(Document::Manifest(_))
        ));
    }

    #[test]
    fn refuses_ambiguous_documents() {
        let mut m = manifest_json(None);
        m["manifests"] = serde_json::json!([]);
        let bytes = serde_json::to_vec(&m).unwrap();
        let err = parse_document(&bytes, None).unwrap_err();
        assert!(err.contains("ambiguous"), "{err}");
        m["mediaType"] = media::OCI_INDEX.into();
        let bytes = serde_json::to_vec(&m).unwrap();
        assert!(parse_document(&bytes, Some(media::OCI_INDEX)).is_err());
    }

    #[test]
    fn media_type_must_match_a_known_content_type() {
        let bytes = serde_json::to_vec(&manifest_json(Some(media::OCI_MANIFEST))).unwrap();
        let err = parse_document(&bytes, Some(media::OCI_INDEX)).unwrap_err();
        assert!(err.contains("Content-Type"), "{err}");
        let err = parse_document(&bytes, Some(media::DOCKER_MANIFEST)).unwrap_err();
        assert!(err.contains("Content-Type"), "{err}");
        // An unknown Content-Type is not checked.
        assert!(parse_document(&bytes, Some("text/plain")).is_ok());
    }

    #[test]
    fn media_type_must_agree_with_shape_and_be_known() {
        let bytes = serde_json::to_vec(&manifest_json(Some(media::OCI_INDEX))).unwrap();
        assert!(parse_document(&bytes, None).is_err());
        let bytes = serde_json::to_vec(&manifest_json(Some(
            "application/vnd.oci.artifact.manifest.v1+json",
        )))
        .unwrap();
        let err = parse_document(&bytes, None).unwrap_err();
        assert!(err.contains("unsupported"), "{err}");
        let idx = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "manifests": []});
        assert!(parse_document(&serde_json::to_vec(&idx).unwrap(), None).is_err());
    }

    #[test]
    fn parses_indexes_and_rejects_schema1_and_junk() {
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": [entry(D1, Some(("wasi","wasm")), false)]});
        assert!(matches!(
            parse_document(&serde_json::to_vec(&idx).unwrap(), Some(media::DOCKER_MANIFEST_LIST)),
            Ok(Document::Index(i)) if i.manifests.len() == 1
        ));
        let s1 = serde_json::json!({"schemaVersion": 1, "fsLayers": []});
        let err = parse_document(&serde_json::to_vec(&s1).unwrap(), None).unwrap_err();
        assert!(err.contains("schema 1"), "{err}");
        assert!(parse_document(b"[]", None).is_err());
        assert!(parse_document(b"not json", None).is_err());
        assert!(parse_document(br#"{"schemaVersion":2}"#, None).is_err());
        // Duplicate keys in the typed part are refused by serde.
        let dup = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{c}","digest":"{D1}","size":2}},"layers":[],"layers":[]}}"#,
            c = media::OCI_CONFIG
        );
        assert!(parse_document(dup.as_bytes(), None).is_err());
    }

    #[test]
    fn config_wasm_check() {
        let ok =
            br#"{"architecture":"wasm","os":"wasip2","rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(check_wasm_config(media::OCI_CONFIG, ok).is_ok());
        assert!(
            check_wasm_config(
                media::DOCKER_CONFIG,
                br#"{"architecture":"wasm32","os":"wasi"}"#
            )
            .is_ok()
        );
        assert_eq!(
            check_wasm_config(
                media::OCI_CONFIG,
                br#"{"architecture":"amd64","os":"linux"}"#
            ),
            Err(Ok(vec!["linux/amd64".to_string()]))
        );
        assert!(check_wasm_config(media::OCI_CONFIG, br#"{}"#).is_err());
        let cncf = br#"{"created":"2024-01-01T00:00:00Z","author":null,"architecture":"wasm","os":"wasip2","layerDigests":[],"component":null}"#;
        assert!(check_wasm_config(media::WASM_CONFIG_V0, cncf).is_ok());
        assert!(check_wasm_config(WASM_CONFIG_V1, b"{}").is_ok());
        assert!(check_wasm_config(WASM_CONFIG_V1, b"").is_ok());
        assert!(matches!(
            check_wasm_config(media::OCI_CONFIG, b"nope"),
            Err(Err(_))
        ));
    }

    #[test]
    fn wanted_layers() {
        for mt in [
            media::OCI_LAYER_GZIP,
            media::OCI_LAYER_TAR,
            media::DOCKER_LAYER_GZIP,
            media::WASM_LAYER,
            media::WASM_COMPONENT_LAYER,
            media::WASM_CONTENT_LAYER,
        ] {
            assert!(is_wanted_layer(mt), "{mt}");
        }
        assert!(!is_wanted_layer("application/vnd.in-toto+json"));
        assert!(!is_wanted_layer(
            "application/vnd.wasm.content.layer.v1+data"
        ));
    }
}
