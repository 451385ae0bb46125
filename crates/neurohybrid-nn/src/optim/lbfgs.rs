//! Limited-memory BFGS with a strong-Wolfe line search, for mechanistic calibration.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::StrongWolfe;
use super::active_ranges;
use crate::error::{NnError, Result};

/// L-BFGS (Nocedal & Wright 2006, Algorithm 7.5, with the two-loop recursion of Algorithm 7.4
/// and the initial scaling `H₀ = (sᵀy / yᵀy) I` of eq. 7.20).
///
/// The objective closure writes the gradient into its second argument and returns the value;
/// a non-finite value during a line search is treated as "too far" and the step is shortened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lbfgs {
    /// Number of stored curvature pairs (default 10).
    pub memory: usize,
    /// Most iterations (default 1000).
    pub max_iters: usize,
    /// Stop when `‖∇f‖∞ ≤ grad_tol` (default 1e-8).
    pub grad_tol: f64,
    /// Stop when `|f_k − f_{k+1}| ≤ f_tol · max(1, |f_k|)` (default 0: off).
    pub f_tol: f64,
    /// Line search configuration.
    pub line_search: StrongWolfe,
    /// Parameter ranges left untouched (their gradient entries are zeroed).
    pub frozen: Vec<Range<usize>>,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs {
            memory: 10,
            max_iters: 1000,
            grad_tol: 1e-8,
            f_tol: 0.0,
            line_search: StrongWolfe::default(),
            frozen: Vec::new(),
        }
    }
}

/// Why [`Lbfgs::minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LbfgsStatus {
    /// The gradient norm fell below `grad_tol`.
    GradTol,
    /// The decrease of the objective fell below `f_tol`.
    FTol,
    /// `max_iters` iterations were taken.
    MaxIters,
    /// No step along a descent direction decreased the objective (often: converged to the
    /// precision the objective is evaluated in).
    LineSearchFailed,
}

impl LbfgsStatus {
    /// Whether a convergence criterion was met.
    pub fn is_success(self) -> bool {
        matches!(self, LbfgsStatus::GradTol | LbfgsStatus::FTol)
    }
}

/// What [`Lbfgs::minimize`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LbfgsReport {
    /// Why it stopped.
    pub status: LbfgsStatus,
    /// Iterations (accepted steps).
    pub iterations: usize,
    /// Objective evaluations, the initial one included.
    pub evaluations: usize,
    /// Final objective value.
    pub value: f64,
    /// Final `‖∇f‖∞`.
    pub grad_norm: f64,
    /// Steps accepted without the strong Wolfe conditions (line search out of evaluations,
    /// best sufficient-decrease point taken).
    pub fallback_steps: usize,
}

fn inf_norm(g: &[f64]) -> f64 {
    g.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Lbfgs {
    /// Freezes parameter ranges.
    pub fn freeze(mut self, ranges: impl IntoIterator<Item = Range<usize>>) -> Self {
        self.frozen.extend(ranges);
        self
    }

    /// Minimizes `f` from `x` (updated in place to the final iterate).
    ///
    /// `Err` only for misuse (bad configuration, a non-finite value or gradient at the start);
    /// a run that stops early says why in [`LbfgsReport::status`].
    pub fn minimize<F>(&self, x: &mut [f64], mut f: F) -> Result<LbfgsReport>
    where
        F: FnMut(&[f64], &mut [f64]) -> f64,
    {
        self.line_search.validate()?;
        if self.memory == 0
            || self.grad_tol.is_nan()
            || self.grad_tol < 0.0
            || self.f_tol.is_nan()
            || self.f_tol < 0.0
        {
            return Err(NnError::config(
                "L-BFGS",
                "memory must be positive, tolerances non-negative",
            ));
        }
        let n = x.len();
        let active = active_ranges(n, &self.frozen)?;
        let mask = |g: &mut [f64]| {
            let mut at = 0;
            for r in &active {
                g[at..r.start].iter_mut().for_each(|v| *v = 0.0);
                at = r.end;
            }
            g[at..].iter_mut().for_each(|v| *v = 0.0);
        };
        let m = self.memory;
        let (mut s, mut y) = (vec![0.0; m * n], vec![0.0; m * n]);
        let (mut rho, mut alpha) = (vec![0.0; m], vec![0.0; m]);
        let (mut g, mut d, mut xt, mut gt) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let (mut stored, mut newest) = (0usize, 0usize);

        let mut fx = f(x, &mut g);
        mask(&mut g);
        if !fx.is_finite() {
            return Err(NnError::NonFinite { what: "initial objective value", index: 0 });
        }
        if let Some(index) = g.iter().position(|v| !v.is_finite()) {
            return Err(NnError::NonFinite { what: "initial gradient", index });
        }
        let mut evaluations = 1;
        let mut fallback_steps = 0;
        let report =
            |status, iterations, evaluations, value, g: &[f64], fallback_steps| LbfgsReport {
                status,
                iterations,
                evaluations,
                value,
                grad_norm: inf_norm(g),
                fallback_steps,
            };

        for k in 0..self.max_iters {
            if inf_norm(&g) <= self.grad_tol {
                return Ok(report(LbfgsStatus::GradTol, k, evaluations, fx, &g, fallback_steps));
            }
            // Two-loop recursion (N&W Alg. 7.4): d = -H g.
            d.copy_from_slice(&g);
            for j in 0..stored {
                let i = (newest + m - j) % m;
                let a = rho[i] * dot(&s[i * n..(i + 1) * n], &d);
                alpha[i] = a;
                d.iter_mut().zip(&y[i * n..(i + 1) * n]).for_each(|(q, yi)| *q -= a * yi);
            }
            if stored > 0 {
                let (sn, yn) = (&s[newest * n..(newest + 1) * n], &y[newest * n..(newest + 1) * n]);
                let gamma = dot(sn, yn) / dot(yn, yn);
                d.iter_mut().for_each(|v| *v *= gamma);
            }
            for j in (0..stored).rev() {
                let i = (newest + m - j) % m;
                let b = rho[i] * dot(&y[i * n..(i + 1) * n], &d);
                let c = alpha[i] - b;
                d.iter_mut().zip(&s[i * n..(i + 1) * n]).for_each(|(r, si)| *r += c * si);
            }
            d.iter_mut().for_each(|v| *v = -*v);
            let mut slope = dot(&g, &d);
            if slope.is_nan() || slope >= 0.0 {
                // Not a descent direction (lost positive definiteness to rounding): restart
                // from steepest descent.
                stored = 0;
                d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
                slope = dot(&g, &d);
            }
            // First step: scale so the trial step has unit length (N&W p. 178); later steps:
            // the quasi-Newton step α = 1 is well scaled by H₀.
            let alpha0 = if stored == 0 { (1.0 / dot(&g, &g).sqrt()).min(1.0) } else { 1.0 };
            let mut obj = |xv: &[f64], gv: &mut [f64]| {
                let v = f(xv, gv);
                mask(gv);
                v
            };
            let found =
                self.line_search.search(&mut obj, x, fx, slope, &d, alpha0, &mut xt, &mut gt);
            evaluations += found.evals;
            if found.alpha == 0.0
                || found.value.is_nan()
                || found.value > fx + 4.0 * f64::EPSILON * fx.abs()
                || gt.iter().any(|v| !v.is_finite())
            {
                return Ok(report(
                    LbfgsStatus::LineSearchFailed,
                    k,
                    evaluations,
                    fx,
                    &g,
                    fallback_steps,
                ));
            }
            if !found.wolfe {
                fallback_steps += 1;
            }
            // New curvature pair s = x₊ − x, y = g₊ − g; kept only when sᵀy > 0 (guaranteed
            // by the strong Wolfe conditions, checked for the fallback steps).
            let next = if stored == 0 { 0 } else { (newest + 1) % m };
            let (sn, yn) = (&mut s[next * n..(next + 1) * n], &mut y[next * n..(next + 1) * n]);
            for i in 0..n {
                sn[i] = xt[i] - x[i];
                yn[i] = gt[i] - g[i];
            }
            let sy = dot(sn, yn);
            if sy > f64::EPSILON * dot(yn, yn) {
                rho[next] = 1.0 / sy;
                newest = next;
                stored = (stored + 1).min(m);
            } else if stored == m {
                // The rejected pair overwrote the oldest one: forget it.
                stored -= 1;
            }
            let f_old = fx;
            x.copy_from_slice(&xt);
            g.copy_from_slice(&gt);
            fx = found.value;
            if self.f_tol > 0.0 && (f_old - fx).abs() <= self.f_tol * f_old.abs().max(1.0) {
                return Ok(report(LbfgsStatus::FTol, k + 1, evaluations, fx, &g, fallback_steps));
            }
        }
        Ok(report(LbfgsStatus::MaxIters, self.max_iters, evaluations, fx, &g, fallback_steps))
    }
}
