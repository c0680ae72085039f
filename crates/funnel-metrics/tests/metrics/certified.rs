//! Certified Lipschitz constants (`certified`): the Combettes–Pesquet sum against its
//! brute-force definition, hand computations and the SVD of explicit products, interval
//! propagation against sampled points, and ρ̂ ≤ ρ^box, ρ̂ ≤ ρ^CP ≤ product on random networks
//! (ρ̂ the largest gradient norm at many points of the box).

use burn::prelude::*;
use funnel_metrics::certified::{
    bounding_box, certified_constants, cp_bound, cp_bound_by_enumeration, op_norm_upper, HostChain,
    HostLayer,
};
use funnel_metrics::lipschitz::{lipschitz_constants, CE_LIPSCHITZ};
use funnel_metrics::Points;
use funnel_model::{to_f32_vec, Activation, LayeredModel, Mlp, MlpConfig, Regularizer, Stochastic};
use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{device, serial};

fn random_matrix(rng: &mut ChaCha8Rng, r: usize, c: usize) -> DMatrix<f64> {
    DMatrix::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0))
}

fn svd(m: &DMatrix<f64>) -> f64 {
    m.clone().singular_values().max()
}

#[test]
fn cp_of_one_matrix_is_its_spectral_norm() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (r, c) in [(1, 1), (5, 7), (30, 4), (64, 64)] {
        let w = random_matrix(&mut rng, r, c);
        let cp = cp_bound(std::slice::from_ref(&w));
        let s = svd(&w);
        assert!(cp >= s && cp <= s * (1.0 + 1e-9), "{r}×{c}: {cp} vs {s}");
    }
}

/// θ by dynamic programming over the last cut equals the sum over all 2^{m−1} cut sets, and
/// lies between the norm of the product (no cut) and the product of norms (every cut).
#[test]
fn cp_dynamic_programme_equals_the_sum_over_every_cut_set() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for m in 1..=6 {
        let dims: Vec<usize> = (0..=m).map(|_| rng.random_range(1..9)).collect();
        let mats: Vec<DMatrix<f64>> = (0..m)
            .map(|i| random_matrix(&mut rng, dims[i + 1], dims[i]))
            .collect();
        let dp = cp_bound(&mats);
        let brute = cp_bound_by_enumeration(&mats);
        assert!((dp - brute).abs() <= 1e-9 * brute, "m={m}: {dp} vs {brute}");
        let product = mats.iter().skip(1).fold(mats[0].clone(), |p, w| w * p);
        let norms: f64 = mats.iter().map(svd).product();
        assert!(svd(&product) <= dp * (1.0 + 1e-12), "m={m}");
        assert!(dp <= norms * (1.0 + 1e-9), "m={m}: {dp} > {norms}");
    }
}

fn layer(a: DMatrix<f64>, b: Vec<f64>, activation: Activation) -> HostLayer {
    let n = a.nrows();
    HostLayer {
        a,
        b: DVector::from_vec(if b.is_empty() { vec![0.0; n] } else { b }),
        activation,
        regularizer: Regularizer::None,
    }
}

/// f(t) = relu(2·t₁) − relu(t₂): W₁ = diag(2, 1), W₂ = (1, −1). By hand: ‖W₂W₁‖ = ‖(2, −1)‖ =
/// √5, ‖W₁‖ = 2, ‖W₂‖ = √2, so CP = (√5 + 2√2)/2 ≈ 2.532 < 2√2 ≈ 2.828 (the product), and the
/// true constant is max over the gradients {(2, −1), (2, 0), (0, −1), 0} = √5 ≈ 2.236.
#[test]
fn cp_is_strictly_tighter_than_the_product_on_a_two_layer_example() {
    let w1 = DMatrix::from_row_slice(2, 2, &[2.0, 0.0, 0.0, 1.0]);
    let w2 = DMatrix::from_row_slice(1, 2, &[1.0, -1.0]);
    let want = (5f64.sqrt() + 2.0 * 2f64.sqrt()) / 2.0;
    let cp = cp_bound(&[w1.clone(), w2.clone()]);
    assert!(cp >= want && cp <= want * (1.0 + 1e-9), "{cp} vs {want}");
    let chain = HostChain {
        layers: vec![
            layer(w1.clone(), vec![], Activation::Relu),
            layer(w2.clone(), vec![], Activation::Identity),
        ],
        mode: Stochastic::Off,
    };
    let rho = chain.cp_constants();
    assert!((rho[0] - CE_LIPSCHITZ * want).abs() <= 1e-9 * rho[0]);
    assert!((rho[1] - CE_LIPSCHITZ * 2f64.sqrt()).abs() <= 1e-9 * rho[1]);
    let product = chain.product_constants();
    assert!((product[0] - CE_LIPSCHITZ * 2.0 * 2f64.sqrt()).abs() <= 1e-9 * product[0]);
    assert!(rho[0] < product[0] * 0.9);
    // on the box t₂ ≤ −0.5 the second unit is dead: f = relu(2t₁), constant 2 there
    let boxed = chain.box_constant(0, &[-1.0, -2.0], &[1.0, -0.5]);
    let want_box = CE_LIPSCHITZ * (2.0 + 2.0 * 1.0) / 2.0; // (‖(2,0)‖ + ‖(1,0)‖·‖W₁‖)/2
    assert!(
        (boxed - want_box).abs() <= 1e-9 * want_box,
        "{boxed} vs {want_box}"
    );
    // and the product form of the global constant is the true constant's upper bound
    assert!(5f64.sqrt() * CE_LIPSCHITZ <= rho[0]);
}

/// Identity activations are not cut: the constant of a linear DNN is exactly √2·‖W_L⋯W_{l+1}‖
/// (the SVD of the explicit product), below the product of norms.
#[test]
fn identity_chain_gets_exactly_the_norm_of_the_product() {
    let _rng = serial();
    let d = device();
    let m = MlpConfig {
        input_dim: 6,
        widths: vec![9, 5, 7],
        num_classes: 3,
        activation: Activation::Identity,
        bias: true,
        regularizer: Regularizer::None,
    }
    .init(&d, 5)
    .unwrap();
    let chain = HostChain::of(&m, Stochastic::Off);
    let cp = chain.cp_constants();
    let product = chain.product_constants();
    let power = lipschitz_constants(&m, Stochastic::Off, 1);
    // the explicit products from burn's [d_in, d_out] weights: t·W_{l+1}⋯W_L
    let ws: Vec<DMatrix<f64>> = m
        .lipschitz_weights()
        .into_iter()
        .map(|w| {
            let [r, c] = w.dims();
            let v: Vec<f64> = to_f32_vec(w).iter().map(|x| *x as f64).collect();
            DMatrix::from_row_slice(r, c, &v)
        })
        .collect();
    for l in 0..=4 {
        let want = if l == 4 {
            CE_LIPSCHITZ
        } else {
            let p = ws[l + 1..].iter().fold(ws[l].clone(), |p, w| p * w);
            CE_LIPSCHITZ * svd(&p)
        };
        assert!(
            cp[l] >= want * (1.0 - 1e-12) && cp[l] <= want * (1.0 + 1e-9),
            "layer {l}: {} vs {want}",
            cp[l]
        );
        assert!(cp[l] <= product[l] * (1.0 + 1e-12));
        assert!(
            (product[l] - power[l]).abs() <= 1e-4 * power[l],
            "layer {l}"
        );
    }
    assert!(cp[0] < 0.9 * product[0], "{} vs {}", cp[0], product[0]);
}

fn mlp(activation: Activation, regularizer: Regularizer, seed: u64) -> Mlp {
    let d = device();
    d.seed(seed);
    MlpConfig {
        input_dim: 5,
        widths: vec![16, 12, 8],
        num_classes: 3,
        activation,
        bias: true,
        regularizer,
    }
    .init(&d, seed)
    .unwrap()
}

fn points_of(t: Tensor<2>) -> Points {
    let [n, d] = t.dims();
    Points::new(to_f32_vec(t), n, d)
}

/// n points uniform in the box (corners included).
fn sample_box(rng: &mut ChaCha8Rng, lo: &[f64], hi: &[f64], n: usize) -> Tensor<2> {
    let d = lo.len();
    let mut data = Vec::with_capacity(n * d);
    for i in 0..n {
        for j in 0..d {
            let v = match i {
                0 => lo[j],
                1 => hi[j],
                _ => rng.random_range(0.0..=1.0) * (hi[j] - lo[j]) + lo[j],
            };
            data.push(v as f32);
        }
    }
    Tensor::<2>::from_data(TensorData::new(data, [n, d]), &device())
}

/// The largest ‖∇_t CE(f_{l+1..L}(t), y)‖ over the rows t and every label y.
fn max_gradient(m: &Mlp, l: usize, t: Tensor<2>, mode: Stochastic) -> f64 {
    let n = t.dims()[0];
    let mut best = 0.0f64;
    for y in 0..3 {
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(vec![y as i64; n], [n]), &device());
        let t = t.clone().autodiff().require_grad();
        let logits = m.forward_from(l, t.clone(), mode);
        let logp = burn::tensor::activation::log_softmax(logits, 1);
        let loss = logp.gather(1, labels.unsqueeze_dim::<2>(1)).sum().neg();
        let grads = loss.backward();
        if let Some(g) = t.grad(&grads) {
            let d = g.dims()[1];
            for row in to_f32_vec(g).chunks(d) {
                let s = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                best = best.max(s);
            }
        }
    }
    best
}

/// On random networks: ρ̂ (gradients at 400 points of each layer's box, and at the points
/// the box was built from) ≤ ρ^box, ρ̂ ≤ ρ^CP ≤ product ≈ power iteration, ρ^cert their minimum.
/// Dropout and DropConnect are checked active (a fresh mask per point and gradient).
#[test]
fn certified_constants_bracket_the_empirical_slopes() {
    let _rng = serial();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let p = 0.3;
    for (act, reg, mode) in [
        (Activation::Relu, Regularizer::None, Stochastic::Off),
        (Activation::Tanh, Regularizer::None, Stochastic::Off),
        (Activation::Sigmoid, Regularizer::None, Stochastic::Off),
        (Activation::Gelu, Regularizer::None, Stochastic::Off),
        (
            Activation::Relu,
            Regularizer::Dropout { p },
            Stochastic::Active,
        ),
        (
            Activation::Tanh,
            Regularizer::DropConnect { p },
            Stochastic::Active,
        ),
        (
            Activation::Tanh,
            Regularizer::GaussianNoise { std: 0.5 },
            Stochastic::Active,
        ),
    ] {
        let m = mlp(act, reg, 7);
        device().seed(8);
        let n = 200;
        let x = sample_box(&mut rng, &[-1.0; 5], &[1.0; 5], n);
        let layers = m.forward_layers(x, mode);
        let boxes: Vec<_> = layers
            .iter()
            .map(|t| bounding_box(&[&points_of(t.clone())]))
            .collect();
        let c = certified_constants(&m, mode, &boxes);
        let power = lipschitz_constants(&m, mode, 1);
        let tag = format!("{act} {reg:?}");
        for l in 0..=4 {
            let (lo, hi) = boxes[l].clone().unwrap();
            let inside = sample_box(&mut rng, &lo, &hi, 400);
            let emp =
                max_gradient(&m, l, inside, mode).max(max_gradient(&m, l, layers[l].clone(), mode));
            let (bx, cp, prod, cert) = (c.boxed[l], c.cp[l], c.product[l], c.cert[l]);
            assert!(
                emp <= bx * (1.0 + 1e-5),
                "{tag} layer {l}: ρ̂ {emp} > box {bx}"
            );
            assert!(
                emp <= cp * (1.0 + 1e-5),
                "{tag} layer {l}: ρ̂ {emp} > CP {cp}"
            );
            assert!(
                cp <= prod * (1.0 + 1e-9),
                "{tag} layer {l}: CP {cp} > {prod}"
            );
            assert!(
                (prod - power[l]).abs() <= 1e-4 * power[l],
                "{tag} layer {l}: {prod} vs power iteration {}",
                power[l]
            );
            assert_eq!(cert, bx.min(cp).min(prod), "{tag} layer {l}");
            // not a theorem (diag(u) ≤ 1 inside a product can raise a norm), but what these
            // networks show
            assert!(
                bx <= cp * (1.0 + 1e-9),
                "{tag} layer {l}: box {bx} > CP {cp}"
            );
        }
        assert_eq!(c.cp[4], CE_LIPSCHITZ);
    }
}

/// Every layer of points sampled in the input box lies in its propagated interval (f32 forward
/// passes, so within f32 rounding), with dropout active (0 or scaled) too.
#[test]
fn interval_propagation_contains_every_sampled_layer() {
    let _rng = serial();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for (act, reg, mode) in [
        (Activation::Relu, Regularizer::None, Stochastic::Off),
        (Activation::Tanh, Regularizer::None, Stochastic::Off),
        (Activation::Sigmoid, Regularizer::None, Stochastic::Off),
        (Activation::Gelu, Regularizer::None, Stochastic::Off),
        (
            Activation::Relu,
            Regularizer::Dropout { p: 0.4 },
            Stochastic::Active,
        ),
        (
            Activation::Tanh,
            Regularizer::DropConnect { p: 0.4 },
            Stochastic::Active,
        ),
    ] {
        let m = mlp(act, reg, 9);
        device().seed(10);
        let chain = HostChain::of(&m, mode);
        let (lo, hi) = (
            vec![-0.5, 0.0, -2.0, 1.0, -1.0],
            vec![0.5, 0.1, 2.0, 3.0, -0.9],
        );
        let boxes = chain.propagate(0, &lo, &hi);
        let x = sample_box(&mut rng, &lo, &hi, 2000);
        let layers = m.forward_layers(x, mode);
        for k in 1..=4 {
            let b = boxes[k].as_ref().unwrap();
            let iv = if k == 4 {
                b.pre.as_ref()
            } else {
                b.post.as_ref()
            }
            .unwrap();
            let t = points_of(layers[k].clone());
            for row in t.data.chunks(t.d) {
                for (i, v) in row.iter().enumerate() {
                    let v = *v as f64;
                    let tol = 1e-5 * (1.0 + v.abs());
                    assert!(
                        iv.lo[i] - tol <= v && v <= iv.hi[i] + tol,
                        "{act} {reg:?} layer {k} unit {i}: {v} ∉ [{}, {}]",
                        iv.lo[i],
                        iv.hi[i]
                    );
                }
            }
        }
    }
}

/// A ReLU unit whose pre-activation is ≤ 0 over the whole box has slope 0 there, and the box
/// constant drops its column: here f = relu(t₁ + t₂ − 10) + relu(t₂) on [−1, 1]², whose first
/// unit is dead, so ρ^box = √2·‖(0, 1)‖ = √2 while CP is √2·(‖(1, 2)‖ + ‖W₁‖·‖W₂‖)/2.
#[test]
fn a_dead_relu_unit_has_slope_zero_over_the_box() {
    let w1 = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 0.0, 1.0]);
    let w2 = DMatrix::from_row_slice(1, 2, &[1.0, 1.0]);
    let chain = HostChain {
        layers: vec![
            layer(w1.clone(), vec![-10.0, 0.0], Activation::Relu),
            layer(w2.clone(), vec![0.0], Activation::Identity),
        ],
        mode: Stochastic::Off,
    };
    let boxes = chain.propagate(0, &[-1.0, -1.0], &[1.0, 1.0]);
    let b1 = boxes[1].as_ref().unwrap();
    assert_eq!(b1.slopes.as_deref(), Some(&[0.0, 1.0][..]));
    let pre = b1.pre.as_ref().unwrap();
    assert!((pre.lo[0] + 12.0).abs() < 1e-12 && (pre.hi[0] + 8.0).abs() < 1e-12);
    let rho = chain.box_constant(0, &[-1.0, -1.0], &[1.0, 1.0]);
    // W₂·diag(0, 1) = (0, 1), and (0, 1)·W₁ = (0, 1): (‖(0, 1)‖ + ‖(0, 1)‖·‖W₁‖)/2
    let n1 = svd(&w1);
    let want = CE_LIPSCHITZ * (1.0 + n1) / 2.0;
    assert!((rho - want).abs() <= 1e-9 * want, "{rho} vs {want}");
    let cp = chain.cp_constants()[0];
    let want_cp = CE_LIPSCHITZ * (svd(&(&w2 * &w1)) + svd(&w2) * n1) / 2.0;
    assert!((cp - want_cp).abs() <= 1e-9 * want_cp, "{cp} vs {want_cp}");
    assert!(rho < cp);
    assert!(op_norm_upper(&w1) >= n1);
}

/// Active Gaussian noise makes the box unbounded after the noisy layer: no intervals there, and
/// the global slopes (1 for tanh) from then on; off, the box stays bounded.
#[test]
fn gaussian_noise_unbounds_the_box_downstream() {
    let _rng = serial();
    let m = mlp(
        Activation::Tanh,
        Regularizer::GaussianNoise { std: 0.2 },
        11,
    );
    let (lo, hi) = (vec![-0.1; 5], vec![0.1; 5]);
    let active = HostChain::of(&m, Stochastic::Active).propagate(0, &lo, &hi);
    let b1 = active[1].as_ref().unwrap();
    assert!(b1.pre.is_some() && b1.post.is_none());
    // tanh′ over the unit's own (bounded) interval: 1 exactly where it contains 0
    let pre = b1.pre.as_ref().unwrap();
    for (i, s) in b1.slopes.as_ref().unwrap().iter().enumerate() {
        let zero_inside = pre.lo[i] <= 0.0 && pre.hi[i] >= 0.0;
        assert_eq!(*s == 1.0, zero_inside, "unit {i}: slope {s}");
        assert!(*s > 0.0 && *s <= 1.0);
    }
    let b2 = active[2].as_ref().unwrap();
    assert!(b2.pre.is_none());
    assert!(b2.slopes.as_ref().unwrap().iter().all(|s| *s == 1.0));
    let off = HostChain::of(&m, Stochastic::Off).propagate(0, &lo, &hi);
    assert!(off[3].as_ref().unwrap().post.is_some());
}

/// Saturated units: on t ∈ [0.5, 1.5], f(t) = act(2t + 1) + ½·act(−3t − 2) has pre-activations
/// in [2, 4] and [−6.5, −3.5], so the slopes over the box are act′(2) and act′(3.5) (at the end
/// nearest 0, not the far one), and with M₁ = (2, −3)ᵀ, M₂ = (u₁, ½u₂) the box constant is
/// √2·(|2u₁ − 1.5u₂| + ‖M₂‖·√13)/2 by hand. It must also dominate |f′| on a fine grid.
#[test]
fn saturated_units_get_the_slope_at_the_end_nearest_zero() {
    for act in [Activation::Tanh, Activation::Sigmoid] {
        let chain = HostChain {
            layers: vec![
                layer(
                    DMatrix::from_column_slice(2, 1, &[2.0, -3.0]),
                    vec![1.0, -2.0],
                    act,
                ),
                layer(
                    DMatrix::from_row_slice(1, 2, &[1.0, 0.5]),
                    vec![0.0],
                    Activation::Identity,
                ),
            ],
            mode: Stochastic::Off,
        };
        let deriv = |z: f64| match act {
            Activation::Tanh => 1.0 - z.tanh().powi(2),
            _ => {
                let s = 1.0 / (1.0 + (-z).exp());
                s * (1.0 - s)
            }
        };
        let (u1, u2) = (deriv(2.0), deriv(3.5));
        let boxes = chain.propagate(0, &[0.5], &[1.5]);
        let slopes = boxes[1].as_ref().unwrap().slopes.clone().unwrap();
        assert!((slopes[0] - u1).abs() <= 1e-9 * u1, "{act}: {slopes:?}");
        assert!((slopes[1] - u2).abs() <= 1e-9 * u2, "{act}: {slopes:?}");
        let m2 = (u1 * u1 + 0.25 * u2 * u2).sqrt();
        let want = CE_LIPSCHITZ * ((2.0 * u1 - 1.5 * u2).abs() + m2 * 13f64.sqrt()) / 2.0;
        let rho = chain.box_constant(0, &[0.5], &[1.5]);
        assert!((rho - want).abs() <= 1e-9 * want, "{act}: {rho} vs {want}");
        let max_slope = (0..=10_000)
            .map(|i| 0.5 + i as f64 / 10_000.0)
            .map(|t| (2.0 * deriv(2.0 * t + 1.0) - 1.5 * deriv(-3.0 * t - 2.0)).abs())
            .fold(0.0, f64::max);
        assert!(
            CE_LIPSCHITZ * max_slope <= rho,
            "{act}: {max_slope} vs {rho}"
        );
        // and far below the global CP constant
        assert!(rho < 0.5 * chain.cp_constants()[0], "{act}");
    }
}

/// Active stochastic layers by hand. Dropout p = ½ on a unit between w₁ = 1 and w₂ = 1: a kept
/// unit passes 1/(1−p) = 2, so every constant is √2·2 (off: √2). DropConnect p = ½ on
/// W₁ = (3, 4): its own segment with ‖W₁‖_F/(1−p) = 10, times ‖W₂‖ = 1.
#[test]
fn active_masks_scale_by_one_over_keep_probability() {
    let p = 0.5;
    for act in [Activation::Identity, Activation::Relu, Activation::Tanh] {
        for (mode, scale) in [(Stochastic::Active, 2.0), (Stochastic::Off, 1.0)] {
            let mut first = layer(DMatrix::from_element(1, 1, 1.0), vec![], act);
            first.regularizer = Regularizer::Dropout { p };
            let chain = HostChain {
                layers: vec![
                    first,
                    layer(
                        DMatrix::from_element(1, 1, 1.0),
                        vec![],
                        Activation::Identity,
                    ),
                ],
                mode,
            };
            let want = CE_LIPSCHITZ * scale;
            let cp = chain.cp_constants()[0];
            let prod = chain.product_constants()[0];
            let bx = chain.box_constant(0, &[0.5], &[1.0]);
            // on the box the unit's pre-activation is in [0.5, 1]: tanh′ ≤ sech²(0.5) there
            let slope = if act == Activation::Tanh {
                1.0 / 0.5f64.cosh().powi(2)
            } else {
                1.0
            };
            for (what, v, w) in [
                ("CP", cp, want),
                ("product", prod, want),
                ("box", bx, want * slope),
            ] {
                assert!(
                    (v - w).abs() <= 1e-9 * w,
                    "{act} {mode:?} {what}: {v} vs {w}"
                );
            }
        }
    }
    let mut first = layer(
        DMatrix::from_row_slice(1, 2, &[3.0, 4.0]),
        vec![],
        Activation::Tanh,
    );
    first.regularizer = Regularizer::DropConnect { p };
    let chain = HostChain {
        layers: vec![
            first,
            layer(
                DMatrix::from_element(1, 1, 1.0),
                vec![],
                Activation::Identity,
            ),
        ],
        mode: Stochastic::Active,
    };
    let want = CE_LIPSCHITZ * 10.0;
    assert!((chain.cp_constants()[0] - want).abs() <= 1e-9 * want);
    assert!((chain.product_constants()[0] - want).abs() <= 1e-9 * want);
    // the masked weights lie between 0 and 2·(3, 4): z ∈ [0, 2·(3·1 + 4·1)] on the unit box
    let pre = chain.propagate(0, &[0.0, 0.0], &[1.0, 1.0])[1]
        .as_ref()
        .unwrap()
        .pre
        .clone()
        .unwrap();
    assert!(
        pre.lo[0].abs() < 1e-12 && (pre.hi[0] - 14.0).abs() < 1e-12,
        "{pre:?}"
    );
}
