//! Llama-family causal LMs (`LlamaForCausalLM`, Mistral, `Qwen2ForCausalLM`): RMSNorm, RoPE,
//! grouped-query attention, SwiGLU MLP, tied or untied head.

use crate::activation::Activation;
use crate::attention::{Rows, mask_bias};
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::linear::RowsLinear;
use crate::loader::Loader;
use crate::packed::{Kv, LayerKv, Packed, PrefixKv, SharedPrefix};
use crate::precision::matmul_weight;
use crate::rope::Rope;
use burn::module::Module;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::{Int, Tensor};

#[derive(Module, Debug)]
pub struct LlamaAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub num_heads: usize,
    pub num_kv_heads: usize,
}

#[derive(Module, Debug)]
pub struct LlamaMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct LlamaDecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: LlamaAttention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: LlamaMlp,
}

impl LlamaDecoderLayer {
    fn load(vb: Loader, c: &LlamaConfig) -> Result<Self> {
        let (h, d, i) = (c.hidden_size, c.head_dim(), c.intermediate_size);
        let (q, kv) = (c.num_attention_heads * d, c.kv_heads() * d);
        let bias = c.qkv_bias();
        let (attn, mlp) = (vb.pp("self_attn"), vb.pp("mlp"));
        Ok(Self {
            input_layernorm: vb.rms_norm("input_layernorm", h, c.rms_norm_eps)?,
            self_attn: LlamaAttention {
                q_proj: attn.linear("q_proj", h, q, bias)?,
                k_proj: attn.linear("k_proj", h, kv, bias)?,
                v_proj: attn.linear("v_proj", h, kv, bias)?,
                o_proj: attn.linear("o_proj", q, h, false)?,
                num_heads: c.num_attention_heads,
                num_kv_heads: c.kv_heads(),
            },
            post_attention_layernorm: vb.rms_norm("post_attention_layernorm", h, c.rms_norm_eps)?,
            mlp: LlamaMlp {
                gate_proj: mlp.linear("gate_proj", h, i, false)?,
                up_proj: mlp.linear("up_proj", h, i, false)?,
                down_proj: mlp.linear("down_proj", i, h, false)?,
                act: c.hidden_act,
            },
        })
    }

    /// `x + mlp(post_attention_layernorm(x))` on rows `[N, H]`: one matmul per projection.
    fn mlp_residual(&self, x: Tensor<2>) -> Tensor<2> {
        let m = &self.mlp;
        let normed = self.post_attention_layernorm.forward(x.clone());
        let gated = (m.act).gated(
            m.gate_proj.forward_mat(normed.clone()),
            m.up_proj.forward_mat(normed),
        );
        x + m.down_proj.forward_mat(gated)
    }

    /// The layer on a [`Packed`] batch: rows `[N, H]` → `[N, H]`, or `[B, H]` at `rows` (which
    /// index the rest), and the rest's keys and values (see [`Packed::attend`]). Every
    /// projection is one matmul over all rows.
    fn forward(
        &self,
        x: Tensor<2>,
        (pk, stored): (&Packed, Option<&Kv>),
        rope: &Rope,
        rows: Option<&Rows>,
    ) -> (Tensor<2>, LayerKv) {
        let a = &self.self_attn;
        let normed = self.input_layernorm.forward(x.clone());
        let k = a.k_proj.forward_mat(normed.clone());
        let v = a.v_proj.forward_mat(normed.clone());
        let (x, q) = match rows {
            None => (x, a.q_proj.forward_mat(normed)),
            Some(r) => (pk.take(x, r), a.q_proj.forward_mat(pk.take(normed, r))),
        };
        let heads = (a.num_heads, a.num_kv_heads);
        let scale = 1.0 / (q.dims()[1] as f64 / a.num_heads as f64).sqrt();
        let (context, kv) = pk.attend(q, k, v, heads, scale, rope, rows, stored);
        (self.mlp_residual(x + a.o_proj.forward_mat(context)), kv)
    }
}

#[derive(Module, Debug)]
pub struct LlamaModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaDecoderLayer>,
    pub norm: RmsNorm,
}

/// `LlamaForCausalLM`: `model` plus an untied `lm_head`, or `None` when tied to `embed_tokens`.
#[derive(Module, Debug)]
pub struct Llama {
    pub model: LlamaModel,
    pub lm_head: Option<Linear>,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub max_positions: usize,
}

impl Llama {
    pub fn load(vb: Loader, c: &LlamaConfig) -> Result<Self> {
        let (h, v) = (c.hidden_size, c.vocab_size);
        let untied = !c.tie_word_embeddings || vb.contains("lm_head.weight");
        let model = vb.pp("model");
        Ok(Self {
            model: LlamaModel {
                embed_tokens: model.embedding("embed_tokens", v, h)?,
                layers: (0..c.num_hidden_layers)
                    .map(|i| LlamaDecoderLayer::load(model.pp("layers").pp(i), c))
                    .collect::<Result<_>>()?,
                norm: model.rms_norm("norm", h, c.rms_norm_eps)?,
            },
            lm_head: match untied {
                true => Some(vb.linear("lm_head", h, v, false)?),
                false => None,
            },
            head_dim: c.head_dim(),
            rope_theta: c.rope_theta(),
            max_positions: c.max_position_embeddings,
        })
    }

    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.model.embed_tokens.forward(ids)
    }

    /// Final hidden states as [`Packed`] rows: every position's, or `[B, H]` at `rows`
    /// (positions after the shared `prefix`, counted from it; see [`Backbone::forward_rows`]).
    /// With `stored`, the prefixes' keys and values (one group each) and no prefix rows; with
    /// `keep`, also the prefixes' keys and values this pass computed.
    ///
    /// [`Backbone::forward_rows`]: crate::Backbone::forward_rows
    pub fn forward_embeds(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        rows: Option<&Rows>,
        (prefix, stored, keep): (&SharedPrefix, Option<&PrefixKv>, bool),
    ) -> (Tensor<2>, Option<PrefixKv>) {
        let [b, t, _] = embeds.dims();
        let shape = (b, t, self.head_dim);
        let rope = Rope::for_batch(prefix, shape, self.rope_theta, &embeds.device());
        let bias = mask_bias(attention_mask, true);
        let (pk, x) = Packed::new(embeds, bias, prefix, stored.is_some());
        let layers = &self.model.layers;
        let (x, kept) = PrefixKv::through(layers, x, rows, keep, |i, layer, x, rows| {
            layer.forward(x, (&pk, stored.map(|s| s.layer(i))), &rope, rows)
        });
        (self.model.norm.forward(x), kept)
    }

    /// Each layer's keys and values of `[G, p, H]` prefix embeddings (positions `0..p`).
    pub fn prefix_kv(&self, embeds: Tensor<3>) -> PrefixKv {
        let [g, p, _] = embeds.dims();
        let device = embeds.device();
        let rope = Rope::new(p, 0, self.head_dim, self.rope_theta, &device);
        let bias = mask_bias(Tensor::<2, Int>::ones([g, p], &device), true);
        let (pk, x) = Packed::new(embeds, bias, &SharedPrefix::none(), false);
        PrefixKv::collect(&self.model.layers, x, |layer, x| {
            layer.forward(x, (&pk, None), &rope, None)
        })
    }

    pub fn lm_logits(&self, rows: Tensor<2>) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => head.forward_mat(rows),
            None => matmul_weight(rows, self.model.embed_tokens.weight.val().transpose()),
        }
    }
}
