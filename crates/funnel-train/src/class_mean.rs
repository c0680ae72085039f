//! The `class_mean` learning rule for linear DNNs on the binary Gaussian mixture, and the
//! closed forms it makes available (DESIGN §2.7).
//!
//! Data: Y uniform on {−1, +1}, X | Y ~ N(Y·μ, s²·I_d). The rule: hidden layers are
//! data-independent random projections (the network's seeded initialisation, biases zero) and
//! the read-out uses only μ̂ = (1/n)·Σ Y_i X_i. Since the weights depend on the data only through
//! μ̂, X_i | (Y_i, μ̂) ~ N(Y_i·μ̂, (1 − 1/n)·s²·I), and every layer's divergence has a closed form.
//!
//! burn stores a layer's weight as `[d_in, d_out]` and computes row vectors, T_l = X·M_l with
//! M_l = W_1⋯W_l (`[d, d_l]`); the design card's A_l is M_lᵀ.

use burn::prelude::*;
use funnel_model::{to_f32_vec, Activation, LayeredModel, Mlp, Regularizer};
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Split};
use crate::eval::evaluate;
use crate::train::{EpochRecord, EvalSettings, TrainError, Trained};

/// μ̂ = (1/n)·Σ Y_i X_i with Y = −1 for class 0 and +1 for class 1.
pub fn class_mean_estimate(train: &Dataset) -> Vec<f64> {
    let d = train.dim;
    let mut m = vec![0.0; d];
    for (row, &y) in train.x.chunks(d).zip(&train.y) {
        let sign = if y == 1 { 1.0 } else { -1.0 };
        for (acc, &v) in m.iter_mut().zip(row) {
            *acc += sign * v as f64;
        }
    }
    let n = train.len().max(1) as f64;
    m.iter_mut().for_each(|v| *v /= n);
    m
}

/// Layer l's weight `[d_{l−1}, d_l]` as an f64 matrix.
fn weight(model: &Mlp, l: usize) -> DMatrix<f64> {
    let w = model.linears()[l - 1].weight.val();
    let [r, c] = w.dims();
    let v: Vec<f64> = to_f32_vec(w).into_iter().map(f64::from).collect();
    DMatrix::from_row_slice(r, c, &v)
}

/// M_l = W_1⋯W_l for l = 0..=L (M_0 = I_d).
fn products(model: &Mlp) -> Vec<DMatrix<f64>> {
    let d = model.linears()[0].weight.val().dims()[0];
    let mut out = vec![DMatrix::identity(d, d)];
    for l in 1..=model.depth() {
        let next = out[l - 1].clone() * weight(model, l);
        out.push(next);
    }
    out
}

/// Relative singular-value threshold below which a direction counts as absent (rank, projector).
const RANK_TOL: f64 = 1e-9;

/// Checks that the rule applies: identity activation, no stochastic layer, two classes.
pub fn check_applicable(model: &Mlp, classes: usize) -> Result<(), TrainError> {
    let bad = |key, message: &str| {
        Err(TrainError::Invalid {
            key,
            message: message.into(),
        })
    };
    if model.activation() != Activation::Identity {
        return bad(
            "algorithm",
            "\"class_mean\" trains linear DNNs only: set model.activation = \"identity\"",
        );
    }
    if model.regularizer() != Regularizer::None {
        return bad(
            "algorithm",
            "\"class_mean\" sets the weights in closed form: set model.regularizer = { kind = \"none\" }",
        );
    }
    if classes != 2 {
        return bad("algorithm", "\"class_mean\" needs binary data (2 classes)");
    }
    Ok(())
}

/// Trains by the class-mean rule: hidden layers keep their (seeded, data-independent) initial
/// weights with zero biases; the read-out is the linear discriminant of μ̂ within the row space
/// of the hidden layers, v = M_{L−1}⁺·μ̂, so that the logit difference is 2·μ̂ᵀΠ x / s² (the
/// Gaussian log-odds with μ̂ for μ, restricted to what the hidden layers keep). `noise_std` is
/// the data's s. The model must be on a plain (non-autodiff) device. Returns the model, one
/// history record (both splits evaluated) and μ̂.
pub fn class_mean(
    model: Mlp,
    split: &Split,
    noise_std: f64,
    device: &Device,
    eval: EvalSettings,
) -> Result<(Trained<Mlp>, Vec<f64>), TrainError> {
    let start = std::time::Instant::now();
    check_applicable(&model, split.train.num_classes)?;
    let mu_hat = class_mean_estimate(&split.train);
    let depth = model.depth();
    let m = products(&model);
    let hidden = &m[depth - 1]; // [d, d_{L−1}]
    let pinv = hidden
        .clone()
        .pseudo_inverse(RANK_TOL * hidden.norm().max(f64::MIN_POSITIVE))
        .map_err(|e| TrainError::Invalid {
            key: "algorithm",
            message: format!("class_mean: pseudo-inverse failed: {e}"),
        })?;
    let v = pinv * DVector::from_vec(mu_hat.clone()); // [d_{L−1}]
    let s2 = noise_std * noise_std;
    let d_last = v.len();
    let mut readout = Vec::with_capacity(d_last * 2);
    for i in 0..d_last {
        readout.push((-v[i] / s2) as f32);
        readout.push((v[i] / s2) as f32);
    }
    let mut model = model;
    for l in 1..depth {
        let w = model.linears()[l - 1].weight.val();
        model = model.with_layer(l, w, None);
    }
    let readout = Tensor::<2>::from_data(TensorData::new(readout, [d_last, 2]), device);
    model = model.with_layer(depth, readout, None);
    let record = EpochRecord {
        epoch: 1,
        batch_loss: f64::NAN,
        train: evaluate(&model, &split.train, device, eval.mode, eval.clip),
        test: evaluate(&model, &split.test, device, eval.mode, eval.clip),
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((
        Trained {
            model,
            history: vec![record],
            seconds: start.elapsed().as_secs_f64(),
        },
        mu_hat,
    ))
}

/// The closed forms of one layer of a class-mean linear DNN (DESIGN §2.7).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosedForm {
    pub layer: usize,
    /// r_l = rank(A_l).
    pub rank: usize,
    /// ‖A_l‖_F.
    pub frobenius: f64,
    /// ‖Π_l(μ̂ − μ)‖, Π_l the projector on the row space of A_l.
    pub projected_error: f64,
    /// This run's D_l = (r/2)·[−1/n − ln(1 − 1/n)] + ‖Π_l(μ̂ − μ)‖²/(2s²).
    pub kl_per_run: f64,
    /// E D_l over training sets: (r/2)·ln(n/(n − 1)) at layers that do not depend on the data;
    /// at the read-out (`readout`), whose direction is Π_M μ̂, ½[−1/n − ln(1 − 1/n)] +
    /// E[(uᵀ(μ̂ − μ))²]/(2s²) by quadrature ([`crate::readout`]).
    pub kl_expected: f64,
    /// Whether this is the class-mean read-out (the logits), whose direction depends on μ̂, so
    /// that `kl_expected` is the quadrature and not (r/2)·ln(n/(n−1)). False in summaries
    /// written before the distinction.
    #[serde(default)]
    pub readout: bool,
    /// sqrt(E D_l / 2) (= sqrt(r·ln(n/(n−1))/4) at data-independent layers): the KL bound on the
    /// expected 0-1 gap.
    pub kl_bound_expected: f64,
    /// This run's W2 = sqrt(‖A_l(μ̂ − μ)‖² + s²(1 − sqrt(1 − 1/n))²·‖A_l‖_F²) ≥ W1.
    pub w2_per_run: f64,
    /// sqrt(E W2²) = s‖A_l‖_F·sqrt(1/n + (1 − sqrt(1 − 1/n))²) ≈ s‖A_l‖_F/√n.
    pub w2_expected: f64,
}

/// Closed forms of every layer 0..=L of `model` (trained by [`class_mean`] with this `mu_hat`)
/// for the mixture with class-1 mean `mu`, noise `s` and `n` training examples. Layers
/// 0..L−1 are data-independent; layer L is the read-out, whose expectation is the quadrature
/// of [`crate::readout`] with the hidden product's rank and ‖Π_M μ‖.
pub fn closed_forms(model: &Mlp, mu: &[f64], mu_hat: &[f64], s: f64, n: usize) -> Vec<ClosedForm> {
    let n_points = n;
    let n = n as f64;
    let err = DVector::from_iterator(mu.len(), mu_hat.iter().zip(mu).map(|(a, b)| a - b));
    let mu_v = DVector::from_column_slice(mu);
    let s2 = s * s;
    let shrink = 1.0 - (1.0 - 1.0 / n).sqrt();
    let maps = products(model);
    let last = maps.len() - 1;
    // (rank, ‖Π_l μ‖) of the layer before the read-out
    let mut hidden = (0usize, 0.0f64);
    maps.into_iter()
        .enumerate()
        .map(|(layer, m)| {
            // row space of A_l = column space of M_l: its left singular vectors
            let svd = m.clone().svd(true, false);
            let smax = svd.singular_values.max();
            let u = svd.u.expect("computed");
            let keep: Vec<usize> = (0..svd.singular_values.len())
                .filter(|&i| svd.singular_values[i] > RANK_TOL * smax && smax > 0.0)
                .collect();
            let rank = keep.len();
            let proj2: f64 = keep.iter().map(|&i| u.column(i).dot(&err).powi(2)).sum();
            let r = rank as f64;
            let frobenius = m.norm();
            let a_err2 = (m.transpose() * &err).norm_squared();
            let readout = layer == last && layer > 0 && hidden.0 > 0;
            let kl_expected = if readout {
                // rank 1 along Π_M μ̂: the constant term once, the projected error by quadrature
                0.5 * (-1.0 / n - (1.0 - 1.0 / n).ln())
                    + crate::readout::readout_expected_q(hidden.0, hidden.1, s, n_points)
                        / (2.0 * s2)
            } else {
                r / 2.0 * (n / (n - 1.0)).ln()
            };
            let proj_mu2: f64 = keep.iter().map(|&i| u.column(i).dot(&mu_v).powi(2)).sum();
            hidden = (rank, proj_mu2.sqrt());
            ClosedForm {
                layer,
                rank,
                frobenius,
                projected_error: proj2.sqrt(),
                kl_per_run: r / 2.0 * (-1.0 / n - (1.0 - 1.0 / n).ln()) + proj2 / (2.0 * s2),
                kl_expected,
                readout,
                kl_bound_expected: (kl_expected / 2.0).sqrt(),
                w2_per_run: (a_err2 + s2 * shrink * shrink * frobenius * frobenius).sqrt(),
                w2_expected: s * frobenius * (1.0 / n + shrink * shrink).sqrt(),
            }
        })
        .collect()
}

/// The network's layers as functions of the input: M_l for l = 0..=L (for tests and reports).
pub fn layer_maps(model: &Mlp) -> Vec<DMatrix<f64>> {
    products(model)
}
