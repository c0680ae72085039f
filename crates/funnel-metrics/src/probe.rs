//! The probe: runs a model over a split in chunks, without autodiff graphs, and keeps every
//! layer's output as a labelled point cloud.

use burn::prelude::*;
use funnel_model::{to_f32_vec, LayeredModel, Stochastic};

use crate::cloud::{Cloud, Points};

/// Examples per forward pass during capture.
pub const CAPTURE_CHUNK: usize = 1024;

/// Captures every layer (0 = input … L = logits) of `model` on the examples `x` (`[n, d_0]`,
/// on a non-autodiff device) with labels `labels`. With `mode = Active` every pass draws fresh
/// masks/noise, as in the paper's stochastic networks.
pub fn capture<M: LayeredModel>(
    model: &M,
    x: Tensor<2>,
    labels: &[usize],
    num_classes: usize,
    mode: Stochastic,
) -> Vec<Cloud> {
    capture_with_pre_noise(model, x, labels, num_classes, mode).0
}

/// [`capture`], plus the pre-noise cloud of every layer that adds Gaussian noise (see
/// [`LayeredModel::forward_layers_pre_noise`]), captured in the same passes: the same
/// examples, the same upstream noise.
pub fn capture_with_pre_noise<M: LayeredModel>(
    model: &M,
    x: Tensor<2>,
    labels: &[usize],
    num_classes: usize,
    mode: Stochastic,
) -> (Vec<Cloud>, Vec<Option<Cloud>>) {
    let [n, _] = x.dims();
    assert_eq!(n, labels.len(), "capture: features and labels disagree");
    let widths: Vec<usize> = model.layers().iter().map(|l| l.width).collect();
    let mut data: Vec<Vec<f32>> = widths.iter().map(|w| Vec::with_capacity(n * w)).collect();
    let mut pre: Vec<Option<Vec<f32>>> = vec![None; widths.len()];
    let mut start = 0;
    while start < n {
        let len = CAPTURE_CHUNK.min(n - start);
        let (outs, pres) = model.forward_layers_pre_noise(x.clone().narrow(0, start, len), mode);
        assert_eq!(
            outs.len(),
            widths.len(),
            "forward_layers disagrees with layers()"
        );
        for (buf, t) in data.iter_mut().zip(outs) {
            buf.extend(to_f32_vec(t));
        }
        for (buf, t) in pre.iter_mut().zip(pres) {
            if let Some(t) = t {
                buf.get_or_insert_with(Vec::new).extend(to_f32_vec(t));
            }
        }
        start += len;
    }
    let cloud =
        |d: Vec<f32>, w: usize| Cloud::new(Points::new(d, n, w), labels.to_vec(), num_classes);
    let pre = pre
        .into_iter()
        .zip(&widths)
        .map(|(d, &w)| d.map(|d| cloud(d, w)))
        .collect();
    let outs = data
        .into_iter()
        .zip(&widths)
        .map(|(d, &w)| cloud(d, w))
        .collect();
    (outs, pre)
}
