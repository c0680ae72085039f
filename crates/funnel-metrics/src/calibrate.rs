//! Calibration of an estimator on one layer's class pairs: its value, null baseline and
//! half-sampling interval.
//!
//! The **null baseline** is the same estimator between two disjoint, class-stratified halves of
//! the test cloud: what the estimator reports when there is no train/test difference (at half
//! the sample size, so it slightly overstates the floor).
//!
//! The **CI** comes from B half-samples: within each class, ⌈n/2⌉ points of the train cloud and
//! ⌈m/2⌉ of the test cloud drawn *without* replacement, the estimator recomputed, and the
//! interval θ̂ + [q_{α/2} − θ̄*, q_{1−α/2} − θ̄*] (θ̄* the mean of the half-sample values).
//! Half-samples replace the classic with-replacement bootstrap because duplicated points break
//! both kNN distances (zero distances) and empirical W1 (fewer distinct points, a higher floor:
//! a percentile bootstrap interval of W1 can miss its own estimate). Drawing half of n without
//! replacement has the finite-population factor 1 − ½ = ½, so for a √n-consistent estimator the
//! spread of the half-sample values around their mean matches the spread of the full estimate;
//! recentring removes the shift E θ̂_{n/2} − E θ̂_n (the floor grows as n falls). The interval
//! therefore describes sampling variability at the sample size used; the bias of the estimator
//! (its floor) is what the null baseline shows. Limitation: the argument assumes the estimator
//! uses every point; when the exact-W1 cap (`exact_max_per_class`) binds at full size but not
//! for the halves, the half-sample spread understates the full estimate's by up to √2.

use std::borrow::Cow;
use std::time::Instant;

use funnel_model::derive_seed;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::divergence::{Bias, Estimate};
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
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The recentred half-sampling interval θ̂ + [q_{α/2} − θ̄*, q_{1−α/2} − θ̄*] of `estimate`
/// from the half-sample values (sorted in place); NaN when there are none.
pub(crate) fn recentred_interval(estimate: f64, values: &mut [f64], confidence: f64) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    let center = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (
        estimate + percentile(values, alpha) - center,
        estimate + percentile(values, 1.0 - alpha) - center,
    )
}

/// ⌈n/2⌉ of `0..n`, without replacement, sorted.
pub(crate) fn half(n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut idx = sample(rng, n, n.div_ceil(2)).into_vec();
    idx.sort_unstable();
    idx
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

/// One class's inputs to an estimator call: class, weight, train and test coordinates
/// (borrowed for the full clouds, owned for the halves and half-samples: a wide layer's
/// coordinates are hundreds of MB, so the full clouds are never copied).
type Pair<'a> = (usize, f64, Cow<'a, Coords>, Cow<'a, Coords>);

/// Σ_y w_y·f(P_y, Q_y) over the class pairs.
fn combine(
    pairs: &[Pair<'_>],
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
            class: *class,
            source: Box::new(e),
        };
        let (v, dims, ties, (np, nq)) = f(*class, p, q, rng).map_err(in_class)?;
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

/// Runs one estimator with its null baseline and half-sampling interval.
#[allow(clippy::too_many_arguments)]
pub(crate) fn calibrate(
    classes: &[ClassPair],
    label_term: f64,
    null_label_term: f64,
    halves: &[(Vec<usize>, Vec<usize>)],
    spec: &MetricsSpec,
    name: String,
    bias: Bias,
    seed: u64,
    f: &mut ClassFn<'_>,
) -> Estimate {
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "value"));
    let main: Vec<Pair> = classes
        .iter()
        .map(|c| {
            (
                c.class,
                c.weight,
                Cow::Borrowed(&c.train),
                Cow::Borrowed(&c.test),
            )
        })
        .collect();
    let value = match combine(&main, f, &mut rng) {
        Ok(v) => v,
        Err(e) => return Estimate::failed(name, bias, e.to_string()),
    };
    let mut notes = Vec::new();
    if value.ties > 0 {
        notes.push(format!(
            "{} points at zero distance from their k-th neighbour (duplicates); their distances were floored",
            value.ties
        ));
    }
    // null baseline: halves of the test cloud, weighted by the first half's class shares
    let mut null_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "null"));
    let a_total: usize = halves.iter().map(|h| h.0.len()).sum();
    let null_pairs: Vec<Pair> = classes
        .iter()
        .zip(halves)
        .map(|(c, (a, b))| {
            let w = a.len() as f64 / a_total.max(1) as f64;
            (
                c.class,
                w,
                Cow::Owned(c.test.select(a)),
                Cow::Owned(c.test.select(b)),
            )
        })
        .collect();
    let null = match combine(&null_pairs, f, &mut null_rng) {
        Ok(v) => null_label_term + v.value,
        Err(e) => {
            notes.push(format!("no null baseline: {e}"));
            f64::NAN
        }
    };
    // half-sampling interval
    let mut boot_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "bootstrap"));
    let mut values = Vec::with_capacity(spec.bootstrap);
    let mut failures = 0;
    for _ in 0..spec.bootstrap {
        let pairs: Vec<Pair> = classes
            .iter()
            .map(|c| {
                let ip = half(c.train.n, &mut boot_rng);
                let iq = half(c.test.n, &mut boot_rng);
                (
                    c.class,
                    c.weight,
                    Cow::Owned(c.train.select(&ip)),
                    Cow::Owned(c.test.select(&iq)),
                )
            })
            .collect();
        match combine(&pairs, f, &mut boot_rng) {
            Ok(v) => values.push(v.value),
            Err(_) => failures += 1,
        }
    }
    if failures > 0 {
        notes.push(format!(
            "{failures} of {} half-sample resamples failed",
            spec.bootstrap
        ));
    }
    let estimate = label_term + value.value;
    let (lo, hi) = recentred_interval(estimate, &mut values, spec.confidence);
    Estimate {
        value: estimate,
        lo,
        hi,
        null,
        estimator: name,
        bias,
        points_train: value.points.0,
        points_test: value.points.1,
        dims: value.dims,
        resamples: values.len(),
        label_term,
        seconds: start.elapsed().as_secs_f64(),
        notes,
        error: None,
    }
}
