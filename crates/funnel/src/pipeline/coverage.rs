//! The self-test panel behind `funnel selftest`: the **coverage** of every default estimator's interval, measured by
//! simulation on clouds whose divergence is known in closed form.
//!
//! Each case draws fresh seeded clouds R times (`--reps`), runs the estimator with its
//! size-matched permutation null and half-sample spread exactly as a run does, and counts how
//! often the interval [lo, hi] contains the truth. The panel covers the regimes funnel's
//! studies live in:
//! * Gaussian pairs P = N(0, I_d), Q = N(m, 1.5²·I_d), ‖m‖ = 1.5 (KL in closed form);
//! * small divergences: N(0, I) vs N(δ·e₁, I) with KL = δ²/2 = 0.005–0.02 nats;
//! * unequal sizes (1:10; 100 vs 1000 points in the CLI panel) on clouds of low intrinsic dimension: tanh(A·x) of a 2-d
//!   Gaussian x embedded in 8 or 32 dimensions (an injective map, so the KL is that of the
//!   2-d inputs, δ²/2 for a shift δ, and 0 for identical laws);
//! * dropout-like clouds: x ~ N(μ, I_8), each coordinate zeroed with probability p and the rest
//!   scaled by 1/(1−p) (atoms and exact zeros); a shift δ on one coordinate gives
//!   KL = (1−p)·δ²/2 by the chain rule over masks;
//! * W1: shifted Gaussians (W1 = ‖Δ‖), identical clouds (W1 = 0), 1-D pairs, and the sliced
//!   W1 = ‖Δ‖·E|θ₁|.
//!
//! Every case is counted once. A case with a non-zero truth passes when its coverage is at least
//! 90% at nominal 95% (printed with its Clopper–Pearson interval over the repetitions); the run
//! lists every case that falls short, and whether `auto` would use that estimator there. A case
//! with truth 0 is covered almost by construction (the interval starts at 0), so it is judged by
//! how often p ≤ 0.05 (the false-positive rate of one test, which must be consistent with ≤ 5%).
//! Exit code 3 when an estimator fails outright (an error).

use funnel_core::derive_seed;
use funnel_metrics::{
    layer_divergence, Cloud, Estimate, KlEstimator, LayerContext, MetricsSpec, Points, W1Estimator,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use statrs::function::erf::erf;
use statrs::function::gamma::ln_gamma;

/// Which divergence of the layer a case checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Which {
    Kl,
    W1,
}

/// The two clouds of one repetition.
pub type Draw = Box<dyn Fn(&mut ChaCha8Rng) -> (Cloud, Cloud)>;

/// One case of the coverage panel.
pub struct Case {
    pub name: String,
    pub which: Which,
    pub spec: MetricsSpec,
    pub truth: f64,
    /// Where `auto` (or the W1 default) uses this estimator on such a cloud, or "" if never.
    pub default_for: &'static str,
    pub sizes: (usize, usize),
    pub dim: usize,
    pub draw: Draw,
}

/// What R repetitions of a case measured.
#[derive(Clone, Debug, Default)]
pub struct CaseResult {
    pub reps: usize,
    pub covered: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub mean_value: f64,
    pub mean_excess: f64,
    pub mean_width: f64,
    /// Repetitions with p ≤ 0.05.
    pub p_small: usize,
}

impl CaseResult {
    pub fn coverage(&self) -> f64 {
        self.covered as f64 / (self.reps - self.errors).max(1) as f64
    }
}

/// The Clopper–Pearson 95% interval of a binomial proportion k of n.
pub fn clopper_pearson(k: usize, n: usize) -> (f64, f64) {
    use statrs::distribution::{Beta, ContinuousCDF};
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (kf, nf) = (k as f64, n as f64);
    let lo = if k == 0 {
        0.0
    } else {
        Beta::new(kf, nf - kf + 1.0).map_or(f64::NAN, |b| b.inverse_cdf(0.025))
    };
    let hi = if k == n {
        1.0
    } else {
        Beta::new(kf + 1.0, nf - kf).map_or(f64::NAN, |b| b.inverse_cdf(0.975))
    };
    (lo, hi)
}

fn normal(n: usize, d: usize, mean: &[f64], std: f64, rng: &mut ChaCha8Rng) -> Cloud {
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        for m in mean.iter().take(d) {
            let z: f64 = StandardNormal.sample(&mut *rng);
            data.push((m + std * z) as f32);
        }
    }
    Cloud::new(Points::new(data, n, d), vec![0; n], 1)
}

fn uniform(n: usize, d: usize, width: f64, rng: &mut ChaCha8Rng) -> Cloud {
    let data = (0..n * d)
        .map(|_| (width * rng.random_range(0.0..1.0)) as f32)
        .collect();
    Cloud::new(Points::new(data, n, d), vec![0; n], 1)
}

/// KL(N(0, s1²I) ‖ N(m, s2²I)) with ‖m‖² = m2.
fn kl_isotropic(d: usize, s1: f64, s2: f64, m2: f64) -> f64 {
    let (v1, v2) = (s1 * s1, s2 * s2);
    0.5 * (d as f64 * (v1 / v2 - 1.0 + (v2 / v1).ln()) + m2 / v2)
}

/// E|θ₁| for θ uniform on the unit sphere of R^d: Γ(d/2) / (√π·Γ((d+1)/2)).
fn sphere_abs_mean(d: usize) -> f64 {
    let d = d as f64;
    (ln_gamma(d / 2.0) - ln_gamma((d + 1.0) / 2.0)).exp() / std::f64::consts::PI.sqrt()
}

/// W1 between N(0, 1) and N(μ, σ²) in 1-D: E|(σ−1)Z + μ|.
fn w1_normal_1d(mu: f64, sigma: f64) -> f64 {
    let a = (sigma - 1.0).abs();
    if a == 0.0 {
        return mu.abs();
    }
    let phi = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    a * (2.0 / std::f64::consts::PI).sqrt() * (-mu * mu / (2.0 * a * a)).exp()
        + mu * (1.0 - 2.0 * phi(-mu / a))
}

/// tanh(A·x) for a 2-d x ~ N(shift·e₁, I_2) and a fixed A ∈ R^{d×2} (seeded by `map_seed`):
/// an injective map, so KL between two such clouds is the KL of their 2-d inputs.
fn tanh_embedding(n: usize, d: usize, shift: f64, map_seed: u64, rng: &mut ChaCha8Rng) -> Cloud {
    let mut map_rng = ChaCha8Rng::seed_from_u64(map_seed);
    let a: Vec<f64> = (0..2 * d)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut map_rng);
            z * 0.7
        })
        .collect();
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let x0: f64 = StandardNormal.sample(&mut *rng);
        let x1: f64 = StandardNormal.sample(&mut *rng);
        let x = [x0 + shift, x1];
        for j in 0..d {
            data.push((a[2 * j] * x[0] + a[2 * j + 1] * x[1]).tanh() as f32);
        }
    }
    Cloud::new(Points::new(data, n, d), vec![0; n], 1)
}

/// x ~ N(μ + shift·e₁, I_d) with μ = 0.5·1, each coordinate zeroed with probability p and the
/// kept ones scaled by 1/(1−p), as inverted dropout does.
fn dropout_like(n: usize, d: usize, p: f64, shift: f64, rng: &mut ChaCha8Rng) -> Cloud {
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        for j in 0..d {
            let z: f64 = StandardNormal.sample(&mut *rng);
            let x = 0.5 + z + if j == 0 { shift } else { 0.0 };
            let keep = rng.random_range(0.0..1.0) >= p;
            data.push(if keep { (x / (1.0 - p)) as f32 } else { 0.0 });
        }
    }
    Cloud::new(Points::new(data, n, d), vec![0; n], 1)
}

fn spec(kl: KlEstimator, w1: W1Estimator, bootstrap: usize, permutations: usize) -> MetricsSpec {
    MetricsSpec {
        kl,
        w1,
        bootstrap,
        permutations,
        max_points: 10_000_000,
        exact_max_per_class: 10_000,
        mi: false,
        ..MetricsSpec::default()
    }
}

/// n points of P = N(0, I_d) and n of Q = N(q_mean, q_std²·I_d), drawn in that order.
fn gaussian_pair(n: usize, d: usize, q_mean: Vec<f64>, q_std: f64) -> Draw {
    Box::new(move |rng| {
        let p = normal(n, d, &vec![0.0; d], 1.0, rng);
        (p, normal(n, d, &q_mean, q_std, rng))
    })
}

fn shifted(d: usize, delta: f64) -> Vec<f64> {
    let mut m = vec![0.0; d];
    m[0] = delta;
    m
}

/// The panel. `scale` divides the point counts written in it (2 for the CLI: 500 points per
/// side for most cases, 100 vs 1000 for the unequal sizes; tests use smaller clouds).
pub fn panel(quick: bool, b: usize, perms: usize, scale: usize) -> Vec<Case> {
    let s = |n: usize| (n / scale).max(20);
    let mut cases = Vec::new();
    let knn = spec(KlEstimator::Knn, W1Estimator::Sliced, b, perms);
    let gauss = spec(KlEstimator::Gaussian, W1Estimator::Sliced, b, perms);
    let exact = spec(KlEstimator::Gaussian, W1Estimator::Exact, b, perms);
    let sliced = MetricsSpec {
        sliced_directions: 256,
        ..spec(KlEstimator::Gaussian, W1Estimator::Sliced, b, perms)
    };
    // Gaussian pairs
    for (d, sp, default_for) in [
        (1usize, &knn, "linear and non-linear layers of rank ≤ 8"),
        (4, &knn, "linear and non-linear layers of rank ≤ 8"),
        (16, &gauss, "linear layers of rank > 8"),
        (16, &knn, "non-linear layers of any rank"),
    ] {
        if quick && d != 4 {
            continue;
        }
        let n = s(1000);
        let m = vec![1.5 / (d as f64).sqrt(); d];
        cases.push(Case {
            name: "gaussian pair".into(),
            which: Which::Kl,
            spec: sp.clone(),
            truth: kl_isotropic(d, 1.0, 1.5, 2.25),
            default_for,
            sizes: (n, n),
            dim: d,
            draw: gaussian_pair(n, d, m, 1.5),
        });
    }
    // small divergences
    for (d, kl, sp, default_for) in [
        (2usize, 0.02, &knn, "layers of rank ≤ 8 (e.g. two logits)"),
        (4, 0.02, &knn, "linear and non-linear layers of rank ≤ 8"),
        (4, 0.005, &knn, "linear and non-linear layers of rank ≤ 8"),
        (16, 0.02, &gauss, "linear layers of rank > 8"),
    ] {
        if quick && (d != 4 || kl != 0.02) {
            continue;
        }
        let n = s(1000);
        let m = shifted(d, (2.0f64 * kl).sqrt());
        cases.push(Case {
            name: format!("small shift (KL {kl})"),
            which: Which::Kl,
            spec: sp.clone(),
            truth: kl,
            default_for,
            sizes: (n, n),
            dim: d,
            draw: gaussian_pair(n, d, m, 1.0),
        });
    }
    // unequal sizes, low intrinsic dimension
    for (d, shift) in [(8usize, 0.0), (8, 0.5), (32, 0.5)] {
        if quick && d != 8 {
            continue;
        }
        let (n, m) = (s(200), s(2000));
        cases.push(Case {
            name: format!(
                "tanh 2→{d}, 1:10 sizes{}",
                if shift > 0.0 { ", shift" } else { ", same law" }
            ),
            which: Which::Kl,
            spec: knn.clone(),
            truth: shift * shift / 2.0,
            default_for: "non-linear layers of any rank",
            sizes: (n, m),
            dim: d,
            draw: Box::new(move |rng| {
                let p = tanh_embedding(n, d, 0.0, 77, rng);
                (p, tanh_embedding(m, d, shift, 77, rng))
            }),
        });
    }
    // dropout-like clouds
    for shift in [0.0, 1.0] {
        let n = s(1000);
        let (d, p) = (8usize, 0.5);
        cases.push(Case {
            name: format!(
                "dropout-like p=0.5{}",
                if shift > 0.0 { ", shift" } else { ", same law" }
            ),
            which: Which::Kl,
            spec: knn.clone(),
            truth: (1.0 - p) * shift * shift / 2.0,
            default_for: "dropout layers (and every layer after one)",
            sizes: (n, n),
            dim: d,
            draw: Box::new(move |rng| {
                let a = dropout_like(n, d, p, 0.0, rng);
                (a, dropout_like(n, d, p, shift, rng))
            }),
        });
    }
    // uniform boxes U[0,1]^4 vs U[0,1.5]^4: KL = 4·ln 1.5 (not Gaussian, bounded support)
    if !quick {
        let n = s(1000);
        cases.push(Case {
            name: "uniform boxes (a=1.5)".into(),
            which: Which::Kl,
            spec: knn.clone(),
            truth: 4.0 * 1.5f64.ln(),
            default_for: "linear and non-linear layers of rank ≤ 8",
            sizes: (n, n),
            dim: 4,
            draw: Box::new(move |rng| {
                let p = uniform(n, 4, 1.0, rng);
                (p, uniform(n, 4, 1.5, rng))
            }),
        });
    }
    // W1
    for (d, delta, sp, truth, default_for) in [
        (
            1usize,
            0.0,
            &exact,
            f64::NAN,
            "every layer (exact is the W1 default)",
        ),
        (2, 1.0, &exact, 1.0, "every layer (exact is the W1 default)"),
        (8, 0.0, &exact, 0.0, "every layer (exact is the W1 default)"),
        (8, 1.0, &exact, 1.0, "every layer (exact is the W1 default)"),
        (8, 1.0, &sliced, sphere_abs_mean(8), ""),
    ] {
        if quick && d != 2 {
            continue;
        }
        let n = s(600);
        if d == 1 {
            // 1-D pair N(0, 1) vs N(0.5, 1.5²)
            cases.push(Case {
                name: "1-D pair".into(),
                which: Which::W1,
                spec: sp.clone(),
                truth: w1_normal_1d(0.5, 1.5),
                default_for,
                sizes: (n, n),
                dim: 1,
                draw: gaussian_pair(n, 1, vec![0.5], 1.5),
            });
            continue;
        }
        let m = shifted(d, delta);
        cases.push(Case {
            name: if delta > 0.0 {
                "shifted gaussians".into()
            } else {
                "same gaussian".into()
            },
            which: Which::W1,
            spec: sp.clone(),
            truth,
            default_for,
            sizes: (n, n),
            dim: d,
            draw: gaussian_pair(n, d, m, 1.0),
        });
    }
    cases
}

/// Runs `reps` seeded repetitions of one case.
pub fn run_case(case: &Case, reps: usize, device: &burn::prelude::Device, seed: u64) -> CaseResult {
    let mut out = CaseResult {
        reps,
        ..CaseResult::default()
    };
    let (mut sum_v, mut sum_x, mut sum_w, mut counted) = (0.0, 0.0, 0.0, 0usize);
    for r in 0..reps {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, &format!("rep-{r}")));
        let (p, q) = (case.draw)(&mut rng);
        let div = layer_divergence(
            &p,
            &q,
            &case.spec,
            LayerContext::default(),
            device,
            derive_seed(seed, &format!("estimate-{r}")),
        );
        let e: &Estimate = match case.which {
            Which::Kl => &div.kl,
            Which::W1 => &div.w1,
        };
        if let Some(err) = &e.error {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| err.clone());
            continue;
        }
        counted += 1;
        if e.lo <= case.truth && case.truth <= e.hi {
            out.covered += 1;
        }
        if e.p_value <= 0.05 {
            out.p_small += 1;
        }
        sum_v += e.value;
        sum_x += e.excess;
        sum_w += e.hi - e.lo;
    }
    let c = counted.max(1) as f64;
    (out.mean_value, out.mean_excess, out.mean_width) = (sum_v / c, sum_x / c, sum_w / c);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        assert!((sphere_abs_mean(1) - 1.0).abs() < 1e-12);
        assert!((sphere_abs_mean(2) - 2.0 / std::f64::consts::PI).abs() < 1e-12);
        // d = 3: E|θ₁| = ½
        assert!((sphere_abs_mean(3) - 0.5).abs() < 1e-12);
        // pure shift: W1 = |μ|; pure scale: E|(σ−1)Z| = |σ−1|·√(2/π)
        assert!((w1_normal_1d(0.7, 1.0) - 0.7).abs() < 1e-12);
        assert!((w1_normal_1d(0.0, 2.0) - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12);
        // the KL of the panel's pairs (README): 0.628 for d = 1
        assert!((kl_isotropic(1, 1.0, 1.5, 2.25) - 0.628).abs() < 1e-3);
    }

    #[test]
    fn clopper_pearson_matches_the_beta_quantiles() {
        // scipy.stats.beta.ppf(0.025, 27, 4), beta.ppf(0.975, 28, 3)
        let (lo, hi) = clopper_pearson(27, 30);
        assert!((lo - 0.734_715).abs() < 1e-5, "{lo}");
        assert!((hi - 0.978_881).abs() < 1e-5, "{hi}");
        assert_eq!(clopper_pearson(0, 10).0, 0.0);
        assert_eq!(clopper_pearson(10, 10).1, 1.0);
    }

    /// Coverage measured over seeded repetitions on three panel cases (smaller clouds than the
    /// CLI panel), and the permutation null's false-positive rate on identical laws at 1:10
    /// sizes on a 2-d manifold: the property the calibration exists for.
    #[test]
    fn coverage_over_seeded_repetitions() {
        let device = burn::prelude::Device::flex();
        let cases = panel(false, 10, 19, 4);
        let pick = |name: &str, est: &str| {
            cases
                .iter()
                .find(|c| {
                    c.name == name
                        && match c.which {
                            Which::Kl => c.spec.kl_name(),
                            Which::W1 => c.spec.w1_name(),
                        }
                        .starts_with(est)
                })
                .unwrap_or_else(|| panic!("no case {name} {est}"))
        };
        for (name, est) in [
            ("small shift (KL 0.02)", "knn"),
            ("gaussian pair", "gaussian"),
            ("shifted gaussians", "exact"),
        ] {
            let case = pick(name, est);
            let r = run_case(case, 40, &device, 7);
            assert_eq!(r.errors, 0, "{name}: {:?}", r.first_error);
            assert!(
                r.coverage() >= 0.9,
                "{name} {est}: coverage {} of {}",
                r.covered,
                r.reps
            );
        }
        let same = pick("tanh 2→8, 1:10 sizes, same law", "knn");
        let r = run_case(same, 40, &device, 8);
        // 5% of 40 is 2; allow the binomial's spread, not a broken null (which reads p ≈ 0)
        assert!(r.p_small <= 5, "p ≤ 0.05 in {} of 40", r.p_small);
        assert!(r.mean_value.abs() < 0.5, "mean {}", r.mean_value);
    }
}
