//! Observed trajectories and datasets of them.

use neurohybrid_nn::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::error::{HybridError, Result};

/// One observed trajectory: the initial condition and observations at `times`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Start time of the trajectory.
    pub t0: f64,
    /// Initial state (all `n_states` components).
    pub y0: Vec<f64>,
    /// Observation times, strictly increasing, not before `t0`.
    pub times: Vec<f64>,
    /// Observations, `times.len() × n_obs`, row-major (`n_obs` = number of observed states).
    pub values: Vec<f64>,
    /// Present observations (`true`) in the layout of `values`; `None` = all present.
    /// Missing values may hold anything (NaN included); they never enter a loss.
    pub mask: Option<Vec<bool>>,
}

impl Trajectory {
    /// A fully observed trajectory.
    pub fn new(t0: f64, y0: Vec<f64>, times: Vec<f64>, values: Vec<f64>) -> Self {
        Trajectory { t0, y0, times, values, mask: None }
    }

    /// With a mask of present observations.
    pub fn with_mask(mut self, mask: Vec<bool>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Whether observation `i` (flat index into `values`) is present.
    pub fn is_present(&self, i: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[i])
    }

    /// Check lengths, ordering and finiteness for `n_states` states of which `n_obs` observed.
    pub fn validate(&self, index: usize, n_states: usize, n_obs: usize) -> Result<()> {
        let what = |s: &str| format!("{s} of trajectory {index}");
        if self.y0.len() != n_states {
            return Err(HybridError::LengthMismatch {
                what: what("initial state"),
                expected: n_states,
                got: self.y0.len(),
            });
        }
        if let Some(i) = self.y0.iter().position(|v| !v.is_finite()) {
            return Err(HybridError::NonFinite { what: what("initial state"), index: i });
        }
        if self.values.len() != self.times.len() * n_obs {
            return Err(HybridError::LengthMismatch {
                what: what("observations (times × observed states)"),
                expected: self.times.len() * n_obs,
                got: self.values.len(),
            });
        }
        if let Some(m) = &self.mask
            && m.len() != self.values.len()
        {
            return Err(HybridError::LengthMismatch {
                what: what("mask"),
                expected: self.values.len(),
                got: m.len(),
            });
        }
        if !self.t0.is_finite() {
            return Err(HybridError::NonFinite { what: what("t0"), index: 0 });
        }
        let mut prev = self.t0;
        for (k, &t) in self.times.iter().enumerate() {
            let ok = t.is_finite() && (t > prev || (k == 0 && t == prev));
            if !ok {
                return Err(HybridError::InvalidConfig {
                    what: what("observation times"),
                    message: format!(
                        "time {k} = {t} must be finite, not before t0 and strictly after the previous one"
                    ),
                });
            }
            prev = t;
        }
        if let Some(i) =
            (0..self.values.len()).find(|&i| self.is_present(i) && !self.values[i].is_finite())
        {
            return Err(HybridError::NonFinite { what: what("observations"), index: i });
        }
        Ok(())
    }
}

/// Trajectories of one system, all observing the same state components.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// The trajectories.
    pub trajectories: Vec<Trajectory>,
    /// Observed state indices (the columns of [`Trajectory::values`]); `None` = every state.
    pub observed: Option<Vec<usize>>,
}

impl Dataset {
    /// Fully observed trajectories.
    pub fn new(trajectories: Vec<Trajectory>) -> Self {
        Dataset { trajectories, observed: None }
    }

    /// Observing only these state components.
    pub fn with_observed(mut self, observed: Vec<usize>) -> Self {
        self.observed = Some(observed);
        self
    }

    /// Number of trajectories.
    pub fn len(&self) -> usize {
        self.trajectories.len()
    }

    /// Whether there are no trajectories.
    pub fn is_empty(&self) -> bool {
        self.trajectories.is_empty()
    }

    /// The observed state indices for a system of `n_states` states.
    pub fn observed_indices(&self, n_states: usize) -> Vec<usize> {
        self.observed.clone().unwrap_or_else(|| (0..n_states).collect())
    }

    /// Check every trajectory against a system of `n_states` states.
    pub fn validate(&self, n_states: usize) -> Result<()> {
        let obs = self.observed_indices(n_states);
        if let Some(&bad) = obs.iter().find(|&&i| i >= n_states) {
            return Err(HybridError::InvalidConfig {
                what: "observed state index".into(),
                message: format!("{bad} is not below n_states = {n_states}"),
            });
        }
        for (i, t) in self.trajectories.iter().enumerate() {
            t.validate(i, n_states, obs.len())?;
        }
        Ok(())
    }

    /// Split into `(training, validation)` by a seeded shuffle: `round(fraction · len)`
    /// trajectories go to validation (at least one stays for training when there are any).
    /// The same seed always gives the same split; a fraction outside `[0, 1]` (or NaN) is
    /// clamped to it. Order within each part follows the shuffle.
    pub fn split(&self, validation_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let n = self.len();
        let f =
            if validation_fraction.is_nan() { 0.0 } else { validation_fraction.clamp(0.0, 1.0) };
        let n_val = ((f * n as f64).round() as usize).min(n.saturating_sub(1));
        let order = shuffled(n, &mut SplitMix64::new(seed));
        let pick = |idx: &[usize]| Dataset {
            trajectories: idx.iter().map(|&i| self.trajectories[i].clone()).collect(),
            observed: self.observed.clone(),
        };
        (pick(&order[n_val..]), pick(&order[..n_val]))
    }
}

/// A uniformly random permutation of `0..n` (Fisher–Yates; Knuth TAOCP vol. 2, Algorithm P),
/// drawing the index by multiply-shift on 64 random bits (Lemire 2019; its bias is below
/// `n / 2⁶⁴`, irrelevant for shuffling datasets).
pub(crate) fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
    v
}
