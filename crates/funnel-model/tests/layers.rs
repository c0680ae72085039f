use burn::prelude::*;
use funnel_model::{
    to_f32_vec, Activation, LayerRole, LayeredModel, Mlp, MlpConfig, Regularizer, Stochastic,
};
fn device() -> Device {
    Device::flex()
}

fn config(widths: &[usize], activation: Activation, regularizer: Regularizer) -> MlpConfig {
    MlpConfig {
        input_dim: 4,
        widths: widths.to_vec(),
        num_classes: 3,
        activation,
        bias: true,
        regularizer,
    }
}

/// burn's CPU RNG is global to the process and tests run in parallel threads. Every test of
/// this file holds this lock for its whole length: a lock held only around seeding did not
/// stop another test's unlocked draws (dropout masks in an active forward pass) from landing
/// between a seed and the draws it was meant for.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn build(cfg: &MlpConfig, seed: u64) -> Mlp {
    let device = device();
    device.seed(seed);
    cfg.init(&device, seed).unwrap()
}

fn input(n: usize, d: usize, seed: u64) -> Tensor<2> {
    let device = device();
    device.seed(seed);
    Tensor::random(
        [n, d],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    )
}

const REGULARIZERS: [Regularizer; 4] = [
    Regularizer::None,
    Regularizer::Dropout { p: 0.3 },
    Regularizer::DropConnect { p: 0.3 },
    Regularizer::GaussianNoise { std: 0.5 },
];

#[test]
fn every_layer_is_returned_with_its_shape() {
    let _rng = serial();
    for act in [Activation::Identity, Activation::Relu, Activation::Gelu] {
        for reg in REGULARIZERS {
            for widths in [vec![], vec![7], vec![8, 5, 6]] {
                let cfg = config(&widths, act, reg);
                let model = build(&cfg, 1);
                for mode in [Stochastic::Active, Stochastic::Off] {
                    let outs = model.forward_layers(input(11, 4, 2), mode);
                    let dims = cfg.dims();
                    assert_eq!(outs.len(), widths.len() + 2, "{act} {reg:?} {widths:?}");
                    assert_eq!(model.depth(), widths.len() + 1);
                    for (l, t) in outs.iter().enumerate() {
                        assert_eq!(t.dims(), [11, dims[l]], "layer {l}");
                    }
                    let info = model.layers();
                    assert_eq!(info.len(), outs.len());
                    assert_eq!(info[0].role, LayerRole::Input);
                    assert_eq!(info.last().unwrap().role, LayerRole::Logits);
                    assert_eq!(info.last().unwrap().regularizer, Regularizer::None);
                    for (l, i) in info.iter().enumerate() {
                        assert_eq!(i.index, l);
                        assert_eq!(i.width, dims[l]);
                        if i.role == LayerRole::Hidden {
                            assert_eq!(i.activation, act);
                            assert_eq!(i.regularizer, reg);
                        }
                    }
                    let w = model.lipschitz_weights();
                    assert_eq!(w.len(), model.depth());
                    for (l, wl) in w.iter().enumerate() {
                        assert_eq!(wl.dims(), [dims[l], dims[l + 1]]);
                    }
                }
            }
        }
    }
}

#[test]
fn forward_equals_last_layer_and_input_is_layer_zero() {
    let _rng = serial();
    let cfg = config(&[6, 5], Activation::Tanh, Regularizer::None);
    let model = build(&cfg, 3);
    let x = input(9, 4, 4);
    let outs = model.forward_layers(x.clone(), Stochastic::Off);
    assert_eq!(to_f32_vec(outs[0].clone()), to_f32_vec(x.clone()));
    let logits = model.forward(x, Stochastic::Off);
    assert_eq!(to_f32_vec(outs[3].clone()), to_f32_vec(logits));
}

#[test]
fn linear_network_is_the_product_of_its_weights() {
    let _rng = serial();
    // identity activation without bias: T_L = X · W_1 · W_2 · W_3
    let mut cfg = config(&[6, 5], Activation::Identity, Regularizer::None);
    cfg.bias = false;
    let model = build(&cfg, 5);
    let x = input(7, 4, 6);
    let w = model.lipschitz_weights();
    let expect = x
        .clone()
        .matmul(w[0].clone())
        .matmul(w[1].clone())
        .matmul(w[2].clone());
    let got = model.forward(x, Stochastic::Off);
    for (a, b) in to_f32_vec(got).iter().zip(to_f32_vec(expect)) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn stochastic_layers_change_outputs_only_when_active() {
    let _rng = serial();
    for reg in REGULARIZERS {
        let cfg = config(&[16, 16], Activation::Relu, reg);
        let model = build(&cfg, 7);
        // the same weights without the regularizer
        let plain = build(&config(&[16, 16], Activation::Relu, Regularizer::None), 7);
        let x = input(64, 4, 8);
        let off_a = to_f32_vec(model.forward(x.clone(), Stochastic::Off));
        let off_b = to_f32_vec(model.forward(x.clone(), Stochastic::Off));
        let reference = to_f32_vec(plain.forward(x.clone(), Stochastic::Active));
        assert_eq!(
            off_a, off_b,
            "{reg:?}: deterministic mode must be deterministic"
        );
        assert_eq!(
            off_a, reference,
            "{reg:?}: off mode must equal the plain network"
        );
        let act_a = to_f32_vec(model.forward(x.clone(), Stochastic::Active));
        let act_b = to_f32_vec(model.forward(x.clone(), Stochastic::Active));
        if reg.is_stochastic() {
            assert_ne!(act_a, act_b, "{reg:?}: two active passes must differ");
            assert_ne!(act_a, off_a, "{reg:?}: active must differ from off");
        } else {
            assert_eq!(act_a, off_a);
        }
        // the input layer is never touched
        let layers = model.forward_layers(x.clone(), Stochastic::Active);
        assert_eq!(to_f32_vec(layers[0].clone()), to_f32_vec(x));
    }
}

#[test]
fn dropout_zeroes_a_fraction_p_and_preserves_the_mean() {
    let _rng = serial();
    let p = 0.4;
    let cfg = config(&[200], Activation::Identity, Regularizer::Dropout { p });
    let model = build(&cfg, 11);
    let x = input(500, 4, 12);
    let off = to_f32_vec(model.forward_layers(x.clone(), Stochastic::Off)[1].clone());
    let on = to_f32_vec(model.forward_layers(x, Stochastic::Active)[1].clone());
    let zeros = on.iter().filter(|v| **v == 0.0).count() as f64 / on.len() as f64;
    assert!(
        (zeros - p).abs() < 0.01,
        "zero fraction {zeros}, expected {p}"
    );
    // kept units are scaled by 1/(1−p)
    for (a, b) in on.iter().zip(&off) {
        if *a != 0.0 {
            assert!((a - b / (1.0 - p as f32)).abs() < 1e-4 * (1.0 + b.abs()));
        }
    }
}

#[test]
fn gaussian_noise_adds_noise_of_the_configured_std() {
    let _rng = serial();
    let std = 0.7;
    let cfg = config(&[300], Activation::Tanh, Regularizer::GaussianNoise { std });
    let model = build(&cfg, 13);
    let x = input(400, 4, 14);
    let off = to_f32_vec(model.forward_layers(x.clone(), Stochastic::Off)[1].clone());
    let on = to_f32_vec(model.forward_layers(x, Stochastic::Active)[1].clone());
    let diffs: Vec<f64> = on.iter().zip(&off).map(|(a, b)| (a - b) as f64).collect();
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.01, "noise mean {mean}");
    assert!((sd - std).abs() < 0.01, "noise std {sd}, expected {std}");
}

#[test]
fn dropconnect_draws_an_independent_mask_per_example_and_is_unbiased() {
    let _rng = serial();
    // Wide enough that the per-example weight tensor is split into several sub-batches.
    let p = 0.5;
    let cfg = MlpConfig {
        input_dim: 512,
        widths: vec![512],
        num_classes: 2,
        activation: Activation::Identity,
        bias: true,
        regularizer: Regularizer::DropConnect { p },
    };
    let model = build(&cfg, 21);
    let n = 150;
    let one = input(1, 512, 22);
    let x = one.clone().repeat_dim(0, n); // the same example n times
    let on = to_f32_vec(model.forward_layers(x.clone(), Stochastic::Active)[1].clone());
    let off = to_f32_vec(model.forward_layers(one, Stochastic::Off)[1].clone());
    let width = 512;
    // independent masks: rows differ (all in different sub-batches, too)
    for r in [1, 63, 64, 65, 149] {
        assert_ne!(
            on[..width],
            on[r * width..(r + 1) * width],
            "row {r} equals row 0"
        );
    }
    // unbiased: the mean over rows regresses on the deterministic output with slope 1
    // (a missing 1/(1−p) scaling would give slope 1−p = 0.5)
    let (mut num, mut den) = (0.0, 0.0);
    for j in 0..width {
        let mean = (0..n).map(|r| on[r * width + j] as f64).sum::<f64>() / n as f64;
        num += mean * off[j] as f64;
        den += (off[j] as f64).powi(2);
    }
    let slope = num / den;
    assert!((slope - 1.0).abs() < 0.1, "slope {slope}");
}

#[test]
fn invalid_configs_are_rejected_with_the_field_name() {
    let _rng = serial();
    let mut cfg = config(&[4, 0], Activation::Relu, Regularizer::None);
    assert_eq!(cfg.validate().unwrap_err().field, "widths");
    cfg.widths = vec![4];
    cfg.num_classes = 1;
    assert_eq!(cfg.validate().unwrap_err().field, "num_classes");
    cfg.num_classes = 2;
    cfg.regularizer = Regularizer::Dropout { p: 1.0 };
    assert_eq!(cfg.validate().unwrap_err().field, "p");
    cfg.regularizer = Regularizer::GaussianNoise { std: -1.0 };
    assert_eq!(cfg.validate().unwrap_err().field, "std");
    cfg.regularizer = Regularizer::None;
    assert!(cfg.validate().is_ok());
}
