//! Manifest, index and config parsing: `berth_image::images` types, and the registry's
//! document parser and platform choice (`crates/registry/src/document.rs`, compiled in here
//! because the registry crate keeps it private). Errors are fine, panics are not; a parsed
//! manifest or config must serialise and parse back to the same value.
#![no_main]

use berth_image::images::{self, ImageConfig, Manifest, media};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/registry/src/document.rs"]
mod document;

const CONTENT_TYPES: [Option<&str>; 7] = [
    None,
    Some(media::OCI_MANIFEST),
    Some(media::OCI_INDEX),
    Some(media::DOCKER_MANIFEST),
    Some(media::DOCKER_MANIFEST_LIST),
    Some("application/json; charset=utf-8"),
    Some(" APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON ; x=y"),
];

const CONFIG_TYPES: [&str; 4] = [
    media::OCI_CONFIG,
    media::DOCKER_CONFIG,
    media::WASM_CONFIG_V0,
    document::WASM_CONFIG_V1,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    match document::parse_document(bytes, content_type) {
        Ok(document::Document::Index(index)) => {
            let _ = document::select_wasm(&index);
            for e in &index.manifests {
                let _ = berth_image::digest::Digest::parse(&e.digest);
                if let Some(p) = &e.platform {
                    let _ = (p.display(), p.is_wasm());
                }
            }
        }
        Ok(document::Document::Manifest(m)) => {
            for l in &m.layers {
                let _ = (
                    document::is_wanted_layer(&l.media_type),
                    media::is_tar_layer(&l.media_type),
                );
            }
            let _ = document::is_supported_config(&m.config.media_type);
        }
        Err(_) => {}
    }
    let config_type = CONFIG_TYPES[usize::from(selector >> 4) % CONFIG_TYPES.len()];
    let _ = document::check_wasm_config(config_type, bytes);
    let _ = document::bare_content_type(std::str::from_utf8(bytes).ok());

    if let Ok(m) = serde_json::from_slice::<Manifest>(bytes) {
        let json = images::canonical_json(&m);
        let again: Manifest = serde_json::from_slice(&json).expect("a serialised manifest parses");
        assert_eq!(images::canonical_json(&again), json);
        for l in &m.layers {
            let path = images::Image::wasm_layer_path(l);
            assert!(
                path.starts_with('/') && !path[1..].contains('/') && path != "/." && path != "/..",
                "wasm layer path {path:?} is not a plain file name"
            );
        }
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfig>(bytes) {
        let json = images::canonical_json(&c);
        let again: ImageConfig = serde_json::from_slice(&json).expect("a serialised config parses");
        assert_eq!(again, c);
        let _ = images::chain_id(&c.rootfs.diff_ids);
    }
});
