//! Strong-Wolfe line search: bracketing (Nocedal & Wright 2006, Algorithm 3.5) and zoom
//! (Algorithm 3.6) with safeguarded cubic interpolation (eq. 3.59).

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// Configuration of the strong-Wolfe line search.
///
/// A step `α` is accepted when `φ(α) ≤ φ(0) + c₁αφ'(0)` (sufficient decrease) and
/// `|φ'(α)| ≤ c₂|φ'(0)|` (strong curvature); with `c₂ < 1` the curvature condition guarantees
/// `sᵀy > 0`, which keeps the L-BFGS matrix positive definite (N&W §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StrongWolfe {
    /// Sufficient-decrease constant (default 1e-4, N&W p. 33).
    pub c1: f64,
    /// Curvature constant (default 0.9, the quasi-Newton choice, N&W p. 34).
    pub c2: f64,
    /// Most objective evaluations per search (default 25).
    pub max_evals: usize,
    /// Largest step tried (default 1e10).
    pub alpha_max: f64,
}

impl Default for StrongWolfe {
    fn default() -> Self {
        StrongWolfe { c1: 1e-4, c2: 0.9, max_evals: 25, alpha_max: 1e10 }
    }
}

/// One evaluated trial point: step, value, directional derivative.
#[derive(Debug, Clone, Copy)]
struct Trial {
    a: f64,
    f: f64,
    d: f64,
}

/// Outcome of a search. On return `xt`/`gt` hold the point at `alpha` (when `alpha > 0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) alpha: f64,
    pub(crate) value: f64,
    pub(crate) evals: usize,
    /// Both Wolfe conditions hold (else: the best sufficient-decrease point, or `alpha == 0`).
    pub(crate) wolfe: bool,
}

impl StrongWolfe {
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0 < self.c1 && self.c1 < self.c2 && self.c2 < 1.0)
            || self.max_evals == 0
            || self.alpha_max.is_nan()
            || self.alpha_max <= 0.0
        {
            return Err(NnError::config(
                "strong Wolfe line search",
                format!("need 0 < c1 < c2 < 1, max_evals > 0, alpha_max > 0; got {self:?}"),
            ));
        }
        Ok(())
    }

    /// Searches along `d` from `x` (value `f0`, slope `d0 = ∇f·d < 0`), first trying `alpha0`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search<F: FnMut(&[f64], &mut [f64]) -> f64>(
        &self,
        f: &mut F,
        x: &[f64],
        f0: f64,
        d0: f64,
        d: &[f64],
        alpha0: f64,
        xt: &mut [f64],
        gt: &mut [f64],
    ) -> Found {
        let evals = std::cell::Cell::new(0usize);
        let mut eval = |a: f64, xt: &mut [f64], gt: &mut [f64]| {
            for ((t, &xi), &di) in xt.iter_mut().zip(x).zip(d) {
                *t = xi + a * di;
            }
            evals.set(evals.get() + 1);
            let v = f(xt, gt);
            let slope: f64 = gt.iter().zip(d).map(|(g, d)| g * d).sum();
            Trial { a, f: v, d: slope }
        };
        // Sufficient decrease tested up to the rounding of f (a few ulp of |f0|): near a
        // minimum with a large value the true decrease drops below one ulp, and an exact test
        // would reject every step though the gradient still points the way (the "approximate
        // Wolfe" observation of Hager & Zhang 2005).
        let slack = 4.0 * f64::EPSILON * f0.abs();
        let armijo = |t: &Trial| t.f.is_finite() && t.f <= f0 + self.c1 * t.a * d0 + slack;
        let curvature = |t: &Trial| t.d.abs() <= -self.c2 * d0;

        // Algorithm 3.5: expand until the interval [prev, cur] brackets an acceptable step.
        let mut prev = Trial { a: 0.0, f: f0, d: d0 };
        let mut a = alpha0.min(self.alpha_max);
        let mut first = true;
        let (mut lo, mut hi);
        loop {
            let cur = eval(a, xt, gt);
            if !armijo(&cur) || (!first && cur.f > prev.f + slack) {
                (lo, hi) = (prev, cur);
                break;
            }
            if curvature(&cur) {
                return Found { alpha: cur.a, value: cur.f, evals: evals.get(), wolfe: true };
            }
            if cur.d >= 0.0 {
                (lo, hi) = (cur, prev);
                break;
            }
            if evals.get() >= self.max_evals || cur.a >= self.alpha_max {
                return Found { alpha: cur.a, value: cur.f, evals: evals.get(), wolfe: false };
            }
            prev = cur;
            first = false;
            a = (2.0 * cur.a).min(self.alpha_max);
        }

        // Algorithm 3.6: shrink [lo, hi]; `lo` always satisfies sufficient decrease and has the
        // lowest value seen, `hi` is on the other side of an acceptable step.
        while evals.get() < self.max_evals {
            let (l, h) = (lo.a.min(hi.a), lo.a.max(hi.a));
            let width = h - l;
            if width <= f64::EPSILON * h.max(1e-300) {
                break;
            }
            let mut a = cubic_min(&lo, &hi).unwrap_or(0.5 * (lo.a + hi.a));
            // Safeguard: stay inside the interval, away from its ends, so it keeps shrinking.
            if !(a >= l + 0.1 * width && a <= h - 0.1 * width) {
                a = 0.5 * (lo.a + hi.a);
            }
            let t = eval(a, xt, gt);
            if !armijo(&t) || t.f > lo.f + slack {
                hi = t;
            } else {
                if curvature(&t) {
                    return Found { alpha: t.a, value: t.f, evals: evals.get(), wolfe: true };
                }
                if t.d * (hi.a - lo.a) >= 0.0 {
                    hi = lo;
                }
                lo = t;
            }
        }
        // Out of evaluations: fall back to the best sufficient-decrease point (re-evaluated so
        // that xt/gt hold it), or report no progress.
        if lo.a > 0.0 {
            let t = eval(lo.a, xt, gt);
            return Found { alpha: t.a, value: t.f, evals: evals.get(), wolfe: false };
        }
        Found { alpha: 0.0, value: f0, evals: evals.get(), wolfe: false }
    }
}

/// Minimizer of the cubic through two trial points with their slopes (N&W eq. 3.59), if real
/// and finite.
fn cubic_min(p: &Trial, q: &Trial) -> Option<f64> {
    if !(p.f.is_finite() && q.f.is_finite() && p.d.is_finite() && q.d.is_finite()) {
        return None;
    }
    let d1 = p.d + q.d - 3.0 * (p.f - q.f) / (p.a - q.a);
    let disc = d1 * d1 - p.d * q.d;
    if disc < 0.0 {
        return None;
    }
    let d2 = (q.a - p.a).signum() * disc.sqrt();
    let a = q.a - (q.a - p.a) * (q.d + d2 - d1) / (q.d - p.d + 2.0 * d2);
    a.is_finite().then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_interpolation_is_exact_for_cubics() {
        // φ(a) = (a - 1)³/3 - (a - 1)... use φ(a) = a³ - 3a, minimum at a = 1.
        let phi = |a: f64| Trial { a, f: a * a * a - 3.0 * a, d: 3.0 * a * a - 3.0 };
        let m = cubic_min(&phi(0.2), &phi(2.5)).unwrap();
        assert!((m - 1.0).abs() < 1e-12, "{m}");
    }

    #[test]
    fn accepts_a_strong_wolfe_step_on_a_quadratic() {
        let mut f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 3.0);
            (x[0] - 3.0).powi(2)
        };
        let (mut xt, mut gt) = (vec![0.0], vec![0.0]);
        let ls = StrongWolfe { c2: 0.1, ..StrongWolfe::default() };
        let r = ls.search(&mut f, &[0.0], 9.0, -6.0, &[1.0], 1.0, &mut xt, &mut gt);
        assert!(r.wolfe);
        assert!((r.alpha - 3.0).abs() < 0.3 * 3.0, "{r:?}");
        assert_eq!(xt[0], r.alpha);
        assert!(gt[0].abs() <= 0.1 * 6.0);
    }
}
