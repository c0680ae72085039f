//! `[gibbs]`: the experiment's settings, their limits and their validation.

use serde::{Deserialize, Serialize};

/// Largest number of configurations K^P that may be enumerated.
pub const MAX_CONFIGS: u64 = 2_000_000;
/// Largest size, in bytes, of the loss table (pool · K^P bytes).
pub const MAX_TABLE_BYTES: u64 = 200_000_000;
/// Largest pool (population) size.
pub const MAX_POOL: usize = 1_000_000;
/// |f(x)| at or below this is a tie: the prediction is a coin flip and the 0-1 loss is ½.
pub const TIE_TOLERANCE: f64 = 1e-12;

/// `[gibbs]` in a config: the exact-Gibbs experiment. Every key is optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GibbsSpec {
    /// Input dimension.
    pub dim: usize,
    /// Hidden units.
    pub hidden: usize,
    /// The allowed values of every weight (K distinct finite values).
    pub levels: Vec<f64>,
    /// The inverse temperatures γ to study.
    pub gamma: Vec<f64>,
    /// The training-set sizes n to study.
    pub n: Vec<usize>,
    /// Training sets drawn per n (shared by every γ).
    pub train_sets: usize,
    /// Size of the finite population drawn once from the mixture.
    pub pool: usize,
    /// ‖μ‖, the distance of each class mean from the origin.
    pub mean_norm: f64,
    /// s, the standard deviation of the noise in every coordinate.
    pub noise_std: f64,
    /// Seed of the pool and of every training set.
    pub seed: u64,
    /// Πη, the contraction product multiplied inside the square root of both bounds; 1 here.
    pub eta_product: f64,
}

impl Default for GibbsSpec {
    /// dim 2, hidden 3, levels {−1, 0, 1}: P = 9 weights, 3^9 = 19683 configurations; a pool of
    /// 8000 points makes a 157 MB loss table.
    fn default() -> Self {
        GibbsSpec {
            dim: 2,
            hidden: 3,
            levels: vec![-1.0, 0.0, 1.0],
            gamma: vec![4.0, 16.0, 64.0],
            n: vec![8, 16, 32, 64, 128, 256, 512, 1024],
            train_sets: 400,
            pool: 8000,
            mean_norm: 1.0,
            noise_std: 1.0,
            seed: 1,
            eta_product: 1.0,
        }
    }
}

/// The default population and network with a smaller pool (the tests run in parallel).
#[cfg(test)]
pub(crate) fn test_spec(
    gamma: Vec<f64>,
    n: Vec<usize>,
    train_sets: usize,
    pool: usize,
) -> GibbsSpec {
    GibbsSpec {
        gamma,
        n,
        train_sets,
        pool,
        ..GibbsSpec::default()
    }
}

/// An invalid `[gibbs]` setting; `key` names it (e.g. `gibbs.levels`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GibbsError {
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: String) -> Result<(), GibbsError> {
    Err(GibbsError::Invalid { key, message })
}

impl GibbsSpec {
    /// P = hidden·dim + hidden, the number of weights (saturating).
    pub fn params(&self) -> usize {
        self.hidden
            .saturating_mul(self.dim)
            .saturating_add(self.hidden)
    }

    /// K^P, the number of configurations, if it fits in a u64.
    fn config_count(&self) -> Option<u64> {
        let p = u32::try_from(self.params()).ok()?;
        (self.levels.len() as u64).checked_pow(p)
    }

    /// Checks every key; the error names the first offending one.
    pub fn validate(&self) -> Result<(), GibbsError> {
        if self.dim == 0 {
            return invalid("gibbs.dim", "must be ≥ 1".into());
        }
        if self.hidden == 0 {
            return invalid("gibbs.hidden", "must be ≥ 1".into());
        }
        if self.levels.len() < 2 || self.levels.iter().any(|l| !l.is_finite()) {
            return invalid(
                "gibbs.levels",
                format!("needs ≥ 2 distinct finite values, got {:?}", self.levels),
            );
        }
        let mut sorted = self.levels.clone();
        sorted.sort_by(f64::total_cmp);
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return invalid(
                "gibbs.levels",
                format!(
                    "values must be distinct (the uniform prior is over distinct weight vectors), \
                     {} appears more than once in {:?}",
                    w[0], self.levels
                ),
            );
        }
        let (k, p) = (self.levels.len(), self.params());
        let configs = match self.config_count() {
            Some(c) if c <= MAX_CONFIGS => c,
            count => {
                let count = count.map_or("more than 2^64".to_string(), |c| c.to_string());
                return invalid(
                    "gibbs.hidden",
                    format!(
                        "the weight set has K^P = {k}^{p} = {count} configurations \
                         (P = hidden·dim + hidden = {p} weights), more than the {MAX_CONFIGS} \
                         that can be enumerated; shrink `gibbs.hidden`, `gibbs.dim` or the \
                         number of `gibbs.levels`"
                    ),
                );
            }
        };
        if self.gamma.is_empty() {
            return invalid("gibbs.gamma", "needs at least one value".into());
        }
        if let Some(g) = self.gamma.iter().find(|g| !(g.is_finite() && **g > 0.0)) {
            return invalid(
                "gibbs.gamma",
                format!("every γ must be finite and > 0, got {g}"),
            );
        }
        if !(2..=MAX_POOL).contains(&self.pool) {
            return invalid(
                "gibbs.pool",
                format!("must be in [2, {MAX_POOL}], got {}", self.pool),
            );
        }
        if self.n.is_empty() {
            return invalid("gibbs.n", "needs at least one training-set size".into());
        }
        if let Some(n) = self.n.iter().find(|&&n| n == 0 || n > self.pool) {
            return invalid(
                "gibbs.n",
                format!("every n must be in [1, pool = {}], got {n}", self.pool),
            );
        }
        if self.train_sets == 0 {
            return invalid("gibbs.train_sets", "must be ≥ 1".into());
        }
        if !(self.mean_norm.is_finite() && self.mean_norm >= 0.0) {
            return invalid(
                "gibbs.mean_norm",
                format!("must be finite and ≥ 0, got {}", self.mean_norm),
            );
        }
        if !(self.noise_std.is_finite() && self.noise_std > 0.0) {
            return invalid(
                "gibbs.noise_std",
                format!("must be finite and > 0, got {}", self.noise_std),
            );
        }
        if !(self.eta_product > 0.0 && self.eta_product <= 1.0) {
            return invalid(
                "gibbs.eta_product",
                format!("must be in (0, 1], got {}", self.eta_product),
            );
        }
        let bytes = configs.saturating_mul(self.pool as u64);
        if bytes > MAX_TABLE_BYTES {
            return invalid(
                "gibbs.pool",
                format!(
                    "the loss table needs pool · K^P = {} · {configs} = {bytes} bytes, more \
                     than the limit of {MAX_TABLE_BYTES}; shrink `gibbs.pool` (to at most {}) \
                     or the weight set",
                    self.pool,
                    MAX_TABLE_BYTES / configs
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_deserialises_with_defaults_and_refuses_unknown_keys() {
        use serde::de::value::{Error, MapDeserializer};
        let de = MapDeserializer::<_, Error>::new(vec![("hidden", 2u64), ("seed", 9)].into_iter());
        let spec = GibbsSpec::deserialize(de).unwrap();
        assert_eq!(
            spec,
            GibbsSpec {
                hidden: 2,
                seed: 9,
                ..GibbsSpec::default()
            }
        );
        let de = MapDeserializer::<_, Error>::new(vec![("hiden", 2u64)].into_iter());
        let err = GibbsSpec::deserialize(de).unwrap_err().to_string();
        assert!(err.contains("hiden"), "{err}");
    }
}
