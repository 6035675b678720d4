//! Linear layers on rows, as one matmul, whatever precision their weight is held in.
//!
//! burn's `Linear::forward` on a 3-D input may keep the batch dimension (when `T` is a multiple
//! of its row tile) and run a batched matmul with the weight broadcast: `B` small GEMMs that each
//! repack the whole weight. Folding the rows first made the macro bench (batch 8 × 24, 2 threads)
//! 11–42% faster on flex and up to 19% on libtorch (docs/performance.md).

use crate::precision::matmul_weight;
use burn::nn::Linear;
use burn::tensor::Tensor;

pub trait RowsLinear {
    /// `[N, in]` → `[N, out]`; a bf16 weight multiplies the rows rounded to bf16, the bias is
    /// added in f32.
    fn forward_mat(&self, x: Tensor<2>) -> Tensor<2>;

    /// `[B, T, in]` → `[B, T, out]`, as a single matmul over all `B*T` rows.
    fn forward_flat(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let y = self.forward_mat(x.reshape([b * t, d]));
        let out = y.dims()[1];
        y.reshape([b, t, out])
    }
}

impl RowsLinear for Linear {
    fn forward_mat(&self, x: Tensor<2>) -> Tensor<2> {
        let weight = self.weight.val();
        if weight.dtype() == x.dtype() {
            return ptune_kernels::linear(x, weight, self.bias.as_ref().map(|b| b.val()));
        }
        let y = matmul_weight(x, weight);
        match &self.bias {
            Some(bias) => y + bias.val().unsqueeze(),
            None => y,
        }
    }
}
