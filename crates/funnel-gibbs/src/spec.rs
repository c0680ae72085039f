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
/// Hidden units of the single-architecture network when `gibbs.hidden` is not given.
pub const DEFAULT_HIDDEN: usize = 3;
/// Largest number of architectures in `gibbs.architecture`.
pub const MAX_ARCHITECTURES: usize = 16;
/// Largest number of hidden units (summed over layers) of an architecture with dropout: the
/// dropout expectation enumerates up to 2^units masks per weight vector and point.
pub const MAX_DROPOUT_UNITS: usize = 16;

/// One `[[gibbs.architecture]]`: a bias-free tanh network dim → `widths[0]` → … → `widths[L−1]` → 1
/// with dropout of probability `dropout` on every hidden unit (training and evaluation alike; no
/// 1/(1−p) rescaling of the kept units). Every key but `dropout` (default 0) is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// The hidden widths, input side first; L = widths.len() hidden (dropout) layers.
    pub widths: Vec<usize>,
    /// p, the probability that a hidden unit is dropped (set to 0), independently per unit.
    #[serde(default)]
    pub dropout: f64,
}

impl Architecture {
    /// P = dim·h_1 + Σ_l h_{l−1}·h_l + h_L, the number of weights (saturating).
    pub fn params(&self, dim: usize) -> usize {
        let mut prev = dim;
        let mut p: usize = 0;
        for &h in &self.widths {
            p = p.saturating_add(prev.saturating_mul(h));
            prev = h;
        }
        p.saturating_add(prev)
    }

    /// L, the number of hidden (dropout) layers.
    pub fn depth(&self) -> usize {
        self.widths.len()
    }

    /// The hidden units summed over layers.
    pub fn units(&self) -> usize {
        self.widths.iter().fold(0usize, |a, &h| a.saturating_add(h))
    }

    /// Πη = Π_l (1 − p^{h_l}), the product of the dropout layers' contraction coefficients
    /// (DESIGN §2.6: η ≤ 1 − p^d for dropout on a d-wide vector); 1 without dropout. It is also
    /// exactly the probability that no hidden layer is dropped whole.
    pub fn eta_product(&self) -> f64 {
        self.widths
            .iter()
            .map(|&h| 1.0 - self.dropout.powi(h as i32))
            .product()
    }

    /// The hidden widths joined by `sep`, e.g. `1, 3, 1` for `", "`.
    pub fn widths_joined(&self, sep: &str) -> String {
        let w: Vec<String> = self.widths.iter().map(|h| h.to_string()).collect();
        w.join(sep)
    }

    /// A short name, e.g. `[1, 3, 1] p = 0.5`.
    pub fn label(&self) -> String {
        format!("[{}] p = {}", self.widths_joined(", "), self.dropout)
    }
}

/// `[gibbs]` in a config: the exact-Gibbs experiment. Every key is optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GibbsSpec {
    /// Input dimension.
    pub dim: usize,
    /// Hidden units of the single-architecture network (default [`DEFAULT_HIDDEN`]); not
    /// allowed together with `architecture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
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
    /// With `architecture` it comes from each architecture's dropout and must stay 1.
    pub eta_product: f64,
    /// Several architectures of one parameter budget (`[[gibbs.architecture]]`), each
    /// enumerated on the same pool and the same training sets; empty: the single network
    /// dim → hidden → 1 without dropout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architecture: Vec<Architecture>,
}

impl Default for GibbsSpec {
    /// dim 2, hidden 3, levels {−1, 0, 1}: P = 9 weights, 3^9 = 19683 configurations; a pool of
    /// 8000 points makes a 157 MB loss table.
    fn default() -> Self {
        GibbsSpec {
            dim: 2,
            hidden: None,
            levels: vec![-1.0, 0.0, 1.0],
            gamma: vec![4.0, 16.0, 64.0],
            n: vec![8, 16, 32, 64, 128, 256, 512, 1024],
            train_sets: 400,
            pool: 8000,
            mean_norm: 1.0,
            noise_std: 1.0,
            seed: 1,
            eta_product: 1.0,
            architecture: Vec::new(),
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
    /// The hidden units of the single-architecture network.
    pub fn hidden(&self) -> usize {
        self.hidden.unwrap_or(DEFAULT_HIDDEN)
    }

    /// P = hidden·dim + hidden, the number of weights of the single-architecture network
    /// (saturating); with `architecture`, the common budget of its members (the first's).
    pub fn params(&self) -> usize {
        match self.architecture.first() {
            Some(a) => a.params(self.dim),
            None => self
                .hidden()
                .saturating_mul(self.dim)
                .saturating_add(self.hidden()),
        }
    }

    /// The architectures to enumerate: `architecture`, or the single network `[hidden]` without
    /// dropout.
    pub fn architectures(&self) -> Vec<Architecture> {
        if self.architecture.is_empty() {
            vec![Architecture {
                widths: vec![self.hidden()],
                dropout: 0.0,
            }]
        } else {
            self.architecture.clone()
        }
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
        if !self.architecture.is_empty() {
            return self.validate_architectures();
        }
        if self.hidden() == 0 {
            return invalid("gibbs.hidden", "must be ≥ 1".into());
        }
        self.validate_levels()?;
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
        self.validate_common()?;
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

    fn validate_levels(&self) -> Result<(), GibbsError> {
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
        Ok(())
    }

    /// γ, pool, n, train_sets, mean_norm, noise_std.
    fn validate_common(&self) -> Result<(), GibbsError> {
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
        Ok(())
    }

    /// The checks of a spec with `architecture` (after `dim`).
    fn validate_architectures(&self) -> Result<(), GibbsError> {
        if self.hidden.is_some() {
            return invalid(
                "gibbs.hidden",
                "give either `gibbs.hidden` (one network) or `[[gibbs.architecture]]`, not both"
                    .into(),
            );
        }
        if self.architecture.len() > MAX_ARCHITECTURES {
            return invalid(
                "gibbs.architecture",
                format!(
                    "at most {MAX_ARCHITECTURES} architectures, got {}",
                    self.architecture.len()
                ),
            );
        }
        if self.eta_product != 1.0 {
            return invalid(
                "gibbs.eta_product",
                format!(
                    "with `[[gibbs.architecture]]` Πη comes from each architecture's dropout; \
                     leave `gibbs.eta_product` at 1, got {}",
                    self.eta_product
                ),
            );
        }
        self.validate_levels()?;
        let k = self.levels.len() as u64;
        let budget = self.architecture[0].params(self.dim);
        for (i, a) in self.architecture.iter().enumerate() {
            let name = format!("architecture {} (widths {:?})", i + 1, a.widths);
            if a.widths.is_empty() || a.widths.contains(&0) {
                return invalid(
                    "gibbs.architecture.widths",
                    format!("{name}: needs ≥ 1 hidden layer, every width ≥ 1"),
                );
            }
            if !(a.dropout.is_finite() && (0.0..1.0).contains(&a.dropout)) {
                return invalid(
                    "gibbs.architecture.dropout",
                    format!("{name}: must be in [0, 1), got {}", a.dropout),
                );
            }
            let p = a.params(self.dim);
            if p != budget {
                return invalid(
                    "gibbs.architecture.widths",
                    format!(
                        "{name} has P = {p} weights, the first has {budget}: every architecture \
                         must have the same parameter budget (P = dim·h_1 + Σ h_(l−1)·h_l + h_L)"
                    ),
                );
            }
            let configs = u32::try_from(p).ok().and_then(|p| k.checked_pow(p));
            let configs = match configs {
                Some(c) if c <= MAX_CONFIGS => c,
                c => {
                    let c = c.map_or("more than 2^64".to_string(), |c| c.to_string());
                    return invalid(
                        "gibbs.architecture.widths",
                        format!(
                            "{name}: K^P = {k}^{p} = {c} configurations, more than the \
                             {MAX_CONFIGS} that can be enumerated; shrink the widths, \
                             `gibbs.dim` or the number of `gibbs.levels`"
                        ),
                    );
                }
            };
            if a.dropout > 0.0 && a.units() > MAX_DROPOUT_UNITS {
                return invalid(
                    "gibbs.architecture.widths",
                    format!(
                        "{name}: {} hidden units with dropout, more than the \
                         {MAX_DROPOUT_UNITS} whose masks can be enumerated",
                        a.units()
                    ),
                );
            }
            // With dropout the table holds f64 expected losses, else one byte per entry.
            let entry = if a.dropout > 0.0 { 8 } else { 1 };
            let bytes = configs
                .saturating_mul(self.pool as u64)
                .saturating_mul(entry);
            if bytes > MAX_TABLE_BYTES {
                return invalid(
                    "gibbs.pool",
                    format!(
                        "{name}: the loss table needs pool · K^P · {entry} = {} · {configs} · \
                         {entry} = {bytes} bytes, more than the limit of {MAX_TABLE_BYTES}; \
                         shrink `gibbs.pool` (to at most {})",
                        self.pool,
                        MAX_TABLE_BYTES / configs / entry
                    ),
                );
            }
        }
        self.validate_common()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_deserialises_with_defaults_and_refuses_unknown_keys() {
        use serde::de::value::{Error, MapDeserializer};
        // (`hidden`, an Option, is read from TOML in the funnel crate's end-to-end tests.)
        let de = MapDeserializer::<_, Error>::new(vec![("dim", 3u64), ("seed", 9)].into_iter());
        let spec = GibbsSpec::deserialize(de).unwrap();
        assert_eq!(
            spec,
            GibbsSpec {
                dim: 3,
                seed: 9,
                ..GibbsSpec::default()
            }
        );
        let de = MapDeserializer::<_, Error>::new(vec![("hiden", 2u64)].into_iter());
        let err = GibbsSpec::deserialize(de).unwrap_err().to_string();
        assert!(err.contains("hiden"), "{err}");
    }
}
