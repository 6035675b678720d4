//! Which checkpoint tensors a model read: a weight it never reads means the config describes a
//! different model than the weights (fewer layers, no biases), and the outputs would be wrong.

use crate::error::{BackboneError, Result};
use crate::weights::{HostTensor, TensorSource};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Tensors transformers keeps in checkpoints but never uses for the outputs ptune computes:
/// buffers (position ids, GPT-2's causal mask, rotary frequencies), the pooler, the
/// next-sentence head, and decoder biases tied to the head's own `bias`.
const UNUSED_BY_DESIGN: &[&str] = &[
    "position_ids",
    ".attn.bias",
    ".attn.masked_bias",
    "rotary_emb.inv_freq",
    "predictions.decoder.bias",
    "lm_head.decoder.bias",
];
const UNUSED_PREFIXES: &[&str] = &["pooler.", "cls.seq_relationship."];

fn unused_by_design(name: &str) -> bool {
    UNUSED_BY_DESIGN.iter().any(|s| name.ends_with(s))
        || UNUSED_PREFIXES
            .iter()
            .any(|p| name.starts_with(p) || name.contains(&format!(".{p}")))
}

/// The module a tensor belongs to, layer indices generalised (`encoder.layer.*.output.dense`).
/// Only a tensor of a module the model reads somewhere can disagree with the config (a layer past
/// `num_hidden_layers`, a bias the config turns off); modules it never touches, such as the task
/// heads a fine-tuned checkpoint carries (AntiBERTy's `cls.species`), are none of its business.
fn module_kind(name: &str) -> String {
    let module = name.rsplit_once('.').map_or("", |(m, _)| m);
    module
        .split('.')
        .map(|part| {
            if part.parse::<usize>().is_ok() {
                "*"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A [`TensorSource`] that records every name read through it.
pub struct Tracked<'a> {
    inner: &'a dyn TensorSource,
    read: Mutex<BTreeSet<String>>,
}

impl<'a> Tracked<'a> {
    pub fn new(inner: &'a dyn TensorSource) -> Self {
        Self {
            inner,
            read: Mutex::new(BTreeSet::new()),
        }
    }

    fn record(&self, name: &str) {
        self.read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
    }

    /// Refuses a checkpoint with a tensor of a module the model reads that it did not read itself,
    /// naming the first one.
    pub fn check_all_read(&self) -> Result<()> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let modules: BTreeSet<String> = read.iter().map(|n| module_kind(n)).collect();
        let unused: BTreeSet<String> = self
            .inner
            .names()
            .into_iter()
            .filter(|n| !read.contains(n) && !unused_by_design(n))
            .filter(|n| modules.contains(&module_kind(n)))
            .collect();
        match unused.first() {
            None => Ok(()),
            Some(name) => Err(BackboneError::UnusedTensor {
                name: name.clone(),
                source_desc: self.inner.describe(),
                count: unused.len(),
            }),
        }
    }
}

impl TensorSource for Tracked<'_> {
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.inner.shape(name)
    }

    fn read(&self, name: &str) -> Result<Option<HostTensor>> {
        self.record(name);
        self.inner.read(name)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn read_expect(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        self.record(name);
        self.inner.read_expect(name, expected)
    }
}
