//! `funnel merge`: combines sweep folders of one study (e.g. its shards) into one.

use std::fs;
use std::path::PathBuf;

use clap::Args;

use crate::error::{io_err, CliError};
use crate::results::write_atomic;
use crate::results::Status;
use crate::sweep::*;
use crate::term::{say, warn};

#[derive(Args)]
pub struct MergeArgs {
    /// The merged sweep folder (created, or completed when it holds the same study).
    pub out: PathBuf,
    /// Sweep folders of the same study (e.g. its shards).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
}

pub fn merge(args: &MergeArgs) -> Result<Status, CliError> {
    let mut metas = Vec::new();
    for d in &args.dirs {
        let m = read_meta(d).ok_or_else(|| {
            CliError::input(format!(
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
            return Err(CliError::input(format!(
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
    fs::create_dir_all(out.join("cells")).map_err(io_err("cannot create the merged folder"))?;
    let src = &args.dirs[0];
    for f in ["study.toml", "base.toml"] {
        if let Ok(b) = fs::read(src.join(f)) {
            write_atomic(&out.join(f), &b).map_err(io_err("cannot write the merged folder"))?;
        }
    }
    write_atomic(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&meta)
            .expect("serializable")
            .as_bytes(),
    )
    .map_err(io_err("cannot write sweep.json"))?;
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
            .map_err(io_err("cannot copy a cell"))?;
        let _ = fs::remove_dir_all(&target);
        fs::rename(&staging, &target).map_err(io_err("cannot move a cell"))?;
    }
    let aggregated = write_aggregates(out, &meta, &meta.cells)?;
    for w in &aggregated.warnings {
        warn(format_args!("{w}"));
    }
    for line in &aggregated.lines {
        say(format_args!("{line}"));
    }
    let status = aggregated.status;
    say(format_args!(
        "merged {} folders into {}",
        args.dirs.len(),
        out.display()
    ));
    Ok(status)
}

// ---------------------------------------------------------------- summary files
