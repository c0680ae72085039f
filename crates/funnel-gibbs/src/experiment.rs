//! [`run`]: the whole experiment, cell by cell, and its slope fits.
//!
//! Its tests include the validation of a spec (`validate_names_the_offending_key` also checks
//! that [`run`] refuses an invalid one), so that they live downstream of every module they use.

use std::thread;

use crate::cells::{
    aggregate, aggregate_with, prepare, prepare_architecture, run_cell, Prepared, SetStats,
};
use crate::results::{fit, ArchitectureResults, BudgetResults, GibbsResults, GibbsRow};
use crate::spec::{GibbsError, GibbsSpec};

/// Runs the experiment of `spec` (validated first). `progress(done, total)` is called after each
/// (γ, n) cell, total = |γ|·|n|; since the training sets of one n are shared by every γ, the calls
/// for the γ of one n come together.
pub fn run(
    spec: &GibbsSpec,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GibbsResults, GibbsError> {
    spec.validate()?;
    if !spec.architecture.is_empty() {
        return Err(GibbsError::Invalid {
            key: "gibbs.architecture",
            message: "a spec with architectures is run by `run_architectures`".into(),
        });
    }
    let threads = thread::available_parallelism().map_or(1, |t| t.get());
    let prep = prepare(spec, threads);
    let total = spec.gamma.len() * spec.n.len();
    let mut done = 0;
    Ok(run_prepared(
        spec,
        &prep,
        threads,
        &mut |row_spec, g, n, stats| {
            done += 1;
            progress(done, total);
            aggregate(row_spec, g, n, stats)
        },
    ))
}

/// Aggregates the set statistics of one cell (spec, γ index, n) into its row.
type RowOf<'a> = dyn FnMut(&GibbsSpec, usize, usize, &[Vec<SetStats>]) -> GibbsRow + 'a;

/// The cells of every n for a prepared table; `row` aggregates one (γ, n) cell.
fn run_prepared(
    spec: &GibbsSpec,
    prep: &Prepared,
    threads: usize,
    row: &mut RowOf,
) -> GibbsResults {
    let mut by_gamma: Vec<Vec<GibbsRow>> = vec![Vec::new(); spec.gamma.len()];
    for &n in &spec.n {
        let stats = run_cell(prep, n, threads);
        for (g, rows) in by_gamma.iter_mut().enumerate() {
            rows.push(row(spec, g, n, &stats));
        }
    }
    let rows: Vec<GibbsRow> = by_gamma.into_iter().flatten().collect();
    let fits = spec.gamma.iter().map(|&g| fit(g, &rows)).collect();
    let population_bayes_risk = prep.risk.iter().copied().fold(f64::INFINITY, f64::min);
    GibbsResults {
        rows,
        fits,
        configs: prep.table.configs,
        params: spec.params(),
        levels: spec.levels.len(),
        population_bayes_risk,
    }
}

/// Runs every architecture of `spec.architecture` (validated first: one parameter budget P,
/// dropout in [0, 1)) on the same pool and the same training sets (common random numbers: the
/// differences between architectures are paired). The loss of a weight vector on a point is the
/// exact expectation of the 0-1 loss over the dropout masks, so R(w) and L_S(w) are exact
/// expectations and the posterior is computed exactly as for one network. Each row's bounds use
/// the architecture's Πη. `progress(done, total)` is called after each (architecture, γ, n)
/// cell.
pub fn run_architectures(
    spec: &GibbsSpec,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BudgetResults, GibbsError> {
    spec.validate()?;
    if spec.architecture.is_empty() {
        return Err(GibbsError::Invalid {
            key: "gibbs.architecture",
            message: "needs at least one `[[gibbs.architecture]]`".into(),
        });
    }
    let threads = thread::available_parallelism().map_or(1, |t| t.get());
    let total = spec.architecture.len() * spec.gamma.len() * spec.n.len();
    let mut done = 0;
    let architectures = spec
        .architecture
        .iter()
        .map(|arch| {
            let prep = prepare_architecture(spec, arch, threads);
            let (eta, params) = (arch.eta_product(), arch.params(spec.dim));
            let results = run_prepared(spec, &prep, threads, &mut |s, g, n, stats| {
                done += 1;
                progress(done, total);
                aggregate_with(s, eta, params, g, n, stats)
            });
            ArchitectureResults {
                architecture: arch.clone(),
                depth: arch.depth(),
                eta_product: eta,
                results,
            }
        })
        .collect();
    Ok(BudgetResults { architectures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::Prepared;
    use crate::spec::{test_spec, Architecture};

    fn rows_of(spec: &GibbsSpec, prep: &Prepared, threads: usize) -> Vec<GibbsRow> {
        let mut rows = vec![Vec::new(); spec.gamma.len()];
        for &n in &spec.n {
            let stats = run_cell(prep, n, threads);
            for (g, r) in rows.iter_mut().enumerate() {
                r.push(aggregate(spec, g, n, &stats));
            }
        }
        rows.into_iter().flatten().collect()
    }

    #[test]
    fn gap_is_positive_decreasing_and_below_the_bound() {
        let ns = vec![16, 64, 256, 1024];
        let spec = test_spec(vec![16.0], ns.clone(), 400, 4000);
        let prep = prepare(&spec, 2);
        let rows = rows_of(&spec, &prep, 2);
        // The plain mean's standard error falls only like n^{−1/2} while the gap falls like
        // 1/n: with 400 sets it resolves the gap up to n = 256 but not at n = 1024
        // (plain 5e−4 ± 4e−4 with this seed, control variate 9.2e−4 ± 0.4e−4). The
        // control-variate estimate (same mean) resolves every n.
        for r in &rows {
            let bound = 2f64.sqrt() * 16.0 / r.n as f64;
            assert_eq!(r.bound_gibbs, bound);
            assert!(r.gap_mean <= bound + 3.0 * r.gap_stderr, "{r:?}");
            assert!(r.gap_cv_mean <= bound + 3.0 * r.gap_cv_stderr, "{r:?}");
            assert!(r.gap_cv_mean > 3.0 * r.gap_cv_stderr, "{r:?}");
            if r.n <= 256 {
                // Expected ratio ≥ 4 here (≈ 0.0039 / 0.0009 at n = 256).
                assert!(r.gap_mean > 2.0 * r.gap_stderr, "{r:?}");
            }
            // Both estimators agree.
            let se = r.gap_stderr.hypot(r.gap_cv_stderr);
            assert!((r.gap_mean - r.gap_cv_mean).abs() <= 3.0 * se, "{r:?}");
            assert!((r.test_loss - r.train_loss - r.gap_mean).abs() < 1e-12);
        }
        for w in rows.windows(2) {
            assert!(w[1].gap_cv_mean < w[0].gap_cv_mean, "{w:?}");
            if w[1].n <= 256 {
                assert!(w[1].gap_mean < w[0].gap_mean, "{w:?}");
            }
        }
    }

    #[test]
    fn slope_at_gamma_4_and_16_is_minus_one() {
        // n from 16 (not 8): at the smallest n the higher-order terms of the expansion in the
        // module docs could bend the curve; in practice the slope is ≈ −1 from n = 8 on with
        // this population (default run: −1.00 at γ = 4, −0.97 at γ = 16 over n = 8…1024).
        let spec = test_spec(
            vec![4.0, 16.0],
            vec![16, 32, 64, 128, 256, 512, 1024],
            400,
            8000,
        );
        let prep = prepare(&spec, 2);
        let rows = rows_of(&spec, &prep, 2);
        for gamma in [4.0, 16.0] {
            let f = fit(gamma, &rows);
            assert_eq!(
                f.points_used, spec.n,
                "every gap should be resolved: {rows:?}"
            );
            assert!((f.slope + 1.0).abs() <= 0.35, "{f:?}");
        }
    }

    #[test]
    fn validate_names_the_offending_key() {
        assert_eq!(GibbsSpec::default().validate(), Ok(()));
        let cases: Vec<(&str, GibbsSpec)> = vec![
            (
                "gibbs.dim",
                GibbsSpec {
                    dim: 0,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.hidden",
                GibbsSpec {
                    hidden: Some(0),
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.levels",
                GibbsSpec {
                    levels: vec![1.0],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.levels",
                GibbsSpec {
                    levels: vec![1.0, 1.0],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.levels",
                GibbsSpec {
                    levels: vec![0.0, f64::NAN],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.levels",
                GibbsSpec {
                    levels: vec![0.0, f64::INFINITY],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.hidden",
                GibbsSpec {
                    hidden: Some(5),
                    pool: 2,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.hidden",
                GibbsSpec {
                    hidden: Some(1000),
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.gamma",
                GibbsSpec {
                    gamma: vec![],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.gamma",
                GibbsSpec {
                    gamma: vec![4.0, 0.0],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.gamma",
                GibbsSpec {
                    gamma: vec![-1.0],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.gamma",
                GibbsSpec {
                    gamma: vec![f64::INFINITY],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.n",
                GibbsSpec {
                    n: vec![],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.n",
                GibbsSpec {
                    n: vec![8, 0],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.n",
                GibbsSpec {
                    n: vec![8001],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.train_sets",
                GibbsSpec {
                    train_sets: 0,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.pool",
                GibbsSpec {
                    pool: 1,
                    n: vec![1],
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.pool",
                GibbsSpec {
                    pool: 1_000_001,
                    hidden: Some(1),
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.pool",
                GibbsSpec {
                    pool: 20_000,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.mean_norm",
                GibbsSpec {
                    mean_norm: -1.0,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.mean_norm",
                GibbsSpec {
                    mean_norm: f64::NAN,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.noise_std",
                GibbsSpec {
                    noise_std: 0.0,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.noise_std",
                GibbsSpec {
                    noise_std: f64::INFINITY,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.eta_product",
                GibbsSpec {
                    eta_product: 0.0,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.eta_product",
                GibbsSpec {
                    eta_product: 1.5,
                    ..GibbsSpec::default()
                },
            ),
            (
                "gibbs.eta_product",
                GibbsSpec {
                    eta_product: f64::NAN,
                    ..GibbsSpec::default()
                },
            ),
        ];
        for (key, spec) in cases {
            let err = spec.validate().expect_err(key);
            let GibbsError::Invalid { key: got, .. } = &err;
            assert_eq!(*got, key, "{err}");
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
        // The size messages give the numbers.
        let err = GibbsSpec {
            hidden: Some(5),
            ..GibbsSpec::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("3^15 = 14348907"), "{err}");
        let err = GibbsSpec {
            pool: 20_000,
            ..GibbsSpec::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("393660000"), "{err}");
        assert!(run(
            &GibbsSpec {
                dim: 0,
                ..GibbsSpec::default()
            },
            &mut |_, _| {}
        )
        .is_err());
    }

    #[test]
    fn run_reports_progress_and_consistent_sizes() {
        let spec = test_spec(vec![4.0, 16.0], vec![8, 32], 20, 500);
        let mut calls = Vec::new();
        let res = run(&spec, &mut |d, t| calls.push((d, t))).unwrap();
        assert_eq!(calls, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
        assert_eq!((res.configs, res.params, res.levels), (19683, 9, 3));
        let ns: Vec<(f64, usize)> = res.rows.iter().map(|r| (r.gamma, r.n)).collect();
        assert_eq!(ns, vec![(4.0, 8), (4.0, 32), (16.0, 8), (16.0, 32)]);
        assert_eq!(res.fits.len(), 2);
        let bound = (9.0 * 3f64.ln() / (2.0 * 8.0)).sqrt();
        assert!((res.rows[0].bound_finite - bound).abs() < 1e-15);
        assert!((0.0..0.5).contains(&res.population_bayes_risk));
    }

    fn arch(widths: &[usize], dropout: f64) -> Architecture {
        Architecture {
            widths: widths.to_vec(),
            dropout,
        }
    }

    #[test]
    fn one_architecture_equal_to_the_default_gives_the_existing_results() {
        let spec = test_spec(vec![4.0, 64.0], vec![8, 32], 30, 1000);
        let single = run(&spec, &mut |_, _| {}).unwrap();
        let listed = GibbsSpec {
            architecture: vec![arch(&[3], 0.0)],
            ..spec.clone()
        };
        let budget = run_architectures(&listed, &mut |_, _| {}).unwrap();
        assert_eq!(budget.architectures.len(), 1);
        let a = &budget.architectures[0];
        assert_eq!((a.depth, a.eta_product), (1, 1.0));
        // Bit for bit: every row, fit and size (Debug prints every f64 exactly; NaN ≠ NaN
        // rules out `==` on the fits' standard errors of two points).
        assert_eq!(format!("{:?}", a.results), format!("{single:?}"));
        // The single-network spec refuses to run as a budget and vice versa.
        assert!(run_architectures(&spec, &mut |_, _| {}).is_err());
        assert!(run(&listed, &mut |_, _| {}).is_err());
    }

    #[test]
    fn architectures_share_training_sets_and_dropout_shrinks_the_gap_and_the_learning() {
        let spec = GibbsSpec {
            architecture: vec![
                arch(&[3], 0.0),
                arch(&[3], 0.5),
                arch(&[1, 1, 1, 1, 1, 1, 1], 0.5),
            ],
            ..test_spec(vec![16.0], vec![16], 300, 1000)
        };
        let mut calls = Vec::new();
        let r = run_architectures(&spec, &mut |d, t| calls.push((d, t))).unwrap();
        assert_eq!(calls, vec![(1, 3), (2, 3), (3, 3)]);
        for a in &r.architectures {
            assert_eq!((a.results.params, a.results.configs), (9, 19683));
            let row = &a.results.rows[0];
            let eta = a.eta_product;
            // The bounds with this architecture's Πη.
            assert!((row.bound_gibbs - 2f64.sqrt() * 16.0 * eta.sqrt() / 16.0).abs() < 1e-15);
            let finite = (eta * 9.0 * 3f64.ln() / (2.0 * 16.0)).sqrt();
            assert!((row.bound_finite - finite).abs() < 1e-15);
            // The floor: no weight vector, hence no posterior, beats (1 − Πη)/2.
            assert!(a.results.population_bayes_risk >= (1.0 - eta) / 2.0 - 1e-12);
            assert!(row.test_loss >= (1.0 - eta) / 2.0 - 1e-12);
            // |gap| ≤ Πη (the loss range), and the gap is resolved and positive.
            assert!(row.gap_cv_mean.abs() <= eta, "{row:?}");
            assert!(row.gap_cv_mean > 3.0 * row.gap_cv_stderr, "{row:?}");
            assert!((row.test_loss - row.train_loss - row.gap_mean).abs() < 1e-12);
        }
        let gap = |i: usize| r.architectures[i].results.rows[0].gap_cv_mean;
        let risk = |i: usize| r.architectures[i].results.rows[0].test_loss;
        assert!(gap(0) > gap(1) && gap(1) > gap(2));
        assert!(risk(0) < risk(1) && risk(1) < risk(2));
        // The scalar chain at p = 0.5 keeps the signal with probability 2^−7: it learns nothing.
        assert!((risk(2) - 0.5).abs() < 2f64.powi(-8) + 1e-12);
    }

    #[test]
    fn a_chain_with_dropout_is_the_chain_without_at_gamma_times_eta_shrunk_by_eta() {
        // For a scalar chain every dropped unit gives f = 0 (loss ½), so
        // ℓ_p = (1 − Πη)/2 + Πη·ℓ_0 exactly, with Πη = (1 − p)^L: the posterior at γ is the
        // p = 0 posterior at γ·Πη, and gap, train and test losses follow (an independent check
        // of the mask enumeration, the posterior and the control variate together).
        let base = test_spec(vec![16.0], vec![8, 32], 60, 800);
        let chain = |p: f64, gamma: f64| GibbsSpec {
            architecture: vec![arch(&[1, 1], p)],
            gamma: vec![gamma],
            ..base.clone()
        };
        let with = run_architectures(&chain(0.5, 16.0), &mut |_, _| {}).unwrap();
        let without = run_architectures(&chain(0.0, 4.0), &mut |_, _| {}).unwrap();
        let eta = with.architectures[0].eta_product;
        assert_eq!(eta, 0.25);
        for (a, b) in with.architectures[0]
            .results
            .rows
            .iter()
            .zip(&without.architectures[0].results.rows)
        {
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * (1.0 + y.abs());
            assert!(close(a.gap_mean, eta * b.gap_mean), "{a:?} {b:?}");
            assert!(close(a.gap_stderr, eta * b.gap_stderr), "{a:?} {b:?}");
            assert!(close(a.gap_cv_mean, eta * b.gap_cv_mean), "{a:?} {b:?}");
            assert!(close(a.train_loss, (1.0 - eta) / 2.0 + eta * b.train_loss));
            assert!(close(a.test_loss, (1.0 - eta) / 2.0 + eta * b.test_loss));
            assert!((a.effective_configs - b.effective_configs).abs() < 1e-9);
            assert!(a.gap_cv_mean > 3.0 * a.gap_cv_stderr, "{a:?}");
        }
    }

    #[test]
    fn validate_names_the_offending_key_of_an_architecture_list() {
        let budget = |architecture: Vec<Architecture>| GibbsSpec {
            architecture,
            pool: 1000,
            n: vec![8, 64],
            ..GibbsSpec::default()
        };
        let ok = budget(vec![
            arch(&[3], 0.5),
            arch(&[1, 3, 1], 0.0),
            arch(&[1; 7], 0.9),
        ]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.params(), 9);
        let cases: Vec<(&str, GibbsSpec)> = vec![
            (
                "gibbs.architecture.widths",
                budget(vec![arch(&[3], 0.5), arch(&[2, 2], 0.5)]),
            ),
            ("gibbs.architecture.widths", budget(vec![arch(&[], 0.5)])),
            (
                "gibbs.architecture.widths",
                budget(vec![arch(&[3, 0], 0.5)]),
            ),
            ("gibbs.architecture.dropout", budget(vec![arch(&[3], 1.0)])),
            ("gibbs.architecture.dropout", budget(vec![arch(&[3], -0.1)])),
            (
                "gibbs.architecture.dropout",
                budget(vec![arch(&[3], f64::NAN)]),
            ),
            // 3^18 configurations.
            (
                "gibbs.architecture.widths",
                budget(vec![arch(&[4, 2], 0.0)]),
            ),
            // 17 units with dropout (1 · 17 + 17 = 2·17 + 17 weights > budget anyway: dim 1).
            (
                "gibbs.architecture.widths",
                GibbsSpec {
                    dim: 1,
                    levels: vec![-1.0, 1.0],
                    ..budget(vec![arch(&[1; 17], 0.5)])
                },
            ),
            ("gibbs.architecture", budget(vec![arch(&[3], 0.5); 17])),
            (
                "gibbs.hidden",
                GibbsSpec {
                    hidden: Some(3),
                    ..budget(vec![arch(&[3], 0.5)])
                },
            ),
            (
                "gibbs.eta_product",
                GibbsSpec {
                    eta_product: 0.5,
                    ..budget(vec![arch(&[3], 0.5)])
                },
            ),
            // 19683 · 8 bytes per point with dropout: 8000 points is 1.26 GB.
            (
                "gibbs.pool",
                GibbsSpec {
                    pool: 8000,
                    ..budget(vec![arch(&[3], 0.5)])
                },
            ),
            (
                "gibbs.gamma",
                GibbsSpec {
                    gamma: vec![],
                    ..budget(vec![arch(&[3], 0.0)])
                },
            ),
            (
                "gibbs.levels",
                GibbsSpec {
                    levels: vec![1.0],
                    ..budget(vec![arch(&[3], 0.0)])
                },
            ),
        ];
        for (key, spec) in cases {
            let err = spec.validate().expect_err(key);
            let GibbsError::Invalid { key: got, .. } = &err;
            assert_eq!(*got, key, "{err}");
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
        let err = budget(vec![arch(&[3], 0.5), arch(&[2, 2], 0.5)])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("architecture 2") && err.contains("P = 10"),
            "{err}"
        );
        // Without dropout the same pool fits (one byte per entry).
        let no_dropout = GibbsSpec {
            pool: 8000,
            ..budget(vec![arch(&[3], 0.0)])
        };
        assert_eq!(no_dropout.validate(), Ok(()));
    }

    /// `cargo test --release -- --ignored --nocapture default_spec_timing`
    #[test]
    #[ignore]
    fn default_spec_timing() {
        let spec = GibbsSpec::default();
        let start = std::time::Instant::now();
        let res = run(&spec, &mut |d, t| eprint!("\r{d}/{t}")).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!();
        println!(
            "default spec: {secs:.1} s, {} configs, P = {}, min R = {:.4}",
            res.configs, res.params, res.population_bayes_risk
        );
        println!("|    γ |    n | gap ± se | gap_cv ± se | train | test | √2γ/n | finite | eff |");
        for r in &res.rows {
            println!(
                "| {:4} | {:4} | {:.5} ± {:.5} | {:.5} ± {:.5} | {:.4} | {:.4} | {:.4} | {:.4} | {:.1} |",
                r.gamma,
                r.n,
                r.gap_mean,
                r.gap_stderr,
                r.gap_cv_mean,
                r.gap_cv_stderr,
                r.train_loss,
                r.test_loss,
                r.bound_gibbs,
                r.bound_finite,
                r.effective_configs
            );
        }
        for f in &res.fits {
            println!("{f:?}");
        }
    }
}
