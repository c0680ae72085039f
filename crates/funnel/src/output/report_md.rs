//! `report.md`: the run's write-up, from its [`Summary`] alone (so `funnel report`
//! regenerates it byte for byte).

use funnel_metrics::Bias;

use super::findings::*;
use super::table::*;
use crate::results::*;
use crate::text::*;

/// `report.md`.
pub fn markdown(summary: &Summary) -> String {
    let mut s = String::new();
    let status = match summary.status {
        Status::Ok => String::new(),
        Status::Failed => format!(
            "\n**This run failed:** {}\n",
            summary.reason.as_deref().unwrap_or("unknown reason")
        ),
    };
    let command = if summary.source.is_some() {
        "measure"
    } else if summary.layers_file.is_some() {
        "layers"
    } else {
        "run"
    };
    s.push_str(&format!(
        "# funnel {command} `{}` — {}\n{status}\n",
        summary.name, summary.run_id
    ));
    if let Some(src) = &summary.source {
        s.push_str(&format!(
            "The trained model of `{}` ({}), measured without retraining against `{}` in place of its test set; \
             the training split, its standardization and every seed are the run's.\n\n",
            src.run_dir.display(),
            src.model_file,
            src.test_file.display()
        ));
    }
    if let Some(file) = &summary.layers_file {
        s.push_str(&format!(
            "The layers of a network trained elsewhere, read from `{}`: its train and test activations \
             per layer, as captured there; estimators, nulls, intervals and bounds are those of `funnel run`.\n\n",
            file.display()
        ));
    }
    s.push_str("| | |\n|---|---|\n");
    s.push_str(&format!(
        "| data | {} — {} train / {} test examples, {} classes{} |\n",
        summary.data.description,
        summary.data.n_train,
        summary.data.n_test,
        summary.data.classes,
        if summary.data.standardized {
            ", standardized"
        } else {
            ""
        }
    ));
    let dims = summary
        .model
        .dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" → ");
    if summary.layers_file.is_some() {
        s.push_str(&format!(
            "| model | layers {} of widths {} (trained elsewhere) |\n",
            summary
                .layers
                .iter()
                .map(|r| format!("`{}`", r.name))
                .collect::<Vec<_>>()
                .join(", "),
            dims
        ));
    } else {
        s.push_str(&format!(
            "| model | {} ({}; {} on hidden layers; {} parameters) |\n",
            dims, summary.model.activation, summary.model.regularizer, summary.model.parameters
        ));
    }
    if summary.layers_file.is_some() {
        s.push_str("| training | elsewhere: funnel did not train this network |\n");
    } else if summary.training.algorithm == "class_mean" {
        s.push_str(
            "| training | class_mean: seeded random hidden projections, read-out from μ̂ (no gradient steps) |\n",
        );
    } else {
        s.push_str(&format!(
            "| training | {}, lr {}, {} of {} epochs, batch {} ({} s) |\n",
            summary.training.algorithm,
            summary.training.lr,
            summary.training.epochs_run,
            summary.training.epochs,
            summary.training.batch_size,
            num(summary.training.seconds)
        ));
    }
    if let Some(m) = &summary.measurement {
        s.push_str(&format!(
            "| measurement | stochastic layers: {}; KL: {}; W1: {} ({}); {} train / {} test points per layer; {}% interval with se from {} half-samples; null: {} ({} permutations) |\n",
            m.stochastic_layers,
            m.kl_estimator,
            m.w1_estimator,
            match m.w1_bias {
                Bias::Exact => "exact on its subsample",
                Bias::LowerBound => "a lower bound",
                Bias::UpperBound => "an upper bound",
                Bias::Estimate => "an estimate",
            },
            m.points_train,
            m.points_test,
            (m.confidence * 100.0).round(),
            m.bootstrap,
            m.null_baseline,
            m.permutations
        ));
    }
    if summary.device.is_empty() {
        s.push_str(&format!(
            "| backend, seed | {}, {} |\n",
            summary.backend, summary.seed
        ));
    } else {
        s.push_str(&format!(
            "| backend (device), seed | {} ({}), {} |\n",
            summary.backend, summary.device, summary.seed
        ));
    }
    s.push_str(&format!("| funnel | {} |\n\n", summary.funnel_version));

    if let (Some(l), Some(gap)) = (&summary.losses, &summary.gap) {
        let clip = summary.measurement.as_ref().map_or(f64::NAN, |m| m.ce_clip);
        s.push_str("## Measured generalization gap\n\n| loss | train | test | gap (test − train) |\n|---|---|---|---|\n");
        s.push_str(&format!(
            "| 0-1 | {} | {} | {} |\n",
            num(l.train.zero_one),
            num(l.test.zero_one),
            num(gap.zero_one)
        ));
        s.push_str(&format!(
            "| cross-entropy | {} | {} | {} |\n",
            num(l.train.cross_entropy),
            num(l.test.cross_entropy),
            num(gap.cross_entropy)
        ));
        s.push_str(&format!(
            "| cross-entropy clipped at {} | {} | {} | {} |\n\n",
            num(clip),
            num(l.train.cross_entropy_clipped),
            num(l.test.cross_entropy_clipped),
            num(gap.cross_entropy_clipped)
        ));
    }
    if !summary.layers.is_empty() {
        let pct = summary
            .measurement
            .as_ref()
            .map_or(95.0, |m| (m.confidence * 100.0).round());
        s.push_str("## Per layer\n\n");
        s.push_str(&format!(
            "| layer | width | rank | KL [{pct}% CI] | KL null (mean, q95) | KL excess [CI] | p | resolution | KL bound (0-1) | KL bound (clipped CE) | W1 [{pct}% CI] | W1 null (mean, q95) | W1 excess [CI] | p | resolution | ρ_l | W1 bound (clipped CE) | ρ̂_l (local) | ρ̂_l·W_l + c·TV |\n"
        ));
        s.push_str(
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &summary.layers {
            s.push_str(&format!(
                "| {}{} | {} | {} | {} | {}, {} | {} | {} | {} | {} | {} | {} | {}, {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.layer,
                if r.kl_rise { " !" } else { "" },
                r.width,
                r.rank,
                with_ci(&r.kl),
                num(r.kl.null),
                num(r.kl.null_q95),
                excess_ci(&r.kl),
                p_text(&r.kl),
                num(r.kl.resolution),
                bound_text(r.kl_bound, r.kl_vacuous),
                num(r.kl_bound_ce),
                with_ci(&r.w1),
                num(r.w1.null),
                num(r.w1.null_q95),
                excess_ci(&r.w1),
                p_text(&r.w1),
                num(r.w1.resolution),
                num(r.lipschitz),
                bound_text(r.w1_bound, r.w1_vacuous),
                num(r.lipschitz_local),
                num(r.w1_bound_local)
            ));
        }
        s.push_str(
            "\n**Null**: within each class the train and test points are pooled and reassigned at random at the sizes the estimate used \
             (a permutation); the null's mean is the estimator's floor at these sizes, q95 its 95% quantile, and p = (1 + #{null ≥ value})/(1 + permutations). \
             **Excess** = value − null mean, the null-corrected value. A layer is **resolved** (`*`) when p clears Holm's threshold over the layers; \
             its **resolution** z_{1−α/m}·sd(null) is the smallest excess it could resolve at these sizes. \
             **Interval**: [min(value, excess) − t·se, max(value, excess) + t·se], se from half-samples: it spans the raw and the null-corrected readings, \
             because the estimator's bias under the alternative lies between 0 and its bias under the null; its coverage is measured by `funnel selftest`. \
             **Bounds** use a one-sided upper end at 1 − α/m, simultaneous over the m layers (Bonferroni; `kl_upper`, `w1_upper` in `layers.csv`): KL bound (0-1) = sqrt(D^up/2); KL bound (clipped CE) = c·sqrt(D^up/2); W1 bound = ρ_l·W^up + c·TV(π_train, π_test), \
             on the cross-entropy clipped at c (and on the plain cross-entropy when TV = 0), with ρ_l the product of the later layers' \
             operator norms and activation constants (×1/(1−p) for active dropout): a certified constant. A bound at least the loss's range is marked vacuous. \
             ρ̂_l is the largest gradient norm of the loss in T_l at the captured examples, a lower estimate of the true constant; ρ̂_l·W_l is not a certified bound.\n\n",
        );
        let missing = missing_reasons(&summary.layers);
        if !missing.is_empty() {
            s.push_str("Empty cells (—):\n\n");
            for m in missing {
                s.push_str(&format!("- {m}\n"));
            }
            s.push('\n');
        }
    }
    s.push_str(&certified_section(summary));
    if !summary.layers.is_empty() {
        s.push_str(&contraction_section(&summary.layers));
    }
    if let Some(lg) = &summary.linear_gaussian {
        s.push_str(&linear_gaussian_section(lg, &summary.layers));
    }
    let f = findings(summary);
    if !f.is_empty() {
        s.push_str("## Reading\n\n");
        for line in f {
            s.push_str(&format!("- {line}\n"));
        }
        s.push('\n');
    }
    if !summary.layers.is_empty() {
        s.push_str("## Figures\n\n");
        match &summary.plots_error {
            Some(e) => s.push_str(&format!("The figures could not be drawn: {e}\n\n")),
            None => {
                s.push_str(
                    "![KL and W1 per layer with their intervals and nulls; the bounds against the measured gaps](plots/layers.svg)\n\n",
                );
                if crate::plots::has_information_plane(&summary.layers) {
                    s.push_str("![Information plane: I(X;T_l) against I(T_l;Y)](plots/information_plane.svg)\n\n");
                }
                s.push_str("(PNG versions beside them in `plots/`.)\n\n");
            }
        }
    }
    let notes: Vec<String> = summary
        .layers
        .iter()
        .map(|r| (r.layer, crate::results::layers_csv::row_notes(r)))
        .filter(|(_, n)| !n.is_empty())
        .map(|(l, n)| format!("- layer {l}: {n}"))
        .collect();
    if !notes.is_empty() {
        s.push_str("## Notes\n\n");
        s.push_str(&notes.join("\n"));
        s.push_str("\n\n");
    }
    s.push_str(
        "These numbers are estimates of the bounds' ingredients, not certificates: kNN KL is biased in high \
         dimension and empirical W1 has a sampling floor in wide layers, which the size-matched nulls show. \
         One run's train-cloud vs test-cloud divergence is a per-run proxy of the theorem's D_l (README § What the divergence is); \
         compare bounds with the mean gap over seeds.\n",
    );
    s
}

/// The bracket [ρ̂_l, ρ_l^cert] per layer, the three certified constants, the W1 bound under
/// the tightest and the debiased curves, with their argmins. Empty for summaries written
/// before the certified constants (so `funnel report` reproduces them unchanged) and for
/// layers files without weights.
fn certified_section(summary: &Summary) -> String {
    let rows = &summary.layers;
    if !rows.iter().any(|r| r.lipschitz_cert.is_finite()) {
        return String::new();
    }
    let mut s = String::from(
        "## Lipschitz constants: the bracket [ρ̂_l, ρ_l^cert]

",
    );
    s.push_str(
        "| layer | ρ̂_l (empirical, lower) | ρ_l^cert (certified, upper) | product of norms | Combettes–Pesquet | box | W1 bound under ρ^cert | ρ_l·(W_l − null) | ρ^cert·(W_l − null) | ρ̂_l·(W_l − null) |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.layer,
            num(r.lipschitz_local),
            num(r.lipschitz_cert),
            num(r.lipschitz),
            num(r.lipschitz_cp),
            num(r.lipschitz_box),
            bound_text(r.w1_bound_cert, r.w1_bound_cert >= summary_clip(summary)),
            num(r.w1_debiased),
            num(r.w1_debiased_cert),
            num(r.w1_debiased_local),
        ));
    }
    let layer = |l: Option<usize>| l.map_or("none".to_string(), |l| format!("layer {l}"));
    if let Some(w1) = summary.bounds.as_ref().map(|b| &b.w1) {
        s.push_str(&format!(
            "\nArgmins: W1 bound under ρ^cert {} among resolved layers, {} over every layer; \
             ρ·(W − null) {} (product), {} (certified), {} (empirical ρ̂).\n",
            layer(w1.layer_cert),
            layer(w1.layer_cert_any),
            layer(w1.layer_debiased),
            layer(w1.layer_debiased_cert),
            layer(w1.layer_debiased_local),
        ));
    }
    s.push_str(
        "\n**Product of norms** is √2·Π_k Lip(act_k)·‖W_k‖ (what the W1 bound above uses); it grows \
         geometrically toward the input, so with it the W1 bound's argmin is the logits almost by construction. \
         **Combettes–Pesquet** averages the product of segment norms over every way of cutting the chain at the \
         (firmly nonexpansive) activations, ≤ the product, exact for linear chains. **Box** is CP with each unit's \
         slope bounded over the interval-propagated bounding box of the captured train and test points at T_l: \
         certified on that box, hence on the convex hull of the two clouds, which is all the W1 between them needs \
         (not for a fresh draw of dropout masks or noise that leaves it). ρ^cert is the smallest of the three. \
         ρ̂_l is the largest gradient norm at the captured points: the true constant lies in [ρ̂_l, ρ_l^cert]. \
         **W_l − null** is the null-subtracted W1 (`w1_excess`), a point estimate that is negative where W_l sits \
         below its sampling floor; weighting it by ρ_l makes the curve invariant to rescaling a layer \
         (T_l → c·T_l scales W_l by c and ρ_l by 1/c), which the argmin of W_l alone is not.\n\n",
    );
    s
}

fn summary_clip(summary: &Summary) -> f64 {
    summary
        .measurement
        .as_ref()
        .map_or(f64::INFINITY, |m| m.ce_clip)
}
