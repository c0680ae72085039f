//! Reading tensors back to the host.

use burn::tensor::Tensor;

/// Reads a float tensor back to the host as `f32`, row-major.
///
/// Panics only when the backend cannot read memory back, which is a broken installation, not
/// bad user input.
pub fn to_f32_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("backend failed to read a float tensor back to the host")
}
