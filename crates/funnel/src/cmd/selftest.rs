//! `funnel selftest`: the estimator coverage panel (`pipeline::coverage`) run and printed.

use std::io::Write;

use crate::backend::{BackendArgs, BackendName};
use crate::error::CliError;
use crate::pipeline::coverage::*;
use crate::results::Status;

/// Arguments of `funnel selftest`.
#[derive(Debug, Clone, clap::Args)]
pub struct SelftestArgs {
    /// Fewer cases and repetitions (a minute instead of several).
    #[arg(long)]
    pub quick: bool,
    /// Seeded repetitions per case (the coverage is k of R) [default: 100, 15 with --quick].
    #[arg(long)]
    pub reps: Option<usize>,
    /// Half-sample resamples per estimate (the spread).
    #[arg(long, default_value_t = 20)]
    pub bootstrap: usize,
    /// Permutations of the null per estimate.
    #[arg(long, default_value_t = 39)]
    pub permutations: usize,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub fn selftest(args: &SelftestArgs) -> Result<Status, CliError> {
    if args.bootstrap < 2 || args.bootstrap > 1000 {
        return Err(CliError::input(format!(
            "--bootstrap: between 2 and 1000 resamples, got {}",
            args.bootstrap
        )));
    }
    if args.permutations > 10_000 {
        return Err(CliError::input(format!(
            "--permutations: at most 10000, got {}",
            args.permutations
        )));
    }
    let reps = args.reps.unwrap_or(if args.quick { 15 } else { 100 });
    if !(5..=10_000).contains(&reps) {
        return Err(CliError::input(format!(
            "--reps: between 5 and 10000 repetitions, got {reps}"
        )));
    }
    let device = args
        .backend
        .resolve(BackendName::default(), None)
        .device()
        .map_err(CliError::input)?;
    let cases = panel(args.quick, args.bootstrap, args.permutations, 2);
    let pb = indicatif::ProgressBar::new(cases.len() as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "coverage panel {bar:30} {pos}/{len} {msg} [{elapsed_precise}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut results = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        pb.set_message(case.name.clone());
        results.push(run_case(case, reps, &device, 1000 + i as u64));
        pb.inc(1);
    }
    pb.finish_and_clear();

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "funnel selftest · {reps} seeded repetitions per case · {} half-samples · {} permutations · nominal 95% intervals\n",
        args.bootstrap, args.permutations
    );
    // the rows are printed as the cases finish, so the columns have fixed widths here rather
    // than `text::grid`'s, which needs every row first
    let _ = writeln!(
        out,
        "{:<34} {:<24} {:>9} {:>3} {:>7} {:>8} {:>8} {:>7} {:>8} {:>13} {:>6}  result",
        "case",
        "estimator",
        "points",
        "d",
        "truth",
        "mean est",
        "mean exc",
        "width",
        "coverage",
        "(95% CI)",
        "p≤.05"
    );
    let mut short = Vec::new();
    let mut null_high = Vec::new();
    let mut errors = 0;
    for (case, r) in cases.iter().zip(&results) {
        let e = match case.which {
            Which::Kl => case.spec.kl_name(),
            Which::W1 => case.spec.w1_name(),
        };
        let n = r.reps - r.errors;
        let (clo, chi) = clopper_pearson(r.covered, n);
        // with truth 0 the interval (lower end at 0) covers almost by construction: such a case
        // is judged by its false-positive rate, which must be consistent with ≤ 5%
        let verdict = if r.errors > 0 {
            errors += 1;
            "ERROR"
        } else if case.truth == 0.0 {
            if clopper_pearson(r.p_small, n).0 > 0.05 {
                null_high.push((case, r, e.clone()));
                "NULL HIGH"
            } else {
                "null ok"
            }
        } else if r.coverage() >= 0.90 {
            "ok"
        } else {
            short.push((case, r, e.clone()));
            "SHORT"
        };
        let _ = writeln!(
            out,
            "{:<34} {:<24} {:>9} {:>3} {:>7.4} {:>8.4} {:>8.4} {:>7.4} {:>8} {:>13} {:>6}  {}",
            case.name,
            e,
            format!("{}/{}", case.sizes.0, case.sizes.1),
            case.dim,
            case.truth,
            r.mean_value,
            r.mean_excess,
            r.mean_width,
            format!("{}/{}", r.covered, n),
            format!("[{:.2}, {:.2}]", clo, chi),
            r.p_small,
            verdict
        );
        if let Some(err) = &r.first_error {
            let _ = writeln!(out, "    error ({} of {}): {err}", r.errors, r.reps);
        }
    }
    let positive: Vec<&CaseResult> = cases
        .iter()
        .zip(&results)
        .filter(|(c, _)| c.truth != 0.0)
        .map(|(_, r)| r)
        .collect();
    let ok = positive
        .iter()
        .filter(|r| r.errors == 0 && r.coverage() >= 0.90)
        .count();
    let _ = writeln!(
        out,
        "\n{ok} of {} cases with a non-zero truth reach ≥ 90% coverage at nominal 95% (95% CI: Clopper–Pearson over the repetitions). Cases with truth 0 are judged by \"p≤.05\", the repetitions whose permutation p-value is ≤ 0.05: the false-positive rate of one test, which must be consistent with ≤ 5%.",
        positive.len()
    );
    if short.is_empty() && null_high.is_empty() {
        let _ = writeln!(out, "No case falls short.");
    }
    if !short.is_empty() {
        let _ = writeln!(out, "Falls short (coverage < 90%):");
        for (case, r, e) in short {
            let _ = writeln!(
                out,
                "  {} on {} ({}/{} points, d = {}): {:.0}%, mean estimate {:.3} for a truth of {:.3} — {}",
                e,
                case.name,
                case.sizes.0,
                case.sizes.1,
                case.dim,
                100.0 * r.coverage(),
                r.mean_value,
                case.truth,
                if case.default_for.is_empty() {
                    "not a default of `auto`".to_string()
                } else {
                    format!("the default for {}", case.default_for)
                }
            );
        }
    }
    for (case, r, e) in null_high {
        let _ = writeln!(
            out,
            "Null too permissive: {} on {}: p ≤ 0.05 in {} of {} repetitions",
            e,
            case.name,
            r.p_small,
            r.reps - r.errors
        );
    }
    Ok(if errors > 0 {
        Status::Failed
    } else {
        Status::Ok
    })
}
