//! `model.weights`: a PyTorch `nn.Sequential` state dict loaded into funnel's network through
//! burn-store. The fixtures in `data/` (a 4 → 8 → 6 → 2 tanh MLP as `.safetensors` and `.pt`, a
//! bias-less twin, a fixed input and PyTorch's float32 logits for it) are written by
//! `examples/pytorch/make_weights_fixture.py`; these tests need no Python.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use funnel::backend::BackendName;
use funnel::results::model::Weights;
use funnel_model::{to_f32_vec, Activation, LayeredModel, MlpConfig, Regularizer, Stochastic};

use crate::common::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/data")
        .join(name)
}

/// The fixture's architecture: funnel's `widths = [8, 6]`, tanh, on 4 features and 2 classes.
fn fixture_mlp() -> MlpConfig {
    MlpConfig {
        input_dim: 4,
        widths: vec![8, 6],
        num_classes: 2,
        activation: Activation::Tanh,
        bias: true,
        regularizer: Regularizer::None,
    }
}

/// PyTorch's input batch and its logits, row-major.
fn pytorch_logits() -> (Vec<f32>, usize, Vec<f32>) {
    let json = read_json(&data("mlp_4_8_6_2_logits.json"));
    let rows = |key: &str| -> Vec<Vec<f32>> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect()
    };
    let (x, logits) = (rows("input"), rows("logits"));
    (x.concat(), x.len(), logits.concat())
}

/// funnel's logits for PyTorch's input, with the parameters of `file` loaded.
fn funnel_logits(file: &str) -> Vec<f32> {
    let device = BackendName::Flex.device(None).unwrap();
    let mlp = fixture_mlp();
    let weights = Weights::read(&data(file), &mlp).unwrap();
    assert_eq!(weights.len(), 6);
    let model = weights.apply(mlp.init(&device, 0).unwrap()).unwrap();
    let (x, n, _) = pytorch_logits();
    let x = Tensor::<2>::from_data(TensorData::new(x, [n, 4]), &device);
    to_f32_vec(model.forward(x, Stochastic::Off))
}

#[test]
fn safetensors_weights_give_pytorchs_logits() {
    let (_, n, expected) = pytorch_logits();
    let got = funnel_logits("mlp_4_8_6_2.safetensors");
    assert_eq!(got.len(), n * 2);
    let max = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("max |funnel − PyTorch| logit difference: {max:e}");
    assert!(
        max <= 1e-5,
        "logits differ by {max}: {got:?} vs {expected:?}"
    );
    // the weights were loaded, not the seeded initialisation: that gives other logits
    let device = BackendName::Flex.device(None).unwrap();
    let (x, n, _) = pytorch_logits();
    let x = Tensor::<2>::from_data(TensorData::new(x, [n, 4]), &device);
    let init = to_f32_vec(
        fixture_mlp()
            .init(&device, 0)
            .unwrap()
            .forward(x, Stochastic::Off),
    );
    assert!(init
        .iter()
        .zip(&expected)
        .any(|(a, b)| (a - b).abs() > 1e-3));
}

#[cfg(feature = "pytorch")]
#[test]
fn a_pt_state_dict_loads_the_same_parameters() {
    assert_eq!(
        funnel_logits("mlp_4_8_6_2.pt"),
        funnel_logits("mlp_4_8_6_2.safetensors")
    );
}

#[cfg(not(feature = "pytorch"))]
#[test]
fn a_pt_state_dict_needs_the_pytorch_feature() {
    let err = Weights::read(&data("mlp_4_8_6_2.pt"), &fixture_mlp())
        .err()
        .unwrap();
    assert!(err.contains("--features pytorch"), "{err}");
    assert!(err.contains("safetensors.torch.save_file"), "{err}");
}

/// TINY without its dropout, with `extra` lines appended to `[model]`, and `train.epochs = 0`.
fn weights_config(extra: &str) -> String {
    TINY.replace("regularizer = { kind = \"dropout\", p = 0.2 }\n", extra)
        .replace("epochs = 4", "epochs = 0")
}

#[test]
fn a_run_with_weights_and_no_training_measures_the_loaded_network() {
    let dir = tempfile::tempdir().unwrap();
    // a path relative to the config file's folder
    std::fs::create_dir(dir.path().join("nets")).unwrap();
    std::fs::copy(
        data("mlp_4_8_6_2.safetensors"),
        dir.path().join("nets/mlp.safetensors"),
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        "w.toml",
        &weights_config("weights = \"nets/mlp.safetensors\"\n"),
    );
    let out = dir.path().join("out");
    let o = funnel(&["run", arg(&cfg), "--out", arg(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("measured as loaded"), "{}", text(&o));
    let run = &runs(&out, "tiny")[0];
    let loaded = layer_values(run);
    // columns: layer, name, role, width, …
    let widths: Vec<&str> = loaded.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(widths, ["4", "8", "6", "2"], "layers.csv: {loaded:?}");
    let roles: Vec<&str> = loaded.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(roles, ["input", "hidden", "hidden", "logits"]);
    // the frozen config names the file absolutely, so it runs again from anywhere
    let frozen = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let abs = dir.path().join("nets/mlp.safetensors");
    assert!(
        frozen.contains(&format!("weights = {:?}", abs.to_str().unwrap())),
        "{frozen}"
    );
    assert!(run.join("model.bpk").is_file());

    // the same run without the weights measures the seeded initialisation: other numbers
    let plain = write_config(dir.path(), "p.toml", &weights_config(""));
    let out2 = dir.path().join("out2");
    let o = funnel(&["run", arg(&plain), "--out", arg(&out2)]);
    assert!(o.status.success(), "{}", text(&o));
    let seeded = layer_values(&runs(&out2, "tiny")[0]);
    // layer 0 is the data (its KL estimate the same), the others the networks
    assert_eq!(loaded[0][..7], seeded[0][..7]);
    assert_ne!(loaded[1..], seeded[1..], "the loaded weights were measured");
}

#[test]
fn bad_weights_exit_2_name_the_key_and_tensor_and_write_nothing() {
    let nobias = format!(
        "model.weights={:?}",
        data("mlp_4_8_6_2_nobias.safetensors").to_str().unwrap()
    );
    let not_a_state_dict = format!(
        "model.weights={:?}",
        data("mlp_4_8_6_2_logits.json").to_str().unwrap()
    );
    let cases: Vec<(&str, Vec<&str>)> = vec![
        // a hidden width differs: the tensor, its shape and the one the config needs
        (
            "model.widths=[8, 5]",
            vec![
                "`2.weight` has shape [6, 8]",
                "needs [5, 8]",
                "model.widths = [8, 5]",
            ],
        ),
        // one layer more in the config than in the file
        (
            "model.widths=[8, 6, 3]",
            vec!["holds 3 Linear layers", "4 Linear layers"],
        ),
        // biases in the file, none in the config, and the other way round
        ("model.bias=false", vec!["`0.bias`", "model.bias = false"]),
        (&nobias, vec!["`0.bias` is missing", "model.bias = true"]),
        // no such file (relative to the config's folder), a wrong extension, not a state dict
        (
            "model.weights=\"nets/none.safetensors\"",
            vec!["none.safetensors: no such file"],
        ),
        (
            "model.weights=\"net.onnx\"",
            vec!["net.onnx", ".safetensors, .pt or .pth"],
        ),
        (&not_a_state_dict, vec![".safetensors, .pt or .pth"]),
    ];
    for (set, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let weights = format!(
            "weights = {:?}\n",
            data("mlp_4_8_6_2.safetensors").to_str().unwrap()
        );
        let cfg = write_config(dir.path(), "w.toml", &weights_config(&weights));
        let out = dir.path().join("out");
        let o = funnel(&["run", arg(&cfg), "--out", arg(&out), "--set", set]);
        assert_eq!(o.status.code(), Some(2), "--set {set}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        for needle in std::iter::once("`model.weights`").chain(needles) {
            assert!(
                err.contains(needle),
                "--set {set}: expected `{needle}` in: {err}"
            );
        }
        assert!(!out.exists(), "--set {set}: nothing may be written");
    }
}
