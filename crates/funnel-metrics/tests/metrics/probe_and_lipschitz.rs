use burn::prelude::*;
use funnel_metrics::lipschitz::{lipschitz_constants, CE_LIPSCHITZ};
use funnel_metrics::probe::capture;
use funnel_model::{to_f32_vec, Activation, LayeredModel, Mlp, MlpConfig, Regularizer, Stochastic};
use nalgebra::DMatrix;

use crate::common::{device, serial};

fn model(widths: &[usize], activation: Activation, regularizer: Regularizer) -> Mlp {
    let d = device();
    d.seed(1);
    MlpConfig {
        input_dim: 5,
        widths: widths.to_vec(),
        num_classes: 3,
        activation,
        bias: true,
        regularizer,
    }
    .init(&d, 11)
    .unwrap()
}

#[test]
fn capture_returns_every_layer_in_chunks() {
    let _rng = serial();
    let m = model(&[7, 4], Activation::Tanh, Regularizer::None);
    let n = 2500; // more than one capture chunk
    let x: Vec<f32> = (0..n * 5)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let xt = Tensor::<2>::from_data(TensorData::new(x.clone(), [n, 5]), &device());
    let clouds = capture(&m, xt.clone(), &labels, 3, Stochastic::Off);
    assert_eq!(clouds.len(), 4);
    let full = m.forward_layers(xt, Stochastic::Off);
    for (l, (c, t)) in clouds.iter().zip(full).enumerate() {
        assert_eq!(c.len(), n);
        assert_eq!(c.dim(), [5, 7, 4, 3][l]);
        assert_eq!(c.labels, labels);
        let want = to_f32_vec(t);
        for (a, b) in c.points.data.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "layer {l}: {a} vs {b}"
            );
        }
    }
    assert_eq!(clouds[0].points.data, x);
}

fn svd_norm(w: &Tensor<2>, frobenius: bool) -> f64 {
    let [r, c] = w.dims();
    let data: Vec<f64> = to_f32_vec(w.clone()).iter().map(|v| *v as f64).collect();
    let m = DMatrix::from_row_slice(r, c, &data);
    if frobenius {
        m.norm()
    } else {
        m.singular_values().max()
    }
}

#[test]
fn lipschitz_constants_are_products_of_layer_norms() {
    let _rng = serial();
    let p = 0.25;
    for (act, reg) in [
        (Activation::Identity, Regularizer::None),
        (Activation::Sigmoid, Regularizer::None),
        (Activation::Relu, Regularizer::Dropout { p }),
        (Activation::Relu, Regularizer::DropConnect { p }),
        (Activation::Tanh, Regularizer::GaussianNoise { std: 0.3 }),
    ] {
        let m = model(&[8, 6], act, reg);
        let w = m.lipschitz_weights();
        for mode in [Stochastic::Active, Stochastic::Off] {
            let rho = lipschitz_constants(&m, mode, 3);
            assert_eq!(rho.len(), 4);
            assert_eq!(rho[3], CE_LIPSCHITZ);
            // logits layer: no activation, no regularizer
            let want2 = CE_LIPSCHITZ * svd_norm(&w[2], false);
            assert!(
                (rho[2] - want2).abs() <= 1e-4 * want2,
                "{act} {reg:?}: {} vs {want2}",
                rho[2]
            );
            // hidden layer 2 → its factor enters ρ_1
            let active = mode.is_active();
            let factor = match reg {
                Regularizer::Dropout { p } if active => svd_norm(&w[1], false) / (1.0 - p),
                Regularizer::DropConnect { p } if active => svd_norm(&w[1], true) / (1.0 - p),
                _ => svd_norm(&w[1], false),
            } * act.lipschitz();
            let want1 = want2 * factor;
            assert!(
                (rho[1] - want1).abs() <= 1e-4 * want1,
                "{act} {reg:?} {mode:?}: {} vs {want1}",
                rho[1]
            );
            assert!(rho[0] > 0.0 && rho[0].is_finite());
        }
    }
}
