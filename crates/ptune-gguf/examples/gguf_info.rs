//! Prints a GGUF file's Hugging Face config and tensor summary, and times a full dequantization.
//!
//! `cargo run --release -p ptune-gguf --example gguf_info -- path/to/model.gguf`

use std::collections::BTreeMap;
use std::time::Instant;

use ptune_gguf::{GgufFile, HfView};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: gguf_info <file.gguf>")?;
    let start = Instant::now();
    let file = GgufFile::open(&path)?;
    let opened = start.elapsed();
    let mut types = BTreeMap::new();
    for t in file.tensors() {
        *types.entry(t.ggml_type.name()).or_insert(0usize) += 1;
    }
    println!(
        "GGUF v{}, {} tensors {types:?}",
        file.version(),
        file.tensors().len()
    );
    let view = HfView::new(file)?;
    println!("{}", serde_json::to_string_pretty(view.config())?);
    let tokenizer_start = Instant::now();
    let tokenizer = ptune_gguf::tokenizer(view.gguf())?;
    let tokenizer_time = tokenizer_start.elapsed();
    let read_start = Instant::now();
    let mut params = 0;
    for name in view.names() {
        let (shape, data) = view.read(&name)?.ok_or("listed tensor vanished")?;
        assert_eq!(shape.iter().product::<usize>(), data.len());
        params += data.len();
    }
    println!(
        "open {opened:.2?}, tokenizer ({} tokens) {tokenizer_time:.2?}, dequantize {params} params {:.2?}",
        tokenizer.get_vocab_size(true),
        read_start.elapsed()
    );
    Ok(())
}
