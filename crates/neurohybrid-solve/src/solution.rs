//! The result of a solve.

use crate::dense::DenseOutput;
use crate::error::{Result, SolveError};
use crate::stats::{Stats, Status};

/// Saved times and states, the run's status and its work statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    pub(crate) n: usize,
    pub(crate) ts: Vec<f64>,
    pub(crate) ys: Vec<f64>,
    pub(crate) status: Status,
    pub(crate) stats: Stats,
    pub(crate) dense: Option<DenseOutput>,
}

impl Solution {
    /// The saved times.
    pub fn ts(&self) -> &[f64] {
        &self.ts
    }

    /// All saved states, flat and row-major: state `i` is `ys()[i*n..(i+1)*n]`.
    pub fn ys(&self) -> &[f64] {
        &self.ys
    }

    /// The state saved at `ts()[i]`.
    pub fn y(&self, i: usize) -> &[f64] {
        &self.ys[i * self.n..(i + 1) * self.n]
    }

    /// The last saved state, if any.
    pub fn last(&self) -> Option<&[f64]> {
        (!self.ts.is_empty()).then(|| self.y(self.ts.len() - 1))
    }

    /// Iterate over `(t, y)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (f64, &[f64])> {
        self.ts.iter().copied().zip(self.ys.chunks_exact(self.n.max(1)))
    }

    /// Number of saved points.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// State dimension.
    pub fn n_states(&self) -> usize {
        self.n
    }

    /// How the run ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether the run reached the end of its span.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Work statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The dense output, if the solve used `SaveAt::Dense`.
    pub fn dense(&self) -> Option<&DenseOutput> {
        self.dense.as_ref()
    }

    /// Evaluate the dense output at `t` (requires `SaveAt::Dense`).
    pub fn interpolate(&self, t: f64, out: &mut [f64]) -> Result<()> {
        match &self.dense {
            Some(d) => d.eval(t, out),
            None => Err(SolveError::Interpolation { t, reason: "solve did not use SaveAt::Dense" }),
        }
    }
}
