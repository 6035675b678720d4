//! Random weights of any configured shape, for benchmarks of realistic sizes without
//! downloading a checkpoint. The LM heads come out tied to the word embeddings, as in the real
//! checkpoints of these shapes (and in transformers' randomly initialised models that the peers
//! benchmark).

use crate::config::{BertConfig, BertFlavor, Gpt2Config, LlamaConfig, ModelConfig};
use crate::error::Result;
use crate::weights::{HostTensor, TensorSource};
use ptune_host::rng;
use serde_json::json;
use std::collections::BTreeMap;

/// Names of the realistic shapes [`shape`] knows: the small ones CPU benchmarks run, then the
/// scale ones for a GPU ([`SCALE_SHAPES`]).
pub const SHAPES: &[&str] = &[
    "bert-base",
    "gpt2-small",
    "smollm2-135m",
    "llama-3.2-1b",
    "llama-3.1-8b",
];

/// The shapes too big for a CPU benchmark: 1.2 B and 8 B parameters (the 8 B one's f32 weights
/// alone are 32 GB).
pub const SCALE_SHAPES: &[&str] = &["llama-3.2-1b", "llama-3.1-8b"];

/// The config of a well-known model shape, for random-weight benchmarks: `bert-base` (12 layers,
/// hidden 768, vocab 28996, as bert-base-cased), `gpt2-small` (GPT-2 124M), `smollm2-135m`, and
/// for scale on a GPU `llama-3.2-1b` (tied head) and `llama-3.1-8b` (untied), GQA 32/8 heads.
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
        "llama-3.2-1b" => json!({"model_type": "llama", "vocab_size": 128256, "hidden_size": 2048,
            "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
            "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "max_position_embeddings": 131072, "tie_word_embeddings": true}),
        "llama-3.1-8b" => json!({"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "max_position_embeddings": 131072, "tie_word_embeddings": false}),
        _ => return None,
    };
    Some(ModelConfig::from_value(value).expect("the built-in shapes are valid"))
}

/// Uniform values in `[-SCALE, SCALE]`.
const SCALE: f64 = 0.05;

/// A checkpoint holding, seeded, every tensor a Hugging Face checkpoint of the config holds.
pub struct RandomWeights {
    seed: u64,
    shapes: Shapes,
}

impl RandomWeights {
    pub fn new(config: &ModelConfig, seed: u64) -> Self {
        let mut shapes = Shapes::default();
        match config {
            ModelConfig::Bert(c) => shapes.bert(c),
            ModelConfig::Gpt2(c) => shapes.gpt2(c),
            ModelConfig::Llama(c) => shapes.llama(c),
        }
        Self { seed, shapes }
    }
}

impl TensorSource for RandomWeights {
    fn names(&self) -> Vec<String> {
        self.shapes.0.keys().cloned().collect()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.shapes.0.get(name).cloned()
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        let shape = self.shapes.0.get(name).cloned();
        Ok(shape.map(|shape| rng::uniform(self.seed, name, shape, SCALE)))
    }

    fn describe(&self) -> String {
        format!("random weights (seed {})", self.seed)
    }
}

/// Tensor shapes by Hugging Face name, as each model's `load` reads them.
#[derive(Default)]
struct Shapes(BTreeMap<String, Vec<usize>>);

impl Shapes {
    /// `{p}.weight` and, with `bias`, `{p}.bias` as long as the weight's first dimension (the
    /// output of an `nn.Linear`, the features of a norm).
    fn add(&mut self, p: &str, shape: &[usize], bias: bool) {
        self.0.insert(format!("{p}.weight"), shape.to_vec());
        if bias {
            self.0.insert(format!("{p}.bias"), vec![shape[0]]);
        }
    }

    fn bert(&mut self, c: &BertConfig) {
        let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
        let (root, head, transform, norm) = match c.flavor {
            BertFlavor::Bert => ("bert.", "cls.predictions.", "transform.", "LayerNorm"),
            BertFlavor::Roberta => ("roberta.", "lm_head.", "", "layer_norm"),
        };
        let (positions, types) = (c.max_position_embeddings, c.type_vocab_size);
        for (table, n) in [("word", v), ("position", positions), ("token_type", types)] {
            self.add(
                &format!("{root}embeddings.{table}_embeddings"),
                &[n, h],
                false,
            );
        }
        self.add(&format!("{root}embeddings.LayerNorm"), &[h], true);
        for l in 0..c.num_hidden_layers {
            let p = format!("{root}encoder.layer.{l}.");
            for name in ["self.query", "self.key", "self.value", "output.dense"] {
                self.add(&format!("{p}attention.{name}"), &[h, h], true);
            }
            self.add(&format!("{p}attention.output.LayerNorm"), &[h], true);
            self.add(&format!("{p}intermediate.dense"), &[i, h], true);
            self.add(&format!("{p}output.dense"), &[h, i], true);
            self.add(&format!("{p}output.LayerNorm"), &[h], true);
        }
        self.add(&format!("{head}{transform}dense"), &[h, h], true);
        self.add(&format!("{head}{transform}{norm}"), &[h], true);
        self.0.insert(format!("{head}bias"), vec![v]);
    }

    fn gpt2(&mut self, c: &Gpt2Config) {
        let (h, v) = (c.n_embd, c.vocab_size);
        let inner = c.n_inner.unwrap_or(4 * h);
        self.add("transformer.wte", &[v, h], false);
        self.add("transformer.wpe", &[c.n_positions, h], false);
        for l in 0..c.n_layer {
            let p = format!("transformer.h.{l}.");
            // `Conv1D` stores its weight `[in, out]`.
            let mut conv1d = |name: &str, d_in: usize, d_out: usize| {
                self.0
                    .insert(format!("{p}{name}.weight"), vec![d_in, d_out]);
                self.0.insert(format!("{p}{name}.bias"), vec![d_out]);
            };
            conv1d("attn.c_attn", h, 3 * h);
            conv1d("attn.c_proj", h, h);
            conv1d("mlp.c_fc", h, inner);
            conv1d("mlp.c_proj", inner, h);
            self.add(&format!("{p}ln_1"), &[h], true);
            self.add(&format!("{p}ln_2"), &[h], true);
        }
        self.add("transformer.ln_f", &[h], true);
    }

    fn llama(&mut self, c: &LlamaConfig) {
        let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
        let d = c.head_dim();
        let (q, kv) = (c.num_attention_heads * d, c.kv_heads() * d);
        self.add("model.embed_tokens", &[v, h], false);
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}.");
            self.add(&format!("{p}input_layernorm"), &[h], false);
            for (name, d_out) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
                self.add(&format!("{p}self_attn.{name}"), &[d_out, h], c.qkv_bias());
            }
            self.add(&format!("{p}self_attn.o_proj"), &[h, q], false);
            self.add(&format!("{p}post_attention_layernorm"), &[h], false);
            for name in ["gate_proj", "up_proj"] {
                self.add(&format!("{p}mlp.{name}"), &[i, h], false);
            }
            self.add(&format!("{p}mlp.down_proj"), &[h, i], false);
        }
        self.add("model.norm", &[h], false);
        if !c.tie_word_embeddings {
            self.add("lm_head", &[v, h], false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use burn::tensor::Device;

    /// Each family loads from its random checkpoint (the load checks every shape and refuses
    /// tensors it leaves unread), the masked LMs with their MLM heads.
    #[test]
    fn random_checkpoints_hold_what_the_models_read() {
        let bert = json!({"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16});
        let gpt2 = json!({"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 2,
            "n_head": 2, "n_positions": 16});
        let mut configs = vec![gpt2];
        for (model_type, tied) in [("bert", true), ("roberta", true), ("qwen2", false)] {
            let mut config = bert.clone();
            config["model_type"] = model_type.into();
            config["tie_word_embeddings"] = tied.into();
            configs.push(config);
        }
        for value in configs {
            let config = ModelConfig::from_value(value).unwrap();
            let weights = RandomWeights::new(&config, 1);
            let model = Backbone::load(&config, &weights, &Device::flex()).unwrap();
            if let Backbone::Bert(bert) = model {
                assert!(bert.head.is_some());
            }
            assert!(weights.read("absent").unwrap().is_none());
        }
    }
}
