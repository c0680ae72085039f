//! The hook point: any model whose forward pass is a chain of layers T_0 = X, T_l = f_l(T_{l−1})
//! exposes every layer through [`LayeredModel`], and the probe in `funnel-metrics` captures them.

use burn::tensor::Tensor;
use serde::Serialize;

use crate::{Activation, Regularizer, Stochastic};

/// What a layer is, for reports and for the Lipschitz and SDPI constants.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerInfo {
    /// 0 is the input, L the logits.
    pub index: usize,
    pub width: usize,
    pub role: LayerRole,
    /// Activation applied in this layer (`identity` for the input and the logits).
    pub activation: Activation,
    /// Stochastic layer applied in this layer (`none` for the input and the logits).
    pub regularizer: Regularizer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerRole {
    Input,
    Hidden,
    Logits,
}

impl LayerRole {
    pub fn name(self) -> &'static str {
        match self {
            LayerRole::Input => "input",
            LayerRole::Hidden => "hidden",
            LayerRole::Logits => "logits",
        }
    }
}

/// A model made of layers 0..=L that can hand every one of them to a probe.
///
/// Layer l (1 ≤ l ≤ L) computes `T_l = R_l(act_l(T_{l−1}·W_l + b_l))` where `R_l` is the layer's
/// stochastic regularizer (DropConnect acts on `W_l` instead). Models with a different structure
/// implement [`LayeredModel::lipschitz_weights`] to say which matrices bound their Lipschitz
/// constants.
pub trait LayeredModel {
    /// Layer descriptions, index 0 (input) to L (logits); `layers().len() == depth() + 1`.
    fn layers(&self) -> Vec<LayerInfo>;

    /// Number of weight layers L.
    fn depth(&self) -> usize {
        self.layers().len() - 1
    }

    /// Every layer's output for a batch `[n, d_0]`: element 0 is the input itself, element L
    /// the logits. Nothing is skipped.
    fn forward_layers(&self, x: Tensor<2>, mode: Stochastic) -> Vec<Tensor<2>>;

    /// [`LayeredModel::forward_layers`], plus, for every layer that adds Gaussian noise after
    /// its activation, that layer's output *before* its own noise (upstream noise included):
    /// the centres of the Gaussian mixture the layer's representation is. `None` for layers
    /// without additive noise. The default is a model without noisy layers.
    fn forward_layers_pre_noise(
        &self,
        x: Tensor<2>,
        mode: Stochastic,
    ) -> (Vec<Tensor<2>>, Vec<Option<Tensor<2>>>) {
        let outs = self.forward_layers(x, mode);
        let none = vec![None; outs.len()];
        (outs, none)
    }

    /// The logits only (cheaper than `forward_layers` when the model can avoid keeping
    /// intermediate layers).
    fn forward(&self, x: Tensor<2>, mode: Stochastic) -> Tensor<2> {
        self.forward_layers(x, mode)
            .pop()
            .expect("forward_layers returns at least the input")
    }

    /// Layers l+1..=L applied to layer l's representation `t` `[n, d_l]`: the logits as a
    /// function of T_l (used for the local Lipschitz constants of the loss in T_l).
    fn forward_from(&self, l: usize, t: Tensor<2>, mode: Stochastic) -> Tensor<2>;

    /// The weight matrix of layer l = 1..=L, stored `[d_{l−1}, d_l]` (index l−1 of the vector).
    fn lipschitz_weights(&self) -> Vec<Tensor<2>>;

    /// The bias of layer l = 1..=L, `[d_l]` (index l−1; `None` for a layer without one). With
    /// [`LayeredModel::lipschitz_weights`], what interval propagation needs to bound each
    /// unit's pre-activation over a box of inputs (the local certified constants).
    fn lipschitz_biases(&self) -> Vec<Option<Tensor<1>>>;
}
