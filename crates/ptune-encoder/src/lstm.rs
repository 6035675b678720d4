//! The LSTM reparameterization of P-tuning: `Embedding` → 2-layer bidirectional LSTM → MLP.
//!
//! The LSTM is PyTorch's `nn.LSTM(num_layers=2, dropout=p, bidirectional=True, batch_first=True)`
//! with its weights kept the way PyTorch keeps them: per layer and direction, the four gates fused
//! in the order input, forget, cell (`g`), output — `weight_ih_l{k}[_reverse]` `[4h, in]`,
//! `weight_hh_l{k}[_reverse]` `[4h, h]`, `bias_ih_…`, `bias_hh_…` `[4h]` — stored transposed
//! (`[in, 4h]`, `[h, 4h]`). The cell is PyTorch's: `c' = f*c + i*g`, `h' = o*tanh(c')`, sigmoid
//! gates, tanh candidate, zero initial state.
//!
//! Why not `burn::nn::BiLstm`: it computes the same function (one layer, no dropout; its gates
//! are eight separate `Linear`s, gate j = PyTorch's rows `j*h..(j+1)*h` transposed), but runs
//! eight matmuls per time step and, in backward, materialises a weight gradient per gate per
//! step. Fusing the gates and projecting the whole input sequence in one matmul makes the
//! encoder's forward+backward several times faster (see benches/encoder.rs).

use crate::embedding::{embedding_param, embedding_tensors, export_embedding};
use crate::error::Result;
use crate::mlp::MlpHead;
use crate::tensors::{HostTensor, HostTensorExt, NamedTensors, ParamReader, TensorTaker};
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::{sigmoid, tanh};
use ptune_host::rng;
use ptune_kernels::matmul;

/// PyTorch's `nn.LSTM` name suffixes of the two directions.
const DIRECTIONS: [&str; 2] = ["", "_reverse"];

/// One direction of one LSTM layer, gates fused in PyTorch's order i, f, g, o.
#[derive(Module, Debug)]
pub struct LstmDirection {
    /// `[in, 4h]`: PyTorch's `weight_ih` transposed.
    pub weight_ih: Param<Tensor<2>>,
    /// `[h, 4h]`: PyTorch's `weight_hh` transposed.
    pub weight_hh: Param<Tensor<2>>,
    pub bias_ih: Param<Tensor<1>>,
    pub bias_hh: Param<Tensor<1>>,
    /// Runs from the last time step to the first.
    pub reverse: bool,
}

impl LstmDirection {
    /// `[batch, seq, in]` → `[batch, seq, h]`, the hidden state at every step.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d_in] = x.dims();
        let four_h = self.weight_hh.dims()[1];
        let h_dim = four_h / 4;
        // Input projections of every step in one matmul; both biases folded in.
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze_dim(0);
        let projected =
            (matmul(x.reshape([b * t, d_in]), self.weight_ih.val()) + bias).reshape([b, t, four_h]);
        let w_hh = self.weight_hh.val();
        let mut state: Option<(Tensor<2>, Tensor<2>)> = None;
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; t];
        for step in self.order(t) {
            let mut gates = projected
                .clone()
                .slice([0..b, step..step + 1, 0..four_h])
                .reshape([b, four_h]);
            // The first step's hidden state is zero, so `weight_hh` only enters from the second:
            // with one prompt it gets no gradient at all, as its true gradient is zero.
            if let Some((h, _)) = &state {
                gates = gates + matmul(h.clone(), w_hh.clone());
            }
            let (h, c) = cell(gates, state.map(|(_, c)| c), h_dim);
            outputs[step] = Some(h.clone());
            state = Some((h, c));
        }
        Tensor::stack(outputs.into_iter().flatten().collect(), 1)
    }
}

impl LstmDirection {
    /// The time steps in the order this direction visits them.
    fn order(&self, t: usize) -> Vec<usize> {
        match self.reverse {
            true => (0..t).rev().collect(),
            false => (0..t).collect(),
        }
    }
}

/// One LSTM step from the fused pre-activations `[batch, 4h]` and the previous cell state
/// (`None`: zero) to the new hidden and cell states.
fn cell(gates: Tensor<2>, c: Option<Tensor<2>>, h_dim: usize) -> (Tensor<2>, Tensor<2>) {
    let [b, _] = gates.dims();
    let gate = |j: usize| gates.clone().slice([0..b, j * h_dim..(j + 1) * h_dim]);
    let (i, g, o) = (sigmoid(gate(0)), tanh(gate(2)), sigmoid(gate(3)));
    let c = match c {
        Some(c) => sigmoid(gate(1)) * c + i * g,
        None => i * g,
    };
    (o * tanh(c.clone()), c)
}

/// One bidirectional layer: both directions over the same input, outputs concatenated.
#[derive(Module, Debug)]
pub struct BiLstmLayer {
    pub forward: LstmDirection,
    pub reverse: LstmDirection,
}

impl BiLstmLayer {
    /// `[batch, seq, in]` → `[batch, seq, 2h]` (forward direction first, as PyTorch).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        Tensor::cat(
            vec![self.forward.forward(x.clone()), self.reverse.forward(x)],
            2,
        )
    }
}

/// A `num_layers`-deep bidirectional LSTM (batch first) with dropout between layers, importable
/// from and exportable to PyTorch's `nn.LSTM` names under a prefix.
#[derive(Module, Debug)]
pub struct StackedBiLstm {
    pub layers: Vec<BiLstmLayer>,
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
                let t = rng::uniform(seed, &name, shape, bound);
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
            .map(|k| {
                Ok(BiLstmLayer {
                    forward: import_direction(taker, prefix, dims, k, false)?,
                    reverse: import_direction(taker, prefix, dims, k, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            dropout: DropoutConfig::new(dropout).init(),
        })
    }

    pub(crate) fn export(&self, prefix: &str, reader: &impl ParamReader, out: &mut NamedTensors) {
        for (k, layer) in self.layers.iter().enumerate() {
            for (direction, d) in [&layer.forward, &layer.reverse].into_iter().zip(DIRECTIONS) {
                let name = |kind: &str| format!("{prefix}.{kind}_l{k}{d}");
                let mut put = |kind: &str, t: Option<HostTensor>| {
                    if let Some(t) = t {
                        out.insert(name(kind), t);
                    }
                };
                put(
                    "weight_ih",
                    reader.read(&direction.weight_ih).map(|w| w.transposed()),
                );
                put(
                    "weight_hh",
                    reader.read(&direction.weight_hh).map(|w| w.transposed()),
                );
                put("bias_ih", reader.read(&direction.bias_ih));
                put("bias_hh", reader.read(&direction.bias_hh));
            }
        }
    }

    /// `[batch, seq, d_input]` → `[batch, seq, 2 * d_hidden]`.
    pub fn forward(&self, mut x: Tensor<3>) -> Tensor<3> {
        for (k, layer) in self.layers.iter().enumerate() {
            if k > 0 {
                x = self.dropout.forward(x);
            }
            x = layer.forward(x);
        }
        x
    }
}

/// One direction of layer `k` from PyTorch's tensors (weights transposed here).
fn import_direction(
    taker: &mut TensorTaker<'_>,
    prefix: &str,
    dims: LstmDims,
    k: usize,
    reverse: bool,
) -> Result<LstmDirection> {
    let (d_in, h) = (dims.layer_input(k), dims.d_hidden);
    let d = DIRECTIONS[usize::from(reverse)];
    let name = |kind: &str| format!("{prefix}.{kind}_l{k}{d}");
    let device = taker.device;
    let weight = |w: &HostTensor| Param::from_tensor(w.transposed().to_tensor(device));
    Ok(LstmDirection {
        weight_ih: weight(taker.host(&name("weight_ih"), &[4 * h, d_in])?),
        weight_hh: weight(taker.host(&name("weight_hh"), &[4 * h, h])?),
        bias_ih: taker.param(&name("bias_ih"), [4 * h])?,
        bias_hh: taker.param(&name("bias_hh"), [4 * h])?,
        reverse,
    })
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
        self.lstm_head
            .layers
            .first()
            .map_or(0, |l| l.forward.weight_hh.dims()[0])
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
