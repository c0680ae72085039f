//! `funnel estimate`'s terminal table: one row per divergence, then notes and errors.

use funnel_metrics::Bias;

use crate::results::estimate_json::EstimateOutput;
use crate::text::{grid, num};

fn bias_word(b: Bias) -> &'static str {
    match b {
        Bias::Estimate => "estimate",
        Bias::Exact => "exact",
        Bias::LowerBound => "lower bound",
        Bias::UpperBound => "upper bound",
    }
}

/// The terminal table: one row per divergence, then notes and errors.
pub fn table(o: &EstimateOutput) -> String {
    let pct = (o.confidence * 100.0).round();
    let mut cells: Vec<Vec<String>> = vec![[
        "divergence",
        "value",
        &format!("{pct}% CI"),
        "null",
        "excess",
        "p",
        "estimator",
        "kind",
        "points P/Q",
        "dims",
        "seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for (name, e) in [("KL(P‖Q)", &o.kl), ("W1(P, Q)", &o.w1)] {
        let ci = if e.lo.is_nan() || e.hi.is_nan() {
            "—".to_string()
        } else {
            format!("[{}, {}]", num(e.lo), num(e.hi))
        };
        cells.push(vec![
            name.into(),
            num(e.value),
            ci,
            num(e.null),
            num(e.excess),
            num(e.p_value),
            e.estimator.into(),
            if e.error.is_some() {
                "failed".into()
            } else {
                bias_word(e.bias).into()
            },
            format!("{}/{}", e.points.p, e.points.q),
            e.dims.to_string(),
            format!("{:.2}", e.seconds),
        ]);
    }
    let mut s = format!(
        "funnel estimate · P {}: {} × {} ({} used) · Q {}: {} × {} ({} used) · seed {} · se from {} half-samples\n\n",
        o.p.path.display(),
        o.p.n,
        o.p.dims,
        o.p.used,
        o.q.path.display(),
        o.q.n,
        o.q.dims,
        o.q.used,
        o.seed,
        o.bootstrap
    );
    s.push_str(&grid(&cells, &[0, 6, 7]));
    for (name, e) in [("KL", &o.kl), ("W1", &o.w1)] {
        if let Some(err) = &e.error {
            s.push_str(&format!("· {name} failed: {err}\n"));
        }
        for n in &e.notes {
            s.push_str(&format!("· {name}: {n}\n"));
        }
    }
    s.push_str(
        "· null: mean of the same estimator after pooling P and Q and reassigning the points at random at the sizes used (permutations); p = (1 + #{null ≥ value})/(1 + permutations); excess = value − null\n· interval: [min(value, excess) − t·se, max(value, excess) + t·se], se from half-samples (coverage measured by funnel selftest)",
    );
    s
}
