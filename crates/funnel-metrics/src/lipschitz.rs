//! Lipschitz constants ρ_l of the loss as a function of layer l's representation
//! (DESIGN §2.4): ρ_l = ρ_loss · Π_{k=l+1..L} Lip(R_k) · Lip(act_k) · ‖W_k‖.

use burn::prelude::*;
use funnel_model::{to_f32_vec, LayeredModel, Regularizer, Stochastic};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// ‖∇_z CE(z, y)‖₂ = ‖softmax(z) − e_y‖₂ ≤ √2 for any number of classes.
pub const CE_LIPSCHITZ: f64 = std::f64::consts::SQRT_2;

/// Largest singular value of `w` by power iteration on the backend (on WᵀW), run until the
/// estimate changes by less than 1e-7 relative over 10 iterations, or `max_iter` iterations.
/// Power iteration approaches σ_max from below, so ρ_l can fall short of the true constant by
/// the remaining error: within 1e-4 relative of an SVD in the tests, more when the two largest
/// singular values nearly coincide (convergence then slows).
pub fn spectral_norm(w: &Tensor<2>, max_iter: usize, seed: u64) -> f64 {
    // scale to max |w_ij| = 1 first, so WᵀW cannot overflow f32 for huge weights
    let scale = w.clone().abs().max().into_scalar::<f32>() as f64;
    if scale == 0.0 || !scale.is_finite() {
        return if scale == 0.0 { 0.0 } else { f64::NAN };
    }
    let w = &(w.clone() / scale);
    let [_, cols] = w.dims();
    let device = w.device();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v0: Vec<f32> = (0..cols)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z as f32
        })
        .collect();
    let mut v = Tensor::<2>::from_data(TensorData::new(v0, [cols, 1]), &device);
    let wt = w.clone().transpose();
    let mut sigma = 0.0f64;
    const CHECK_EVERY: usize = 10;
    let mut it = 0;
    while it < max_iter {
        for _ in 0..CHECK_EVERY {
            let u = w.clone().matmul(v.clone()); // [rows, 1]
            let x = wt.clone().matmul(u); // [cols, 1] = WᵀW v
            let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-30);
            v = x / norm.unsqueeze::<2>();
        }
        it += CHECK_EVERY;
        let wv = to_f32_vec(w.clone().matmul(v.clone()));
        let s = wv.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let converged = (s - sigma).abs() <= 1e-7 * s.max(1e-30);
        sigma = s;
        if converged {
            break;
        }
    }
    sigma * scale
}

/// Frobenius norm ‖w‖_F (≥ the spectral norm of any masked copy of w).
pub fn frobenius_norm(w: &Tensor<2>) -> f64 {
    to_f32_vec(w.clone())
        .iter()
        .map(|a| (*a as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The factor by which layer k can stretch distances, for one layer's weights `w`.
///
/// * deterministic layers: Lip(act)·‖W‖_op;
/// * Dropout (active): kept units are scaled by 1/(1−p): Lip(act)·‖W‖_op/(1−p);
/// * DropConnect (active): a masked matrix can have a larger spectral norm than W, but never a
///   larger Frobenius norm: Lip(act)·‖W‖_F/(1−p);
/// * Gaussian noise is additive and does not change the constant.
pub fn layer_factor(
    w: &Tensor<2>,
    activation_lip: f64,
    reg: Regularizer,
    mode: Stochastic,
    seed: u64,
) -> f64 {
    let active = mode.is_active();
    match reg {
        Regularizer::DropConnect { p } if active && p > 0.0 => {
            activation_lip * frobenius_norm(w) / (1.0 - p)
        }
        Regularizer::Dropout { p } if active && p > 0.0 => {
            activation_lip * spectral_norm(w, 5000, seed) / (1.0 - p)
        }
        _ => activation_lip * spectral_norm(w, 5000, seed),
    }
}

/// ρ_l for l = 0..=L: the Lipschitz constant of t ↦ CE(f_{l+1..L}(t), y), ρ_L = √2.
pub fn lipschitz_constants<M: LayeredModel>(model: &M, mode: Stochastic, seed: u64) -> Vec<f64> {
    let layers = model.layers();
    let weights = model.lipschitz_weights();
    let depth = weights.len();
    let mut rho = vec![0.0; depth + 1];
    rho[depth] = CE_LIPSCHITZ;
    for l in (0..depth).rev() {
        // layer l+1 maps T_l to T_{l+1} with weights[l]
        let info = &layers[l + 1];
        let factor = layer_factor(
            &weights[l],
            info.activation.lipschitz(),
            info.regularizer,
            mode,
            seed ^ l as u64,
        );
        rho[l] = rho[l + 1] * factor;
    }
    rho
}

/// Local Lipschitz constants ρ̂_l: for each layer l = 0..=L, the largest ‖∇_t CE(f_{l+1..L}(t), y)‖₂
/// over the given examples (rows of `x` on the plain `device`, with `labels`), t = T_l(x).
///
/// This is an *empirical* constant, not a certificate: the largest slope at the data is a lower
/// bound of the true ρ_l (the slope between coupled train/test points can be larger), while the
/// product of norms in [`lipschitz_constants`] is an upper bound. ρ̂_l·W_l is what the funnel
/// looks like when the rest of the network is as smooth as it is at the data; with product-of-
/// norms constants the W1 bound is non-increasing in l in theory (W1(T_{l+1}) ≤ Lip·‖W‖·W1(T_l)
/// for every coupling), so only a tighter constant can put the minimum at an interior layer.
/// With stochastic layers active, one draw of the masks/noise per example.
pub fn local_lipschitz_constants<M: LayeredModel>(
    model: &M,
    x: Tensor<2>,
    labels: &[usize],
    mode: Stochastic,
    device: &Device,
) -> Vec<f64> {
    let n = labels.len();
    if n == 0 {
        return vec![f64::NAN; model.depth() + 1];
    }
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&v| v as i64).collect::<Vec<_>>(), [n]),
        device,
    );
    let layers = model.forward_layers(x, mode);
    layers
        .into_iter()
        .enumerate()
        .map(|(l, t)| {
            // only t carries autodiff: the plain-device weights enter as constants
            let t = t.autodiff().require_grad();
            let logits = model.forward_from(l, t.clone(), mode);
            let logp = burn::tensor::activation::log_softmax(logits, 1);
            // the sum over examples, so row i of the gradient is example i's own gradient
            let loss = logp.gather(1, y.clone().unsqueeze_dim::<2>(1)).sum().neg();
            let grads = loss.backward();
            match t.grad(&grads) {
                Some(g) => {
                    let d = g.dims()[1];
                    to_f32_vec(g)
                        .chunks(d.max(1))
                        .map(|row| row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt())
                        .fold(0.0, f64::max)
                }
                None => 0.0, // the loss does not depend on t
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;
    use rand::RngExt;
    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn power_iteration_matches_svd() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (r, c) in [(5, 3), (40, 64), (128, 16), (1, 7)] {
            let data: Vec<f32> = (0..r * c).map(|_| rng.random_range(-1.0..1.0)).collect();
            let w = Tensor::<2>::from_data(TensorData::new(data.clone(), [r, c]), &device());
            let m =
                DMatrix::from_row_slice(r, c, &data.iter().map(|v| *v as f64).collect::<Vec<_>>());
            let svd_max = m.singular_values().max();
            let s = spectral_norm(&w, 5000, 1);
            assert!(
                (s - svd_max).abs() <= 1e-4 * svd_max,
                "{r}×{c}: {s} vs {svd_max}"
            );
            let fro = frobenius_norm(&w);
            assert!((fro - m.norm()).abs() <= 1e-5 * fro);
        }
    }
}
