//! The run configuration: one TOML file, `--set key=value` overrides, validation that names the
//! offending key, and the resolved copy frozen into every run folder.

use std::path::{Path, PathBuf};

use funnel_metrics::MetricsSpec;
use funnel_model::{Activation, MlpConfig, Regularizer};
use funnel_train::{DataSpec, TrainSpec};
use serde::{Deserialize, Serialize};

use crate::backend::BackendName;
use crate::error::CliError;
use funnel_gibbs::{GibbsError, GibbsSpec};

/// Widest hidden layer funnel measures.
pub const MAX_WIDTH: usize = 16_384;

/// File extensions `model.weights` may have: a safetensors file, or a PyTorch pickle
/// (`torch.save(model.state_dict(), …)`).
pub const WEIGHTS_EXTENSIONS: [&str; 3] = ["safetensors", "pt", "pth"];

/// A whole run: data, model, training and measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Names the results folder `<out>/<name>/`; letters, digits, `.`, `_` and `-`.
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub backend: BackendName,
    /// Which adapter of the backend (wgpu only; `funnel devices` lists them); default: the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<usize>,
    pub data: DataSpec,
    pub model: ModelSpec,
    #[serde(default)]
    pub train: TrainSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
}

fn default_seed() -> u64 {
    0
}

/// `[model]`: the architecture; input width and class count come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Hidden widths; depth L = len + 1.
    pub widths: Vec<usize>,
    #[serde(default = "default_activation")]
    pub activation: Activation,
    #[serde(default = "default_bias")]
    pub bias: bool,
    #[serde(default)]
    pub regularizer: Regularizer,
    /// A PyTorch `state_dict` of an `nn.Sequential` of `Linear` layers (`.safetensors`, `.pt`
    /// or `.pth`; relative to the config file's folder) that replaces the seeded
    /// initialisation: measured as is with `train.epochs = 0`, fine-tuned otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

fn default_activation() -> Activation {
    Activation::Relu
}

fn default_bias() -> bool {
    true
}

impl ModelSpec {
    pub fn mlp(&self, input_dim: usize, num_classes: usize) -> MlpConfig {
        MlpConfig {
            input_dim,
            widths: self.widths.clone(),
            num_classes,
            activation: self.activation,
            bias: self.bias,
            regularizer: self.regularizer,
        }
    }

    /// Takes a relative `weights` path relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.weights.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }
}

/// Bad configuration: the message names the key (and the file position when known).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", path.display(), position(*line))]
    Syntax {
        path: PathBuf,
        line: Option<(usize, usize)>,
        message: String,
    },
    #[error("{}{}: `{key}`: {message}", path.display(), position(*line))]
    Invalid {
        path: PathBuf,
        key: String,
        line: Option<(usize, usize)>,
        message: String,
    },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
}

fn position(line: Option<(usize, usize)>) -> String {
    line.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default()
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where the value of a dotted key path (`train.lr`, `model.widths[1]`,
/// `model.regularizer.p`) starts in the config text, if the text sets it.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut current: Option<&DeValue>;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let (_, value) = table?.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        span = value.span();
        current = Some(value.get_ref());
        if let (Some(i), Some(DeValue::Array(items))) = (index, current) {
            let item = items.get(i)?;
            span = item.span();
            current = Some(item.get_ref());
        }
        table = match current {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    Some(line_col(text, span.start))
}

/// The text of a 1-based line, trimmed and cut to 80 characters, for messages.
fn line_text(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    (!l.is_empty()).then(|| l.chars().take(80).collect())
}

/// Applies `key.path=value` to a TOML table. The value is parsed as TOML (numbers, booleans,
/// arrays, inline tables, quoted strings) and taken as a plain string when it does not parse.
pub fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key=value, e.g. --set train.epochs=10".into()))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(format!("`{key}` is not a dotted key path")));
    }
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let mut cur = table;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| {
            bad(format!(
                "`{}` is a value, not a table",
                parts[..=i].join(".")
            ))
        })?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// The one TOML loader: parses `text` (the contents of `path`, which only appears in messages)
/// into `T`, after applying `--set` overrides. Errors name the file, the key and, when the value
/// comes from the file, its line and column. Configs, study files and `funnel gibbs` files all
/// enter here.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    overrides: &[String],
) -> Result<T, ConfigError> {
    let syntax = |e: toml::de::Error| {
        let line = e.span().map(|s| line_col(text, s.start));
        let mut message = e.message().trim().to_string();
        // e.g. `duplicate key` alone does not say which: show the line
        if let Some(l) = line.and_then(|(l, _)| line_text(text, l)) {
            message = format!("{message} (in `{l}`)");
        }
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        }
    };
    let invalid = |e: serde_path_to_error::Error<toml::de::Error>, spans: bool| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line: if spans {
                inner.span().map(|s| line_col(text, s.start))
            } else {
                None
            },
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: inner.message().trim().to_string(),
        }
    };
    if overrides.is_empty() {
        // straight from the text, so errors carry line and column
        let de = toml::de::Deserializer::parse(text).map_err(syntax)?;
        serde_path_to_error::deserialize(de).map_err(|e| invalid(e, true))
    } else {
        let mut table: toml::Table = text.parse().map_err(syntax)?;
        for arg in overrides {
            apply_override(&mut table, arg)?;
        }
        serde_path_to_error::deserialize(table).map_err(|e| invalid(e, false))
    }
}

/// Reads and parses a TOML file with [`parse_toml`] (no overrides).
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(&text, path, &[])
}

/// The file `funnel gibbs` reads.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GibbsFile {
    pub name: String,
    #[serde(default)]
    pub gibbs: GibbsSpec,
}

/// Reads and checks the file; errors name the file and the key.
pub fn load_gibbs(path: &Path) -> Result<GibbsFile, CliError> {
    let file = path.display();
    let parsed: GibbsFile = load_toml(path).map_err(CliError::input)?;
    if !valid_name(&parsed.name) {
        return Err(CliError::input(format!(
            "{file}: `name`: `{}` must be 1–100 letters, digits, `.`, `_` or `-`, not starting with `.` (it names a folder)",
            parsed.name
        )));
    }
    parsed.gibbs.validate().map_err(|e| match e {
        GibbsError::Invalid { .. } => CliError::input(format!("{file}: {e}")),
    })?;
    Ok(parsed)
}

/// Whether `name` can name a results folder: 1–100 letters, digits, `.`, `_` or `-`, not
/// starting with `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Config {
    /// Reads, overrides, deserializes and validates a config. Relative data paths are taken
    /// relative to the config file's folder.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(&text, path, overrides)
    }

    /// Everything [`Config::load`] does after reading the file: parses `text` (the contents of
    /// `path`), applies the overrides, resolves relative data paths against `path`'s folder and
    /// validates. The fuzz targets (`crate::fuzzing`) enter here.
    pub fn from_text(text: &str, path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut config = Self::parse(text, path, overrides)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        // absolute, so the config frozen into a run folder runs again from anywhere
        let base = std::path::absolute(&base).unwrap_or(base);
        config.data.resolve_paths(&base);
        config.model.resolve_paths(&base);
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                // the file's line, unless an override replaced the value
                line: overrides
                    .iter()
                    .all(|o| !key.starts_with(o.split('=').next().unwrap_or("").trim()))
                    .then(|| key_position(text, &key))
                    .flatten(),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Parses config text (`path` is only used in messages).
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        parse_toml(text, path, overrides)
    }

    /// Range checks across sections; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !valid_name(&self.name) {
            return Err((
                "name".into(),
                format!(
                    "`{}` must be 1–100 letters, digits, `.`, `_` or `-`, not starting with `.` (it names a folder)",
                    self.name
                ),
            ));
        }
        self.data.validate().map_err(|e| match e {
            funnel_train::DataError::Invalid { key, message } => (format!("data.{key}"), message),
            other => ("data".into(), other.to_string()),
        })?;
        if let Some(i) = self.model.widths.iter().position(|&w| w == 0) {
            return Err((
                format!("model.widths[{i}]"),
                "every width must be ≥ 1".into(),
            ));
        }
        if let Some(i) = self.model.widths.iter().position(|&w| w > MAX_WIDTH) {
            return Err((
                format!("model.widths[{i}]"),
                format!("at most {MAX_WIDTH} (every layer is measured, which costs min(points, width)³)"),
            ));
        }
        self.model
            .regularizer
            .validate()
            .map_err(|(k, m)| (format!("model.regularizer.{k}"), m))?;
        if let Some(p) = &self.model.weights {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !WEIGHTS_EXTENSIONS.contains(&ext) {
                return Err((
                    "model.weights".into(),
                    format!(
                        "`{}`: expected a PyTorch state dict, a .safetensors, .pt or .pth file",
                        p.display()
                    ),
                ));
            }
        }
        self.train.validate().map_err(|e| match e {
            funnel_train::TrainError::Invalid { key, message } => (format!("train.{key}"), message),
            other => ("train".into(), other.to_string()),
        })?;
        self.metrics
            .validate()
            .map_err(|(k, m)| (format!("metrics.{k}"), m))?;
        if self.train.algorithm == funnel_train::Algorithm::ClassMean {
            self.class_mean_applies()?;
        }
        Ok(())
    }

    /// `train.algorithm = "class_mean"` is defined for linear DNNs without stochastic layers on
    /// the (unstandardized) binary Gaussian mixture, whose closed forms the report shows.
    fn class_mean_applies(&self) -> Result<(), (String, String)> {
        let why = "train.algorithm = \"class_mean\" (DESIGN §2.7)";
        if self.data.label_noise() > 0.0 {
            return Err((
                "data.label_noise".into(),
                format!("{why}: the closed forms assume clean labels; set 0"),
            ));
        }
        match &self.data {
            funnel_train::DataSpec::Gaussian {
                standardize,
                test_shift,
                ..
            } => {
                if *test_shift != 0.0 {
                    return Err((
                        "data.test_shift".into(),
                        format!("{why}: the closed forms assume test data from the training distribution; set 0"),
                    ));
                }
                if *standardize {
                    return Err((
                        "data.standardize".into(),
                        format!("{why} needs the raw data: standardization fitted on the training split would make the weights depend on more than μ̂"),
                    ));
                }
            }
            other => {
                return Err((
                    "data.kind".into(),
                    format!(
                        "{why} needs kind = \"gaussian\" (the binary mixture), got \"{}\"",
                        other.kind()
                    ),
                ))
            }
        }
        if self.model.activation != Activation::Identity {
            return Err((
                "model.activation".into(),
                format!("{why} trains linear DNNs: set \"identity\""),
            ));
        }
        if self.model.regularizer != Regularizer::None {
            return Err((
                "model.regularizer".into(),
                format!("{why} sets weights in closed form without stochastic layers: set {{ kind = \"none\" }}"),
            ));
        }
        Ok(())
    }

    /// The resolved config as TOML, as frozen into the run folder (fails only for paths that
    /// are not valid UTF-8).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| format!("cannot write the resolved config: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped config (configs/, and the run configs of the studies under experiments/)
    /// parses and validates: a renamed key or an out-of-range value in one is caught here, not
    /// by a user. Data files are not read (MNIST's IDX files are not shipped).
    #[test]
    fn every_shipped_config_validates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = Vec::new();
        let mut stack = vec![root.join("configs"), root.join("experiments")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                let is_run_config = path.extension().is_some_and(|e| e == "toml")
                    && (path.starts_with(root.join("configs")) || name == "base.toml");
                if is_run_config {
                    if let Err(e) = Config::load(&path, &[]) {
                        panic!("{}: {e}", path.display());
                    }
                    checked.push(name);
                }
            }
        }
        assert!(checked.len() >= 10, "only {checked:?}");
    }

    const BASE: &str = r#"
name = "t"
seed = 3
[data]
kind = "gaussian"
dim = 4
n_train = 100
n_test = 100
mean_norm = 1.0
[model]
widths = [8, 4]
"#;

    fn parse(text: &str, over: &[&str]) -> Result<Config, ConfigError> {
        let over: Vec<String> = over.iter().map(|s| s.to_string()).collect();
        let c = Config::parse(text, Path::new("c.toml"), &over)?;
        c.validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: "c.toml".into(),
                key,
                line: None,
                message,
            })?;
        Ok(c)
    }

    #[test]
    fn defaults_fill_the_optional_sections() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.train, TrainSpec::default());
        assert_eq!(c.metrics, MetricsSpec::default());
        assert_eq!(c.model.activation, Activation::Relu);
        assert!(c.model.bias);
        assert_eq!(c.model.regularizer, Regularizer::None);
    }

    #[test]
    fn model_weights_is_a_state_dict_file_relative_to_the_config() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.model.weights, None);
        assert!(!c.to_toml().unwrap().contains("weights"));
        for ok in ["net.safetensors", "net.pt", "net.pth"] {
            let c = parse(BASE, &[&format!("model.weights=\"{ok}\"")]).unwrap();
            assert_eq!(c.model.weights.as_deref(), Some(Path::new(ok)));
        }
        let e = parse(BASE, &["model.weights=\"net.onnx\""]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "model.weights"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let text = format!("{BASE}weights = \"nets/a.safetensors\"\n");
        let c = Config::from_text(&text, &path, &[]).unwrap();
        assert_eq!(
            c.model.weights.unwrap(),
            std::path::absolute(dir.path())
                .unwrap()
                .join("nets/a.safetensors")
        );
    }

    #[test]
    fn the_resolved_config_round_trips() {
        let c = parse(BASE, &["model.regularizer={ kind = \"dropout\", p = 0.2 }"]).unwrap();
        let again = parse(&c.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn overrides_change_values_and_create_tables() {
        let c = parse(
            BASE,
            &[
                "train.epochs=7",
                "model.widths=[3,3,3]",
                "model.activation=tanh",
                "metrics.kl=gaussian",
                "seed=11",
            ],
        )
        .unwrap();
        assert_eq!(c.train.epochs, 7);
        assert_eq!(c.model.widths, vec![3, 3, 3]);
        assert_eq!(c.model.activation, Activation::Tanh);
        assert_eq!(c.seed, 11);
    }

    fn err(text: &str, over: &[&str]) -> String {
        parse(text, over).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        let e = err(&BASE.replace("widths", "widht"), &[]);
        assert!(e.contains("widht") && e.contains("model"), "{e}");
        assert!(e.contains("c.toml:"), "line number expected: {e}");
        let e = err(BASE, &["model.depth=3"]);
        assert!(e.contains("depth"), "{e}");
        let e = err(BASE, &["train.lr=-1"]);
        assert!(e.contains("train.lr"), "{e}");
        let e = err(BASE, &["train.epochs=\"ten\""]);
        assert!(e.contains("train.epochs"), "{e}");
        let e = err(BASE, &["model.widths=[4,0]"]);
        assert!(e.contains("model.widths[1]"), "{e}");
        let e = err(BASE, &["model.regularizer={ kind = \"dropout\", p = 1.5 }"]);
        assert!(e.contains("model.regularizer.p"), "{e}");
        let e = err(BASE, &["model.regularizer={ kind = \"dropout\", q = 0.5 }"]);
        assert!(e.contains("q"), "{e}");
        let e = err(BASE, &["data.kind=\"parquet\""]);
        assert!(e.contains("parquet"), "{e}");
        let e = err(BASE, &["name=\"../escape\""]);
        assert!(e.contains("`name`"), "{e}");
        let e = err(BASE, &["seed.x=1"]);
        assert!(e.contains("seed"), "{e}");
        let e = err("name = \n", &[]);
        assert!(e.contains("c.toml:1"), "{e}");
        let e = err(BASE, &["metrics.k=0"]);
        assert!(e.contains("metrics.k"), "{e}");
    }
}
