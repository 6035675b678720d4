//! Dequantization of every supported type equals gguf-py's, bit for bit.

mod common;

use common::{first_difference, fixture, read_safetensors};
use ptune_gguf::{GgmlType, GgufFile};

#[test]
fn every_type_matches_gguf_py() {
    let file = GgufFile::open(fixture("quants.gguf")).unwrap();
    let expected = read_safetensors(&fixture("quants_expected.safetensors"));
    assert_eq!(
        expected.len(),
        file.tensors().len(),
        "one expectation per tensor"
    );
    for (name, shape, values) in expected {
        let (got_shape, got) = file.read_f32(&name).unwrap().expect("tensor present");
        assert_eq!(got_shape, shape, "{name}: shape");
        let ty = file.tensor_info(&name).unwrap().ggml_type;
        assert!(
            first_difference(&got, &values).is_none(),
            "{name} ({ty}): first difference (index, got, expected) {:?}",
            first_difference(&got, &values)
        );
    }
}

#[test]
fn fixture_covers_every_supported_type() {
    let file = GgufFile::open(fixture("quants.gguf")).unwrap();
    let mut types: Vec<String> = file.tensors().iter().map(|t| t.ggml_type.name()).collect();
    types.sort();
    types.dedup();
    let mut supported: Vec<&str> = GgmlType::SUPPORTED_NAMES.split(", ").collect();
    supported.sort();
    assert_eq!(types, supported);
}

#[test]
fn header_is_parsed() {
    let file = GgufFile::open(fixture("quants.gguf")).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.architecture().unwrap(), "none");
    let info = file.tensor_info("f32_3d").unwrap();
    assert_eq!(info.dims, vec![4, 3, 2], "ggml order is reversed");
    assert_eq!(info.shape(), vec![2, 3, 4]);
    assert_eq!(file.tensor_names()[0], "f32");
    assert!(file.read_f32("absent").unwrap().is_none());
}
