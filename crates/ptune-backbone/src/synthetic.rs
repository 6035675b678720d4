//! Random weights of any configured shape, for benchmarks of realistic sizes without
//! downloading a checkpoint. Every optional tensor "exists" except untied LM heads: the heads
//! come out tied to the word embeddings, as in the real checkpoints of these shapes (and in
//! transformers' randomly initialised models that the peers benchmark).

use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::{HostTensor, TensorSource};
use ptune_host::rng;
use serde_json::json;

/// Names of the realistic shapes [`shape`] knows.
pub const SHAPES: &[&str] = &["bert-base", "gpt2-small", "smollm2-135m"];

/// The config of a well-known model shape, for random-weight benchmarks: `bert-base` (12 layers,
/// hidden 768, vocab 28996, as bert-base-cased), `gpt2-small` (GPT-2 124M), `smollm2-135m`.
pub fn shape(name: &str) -> Option<ModelConfig> {
    let value = match name {
        "bert-base" => json!({"model_type": "bert", "vocab_size": 28996, "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "max_position_embeddings": 512}),
        "gpt2-small" => json!({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768,
            "n_layer": 12, "n_head": 12, "n_positions": 1024}),
        "smollm2-135m" => json!({"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "max_position_embeddings": 8192, "tie_word_embeddings": true}),
        _ => return None,
    };
    Some(ModelConfig::from_value(value).expect("the built-in shapes are valid"))
}

/// The decoder matrices a checkpoint stores only when its head is not tied to its embeddings.
const UNTIED_HEADS: &[&str] = &[
    "lm_head.weight",
    "cls.predictions.decoder.weight",
    "lm_head.decoder.weight",
];

/// A checkpoint that invents each tensor, seeded, in whatever shape the model asks for.
pub struct RandomWeights {
    pub seed: u64,
    /// Uniform values in `[-scale, scale]`.
    pub scale: f32,
}

impl RandomWeights {
    pub fn new(seed: u64) -> Self {
        Self { seed, scale: 0.05 }
    }
}

impl TensorSource for RandomWeights {
    fn names(&self) -> Vec<String> {
        vec![]
    }

    /// Claims every tensor but an untied head exists (its shape is decided by the reader).
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        (!UNTIED_HEADS.contains(&name)).then(Vec::new)
    }

    fn read(&self, _name: &str) -> Result<Option<HostTensor>> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("random weights (seed {})", self.seed)
    }

    fn read_expect(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let scale = f64::from(self.scale);
        Ok(rng::uniform(self.seed, name, expected.to_vec(), scale))
    }
}
