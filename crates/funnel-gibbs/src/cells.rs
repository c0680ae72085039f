//! One (γ, n) cell: the training sets of size n (each from its own seed), L_S of every
//! configuration, the posterior and its statistics for every γ, on several threads, and the
//! row they average into.

use std::thread;

use funnel_core::splitmix64;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::architecture::architecture_loss_table;
use crate::enumeration::{draw_population, loss_table, LossTable};
use crate::posterior::{normalise, normalise_into};
use crate::results::{mean_stderr, GibbsRow};
use crate::spec::{Architecture, GibbsSpec};

/// The seed of training set `set` of size `n`: a hash of (seed, n, set), distinct from the pool's
/// stream.
fn set_seed(seed: u64, n: usize, set: usize) -> u64 {
    const DOMAIN: u64 = 0x6769_6262_735f_7365; // "gibbs_se"
    let h = splitmix64(seed ^ DOMAIN);
    let h = splitmix64(h ^ n as u64);
    splitmix64(h ^ set as u64)
}

/// The pool indices of training set `set` of size `n` (i.i.d. uniform, with replacement), sorted
/// (the sums over them are exact integers, so the order does not matter; sorted rows are read in
/// memory order).
fn draw_set(seed: u64, n: usize, set: usize, pool: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(set_seed(seed, n, set));
    let mut draws: Vec<usize> = (0..n).map(|_| rng.random_range(0..pool)).collect();
    draws.sort_unstable();
    draws
}

/// Scratch buffers of one thread.
struct Scratch {
    acc16: Vec<u16>,
    acc32: Vec<u32>,
    log_weights: Vec<f64>,
    posterior: Vec<f64>,
}

impl Scratch {
    fn new(configs: usize) -> Scratch {
        Scratch {
            acc16: vec![0; configs],
            acc32: vec![0; configs],
            log_weights: vec![0.0; configs],
            posterior: vec![0.0; configs],
        }
    }
}

/// L_S(w) for every configuration into `out`, from the pool indices `draws`.
fn empirical_losses(table: &LossTable, draws: &[usize], scratch: &mut Scratch, out: &mut [f64]) {
    if table.is_real() {
        // Expected losses under dropout: summed in f64 in the (sorted) order of the draws.
        out.fill(0.0);
        for &i in draws {
            for (l, &v) in out.iter_mut().zip(table.value_row(i)) {
                *l += v;
            }
        }
        let m = draws.len() as f64;
        for l in out.iter_mut() {
            *l /= m;
        }
        return;
    }
    // Codes are ≤ 2, so a u16 holds the sum of up to 32767 rows.
    const CHUNK: usize = (u16::MAX / 2) as usize;
    scratch.acc32.fill(0);
    for chunk in draws.chunks(CHUNK) {
        scratch.acc16.fill(0);
        for &i in chunk {
            for (a, &c) in scratch.acc16.iter_mut().zip(table.row(i)) {
                *a += u16::from(c);
            }
        }
        for (a, &b) in scratch.acc32.iter_mut().zip(&scratch.acc16) {
            *a += u32::from(b);
        }
    }
    let scale = 0.5 / draws.len() as f64;
    for (l, &a) in out.iter_mut().zip(&scratch.acc32) {
        *l = f64::from(a) * scale;
    }
}

/// What one training set gives for one γ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SetStats {
    gap: f64,
    gap_cv: f64,
    train: f64,
    test: f64,
    effective: f64,
}

/// The posterior P(w|S) ∝ exp(−γ·L_S(w)) (uniform prior) and its statistics. `population_gibbs`
/// is P_R ∝ exp(−γ·R), for the control variate.
fn posterior_stats(
    gamma: f64,
    train: &[f64],
    risk: &[f64],
    population_gibbs: &[f64],
    scratch: &mut Scratch,
) -> SetStats {
    for (lw, &l) in scratch.log_weights.iter_mut().zip(train) {
        *lw = -gamma * l;
    }
    let log_z = normalise_into(&scratch.log_weights, &mut scratch.posterior);
    let (mut e_train, mut e_test, mut control) = (0.0, 0.0, 0.0);
    for (((&p, &l), &r), &q) in scratch
        .posterior
        .iter()
        .zip(train)
        .zip(risk)
        .zip(population_gibbs)
    {
        e_train += p * l;
        e_test += p * r;
        control += q * (r - l);
    }
    // Entropy −Σ p ln p with ln p = −γ L − log Z.
    let entropy = log_z + gamma * e_train;
    let gap = e_test - e_train;
    SetStats {
        gap,
        gap_cv: gap - control,
        train: e_train,
        test: e_test,
        effective: entropy.exp(),
    }
}

/// The pool, its loss table and everything shared by the cells.
pub(crate) struct Prepared {
    pub(crate) table: LossTable,
    pub(crate) risk: Vec<f64>,
    gammas: Vec<f64>,
    /// P_R ∝ exp(−γ·R) for each γ.
    population_gibbs: Vec<Vec<f64>>,
    seed: u64,
    train_sets: usize,
}

/// Builds the pool and the loss table. Does not validate (tests use γ = 0).
pub(crate) fn prepare(spec: &GibbsSpec, threads: usize) -> Prepared {
    let population = draw_population(spec);
    let table = loss_table(spec, &population.points, &population.labels, threads);
    prepare_table(spec, table)
}

/// [`prepare`] for one architecture of `spec.architecture` (with its dropout) on the pool of
/// `spec` (the same pool, hence the same population and training sets, for every architecture).
pub(crate) fn prepare_architecture(
    spec: &GibbsSpec,
    arch: &Architecture,
    threads: usize,
) -> Prepared {
    let population = draw_population(spec);
    let table = architecture_loss_table(
        spec.dim,
        arch,
        &spec.levels,
        &population.points,
        &population.labels,
        threads,
    );
    prepare_table(spec, table)
}

fn prepare_table(spec: &GibbsSpec, table: LossTable) -> Prepared {
    let risk = table.risk();
    let population_gibbs = spec
        .gamma
        .iter()
        .map(|&g| normalise(&risk.iter().map(|&r| -g * r).collect::<Vec<_>>()))
        .collect();
    Prepared {
        table,
        risk,
        gammas: spec.gamma.clone(),
        population_gibbs,
        seed: spec.seed,
        train_sets: spec.train_sets,
    }
}

/// Statistics of every training set of size n (outer index: set, inner: γ), computed on
/// `threads` threads over contiguous ranges of sets. Each set has its own seed, so the result does
/// not depend on `threads`.
pub(crate) fn run_cell(prep: &Prepared, n: usize, threads: usize) -> Vec<Vec<SetStats>> {
    let sets = prep.train_sets;
    let threads = threads.clamp(1, sets.max(1));
    let per_thread = sets.div_ceil(threads);
    let work = |range: std::ops::Range<usize>| -> Vec<Vec<SetStats>> {
        let mut scratch = Scratch::new(prep.table.configs);
        let mut train = vec![0.0; prep.table.configs];
        range
            .map(|set| {
                let draws = draw_set(prep.seed, n, set, prep.table.points());
                empirical_losses(&prep.table, &draws, &mut scratch, &mut train);
                prep.gammas
                    .iter()
                    .zip(&prep.population_gibbs)
                    .map(|(&g, pg)| posterior_stats(g, &train, &prep.risk, pg, &mut scratch))
                    .collect()
            })
            .collect()
    };
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per_thread).min(sets)..((t + 1) * per_thread).min(sets);
                let work = &work;
                s.spawn(move || work(range))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a Gibbs worker thread panicked"))
            .collect()
    })
}

/// The row of γ number `g` from the statistics of a cell, with the spec's Πη and P.
pub(crate) fn aggregate(spec: &GibbsSpec, g: usize, n: usize, stats: &[Vec<SetStats>]) -> GibbsRow {
    aggregate_with(spec, spec.eta_product, spec.params(), g, n, stats)
}

/// [`aggregate`] with the contraction product `eta` and the weight count `params` of an
/// architecture.
pub(crate) fn aggregate_with(
    spec: &GibbsSpec,
    eta: f64,
    params: usize,
    g: usize,
    n: usize,
    stats: &[Vec<SetStats>],
) -> GibbsRow {
    let gamma = spec.gamma[g];
    let col = |f: fn(&SetStats) -> f64| stats.iter().map(move |s| f(&s[g]));
    let (gap_mean, gap_stderr) = mean_stderr(col(|s| s.gap));
    let (gap_cv_mean, gap_cv_stderr) = mean_stderr(col(|s| s.gap_cv));
    let (train_loss, _) = mean_stderr(col(|s| s.train));
    let (test_loss, _) = mean_stderr(col(|s| s.test));
    let (effective_configs, _) = mean_stderr(col(|s| s.effective));
    let nf = n as f64;
    let sigma2 = 0.25;
    GibbsRow {
        gamma,
        n,
        gap_mean,
        gap_stderr,
        gap_cv_mean,
        gap_cv_stderr,
        train_loss,
        test_loss,
        bound_gibbs: 2f64.sqrt() * gamma * eta.sqrt() / nf,
        bound_finite: (2.0 * sigma2 * eta * params as f64 * (spec.levels.len() as f64).ln() / nf)
            .sqrt(),
        effective_configs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::test_spec;

    #[test]
    fn gamma_zero_posterior_is_the_prior_and_the_gap_is_zero_on_average() {
        // Asymmetric levels: with symmetric ones the uniform average of the loss is ½ on every
        // point (v ↦ −v flips every prediction), so the gap would be 0 for every S.
        let spec = GibbsSpec {
            levels: vec![-1.0, 0.5, 2.0],
            hidden: Some(2),
            ..test_spec(vec![0.0], vec![16], 1000, 2000)
        };
        let prep = prepare(&spec, 2);
        let stats = run_cell(&prep, 16, 2);
        // The posterior is uniform: the train loss is the plain mean of L_S over w.
        let draws = draw_set(spec.seed, 16, 0, spec.pool);
        let mut scratch = Scratch::new(prep.table.configs);
        let mut train = vec![0.0; prep.table.configs];
        empirical_losses(&prep.table, &draws, &mut scratch, &mut train);
        let uniform_mean = train.iter().sum::<f64>() / train.len() as f64;
        assert!((stats[0][0].train - uniform_mean).abs() < 1e-12);
        assert!((stats[0][0].effective - prep.table.configs as f64).abs() < 1e-6);
        let row = aggregate(&spec, 0, 16, &stats);
        assert!(row.gap_stderr > 0.0, "the test needs gaps that vary with S");
        assert!(
            row.gap_mean.abs() <= 3.0 * row.gap_stderr,
            "gap {} ± {}",
            row.gap_mean,
            row.gap_stderr
        );
    }

    #[test]
    fn large_gamma_concentrates_on_empirical_risk_minimisers() {
        let spec = test_spec(vec![1e4], vec![8], 1, 2000);
        let prep = prepare(&spec, 2);
        for set in 0..5 {
            let draws = draw_set(spec.seed, 8, set, spec.pool);
            let mut scratch = Scratch::new(prep.table.configs);
            let mut train = vec![0.0; prep.table.configs];
            empirical_losses(&prep.table, &draws, &mut scratch, &mut train);
            // L_S by hand from the drawn points' rows.
            let idx = 1234;
            let direct = draws
                .iter()
                .map(|&i| f64::from(prep.table.row(i)[idx]) / 2.0)
                .sum::<f64>()
                / 8.0;
            assert!((train[idx] - direct).abs() < 1e-15);
            let min = train.iter().copied().fold(f64::INFINITY, f64::min);
            let minimisers = train.iter().filter(|&&l| l == min).count();
            let s = posterior_stats(
                1e4,
                &train,
                &prep.risk,
                &prep.population_gibbs[0],
                &mut scratch,
            );
            assert!((s.train - min).abs() < 1e-12, "{} vs min {min}", s.train);
            // Uniform on the minimisers: exp(entropy) is their number.
            let rel = (s.effective - minimisers as f64).abs() / minimisers as f64;
            assert!(rel < 1e-6, "{} vs {minimisers}", s.effective);
            // Its test loss is the mean population risk of the minimisers.
            let erm_risk = train
                .iter()
                .zip(&prep.risk)
                .filter(|(l, _)| **l == min)
                .map(|(_, r)| r)
                .sum::<f64>()
                / minimisers as f64;
            assert!((s.test - erm_risk).abs() < 1e-12);
        }
    }

    #[test]
    fn control_variate_has_mean_zero() {
        // c(S) = Σ P_R (R − L_S) has mean exactly 0 because E L_S(w) = R(w).
        let spec = test_spec(vec![4.0, 64.0], vec![32], 2000, 2000);
        let prep = prepare(&spec, 2);
        let stats = run_cell(&prep, 32, 2);
        for g in 0..2 {
            let c = stats.iter().map(|s| s[g].gap - s[g].gap_cv);
            let (mean, se) = mean_stderr(c);
            assert!(se > 0.0);
            assert!(
                mean.abs() <= 3.0 * se,
                "γ = {}: {mean} ± {se}",
                spec.gamma[g]
            );
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let spec = test_spec(vec![4.0, 64.0], vec![8, 100], 37, 1000);
        let prep = prepare(&spec, 1);
        let prep2 = prepare(&spec, 2);
        assert_eq!(prep.table.codes, prep2.table.codes);
        for &n in &spec.n {
            let one = run_cell(&prep, n, 1);
            for threads in [2, 3] {
                let many = run_cell(&prep, n, threads);
                assert_eq!(one.len(), many.len());
                for (a, b) in one.iter().flatten().zip(many.iter().flatten()) {
                    for (x, y) in [
                        (a.gap, b.gap),
                        (a.gap_cv, b.gap_cv),
                        (a.train, b.train),
                        (a.test, b.test),
                        (a.effective, b.effective),
                    ] {
                        assert_eq!(x.to_bits(), y.to_bits());
                    }
                }
            }
        }
    }
}
