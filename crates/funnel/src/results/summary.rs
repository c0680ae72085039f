//! `summary.json`: what a run measured, typed. Written by `output::files`, read back by
//! `funnel report` and by sweeps ([`read`]).

use std::path::PathBuf;

use funnel_metrics::{Bias, LayerRow};
use funnel_train::{Gap, Losses};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::CliError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

#[derive(Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    /// Why the run failed (e.g. diverged training).
    pub reason: Option<String>,
    pub name: String,
    pub run_id: String,
    pub seed: u64,
    pub backend: String,
    /// The burn device that computed the run, as burn names it (`NdArray(Cpu)`); absent in
    /// summaries written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    pub funnel_version: String,
    pub created: String,
    pub data: DataSummary,
    /// `funnel measure` only: the run whose model was measured, and the data it was measured on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSummary>,
    /// `funnel layers` only: the layers file of a network trained elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_file: Option<PathBuf>,
    pub model: ModelSummary,
    pub training: TrainingSummary,
    /// Losses of the trained network in the measurement mode.
    pub losses: Option<LossPair>,
    /// Test − train in each loss.
    pub gap: Option<Gap>,
    /// argmin over layers of the W1 bound.
    pub funnel_layer: Option<usize>,
    pub bounds: Option<BoundsSummary>,
    pub measurement: Option<MeasurementSummary>,
    /// Every layer: both divergences with estimator, points, null and CI, and the bounds.
    pub layers: Vec<LayerRow>,
    pub timings: Timings,
    /// `train.algorithm = "class_mean"` on the binary Gaussian mixture: the closed forms of
    /// every layer (DESIGN §2.7), to set beside the estimates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_gaussian: Option<LinearGaussianSummary>,
    /// Why the figures under `plots/` could not be drawn, when they could not (the run's
    /// numbers are kept all the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plots_error: Option<String>,
}

impl Summary {
    /// A summary before measurement: status `ok`, no source, no results yet. `run` and
    /// `measure` fill in what differs (failure, source) and the tail fills in the results.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        name: &str,
        run_id: &str,
        seed: u64,
        backend: &str,
        device: String,
        data: DataSummary,
        model: ModelSummary,
        training: TrainingSummary,
        timings: Timings,
    ) -> Summary {
        Summary {
            status: Status::Ok,
            reason: None,
            name: name.into(),
            run_id: run_id.into(),
            seed,
            backend: backend.into(),
            device,
            funnel_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339(),
            data,
            source: None,
            layers_file: None,
            model,
            training,
            losses: None,
            gap: None,
            funnel_layer: None,
            bounds: None,
            measurement: None,
            layers: Vec::new(),
            timings,
            plots_error: None,
            linear_gaussian: None,
        }
    }
}

/// The closed forms of a class-mean linear DNN (DESIGN §2.7).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearGaussianSummary {
    /// Training examples n.
    pub n: usize,
    /// The data's noise std s.
    pub noise_std: f64,
    /// ‖μ̂ − μ‖ of this run.
    pub mean_error: f64,
    pub layers: Vec<funnel_train::class_mean::ClosedForm>,
}

#[derive(Serialize, Deserialize)]
pub struct DataSummary {
    pub kind: String,
    pub description: String,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub classes: usize,
    pub standardized: bool,
}

/// Where the model of a `funnel measure` comes from and what it was measured against.
#[derive(Serialize, Deserialize)]
pub struct SourceSummary {
    /// The run folder whose `model.bpk` and `config.toml` were used.
    pub run_dir: PathBuf,
    /// The labelled CSV that took the place of the run's test set.
    pub test_file: PathBuf,
    pub model_file: String,
}

#[derive(Serialize, Deserialize)]
pub struct ModelSummary {
    /// Widths of layers 0..=L.
    pub dims: Vec<usize>,
    pub depth: usize,
    pub activation: String,
    pub regularizer: String,
    pub parameters: usize,
}

#[derive(Serialize, Deserialize)]
pub struct TrainingSummary {
    pub algorithm: String,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub lr: f64,
    pub epochs: usize,
    pub epochs_run: usize,
    pub batch_size: usize,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub seconds: f64,
}

impl ModelSummary {
    pub fn of(config: &Config, dims: &[usize], parameters: usize) -> Self {
        ModelSummary {
            dims: dims.to_vec(),
            depth: dims.len() - 1,
            activation: config.model.activation.name().into(),
            regularizer: config.model.regularizer.describe(),
            parameters,
        }
    }
}

impl TrainingSummary {
    pub fn of(config: &Config, epochs_run: usize, seconds: f64) -> Self {
        TrainingSummary {
            algorithm: config.train.algorithm.name().into(),
            lr: config.train.lr,
            epochs: config.train.epochs,
            epochs_run,
            batch_size: config.train.batch_size,
            seconds,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct LossPair {
    pub train: Losses,
    pub test: Losses,
}

#[derive(Serialize, Deserialize)]
pub struct BoundsSummary {
    pub kl: KlBoundSummary,
    pub w1: W1BoundSummary,
}

/// The tightest KL bound over layers, for both losses it covers.
#[derive(Serialize, Deserialize)]
pub struct KlBoundSummary {
    pub layer: Option<usize>,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub zero_one: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped: f64,
    /// bound / measured gap (0-1 loss); absent when the gap is ≤ 0.
    pub ratio_zero_one: Option<f64>,
    /// The tightest bound over every layer, resolved or not (the bounds hold together).
    #[serde(default)]
    pub layer_any: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub zero_one_any: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// The W1 bound at the funnel layer. ρ·W + c·TV bounds the gap of the cross-entropy clipped
/// at c (a ρ-Lipschitz loss in [0, c]); when the label marginals agree (TV = 0) it bounds the
/// plain cross-entropy gap too.
#[derive(Serialize, Deserialize)]
pub struct W1BoundSummary {
    pub layer: Option<usize>,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped: f64,
    /// bound / measured clipped cross-entropy gap; absent when the gap is ≤ 0.
    pub ratio_cross_entropy_clipped: Option<f64>,
    /// argmin_l of ρ̂_l·W_l + c·TV with the empirical local constants (not a certified bound).
    #[serde(default)]
    pub layer_local: Option<usize>,
    /// argmin_l of the W1 estimate W_l alone (no Lipschitz weights).
    #[serde(default)]
    pub w1_min_layer: Option<usize>,
    /// The tightest W1 bound over every layer, resolved or not.
    #[serde(default)]
    pub layer_any: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped_any: f64,
    /// The W1 bound under the tightest certified constant (min of product, Combettes–Pesquet
    /// and box constants): its argmin over the resolved layers and the bound there, and over
    /// every layer. Absent in summaries written before these constants.
    #[serde(default)]
    pub layer_cert: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped_cert: f64,
    #[serde(default)]
    pub layer_cert_any: Option<usize>,
    #[serde(default = "nan", deserialize_with = "funnel_metrics::nan_if_null")]
    pub cross_entropy_clipped_cert_any: f64,
    /// argmin_l over every layer of ρ_l·(W_l − null) with the product, certified and
    /// empirical constants (the debiased W1 funnels; point estimates, not bounds).
    #[serde(default)]
    pub layer_debiased: Option<usize>,
    #[serde(default)]
    pub layer_debiased_cert: Option<usize>,
    #[serde(default)]
    pub layer_debiased_local: Option<usize>,
}

#[derive(Serialize, Deserialize)]
pub struct MeasurementSummary {
    pub stochastic_layers: String,
    pub points_train: usize,
    pub points_test: usize,
    pub kl_estimator: String,
    pub w1_estimator: String,
    pub w1_bias: Bias,
    pub bootstrap: usize,
    /// Permutations of the size-matched null.
    #[serde(default)]
    pub permutations: usize,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub confidence: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub ce_clip: f64,
    pub null_baseline: String,
}

#[derive(Serialize, Deserialize, Default)]
pub struct Timings {
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub data_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub train_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub evaluate_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub capture_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub estimate_s: f64,
    #[serde(deserialize_with = "funnel_metrics::nan_if_null")]
    pub total_s: f64,
}

/// The file name, in a run folder.
pub const FILE: &str = "summary.json";

/// `summary.json`'s bytes (pretty JSON).
pub fn to_json(summary: &Summary) -> Vec<u8> {
    serde_json::to_vec_pretty(summary).expect("a summary serializes")
}

/// Reads a run's `summary.json`; the error names the file and the field.
pub fn read(dir: &std::path::Path) -> Result<Summary, CliError> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))
}
