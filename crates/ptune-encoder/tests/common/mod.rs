//! Shared test helpers: fixture paths, tolerant comparisons, scratch directories.
#![allow(dead_code)]

#[path = "../../../ptune-backbone/tests/common/device.rs"]
pub mod device;

use ptune_encoder::io::read_safetensors;
use ptune_encoder::{HostTensor, NamedTensors};
use std::path::{Path, PathBuf};

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn tensors(rel: &str) -> NamedTensors {
    read_safetensors(&fixture(rel)).expect("fixture").tensors
}

pub fn meta(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(&format!("{case}/meta.json"))).expect("meta");
    serde_json::from_str(&text).expect("meta json")
}

/// Every element within `atol + rtol * |want|`; reports the worst element.
pub fn assert_close(name: &str, got: &HostTensor, want: &HostTensor, atol: f32, rtol: f32) {
    assert_eq!(got.shape, want.shape, "{name}: shape");
    let worst = got
        .data
        .iter()
        .zip(&want.data)
        .enumerate()
        .map(|(i, (g, w))| (i, (g - w).abs() - (atol + rtol * w.abs()), g, w))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("non-empty");
    assert!(
        worst.1 <= 0.0,
        "{name}: element {} is {} but should be {} (atol {atol}, rtol {rtol})",
        worst.0,
        worst.2,
        worst.3
    );
}

/// Same names, and every tensor close.
pub fn assert_all_close(what: &str, got: &NamedTensors, want: &NamedTensors, atol: f32, rtol: f32) {
    let names = |t: &NamedTensors| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: tensor names");
    for (name, w) in want {
        assert_close(&format!("{what} {name}"), &got[name], w, atol, rtol);
    }
}

/// A fresh empty directory under the system temp dir, unique to this test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ptune-encoder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
