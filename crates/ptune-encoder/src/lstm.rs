//! The LSTM reparameterization of P-tuning: `Embedding` → 2-layer bidirectional LSTM → MLP.
//!
//! burn's [`BiLstm`] is one layer without dropout, so two are stacked with a [`Dropout`] between,
//! which is what PyTorch's `nn.LSTM(num_layers=2, dropout=p, bidirectional=True)` computes.
//!
//! Weight layout. PyTorch keeps the four gates of one direction fused, in the order input,
//! forget, cell (`g`), output: `weight_ih_l{k}[_reverse]` `[4h, in]`, `weight_hh_l{k}[_reverse]`
//! `[4h, h]`, `bias_ih_…` and `bias_hh_…` `[4h]`. burn keeps one [`GateController`] per gate, each
//! two `Linear`s with `[in, out]` weights: `input_transform` (x, bias = `bias_ih` slice) and
//! `hidden_transform` (h, bias = `bias_hh` slice). Gate `j` of PyTorch's rows `j*h..(j+1)*h`,
//! transposed, is burn's gate j. The cell math is the same in both:
//! `c' = f*c + i*g`, `h' = o*tanh(c')`, sigmoid gates, tanh candidate.

use crate::embedding::{embedding_param, embedding_tensors, export_embedding};
use crate::error::Result;
use crate::init;
use crate::mlp::MlpHead;
use crate::tensors::{HostTensor, NamedTensors, ParamReader, TensorTaker};
use burn::module::{Module, Param};
use burn::nn::{BiLstm, Dropout, DropoutConfig, GateController, Linear, Lstm, LstmConfig};
use burn::tensor::{Device, Tensor};

/// PyTorch's `nn.LSTM` name suffixes of the two directions.
const DIRECTIONS: [&str; 2] = ["", "_reverse"];

/// A `num_layers`-deep bidirectional LSTM (batch first) with dropout between layers, importable
/// from and exportable to PyTorch's `nn.LSTM` names under a prefix.
#[derive(Module, Debug)]
pub struct StackedBiLstm {
    pub layers: Vec<BiLstm>,
    pub dropout: Dropout,
}

/// The sizes of a stacked BiLSTM: input width, hidden width per direction, number of layers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LstmDims {
    pub d_input: usize,
    pub d_hidden: usize,
    pub n_layers: usize,
}

impl LstmDims {
    /// Input width of layer `k`: the model input, then both directions of the layer below.
    fn layer_input(&self, k: usize) -> usize {
        if k == 0 {
            self.d_input
        } else {
            2 * self.d_hidden
        }
    }

    /// `(name suffix, shape)` of the eight tensors of layer `k`.
    fn names(&self, k: usize) -> Vec<(String, Vec<usize>)> {
        let (h, i) = (self.d_hidden, self.layer_input(k));
        DIRECTIONS
            .iter()
            .flat_map(|d| {
                [
                    (format!("weight_ih_l{k}{d}"), vec![4 * h, i]),
                    (format!("weight_hh_l{k}{d}"), vec![4 * h, h]),
                    (format!("bias_ih_l{k}{d}"), vec![4 * h]),
                    (format!("bias_hh_l{k}{d}"), vec![4 * h]),
                ]
            })
            .collect()
    }
}

impl StackedBiLstm {
    /// Seeded weights, `U(-1/sqrt(h), 1/sqrt(h))` as PyTorch initialises `nn.LSTM`.
    pub(crate) fn tensors(seed: u64, prefix: &str, dims: LstmDims) -> NamedTensors {
        let bound = 1.0 / (dims.d_hidden as f64).sqrt();
        (0..dims.n_layers)
            .flat_map(|k| dims.names(k))
            .map(|(suffix, shape)| {
                let name = format!("{prefix}.{suffix}");
                let t = init::uniform(seed, &name, shape, bound);
                (name, t)
            })
            .collect()
    }

    pub(crate) fn import(
        taker: &mut TensorTaker<'_>,
        prefix: &str,
        dims: LstmDims,
        dropout: f64,
    ) -> Result<Self> {
        let layers = (0..dims.n_layers)
            .map(|k| import_layer(taker, prefix, dims, k))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            dropout: DropoutConfig::new(dropout).init(),
        })
    }

    pub(crate) fn export(&self, prefix: &str, reader: &impl ParamReader, out: &mut NamedTensors) {
        for (k, layer) in self.layers.iter().enumerate() {
            for (lstm, d) in [&layer.forward, &layer.reverse].into_iter().zip(DIRECTIONS) {
                export_direction(lstm, &format!("{prefix}.{{}}_l{k}{d}"), reader, out);
            }
        }
    }

    /// `[batch, seq, d_input]` → `[batch, seq, 2 * d_hidden]`.
    pub fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        for (k, layer) in self.layers.iter().enumerate() {
            if k > 0 {
                x = self.dropout.forward(x);
            }
            x = layer.forward(x, None).0;
        }
        x
    }
}

/// One bidirectional layer from PyTorch's tensors of layer `k`.
fn import_layer(
    taker: &mut TensorTaker<'_>,
    prefix: &str,
    dims: LstmDims,
    k: usize,
) -> Result<BiLstm> {
    let (d_in, h) = (dims.layer_input(k), dims.d_hidden);
    let mut direction = |d: &str| {
        let name = |kind: &str| format!("{prefix}.{kind}_l{k}{d}");
        let w_ih = taker.host(&name("weight_ih"), &[4 * h, d_in])?;
        let w_hh = taker.host(&name("weight_hh"), &[4 * h, h])?;
        let b_ih = taker.host(&name("bias_ih"), &[4 * h])?;
        let b_hh = taker.host(&name("bias_hh"), &[4 * h])?;
        Ok(build_lstm(d_in, h, [w_ih, w_hh, b_ih, b_hh], taker.device))
    };
    let forward = direction(DIRECTIONS[0])?;
    let reverse = direction(DIRECTIONS[1])?;
    Ok(BiLstm {
        forward,
        reverse,
        d_hidden: h,
        batch_first: true,
    })
}

/// A burn `Lstm` whose gates hold PyTorch's fused `[w_ih, w_hh, b_ih, b_hh]`, split i, f, g, o.
fn build_lstm(d_in: usize, h: usize, fused: [&HostTensor; 4], device: &Device) -> Lstm {
    let [w_ih, w_hh, b_ih, b_hh] = fused;
    let gate = |j: usize| {
        let linear = |w: &HostTensor, b: &HostTensor| Linear {
            weight: Param::from_tensor(w.rows(j * h, h).transposed().to_tensor(device)),
            bias: Some(Param::from_tensor(b.rows(j * h, h).to_tensor(device))),
        };
        GateController {
            input_transform: linear(w_ih, b_ih),
            hidden_transform: linear(w_hh, b_hh),
        }
    };
    // The config's own initialisers are lazy and never run: every gate is replaced here.
    let mut lstm = LstmConfig::new(d_in, h, true).init(device);
    lstm.input_gate = gate(0);
    lstm.forget_gate = Some(gate(1));
    lstm.cell_gate = gate(2);
    lstm.output_gate = gate(3);
    lstm
}

/// Writes one direction's gates fused in PyTorch's i, f, g, o order; `pattern` has a `{}` for
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
fn export_direction(lstm: &Lstm, pattern: &str, reader: &impl ParamReader, out: &mut NamedTensors) {
    let gates = [
        Some(&lstm.input_gate),
        lstm.forget_gate.as_ref(),
        Some(&lstm.cell_gate),
        Some(&lstm.output_gate),
    ];
    let gates: Vec<&GateController> = gates.into_iter().flatten().collect();
    let fuse = |pick: &dyn Fn(&GateController) -> Option<HostTensor>| {
        let parts: Option<Vec<HostTensor>> = gates.iter().map(|g| pick(g)).collect();
        parts.map(|p| HostTensor::concat_rows(&p))
    };
    let weight = |l: &Linear| reader.read(&l.weight).map(|w| w.transposed());
    let bias = |l: &Linear| l.bias.as_ref().and_then(|b| reader.read(b));
    let entries: [(&str, Option<HostTensor>); 4] = [
        ("weight_ih", fuse(&|g| weight(&g.input_transform))),
        ("weight_hh", fuse(&|g| weight(&g.hidden_transform))),
        ("bias_ih", fuse(&|g| bias(&g.input_transform))),
        ("bias_hh", fuse(&|g| bias(&g.hidden_transform))),
    ];
    for (kind, tensor) in entries {
        if let Some(t) = tensor {
            out.insert(pattern.replace("{}", kind), t);
        }
    }
}

/// The shape of an LSTM encoder. THUDM's reference: LSTM `H/2` per direction, MLP `H → H → H`.
/// PEFT's LSTM option: LSTM `h` per direction, MLP `2h → 2h → H`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LstmEncoderDims {
    pub n_prompt: usize,
    pub hidden: usize,
    pub lstm_hidden: usize,
    pub mlp_hidden: usize,
}

impl LstmEncoderDims {
    fn lstm(&self) -> LstmDims {
        LstmDims {
            d_input: self.hidden,
            d_hidden: self.lstm_hidden,
            n_layers: 2,
        }
    }

    fn mlp(&self) -> [usize; 3] {
        [2 * self.lstm_hidden, self.mlp_hidden, self.hidden]
    }
}

/// `Embedding(n, H)` → 2-layer BiLSTM → MLP (Linear-ReLU-Linear), named as THUDM's and PEFT's
/// `PromptEncoder`: `embedding`, `lstm_head`, `mlp_head`.
#[derive(Module, Debug)]
pub struct LstmEncoder {
    pub embedding: burn::nn::Embedding,
    pub lstm_head: StackedBiLstm,
    pub mlp_head: MlpHead,
}

impl LstmEncoder {
    pub(crate) fn tensors(seed: u64, dims: LstmEncoderDims) -> NamedTensors {
        let mut t = embedding_tensors(seed, dims.n_prompt, dims.hidden);
        t.extend(StackedBiLstm::tensors(seed, "lstm_head", dims.lstm()));
        t.extend(MlpHead::tensors(seed, "mlp_head", &dims.mlp()));
        t
    }

    pub(crate) fn import(
        taker: &mut TensorTaker<'_>,
        dims: LstmEncoderDims,
        dropout: f64,
    ) -> Result<Self> {
        Ok(Self {
            embedding: embedding_param(taker, dims.n_prompt, dims.hidden)?,
            lstm_head: StackedBiLstm::import(taker, "lstm_head", dims.lstm(), dropout)?,
            mlp_head: MlpHead::import(taker, "mlp_head", &dims.mlp())?,
        })
    }

    pub(crate) fn export(&self, reader: &impl ParamReader, out: &mut NamedTensors) {
        export_embedding(&self.embedding, reader, out);
        self.lstm_head.export("lstm_head", reader, out);
        self.mlp_head.export("mlp_head", reader, out);
    }

    /// `[n_prompt, H]`: the table as a batch of one sequence through the LSTM, then the MLP.
    pub fn forward(&self) -> Tensor<2> {
        let table = self.embedding.weight.val();
        let seq = self.lstm_head.forward(table.unsqueeze_dim(0));
        self.mlp_head.forward(seq.squeeze_dim(0))
    }

    /// Hidden width of one LSTM direction.
    pub fn lstm_hidden(&self) -> usize {
        self.lstm_head.layers.first().map_or(0, |l| l.d_hidden)
    }

    /// Hidden width of the MLP head.
    pub fn mlp_hidden(&self) -> usize {
        self.mlp_head
            .layers
            .first()
            .map_or(0, |l| l.weight.dims()[1])
    }

    /// Dropout probability between the LSTM layers.
    pub fn dropout(&self) -> f64 {
        self.lstm_head.dropout.prob
    }
}
