//! `report.md` of a `funnel gibbs` run.

use funnel_gibbs::{BudgetResults, GibbsResults, GibbsSpec};

use crate::text::num;

/// The weight values, as the report lists them: `-1.00, 0, 1.00`.
fn levels(spec: &GibbsSpec) -> String {
    let v: Vec<String> = spec.levels.iter().map(|v| num(*v)).collect();
    v.join(", ")
}

/// The report of a Gibbs run: the exact table per (γ, n), the fitted rates and the theory.
pub fn markdown(name: &str, id: &str, spec: &GibbsSpec, r: &GibbsResults) -> String {
    let mut s = format!("# funnel gibbs `{name}` — {id}\n\n");
    s.push_str(&format!(
        "Exact Gibbs posterior P(w|S) ∝ exp(−γ·L_S(w)) over all {} weight vectors of a {}→{}→1 tanh network \
         (no biases, P = {} weights in {{{}}}), 0-1 loss; population = uniform on a pool of {} points of the \
         binary Gaussian mixture (d = {}, ‖μ‖ = {}, s = {}), so population risks are exact; {} training sets per (γ, n). \
         Smallest population risk in the weight set: {}.\n\n",
        r.configs,
        spec.dim,
        spec.hidden(),
        r.params,
        levels(spec),
        spec.pool,
        spec.dim,
        num(spec.mean_norm),
        num(spec.noise_std),
        spec.train_sets,
        num(r.population_bayes_risk)
    ));
    s.push_str("| γ | n | E gap (control variate) ± se | E gap (plain mean) ± se | train loss | population risk | √2·γ/n | finite-parameter bound | effective configs |\n|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} ± {} | {} ± {} | {} | {} | {} | {} | {} |\n",
            num(row.gamma),
            row.n,
            num(row.gap_cv_mean),
            num(row.gap_cv_stderr),
            num(row.gap_mean),
            num(row.gap_stderr),
            num(row.train_loss),
            num(row.test_loss),
            num(row.bound_gibbs),
            num(row.bound_finite),
            num(row.effective_configs)
        ));
    }
    s.push_str("\n## Rate\n\n| γ | fitted slope of ln E gap on ln n | ± se | n used |\n|---|---|---|---|\n");
    for f in &r.fits {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            num(f.gamma),
            num(f.slope),
            num(f.slope_stderr),
            f.points_used
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(
        "\nThe theory (DESIGN §2.8): |E gap| ≤ √2·γ/n for the Gibbs algorithm (slope −1), and ≤ sqrt(Πη·P·ln K/(2n)) \
         for any algorithm on this finite weight set (slope −½). The fit uses the control-variate estimate and only \
         the n whose gap is resolved from 0 (> 2 se).\n\n![E gap against n](plots/gibbs_rate.svg)\n",
    );
    s
}

/// The report of a Gibbs run over architectures of one parameter budget: per architecture its
/// Πη, the loss floor it implies and the smallest population risk in the weight set; then the
/// exact table per (architecture, γ, n) with the bounds with and without Πη.
pub fn budget_markdown(name: &str, id: &str, spec: &GibbsSpec, r: &BudgetResults) -> String {
    let levels = levels(spec);
    let widths =
        |a: &funnel_gibbs::ArchitectureResults| format!("[{}]", a.architecture.widths_joined(", "));
    let configs = r.architectures.first().map_or(0, |a| a.results.configs);
    let mut s = format!("# funnel gibbs `{name}` — {id}\n\n");
    s.push_str(&format!(
        "Exact Gibbs posterior P(w|S) ∝ exp(−γ·L_S(w)) over all {configs} weight vectors of each of {} \
         architectures with the same budget of P = {} weights in {{{levels}}}: bias-free tanh networks \
         {} → widths → 1 with dropout of probability p on every hidden unit, active in training and \
         evaluation alike, kept units not rescaled. The loss of a weight vector on a point is the exact \
         expectation of the 0-1 loss over the dropout masks (a tie, f = 0, counts ½), so L_S(w) and R(w) \
         are exact expectations. Population = uniform on a pool of {} points of the binary Gaussian \
         mixture (d = {}, ‖μ‖ = {}, s = {}); the same {} training sets per n for every architecture and γ.\n\n",
        r.architectures.len(),
        spec.params(),
        spec.dim,
        spec.pool,
        spec.dim,
        num(spec.mean_norm),
        num(spec.noise_std),
        spec.train_sets,
    ));
    s.push_str(
        "## Architectures\n\nΠη = Π_l (1 − p^{h_l}) is also exactly the probability that no hidden layer \
         is dropped whole. When one is, the output is 0 (no biases, tanh 0 = 0) and the loss is ½, so \
         every expected loss lies in [(1 − Πη)/2, (1 + Πη)/2]: the population risk of *any* weight \
         vector is at least the floor (1 − Πη)/2, and |gap| ≤ Πη for any algorithm.\n\n\
         | architecture | L | p | Πη | floor (1 − Πη)/2 | smallest population risk min_w R(w) | fitted slope of ln E gap on ln n, per γ |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for a in &r.architectures {
        let slopes: Vec<String> = a
            .results
            .fits
            .iter()
            .map(|f| {
                format!(
                    "γ = {}: {} ± {}",
                    num(f.gamma),
                    num(f.slope),
                    num(f.slope_stderr)
                )
            })
            .collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            widths(a),
            a.depth,
            num(a.architecture.dropout),
            num(a.eta_product),
            num((1.0 - a.eta_product) / 2.0),
            num(a.results.population_bayes_risk),
            slopes.join("; ")
        ));
    }
    s.push_str(
        "\n## Exact expected gap\n\n\
         | architecture | L | p | Πη | γ | n | E gap (control variate) [95% interval] | E gap (plain mean) ± se | train loss | population risk | √2·γ·√Πη/n | sqrt(Πη·P·ln K/(2n)) | sqrt(P·ln K/(2n)) | effective configs |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in &r.architectures {
        for row in &a.results.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} [{}, {}] | {} ± {} | {} | {} | {} | {} | {} | {} |\n",
                widths(a),
                a.depth,
                num(a.architecture.dropout),
                num(a.eta_product),
                num(row.gamma),
                row.n,
                num(row.gap_cv_mean),
                num(row.gap_cv_mean - 1.96 * row.gap_cv_stderr),
                num(row.gap_cv_mean + 1.96 * row.gap_cv_stderr),
                num(row.gap_mean),
                num(row.gap_stderr),
                num(row.train_loss),
                num(row.test_loss),
                num(row.bound_gibbs),
                num(row.bound_finite),
                num(row.bound_finite / a.eta_product.sqrt()),
                num(row.effective_configs)
            ));
        }
    }
    s.push_str(
        "\nThe bounds (DESIGN §2.6, §2.8): √2·γ/n for the Gibbs algorithm and sqrt(2σ²·P·ln K/n), σ = ½, \
         for any algorithm on the finite weight set, each multiplied by √Πη for the dropout layers. The \
         95% interval is the control-variate mean ± 1.96 se over training sets; the population risk is \
         the exact E_S E_{w∼P(·|S)} R(w).\n\n![E gap and population risk against the architecture](plots/gibbs_budget.svg)\n",
    );
    s
}
