//! The measured contraction D_l/D_{l−1} of consecutive layers (DESIGN §2.6) and its interval,
//! set beside the SDPI coefficient η_l by [`crate::bounds::assemble`].

use crate::estimate::Estimate;

/// The interval of the measured contraction ratio of one layer (see [`ratio_interval`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioInterval {
    pub lo: f64,
    pub hi: f64,
    /// "paired", "conservative", or "" (no interval).
    pub method: &'static str,
}

impl RatioInterval {
    /// No interval (NaN ends, no method).
    pub(crate) fn none() -> Self {
        RatioInterval {
            lo: f64::NAN,
            hi: f64::NAN,
            method: "",
        }
    }
}

/// An interval for the measured contraction ρ = (D_l − KL_π)/(D_{l−1} − KL_π) of the
/// input-dependent parts (`point`), at level `confidence`.
///
/// **Paired** (both layers' KL half-samples drew the same examples, `Estimate::halves_key`
/// equal): for each half-sample b the ratio ρ_b of the two layers' half-sample values is taken
/// on the same points, so the spread of ρ_b is the ratio's own (the layers' errors are strongly
/// correlated, which a quotient of two separate intervals ignores). The interval is the
/// percentile spread of ρ_b around its median, re-centred on the point ratio:
/// [ρ − (med − q_{α/2}), ρ + (q_{1−α/2} − med)] — half-sample values carry the bias of half the
/// points, so their quantiles are used for the spread, not the location. As the KL interval
/// does, it also spans the null-corrected reading (value − null mean at both layers, per
/// half-sample the same), so it holds the raw and the debiased ratio. A draw whose denominator
/// is ≤ 0 has an unbounded ratio and counts as +∞: if enough of them reach the upper quantile,
/// `hi` = +∞. Draws on which either estimator failed are left out.
///
/// **Conservative** (not paired: the kNN equal-size subsample, a run without the shared index
/// stream, too few common half-samples): the quotient of the intervals,
/// [lo_l/hi_{l−1}, hi_l/lo_{l−1}] on the input-dependent parts with signs handled (the
/// numerator's negative lower end divides by the smallest denominator); hi = +∞ when
/// lo_{l−1} ≤ 0.
///
/// Coverage is not established: half-sample spreads of biased estimators (kNN, smoothed KL)
/// describe sampling noise, not the bias, and the bias of a ratio need not cancel. A test
/// measures it on a bijective layer (true ratio 1).
pub fn ratio_interval(
    now: &Estimate,
    prev: &Estimate,
    point: f64,
    confidence: f64,
) -> RatioInterval {
    if !point.is_finite() {
        return RatioInterval::none();
    }
    let tail = (1.0 - confidence) / 2.0;
    let paired = now.halves_key.is_some()
        && now.halves_key == prev.halves_key
        && now.halves.len() == prev.halves.len();
    if paired {
        // one reading: subtract `off` at both layers, divide; (lo, hi) of the re-centred spread
        let reading = |off_now: f64, off_prev: f64, centre: f64| -> Option<(f64, f64)> {
            let mut r: Vec<f64> = now
                .halves
                .iter()
                .zip(&prev.halves)
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|(a, b)| {
                    let den = b - off_prev;
                    if den > 0.0 {
                        (a - off_now) / den
                    } else {
                        f64::INFINITY
                    }
                })
                .collect();
            if r.len() < 2 || centre.is_nan() {
                return None;
            }
            r.sort_by(f64::total_cmp);
            // linear interpolation; a quantile that touches a +∞ draw is +∞ (sorted: only the
            // upper neighbour can be)
            let q = |p: f64| {
                let pos = p * (r.len() - 1) as f64;
                let (i, j) = (pos.floor() as usize, pos.ceil() as usize);
                if r[j].is_infinite() {
                    f64::INFINITY
                } else {
                    r[i] + (r[j] - r[i]) * (pos - i as f64)
                }
            };
            let (ql, med, qh) = (q(tail), q(0.5), q(1.0 - tail));
            if centre == f64::INFINITY || med.is_infinite() {
                // the typical draw has no ratio: nothing but "unbounded" can be said
                return Some((ql.min(centre), f64::INFINITY));
            }
            let hi = if qh.is_infinite() {
                f64::INFINITY
            } else {
                centre + (qh - med)
            };
            let lo = centre - (med - ql);
            Some((lo, hi))
        };
        let raw = reading(now.label_term, prev.label_term, point);
        if let Some((lo, hi)) = raw {
            // the null-corrected reading, where there is a null
            let debiased = if now.null.is_finite() && prev.null.is_finite() {
                let den = prev.value - prev.null;
                let centre = if den > 0.0 {
                    (now.value - now.null) / den
                } else {
                    f64::INFINITY
                };
                reading(now.null, prev.null, centre)
            } else {
                None
            };
            let (lo, hi) = match debiased {
                Some((l2, h2)) => (lo.min(l2), hi.max(h2)),
                None => (lo, hi),
            };
            return RatioInterval {
                lo,
                hi,
                method: "paired",
            };
        }
    }
    // conservative: quotient of the two intervals of the input-dependent parts
    let (n_lo, n_hi) = (now.lo - now.label_term, now.hi - now.label_term);
    let (d_lo, d_hi) = (prev.lo - prev.label_term, prev.hi - prev.label_term);
    if [n_lo, n_hi, d_lo, d_hi].iter().any(|v| v.is_nan()) || d_hi <= 0.0 {
        return RatioInterval::none();
    }
    let lo = if n_lo >= 0.0 {
        n_lo / d_hi
    } else if d_lo > 0.0 {
        n_lo / d_lo
    } else {
        f64::NEG_INFINITY
    };
    let hi = if d_lo <= 0.0 {
        if n_hi > 0.0 {
            f64::INFINITY
        } else {
            n_hi / d_hi
        }
    } else if n_hi >= 0.0 {
        n_hi / d_lo
    } else {
        n_hi / d_hi
    };
    RatioInterval {
        lo: lo.min(point),
        hi: hi.max(point),
        method: "conservative",
    }
}
