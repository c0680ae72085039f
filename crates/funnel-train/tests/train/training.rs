use funnel_model::{Activation, MlpConfig, Regularizer, Stochastic};
use funnel_train::{train, Algorithm, DataSpec, EvalSettings, Split, TrainError, TrainSpec};

use crate::common::{device, serial};

fn separated() -> Split {
    DataSpec::Gaussian {
        label_noise: 0.0,
        dim: 8,
        n_train: 1000,
        n_test: 1000,
        mean_norm: 4.0,
        noise_std: 1.0,
        standardize: false,
        test_shift: 0.0,
    }
    .load(5)
    .unwrap()
}

fn run(spec: &TrainSpec, reg: Regularizer, seed: u64) -> Result<Vec<(f64, f64, f64)>, TrainError> {
    let _g = serial();
    let split = separated();
    let device = device();
    device.seed(seed);
    let model = MlpConfig {
        input_dim: 8,
        widths: vec![32, 16],
        num_classes: 2,
        activation: Activation::Relu,
        bias: true,
        regularizer: reg,
    }
    .init(&device.clone().autodiff(), seed)
    .unwrap();
    let mut seen = 0;
    let eval = EvalSettings {
        mode: Stochastic::Off,
        clip: 5.0,
    };
    let trained = train(model, spec, &split, &device, seed, eval, &mut |_| seen += 1)?;
    assert_eq!(seen, spec.epochs);
    Ok(trained
        .history
        .iter()
        .map(|r| (r.batch_loss, r.train.cross_entropy, r.test.zero_one))
        .collect())
}

#[test]
fn adam_and_sgd_learn_a_separated_mixture() {
    for (algorithm, lr, momentum) in [
        (Algorithm::Adam, 1e-2, None),
        (Algorithm::Sgd, 0.05, Some(0.9)),
    ] {
        let spec = TrainSpec {
            algorithm,
            lr,
            epochs: 8,
            batch_size: 32,
            weight_decay: 1e-4,
            momentum,
            ..TrainSpec::default()
        };
        let h = run(&spec, Regularizer::Dropout { p: 0.1 }, 1).unwrap();
        let (first, last) = (h[0], h[h.len() - 1]);
        assert!(
            last.1 < first.1,
            "{algorithm:?}: train CE did not fall: {h:?}"
        );
        assert!(
            last.0 < first.0,
            "{algorithm:?}: batch loss did not fall: {h:?}"
        );
        assert!(last.2 < 0.1, "{algorithm:?}: test error {} ≥ 10%", last.2);
    }
}

#[test]
fn training_is_reproducible_from_the_seed() {
    let spec = TrainSpec {
        epochs: 3,
        ..TrainSpec::default()
    };
    let a = run(&spec, Regularizer::Dropout { p: 0.2 }, 3).unwrap();
    let b = run(&spec, Regularizer::Dropout { p: 0.2 }, 3).unwrap();
    let c = run(&spec, Regularizer::Dropout { p: 0.2 }, 4).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn a_huge_learning_rate_is_reported_as_divergence() {
    let spec = TrainSpec {
        algorithm: Algorithm::Sgd,
        lr: 1e30,
        epochs: 5,
        batch_size: 50,
        weight_decay: 0.0,
        momentum: Some(0.9),
        ..TrainSpec::default()
    };
    match run(&spec, Regularizer::None, 2) {
        Err(TrainError::Diverged { epoch, loss, .. }) => {
            assert!(epoch >= 1);
            assert!(!loss.is_finite());
        }
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn invalid_settings_name_the_key() {
    let bad = [
        (
            TrainSpec {
                lr: -1.0,
                ..TrainSpec::default()
            },
            "lr",
        ),
        (
            TrainSpec {
                batch_size: 0,
                ..TrainSpec::default()
            },
            "batch_size",
        ),
        (
            TrainSpec {
                momentum: Some(0.9),
                ..TrainSpec::default()
            },
            "momentum",
        ),
        (
            TrainSpec {
                weight_decay: f64::NAN,
                ..TrainSpec::default()
            },
            "weight_decay",
        ),
    ];
    for (spec, key) in bad {
        match spec.validate() {
            Err(TrainError::Invalid { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
}
