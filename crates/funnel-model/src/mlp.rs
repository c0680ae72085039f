//! Multi-layer perceptrons: linear DNNs (`identity`) and non-linear ones, with optional
//! stochastic hidden layers.

use burn::module::{ModuleVisitor, Param};
use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layered::{LayerInfo, LayerRole, LayeredModel};
use crate::regularizer::{apply_unit_noise, dropconnect_linear};
use crate::{Activation, ModelError, Regularizer, Stochastic};

/// Architecture of an [`Mlp`]: `input_dim → widths[0] → … → widths[H−1] → num_classes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    pub input_dim: usize,
    /// Hidden widths, any number (0 gives a linear classifier), any width ≥ 1.
    pub widths: Vec<usize>,
    pub num_classes: usize,
    pub activation: Activation,
    pub bias: bool,
    /// Applied to every hidden layer (never to the logits).
    pub regularizer: Regularizer,
}

impl MlpConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.input_dim == 0 {
            return Err(ModelError::invalid("input_dim", "must be ≥ 1"));
        }
        if let Some(i) = self.widths.iter().position(|&w| w == 0) {
            return Err(ModelError::invalid(
                "widths",
                format!(
                    "width of hidden layer {} is 0; every width must be ≥ 1",
                    i + 1
                ),
            ));
        }
        if self.num_classes < 2 {
            return Err(ModelError::invalid(
                "num_classes",
                format!("must be ≥ 2, got {}", self.num_classes),
            ));
        }
        self.regularizer
            .validate()
            .map_err(|(key, msg)| ModelError::invalid(key, msg))
    }

    /// Builds the network with burn's default initialisation, Kaiming-uniform U(−k, k) with
    /// k = 1/√d_in for weights and biases, drawn on the host from `seed` (ChaCha8) rather than
    /// by the backend's RNG: the same seed gives the same weights on flex, ndarray and wgpu, so
    /// training on one backend can be compared with another number for number.
    pub fn init(&self, device: &Device, seed: u64) -> Result<Mlp, ModelError> {
        use rand::{RngExt, SeedableRng};
        self.validate()?;
        let dims = self.dims();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let linears = dims
            .windows(2)
            .map(|w| {
                let (d_in, d_out) = (w[0], w[1]);
                let k = 1.0 / (d_in as f32).sqrt();
                let mut uniform = |len: usize| -> Vec<f32> {
                    (0..len).map(|_| rng.random_range(-k..k)).collect()
                };
                // burn's Linear stores the weight as [d_in, d_out]
                let weight = Tensor::<2>::from_data(
                    TensorData::new(uniform(d_in * d_out), [d_in, d_out]),
                    device,
                );
                let bias = self.bias.then(|| {
                    Param::from_tensor(Tensor::<1>::from_data(
                        TensorData::new(uniform(d_out), [d_out]),
                        device,
                    ))
                });
                Linear {
                    weight: Param::from_tensor(weight),
                    bias,
                }
            })
            .collect();
        let mlp = Mlp {
            linears,
            activation: self.activation,
            regularizer: self.regularizer,
        };
        force_init(&mlp);
        Ok(mlp)
    }

    /// All layer widths, input first, classes last.
    pub fn dims(&self) -> Vec<usize> {
        std::iter::once(self.input_dim)
            .chain(self.widths.iter().copied())
            .chain(std::iter::once(self.num_classes))
            .collect()
    }
}

/// burn initialises parameters lazily, on first use. Touch every parameter, in field order,
/// right after construction so the weights depend only on the RNG state at `init`, not on
/// whatever draws random numbers in between.
pub fn force_init<M: Module>(module: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// A multi-layer perceptron whose every layer can be captured.
#[derive(Module, Debug)]
pub struct Mlp {
    linears: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    regularizer: Regularizer,
}

impl Mlp {
    pub fn activation(&self) -> Activation {
        self.activation
    }

    pub fn regularizer(&self) -> Regularizer {
        self.regularizer
    }

    /// The linear maps, layer 1 first.
    pub fn linears(&self) -> &[Linear] {
        &self.linears
    }

    /// Replaces layer `l`'s (1-based) weight `[d_{l−1}, d_l]` and bias (`None` keeps a network
    /// without biases without; a network with biases gets zeros). Used by learning rules that
    /// set weights directly instead of by gradient steps (`class_mean`).
    pub fn with_layer(mut self, l: usize, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Self {
        let lin = &mut self.linears[l - 1];
        assert_eq!(
            lin.weight.val().dims(),
            weight.dims(),
            "layer {l}: the new weight must keep the shape"
        );
        let d_out = weight.dims()[1];
        let device = weight.device();
        lin.weight = Param::from_tensor(weight);
        if lin.bias.is_some() {
            let b = bias.unwrap_or_else(|| Tensor::zeros([d_out], &device));
            lin.bias = Some(Param::from_tensor(b));
        }
        self
    }

    /// Layer l's computation for l = 1..=L (0-based `i = l − 1`).
    fn layer(&self, i: usize, h: Tensor<2>, mode: Stochastic) -> Tensor<2> {
        let hidden = i + 1 < self.linears.len();
        if !hidden {
            return self.linears[i].forward(h);
        }
        apply_unit_noise(self.pre_unit(i, h, mode), self.regularizer, mode)
    }

    /// Layer l's output before its unit regularizer (dropout mask or additive noise).
    fn pre_unit(&self, i: usize, h: Tensor<2>, mode: Stochastic) -> Tensor<2> {
        let lin = &self.linears[i];
        let z = match self.regularizer {
            Regularizer::DropConnect { p } if p > 0.0 && mode.is_active() => {
                dropconnect_linear(h, lin.weight.val(), lin.bias.as_ref().map(|b| b.val()), p)
            }
            _ => lin.forward(h),
        };
        self.activation.apply(z)
    }
}

impl LayeredModel for Mlp {
    fn layers(&self) -> Vec<LayerInfo> {
        let mut out = Vec::with_capacity(self.linears.len() + 1);
        let d0 = self.linears[0].weight.val().dims()[0];
        out.push(LayerInfo {
            index: 0,
            width: d0,
            role: LayerRole::Input,
            activation: Activation::Identity,
            regularizer: Regularizer::None,
        });
        let last = self.linears.len();
        for (i, lin) in self.linears.iter().enumerate() {
            let l = i + 1;
            let hidden = l < last;
            out.push(LayerInfo {
                index: l,
                width: lin.weight.val().dims()[1],
                role: if hidden {
                    LayerRole::Hidden
                } else {
                    LayerRole::Logits
                },
                activation: if hidden {
                    self.activation
                } else {
                    Activation::Identity
                },
                regularizer: if hidden {
                    self.regularizer
                } else {
                    Regularizer::None
                },
            });
        }
        out
    }

    fn depth(&self) -> usize {
        self.linears.len()
    }

    fn forward_layers(&self, x: Tensor<2>, mode: Stochastic) -> Vec<Tensor<2>> {
        let mut outs = Vec::with_capacity(self.linears.len() + 1);
        outs.push(x.clone());
        let mut h = x;
        for i in 0..self.linears.len() {
            h = self.layer(i, h, mode);
            outs.push(h.clone());
        }
        outs
    }

    fn forward_layers_pre_noise(
        &self,
        x: Tensor<2>,
        mode: Stochastic,
    ) -> (Vec<Tensor<2>>, Vec<Option<Tensor<2>>>) {
        let noisy = matches!(self.regularizer, Regularizer::GaussianNoise { std } if std > 0.0);
        let last = self.linears.len();
        let mut outs = Vec::with_capacity(last + 1);
        let mut pre = Vec::with_capacity(last + 1);
        outs.push(x.clone());
        pre.push(None);
        let mut h = x;
        for i in 0..last {
            if noisy && i + 1 < last {
                let s = self.pre_unit(i, h, mode);
                pre.push(Some(s.clone()));
                h = apply_unit_noise(s, self.regularizer, mode);
            } else {
                h = self.layer(i, h, mode);
                pre.push(None);
            }
            outs.push(h.clone());
        }
        (outs, pre)
    }

    fn forward(&self, x: Tensor<2>, mode: Stochastic) -> Tensor<2> {
        (0..self.linears.len()).fold(x, |h, i| self.layer(i, h, mode))
    }

    fn forward_from(&self, l: usize, t: Tensor<2>, mode: Stochastic) -> Tensor<2> {
        (l..self.linears.len()).fold(t, |h, i| self.layer(i, h, mode))
    }

    fn lipschitz_weights(&self) -> Vec<Tensor<2>> {
        self.linears.iter().map(|l| l.weight.val()).collect()
    }

    fn lipschitz_biases(&self) -> Vec<Option<Tensor<1>>> {
        self.linears
            .iter()
            .map(|l| l.bias.as_ref().map(|b| b.val()))
            .collect()
    }
}
