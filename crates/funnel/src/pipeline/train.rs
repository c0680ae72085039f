//! Training: the network initialised from the seed, then trained by gradient steps or by the
//! class-mean rule, with the per-epoch history; and the linear-Gaussian closed forms of a
//! class-mean network.

use burn::module::Module;
use burn::prelude::Device;
use funnel_core::derive_seed;
use funnel_model::{Mlp, MlpConfig};
use funnel_train::class_mean::class_mean;
use funnel_train::{train, Algorithm, EpochRecord, EvalSettings, Split, TrainError, Trained};

use crate::config::Config;
use crate::error::CliError;
use crate::results::model::Weights;
use crate::results::LinearGaussianSummary;
use crate::term;

/// The network of `mlp` on the autodiff version of `device`, initialised from the run's seed,
/// then given the parameters of `weights` (`model.weights`) when there are some. The seeded
/// initialisation runs either way, so the random streams after it do not depend on `weights`.
pub fn init(
    mlp: &MlpConfig,
    device: &Device,
    seed: u64,
    weights: Option<&Weights>,
) -> Result<Mlp, CliError> {
    let ad = device.clone().autodiff();
    device.seed(derive_seed(seed, "init"));
    let model = mlp
        .init(&ad, derive_seed(seed, "init"))
        .map_err(|e| CliError::internal(e.to_string()))?;
    match weights {
        // `Weights::read` checked them against `mlp`: a failure here is funnel's
        Some(w) => w.apply(model).map_err(CliError::internal),
        None => Ok(model),
    }
}

/// What training produced: the trained network (or why training failed), every epoch's record,
/// and μ̂ for the class-mean rule.
pub struct Training {
    pub result: Result<Trained<Mlp>, TrainError>,
    pub history: Vec<EpochRecord>,
    pub mu_hat: Option<Vec<f64>>,
}

/// Trains `model` as the config says, with a progress bar over the epochs.
pub fn fit(
    model: Mlp,
    config: &Config,
    split: &Split,
    device: &Device,
    eval: EvalSettings,
) -> Training {
    let seed = config.seed;
    device.seed(derive_seed(seed, "train"));
    let pb = term::bar(
        config.train.epochs as u64,
        "training {bar:30} {pos}/{len} epochs {msg} [{elapsed_precise}<{eta_precise}]",
    );
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut mu_hat: Option<Vec<f64>> = None;
    let result = if config.train.algorithm == Algorithm::ClassMean {
        // no gradient steps: the hidden layers keep their seeded initialisation
        let s = split.info.noise_std.unwrap_or(1.0);
        class_mean(model.valid(), split, s, device, eval).map(|(t, m)| {
            history.clone_from(&t.history);
            mu_hat = Some(m);
            t
        })
    } else {
        train(
            model,
            &config.train,
            split,
            device,
            derive_seed(seed, "shuffle"),
            eval,
            &mut |r| {
                pb.set_message(format!(
                    "loss {:.4} · train acc {:.3} · test acc {:.3}",
                    r.batch_loss,
                    r.train.accuracy(),
                    r.test.accuracy()
                ));
                pb.inc(1);
                tracing::debug!(
                    epoch = r.epoch,
                    batch_loss = r.batch_loss,
                    test_acc = r.test.accuracy(),
                    "epoch"
                );
                history.push(r.clone());
            },
        )
    };
    pb.finish_and_clear();
    Training {
        result,
        history,
        mu_hat,
    }
}

/// The closed forms of a class-mean linear DNN on the binary Gaussian mixture (DESIGN §2.7):
/// μ the true class mean, μ̂ the estimate, s the noise std, n the training examples.
pub fn linear_gaussian(
    model: &Mlp,
    mu: &[f64],
    mu_hat: &[f64],
    s: f64,
    n: usize,
) -> LinearGaussianSummary {
    LinearGaussianSummary {
        n,
        noise_std: s,
        mean_error: mu
            .iter()
            .zip(mu_hat)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt(),
        layers: funnel_train::class_mean::closed_forms(model, mu, mu_hat, s, n),
    }
}
