//! A study file expanded: cells (axes × seeds), their resolved configs, the study's
//! fingerprint, shards, and the `[[figure]]`s.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{parse_toml, Config};
use crate::error::CliError;
use crate::figure_spec::FigureSpec;
use crate::results::sweep_dir::*;

/// The study file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    name: String,
    /// The base config, relative to the study file.
    base: PathBuf,
    seeds: Vec<u64>,
    /// Fixed overrides applied to every cell, `key=value` as for `--set`.
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    axes: toml::Table,
    /// The study's own figures (`[[figure]]`); without them the sweep draws its depth figures.
    #[serde(default)]
    figure: Vec<FigureSpec>,
}

/// The study, expanded and validated.
pub struct Study {
    pub name: String,
    pub base: PathBuf,
    pub cells: Vec<Cell>,
    pub fingerprint: String,
    pub figures: Vec<FigureSpec>,
    pub text: String,
    pub base_text: String,
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::input(e.to_string())
}

/// FNV-1a, 64 bits: a hash that is stable across Rust releases (unlike `DefaultHasher`).
pub fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// A value as shown in the CSV columns: strings unquoted, very large or small floats in
/// scientific notation (`1e30`, not thirty digits).
pub fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(x) if *x != 0.0 && !(1e-4..1e6).contains(&x.abs()) => format!("{x:e}"),
        other => other.to_string(),
    }
}

/// A value as a short folder-safe label.
pub fn label(v: &toml::Value) -> String {
    let raw = show(v);
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_string();
    s.chars().take(16).collect()
}

/// Parses `I/N` with 0 ≤ I < N.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard {s}: expected I/N with 0 ≤ I < N, e.g. --shard 0/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The cells of shard I/N: those with index % N == I. Every cell is in exactly one shard.
pub fn shard_cells(cells: &[Cell], shard: Option<(usize, usize)>) -> Vec<Cell> {
    cells
        .iter()
        .filter(|c| shard.is_none_or(|(i, n)| c.index % n == i))
        .cloned()
        .collect()
}

impl Study {
    /// Reads a study, expands its cells and validates every cell's config exactly as
    /// `funnel run` would (the error names the study key or the cell and config key).
    pub fn load(path: &Path) -> Result<Study, CliError> {
        let text = fs::read_to_string(path)
            .map_err(|e| input(format!("cannot read study {}: {e}", path.display())))?;
        let file: StudyFile = parse_toml(&text, path, &[]).map_err(input)?;
        let bad = |key: &str, msg: &str| input(format!("{}: `{key}`: {msg}", path.display()));
        if file.seeds.is_empty() {
            return Err(bad("seeds", "give at least one seed"));
        }
        let mut seen = file.seeds.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != file.seeds.len() {
            return Err(bad("seeds", "a seed is listed twice"));
        }
        check_figures(&file.figure, path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let base = std::path::absolute(dir.join(&file.base)).unwrap_or(dir.join(&file.base));
        let base_text = fs::read_to_string(&base)
            .map_err(|e| bad("base", &format!("cannot read {}: {e}", base.display())))?;

        // axes: depth and width first (the sugar), then the others sorted by key
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (k, v) in &file.axes {
            let key = format!("axes.{k}");
            let values = v
                .as_array()
                .ok_or_else(|| bad(&key, "an axis is an array of values"))?;
            if values.is_empty() {
                return Err(bad(&key, "an axis needs at least one value"));
            }
            if matches!(k.as_str(), "depth" | "width") {
                if values.iter().any(|v| v.as_integer().is_none_or(|x| x < 1)) {
                    return Err(bad(&key, "values must be integers ≥ 1"));
                }
            } else if matches!(k.as_str(), "name" | "seed") {
                return Err(bad(
                    &key,
                    "`name` and `seed` are set by the sweep (use `seeds`)",
                ));
            }
            axes.push((k.clone(), values.clone()));
        }
        let has = |k: &str| axes.iter().any(|(a, _)| a == k);
        if has("depth") != has("width") {
            return Err(bad(
                "axes",
                "`depth` and `width` go together: they build model.widths = [width; depth − 1]",
            ));
        }
        if has("depth") && has("model.widths") {
            return Err(bad(
                "axes.model.widths",
                "cannot be an axis together with the depth/width sugar",
            ));
        }
        let rank = |k: &str| match k {
            "depth" => 0,
            "width" => 1,
            _ => 2,
        };
        axes.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));

        // product, last axis fastest, seeds innermost
        let mut points: Vec<Vec<usize>> = vec![vec![]];
        for (_, values) in &axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    (0..values.len()).map(move |j| {
                        let mut q = p.clone();
                        q.push(j);
                        q
                    })
                })
                .collect();
        }
        let mut cells = Vec::new();
        for point in &points {
            let mut overrides = file.set.clone();
            let mut axis_cols = Vec::new();
            let mut labels = Vec::new();
            let (mut depth, mut width) = (None, None);
            for ((k, values), &j) in axes.iter().zip(point) {
                let v = &values[j];
                match k.as_str() {
                    "depth" => depth = v.as_integer().map(|x| x as usize),
                    "width" => width = v.as_integer().map(|x| x as usize),
                    _ => overrides.push(format!("{k}={v}")),
                }
                axis_cols.push((k.clone(), show(v)));
                labels.push(match k.as_str() {
                    "depth" => format!("d{}", label(v)),
                    "width" => format!("w{}", label(v)),
                    _ => label(v),
                });
            }
            if let (Some(d), Some(w)) = (depth, width) {
                overrides.push(format!("model.widths={:?}", vec![w; d - 1]));
            }
            for &seed in &file.seeds {
                let index = cells.len();
                let mut parts = vec![format!("c{index:04}")];
                parts.extend(labels.iter().filter(|l| !l.is_empty()).cloned());
                parts.push(format!("s{seed}"));
                let id = parts.join("-");
                let config = if labels.is_empty() {
                    "all".to_string()
                } else {
                    labels.join("-")
                };
                let mut ov = overrides.clone();
                ov.push(format!("name=\"{id}\""));
                ov.push(format!("seed={seed}"));
                let cfg = Config::load(&base, &ov)
                    .map_err(|e| input(format!("study {}: cell {id}: {e}", path.display())))?;
                let resolved = cfg.to_toml().map_err(CliError::input)?;
                let w = &cfg.model.widths;
                cells.push(Cell {
                    index,
                    id,
                    config,
                    seed,
                    axes: axis_cols.clone(),
                    overrides: ov,
                    depth: w.len() + 1,
                    width: width
                        .or_else(|| (!w.is_empty() && w.iter().all(|&x| x == w[0])).then(|| w[0])),
                    resolved,
                });
            }
        }
        let mut fp = String::new();
        for c in &cells {
            fp.push_str(&c.id);
            fp.push('\n');
            fp.push_str(&c.resolved);
            fp.push('\n');
        }
        let base_cfg = Config::load(&base, &file.set).map_err(input)?;
        Ok(Study {
            name: file.name.clone(),
            base,
            fingerprint: fnv1a(&fp),
            cells,
            figures: file.figure.clone(),
            text,
            base_text,
        })
        .and_then(|s| {
            // the study name names a folder, like a run's
            let mut c = base_cfg;
            c.name = s.name.clone();
            c.validate()
                .map_err(|(_, m)| bad("name", &m.replace("`", "")))?;
            Ok(s)
        })
    }
}

/// The name and `[[figure]]`s of the study a sweep folder belongs to: from its `sweep.json`, or
/// else from a `study.toml` beside its `summary.csv` (a study committed under `experiments/`);
/// `None` for a folder with neither. The name titles the sweep's figures.
pub fn study_of(dir: &Path) -> Result<Option<(String, Vec<FigureSpec>)>, CliError> {
    if let Some(meta) = read_meta(dir) {
        return Ok(Some((meta.name, meta.figures)));
    }
    let path = dir.join("study.toml");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    let file: StudyFile = parse_toml(&text, &path, &[]).map_err(input)?;
    check_figures(&file.figure, &path)?;
    Ok(Some((file.name, file.figure)))
}

/// Checks every `[[figure]]` of the study file at `path`; the error names the file and figure.
pub fn check_figures(figures: &[FigureSpec], path: &Path) -> Result<(), CliError> {
    for (i, f) in figures.iter().enumerate() {
        f.validate(i)
            .map_err(|m| input(format!("{}: {m}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_cells() {
        let cells: Vec<Cell> = (0..23)
            .map(|index| Cell {
                index,
                id: format!("c{index:04}"),
                config: String::new(),
                seed: 0,
                axes: vec![],
                overrides: vec![],
                depth: 1,
                width: None,
                resolved: String::new(),
            })
            .collect();
        for n in 1..=7 {
            let mut seen = vec![0; cells.len()];
            for i in 0..n {
                let s = shard_cells(&cells, Some((i, n)));
                assert!(s.len() == cells.len() / n || s.len() == cells.len() / n + 1);
                for c in s {
                    seen[c.index] += 1;
                }
            }
            assert!(seen.iter().all(|&k| k == 1), "n = {n}: {seen:?}");
        }
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn study_expands_in_order_with_depth_sugar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.toml"),
            "name = \"b\"\n[data]\nkind = \"gaussian\"\ndim = 4\nn_train = 100\nn_test = 100\nmean_norm = 1.0\n[model]\nwidths = [8]\n",
        )
        .unwrap();
        let study = dir.path().join("study.toml");
        std::fs::write(
            &study,
            "name = \"st\"\nbase = \"base.toml\"\nseeds = [1, 2]\nset = [\"train.epochs=2\"]\n[axes]\n\"model.activation\" = [\"identity\", \"relu\"]\ndepth = [1, 3]\nwidth = [16]\n",
        )
        .unwrap();
        let s = Study::load(&study).unwrap();
        let ids: Vec<&str> = s.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "c0000-d1-w16-identity-s1",
                "c0001-d1-w16-identity-s2",
                "c0002-d1-w16-relu-s1",
                "c0003-d1-w16-relu-s2",
                "c0004-d3-w16-identity-s1",
                "c0005-d3-w16-identity-s2",
                "c0006-d3-w16-relu-s1",
                "c0007-d3-w16-relu-s2",
            ]
        );
        assert_eq!(s.cells[4].depth, 3);
        assert!(s.cells[4].resolved.contains("epochs = 2"));
        assert!(s.cells[4]
            .overrides
            .contains(&"model.widths=[16, 16]".to_string()));
        assert!(s.cells[0]
            .overrides
            .contains(&"model.widths=[]".to_string()));
        assert_eq!(s.cells[2].config, "d1-w16-relu");
        // the same study twice: the same fingerprint; a change: another
        assert_eq!(Study::load(&study).unwrap().fingerprint, s.fingerprint);
        std::fs::write(
            &study,
            "name = \"st\"\nbase = \"base.toml\"\nseeds = [1, 3]\n[axes]\n\"model.activation\" = [\"identity\", \"relu\"]\ndepth = [1, 3]\nwidth = [16]\n",
        )
        .unwrap();
        assert_ne!(Study::load(&study).unwrap().fingerprint, s.fingerprint);
        // a bad value names the cell and the key
        std::fs::write(
            &study,
            "name = \"st\"\nbase = \"base.toml\"\nseeds = [1]\n[axes]\n\"model.activation\" = [\"relu\", \"nonsense\"]\n",
        )
        .unwrap();
        let Err(e) = Study::load(&study) else {
            panic!("a bad value is refused")
        };
        assert_eq!(e.kind, crate::error::Kind::Input);
        let msg = e.to_string();
        assert!(
            msg.contains("model.activation") && msg.contains("c0001"),
            "{msg}"
        );
    }
}
