//! `funnel sweep` and `funnel merge`: a study (a base config, axes over any config key, a list
//! of seeds) expanded into cells, each run as a child `funnel run` process, with resume,
//! shards and the aggregate files `summary.csv`, `aggregate.csv` and `rankings.csv`.
//!
//! Layout of a sweep folder `OUT/<name>/` (`OUT/<name>-shard-I-of-N/` for a shard):
//! `study.toml` (the study as written), `base.toml` (the base config as written),
//! `sweep.json` (fingerprint, shard, every cell of the study with its overrides), `cells/<id>/`
//! (the cell's run folder `cells/<id>/<run-id>/`, or `error.txt` when the child failed without
//! writing one), and the three CSV files.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::plots::FigureSpec;
use crate::report::{num, Status};
use crate::results::write_atomic;
use crate::run::say;
use crate::{interrupt, CliError};

#[derive(Args)]
pub struct SweepArgs {
    /// The study TOML: `name`, `base`, `seeds`, `[axes]`.
    pub study: PathBuf,
    /// The sweep folder is OUT/<name>/ (OUT/<name>-shard-I-of-N/ with --shard).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Cells run at the same time (each a child process).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run only the cells with index % N == I (0 ≤ I < N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Use a folder that holds a different study: cells whose resolved config changed are rerun.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The merged sweep folder (created, or completed when it holds the same study).
    pub out: PathBuf,
    /// Sweep folders of the same study (e.g. its shards).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

/// The study file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StudyFile {
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

/// One cell: a point of the axes' product and a seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    pub id: String,
    /// Configuration id: the cell id without index and seed (cells that differ only by seed
    /// share it).
    pub config: String,
    pub seed: u64,
    /// Axis key → value as shown in the CSV files, in column order.
    pub axes: Vec<(String, String)>,
    /// `--set` arguments of the child (name and seed included).
    pub overrides: Vec<String>,
    /// Number of weight layers L (hidden layers + 1).
    pub depth: usize,
    /// The `width` axis, or the common hidden width when all are equal.
    pub width: Option<usize>,
    /// The cell's resolved config (what `funnel run` freezes as config.toml).
    pub resolved: String,
}

#[derive(Serialize, Deserialize)]
struct SweepMeta {
    name: String,
    fingerprint: String,
    /// `I/N`, or absent for the whole study.
    shard: Option<String>,
    /// Every cell of the study (not only this shard's).
    cells: Vec<Cell>,
    /// The study's `[[figure]]`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    figures: Vec<FigureSpec>,
}

/// The study, expanded and validated.
pub struct Study {
    pub name: String,
    pub base: PathBuf,
    pub cells: Vec<Cell>,
    pub fingerprint: String,
    pub figures: Vec<FigureSpec>,
    text: String,
    base_text: String,
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::Input(e.to_string())
}

fn internal(what: &str) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError::Internal(format!("{what}: {e}"))
}

/// FNV-1a, 64 bits: a hash that is stable across Rust releases (unlike `DefaultHasher`).
fn fnv1a(text: &str) -> String {
    format!("{:016x}", funnel_core::seed::fnv1a(text.as_bytes()))
}

/// A value as shown in the CSV columns: strings unquoted, very large or small floats in
/// scientific notation (`1e30`, not thirty digits).
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(x) if *x != 0.0 && !(1e-4..1e6).contains(&x.abs()) => format!("{x:e}"),
        other => other.to_string(),
    }
}

/// A value as a short folder-safe label.
fn label(v: &toml::Value) -> String {
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
        let de = toml::de::Deserializer::parse(&text)
            .map_err(|e| input(format!("{}: {}", path.display(), e.message().trim())))?;
        let file: StudyFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            input(format!(
                "{}: `{key}`: {}",
                path.display(),
                e.into_inner().message().trim()
            ))
        })?;
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
                let resolved = cfg.to_toml().map_err(CliError::Input)?;
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

/// The finished run folder of a cell (one holding summary.json), if any.
fn cell_run(cell_dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(cell_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                && p.join("summary.json").is_file()
        })
        .collect();
    runs.sort();
    runs.pop()
}

/// Whether a cell is done: a finished run whose frozen config is the cell's.
fn cell_done(sweep: &Path, cell: &Cell) -> bool {
    cell_run(&sweep.join("cells").join(&cell.id)).is_some_and(|run| {
        fs::read_to_string(run.join("config.toml")).is_ok_and(|t| t == cell.resolved)
    })
}

struct Outcome {
    id: String,
    ok: bool,
    message: String,
    /// Stopped by an interrupt: neither done nor failed; the next sweep reruns it.
    interrupted: bool,
}

fn run_cell(exe: &Path, base: &Path, sweep: &Path, cell: &Cell) -> Outcome {
    let cells = sweep.join("cells");
    let dir = cells.join(&cell.id);
    // anything left from an interrupted or changed attempt goes
    let _ = fs::remove_dir_all(&dir);
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(base).arg("--out").arg(&cells);
    cmd.env(PARENT_ENV, std::process::id().to_string());
    for o in &cell.overrides {
        cmd.arg("--set").arg(o);
    }
    let out = cmd.output();
    let (code, stderr) = match out {
        Ok(o) => (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        ),
        Err(e) => (None, format!("cannot start {}: {e}", exe.display())),
    };
    if code != Some(0) && code != Some(3) && interrupt::interrupted() {
        // the child was interrupted with us (exit 130, or killed): no error.txt, nothing kept
        let _ = fs::remove_dir_all(&dir);
        return Outcome {
            id: cell.id.clone(),
            ok: false,
            message: "interrupted".into(),
            interrupted: true,
        };
    }
    match code {
        Some(0) => Outcome {
            id: cell.id.clone(),
            ok: true,
            message: String::new(),
            interrupted: false,
        },
        Some(3) => Outcome {
            id: cell.id.clone(),
            ok: false,
            message: "failed (see summary.json)".into(),
            interrupted: false,
        },
        _ => {
            let tail: String = {
                let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                lines[lines.len().saturating_sub(5)..].join(" | ")
            };
            let msg = format!(
                "child exited with {}: {tail}",
                code.map_or("a signal".to_string(), |c| format!("code {c}"))
            );
            let _ = fs::create_dir_all(&dir);
            let _ = write_atomic(&dir.join("error.txt"), msg.as_bytes());
            Outcome {
                id: cell.id.clone(),
                ok: false,
                message: msg,
                interrupted: false,
            }
        }
    }
}

/// Set on a cell's child process: the pid of the sweep that started it.
const PARENT_ENV: &str = "FUNNEL_SWEEP_PARENT";

/// In a cell's child: exits as soon as the sweep that started it is gone (e.g. `kill -9`),
/// so a rerun never races an orphan for the same cell folder. The orphan's staging folder is
/// left behind and deleted by the rerun. A watchdog thread polls the parent pid (std only; no
/// `prctl`).
pub fn die_with_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    #[cfg(not(unix))]
    let _ = parent;
    #[cfg(unix)]
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(137);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    });
}

/// The `[[figure]]`s of the study a sweep folder belongs to: from its `sweep.json`, or else
/// from a `study.toml` beside its `summary.csv` (a study committed under `experiments/`).
pub fn figure_specs(dir: &Path) -> Result<Vec<FigureSpec>, CliError> {
    if let Some(meta) = read_meta(dir) {
        return Ok(meta.figures);
    }
    let path = dir.join("study.toml");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let file: StudyFile = toml::from_str(&text)
        .map_err(|e| input(format!("{}: {}", path.display(), e.message().trim())))?;
    check_figures(&file.figure, &path)?;
    Ok(file.figure)
}

/// Checks every `[[figure]]` of the study file at `path`; the error names the file and figure.
fn check_figures(figures: &[FigureSpec], path: &Path) -> Result<(), CliError> {
    for (i, f) in figures.iter().enumerate() {
        f.validate(i)
            .map_err(|m| input(format!("{}: {m}", path.display())))?;
    }
    Ok(())
}

fn read_meta(dir: &Path) -> Option<SweepMeta> {
    serde_json::from_str(&fs::read_to_string(dir.join("sweep.json")).ok()?).ok()
}

pub fn sweep(args: &SweepArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(CliError::Input)?;
    if args.jobs == 0 {
        return Err(CliError::Input("--jobs must be ≥ 1".into()));
    }
    let study = Study::load(&args.study)?;
    let folder = match shard {
        None => study.name.clone(),
        Some((i, n)) => format!("{}-shard-{i}-of-{n}", study.name),
    };
    let dir = args.out.join(&folder);
    if let Some(meta) = read_meta(&dir) {
        if meta.fingerprint != study.fingerprint && !args.force {
            return Err(CliError::Input(format!(
                "{} holds a different study (fingerprint {} ≠ {}): its cells would mix with this \
                 study's. Use another --out or name, or --force to reuse it (cells whose \
                 resolved config changed are rerun)",
                dir.display(),
                meta.fingerprint,
                study.fingerprint
            )));
        }
    } else if dir.join("cells").exists() && !args.force {
        return Err(CliError::Input(format!(
            "{} has cells but no sweep.json; use --force to reuse it",
            dir.display()
        )));
    }
    // sweep.json before cells/, so a folder with cells always says which study they belong to
    fs::create_dir_all(&dir).map_err(internal("cannot create the sweep folder"))?;
    write_atomic(&dir.join("study.toml"), study.text.as_bytes())
        .map_err(internal("cannot write study.toml"))?;
    write_atomic(&dir.join("base.toml"), study.base_text.as_bytes())
        .map_err(internal("cannot write base.toml"))?;
    let meta = SweepMeta {
        name: study.name.clone(),
        fingerprint: study.fingerprint.clone(),
        shard: args.shard.clone(),
        cells: study.cells.clone(),
        figures: study.figures.clone(),
    };
    write_atomic(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(&meta)
            .expect("serializable")
            .as_bytes(),
    )
    .map_err(internal("cannot write sweep.json"))?;
    fs::create_dir_all(dir.join("cells")).map_err(internal("cannot create the sweep folder"))?;

    let mine = shard_cells(&study.cells, shard);
    let todo: Vec<Cell> = mine
        .iter()
        .filter(|c| !cell_done(&dir, c))
        .cloned()
        .collect();
    say(format_args!(
        "funnel sweep · {} · {} cells in the study, {} in this {}, {} done, {} to run · {} job(s) · {}",
        study.name,
        study.cells.len(),
        mine.len(),
        if shard.is_some() { "shard" } else { "folder" },
        mine.len() - todo.len(),
        todo.len(),
        args.jobs,
        dir.display()
    ));
    let exe = std::env::current_exe().map_err(internal("cannot find the funnel binary"))?;
    let pb = ProgressBar::new(todo.len() as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "cells {bar:30} {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    interrupt::defer_to_caller();
    let queue = Arc::new(Mutex::new(todo.into_iter().collect::<VecDeque<Cell>>()));
    let (tx, rx) = mpsc::channel::<Outcome>();
    let mut workers = Vec::new();
    for _ in 0..args.jobs {
        let queue = Arc::clone(&queue);
        let tx = tx.clone();
        let (exe, base, dir) = (exe.clone(), study.base.clone(), dir.clone());
        workers.push(std::thread::spawn(move || loop {
            if interrupt::interrupted() {
                break;
            }
            let next = queue.lock().expect("queue").pop_front();
            let Some(cell) = next else { break };
            if tx.send(run_cell(&exe, &base, &dir, &cell)).is_err() {
                break;
            }
        }));
    }
    drop(tx);
    let mut stopped = 0usize;
    for o in rx {
        if o.interrupted {
            stopped += 1;
            continue;
        }
        pb.inc(1);
        if o.ok {
            pb.set_message(o.id.clone());
        } else {
            pb.suspend(|| eprintln!("cell {} {}", o.id, o.message));
        }
    }
    for w in workers {
        let _ = w.join();
    }
    pb.finish_and_clear();
    let status = write_aggregates(&dir, &meta, &mine)?;
    if interrupt::interrupted() {
        let left = mine.iter().filter(|c| !cell_done(&dir, c)).count();
        return Err(CliError::Interrupted(format!(
            "{} stopped; {left} cell(s) not done ({stopped} were running); the summary covers the finished cells; rerun the same command to resume",
            dir.display()
        )));
    }
    say(format_args!(
        "sweep {} in {:.1} s: {}",
        study.name,
        start.elapsed().as_secs_f64(),
        dir.display()
    ));
    Ok(status)
}

/// Copies a folder recursively.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // staging folders and temporary files
        }
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(&name))?;
        } else {
            fs::copy(&p, to.join(&name))?;
        }
    }
    Ok(())
}

pub fn merge(args: &MergeArgs) -> Result<Status, CliError> {
    let mut metas = Vec::new();
    for d in &args.dirs {
        let m = read_meta(d).ok_or_else(|| {
            CliError::Input(format!(
                "{} is not a sweep folder (no sweep.json)",
                d.display()
            ))
        })?;
        metas.push((d.clone(), m));
    }
    if let Some(existing) = read_meta(&args.out) {
        metas.insert(0, (args.out.clone(), existing));
    }
    let first = &metas[0].1;
    for (d, m) in &metas[1..] {
        if m.fingerprint != first.fingerprint {
            return Err(CliError::Input(format!(
                "{} holds a different study than {} (fingerprint {} ≠ {})",
                d.display(),
                metas[0].0.display(),
                m.fingerprint,
                first.fingerprint
            )));
        }
    }
    let meta = SweepMeta {
        name: first.name.clone(),
        fingerprint: first.fingerprint.clone(),
        shard: None,
        cells: first.cells.clone(),
        figures: first.figures.clone(),
    };
    let out = &args.out;
    fs::create_dir_all(out.join("cells")).map_err(internal("cannot create the merged folder"))?;
    let src = &args.dirs[0];
    for f in ["study.toml", "base.toml"] {
        if let Ok(b) = fs::read(src.join(f)) {
            write_atomic(&out.join(f), &b).map_err(internal("cannot write the merged folder"))?;
        }
    }
    write_atomic(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&meta)
            .expect("serializable")
            .as_bytes(),
    )
    .map_err(internal("cannot write sweep.json"))?;
    for cell in &meta.cells {
        let target = out.join("cells").join(&cell.id);
        if cell_done(out, cell) {
            continue;
        }
        // a finished run first, else an error record
        let from = args.dirs.iter().find(|d| cell_done(d, cell)).or_else(|| {
            args.dirs
                .iter()
                .find(|d| d.join("cells").join(&cell.id).join("error.txt").is_file())
        });
        let Some(from) = from else { continue };
        let staging = out.join("cells").join(format!(".{}.partial", cell.id));
        let _ = fs::remove_dir_all(&staging);
        copy_dir(&from.join("cells").join(&cell.id), &staging)
            .map_err(internal("cannot copy a cell"))?;
        let _ = fs::remove_dir_all(&target);
        fs::rename(&staging, &target).map_err(internal("cannot move a cell"))?;
    }
    let status = write_aggregates(out, &meta, &meta.cells)?;
    say(format_args!(
        "merged {} folders into {}",
        args.dirs.len(),
        out.display()
    ));
    Ok(status)
}

// ---------------------------------------------------------------- summary files

/// One row of summary.csv.
pub struct Row {
    pub cell: Cell,
    pub status: String,
    pub reason: String,
    /// metric name → value (NaN when absent).
    pub values: BTreeMap<String, f64>,
}

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(x) => cur = x,
            None => return f64::NAN,
        }
    }
    cur.as_f64().unwrap_or(f64::NAN)
}

/// The row of one cell, or None when it has not run.
fn read_row(sweep: &Path, cell: &Cell) -> Option<Row> {
    let cdir = sweep.join("cells").join(&cell.id);
    let mut values = BTreeMap::new();
    if let Some(run) = cell_run(&cdir) {
        let s: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(run.join("summary.json")).ok()?).ok()?;
        let status = s["status"].as_str().unwrap_or("failed").to_string();
        let reason = s["reason"].as_str().unwrap_or("").to_string();
        values.insert("gap_zero_one".into(), f(&s, &["gap", "zero_one"]));
        values.insert("gap_cross_entropy".into(), f(&s, &["gap", "cross_entropy"]));
        values.insert(
            "gap_ce_clipped".into(),
            f(&s, &["gap", "cross_entropy_clipped"]),
        );
        let layers = s["layers"].as_array().cloned().unwrap_or_default();
        let (mut klmin, mut kllayer, mut w1min) = (f64::NAN, f64::NAN, f64::NAN);
        for (i, l) in layers.iter().enumerate() {
            let kb = f(l, &["kl_bound"]);
            let wb = f(l, &["w1_bound"]);
            let kl_resolved = l["kl"]["resolved"].as_bool().unwrap_or(false);
            let w1_resolved = l["w1"]["resolved"].as_bool().unwrap_or(false);
            values.insert(
                format!("kl_resolved_l{i}"),
                f64::from(u8::from(kl_resolved)),
            );
            values.insert(
                format!("w1_resolved_l{i}"),
                f64::from(u8::from(w1_resolved)),
            );
            // the debiased divergence: label term + (value − null mean)
            values.insert(
                format!("kl_debiased_l{i}"),
                f(l, &["kl", "label_term"]) + f(l, &["kl", "excess"]),
            );
            // the headline minima are over resolved layers only (never an unresolved bound)
            if kl_resolved && kb.is_finite() && !(kb >= klmin) {
                klmin = kb;
                kllayer = i as f64;
            }
            if w1_resolved && wb.is_finite() && !(wb >= w1min) {
                w1min = wb;
            }
            values.insert(format!("kl_bound_l{i}"), kb);
            values.insert(format!("w1_bound_l{i}"), wb);
            for (prefix, path) in LAYER_FIELDS {
                values.insert(format!("{prefix}{i}"), f(l, path));
            }
        }
        // the last layer (the logits) under names that do not depend on the depth
        if let Some(last) = layers.last() {
            for (name, path) in LAST_FIELDS {
                values.insert(format!("{name}_last"), f(last, path));
            }
        }
        // class-mean linear DNNs: the closed forms of every layer (DESIGN §2.7)
        if let Some(lg) = s["linear_gaussian"]["layers"].as_array() {
            for (i, l) in lg.iter().enumerate() {
                for (prefix, key) in CLOSED_FIELDS {
                    values.insert(format!("{prefix}{i}"), f(l, &[key]));
                }
            }
        }
        values.insert("kl_bound_min".into(), klmin);
        values.insert("kl_bound_min_layer".into(), kllayer);
        values.insert("w1_bound_min".into(), w1min);
        values.insert("funnel_layer".into(), f(&s, &["funnel_layer"]));
        values.insert(
            "funnel_layer_local".into(),
            f(&s, &["bounds", "w1", "layer_local"]),
        );
        values.insert(
            "w1_min_layer".into(),
            f(&s, &["bounds", "w1", "w1_min_layer"]),
        );
        // dims = input, hidden widths…, classes
        let hidden = s["model"]["dims"]
            .as_array()
            .map_or(f64::NAN, |d| d.len().saturating_sub(2) as f64);
        values.insert("hidden_layers".into(), hidden);
        values.insert("parameters".into(), f(&s, &["model", "parameters"]));
        values.insert(
            "train_zero_one".into(),
            f(&s, &["losses", "train", "zero_one"]),
        );
        values.insert(
            "test_zero_one".into(),
            f(&s, &["losses", "test", "zero_one"]),
        );
        values.insert("train_s".into(), f(&s, &["timings", "train_s"]));
        values.insert("total_s".into(), f(&s, &["timings", "total_s"]));
        Some(Row {
            cell: cell.clone(),
            status,
            reason,
            values,
        })
    } else if let Ok(msg) = fs::read_to_string(cdir.join("error.txt")) {
        Some(Row {
            cell: cell.clone(),
            status: "error".into(),
            reason: msg,
            values,
        })
    } else {
        None
    }
}

const HEAD: [&str; 9] = [
    "gap_zero_one",
    "gap_cross_entropy",
    "gap_ce_clipped",
    "kl_bound_min",
    "kl_bound_min_layer",
    "w1_bound_min",
    "funnel_layer",
    "funnel_layer_local",
    "w1_min_layer",
];

/// Per-layer columns of `summary.csv` beyond the two bounds: `<prefix><layer>` ← the field
/// of the layer's entry in `summary.json`.
const LAYER_FIELDS: [(&str, &[&str]); 19] = [
    ("kl_l", &["kl", "value"]),
    ("w1_l", &["w1", "value"]),
    ("kl_null_l", &["kl", "null"]),
    ("w1_null_l", &["w1", "null"]),
    ("kl_excess_l", &["kl", "excess"]),
    ("w1_excess_l", &["w1", "excess"]),
    ("kl_p_l", &["kl", "p_value"]),
    ("w1_p_l", &["w1", "p_value"]),
    ("kl_hi_l", &["kl", "hi"]),
    ("w1_hi_l", &["w1", "hi"]),
    ("kl_label_l", &["kl", "label_term"]),
    ("rank_l", &["rank"]),
    ("lipschitz_l", &["lipschitz"]),
    ("eta_l", &["eta"]),
    ("eta_product_l", &["eta_product"]),
    ("kl_ratio_l", &["kl_ratio"]),
    ("kl_contracted_bound_l", &["kl_contracted_bound"]),
    ("w1_bound_local_l", &["w1_bound_local"]),
    ("lipschitz_local_l", &["lipschitz_local"]),
];

/// `<name>_last` columns: fields of the last layer (the logits).
const LAST_FIELDS: [(&str, &[&str]); 6] = [
    ("kl", &["kl", "value"]),
    ("kl_bound", &["kl_bound"]),
    ("w1_bound", &["w1_bound"]),
    ("eta_product", &["eta_product"]),
    ("kl_contracted_bound", &["kl_contracted_bound"]),
    ("w1_bound_local", &["w1_bound_local"]),
];

/// Per-layer closed-form columns of class-mean runs: `<prefix><layer>` ← the field of
/// `linear_gaussian.layers[layer]` in `summary.json`.
const CLOSED_FIELDS: [(&str, &str); 7] = [
    ("closed_rank_l", "rank"),
    ("frobenius_l", "frobenius"),
    ("kl_closed_l", "kl_per_run"),
    ("kl_expected_l", "kl_expected"),
    ("kl_bound_expected_l", "kl_bound_expected"),
    ("w2_closed_l", "w2_per_run"),
    ("w2_expected_l", "w2_expected"),
];

/// Columns after the per-layer ones.
const TAIL: [&str; 5] = [
    "hidden_layers",
    "parameters",
    "train_zero_one",
    "test_zero_one",
    "train_s",
];

/// Metric columns in order, for cells with at most `layers` layers (0..layers).
fn metric_columns(layers: usize) -> Vec<String> {
    let mut cols: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
    cols.extend(LAST_FIELDS.iter().map(|(n, _)| format!("{n}_last")));
    let prefixes = [
        "kl_bound_l",
        "w1_bound_l",
        "kl_resolved_l",
        "w1_resolved_l",
        "kl_debiased_l",
    ]
    .into_iter()
    .chain(LAYER_FIELDS.iter().map(|(p, _)| *p))
    .chain(CLOSED_FIELDS.iter().map(|(p, _)| *p));
    for prefix in prefixes {
        cols.extend((0..layers).map(|i| format!("{prefix}{i}")));
    }
    cols.extend(TAIL.iter().map(|s| s.to_string()));
    cols.push("total_s".into());
    cols
}

fn cell_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).expect("in memory");
    for r in rows {
        w.write_record(r).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// Kendall's τ-b between two equally long samples (pairs with a NaN are dropped); NaN with
/// fewer than two pairs or when one side is constant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|(&a, &b)| (a, b))
        .collect();
    let (mut c, mut d, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..pairs.len() {
        for j in i + 1..pairs.len() {
            let dx =
                (pairs[i].0 - pairs[j].0).signum() * ((pairs[i].0 != pairs[j].0) as i32 as f64);
            let dy =
                (pairs[i].1 - pairs[j].1).signum() * ((pairs[i].1 != pairs[j].1) as i32 as f64);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => tx += 1.0,
                (false, true) => ty += 1.0,
                (false, false) => {
                    if dx * dy > 0.0 {
                        c += 1.0
                    } else {
                        d += 1.0
                    }
                }
            }
        }
    }
    let denom = ((c + d + tx) * (c + d + ty)).sqrt();
    if denom > 0.0 {
        (c - d) / denom
    } else {
        f64::NAN
    }
}

/// Mean and sample standard deviation of the finite values (sd NaN for fewer than two).
/// The Student-t interval of the mean over the finite values (NaN with fewer than 2).
pub fn seed_interval(v: &[f64], confidence: f64) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let xs: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.len() < 2 {
        return (f64::NAN, f64::NAN);
    }
    let (mean, sd) = mean_std(&xs);
    let t = StudentsT::new(0.0, 1.0, (xs.len() - 1) as f64)
        .map(|d| d.inverse_cdf((1.0 + confidence) / 2.0))
        .unwrap_or(f64::NAN);
    let half = t * sd / (xs.len() as f64).sqrt();
    (mean - half, mean + half)
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        f64::NAN
    };
    (m, s)
}

/// Writes summary.csv, aggregate.csv and rankings.csv for `cells` of a sweep folder, prints the
/// rankings; Failed when a cell failed.
fn write_aggregates(dir: &Path, meta: &SweepMeta, cells: &[Cell]) -> Result<Status, CliError> {
    let rows: Vec<Row> = cells.iter().filter_map(|c| read_row(dir, c)).collect();
    let layers = rows.iter().map(|r| r.cell.depth + 1).max().unwrap_or(0);
    let metrics = metric_columns(layers);
    let axis_keys: Vec<String> = meta
        .cells
        .first()
        .map(|c| {
            c.axes
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "depth" && k != "width")
                .collect()
        })
        .unwrap_or_default();
    let fmt_axes = |c: &Cell| -> Vec<String> {
        let mut v = vec![
            c.seed.to_string(),
            c.depth.to_string(),
            c.width.map(|w| w.to_string()).unwrap_or_default(),
        ];
        for k in &axis_keys {
            let val = c
                .axes
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            v.push(val);
        }
        v
    };
    // summary.csv
    let mut header: Vec<String> = ["cell", "status", "reason", "seed", "depth", "width"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(axis_keys.iter().cloned());
    header.extend(metrics.iter().cloned());
    let value = |r: &Row, m: &str| r.values.get(m).copied().unwrap_or(f64::NAN);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![r.cell.id.clone(), r.status.clone(), r.reason.clone()];
            v.extend(fmt_axes(&r.cell));
            v.extend(metrics.iter().map(|m| cell_text(value(r, m))));
            v
        })
        .collect();
    let summary_csv = csv_bytes(&header, &table);
    write_atomic(&dir.join("summary.csv"), &summary_csv)
        .map_err(internal("cannot write summary.csv"))?;

    // aggregate.csv: per configuration, over seeds (ok cells only)
    let mut groups: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in &rows {
        match groups.iter_mut().find(|(k, _)| *k == r.cell.config) {
            Some((_, g)) => g.push(r),
            None => groups.push((r.cell.config.clone(), vec![r])),
        }
    }
    let mut aheader: Vec<String> = ["config", "depth", "width"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    aheader.extend(axis_keys.iter().cloned());
    aheader.extend(["n_ok", "n_failed"].iter().map(|s| s.to_string()));
    for m in &metrics {
        aheader.push(format!("{m}_mean"));
        aheader.push(format!("{m}_std"));
        aheader.push(format!("{m}_lo"));
        aheader.push(format!("{m}_hi"));
    }
    // the bound on the expected gap from the seeds' mean debiased divergence (DESIGN §2.3):
    // sqrt(D^hi/2) with D^hi the upper end of the across-seed interval of the mean
    let layer_count = metrics
        .iter()
        .filter(|m| m.starts_with("kl_debiased_l"))
        .count();
    for i in 0..layer_count {
        aheader.push(format!("kl_bound_seeds_l{i}"));
    }
    aheader.push("kl_bound_seeds_min".into());
    aheader.push("kl_bound_seeds_min_layer".into());
    let atable: Vec<Vec<String>> = groups
        .iter()
        .map(|(k, g)| {
            let ok: Vec<&&Row> = g.iter().filter(|r| r.status == "ok").collect();
            let mut v = vec![k.clone()];
            v.extend(fmt_axes(&g[0].cell).into_iter().skip(1));
            v.push(ok.len().to_string());
            v.push((g.len() - ok.len()).to_string());
            let mut seed_bounds = Vec::new();
            for m in &metrics {
                let xs: Vec<f64> = ok.iter().map(|r| value(r, m)).collect();
                let (mean, std) = mean_std(&xs);
                let (lo, hi) = seed_interval(&xs, 0.95);
                v.push(cell_text(mean));
                v.push(cell_text(std));
                v.push(cell_text(lo));
                v.push(cell_text(hi));
                if m.starts_with("kl_debiased_l") {
                    // resolved across seeds when the interval lies above 0
                    let b = if hi > 0.0 {
                        (hi / 2.0).sqrt()
                    } else {
                        f64::NAN
                    };
                    seed_bounds.push((b, lo > 0.0));
                }
            }
            for (b, _) in &seed_bounds {
                v.push(cell_text(*b));
            }
            let best = seed_bounds
                .iter()
                .enumerate()
                .filter(|(_, (b, resolved))| *resolved && b.is_finite())
                .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
            v.push(cell_text(best.map_or(f64::NAN, |(_, (b, _))| *b)));
            v.push(cell_text(best.map_or(f64::NAN, |(i, _)| i as f64)));
            v
        })
        .collect();
    write_atomic(&dir.join("aggregate.csv"), &csv_bytes(&aheader, &atable))
        .map_err(internal("cannot write aggregate.csv"))?;

    // rankings.csv: τ-b of each measure with each gap, over ok cells
    let ok: Vec<&Row> = rows.iter().filter(|r| r.status == "ok").collect();
    let gaps = ["gap_zero_one", "gap_cross_entropy", "gap_ce_clipped"];
    let measures: Vec<&String> = metrics
        .iter()
        .filter(|m| {
            m.starts_with("kl_bound_l")
                || m.starts_with("w1_bound_l")
                || m.starts_with("kl_l")
                || m.starts_with("w1_l")
                || *m == "kl_bound_min"
                || *m == "w1_bound_min"
        })
        .collect();
    let mut rtable = Vec::new();
    for m in &measures {
        let x: Vec<f64> = ok.iter().map(|r| value(r, m)).collect();
        for g in gaps {
            let y: Vec<f64> = ok.iter().map(|r| value(r, g)).collect();
            let n = x
                .iter()
                .zip(&y)
                .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                .count();
            rtable.push(vec![
                m.to_string(),
                g.to_string(),
                cell_text(kendall_tau_b(&x, &y)),
                n.to_string(),
            ]);
        }
    }
    let rheader: Vec<String> = ["measure", "gap", "tau_b", "cells"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    write_atomic(&dir.join("rankings.csv"), &csv_bytes(&rheader, &rtable))
        .map_err(internal("cannot write rankings.csv"))?;
    // the sweep figures (as `funnel report DIR` draws them); a drawing failure loses no data
    let figures = if meta.figures.is_empty() {
        crate::plots::sweep_figures(&summary_csv, &meta.name)
    } else {
        crate::plots::study_figures(&summary_csv, &meta.figures, &meta.name)
    };
    match figures {
        Ok(figures) => {
            for fig in &figures {
                for (path, bytes) in fig.files() {
                    write_atomic(&dir.join(&path), bytes)
                        .map_err(internal("cannot write the sweep figures"))?;
                }
            }
        }
        Err(e) => eprintln!("note: sweep figures not drawn: {e}"),
    }

    let failed = rows.iter().filter(|r| r.status != "ok").count();
    let missing = cells.len() - rows.len();
    say(format_args!(
        "{} cells: {} ok, {} failed{}",
        cells.len(),
        ok.len(),
        failed,
        if missing > 0 {
            format!(", {missing} not run")
        } else {
            String::new()
        }
    ));
    for r in rows.iter().filter(|r| r.status != "ok") {
        say(format_args!(
            "  {} {}: {}",
            r.cell.id,
            r.status,
            r.reason.trim()
        ));
    }
    say(format_args!(
        "Kendall τ-b with the measured gap over {} completed cells:",
        ok.len()
    ));
    for row in rtable.iter().filter(|r| {
        (r[0] == "kl_bound_min" && r[1] == "gap_zero_one")
            || (r[0] == "w1_bound_min" && r[1] == "gap_ce_clipped")
            || (r[0].starts_with("kl_bound_l") && r[1] == "gap_zero_one")
            || (r[0].starts_with("w1_bound_l") && r[1] == "gap_ce_clipped")
    }) {
        let t: f64 = row[2].parse().unwrap_or(f64::NAN);
        say(format_args!(
            "  {:<14} vs {:<15} τ = {:>6}  ({} cells)",
            row[0],
            row[1],
            num(t),
            row[3]
        ));
    }
    Ok(if failed > 0 {
        Status::Failed
    } else {
        Status::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_b_hand_example() {
        // x = 1 2 3 4, y = 1 3 2 4: pairs (6): one discordant (2,3), five concordant:
        // τ = (5 − 1)/6
        let t = kendall_tau_b(&[1., 2., 3., 4.], &[1., 3., 2., 4.]);
        assert!((t - 4.0 / 6.0).abs() < 1e-12, "{t}");
        // ties: x = 1 1 2 3, y = 1 2 2 3. Pairs: (1,2) tie in x only; (1,3) C; (1,4) C;
        // (2,3) tie in y only; (2,4) C; (3,4) C → C = 4, D = 0, tx = 1, ty = 1:
        // τ_b = 4 / sqrt((4 + 1)(4 + 1)) = 0.8 (scipy.stats.kendalltau agrees)
        let t = kendall_tau_b(&[1., 1., 2., 3.], &[1., 2., 2., 3.]);
        assert!((t - 0.8).abs() < 1e-12, "{t}");
        // reversed order: −1; constant side: NaN; NaN pairs dropped
        assert!((kendall_tau_b(&[1., 2., 3.], &[3., 2., 1.]) + 1.0).abs() < 1e-12);
        assert!(kendall_tau_b(&[1., 1., 1.], &[1., 2., 3.]).is_nan());
        let t = kendall_tau_b(&[1., f64::NAN, 2., 3.], &[1., 5., 3., 2.]);
        assert!((t - 1.0 / 3.0).abs() < 1e-12, "{t}");
    }

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
        let Err(CliError::Input(msg)) = Study::load(&study) else {
            panic!("a bad value is refused")
        };
        assert!(
            msg.contains("model.activation") && msg.contains("c0001"),
            "{msg}"
        );
    }
}
