//! The paper's results end to end: closed forms against funnel's estimators (DESIGN §2.7),
//! the SDPI columns, `funnel gibbs` and study figures.

use crate::common;

use burn::prelude::*;
use funnel_metrics::probe::capture;
use funnel_metrics::{layer_divergence, KlEstimator, LayerContext, MetricsSpec, W1Estimator};
use funnel_model::{Activation, MlpConfig, Regularizer, Stochastic};
use funnel_train::class_mean::{class_mean, closed_forms};
use funnel_train::{DataSpec, Dataset, EvalSettings};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `m` draws with labels uniform on {0, 1} and X | Y ~ N(±centre, std²·I) (class 1 at +centre).
fn draw(centre: &[f64], std: f64, m: usize, rng: &mut ChaCha8Rng) -> Dataset {
    let d = centre.len();
    let mut x = Vec::with_capacity(m * d);
    let mut y = Vec::with_capacity(m);
    for _ in 0..m {
        let label = rng.random_range(0..2usize);
        let sign = if label == 1 { 1.0 } else { -1.0 };
        for c in centre {
            let z: f64 = StandardNormal.sample(rng);
            x.push((sign * c + std * z) as f32);
        }
        y.push(label);
    }
    Dataset::new(x, y, d, 2)
}

/// D_l is a divergence between the law of a *training* example given the learned weights —
/// X_i | (Y_i, μ̂) ~ N(Y_i·μ̂, (1 − 1/n)s²I) — and a fresh example. Sampling the first law
/// directly (it is Gaussian) and running both through the class-mean network, funnel's Gaussian
/// KL estimator must recover the per-run closed form at every layer, whatever the rank.
#[test]
fn class_mean_estimates_match_the_per_run_closed_form() {
    let device = Device::flex();
    let (dim, n, s) = (6, 60, 1.5);
    let split = DataSpec::Gaussian {
        label_noise: 0.0,
        dim,
        n_train: n,
        n_test: 100,
        mean_norm: 2.0,
        noise_std: s,
        standardize: false,
        test_shift: 0.0,
    }
    .load(8)
    .unwrap();
    let model = MlpConfig {
        input_dim: dim,
        widths: vec![10, 3],
        num_classes: 2,
        activation: Activation::Identity,
        bias: true,
        regularizer: Regularizer::None,
    }
    .init(&device, 5)
    .unwrap();
    let eval = EvalSettings {
        mode: Stochastic::Off,
        clip: 5.0,
    };
    let (trained, mu_hat) = class_mean(model, &split, s, &device, eval).unwrap();
    let mu = &split.info.class_means.as_ref().unwrap()[1];
    let forms = closed_forms(&trained.model, mu, &mu_hat, s, n);
    assert_eq!(
        forms.iter().map(|f| f.rank).collect::<Vec<_>>(),
        [6, 6, 3, 1]
    );

    let m = 40_000;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let conditional = draw(&mu_hat, s * (1.0 - 1.0 / n as f64).sqrt(), m, &mut rng);
    let fresh = draw(mu, s, m, &mut rng);
    let all: Vec<usize> = (0..m).collect();
    let clouds = |d: &Dataset| {
        capture(
            &trained.model,
            d.features_of(&all, &device),
            &d.y,
            2,
            Stochastic::Off,
        )
    };
    let (p, q) = (clouds(&conditional), clouds(&fresh));
    let spec = MetricsSpec {
        kl: KlEstimator::Gaussian,
        w1: W1Estimator::Sliced,
        bootstrap: 8,
        permutations: 19,
        mi: false,
        ..MetricsSpec::default()
    };
    for (l, f) in forms.iter().enumerate() {
        let context = LayerContext {
            noise: None,
            nonlinear: false,
            masked: false,
            halves: None,
        };
        let div = layer_divergence(&p[l], &q[l], &spec, context, &device, 3 + l as u64);
        let est = div.kl.value - div.kl.label_term;
        eprintln!(
            "layer {l}: rank {}, estimate {est:.5} [{:.5}, {:.5}], closed form {:.5}",
            f.rank, div.kl.lo, div.kl.hi, f.kl_per_run
        );
        assert!(
            (est - f.kl_per_run).abs() < 0.15 * f.kl_per_run + 0.002,
            "layer {l}: estimate {est} vs closed form {}",
            f.kl_per_run
        );
    }
}

use common::*;

fn csv_rows(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A class-mean run writes the closed forms beside the estimates; a noisy tanh run writes
/// η_l = erf(a√d/(β√2)) and its running product.
#[test]
fn runs_write_closed_forms_and_sdpi_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = write_config(dir.path(), "lin.toml", TINY);
    let o = funnel(&[
        "run",
        arg(&cfg),
        "--out",
        arg(&out),
        "--set",
        "train.algorithm=\"class_mean\"",
        "--set",
        "model.activation=\"identity\"",
        "--set",
        "model.regularizer={ kind = \"none\" }",
        "--set",
        "model.widths=[8, 2]",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Closed forms"), "{report}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let ranks: Vec<u64> = summary["linear_gaussian"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, [4, 4, 2, 1]);
    assert_eq!(summary["training"]["algorithm"], "class_mean");

    let o = funnel(&[
        "run",
        arg(&cfg),
        "--out",
        arg(&out),
        "--set",
        "model.regularizer={ kind = \"gaussian_noise\", std = 2.0 }",
        "--set",
        "model.widths=[4, 4]",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let noisy = runs(&out, "tiny").into_iter().find(|r| r != run).unwrap();
    let rows = csv_rows(&noisy.join("layers.csv"));
    let eta: Vec<f64> = rows.iter().map(|r| r["eta"].parse().unwrap()).collect();
    // tanh (a = 1), 4 units, β = 2: erf(1·2/(2√2)) = erf(1/√2) = 2Φ(1) − 1
    let want = 0.682_689_492_137_086;
    assert_eq!(eta[0], 1.0);
    assert!(
        (eta[1] - want).abs() < 1e-9 && (eta[2] - want).abs() < 1e-9,
        "{eta:?}"
    );
    assert_eq!(eta[3], 1.0);
    let product: f64 = rows[3]["eta_product"].parse().unwrap();
    assert!((product - want * want).abs() < 1e-9);
    for col in [
        "kl_contracted",
        "kl_contracted_bound",
        "kl_ratio",
        "kl_ratio_lo",
        "kl_ratio_hi",
        "kl_ratio_method",
        "kl_ratio_vs_eta",
        "lipschitz_local",
        "w1_bound_local",
    ] {
        assert!(rows[0].contains_key(col), "layers.csv lacks {col}");
    }
    let report = std::fs::read_to_string(noisy.join("report.md")).unwrap();
    assert!(report.contains("## SDPI contraction"));
}

/// `funnel gibbs`: the exact enumeration shows the 1/n rate; bad files exit 2 naming the key.
#[test]
fn gibbs_enumeration_runs_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = write_config(
        dir.path(),
        "g.toml",
        "name = \"g\"\n[gibbs]\nhidden = 2\ngamma = [8.0]\nn = [16, 32, 64, 128, 256]\ntrain_sets = 200\npool = 4000\n",
    );
    let o = funnel(&["gibbs", arg(&cfg), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "g")[0];
    let fits = csv_rows(&run.join("fits.csv"));
    let slope: f64 = fits[0]["slope"].parse().unwrap();
    assert!((slope + 1.0).abs() < 0.3, "slope {slope}");
    let rows = csv_rows(&run.join("gibbs.csv"));
    assert_eq!(rows.len(), 5);
    for r in &rows {
        let gap: f64 = r["gap_cv_mean"].parse().unwrap();
        let bound: f64 = r["bound_gibbs"].parse().unwrap();
        assert!(gap > 0.0 && gap < bound, "{r:?}");
    }
    assert!(run.join("plots/gibbs_rate.png").is_file());

    for (text_, key) in [
        ("name = \"g\"\n[gibbs]\nlevels = [1.0]\n", "gibbs.levels"),
        ("name = \"g\"\n[gibbs]\nn = [0]\n", "gibbs.n"),
        ("name = \"g\"\n[gibbs]\nhiden = 2\n", "hiden"),
        ("name = \"../g\"\n", "name"),
    ] {
        let bad_out = dir.path().join("bad");
        let cfg = write_config(dir.path(), "bad.toml", text_);
        let o = funnel(&["gibbs", arg(&cfg), "--out", arg(&bad_out)]);
        assert_eq!(o.status.code(), Some(2), "{text_}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(key), "{text_}: {err}");
        assert!(!bad_out.exists(), "{text_}: nothing may be written");
    }
}

/// `funnel gibbs` with `[[gibbs.architecture]]`: a budget run writes the architecture's columns,
/// its figure and report, `funnel report` rewrites them byte for byte; bad lists exit 2 naming
/// the key.
#[test]
fn gibbs_budget_runs_reports_and_rejects_bad_lists() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let head = "name = \"b\"\n[gibbs]\ngamma = [16.0]\nn = [16, 64]\ntrain_sets = 50\npool = 600\n";
    let cfg = write_config(
        dir.path(),
        "b.toml",
        &format!(
            "{head}[[gibbs.architecture]]\nwidths = [3]\n\
             [[gibbs.architecture]]\nwidths = [3]\ndropout = 0.5\n\
             [[gibbs.architecture]]\nwidths = [2, 1, 1, 1]\ndropout = 0.5\n"
        ),
    );
    let o = funnel(&["gibbs", arg(&cfg), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let run = &runs(&out, "b")[0];
    let rows = csv_rows(&run.join("gibbs.csv"));
    assert_eq!(rows.len(), 6);
    let etas: Vec<f64> = rows
        .iter()
        .map(|r| r["eta_product"].parse().unwrap())
        .collect();
    assert_eq!(etas, vec![1.0, 1.0, 0.875, 0.875, 0.09375, 0.09375]);
    assert_eq!(rows[4]["architecture"], "2-1-1-1");
    assert_eq!(rows[4]["depth"], "4");
    for r in &rows {
        let gap: f64 = r["gap_cv_mean"].parse().unwrap();
        let eta: f64 = r["eta_product"].parse().unwrap();
        let risk: f64 = r["test_loss"].parse().unwrap();
        assert!(
            gap > 0.0 && gap < r["bound_gibbs"].parse::<f64>().unwrap(),
            "{r:?}"
        );
        assert!(risk >= (1.0 - eta) / 2.0, "{r:?}");
    }
    assert_eq!(csv_rows(&run.join("fits.csv")).len(), 3);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Architectures") && report.contains("| [2, 1, 1, 1] | 4 |"));
    assert!(run.join("plots/gibbs_budget.png").is_file());
    // The single-network file still writes its own figure, not this one.
    assert!(!run.join("plots/gibbs_rate.png").exists());
    // `funnel report` regenerates the files from summary.json, byte for byte.
    let before: Vec<Vec<u8>> = [
        "gibbs.csv",
        "fits.csv",
        "report.md",
        "plots/gibbs_budget.svg",
    ]
    .iter()
    .map(|f| std::fs::read(run.join(f)).unwrap())
    .collect();
    std::fs::remove_file(run.join("report.md")).unwrap();
    let o = funnel(&["report", arg(run)]);
    assert!(o.status.success(), "{}", text(&o));
    for (f, b) in [
        "gibbs.csv",
        "fits.csv",
        "report.md",
        "plots/gibbs_budget.svg",
    ]
    .iter()
    .zip(&before)
    {
        assert!(&std::fs::read(run.join(f)).unwrap() == b, "{f} differs");
    }

    for (arch, key) in [
        (
            "widths = [3]\ndropout = 1.0\n",
            "gibbs.architecture.dropout",
        ),
        (
            "widths = [3]\ndropout = -0.5\n",
            "gibbs.architecture.dropout",
        ),
        ("widths = [2, 2]\n", "gibbs.architecture.widths"),
        ("widths = [3]\ndrop = 0.5\n", "drop"),
    ] {
        let bad_out = dir.path().join("bad");
        let text_ =
            format!("{head}[[gibbs.architecture]]\nwidths = [3]\n[[gibbs.architecture]]\n{arch}");
        let cfg = write_config(dir.path(), "bad.toml", &text_);
        let o = funnel(&["gibbs", arg(&cfg), "--out", arg(&bad_out)]);
        assert_eq!(o.status.code(), Some(2), "{text_}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(key), "{text_}: {err}");
        assert!(!bad_out.exists(), "{text_}: nothing may be written");
    }
    // `hidden` together with a list, and a list too big for the table.
    for (text_, key) in [
        (
            format!("{head}hidden = 3\n[[gibbs.architecture]]\nwidths = [3]\n"),
            "gibbs.hidden",
        ),
        (
            "name = \"b\"\n[gibbs]\npool = 8000\n[[gibbs.architecture]]\nwidths = [3]\ndropout = 0.5\n"
                .to_string(),
            "gibbs.pool",
        ),
    ] {
        let cfg = write_config(dir.path(), "bad.toml", &text_);
        let o = funnel(&["gibbs", arg(&cfg), "--out", arg(&dir.path().join("bad"))]);
        assert_eq!(o.status.code(), Some(2), "{text_}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(key), "{}", text(&o));
    }
}

/// A study's `[[figure]]`s are drawn after the sweep; a bad figure spec is refused at load.
#[test]
fn study_figures_are_drawn_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "base.toml", TINY);
    let study = write_config(
        dir.path(),
        "study.toml",
        "name = \"st\"\nbase = \"base.toml\"\nseeds = [1, 2]\n[axes]\n\"model.regularizer.p\" = [0.1, 0.5]\n\
         [[figure]]\nname = \"eta\"\ntitle = \"t\"\nx = \"model.regularizer.p\"\ny = [\"eta_l1\", \"kl_ratio_l1\"]\n\
         [[figure]]\nname = \"curves\"\ntitle = \"t\"\nx = \"layer\"\ny = [\"w1_l\"]\ngroup = \"model.regularizer.p\"\n",
    );
    let out = dir.path().join("out");
    let o = funnel(&["sweep", arg(&study), "--out", arg(&out), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["eta.png", "eta.svg", "curves.png", "curves.svg"] {
        assert!(out.join("st/plots").join(f).is_file(), "{f}");
    }
    assert!(!out.join("st/plots/bounds_vs_depth.png").exists());
    // the derived columns are filled in (TINY has two hidden layers)
    let rows = csv_rows(&out.join("st/summary.csv"));
    assert!(
        rows.iter().all(|r| r["hidden_layers"] == "2"),
        "{:?}",
        rows[0]["hidden_layers"]
    );
    assert!(rows
        .iter()
        .all(|r| r["eta_product_last"].parse::<f64>().unwrap() < 1.0));
    let bad = write_config(
        dir.path(),
        "bad.toml",
        "name = \"st2\"\nbase = \"base.toml\"\nseeds = [1]\n[[figure]]\nname = \"../x\"\ntitle = \"t\"\nx = \"seed\"\ny = [\"kl_l0\"]\n",
    );
    let o = funnel(&["sweep", arg(&bad), "--out", arg(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("figure[0].name"));
    assert!(!out.join("st2").exists());
}

/// The certified constants in a run's files: at every layer ρ̂ (empirical, at the captured
/// points) ≤ ρ^cert = min(product, CP, box) ≤ the product of norms, ρ̂ ≤ ρ^CP, the W1 bound under
/// ρ^cert is at most the product's, and summary.json names the funnel of each curve. With
/// dropout active ρ̂ is measured at fresh masks, which may leave the box: only ρ̂ ≤ CP is
/// certain there.
#[test]
fn a_run_writes_certified_constants_between_the_empirical_and_the_product() {
    let dir = tempfile::tempdir().unwrap();
    for (i, reg) in ["{ kind = \"none\" }", "{ kind = \"dropout\", p = 0.2 }"]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("out{i}"));
        let cfg = write_config(dir.path(), "tiny.toml", TINY);
        let set = format!("model.regularizer={reg}");
        let o = funnel(&[
            "run",
            arg(&cfg),
            "--out",
            arg(&out),
            "--set",
            &set,
            "--set",
            "model.activation=\"relu\"",
            "--set",
            "metrics.permutations=19",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let run = runs(&out, "tiny").pop().unwrap();
        let rows = csv_rows(&run.join("layers.csv"));
        let num = |r: &std::collections::HashMap<String, String>, k: &str| -> f64 {
            r[k].parse().unwrap_or_else(|_| panic!("{k}: {}", r[k]))
        };
        for r in &rows {
            let (local, cert, prod) = (
                num(r, "lipschitz_local"),
                num(r, "lipschitz_cert"),
                num(r, "lipschitz"),
            );
            let (cp, bx) = (num(r, "lipschitz_cp"), num(r, "lipschitz_box"));
            let tag = format!("{reg} layer {}", r["layer"]);
            assert!(
                cert.is_finite() && cp.is_finite() && bx.is_finite(),
                "{tag}"
            );
            assert!(
                cert <= prod * (1.0 + 1e-4),
                "{tag}: cert {cert} > product {prod}"
            );
            assert!(cert <= cp && cert <= bx, "{tag}");
            assert!(local <= cp * (1.0 + 1e-5), "{tag}: ρ̂ {local} > CP {cp}");
            if i == 0 {
                assert!(
                    local <= cert * (1.0 + 1e-5),
                    "{tag}: ρ̂ {local} > cert {cert}"
                );
            }
            let (b, bc) = (num(r, "w1_bound"), num(r, "w1_bound_cert"));
            if b.is_finite() {
                assert!(bc <= b * (1.0 + 1e-4), "{tag}: {bc} > {b}");
            }
            for col in ["w1_debiased", "w1_debiased_cert", "w1_debiased_local"] {
                assert!(r.contains_key(col), "layers.csv lacks {col}");
            }
        }
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
        let w1 = &s["bounds"]["w1"];
        for key in [
            "layer_cert",
            "layer_cert_any",
            "cross_entropy_clipped_cert_any",
            "layer_debiased",
            "layer_debiased_cert",
            "layer_debiased_local",
        ] {
            assert!(w1.get(key).is_some(), "summary.json lacks bounds.w1.{key}");
        }
        assert!(w1["layer_cert_any"].is_u64(), "{w1}");
    }
}
