//! Calibration of an estimator on one layer's class pairs: its value, a **size-matched
//! permutation null**, a p-value, the null-corrected value (the *excess*) and a bias-aware
//! interval (DESIGN §2.9).
//!
//! **Null.** Within each class the train and test points are pooled and reassigned at random
//! to a "train" and a "test" side of the *actual* sizes the estimate used (B permutations).
//! Under H0 (the train and test laws of the class agree) every reassignment is as likely as
//! the observed one, so the permutation values are the estimator's distribution at these
//! sizes when there is no difference: their mean is the estimator's floor (bias) at these
//! sizes, and p = (1 + #{null ≥ value}) / (1 + B) is an exact p-value. A layer is *resolved*
//! when its p-value clears Holm's threshold over the layers ([`crate::bounds`]).
//!
//! **Spread.** The standard error se of the estimate comes from B' half-samples: within each
//! class ⌈n/2⌉ train and ⌈m/2⌉ test points without replacement, the estimator recomputed.
//! Drawing half of n without replacement has the finite-population factor ½, so for a
//! √n-consistent estimator the half-sample spread matches the spread of the full estimate.
//!
//! **Interval.** [min(value, excess) − t·se_excess, max(value, excess) + t·se] with excess =
//! value − null mean, se_excess² = se² + sd_null²/B, and t the Student quantile with B' − 1
//! degrees of freedom. For W1 (and plug-in estimators whose bias shrinks as the clouds
//! separate) the bias under a real difference lies between 0 and the bias under the null — in
//! the self-test, exact W1 in d = 8 reads 2.06 for a truth of 1 against a null of 1.85 — so the
//! interval spans the raw and the null-corrected readings. For kNN KL at equal sizes the null
//! mean is ≈ 0 and the interval is in effect value ± t·se: it covers the spread, **not** the
//! estimator's bias under a real difference (high in many dimensions and on low-dimensional
//! manifolds, low on dropout-like clouds). Coverage is not assumed: `funnel selftest` measures
//! it by simulation per estimator and case, and names each case that falls short.
//!
//! Every quantity calibrated here is non-negative, so the interval's lower end is raised to 0
//! when it falls below (unless its upper end is ≤ 0 too: then it is left as is, and no bound
//! is made from it). The excess has its own interval, excess ± t·se_excess, not clipped.

use std::time::Instant;

use funnel_core::{derive_seed, fnv1a};
use rand::seq::index::sample;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::statistics::Statistics;

use crate::estimate::{Bias, Estimate};
use crate::span::Coords;
use crate::spec::MetricsSpec;
use crate::EstimateError;

/// One class of the layer, in the span of its pooled cloud.
pub(crate) struct ClassPair {
    pub class: usize,
    pub weight: f64,
    pub train: Coords,
    pub test: Coords,
}

/// Per-class values of one estimator call, and what it saw.
struct Combined {
    value: f64,
    dims: usize,
    ties: usize,
    points: (usize, usize),
}

/// Percentile of sorted values with linear interpolation.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean and sample standard deviation (statrs: NaN for an empty list, sd NaN below 2 values).
pub(crate) fn mean_sd(values: &[f64]) -> (f64, f64) {
    (values.mean(), values.std_dev())
}

/// The Student quantile at `p` with `resamples − 1` degrees of freedom (NaN below 2 resamples):
/// the t of every interval and upper end built from the half-sample se.
pub(crate) fn t_quantile(resamples: usize, p: f64) -> f64 {
    if resamples < 2 {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, (resamples - 1) as f64)
        .map(|d| d.inverse_cdf(p))
        .unwrap_or(f64::NAN)
}

/// The standard error of the excess value − null mean: se² plus the variance of the null
/// mean over `permutations` values (none below 2, where the null's sd is undefined).
pub(crate) fn se_excess(se: f64, null_sd: f64, permutations: usize) -> f64 {
    let null_mean_var = if permutations >= 2 {
        null_sd * null_sd / permutations as f64
    } else {
        0.0
    };
    (se * se + null_mean_var).sqrt()
}

/// ⌈n/2⌉ of `0..n`, without replacement, sorted.
pub(crate) fn half(n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut idx = sample(rng, n, n.div_ceil(2)).into_vec();
    idx.sort_unstable();
    idx
}

/// The calibration of one value from its half-sample values and its null values: the fields
/// of [`Estimate`] that describe its error. Shared by the divergences and the MI estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub lo: f64,
    pub hi: f64,
    pub se: f64,
    pub null: f64,
    pub null_sd: f64,
    pub null_q95: f64,
    pub p_value: f64,
    pub permutations: usize,
    pub excess: f64,
    pub excess_lo: f64,
    pub excess_hi: f64,
    pub resamples: usize,
}

impl Calibration {
    /// `resamples`: half-sample values (the spread); `null`: permutation values (the floor);
    /// `null_failures`: permutations whose estimator failed, counted as reaching the value
    /// (conservative: a failure never makes p smaller). Either list may be empty: the fields
    /// that need it are NaN.
    pub fn of(
        value: f64,
        resamples: &[f64],
        null: &[f64],
        null_failures: usize,
        confidence: f64,
    ) -> Calibration {
        let (_, se) = mean_sd(resamples);
        let t = t_quantile(resamples.len(), (1.0 + confidence) / 2.0);
        let (null_mean, null_sd) = mean_sd(null);
        let mut sorted = null.to_vec();
        sorted.sort_by(f64::total_cmp);
        let null_q95 = percentile(&sorted, 0.95);
        let p_value = if null.is_empty() {
            f64::NAN
        } else {
            (1 + null_failures + null.iter().filter(|&&v| v >= value).count()) as f64
                / (1 + null_failures + null.len()) as f64
        };
        let excess = value - null_mean;
        let se_excess = se_excess(se, null_sd, null.len());
        let (excess_lo, excess_hi) = (excess - t * se_excess, excess + t * se_excess);
        // an interval needs the spread; without a null it is the plain interval of the value
        let (lo, hi) = if excess.is_nan() {
            (value - t * se, value + t * se)
        } else {
            (
                (value - t * se).min(excess_lo),
                (value + t * se).max(excess_hi),
            )
        };
        // every quantity calibrated here (KL, W1, MI) is ≥ 0: the interval starts at 0 at the
        // lowest (it is still empty of meaning, and left as is, when its upper end is ≤ 0)
        let lo = if hi > 0.0 { lo.max(0.0) } else { lo };
        Calibration {
            lo,
            hi,
            se,
            null: null_mean,
            null_sd,
            null_q95,
            p_value,
            permutations: null.len(),
            excess,
            excess_lo,
            excess_hi,
            resamples: resamples.len(),
        }
    }
}

impl Estimate {
    pub(crate) fn failed(estimator: String, bias: Bias, error: String) -> Self {
        Estimate {
            value: f64::NAN,
            estimator,
            bias,
            points_train: 0,
            points_test: 0,
            dims: 0,
            label_term: f64::NAN,
            seconds: 0.0,
            notes: Vec::new(),
            error: Some(error),
            ..Estimate::calibrated(Calibration::of(f64::NAN, &[], &[], 0, 0.95))
        }
    }

    /// An estimate with the error fields of `cal`; the caller fills in the rest.
    pub fn calibrated(cal: Calibration) -> Self {
        Estimate {
            value: f64::NAN,
            lo: cal.lo,
            hi: cal.hi,
            se: cal.se,
            null: cal.null,
            null_sd: cal.null_sd,
            null_q95: cal.null_q95,
            p_value: cal.p_value,
            permutations: cal.permutations,
            excess: cal.excess,
            excess_lo: cal.excess_lo,
            excess_hi: cal.excess_hi,
            resolved: false,
            upper: f64::NAN,
            resolution: f64::NAN,
            points_needed: f64::NAN,
            estimator: String::new(),
            bias: Bias::Estimate,
            points_train: 0,
            points_test: 0,
            dims: 0,
            resamples: cal.resamples,
            label_term: f64::NAN,
            seconds: 0.0,
            notes: Vec::new(),
            error: None,
            halves: Vec::new(),
            halves_key: None,
        }
    }
}

/// The estimator applied to one class pair (class, train, test): value, dimensions used, ties,
/// points per side.
pub(crate) type ClassFn<'a> = dyn FnMut(
        usize,
        &Coords,
        &Coords,
        &mut ChaCha8Rng,
    ) -> Result<(f64, usize, usize, (usize, usize)), EstimateError>
    + 'a;

/// Σ_y w_y·f(P_y, Q_y) over the class pairs (class, weight, train, test).
fn combine<'a>(
    pairs: impl Iterator<Item = (usize, f64, &'a Coords, &'a Coords)>,
    f: &mut ClassFn<'_>,
    rng: &mut ChaCha8Rng,
) -> Result<Combined, EstimateError> {
    let mut out = Combined {
        value: 0.0,
        dims: 0,
        ties: 0,
        points: (0, 0),
    };
    for (class, w, p, q) in pairs {
        let in_class = |e: EstimateError| EstimateError::InClass {
            class,
            source: Box::new(e),
        };
        let (v, dims, ties, (np, nq)) = f(class, p, q, rng).map_err(in_class)?;
        // an overflow inside an estimator (coordinates near the f32 range, projections or
        // distances beyond it) is an error, not a NaN or ∞ reported as a value (found by
        // `cargo fuzz run estimators`: sliced W1 of points near ±3e38 gave NaN)
        if !v.is_finite() {
            return Err(in_class(EstimateError::Degenerate(format!(
                "the estimator gave {v}: coordinates too large (near the f32 range) or too far apart for it"
            ))));
        }
        out.value += w * v;
        out.dims = out.dims.max(dims);
        out.ties += ties;
        out.points.0 += np;
        out.points.1 += nq;
    }
    Ok(out)
}

/// The train and test points of one class stacked (train rows first).
fn pooled(c: &ClassPair) -> Coords {
    let mut data = Vec::with_capacity((c.train.n + c.test.n) * c.train.d);
    data.extend_from_slice(&c.train.data);
    data.extend_from_slice(&c.test.data);
    Coords::new(data, c.train.n + c.test.n, c.train.d)
}

/// `count` values of label_term + Σ_y w_y·f(P'_y, Q'_y) in draw order (NaN where the estimator
/// failed), each class's pair (P', Q') drawn by `draw(class index, class, rng)` with `draw_rng`
/// when given, else with `rng` (which the estimator also uses).
fn resample(
    classes: &[ClassPair],
    count: usize,
    label_term: f64,
    f: &mut ClassFn<'_>,
    rng: &mut ChaCha8Rng,
    mut draw_rng: Option<&mut ChaCha8Rng>,
    mut draw: impl FnMut(usize, &ClassPair, &mut ChaCha8Rng) -> (Coords, Coords),
) -> Vec<f64> {
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let sides: Vec<(Coords, Coords)> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| match draw_rng.as_deref_mut() {
                Some(d) => draw(i, c, d),
                None => draw(i, c, rng),
            })
            .collect();
        match combine(
            classes
                .iter()
                .zip(&sides)
                .map(|(c, (p, q))| (c.class, c.weight, p, q)),
            f,
            rng,
        ) {
            Ok(v) => values.push(label_term + v.value),
            Err(_) => values.push(f64::NAN),
        }
    }
    values
}

/// The successful values of [`resample`] and how many draws failed.
fn successes(values: &[f64]) -> (Vec<f64>, usize) {
    let ok: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let failed = values.len() - ok.len();
    (ok, failed)
}

/// Runs one estimator with its size-matched permutation null and half-sample spread.
///
/// `halves`: a seed for the half-samples' index draws shared by the layers of one run, so that
/// draw b takes the same examples (positions within each class) at every layer whose class
/// pairs have the same sizes — the half-sample values of two layers are then *paired* and
/// their ratio has a spread of its own ([`crate::bounds`]). The estimator keeps its own random
/// stream. `None`: indices and estimator share the layer's stream (as before pairing).
#[allow(clippy::too_many_arguments)]
pub(crate) fn calibrate(
    classes: &[ClassPair],
    label_term: f64,
    spec: &MetricsSpec,
    name: String,
    bias: Bias,
    seed: u64,
    halves: Option<u64>,
    f: &mut ClassFn<'_>,
) -> Estimate {
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "value"));
    let value = match combine(
        classes
            .iter()
            .map(|c| (c.class, c.weight, &c.train, &c.test)),
        f,
        &mut rng,
    ) {
        Ok(v) => v,
        Err(e) => return Estimate::failed(name, bias, e.to_string()),
    };
    let estimate = label_term + value.value;
    let mut notes = Vec::new();
    if value.ties > 0 {
        notes.push(format!(
            "{} points at zero distance from their k-th neighbour (duplicates); their distances were floored",
            value.ties
        ));
    }
    // size-matched permutation null: pool each class, reassign at the actual sizes
    let mut null_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "permutation"));
    let pools: Vec<Coords> = if spec.permutations > 0 {
        classes.iter().map(pooled).collect()
    } else {
        Vec::new()
    };
    let (null_values, null_failures) = successes(&resample(
        classes,
        spec.permutations,
        label_term,
        f,
        &mut null_rng,
        None,
        |i, c, rng| {
            let pool = &pools[i];
            let mut idx: Vec<usize> = (0..pool.n).collect();
            idx.shuffle(rng);
            (
                pool.select(&idx[..c.train.n]),
                pool.select(&idx[c.train.n..]),
            )
        },
    ));
    if null_failures > 0 {
        notes.push(format!(
            "{null_failures} of {} permutations failed",
            spec.permutations
        ));
    }
    // half-sample spread
    let mut boot_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "bootstrap"));
    let mut index_rng = halves.map(|h| ChaCha8Rng::seed_from_u64(derive_seed(h, "halves")));
    let halves_key = halves.map(|h| {
        let sizes: Vec<String> = classes
            .iter()
            .map(|c| format!("{}:{}:{}", c.class, c.train.n, c.test.n))
            .collect();
        fnv1a(format!("{h}/{}/{}", spec.bootstrap, sizes.join(",")).as_bytes())
    });
    let halves_values = resample(
        classes,
        spec.bootstrap,
        label_term,
        f,
        &mut boot_rng,
        index_rng.as_mut(),
        |_, c, rng| {
            let ip = half(c.train.n, rng);
            let iq = half(c.test.n, rng);
            (c.train.select(&ip), c.test.select(&iq))
        },
    );
    let (values, failures) = successes(&halves_values);
    if failures > 0 {
        notes.push(format!(
            "{failures} of {} half-sample resamples failed",
            spec.bootstrap
        ));
    }
    let cal = Calibration::of(
        estimate,
        &values,
        &null_values,
        null_failures,
        spec.confidence,
    );
    Estimate {
        value: estimate,
        estimator: name,
        bias,
        points_train: value.points.0,
        points_test: value.points.1,
        dims: value.dims,
        label_term,
        seconds: start.elapsed().as_secs_f64(),
        notes,
        error: None,
        halves: halves_values,
        halves_key,
        ..Estimate::calibrated(cal)
    }
}

/// z such that P(N(0,1) > z) = tail.
pub(crate) fn normal_upper_quantile(tail: f64) -> f64 {
    Normal::new(0.0, 1.0)
        .map(|d| d.inverse_cdf(1.0 - tail))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_fields_follow_their_definitions() {
        // null values 0..=9 (mean 4.5), value 8.5: one null value (9) ≥ 8.5 → p = 2/11
        let null: Vec<f64> = (0..10).map(f64::from).collect();
        let halves = [8.0, 9.0, 8.5, 8.5];
        let c = Calibration::of(8.5, &halves, &null, 0, 0.95);
        assert!((c.null - 4.5).abs() < 1e-12);
        assert!((c.p_value - 2.0 / 11.0).abs() < 1e-12);
        assert!((c.excess - 4.0).abs() < 1e-12);
        let se = (0.5f64 / 3.0).sqrt();
        assert!((c.se - se).abs() < 1e-12);
        let t = StudentsT::new(0.0, 1.0, 3.0).unwrap().inverse_cdf(0.975);
        let se_excess = (se * se + c.null_sd * c.null_sd / 10.0).sqrt();
        assert!((c.excess_lo - (4.0 - t * se_excess)).abs() < 1e-12);
        // the interval spans the raw value's and the excess's readings
        assert!((c.lo - c.excess_lo).abs() < 1e-12);
        assert!((c.hi - (8.5 + t * se)).abs() < 1e-12);
        assert!((c.null_q95 - 8.55).abs() < 1e-12);
        // a value above every null value has the smallest p a permutation test can give
        let c = Calibration::of(100.0, &halves, &null, 0, 0.95);
        assert!((c.p_value - 1.0 / 11.0).abs() < 1e-12);
        // two failed permutations count as reaching the value: p = (1 + 2)/(1 + 2 + 10)
        let c = Calibration::of(100.0, &halves, &null, 2, 0.95);
        assert!((c.p_value - 3.0 / 13.0).abs() < 1e-12);
        // no null: NaN null fields, and the plain interval of the value
        let c = Calibration::of(1.0, &halves, &[], 0, 0.95);
        assert!(c.null.is_nan() && c.p_value.is_nan() && c.excess.is_nan());
        assert!((c.hi - (1.0 + t * se)).abs() < 1e-12);
    }
}
