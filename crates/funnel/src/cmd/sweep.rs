//! `funnel sweep`: runs a study's cells as child processes (`--jobs` at a time), resumable
//! and shardable, then writes `summary.csv`, `aggregate.csv`, `rankings.csv` and the figures.

use std::collections::VecDeque;
use std::fs;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{io_err, CliError};
use crate::interrupt;
use crate::results::write_atomic;
use crate::results::Status;
use crate::sweep::*;
use crate::term::{say, warn};

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

pub fn sweep(args: &SweepArgs) -> Result<Status, CliError> {
    let start = Instant::now();
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(CliError::input)?;
    if args.jobs == 0 {
        return Err(CliError::input("--jobs must be ≥ 1"));
    }
    let study = Study::load(&args.study)?;
    let folder = match shard {
        None => study.name.clone(),
        Some((i, n)) => format!("{}-shard-{i}-of-{n}", study.name),
    };
    let dir = args.out.join(&folder);
    if let Some(meta) = read_meta(&dir) {
        if meta.fingerprint != study.fingerprint && !args.force {
            return Err(CliError::input(format!(
                "{} holds a different study (fingerprint {} ≠ {}): its cells would mix with this \
                 study's. Use another --out or name, or --force to reuse it (cells whose \
                 resolved config changed are rerun)",
                dir.display(),
                meta.fingerprint,
                study.fingerprint
            )));
        }
    } else if dir.join("cells").exists() && !args.force {
        return Err(CliError::input(format!(
            "{} has cells but no sweep.json; use --force to reuse it",
            dir.display()
        )));
    }
    // sweep.json before cells/, so a folder with cells always says which study they belong to
    fs::create_dir_all(&dir).map_err(io_err("cannot create the sweep folder"))?;
    write_atomic(&dir.join("study.toml"), study.text.as_bytes())
        .map_err(io_err("cannot write study.toml"))?;
    write_atomic(&dir.join("base.toml"), study.base_text.as_bytes())
        .map_err(io_err("cannot write base.toml"))?;
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
    .map_err(io_err("cannot write sweep.json"))?;
    fs::create_dir_all(dir.join("cells")).map_err(io_err("cannot create the sweep folder"))?;

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
    let exe = std::env::current_exe().map_err(io_err("cannot find the funnel binary"))?;
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
            pb.suspend(|| warn(format_args!("cell {} {}", o.id, o.message)));
        }
    }
    for w in workers {
        let _ = w.join();
    }
    pb.finish_and_clear();
    let aggregated = write_aggregates(&dir, &meta, &mine)?;
    for w in &aggregated.warnings {
        warn(format_args!("{w}"));
    }
    for line in &aggregated.lines {
        say(format_args!("{line}"));
    }
    let status = aggregated.status;
    if interrupt::interrupted() {
        let left = mine.iter().filter(|c| !cell_done(&dir, c)).count();
        return Err(CliError::interrupted(format!(
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
