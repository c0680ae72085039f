//! Bad input, case by case: every malformed config, override, data file and point file gets
//! exit code 2, a message naming the key (with the TOML line where the parser knows it) or the
//! file and line, and nothing written under `--out`.

use crate::common;

use common::*;

/// A valid base the cases break one key at a time.
const BASE: &str = r#"name = "base"
seed = 1
[data]
kind = "gaussian"
dim = 4
n_train = 200
n_test = 200
mean_norm = 2.0
[model]
widths = [8, 6]
activation = "tanh"
regularizer = { kind = "dropout", p = 0.2 }
[train]
epochs = 2
batch_size = 32
lr = 0.01
[metrics]
max_points = 200
exact_max_per_class = 100
bootstrap = 4
"#;

/// Runs `funnel run` on `config` with `extra` arguments, in a fresh folder holding `files`;
/// asserts exit 2, every needle in stderr, and an untouched `--out`.
fn rejected(case: &str, config: &str, extra: &[&str], files: &[(&str, &[u8])], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let cfg = write_config(dir.path(), "bad.toml", config);
    let out = dir.path().join("out");
    let mut args = vec!["run", arg(&cfg), "--out", arg(&out)];
    args.extend_from_slice(extra);
    let o = funnel(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "case `{case}`: {}", text(&o));
    for needle in needles {
        assert!(
            err.contains(needle),
            "case `{case}`: expected `{needle}` in: {err}"
        );
    }
    assert!(!err.contains("panicked"), "case `{case}`: {err}");
    assert!(!out.exists(), "case `{case}`: nothing may be written");
}

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "the base has `{from}`");
    BASE.replacen(from, to, 1)
}

#[test]
fn malformed_configs_name_the_key_and_exit_2() {
    // (case, config, --set overrides, what stderr must say)
    let cases: Vec<(&str, String, Vec<&str>, Vec<&str>)> = vec![
        ("unknown top-level key", with("seed = 1", "seed = 1\ncolour = 3"), vec![], vec!["colour", "bad.toml:3"]),
        ("unknown [data] key", with("dim = 4", "dim = 4\ndimm = 4"), vec![], vec!["dimm"]),
        ("unknown [model] key", with("widths = [8, 6]", "widths = [8, 6]\nwidht = 3"), vec![], vec!["widht", "bad.toml:11"]),
        ("unknown [train] key", with("epochs = 2", "epochs = 2\nepoch = 3"), vec![], vec!["epoch", "bad.toml:15"]),
        ("unknown [metrics] key", with("bootstrap = 4", "bootstrap = 4\nkk = 3"), vec![], vec!["kk"]),
        ("unknown section", format!("{BASE}[optimizer]\nlr = 1\n"), vec![], vec!["optimizer"]),
        ("seed is a string", with("seed = 1", "seed = \"one\""), vec![], vec!["seed", "bad.toml:2"]),
        ("widths is a string", with("widths = [8, 6]", "widths = \"8\""), vec![], vec!["model.widths"]),
        ("epochs is a float", with("epochs = 2", "epochs = 1.5"), vec![], vec!["train.epochs"]),
        ("lr is a string", with("lr = 0.01", "lr = \"fast\""), vec![], vec!["train.lr"]),
        ("negative epochs", with("epochs = 2", "epochs = -4"), vec![], vec!["train.epochs", "bad.toml:14"]),
        ("negative learning rate", with("lr = 0.01", "lr = -0.01"), vec![], vec!["bad.toml:16:6: `train.lr`"]),
        ("zero learning rate", BASE.into(), vec!["--set", "train.lr=0"], vec!["train.lr"]),
        ("NaN learning rate", with("lr = 0.01", "lr = nan"), vec![], vec!["train.lr"]),
        ("zero batch size", with("batch_size = 32", "batch_size = 0"), vec![], vec!["train.batch_size"]),
        ("unknown optimizer", with("epochs = 2", "epochs = 2\nalgorithm = \"rmsprop\""), vec![], vec!["rmsprop", "algorithm"]),
        ("negative weight decay", with("epochs = 2", "epochs = 2\nweight_decay = -1.0"), vec![], vec!["train.weight_decay"]),
        ("dropout p = 1", with("p = 0.2", "p = 1.0"), vec![], vec!["bad.toml:12", "model.regularizer.p"]),
        ("dropout p < 0", with("p = 0.2", "p = -0.1"), vec![], vec!["model.regularizer.p"]),
        ("negative noise std", with("{ kind = \"dropout\", p = 0.2 }", "{ kind = \"gaussian_noise\", std = -1.0 }"), vec![], vec!["model.regularizer.std"]),
        ("unknown regularizer", with("kind = \"dropout\"", "kind = \"dropblock\""), vec![], vec!["dropblock"]),
        ("unknown activation", with("activation = \"tanh\"", "activation = \"swish\""), vec![], vec!["swish", "model.activation"]),
        ("zero width", with("widths = [8, 6]", "widths = [8, 0]"), vec![], vec!["bad.toml:10:14", "model.widths[1]"]),
        ("absurd width", with("widths = [8, 6]", "widths = [8, 10000000]"), vec![], vec!["model.widths[1]"]),
        ("zero input dim", with("dim = 4", "dim = 0"), vec![], vec!["data.dim"]),
        ("n_train below the classes", with("n_train = 200", "n_train = 1"), vec![], vec!["data.n_train"]),
        ("zero n_test", with("n_test = 200", "n_test = 0"), vec![], vec!["data.n_test"]),
        ("negative mean norm", with("mean_norm = 2.0", "mean_norm = -1.0"), vec![], vec!["data.mean_norm"]),
        ("one class", with("kind = \"gaussian\"", "kind = \"gaussian_multiclass\"\nclasses = 1"), vec![], vec!["data.classes"]),
        ("unknown data kind", with("kind = \"gaussian\"", "kind = \"parquet\""), vec![], vec!["parquet"]),
        ("k = 0", with("bootstrap = 4", "bootstrap = 4\nk = 0"), vec![], vec!["metrics.k"]),
        ("k ≥ points", with("bootstrap = 4", "bootstrap = 4\nk = 500"), vec![], vec!["k"]),
        ("zero max_points", with("max_points = 200", "max_points = 0"), vec![], vec!["metrics.max_points"]),
        ("unknown KL estimator", BASE.into(), vec!["--set", "metrics.kl=\"kde\""], vec!["kde"]),
        ("unknown W1 estimator", with("bootstrap = 4", "bootstrap = 4\nw1 = \"magic\""), vec![], vec!["magic"]),
        ("smoothed KL without noise", BASE.into(), vec!["--set", "metrics.kl=\"smoothed\""], vec!["metrics.beta"]),
        ("negative beta", BASE.into(), vec!["--set", "metrics.beta=-1"], vec!["beta"]),
        ("zero Sinkhorn epsilon", BASE.into(), vec!["--set", "metrics.sinkhorn_epsilon=0"], vec!["sinkhorn_epsilon"]),
        ("zero MC draws", BASE.into(), vec!["--set", "metrics.mc_draws=0"], vec!["mc_draws"]),
        ("unknown stochastic mode", with("bootstrap = 4", "bootstrap = 4\nstochastic_layers = \"sometimes\""), vec![], vec!["sometimes"]),
        ("unknown backend", with("seed = 1", "seed = 1\nbackend = \"quantum\""), vec![], vec!["quantum", "backend"]),
        ("empty name", with("name = \"base\"", "name = \"\""), vec![], vec!["name"]),
        ("name with a path", BASE.into(), vec!["--set", "name=../../etc"], vec!["name"]),
        ("missing name", BASE.replacen("name = \"base\"\n", "", 1), vec![], vec!["name"]),
        ("missing [model]", BASE.replacen("[model]\nwidths = [8, 6]\nactivation = \"tanh\"\nregularizer = { kind = \"dropout\", p = 0.2 }\n", "", 1), vec![], vec!["model"]),
        ("missing [data]", BASE.replacen("[data]\nkind = \"gaussian\"\ndim = 4\nn_train = 200\nn_test = 200\nmean_norm = 2.0\n", "", 1), vec![], vec!["data"]),
        ("TOML syntax error", "name = \"x\"\n[data\n".into(), vec![], vec!["bad.toml:2"]),
        ("duplicate key", with("seed = 1", "seed = 1\nseed = 2"), vec![], vec!["`seed = 2`", "bad.toml:3"]),
        ("override of an unknown key", BASE.into(), vec!["--set", "model.depth=3"], vec!["depth"]),
        ("override without =", BASE.into(), vec!["--set", "oops"], vec!["key=value"]),
        ("sgld without gamma", BASE.into(), vec!["--set", "train.algorithm=\"sgld\""], vec!["train.gamma"]),
        ("negative sgld gamma", BASE.into(), vec!["--set", "train.algorithm=\"sgld\"", "--set", "train.gamma=-2"], vec!["train.gamma"]),
        ("gamma without sgld", with("epochs = 2", "epochs = 2\ngamma = 10.0"), vec![], vec!["train.gamma", "bad.toml:15:9"]),
        ("prior_std without sgld", with("epochs = 2", "epochs = 2\nprior_std = 1.0"), vec![], vec!["train.prior_std"]),
        ("sgld with weight decay", BASE.into(), vec!["--set", "train.algorithm=\"sgld\"", "--set", "train.gamma=10", "--set", "train.weight_decay=0.1"], vec!["train.weight_decay", "prior_std"]),
        ("class_mean on a tanh net", BASE.into(), vec!["--set", "train.algorithm=\"class_mean\""], vec!["model.activation", "identity"]),
        ("class_mean with dropout", with("activation = \"tanh\"", "activation = \"identity\""), vec!["--set", "train.algorithm=\"class_mean\""], vec!["model.regularizer"]),
        ("class_mean on standardized data", with("mean_norm = 2.0", "mean_norm = 2.0\nstandardize = true"), vec!["--set", "train.algorithm=\"class_mean\"", "--set", "model.activation=\"identity\"", "--set", "model.regularizer={ kind = \"none\" }"], vec!["data.standardize"]),
        ("class_mean on shifted data", with("mean_norm = 2.0", "mean_norm = 2.0\ntest_shift = 1.0"), vec!["--set", "train.algorithm=\"class_mean\"", "--set", "model.activation=\"identity\"", "--set", "model.regularizer={ kind = \"none\" }"], vec!["data.test_shift"]),
        ("NaN test shift", with("mean_norm = 2.0", "mean_norm = 2.0\ntest_shift = nan"), vec![], vec!["data.test_shift"]),
        ("missing CSV file", with("kind = \"gaussian\"\ndim = 4\nn_train = 200\nn_test = 200\nmean_norm = 2.0", "kind = \"csv\"\npath = \"nowhere.csv\""), vec![], vec!["nowhere.csv"]),
        ("missing IDX files", with("kind = \"gaussian\"\ndim = 4\nn_train = 200\nn_test = 200\nmean_norm = 2.0", "kind = \"idx\"\ntrain_images = \"a\"\ntrain_labels = \"b\"\ntest_images = \"c\"\ntest_labels = \"d\""), vec![], vec!["a: cannot read"]),
    ];
    assert!(cases.len() >= 30);
    for (case, config, extra, needles) in &cases {
        rejected(case, config, extra, &[], needles);
    }
}

const CSV_DATA: &str = "kind = \"csv\"\npath = \"d.csv\"";

fn csv_config() -> String {
    with(
        "kind = \"gaussian\"\ndim = 4\nn_train = 200\nn_test = 200\nmean_norm = 2.0",
        CSV_DATA,
    )
}

/// A valid CSV body of `rows` rows (two features, label in the last column).
fn good_rows(rows: usize) -> String {
    (0..rows)
        .map(|i| format!("{},{},{}\n", i as f64 * 0.1, (i % 7) as f64, i % 2))
        .collect()
}

#[test]
fn malformed_data_files_name_the_file_and_line() {
    let body = good_rows(60);
    // enough rows that both real classes have their points in the test split
    let big = good_rows(200);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "ragged row",
            format!("a,b,label\n{body}1,2\n{body}"),
            vec!["d.csv:62", "3"],
        ),
        (
            "non-numeric cell",
            format!("a,b,label\n{body}1,x,0\n"),
            vec!["d.csv:62", "`x`"],
        ),
        (
            "NaN cell",
            format!("a,b,label\n{body}1,NaN,0\n"),
            vec!["d.csv:62"],
        ),
        (
            "infinite cell",
            format!("a,b,label\n{body}inf,1,0\n"),
            vec!["d.csv:62"],
        ),
        // labels are any integers (the classes are their sorted values): a stray one is a class
        // with one example, named by its label
        (
            "stray negative label",
            format!("a,b,label\n{big}1,1,-1\n"),
            vec!["label -1"],
        ),
        (
            "fractional label",
            format!("a,b,label\n{body}1,1,0.5\n"),
            vec!["d.csv:62", "label"],
        ),
        (
            "stray huge label",
            format!("a,b,label\n{big}1,1,99999999\n"),
            vec!["label 99999999"],
        ),
        ("empty file", String::new(), vec!["d.csv", "no rows"]),
        ("header only", "a,b,label\n".into(), vec!["d.csv"]),
        (
            "one class only",
            format!("a,b,label\n{}", "1,2,0\n".repeat(50)),
            vec!["d.csv", "2 classes"],
        ),
        (
            "binary garbage",
            "\u{0}\u{1}\u{2}\u{ff}".into(),
            vec!["d.csv"],
        ),
    ];
    for (case, contents, needles) in &cases {
        rejected(
            case,
            &csv_config(),
            &[],
            &[("d.csv", contents.as_bytes())],
            needles,
        );
    }
}

#[test]
fn malformed_idx_files_name_the_file() {
    // a valid 2-example label file, and image files that lie about their size
    let labels = [&[0u8, 0, 8, 1][..], &2u32.to_be_bytes(), &[0, 1]].concat();
    let truncated = [
        &[0u8, 0, 8, 3][..],
        &2u32.to_be_bytes(),
        &3u32.to_be_bytes(),
        &3u32.to_be_bytes(),
        &[0; 5],
    ]
    .concat();
    let bad_magic = [&[1u8, 2, 3, 4][..], &[0; 20]].concat();
    let config = with(
        "kind = \"gaussian\"\ndim = 4\nn_train = 200\nn_test = 200\nmean_norm = 2.0",
        "kind = \"idx\"\ntrain_images = \"ti\"\ntrain_labels = \"tl\"\ntest_images = \"vi\"\ntest_labels = \"vl\"",
    );
    for (case, images, needle) in [
        ("truncated images", &truncated, "ti"),
        ("bad magic", &bad_magic, "ti"),
    ] {
        rejected(
            case,
            &config,
            &[],
            &[
                ("ti", images),
                ("tl", &labels),
                ("vi", images),
                ("vl", &labels),
            ],
            &[needle],
        );
    }
}

/// `funnel estimate` on bad point files: exit 2, the file named.
#[test]
fn malformed_point_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good: String = (0..100).map(|i| format!("{},{}\n", i, i % 3)).collect();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let ok = write("ok.csv", good.as_bytes());
    let npy_header = |descr: &str, shape: &str| -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        [
            &b"\x93NUMPY\x01\x00"[..],
            &(h.len() as u16).to_le_bytes(),
            h.as_bytes(),
        ]
        .concat()
    };
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        (
            "ragged CSV",
            write("ragged.csv", format!("{good}1,2,3\n").as_bytes()),
            "ragged.csv:101",
        ),
        (
            "NaN in CSV",
            write("nan.csv", format!("{good}nan,1\n").as_bytes()),
            "nan.csv:101",
        ),
        ("empty CSV", write("empty.csv", b""), "empty.csv"),
        (
            "npy of strings",
            write("s.npy", &[npy_header("<U3", "(2,)"), vec![0; 24]].concat()),
            "s.npy",
        ),
        (
            "truncated npy",
            write(
                "t.npy",
                &[npy_header("<f8", "(100, 2)"), vec![0; 16]].concat(),
            ),
            "t.npy",
        ),
        (
            "npy of rank 3",
            write(
                "r.npy",
                &[npy_header("<f8", "(2, 2, 2)"), vec![0; 64]].concat(),
            ),
            "r.npy",
        ),
        ("not an npy", write("x.npy", b"hello"), "x.npy"),
        ("missing file", dir.path().join("absent.csv"), "absent.csv"),
    ];
    for (case, path, needle) in &cases {
        let o = funnel(&["estimate", "--p", arg(&ok), "--q", arg(path)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case `{case}`: {}", text(&o));
        assert!(
            err.contains(needle),
            "case `{case}`: expected `{needle}` in {err}"
        );
        assert!(!err.contains("panicked"), "case `{case}`: {err}");
    }
}

#[test]
fn a_config_that_is_a_folder_or_missing_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for path in [dir.path().to_path_buf(), dir.path().join("absent.toml")] {
        let o = funnel(&["run", arg(&path), "--out", arg(&out)]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(!out.exists());
    }
}
