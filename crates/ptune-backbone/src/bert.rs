//! BERT and RoBERTa masked LMs (`BertForMaskedLM`, `RobertaForMaskedLM`), names as in transformers.
// Field names mirror the checkpoint's, `LayerNorm` included.
#![allow(non_snake_case)]

use crate::activation::Activation;
use crate::attention::{
    Rows, attend, mask_bias, merge_heads, query_side, split_heads, through_layers,
};
use crate::config::{BertConfig, BertFlavor};
use crate::error::{BackboneError, Result};
use crate::linear::RowsLinear;
use crate::loader::Loader;
use crate::precision::matmul_weight;
use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Int, Tensor};

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub LayerNorm: LayerNorm,
    /// RoBERTa counts positions from `padding_idx + 1`; BERT from 0.
    pub position_offset: usize,
}

impl BertEmbeddings {
    fn load(vb: Loader, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            word_embeddings: vb.embedding("word_embeddings", c.vocab_size, h)?,
            position_embeddings: vb.position_embedding(
                "position_embeddings",
                c.max_position_embeddings,
                h,
            )?,
            token_type_embeddings: vb.position_embedding(
                "token_type_embeddings",
                c.type_vocab_size,
                h,
            )?,
            LayerNorm: vb.layer_norm("LayerNorm", h, c.layer_norm_eps)?,
            position_offset: match c.flavor {
                BertFlavor::Bert => 0,
                BertFlavor::Roberta => c.pad_token_id.unwrap_or(1) + 1,
            },
        })
    }

    /// Adds position and token-type (0) embeddings to word embeddings, as transformers does for
    /// `inputs_embeds`; positions are sequential, which matches padded ids under right padding.
    fn forward(&self, inputs_embeds: Tensor<3>) -> Tensor<3> {
        let [_, t, h] = inputs_embeds.dims();
        let start = self.position_offset;
        let positions = self.position_embeddings.weight.val().narrow(0, start, t);
        let token_type = self.token_type_embeddings.weight.val().narrow(0, 0, 1);
        let x = inputs_embeds + positions.reshape([1, t, h]) + token_type.reshape([1, 1, h]);
        self.LayerNorm.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct BertSelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub num_heads: usize,
}

#[derive(Module, Debug)]
pub struct BertSelfOutput {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
}

/// `attention.self` and `attention.output` (`self` is a Rust keyword, hence `self_attention`).
#[derive(Module, Debug)]
pub struct BertAttention {
    pub self_attention: BertSelfAttention,
    pub output: BertSelfOutput,
}

#[derive(Module, Debug)]
pub struct BertIntermediate {
    pub dense: Linear,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: BertIntermediate,
    pub output: BertSelfOutput,
}

impl BertLayer {
    fn load(vb: Loader, c: &BertConfig) -> Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let out = |vb: Loader, d_in| -> Result<BertSelfOutput> {
            Ok(BertSelfOutput {
                dense: vb.linear("dense", d_in, h, true)?,
                LayerNorm: vb.layer_norm("LayerNorm", h, c.layer_norm_eps)?,
            })
        };
        let attention = vb.pp("attention");
        let sa = attention.pp("self");
        Ok(Self {
            attention: BertAttention {
                self_attention: BertSelfAttention {
                    query: sa.linear("query", h, h, true)?,
                    key: sa.linear("key", h, h, true)?,
                    value: sa.linear("value", h, h, true)?,
                    num_heads: c.num_attention_heads,
                },
                output: out(attention.pp("output"), h)?,
            },
            intermediate: BertIntermediate {
                dense: vb.linear("intermediate.dense", h, i, true)?,
                act: c.hidden_act,
            },
            output: out(vb.pp("output"), i)?,
        })
    }

    /// `[B, T, H]` → `[B, T, H]`, or `[B, 1, H]` at `rows` only.
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>, rows: Option<&Rows>) -> Tensor<3> {
        let sa = &self.attention.self_attention;
        let heads = sa.num_heads;
        let (x_q, bias) = query_side(&x, bias, rows);
        let q = split_heads(sa.query.forward_flat(x_q.clone()), heads);
        let k = split_heads(sa.key.forward_flat(x.clone()), heads);
        let v = split_heads(sa.value.forward_flat(x), heads);
        let scale = 1.0 / (q.dims()[3] as f64).sqrt();
        let context = merge_heads(attend(q, k, v, bias, scale));
        let o = &self.attention.output;
        let x = o.LayerNorm.forward(o.dense.forward_flat(context) + x_q);
        let inner = self
            .intermediate
            .act
            .forward(self.intermediate.dense.forward_flat(x.clone()));
        self.output
            .LayerNorm
            .forward(self.output.dense.forward_flat(inner) + x)
    }
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    pub layer: Vec<BertLayer>,
}

/// The MLM head: `cls.predictions` (BERT) or `lm_head` (RoBERTa). The decoder is tied to the word
/// embeddings unless the checkpoint stores its own.
#[derive(Module, Debug)]
pub struct BertLmHead {
    pub dense: Linear,
    pub LayerNorm: LayerNorm,
    #[module(skip)]
    pub act: Activation,
    /// Untied decoder `[vocab, hidden]`; `None` means tied to the word embeddings.
    pub decoder: Option<Param<Tensor<2>>>,
    pub bias: Param<Tensor<1>>,
}

impl BertLmHead {
    fn load(vb: &Loader, c: &BertConfig) -> Result<Option<Self>> {
        let (h, v) = (c.hidden_size, c.vocab_size);
        let (head, transform, norm, act) = match c.flavor {
            BertFlavor::Bert => (
                vb.pp("cls.predictions"),
                "transform",
                "LayerNorm",
                c.hidden_act,
            ),
            // transformers' RobertaLMHead always uses exact GELU.
            BertFlavor::Roberta => (vb.pp("lm_head"), "", "layer_norm", Activation::Gelu),
        };
        let transform = head.pp(transform);
        if !transform.contains("dense.weight") {
            return Ok(None);
        }
        let decoder = match head.contains("decoder.weight") {
            true => Some(Param::from_tensor(head.matrix("decoder.weight", [v, h])?)),
            false => None,
        };
        Ok(Some(Self {
            dense: transform.linear("dense", h, h, true)?,
            LayerNorm: transform.layer_norm(norm, h, c.layer_norm_eps)?,
            act,
            decoder,
            bias: Param::from_tensor(head.tensor("bias", [v])?),
        }))
    }
}

/// A BERT-shaped encoder with its masked-LM head when the checkpoint has one.
#[derive(Module, Debug)]
pub struct Bert {
    pub embeddings: BertEmbeddings,
    pub encoder: BertEncoder,
    pub head: Option<BertLmHead>,
    pub max_positions: usize,
}

impl Bert {
    pub fn load(vb: Loader, c: &BertConfig) -> Result<Self> {
        let root = match c.flavor {
            BertFlavor::Bert => "bert",
            BertFlavor::Roberta => "roberta",
        };
        let root = vb.first_scope(&[root, ""], "embeddings.word_embeddings.weight")?;
        let embeddings = BertEmbeddings::load(root.pp("embeddings"), c)?;
        let layers = root.pp("encoder").pp("layer");
        let layer = (0..c.num_hidden_layers)
            .map(|i| BertLayer::load(layers.pp(i), c))
            .collect::<Result<_>>()?;
        Ok(Self {
            max_positions: c.max_position_embeddings - embeddings.position_offset,
            embeddings,
            encoder: BertEncoder { layer },
            head: BertLmHead::load(&vb, c)?,
        })
    }

    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.embeddings.word_embeddings.forward(ids)
    }

    /// Final hidden states `[B, T, H]`, or `[B, 1, H]` at `rows` (see [`Rows`]).
    pub fn forward_embeds(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        rows: Option<&Rows>,
    ) -> Tensor<3> {
        let bias = mask_bias(attention_mask, false);
        let x = self.embeddings.forward(embeds);
        through_layers(&self.encoder.layer, x, rows, |_, layer, x, rows| {
            layer.forward(x, bias.clone(), rows)
        })
    }

    pub fn lm_logits(&self, rows: Tensor<2>) -> Result<Tensor<2>> {
        let head = self.head.as_ref().ok_or_else(|| {
            BackboneError::Input(
                "this checkpoint has no masked-LM head (it is an encoder only, like BertModel)"
                    .into(),
            )
        })?;
        let x = head
            .LayerNorm
            .forward(head.act.forward(head.dense.forward_mat(rows)));
        let decoder = match &head.decoder {
            Some(w) => w.val(),
            None => self.embeddings.word_embeddings.weight.val(),
        };
        Ok(matmul_weight(x, decoder.transpose()) + head.bias.val().unsqueeze())
    }
}
