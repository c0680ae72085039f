//! Mini-batch training with burn's optimizers (SGD with momentum, Adam).

use std::time::Instant;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::Distribution;
use funnel_model::{LayeredModel, Stochastic};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::eval::{evaluate, Losses};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Stochastic gradient descent, with heavy-ball momentum when `momentum` > 0.
    Sgd,
    Adam,
    /// Stochastic gradient Langevin dynamics at inverse temperature `gamma`: an approximate
    /// sampler of the Gibbs posterior P(w|S) ∝ N(w; 0, prior_std²)·exp(−γ·L_S(w)), with L_S
    /// the mean of the bounded loss min(CE, c)/c ∈ [0, 1] (c = `metrics.ce_clip`).
    Sgld,
    /// The class-mean rule for linear DNNs on binary Gaussian data (DESIGN §2.7): random
    /// hidden projections, read-out from μ̂ = (1/n)·Σ Y_i X_i; no gradient steps.
    #[serde(rename = "class_mean")]
    ClassMean,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sgd => "sgd",
            Algorithm::Adam => "adam",
            Algorithm::Sgld => "sgld",
            Algorithm::ClassMean => "class_mean",
        }
    }
}

/// How to train. Every field has a default, so `[train]` may be left out of a config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub algorithm: Algorithm,
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// L2 penalty added to the gradient (coupled weight decay).
    pub weight_decay: f64,
    /// SGD momentum (default 0.9); only for `algorithm = "sgd"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// SGLD's inverse temperature γ (required for `algorithm = "sgld"`, refused otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// SGLD's Gaussian prior N(0, prior_std²·I) on every weight and bias (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_std: Option<f64>,
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Adam,
            lr: 1e-3,
            epochs: 50,
            batch_size: 64,
            weight_decay: 0.0,
            momentum: None,
            gamma: None,
            prior_std: None,
        }
    }
}

/// Largest number of epochs a config may ask for.
pub const MAX_EPOCHS: usize = 10_000_000;

/// An invalid training setting; `key` names it.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("training diverged: the loss became {loss} at epoch {epoch}, step {step}")]
    Diverged {
        epoch: usize,
        step: usize,
        loss: f64,
    },
}

impl TrainSpec {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key, message: String| Err(TrainError::Invalid { key, message });
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("must be finite and > 0, got {}", self.lr));
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be ≥ 1".into());
        }
        if self.epochs > MAX_EPOCHS {
            return bad(
                "epochs",
                format!("at most {MAX_EPOCHS}, got {}", self.epochs),
            );
        }
        if !(0.0..=1e6).contains(&self.weight_decay) {
            return bad(
                "weight_decay",
                format!("must be in [0, 1e6], got {}", self.weight_decay),
            );
        }
        match (self.algorithm, self.momentum) {
            (a, Some(_)) if a != Algorithm::Sgd => {
                return bad("momentum", "applies to algorithm = \"sgd\" only".into());
            }
            (Algorithm::Sgd, Some(m)) if !(m.is_finite() && (0.0..1.0).contains(&m)) => {
                return bad("momentum", format!("must be in [0, 1), got {m}"));
            }
            _ => {}
        }
        match (self.algorithm, self.gamma) {
            (Algorithm::Sgld, None) => {
                return bad(
                    "gamma",
                    "algorithm = \"sgld\" needs the inverse temperature gamma (e.g. gamma = 1000)"
                        .into(),
                );
            }
            (Algorithm::Sgld, Some(g)) if !(g.is_finite() && g > 0.0) => {
                return bad("gamma", format!("must be finite and > 0, got {g}"));
            }
            (Algorithm::Sgld, _) => {}
            (_, Some(_)) => return bad("gamma", "applies to algorithm = \"sgld\" only".into()),
            _ => {}
        }
        match (self.algorithm, self.prior_std) {
            (Algorithm::Sgld, Some(p)) if !(p.is_finite() && p > 0.0) => {
                return bad("prior_std", format!("must be finite and > 0, got {p}"));
            }
            (Algorithm::Sgld, _) => {}
            (_, Some(_)) => return bad("prior_std", "applies to algorithm = \"sgld\" only".into()),
            _ => {}
        }
        if self.algorithm == Algorithm::Sgld && self.weight_decay > 0.0 {
            return bad(
                "weight_decay",
                "SGLD's prior is its weight decay: set prior_std instead".into(),
            );
        }
        Ok(())
    }

    /// SGLD's prior standard deviation (default 1).
    pub fn prior(&self) -> f64 {
        self.prior_std.unwrap_or(1.0)
    }

    /// The configured optimizer, fresh (no moment estimates yet).
    pub fn optimizer(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.algorithm {
            Algorithm::Adam => AdamConfig::new().with_weight_decay(decay).init(),
            // the gradient step of SGLD: plain SGD on γ·L plus the prior's ‖w‖²/(2σ²), whose
            // gradient w/σ² is burn's coupled weight decay
            Algorithm::Sgld => SgdConfig::new()
                .with_weight_decay(Some(WeightDecayConfig::new(
                    (1.0 / (self.prior() * self.prior())) as f32,
                )))
                .init(),
            // never stepped; any optimizer will do
            Algorithm::ClassMean | Algorithm::Sgd => {
                let m = self.momentum.unwrap_or(0.9);
                let momentum = (m > 0.0).then_some(MomentumConfig {
                    momentum: m,
                    dampening: 0.0,
                    nesterov: false,
                });
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay)
                    .init()
            }
        }
    }
}

/// One line of `training.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Mean mini-batch training loss during the epoch (stochastic layers active): the
    /// cross-entropy, or for SGLD the bounded loss min(CE, c)/c it samples with.
    pub batch_loss: f64,
    pub train: Losses,
    pub test: Losses,
    /// Seconds since training started.
    pub seconds: f64,
}

/// Cross-entropy of every example, logits `[b, k]` against labels `[b]`: `[b, 1]`, kept in the
/// autodiff graph.
fn cross_entropies(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<2> {
    log_softmax(logits, 1)
        .gather(1, labels.unsqueeze_dim::<2>(1))
        .neg()
}

/// Mean cross-entropy of logits `[b, k]` against labels `[b]`, kept in the autodiff graph.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    cross_entropies(logits, labels).mean()
}

/// One optimisation step on a mini-batch (stochastic layers active): forward, cross-entropy,
/// backward, update. Returns the updated model and the batch loss. A non-finite loss still
/// updates the model; the caller decides to stop. `cargo bench --bench training` times this.
pub fn step_once<M: Module + LayeredModel>(
    model: M,
    optimizer: &mut ModuleOptimizer,
    lr: f64,
    x: Tensor<2>,
    y: Tensor<1, Int>,
) -> (M, f64) {
    let loss = cross_entropy(model.forward(x, Stochastic::Active), y);
    let value = loss.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optimizer.step(lr, model, grads), value)
}

/// Adds N(0, std²) noise to every float parameter (SGLD's Langevin term), keeping each
/// parameter's autodiff state. The noise comes from the device's RNG.
struct LangevinNoise {
    std: f64,
}

impl ModuleMapper for LangevinNoise {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let std = self.std;
        param.map(|t| {
            let grad = t.is_require_grad();
            let base = t.detach();
            let noise = base.random_like(Distribution::Normal(0.0, std));
            // detached again: a leaf, which `require_grad` accepts
            let noisy = (base + noise).detach();
            if grad {
                noisy.require_grad()
            } else {
                noisy
            }
        })
    }
}

/// One SGLD step on a mini-batch: w ← w − ε·(γ·∇L_B(w) + w/σ²) + sqrt(2ε)·ξ, ξ ~ N(0, I), with
/// L_B the batch mean of the bounded loss min(CE, c)/c and σ the prior std (the optimizer from
/// [`TrainSpec::optimizer`] carries w/σ² as weight decay). The stationary law of the exact
/// Langevin diffusion is the Gibbs posterior ∝ N(w; 0, σ²I)·exp(−γ·L_S(w)); the discretisation
/// and mini-batch noise add an O(ε) bias. Returns the model and L_B.
pub fn sgld_step<M: Module + LayeredModel>(
    model: M,
    optimizer: &mut ModuleOptimizer,
    step: f64,
    gamma: f64,
    clip: f64,
    x: Tensor<2>,
    y: Tensor<1, Int>,
) -> (M, f64) {
    let ce = cross_entropies(model.forward(x, Stochastic::Active), y);
    let bounded = ce.clamp_max(clip).mean() / clip;
    let value = bounded.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads((bounded * gamma).backward(), &model);
    let model = optimizer.step(step, model, grads);
    let model = model.map(&mut LangevinNoise {
        std: (2.0 * step).sqrt(),
    });
    (model, value)
}

/// A trained model (on the plain, non-autodiff device) and its history.
pub struct Trained<M> {
    pub model: M,
    pub history: Vec<EpochRecord>,
    pub seconds: f64,
}

/// Evaluation settings used after every epoch.
#[derive(Clone, Copy, Debug)]
pub struct EvalSettings {
    /// Whether stochastic layers are active when losses are measured.
    pub mode: Stochastic,
    /// The clip c of the clipped cross-entropy.
    pub clip: f64,
}

/// Trains `model`, which must live on `device.autodiff()`. Mini-batches are shuffled with
/// `seed`; stochastic layers draw from the device's RNG (seed the device before). After every
/// epoch the model is evaluated on both splits and `on_epoch` is called. A non-finite loss stops
/// training with [`TrainError::Diverged`].
pub fn train<M: Module + LayeredModel>(
    mut model: M,
    spec: &TrainSpec,
    split: &Split,
    device: &Device,
    seed: u64,
    eval: EvalSettings,
    on_epoch: &mut dyn FnMut(&EpochRecord),
) -> Result<Trained<M>, TrainError> {
    spec.validate()?;
    if spec.algorithm == Algorithm::ClassMean {
        return Err(TrainError::Invalid {
            key: "algorithm",
            message: "\"class_mean\" takes no gradient steps: use class_mean::class_mean".into(),
        });
    }
    let start = Instant::now();
    let ad = device.clone().autodiff();
    let mut optimizer = spec.optimizer();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..split.train.len()).collect();
    let mut history = Vec::new();
    let mut step = 0usize;
    for epoch in 1..=spec.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for batch in order.chunks(spec.batch_size) {
            step += 1;
            let x = split.train.features_of(batch, &ad);
            let y = split.train.labels_of(batch, &ad);
            let value;
            (model, value) = match (spec.algorithm, spec.gamma) {
                (Algorithm::Sgld, Some(gamma)) => {
                    sgld_step(model, &mut optimizer, spec.lr, gamma, eval.clip, x, y)
                }
                _ => step_once(model, &mut optimizer, spec.lr, x, y),
            };
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step,
                    loss: value,
                });
            }
            loss_sum += value;
            batches += 1;
        }
        let eval_model = model.valid();
        let record = EpochRecord {
            epoch,
            batch_loss: loss_sum / batches.max(1) as f64,
            train: evaluate(&eval_model, &split.train, device, eval.mode, eval.clip),
            test: evaluate(&eval_model, &split.test, device, eval.mode, eval.clip),
            seconds: start.elapsed().as_secs_f64(),
        };
        for loss in [record.train.cross_entropy, record.test.cross_entropy] {
            if !loss.is_finite() {
                return Err(TrainError::Diverged { epoch, step, loss });
            }
        }
        on_epoch(&record);
        history.push(record);
    }
    Ok(Trained {
        model: model.valid(),
        history,
        seconds: start.elapsed().as_secs_f64(),
    })
}
