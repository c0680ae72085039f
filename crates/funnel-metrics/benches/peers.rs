//! Funnel's estimators against their Python peers on identical seeded inputs.
//!
//! `cargo bench --workspace --bench peers [-- CASE...]` (cases: `exact`, `knn`, `sliced`, all
//! run by default, and `exact-large` (n = 5000 and 10 000), run only when named; `--repeat N` times each side N times and keeps the fastest). The inputs are
//! written as `.npy` files to a temporary folder and `benches/peers.py` times POT / scipy on
//! them; without `python3`, POT or scipy the peer columns are skipped with a note. Prints one
//! table row per case: times, their ratio, both values, their relative difference, the target
//! and PASS/MISS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::prelude::*;
use funnel_metrics::span::Coords;
use funnel_metrics::{kl, w1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `n × d` Gaussian cloud N(shift·1, I), seeded.
fn gaussian(n: usize, d: usize, shift: f64, seed: u64) -> Coords {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..n * d)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            shift + z
        })
        .collect();
    Coords::new(data, n, d)
}

/// Writes a row-major f64 matrix as a version-1.0 `.npy` file.
fn write_npy(path: &Path, c: &Coords) -> std::io::Result<()> {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        c.n, c.d
    );
    // magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in &c.data {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()
}

/// The fields of the peer's one-line JSON answer that the table needs.
struct Peer {
    seconds: f64,
    value: f64,
    /// Standard deviation of the per-direction 1-D W1s (sliced case).
    direction_sd: Option<f64>,
    note: Option<String>,
}

/// Pulls `"key": number` out of a flat JSON object (the peer prints nothing nested).
fn json_number(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line[at..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn run_peer(dir: &Path, case: &str, args: &[String], repeat: usize) -> Result<Peer, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers.py");
    let mut best: Option<Peer> = None;
    for _ in 0..repeat {
        let out = Command::new("python3")
            .arg(&script)
            .arg(case)
            .arg(dir.join("x.npy"))
            .arg(dir.join("y.npy"))
            .args(args)
            .output()
            .map_err(|e| format!("python3 not runnable: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "peer failed ({}): {} {}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let line = stdout.lines().last().unwrap_or_default();
        let peer = Peer {
            seconds: json_number(line, "seconds")
                .ok_or_else(|| format!("bad peer output {line}"))?,
            value: json_number(line, "value").ok_or_else(|| format!("bad peer output {line}"))?,
            direction_sd: json_number(line, "direction_sd"),
            note: line
                .find("\"warning\": \"")
                .map(|at| line[at + 12..].split('"').next().unwrap_or("").to_string()),
        };
        if best.as_ref().is_none_or(|b| peer.seconds < b.seconds) {
            best = Some(peer);
        }
    }
    Ok(best.expect("repeat ≥ 1"))
}

/// Times `f` `repeat` times; the fastest run and its value.
fn time<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best: Option<(f64, T)> = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let v = f();
        let s = t.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|b| s < b.0) {
            best = Some((s, v));
        }
    }
    best.expect("repeat ≥ 1")
}

/// Acceptance rule of a row: whether our value agrees with the peer's.
type Agree = Box<dyn Fn(f64, &Peer) -> bool>;

struct Row {
    case: &'static str,
    n: usize,
    d: usize,
    ours: f64,
    value: f64,
    peer: Result<Peer, String>,
    /// Largest acceptable time ratio ours / peer.
    max_ratio: f64,
    /// Acceptance rule for the values, and its text.
    agree: Agree,
    agree_text: String,
}
fn device() -> Device {
    Device::flex()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs bench binaries without `--bench`: do nothing there
        println!("peers: run with `cargo bench --workspace --bench peers`");
        return;
    }
    let mut repeat = 1;
    let mut cases: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--repeat" => repeat = it.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            other if !other.starts_with('-') => cases.push(other.to_string()),
            _ => {}
        }
    }
    let wanted = |c: &str| cases.iter().any(|w| w == c) || (cases.is_empty() && c != "exact-large");
    let dir: PathBuf = std::env::temp_dir().join(format!("funnel-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let python = Command::new("python3")
        .args(["-c", "import ot, scipy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !python {
        println!("note: python3 with POT and scipy not found: peer columns skipped");
    }
    let peer = |case: &str, extra: &[String]| -> Result<Peer, String> {
        if python {
            run_peer(&dir, case, extra, repeat)
        } else {
            Err("no python3 + POT + scipy".into())
        }
    };
    let save = |x: &Coords, y: &Coords| {
        write_npy(&dir.join("x.npy"), x).expect("write x.npy");
        write_npy(&dir.join("y.npy"), y).expect("write y.npy");
    };
    let mut rows: Vec<Row> = Vec::new();

    if wanted("exact") {
        for n in [2000, 4000] {
            let d = 32;
            let (x, y) = (gaussian(n, d, 0.0, 1), gaussian(n, d, 0.3, 2));
            save(&x, &y);
            let (ours, v) = time(repeat, || {
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                w1::exact(&x, &y, n, &mut rng).expect("exact W1").value
            });
            rows.push(Row {
                case: "exact W1 vs ot.emd2",
                n,
                d,
                ours,
                value: v,
                peer: peer("emd", &[]),
                max_ratio: 0.5,
                agree: Box::new(|v, p| (v - p.value).abs() <= 1e-6 * p.value.abs()),
                agree_text: "rel ≤ 1e-6".into(),
            });
        }
    }
    if wanted("exact-large") {
        // size and memory check above the peer comparison: n = 5000 against POT, 10 000 alone
        // (an 800 MB cost matrix; POT's simplex would take minutes)
        for n in [5000, 10_000] {
            let d = 32;
            let (x, y) = (gaussian(n, d, 0.0, 7), gaussian(n, d, 0.3, 8));
            save(&x, &y);
            let (ours, v) = time(repeat, || {
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                w1::exact(&x, &y, n, &mut rng).expect("exact W1").value
            });
            rows.push(Row {
                case: "exact W1 vs ot.emd2",
                n,
                d,
                ours,
                value: v,
                peer: if n <= 5000 {
                    peer("emd", &[])
                } else {
                    Err("peer not run at this size".into())
                },
                max_ratio: 0.5,
                agree: Box::new(|v, p| (v - p.value).abs() <= 1e-6 * p.value.abs()),
                agree_text: "rel ≤ 1e-6".into(),
            });
        }
    }
    let (n, d) = (10_000, 64);
    let needs_big = wanted("knn") || wanted("sliced");
    let (x, y) = if needs_big {
        let xy = (gaussian(n, d, 0.0, 3), gaussian(n, d, 0.2, 4));
        save(&xy.0, &xy.1);
        xy
    } else {
        (Coords::new(vec![], 0, d), Coords::new(vec![], 0, d))
    };
    let dev = device();
    if needs_big {
        // warm the backend up (first matmul) outside the timings
        let small = gaussian(600, d, 0.0, 5);
        let _ = kl::knn(&small, &small, 5, &dev);
    }
    if wanted("knn") {
        let k = 5;
        let (ours, v) = time(repeat, || kl::knn(&x, &y, k, &dev).expect("knn KL").value);
        rows.push(Row {
            case: "kNN KL (k=5) vs cKDTree",
            n,
            d,
            ours,
            value: v,
            peer: peer("knn", &[k.to_string()]),
            max_ratio: 0.2,
            agree: Box::new(|v, p| (v - p.value).abs() <= 1e-4 * p.value.abs()),
            agree_text: "rel ≤ 1e-4".into(),
        });
    }
    if wanted("sliced") {
        let dirs = 256;
        let (ours, v) = time(repeat, || {
            let mut rng = ChaCha8Rng::seed_from_u64(6);
            w1::sliced(&x, &y, dirs, &mut rng, &dev)
                .expect("sliced W1")
                .value
        });
        // independent random directions on the two sides: the difference of the two means has
        // standard deviation √2·sd/√K, sd the spread of single-direction W1s (from the peer)
        rows.push(Row {
            case: "sliced W1 (256 dirs) vs POT",
            n,
            d,
            ours,
            value: v,
            peer: peer("sliced", &[dirs.to_string(), "0".into()]),
            max_ratio: 0.2,
            agree: Box::new(move |v, p| {
                let se = p.direction_sd.unwrap_or(f64::INFINITY) * (2.0 / dirs as f64).sqrt();
                (v - p.value).abs() <= 3.0 * se
            }),
            agree_text: "|Δ| ≤ 3·√2·sd/√256".into(),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "{:<28} {:>6} {:>3} {:>9} {:>9} {:>6} {:>14} {:>14} {:>9}  {:<26} result",
        "case",
        "n",
        "d",
        "funnel s",
        "peer s",
        "ratio",
        "funnel value",
        "peer value",
        "rel diff",
        "target"
    );
    let mut all = true;
    for r in &rows {
        match &r.peer {
            Ok(p) => {
                let ratio = r.ours / p.seconds;
                let rel = (r.value - p.value).abs() / p.value.abs();
                let ok = ratio <= r.max_ratio && (r.agree)(r.value, p);
                all &= ok;
                println!(
                    "{:<28} {:>6} {:>3} {:>9.3} {:>9.3} {:>6.3} {:>14.9} {:>14.9} {:>9.2e}  {:<26} {}",
                    r.case,
                    r.n,
                    r.d,
                    r.ours,
                    p.seconds,
                    ratio,
                    r.value,
                    p.value,
                    rel,
                    format!("ratio ≤ {}, {}", r.max_ratio, r.agree_text),
                    if ok { "PASS" } else { "MISS" }
                );
                if let Some(sd) = p.direction_sd {
                    println!(
                        "{:<28} Monte Carlo: sd of one direction {sd:.4}, allowed |Δ| ≤ {:.4}",
                        "",
                        3.0 * sd * (2.0 / 256.0f64).sqrt()
                    );
                }
                if let Some(w) = &p.note {
                    println!("{:<28} peer warning: {w}", "");
                }
            }
            Err(e) => println!(
                "{:<28} {:>6} {:>3} {:>9.3} {:>9} {:>6} {:>14.9} {:>14}  skipped: {e}",
                r.case, r.n, r.d, r.ours, "-", "-", r.value, "-"
            ),
        }
    }
    println!(
        "\n{} (repeat = {repeat}: fastest of {repeat} runs per side; {} cores)",
        if all { "all PASS" } else { "some MISS" },
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );
}
