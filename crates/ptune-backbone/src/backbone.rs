//! The frozen backbone: one type over every family, exposing exactly what P-tuning needs.

use crate::attention::Rows;
use crate::bert::Bert;
use crate::config::ModelConfig;
use crate::error::{BackboneError, Result};
use crate::gpt2::Gpt2;
use crate::index::index_tensor;
use crate::llama::Llama;
use crate::loader::Loader;
use crate::packed::{PrefixKv, SharedPrefix};
use crate::precision::{Precision, to_f32};
use crate::usage::Tracked;
use crate::weights::TensorSource;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
pub use ptune_data::Objective;

/// A pretrained language model whose parameters never require gradients; gradients still flow
/// to the input embeddings passed to [`Backbone::forward_embeds`].
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per process; boxing would hide the module tree
pub enum Backbone {
    Bert(Bert),
    Gpt2(Gpt2),
    Llama(Llama),
}

impl Backbone {
    /// Builds the model of `config` from `weights` on `device`, frozen, in f32.
    pub fn load(config: &ModelConfig, weights: &dyn TensorSource, device: &Device) -> Result<Self> {
        Self::load_as(config, weights, device, Precision::F32)
    }

    /// [`Backbone::load`] with the weight matrices held in `precision`.
    pub fn load_as(
        config: &ModelConfig,
        weights: &dyn TensorSource,
        device: &Device,
        precision: Precision,
    ) -> Result<Self> {
        let tracked = Tracked::new(weights);
        let vb = Loader::new(&tracked, device, precision);
        let model = match config {
            ModelConfig::Bert(c) => Backbone::Bert(Bert::load(vb, c)?),
            ModelConfig::Gpt2(c) => Backbone::Gpt2(Gpt2::load(vb, c)?),
            ModelConfig::Llama(c) => Backbone::Llama(Llama::load(vb, c)?),
        };
        tracked.check_all_read()?;
        Ok(model.freeze())
    }

    pub fn objective(&self) -> Objective {
        match self {
            Backbone::Bert(_) => Objective::Masked,
            Backbone::Gpt2(_) | Backbone::Llama(_) => Objective::Causal,
        }
    }

    /// Which LM head the checkpoint's tensors gave, in words for the user.
    pub fn head(&self) -> &'static str {
        match self {
            Backbone::Bert(m) => match &m.head {
                Some(h) if h.decoder.is_some() => "masked-LM head with its own decoder",
                Some(_) => "masked-LM head tied to the word embeddings",
                None => "no masked-LM head (an encoder only)",
            },
            Backbone::Gpt2(m) if m.lm_head.is_some() => "causal-LM head with its own weights",
            Backbone::Llama(m) if m.lm_head.is_some() => "causal-LM head with its own weights",
            _ => "causal-LM head tied to the token embeddings",
        }
    }

    /// `[vocab, hidden]` input embedding table.
    fn word_embeddings(&self) -> Tensor<2> {
        match self {
            Backbone::Bert(m) => m.embeddings.word_embeddings.weight.val(),
            Backbone::Gpt2(m) => m.wte.weight.val(),
            Backbone::Llama(m) => m.model.embed_tokens.weight.val(),
        }
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.word_embeddings().device()
    }

    pub fn hidden_size(&self) -> usize {
        self.word_embeddings().dims()[1]
    }

    pub fn vocab_size(&self) -> usize {
        self.word_embeddings().dims()[0]
    }

    fn layers(&self) -> usize {
        match self {
            Backbone::Bert(m) => m.encoder.layer.len(),
            Backbone::Gpt2(m) => m.h.len(),
            Backbone::Llama(m) => m.model.layers.len(),
        }
    }

    /// The longest sequence the model's positions allow.
    pub fn max_positions(&self) -> usize {
        match self {
            Backbone::Bert(m) => m.max_positions,
            Backbone::Gpt2(m) => m.max_positions(),
            Backbone::Llama(m) => m.max_positions,
        }
    }

    /// Whether [`Backbone::lm_logits`] can be called (an encoder-only BERT cannot).
    pub fn has_lm_head(&self) -> bool {
        !matches!(self, Backbone::Bert(m) if m.head.is_none())
    }

    /// Refuses sequences the position table cannot hold, before any work is done.
    pub fn check_length(&self, len: usize) -> Result<()> {
        let max = self.max_positions();
        if len > max {
            return Err(BackboneError::Input(format!(
                "the input is {len} tokens long but the model takes at most {max} positions"
            )));
        }
        Ok(())
    }

    /// The precision the weight matrices are held in.
    pub fn precision(&self) -> Precision {
        match self.word_embeddings().dtype() {
            burn::tensor::DType::BF16 => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    /// `[B, T]` ids → `[B, T, H]` f32 word embeddings (no positions; those come in
    /// `forward_embeds`).
    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        to_f32(match self {
            Backbone::Bert(m) => m.embed_tokens(ids),
            Backbone::Gpt2(m) => m.embed_tokens(ids),
            Backbone::Llama(m) => m.embed_tokens(ids),
        })
    }

    /// Runs the model on `[B, T, H]` input embeddings with a `[B, T]` 1/0 attention mask
    /// (right padding) and returns the final hidden states `[B, T, H]`, the LM head's input.
    pub fn forward_embeds(&self, embeds: Tensor<3>, attention_mask: Tensor<2, Int>) -> Tensor<3> {
        let [b, t, h] = embeds.dims();
        let none = (&SharedPrefix::none(), None, false);
        (self.run(embeds, attention_mask, None, none).0).reshape([b, t, h])
    }

    /// The final hidden states `[B, H]` at one row per example (`positions[b]`, the target it
    /// is scored at): what [`forward_embeds`](Self::forward_embeds) then a gather gives, but the
    /// last layer computes only those rows. `shared` names the leading positions that groups
    /// of examples have in common (ids and prompt vectors alike, no padding): a causal model
    /// (GPT-2, the Llama family) computes them once per group; a masked LM, whose prefix also
    /// attends to what follows it, ignores them. `stored`: the groups' prefix keys and values,
    /// computed earlier by [`prefix_kv`](Self::prefix_kv) from the same inputs (one group per
    /// group of `shared`, `shared.len` positions): then the prefixes are not computed at all.
    pub fn forward_rows(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        positions: &[usize],
        shared: &SharedPrefix,
        stored: Option<&PrefixKv>,
    ) -> Tensor<2> {
        let kv = (shared, stored, false);
        self.rows_pass(embeds, attention_mask, positions, kv).0
    }

    /// [`forward_rows`](Self::forward_rows) that also returns the keys and values of the
    /// prefixes `shared` names, as this pass computes them (`None` for a masked LM, or when
    /// a prefix reaches a target): what [`prefix_kv`](Self::prefix_kv) gives, without a pass
    /// of its own. `shared` has one length for every group.
    pub fn forward_rows_keeping(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        positions: &[usize],
        shared: &SharedPrefix,
    ) -> (Tensor<2>, Option<PrefixKv>) {
        self.rows_pass(embeds, attention_mask, positions, (shared, None, true))
    }

    /// [`forward_rows`](Self::forward_rows), keeping the computed prefixes' keys and values
    /// when asked to.
    fn rows_pass(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        positions: &[usize],
        (shared, stored, keep): (&SharedPrefix, Option<&PrefixKv>, bool),
    ) -> (Tensor<2>, Option<PrefixKv>) {
        let [b, t, h] = embeds.dims();
        assert_eq!(positions.len(), b, "one row per example");
        let first = positions.iter().copied().min().unwrap_or(0);
        let causal = self.layers() > 0 && self.objective() == Objective::Causal;
        let stored = stored.filter(|kv| {
            let fits = kv.len() == shared.len && kv.groups() == shared.groups();
            let before = (0..b).all(|e| shared.prefix_of(e) <= positions[e]);
            causal && fits && !kv.is_empty() && before
        });
        // Prefixes of several lengths only come with their keys and values.
        let whole = !shared.ragged() && shared.len <= first;
        let prefix = match (causal, stored) {
            (true, Some(_)) => shared.clone(),
            (true, None) if keep && whole => shared.clone(),
            (true, None) if b > 1 && !shared.ragged() => shared.capped(first),
            _ => SharedPrefix::none(),
        };
        let after: Vec<usize> = (positions.iter().enumerate())
            .map(|(e, p)| p - prefix.prefix_of(e))
            .collect();
        let rows = Rows::new(&after, prefix.width(b, t), &embeds.device());
        let kv = (&prefix, stored, keep && whole);
        let (out, kept) = self.run(embeds, attention_mask, Some(&rows), kv);
        // A model without layers never reached the row selection.
        let out = match out.dims()[0] == b {
            true => out,
            false => rows.take(out.reshape([b, t, h])).reshape([b, h]),
        };
        (out, kept)
    }

    /// Each layer's keys and values of `[G, p, H]` prefix embeddings at positions `0..p`, for
    /// [`forward_rows`](Self::forward_rows) to reuse; `None` for a masked LM, whose prefix
    /// depends on what follows it.
    pub fn prefix_kv(&self, embeds: Tensor<3>) -> Option<PrefixKv> {
        match self {
            Backbone::Bert(_) => None,
            Backbone::Gpt2(m) => Some(m.prefix_kv(embeds)),
            Backbone::Llama(m) => Some(m.prefix_kv(embeds)),
        }
    }

    /// The final hidden states `[N, H]` at `targets` (`(example, position)`, several per
    /// example allowed): what [`forward_embeds`](Self::forward_embeds) then a gather gives, with
    /// the leading positions `shared` names computed once per group of examples, as in
    /// [`forward_rows`](Self::forward_rows) (a causal model; a masked LM ignores them). A task's
    /// candidates of several tokens, one row each, share their example's context this way.
    pub fn forward_targets(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        targets: &[(usize, usize)],
        shared: &SharedPrefix,
    ) -> Tensor<2> {
        let [b, t, _] = embeds.dims();
        let prefix = match b > 1 && self.objective() == Objective::Causal {
            true => shared.clone(),
            false => SharedPrefix::none(),
        };
        let device = embeds.device();
        let (out, _) = self.run(embeds, attention_mask, None, (&prefix, None, false));
        let flat = targets.iter().map(|&(e, pos)| prefix.packed_row(e, pos, t));
        out.select(0, index_tensor(flat, &device))
    }

    /// Final hidden states as rows: `[B * T, H]`, or `[B, H]` at `rows` (positions after the
    /// `prefix` a causal model shares, whose keys and values may be `stored`, or kept from
    /// this pass; see [`Backbone::forward_rows`]).
    fn run(
        &self,
        embeds: Tensor<3>,
        mask: Tensor<2, Int>,
        rows: Option<&Rows>,
        kv: (&SharedPrefix, Option<&PrefixKv>, bool),
    ) -> (Tensor<2>, Option<PrefixKv>) {
        match self {
            Backbone::Bert(m) => {
                let out = m.forward_embeds(embeds, mask, rows);
                let [b, t, h] = out.dims();
                (out.reshape([b * t, h]), None)
            }
            Backbone::Gpt2(m) => m.forward_embeds(embeds, mask, rows, kv),
            Backbone::Llama(m) => m.forward_embeds(embeds, mask, rows, kv),
        }
    }

    /// The LM head on chosen rows only: `[N, H]` hidden states → `[N, vocab]` logits.
    pub fn lm_logits(&self, rows: Tensor<2>) -> Result<Tensor<2>> {
        match self {
            Backbone::Bert(m) => m.lm_logits(rows),
            Backbone::Gpt2(m) => Ok(m.lm_logits(rows)),
            Backbone::Llama(m) => Ok(m.lm_logits(rows)),
        }
    }

    /// Hidden states of the rows `(example, position)` of `hidden` `[B, T, H]` → `[N, H]`.
    pub fn gather_rows(hidden: Tensor<3>, rows: &[(usize, usize)]) -> Tensor<2> {
        let [b, t, h] = hidden.dims();
        let index = index_tensor(rows.iter().map(|&(e, p)| e * t + p), &hidden.device());
        hidden.reshape([b * t, h]).select(0, index)
    }
}
