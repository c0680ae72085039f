//! `funnel estimate`: KL(P‖Q) and W1(P, Q) between two point clouds given as files (CSV,
//! `.npy`, or an array of an `.npz`), with the same estimators, null baselines and intervals as a
//! run's layers; with labels, class-conditionally (the label term included), as a run does.

use std::io::Write;
use std::path::{Path, PathBuf};

use funnel_core::derive_seed;
use funnel_metrics::cloud::stratified_subsample;
use funnel_metrics::{
    layer_divergence, Cloud, KlEstimator, LayerContext, MetricsSpec, W1Estimator,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::{DeserializeOwned, IntoDeserializer};

use crate::backend::{BackendArgs, BackendName};
use crate::error::CliError;
use crate::output;
use crate::pipeline::prepare::points_needed;
use crate::points::{read_labels, read_points, PointFile};
use crate::results::estimate_json::{for_pq, EstimateOutput, Side};
use crate::results::Status;
use crate::term::warn;

/// Arguments of `funnel estimate`. Unset options take the defaults of a config's `[metrics]`.
#[derive(Debug, Clone, clap::Args)]
pub struct EstimateArgs {
    /// Samples of P: CSV (one point per row, optional header), .npy (any float or integer
    /// dtype, float16 included, C order; one point per leading index) or FILE.npz:ARRAY.
    #[arg(long)]
    pub p: PathBuf,
    /// Samples of Q, in the same dimension as P.
    #[arg(long)]
    pub q: PathBuf,
    /// Class labels of P's points (0..K−1, one per point; CSV, .npy or FILE.npz:ARRAY): the
    /// estimate is then class-conditional, Σ_y π_P(y)·D(P_y‖Q_y) plus the label term, as for a
    /// run's layers. Needs --q-labels.
    #[arg(long, requires = "q_labels")]
    pub p_labels: Option<PathBuf>,
    /// Class labels of Q's points. Needs --p-labels.
    #[arg(long, requires = "p_labels")]
    pub q_labels: Option<PathBuf>,
    /// KL estimator: auto, knn, gaussian or smoothed [default: auto].
    #[arg(long, value_parser = parse_variant::<KlEstimator>)]
    pub kl: Option<KlEstimator>,
    /// W1 estimator: exact, sinkhorn or sliced [default: exact].
    #[arg(long, value_parser = parse_variant::<W1Estimator>)]
    pub w1: Option<W1Estimator>,
    /// Neighbour order of the kNN KL estimator [default: 5].
    #[arg(long)]
    pub k: Option<usize>,
    /// Noise std β of the smoothed KL.
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// Half-sample resamples for the confidence interval (0: none) [default: 30].
    #[arg(long)]
    pub bootstrap: Option<usize>,
    /// Permutations of the size-matched null (0: none) [default: 99].
    #[arg(long)]
    pub permutations: Option<usize>,
    /// Points used per side at most (a seeded random subsample) [default: 2000].
    #[arg(long)]
    pub max_points: Option<usize>,
    /// Points per side for the exact assignment (O(n³)); more are subsampled [default: 1000].
    #[arg(long)]
    pub exact_max: Option<usize>,
    /// Sinkhorn's ε relative to the mean distance [default: 0.01].
    #[arg(long)]
    pub sinkhorn_epsilon: Option<f64>,
    /// Random directions of the sliced W1 [default: 128].
    #[arg(long)]
    pub directions: Option<usize>,
    /// Seed of the subsample, the permutations of the null and the half-samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Parses a value by its serde name, so every variant of the library's enum is accepted and the
/// error lists them.
fn parse_variant<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    T::deserialize(s.into_deserializer()).map_err(|e: serde::de::value::Error| e.to_string())
}

/// The command-line flag behind a `MetricsSpec` key.
fn flag(key: &str) -> String {
    match key {
        "k" | "beta" | "bootstrap" | "permutations" => format!("--{key}"),
        "max_points" => "--max-points".into(),
        "exact_max_per_class" => "--exact-max".into(),
        "sinkhorn_epsilon" => "--sinkhorn-epsilon".into(),
        "sliced_directions" => "--directions".into(),
        other => format!("metrics.{other}"),
    }
}

fn read(path: &Path) -> Result<PointFile, CliError> {
    read_points(path).map_err(CliError::input)
}

/// Estimates KL(P‖Q) and W1(P, Q); `Failed` (exit 3) when either estimator gives no value.
pub fn estimate(args: &EstimateArgs) -> Result<Status, CliError> {
    let start = std::time::Instant::now();
    let device = args
        .backend
        .resolve(BackendName::default(), None)
        .device()
        .map_err(CliError::input)?;
    let mut spec = MetricsSpec::default();
    if let Some(kl) = args.kl {
        spec.kl = kl;
    }
    if let Some(w1) = args.w1 {
        spec.w1 = w1;
    }
    if let Some(k) = args.k {
        spec.k = k;
    }
    if args.beta.is_some() {
        spec.beta = args.beta;
    }
    if let Some(b) = args.bootstrap {
        spec.bootstrap = b;
    }
    if let Some(b) = args.permutations {
        spec.permutations = b;
    }
    if let Some(m) = args.max_points {
        spec.max_points = m;
    }
    if let Some(m) = args.exact_max {
        spec.exact_max_per_class = m;
    }
    if let Some(e) = args.sinkhorn_epsilon {
        spec.sinkhorn_epsilon = e;
    }
    if let Some(d) = args.directions {
        spec.sliced_directions = d;
    }
    spec.validate()
        .map_err(|(key, msg)| CliError::input(format!("{}: {msg}", flag(key))))?;
    if spec.kl == KlEstimator::Smoothed && spec.beta.is_none() {
        return Err(CliError::input(
            "--kl smoothed needs --beta, the std of the Gaussian smoothing",
        ));
    }

    let p = read(&args.p)?;
    let q = read(&args.q)?;
    if p.points.d != q.points.d {
        return Err(CliError::input(format!(
            "{}{}: the points have {} dimensions, but those of {} have {}",
            args.q.display(),
            q.first_line.map(|l| format!(":{l}")).unwrap_or_default(),
            q.points.d,
            args.p.display(),
            p.points.d
        )));
    }
    // class labels, when given: one per point, checked against the point files
    let labels =
        |file: &Option<PathBuf>, points: &PointFile, of: &Path| -> Result<Vec<usize>, CliError> {
            let Some(path) = file else {
                return Ok(vec![0; points.points.n]);
            };
            let y = read_labels(path).map_err(CliError::input)?;
            if y.len() != points.points.n {
                return Err(CliError::input(format!(
                    "{}: {} labels for the {} points of {}",
                    path.display(),
                    y.len(),
                    points.points.n,
                    of.display()
                )));
            }
            Ok(y)
        };
    let p_labels = labels(&args.p_labels, &p, &args.p)?;
    let q_labels = labels(&args.q_labels, &q, &args.q)?;
    let classes = 1 + p_labels.iter().chain(&q_labels).copied().max().unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(args.seed, "subsample"));
    let need = points_needed(&spec);
    let mut cloud = |f: &PointFile, y: &[usize], path: &Path| -> Result<Cloud, CliError> {
        let idx = stratified_subsample(y, classes, spec.max_points, &mut rng);
        let y: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let counts = funnel_metrics::cloud::class_indices(&y, classes);
        let fewest = counts
            .iter()
            .map(Vec::len)
            .filter(|&c| c > 0)
            .min()
            .unwrap_or(0);
        if fewest < need {
            return Err(CliError::input(format!(
                "{}: {} points{}; the {} KL estimator needs at least {need} per {} (for its null baseline and interval){}",
                path.display(),
                idx.len(),
                if classes > 1 {
                    format!(", {fewest} in its smallest class")
                } else {
                    String::new()
                },
                spec.kl_name(),
                if classes > 1 { "class and side" } else { "side" },
                if matches!(spec.kl, KlEstimator::Knn | KlEstimator::KnnAtoms | KlEstimator::Auto) {
                    ": lower --k"
                } else {
                    ""
                }
            )));
        }
        Ok(Cloud::new(f.points.select(&idx), y, classes))
    };
    let pc = cloud(&p, &p_labels, &args.p)?;
    let qc = cloud(&q, &q_labels, &args.q)?;

    let div = layer_divergence(
        &pc,
        &qc,
        &spec,
        LayerContext::default(),
        &device,
        derive_seed(args.seed, "estimate"),
    );
    let side = |f: &PointFile, path: &Path, c: &Cloud| Side {
        path: path.to_path_buf(),
        n: f.points.n,
        dims: f.points.d,
        used: c.len(),
    };
    let out = EstimateOutput {
        kl: (&div.kl).into(),
        w1: (&div.w1).into(),
        p: side(&p, &args.p, &pc),
        q: side(&q, &args.q, &qc),
        seed: args.seed,
        bootstrap: spec.bootstrap,
        confidence: spec.confidence,
        seconds: start.elapsed().as_secs_f64(),
    };
    let text = if args.json {
        serde_json::to_string_pretty(&out).map_err(|e| CliError::internal(e.to_string()))?
    } else {
        output::estimate_table::table(&out)
    };
    // a closed pipe loses nothing worth an error: the numbers are all there is
    let _ = writeln!(std::io::stdout(), "{text}");
    let failed = [&div.kl, &div.w1].iter().any(|e| e.error.is_some());
    for (name, e) in [("KL", &div.kl), ("W1", &div.w1)] {
        if let Some(err) = &e.error {
            warn(format_args!(
                "error: {name} estimator {}: {}",
                e.estimator,
                for_pq(err)
            ));
        }
    }
    Ok(if failed { Status::Failed } else { Status::Ok })
}
