//! Optimizers over flat parameter vectors.
//!
//! First-order methods ([`Sgd`], [`Adam`], [`AdamW`], [`RmsProp`]) implement [`Optimizer`]:
//! the struct holds configuration only, [`Optimizer::init`] makes the working state (moment
//! vectors, step count), and [`Optimizer::step`] updates `params` in place from a gradient —
//! allocation-free. Each follows PyTorch's update *exactly as PyTorch orders the arithmetic*
//! (torch 2.x `_single_tensor_*` kernels), so iterates can be compared with a PyTorch peer run.
//! [`Lbfgs`] is a full minimizer that drives an objective closure itself.
//!
//! Every optimizer can freeze parameter ranges (e.g. from
//! [`ranges_matching`](crate::ranges_matching) on a layer's blocks): frozen entries are never
//! written and their state never moves.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result, check_len};

mod adam;
mod lbfgs;
mod line_search;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamState, AdamW};
pub use lbfgs::{Lbfgs, LbfgsReport, LbfgsStatus};
pub use line_search::StrongWolfe;
pub use rmsprop::{RmsProp, RmsPropState};
pub use schedule::Schedule;
pub use sgd::{Sgd, SgdState};

/// A first-order optimizer: configuration in `self`, working state from [`init`](Self::init).
pub trait Optimizer {
    /// Moment vectors, step count and the ranges being updated.
    type State;
    /// Working state for `n_params` parameters (validates the configuration and frozen ranges).
    fn init(&self, n_params: usize) -> Result<Self::State>;
    /// One update of `params` from `grad` (both of the length given to `init`).
    fn step(&self, state: &mut Self::State, params: &mut [f64], grad: &[f64]) -> Result<()>;
}

/// The ranges of `0..n` not covered by `frozen` (sorted, disjoint, non-empty).
pub(crate) fn active_ranges(n: usize, frozen: &[Range<usize>]) -> Result<Vec<Range<usize>>> {
    let mut f: Vec<Range<usize>> = frozen.iter().filter(|r| !r.is_empty()).cloned().collect();
    if let Some(r) = f.iter().find(|r| r.end > n) {
        return Err(NnError::FrozenOutOfBounds { start: r.start, end: r.end, n_params: n });
    }
    f.sort_by_key(|r| r.start);
    let mut out = Vec::new();
    let mut at = 0;
    for r in f {
        if r.start > at {
            out.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if at < n {
        out.push(at..n);
    }
    Ok(out)
}

/// Bookkeeping every first-order state shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Completed steps.
    pub step: u64,
    /// Parameter count fixed at `init`.
    pub n_params: usize,
    /// Index ranges that are updated (the complement of the frozen ones).
    pub active: Vec<Range<usize>>,
}

impl StepInfo {
    pub(crate) fn new(n: usize, frozen: &[Range<usize>]) -> Result<Self> {
        Ok(StepInfo { step: 0, n_params: n, active: active_ranges(n, frozen)? })
    }

    pub(crate) fn check(&self, params: &[f64], grad: &[f64]) -> Result<()> {
        check_len("parameters", self.n_params, params.len())?;
        check_len("gradient", self.n_params, grad.len())
    }

    /// Every updated index, in order.
    pub(crate) fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.active.iter().flat_map(|r| r.clone())
    }
}

pub(crate) fn check_lr(lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(NnError::config("learning rate", format!("{lr} must be finite and non-negative")))
    }
}

pub(crate) fn check_unit(what: &'static str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(NnError::config(what, format!("{v} must lie in [0, 1)")))
    }
}

pub(crate) fn check_nonneg(what: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(NnError::config(what, format!("{v} must be finite and non-negative")))
    }
}

/// Scales `grad` so its Euclidean norm is at most `max_norm`; returns the norm before clipping.
///
/// PyTorch's `clip_grad_norm_` arithmetic: the factor is `max_norm / (norm + 1e-6)`, clamped to
/// at most 1 (the `1e-6` keeps a zero gradient finite). A non-finite norm is an error rather
/// than a silent NaN update.
pub fn clip_grad_norm(grad: &mut [f64], max_norm: f64) -> Result<f64> {
    check_nonneg("max_norm", max_norm)?;
    let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    if !norm.is_finite() {
        let index = grad.iter().position(|g| !g.is_finite()).unwrap_or(0);
        return Err(NnError::NonFinite { what: "gradient", index });
    }
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    if coef < 1.0 {
        grad.iter_mut().for_each(|g| *g *= coef);
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_ranges_complement_frozen() {
        assert_eq!(active_ranges(10, &[2..4, 3..6, 8..8]).unwrap(), vec![0..2, 6..10]);
        assert_eq!(active_ranges(4, &[]).unwrap(), vec![0..4]);
        assert!(matches!(
            active_ranges(4, std::slice::from_ref(&(2..5))),
            Err(NnError::FrozenOutOfBounds { end: 5, .. })
        ));
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let mut g = vec![3.0, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 1.0).unwrap(), 5.0);
        let c = 1.0 / (5.0 + 1e-6);
        assert_eq!(g, vec![3.0 * c, 4.0 * c]);
        let mut small = vec![0.1, 0.0];
        clip_grad_norm(&mut small, 1.0).unwrap();
        assert_eq!(small, vec![0.1, 0.0]);
        assert!(clip_grad_norm(&mut [f64::NAN], 1.0).is_err());
    }
}
