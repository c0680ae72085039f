//! `model.bpk`: the trained network's parameters as a burn record, written by `funnel run` and
//! read back by `funnel measure`; and `model.weights`, a PyTorch state dict (safetensors or
//! `.pt`) read through burn-store into funnel's network ([`Weights`]).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use funnel_model::{Mlp, MlpConfig};

use crate::error::{io_err, CliError};
use crate::results::RunDir;

/// The file in a run folder that holds the trained network's parameters (a burn record).
pub const MODEL_FILE: &str = "model.bpk";

/// Writes the trained network into the (still staged) run folder, for `funnel measure`.
pub fn save(run: &RunDir, model: &Mlp) -> Result<(), CliError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| CliError::internal(format!("cannot serialise the model: {e}")))?;
    run.write(MODEL_FILE, &bytes)
        .map_err(io_err("cannot write the model"))
}

/// The network `empty` (built from the run's config) with the parameters of `bytes`; the error
/// says why they do not fit.
pub fn load(empty: Mlp, bytes: Vec<u8>) -> Result<Mlp, String> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("{MODEL_FILE} is not a model record: {e}"))?;
    empty
        .try_load_record(record)
        .map_err(|e| format!("{MODEL_FILE} does not fit the network of config.toml: {e}"))
}

/// The parameters of a PyTorch `nn.Sequential` of `Linear` layers (a `state_dict`), read by
/// burn-store and checked against the network of the config, ready to replace its initial
/// weights. Keys are `<prefix><i>.weight` and `<prefix><i>.bias` (`0.weight`, `2.weight`, … in
/// a bare Sequential, whose activations hold no tensors); the `k`-th Linear in index order
/// becomes funnel's layer `k + 1` (`linears.<k>` in burn's module tree).
pub struct Weights {
    path: PathBuf,
    /// Renamed to funnel's parameter paths, still in PyTorch's layout.
    tensors: Vec<PackTensor>,
}

impl Weights {
    /// Reads `path` and checks it fits `mlp`: the number of Linear layers, every weight's
    /// shape (PyTorch's `[d_out, d_in]`), the biases as `mlp.bias` says, float tensors only.
    /// The message names the tensor and both shapes.
    pub fn read(path: &Path, mlp: &MlpConfig) -> Result<Weights, String> {
        use burn::store::{ModuleStore, SafetensorsStore};
        let shown = path.display();
        if !path.is_file() {
            return Err(format!("{shown}: no such file"));
        }
        let tensors: Vec<PackTensor> = match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => SafetensorsStore::from_file(path)
                .get_all_tensors()
                .map(|t| t.values().cloned().collect())
                .map_err(|e| format!("{shown}: not a readable safetensors file: {e}"))?,
            #[cfg(feature = "pytorch")]
            Some("pt" | "pth") => burn::store::PytorchStore::from_file(path)
                // the renaming below is explicit; burn's own renumbering would hide gaps
                .map_indices_contiguous(false)
                .get_all_tensors()
                .map(|t| t.values().cloned().collect())
                .map_err(|e| format!("{shown}: not a readable PyTorch state dict: {e}"))?,
            #[cfg(not(feature = "pytorch"))]
            Some("pt" | "pth") => {
                return Err(format!(
                    "{shown}: reading PyTorch pickles needs funnel built with `--features pytorch` (off by default); or save the state dict as safetensors: `safetensors.torch.save_file(torch.load(\"{}\"), \"net.safetensors\")`",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ))
            }
            _ => {
                return Err(format!(
                    "{shown}: expected a .safetensors, .pt or .pth file"
                ))
            }
        };
        let layers = sequential_layers(&tensors).map_err(|e| format!("{shown}: {e}"))?;
        check_shapes(&tensors, &layers, mlp).map_err(|e| format!("{shown}: {e}"))?;
        // `<prefix><i>.weight` → `linears.<k>.weight`: burn-store's regex remapping
        let remapper = burn::store::KeyRemapper::from_patterns(
            layers
                .iter()
                .enumerate()
                .map(|(k, (prefix, i))| {
                    (
                        format!(r"^{}{i}\.(weight|bias)$", regex_escape(prefix)),
                        format!("linears.{k}.$1"),
                    )
                })
                .collect(),
        )
        .map_err(|e| format!("{shown}: cannot rename the tensors: {e}"))?;
        let (tensors, _) = remapper.remap(tensors);
        Ok(Weights {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// The file the weights came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tensors the file holds.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// `model` (of the config [`Weights::read`] checked against) with these parameters, on
    /// its own device. burn-store's `PyTorchToBurnAdapter` transposes each Linear weight to
    /// burn's `[d_in, d_out]`; `FloatCastAdapter` makes every tensor f32, as funnel computes.
    pub fn apply(&self, mut model: Mlp) -> Result<Mlp, String> {
        use burn::store::{FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter};
        let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(burn::tensor::DType::F32));
        let result = model.apply(self.tensors.clone(), None, Some(Box::new(adapter)), true);
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(format!(
                "{}: the tensors do not fit the network:\n{result}",
                self.path.display()
            ));
        }
        Ok(model)
    }
}

/// The Linear layers of a Sequential's state dict, in index order: (key prefix, index).
fn sequential_layers(tensors: &[PackTensor]) -> Result<Vec<(String, u64)>, String> {
    let mut layers: Vec<(String, u64)> = Vec::new();
    for t in tensors {
        let parsed = t
            .name
            .rsplit_once('.')
            .filter(|(_, param)| matches!(*param, "weight" | "bias"))
            .and_then(|(module, _)| {
                let digits =
                    module.len() - module.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                let (prefix, index) = module.split_at(module.len() - digits);
                let index = index.parse::<u64>().ok()?;
                (prefix.is_empty() || prefix.ends_with('.')).then(|| (prefix.to_string(), index))
            });
        let Some((prefix, index)) = parsed else {
            return Err(format!(
                "tensor `{}` is not the weight or bias of a Linear layer of an nn.Sequential (keys `0.weight`, `0.bias`, `2.weight`, …)",
                t.name
            ));
        };
        if let Some((other, _)) = layers.iter().find(|(p, _)| *p != prefix) {
            return Err(format!(
                "tensor `{}` and tensors under `{other}` belong to different modules; funnel reads one nn.Sequential of Linear layers",
                t.name
            ));
        }
        if !layers.contains(&(prefix.clone(), index)) {
            layers.push((prefix, index));
        }
    }
    if layers.is_empty() {
        return Err("holds no tensors".into());
    }
    layers.sort_by_key(|(_, i)| *i);
    Ok(layers)
}

/// Checks the layer count, the weights' and biases' shapes and dtypes against `mlp`, in
/// PyTorch's layout (weight `[d_out, d_in]`).
fn check_shapes(
    tensors: &[PackTensor],
    layers: &[(String, u64)],
    mlp: &MlpConfig,
) -> Result<(), String> {
    let dims = mlp.dims();
    let network = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" → ");
    let why = format!(
        "the network of the config is {network} ({} features, model.widths = {:?}, {} classes)",
        mlp.input_dim, mlp.widths, mlp.num_classes
    );
    if layers.len() != dims.len() - 1 {
        let keys: Vec<String> = layers
            .iter()
            .map(|(p, i)| format!("`{p}{i}.weight`"))
            .collect();
        return Err(format!(
            "holds {} Linear layers ({}), but {why}: {} Linear layers",
            layers.len(),
            keys.join(", "),
            dims.len() - 1
        ));
    }
    let find = |name: &str| tensors.iter().find(|t| t.name == name);
    for (k, (prefix, i)) in layers.iter().enumerate() {
        let (d_in, d_out) = (dims[k], dims[k + 1]);
        let weight = format!("{prefix}{i}.weight");
        let bias = format!("{prefix}{i}.bias");
        let Some(w) = find(&weight) else {
            return Err(format!(
                "tensor `{weight}` is missing (`{bias}` has no weight)"
            ));
        };
        let expected: [&[usize]; 2] = [&[d_out, d_in], &[d_out]];
        let b = find(&bias);
        match (b, mlp.bias) {
            (None, true) => {
                return Err(format!(
                    "tensor `{bias}` is missing: model.bias = true needs a bias in every layer (set model.bias = false for a network without biases)"
                ))
            }
            (Some(_), false) => {
                return Err(format!(
                    "tensor `{bias}` is a bias, but model.bias = false (set model.bias = true)"
                ))
            }
            _ => {}
        }
        for (t, want) in std::iter::once(w).chain(b).zip(expected) {
            if t.shape.as_slice() != want {
                return Err(format!(
                    "tensor `{}` has shape {:?}, but {why}: layer {} needs {want:?} (PyTorch's [out, in] for a weight)",
                    t.name,
                    t.shape.as_slice(),
                    k + 1
                ));
            }
            if !t.dtype.is_float() {
                return Err(format!(
                    "tensor `{}` holds {:?} values, not floats",
                    t.name, t.dtype
                ));
            }
        }
    }
    Ok(())
}

/// `text` with regex metacharacters escaped (key prefixes are dotted module paths).
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
