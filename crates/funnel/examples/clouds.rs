//! Writes a seeded Gaussian point cloud N(shift·1, I) as a float32 `.npy` file, for
//! `funnel estimate` benchmarks and `scripts/gpu-check.sh`.
//!
//! `cargo run --release --example clouds -- OUT.npy N D SHIFT SEED`

use std::io::Write;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        return Err("usage: clouds OUT.npy N D SHIFT SEED".into());
    }
    let (n, d): (usize, usize) = (args[1].parse()?, args[2].parse()?);
    let shift: f32 = args[3].parse()?;
    let mut rng = ChaCha8Rng::seed_from_u64(args[4].parse()?);
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(&args[0])?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for _ in 0..n * d {
        let z: f32 = StandardNormal.sample(&mut rng);
        f.write_all(&(z + shift).to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}
