//! Hashes for seeds: FNV-1a (64-bit) over bytes, the SplitMix64 finaliser, and [`derive_seed`],
//! which combines them into one seed per named random stream.

/// FNV-1a, 64-bit: offset basis `0xcbf29ce484222325`, prime `0x100000001b3`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finaliser: a bijective mixing of 64 bits (the golden-ratio increment, then the
/// two xor-shift-multiply rounds and a final xor-shift of Steele, Lea and Flood's SplitMix64).
pub fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Derives an independent, reproducible seed for one random stream (data, init, shuffling,
/// capture, the permutation null, …) from the run's seed, so that adding a stream never shifts
/// another. SplitMix64 finaliser over the seed and an FNV-1a hash of the stream's name (rotated
/// left by 17 bits).
pub fn derive_seed(seed: u64, stream: &str) -> u64 {
    splitmix64(seed ^ fnv1a(stream.as_bytes()).rotate_left(17))
}

#[cfg(test)]
mod tests {
    use super::{derive_seed, fnv1a, splitmix64};

    /// Outputs of `derive_seed` as it stood in `funnel-model` before it moved here (written out
    /// there without these helpers): every random stream of a run depends on them, so they must
    /// never change.
    #[test]
    fn derive_seed_outputs_are_pinned() {
        for (seed, stream, want) in [
            (0u64, "", 0x60a6_e4f0_6933_f022u64),
            (0, "data", 0xf66c_f0c4_be2a_565a),
            (42, "init", 0xf601_6ccf_9b08_d226),
            (42, "layer-3", 0x29e6_89b0_31e1_6e6f),
            (7, "bootstrap", 0x7a47_480b_6ac6_92c6),
            (u64::MAX, "permutation", 0x2b5f_ce55_4221_4796),
            (123_456_789, "mi-ty", 0x406b_a0f1_bab7_fbf5),
            (1, "λ-ünïcode", 0x0c2b_e350_e96c_c52d),
        ] {
            assert_eq!(
                derive_seed(seed, stream),
                want,
                "derive_seed({seed}, {stream:?})"
            );
        }
    }

    /// The published test vectors: FNV-1a 64 of "" and "a", SplitMix64's first output for
    /// seed 0.
    #[test]
    fn fnv1a_and_splitmix64_match_their_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"funnel"), 0xaa34_4ba0_62fb_6379);
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(1), 0x910a_2dec_8902_5cc1);
        assert_eq!(splitmix64(u64::MAX), 0xe4d9_7177_1b65_2c20);
    }
}
