//! The Gibbs algorithm computed exactly, by enumeration: a clean check of the O(1/n) rate of its
//! expected generalization gap (DESIGN §2.8). This crate owns the whole experiment behind
//! `funnel gibbs` — settings, enumeration, posterior statistics and slope fits; the binary only
//! reads the config and writes the files and the figure.
//!
//! # What is measured
//!
//! The Gibbs algorithm with prior π and inverse temperature γ returns a weight vector drawn from
//!
//! ```text
//! P(w | S) ∝ π(w) · exp(−γ · L_S(w)),      L_S(w) = (1/n) Σ_{i≤n} ℓ(w, z_i) ∈ [0, 1].
//! ```
//!
//! Replacing one of the n samples moves L_S(w) by at most 1/n, so it moves log P(w | S) by at most
//! 2γ/n (γ/n from the exponent, γ/n from the normaliser). The project's bound (DESIGN §2.8) turns
//! this into
//!
//! ```text
//! |E gen| ≤ √2 · γ / n                                   (`GibbsRow::bound_gibbs`)
//! ```
//!
//! an O(1/n) rate, where gen = E_{w∼P(·|S)} [R(w) − L_S(w)] and R is the population risk. For
//! comparison, every algorithm whose weights take values in a finite set of K^P vectors
//! (K levels per weight, P weights) satisfies, for a σ-sub-Gaussian loss (σ = ½ for a loss in
//! [0, 1]),
//!
//! ```text
//! |E gen| ≤ sqrt(2σ² · Πη · P · ln K / n) = sqrt(Πη · P · ln K / (2n))  (`GibbsRow::bound_finite`)
//! ```
//!
//! (the finite-parameter bound; Πη is the project's contraction product,
//! [`GibbsSpec::eta_product`], 1 by default, and enters both bounds inside the square root). It
//! only decays like n^{−1/2}.
//!
//! # The model
//!
//! A tiny network with no biases: x ∈ R^dim, W ∈ L^{hidden×dim}, v ∈ L^{hidden}, where
//! L = [`GibbsSpec::levels`] is a finite set of K values, so there are P = hidden·dim + hidden
//! weights and K^P weight vectors ("configurations"):
//!
//! ```text
//! f(x) = Σ_j v_j · tanh(w_jᵀ x),   predicted class 1 if f(x) > 0, 0 if f(x) < 0.
//! ```
//!
//! If |f(x)| ≤ [`TIE_TOLERANCE`] (e.g. v = 0, or two hidden units that cancel exactly) the
//! prediction is a fair coin flip and the 0-1 loss is its expectation, ½; so the loss takes the
//! values 0, ½ and 1. The prior π is uniform over the K^P configurations.
//!
//! Configurations are numbered by a mixed-radix index (see [`config_weights`]): the weight vector
//! θ = (W row-major, then v), θ_k = `levels[d_k]` with index = Σ_k d_k · K^k, i.e.
//! θ_0 = `W[0][0]` is the least significant digit and v_{hidden−1} the most significant.
//!
//! # The population
//!
//! The data are the project's binary Gaussian mixture: the label y is uniform on {0, 1}, and
//! x = ±μ + s·N(0, I) with mean +μ for class 1 and −μ for class 0, μ = ‖μ‖/√dim · (1, …, 1),
//! ‖μ‖ = [`GibbsSpec::mean_norm`], s = [`GibbsSpec::noise_std`]. A finite *pool* of
//! [`GibbsSpec::pool`] points is drawn once from the mixture (ChaCha8 seeded with
//! [`GibbsSpec::seed`]) and **the population is the uniform distribution on the pool**. Hence the
//! population risk R(w) of every configuration is exactly its mean loss over the pool, and
//! training sets are n i.i.d. draws, with replacement, from the pool. Everything in the gap is then
//! computed exactly for that population: there is no test-set (Monte-Carlo) error in R, and the
//! only randomness left is the draw of the training sets, which the standard errors describe.
//!
//! # The computation
//!
//! The loss of every configuration on every pool point is computed once and stored as one byte
//! (0, 1, 2 meaning 0, ½, 1), laid out as `[pool point][configuration]` so that L_S of every
//! configuration is the sum of n contiguous rows. Its size, pool·K^P bytes, is capped at
//! [`MAX_TABLE_BYTES`]. For each training-set size n and each of [`GibbsSpec::train_sets`]
//! training sets S (each drawn from its own ChaCha8 stream, seeded from (seed, n, set index)):
//! L_S(w) is computed for every w, then for each γ the posterior is normalised by log-sum-exp
//! ([`normalise`]) and
//!
//! ```text
//! gap(S)        = Σ_w P(w|S) · (R(w) − L_S(w))
//! train loss    = Σ_w P(w|S) · L_S(w),     test loss = Σ_w P(w|S) · R(w)
//! effective     = exp(−Σ_w P(w|S) ln P(w|S))   (the effective number of configurations)
//! ```
//!
//! are averaged over the training sets. The same training sets are used for every γ (common random
//! numbers: differences between γ are then not blurred by different draws); sets of different n
//! are independent, so the points of a slope fit are independent.
//!
//! ## A control variate
//!
//! gap(S) fluctuates from set to set by O(n^{−1/2}) while its mean is O(γ/n), so at large n many
//! sets are needed to resolve the mean from 0. [`GibbsRow::gap_cv_mean`] is a second, unbiased
//! estimator of the same E gap with a much smaller variance: it subtracts
//! c(S) = Σ_w P_R(w) · (R(w) − L_S(w)), where P_R(w) ∝ π(w)·exp(−γ R(w)) is the Gibbs distribution
//! of the *population* risk, which does not depend on S. Because training points are i.i.d.
//! draws from the pool, E_S L_S(w) = R(w) exactly for every w, so E_S c(S) = 0 exactly and
//! gap(S) − c(S) has the same mean as gap(S); c(S) removes the first-order (O(n^{−1/2})) noise of
//! gap(S). The slope fits use this estimator (see [`fit`]).
//!
//! # Why 1/n, and the size of the constant
//!
//! Write Δ(w) = L_S(w) − R(w), so that P(w|S) ∝ P_R(w)·exp(−γΔ(w)). To first order in γΔ,
//!
//! ```text
//! E gap ≈ γ · E_S Var_{w∼P_R} Δ(w) = (γ/n) · c,   c = ½ E_{w,w'∼P_R} Var_X(ℓ(w,X) − ℓ(w',X)) ≤ ½,
//! ```
//!
//! i.e. about γ/(2n) at most, a factor 2√2 below `bound_gibbs` (this γ/(2n) = 2σ²γ/n is the
//! known exact-Gibbs bound of Aminian et al., 2021). c is small when the configurations that carry
//! the posterior mass mostly agree, which is why measured gaps sit far below both bounds.
//! Higher orders bring relative corrections that vanish as n grows; how early the 1/n regime
//! starts depends on the data and γ. With the default spec it holds from the smallest n: the
//! fitted slopes over n = 8…1024 are −1.00, −0.97 and −1.03 for γ = 4, 16, 64 (±0.01–0.03).
//! A fit over a range where the slope drifts (pre-asymptotic n) shows up as a large
//! `slope_stderr`, since that is computed from the residuals.
//!
//! Parallelism: the training sets of a cell are split over
//! [`std::thread::available_parallelism`] threads; each set has its own seed and results are
//! reduced in set order, so the output does not depend on the number of threads, bit for bit.
//!
//! # Architectures of one parameter budget, with dropout
//!
//! With `[[gibbs.architecture]]` ([`GibbsSpec::architecture`], run by [`run_architectures`]) the
//! same computation is done for several bias-free tanh networks dim → h_1 → … → h_L → 1 with the
//! same number of weights P, each with dropout p on every hidden unit (training and evaluation;
//! no 1/(1−p) rescaling). The loss of a weight vector on a point is the exact expectation of the
//! 0-1 loss over the dropout masks (module `architecture`), so R and L_S stay exact; every
//! architecture uses the same pool and the same training sets. Each row's bounds use the
//! architecture's Πη = Π_l (1 − p^{h_l}) ([`Architecture::eta_product`]). Πη is also exactly the
//! probability that no layer is dropped whole; otherwise f = 0 and the loss is ½, so every
//! expected loss lies in [(1 − Πη)/2, (1 + Πη)/2] and, for a scalar chain, the posterior at γ is
//! the no-dropout posterior at γ·Πη with every loss shrunk towards ½ by Πη.
//!
//! # Modules
//!
//! * `spec` — [`GibbsSpec`] (`[gibbs]` in a config), [`Architecture`], their limits and
//!   validation.
//! * `enumeration` — the configuration numbering ([`config_weights`]), the pool and the loss
//!   table.
//! * `architecture` — the numbering of a deeper architecture ([`architecture_weights`]) and its
//!   loss table, the exact expectation over the dropout masks.
//! * `posterior` — [`normalise`] (log-sum-exp) and exact categorical draws ([`sample`]).
//! * `cells` — the training sets of one (γ, n) cell and their posterior statistics.
//! * `results` — [`GibbsRow`], [`GibbsFit`] ([`fit`]), [`GibbsResults`], [`BudgetResults`].
//! * `experiment` — [`run`] and [`run_architectures`].
//!
//! This crate has no burn dependency: everything is computed on the host in f64.

mod architecture;
mod cells;
mod enumeration;
mod experiment;
mod posterior;
mod results;
mod spec;

pub use architecture::architecture_weights;
pub use enumeration::config_weights;
pub use experiment::{run, run_architectures};
pub use posterior::{normalise, sample};
pub use results::{fit, ArchitectureResults, BudgetResults, GibbsFit, GibbsResults, GibbsRow};
pub use spec::{
    Architecture, GibbsError, GibbsSpec, DEFAULT_HIDDEN, MAX_ARCHITECTURES, MAX_CONFIGS,
    MAX_DROPOUT_UNITS, MAX_POOL, MAX_TABLE_BYTES, TIE_TOLERANCE,
};
