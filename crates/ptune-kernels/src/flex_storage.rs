//! flex tensors as plain `f32` slices, for the kernels ptune runs on flex's storage directly
//! (ptune-backbone's activations, ptune-train's Adam step).

use burn::backend::flex::FlexTensor;

/// `x` with storage that is exactly its elements in order (a copy if it was a view), so its
/// storage can be read and written as a slice in the tensor's order.
pub fn dense(x: FlexTensor) -> FlexTensor {
    let bytes = x.layout().num_elements() * x.dtype().size();
    match x.is_contiguous() && x.layout().start_offset() == 0 && x.bytes().len() == bytes {
        true => x,
        false => FlexTensor::from_data(x.into_data()),
    }
}
