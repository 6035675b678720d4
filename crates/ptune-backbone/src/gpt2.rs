//! GPT-2 (`GPT2LMHeadModel`): learned positions, pre-LN blocks, `Conv1D` weights stored `[in, out]`.

use crate::activation::Activation;
use crate::attention::{Rows, mask_bias};
use crate::config::Gpt2Config;
use crate::error::Result;
use crate::linear::RowsLinear;
use crate::loader::Loader;
use crate::packed::{Absolute, Kv, LayerKv, Packed, PrefixKv, SharedPrefix};
use crate::precision::matmul_weight;
use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Int, Tensor};

#[derive(Module, Debug)]
pub struct Gpt2Attention {
    /// Fused query/key/value projection `[H, 3H]`.
    pub c_attn: Linear,
    pub c_proj: Linear,
    pub num_heads: usize,
    pub scale: f64,
}

#[derive(Module, Debug)]
pub struct Gpt2Mlp {
    pub c_fc: Linear,
    pub c_proj: Linear,
    #[module(skip)]
    pub act: Activation,
}

#[derive(Module, Debug)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub attn: Gpt2Attention,
    pub ln_2: LayerNorm,
    pub mlp: Gpt2Mlp,
}

impl Gpt2Block {
    fn load(vb: Loader, c: &Gpt2Config, index: usize) -> Result<Self> {
        let h = c.n_embd;
        let inner = c.n_inner.unwrap_or(4 * h);
        let mut scale = 1.0;
        if c.scale_attn_weights {
            scale /= ((h / c.n_head) as f64).sqrt();
        }
        if c.scale_attn_by_inverse_layer_idx {
            scale /= (index + 1) as f64;
        }
        Ok(Self {
            ln_1: vb.layer_norm("ln_1", h, c.layer_norm_epsilon)?,
            attn: Gpt2Attention {
                c_attn: vb.conv1d("attn.c_attn", h, 3 * h)?,
                c_proj: vb.conv1d("attn.c_proj", h, h)?,
                num_heads: c.n_head,
                scale,
            },
            ln_2: vb.layer_norm("ln_2", h, c.layer_norm_epsilon)?,
            mlp: Gpt2Mlp {
                c_fc: vb.conv1d("mlp.c_fc", h, inner)?,
                c_proj: vb.conv1d("mlp.c_proj", inner, h)?,
                act: c.activation_function,
            },
        })
    }

    /// `x + mlp(ln_2(x))` on rows `[N, H]`.
    fn mlp_residual(&self, x: Tensor<2>) -> Tensor<2> {
        let m = &self.mlp;
        let hidden = m
            .act
            .forward(m.c_fc.forward_mat(self.ln_2.forward(x.clone())));
        x + m.c_proj.forward_mat(hidden)
    }

    /// The block on a [`Packed`] batch: rows `[N, H]` → `[N, H]`, or `[B, H]` at `rows` (which
    /// index the rest), and the rest's keys and values (see [`Packed::attend`]). The fused
    /// query/key/value projection runs once over all rows.
    fn forward(
        &self,
        x: Tensor<2>,
        (pk, stored): (&Packed, Option<&Kv>),
        rows: Option<&Rows>,
    ) -> (Tensor<2>, LayerKv) {
        let a = &self.attn;
        let qkv = a
            .c_attn
            .forward_mat(self.ln_1.forward(x.clone()))
            .chunk(3, 1);
        let [q, k, v] = [0, 1, 2].map(|i| qkv[i].clone());
        let (x, q) = match rows {
            None => (x, q),
            Some(r) => (pk.take(x, r), pk.take(q, r)),
        };
        let heads = (a.num_heads, a.num_heads);
        let (context, kv) = pk.attend(q, k, v, heads, a.scale, &Absolute, rows, stored);
        (self.mlp_residual(x + a.c_proj.forward_mat(context)), kv)
    }
}

/// `GPT2LMHeadModel`; the LM head is tied to `wte` unless the checkpoint stores `lm_head.weight`.
#[derive(Module, Debug)]
pub struct Gpt2 {
    pub wte: Embedding,
    pub wpe: Embedding,
    pub h: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
    pub lm_head: Option<Param<Tensor<2>>>,
}

impl Gpt2 {
    pub fn load(vb: Loader, c: &Gpt2Config) -> Result<Self> {
        let t = vb.first_scope(&["transformer", ""], "wte.weight")?;
        let h = c.n_embd;
        let lm_head = match vb.contains("lm_head.weight") {
            true => Some(Param::from_tensor(
                vb.matrix("lm_head.weight", [c.vocab_size, h])?,
            )),
            false => None,
        };
        Ok(Self {
            wte: t.embedding("wte", c.vocab_size, h)?,
            wpe: t.position_embedding("wpe", c.n_positions, h)?,
            h: (0..c.n_layer)
                .map(|i| Gpt2Block::load(t.pp("h").pp(i), c, i))
                .collect::<Result<_>>()?,
            ln_f: t.layer_norm("ln_f", h, c.layer_norm_epsilon)?,
            lm_head,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.wpe.weight.dims()[0]
    }

    pub fn embed_tokens(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.wte.forward(ids)
    }

    /// Final hidden states as [`Packed`] rows, as [`Llama::forward_embeds`] returns them.
    ///
    /// [`Llama::forward_embeds`]: crate::llama::Llama::forward_embeds
    pub fn forward_embeds(
        &self,
        embeds: Tensor<3>,
        attention_mask: Tensor<2, Int>,
        rows: Option<&Rows>,
        (prefix, stored, keep): (&SharedPrefix, Option<&PrefixKv>, bool),
    ) -> (Tensor<2>, Option<PrefixKv>) {
        let bias = mask_bias(attention_mask, true);
        let embeds = self.add_positions(embeds);
        let (pk, x) = Packed::new(embeds, bias, prefix, stored.is_some());
        let (x, kept) = PrefixKv::through(&self.h, x, rows, keep, |i, block, x, rows| {
            block.forward(x, (&pk, stored.map(|s| s.layer(i))), rows)
        });
        (self.ln_f.forward(x), kept)
    }

    /// Each block's keys and values of `[G, p, H]` prefix embeddings (positions `0..p`).
    pub fn prefix_kv(&self, embeds: Tensor<3>) -> PrefixKv {
        let [g, p, _] = embeds.dims();
        let bias = mask_bias(Tensor::<2, Int>::ones([g, p], &embeds.device()), true);
        let embeds = self.add_positions(embeds);
        let (pk, x) = Packed::new(embeds, bias, &SharedPrefix::none(), false);
        PrefixKv::collect(&self.h, x, |block, x| block.forward(x, (&pk, None), None))
    }

    /// Learned positions `0..T` added to `[B, T, H]` input embeddings.
    fn add_positions(&self, embeds: Tensor<3>) -> Tensor<3> {
        let [_, t, h] = embeds.dims();
        embeds + self.wpe.weight.val().narrow(0, 0, t).reshape([1, t, h])
    }

    pub fn lm_logits(&self, rows: Tensor<2>) -> Tensor<2> {
        let w = match &self.lm_head {
            Some(w) => w.val(),
            None => self.wte.weight.val(),
        };
        matmul_weight(rows, w.transpose())
    }
}
