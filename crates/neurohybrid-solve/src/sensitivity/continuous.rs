//! Shared machinery of the continuous adjoints ([`BacksolveAdjoint`](super::BacksolveAdjoint),
//! [`InterpolatingAdjoint`](super::InterpolatingAdjoint),
//! [`QuadratureAdjoint`](super::QuadratureAdjoint)): the adjoint ODE as an [`OdeSystem`] (with
//! the transposed Jacobian for implicit steppers), the piecewise forward pass, and the backward
//! sweep over save and impulse times.
//!
//! The adjoint of `y' = f(t, y, p)`, `L = Σᵢ ℓᵢ(y(tᵢ))` is (Chen et al. 2018, "Neural Ordinary
//! Differential Equations", eq. 4; Cao, Li, Petzold & Serban 2003, SIAM J. Sci. Comput. 24):
//!
//! ```text
//! λ' = −(∂f/∂y)ᵀ λ,   μ' = −(∂f/∂p)ᵀ λ,   λ(t1) = 0, μ(t1) = 0, integrated from t1 to t0,
//! λ(tᵢ⁻) = λ(tᵢ⁺) + ∂ℓᵢ/∂y          at every save time,
//! λ(τ⁻) = (∂M/∂y)ᵀ λ(τ⁺),  μ += (∂M/∂p)ᵀ λ(τ⁺)   at every impulse y(τ⁺) = M(y(τ⁻)),
//! dL/dy0 = λ(t0),  dL/dp = μ(t0).
//! ```

use super::{Loss, MemoryReport, loss_cotangents, save_times};
use crate::controller::StepSizeController;
use crate::dense::DenseOutput;
use crate::error::{Result, SolveError};
use crate::problem::{Impulse, Problem};
use crate::save::SaveAt;
use crate::solution::Solution;
use crate::solve::solve;
use crate::stats::{Stats, Status};
use crate::stepper::Stepper;
use neurohybrid_system::OdeSystem;
use std::sync::Arc;

/// Gauss–Legendre nodes on `[0, 1]` and weights (summing to 1) for 1–5 points
/// (Abramowitz & Stegun 25.4.30, mapped from `[−1, 1]`). `k` points integrate polynomials of
/// degree `2k − 1` exactly.
pub(crate) fn gauss_legendre(k: usize) -> (&'static [f64], &'static [f64]) {
    const N1: [f64; 1] = [0.5];
    const W1: [f64; 1] = [1.0];
    const N2: [f64; 2] = [0.211_324_865_405_187_1, 0.788_675_134_594_812_9];
    const W2: [f64; 2] = [0.5, 0.5];
    const N3: [f64; 3] = [0.112_701_665_379_258_3, 0.5, 0.887_298_334_620_741_7];
    const W3: [f64; 3] = [5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0];
    const N4: [f64; 4] = [
        0.069_431_844_202_973_71,
        0.330_009_478_207_571_9,
        0.669_990_521_792_428_1,
        0.930_568_155_797_026_3,
    ];
    const W4: [f64; 4] = [
        0.173_927_422_568_726_9,
        0.326_072_577_431_273_1,
        0.326_072_577_431_273_1,
        0.173_927_422_568_726_9,
    ];
    const N5: [f64; 5] = [
        0.046_910_077_030_668,
        0.230_765_344_947_158_5,
        0.5,
        0.769_234_655_052_841_5,
        0.953_089_922_969_332,
    ];
    const W5: [f64; 5] = [
        0.118_463_442_528_094_5,
        0.239_314_335_249_683_2,
        64.0 / 225.0,
        0.239_314_335_249_683_2,
        0.118_463_442_528_094_5,
    ];
    match k {
        1 => (&N1, &W1),
        2 => (&N2, &W2),
        3 => (&N3, &W3),
        4 => (&N4, &W4),
        _ => (&N5, &W5),
    }
}

/// Impulses fired at the end of a forward piece, in firing order, each with the state it was
/// applied to, and the state after all of them (the next piece's start).
pub(crate) struct Boundary {
    pub(crate) t: f64,
    pub(crate) impulses: Vec<(Arc<dyn Impulse>, Vec<f64>)>,
    pub(crate) post: Vec<f64>,
}

/// A stretch `[a, b]` of the forward solution with no impulse inside.
pub(crate) struct Piece {
    pub(crate) a: f64,
    pub(crate) b: f64,
    pub(crate) y_a: Vec<f64>,
    /// The piece's dense output (kept only when the method stores it).
    pub(crate) dense: Option<DenseOutput>,
    /// Values held by `dense` (coefficients), for the memory report.
    pub(crate) dense_values: usize,
    pub(crate) steps: usize,
}

/// The forward pass of a continuous adjoint: the solution cut into pieces at impulse times (and
/// checkpoints), the values at the save times, the states around each impulse.
pub(crate) struct Forward {
    pub(crate) ts: Vec<f64>,
    pub(crate) ys: Vec<f64>,
    pub(crate) pieces: Vec<Piece>,
    /// `ends[k]` is the boundary at `pieces[k].b` (possibly without impulses).
    pub(crate) ends: Vec<Boundary>,
    pub(crate) stats: Stats,
    pub(crate) dir: f64,
}

impl Forward {
    /// The forward solution at the save times, as [`super::Gradient::solution`] reports it.
    pub(crate) fn solution(&self, n: usize) -> Solution {
        Solution {
            n,
            ts: self.ts.clone(),
            ys: self.ys.clone(),
            status: Status::Success,
            stats: self.stats,
            dense: None,
        }
    }

    pub(crate) fn steps(&self) -> usize {
        self.pieces.iter().map(|p| p.steps).sum()
    }

    /// State vectors held besides the pieces' dense output: saved values and the states around
    /// impulses.
    pub(crate) fn stored_states(&self) -> usize {
        self.ts.len() + self.ends.iter().map(|b| b.impulses.len() + 1).sum::<usize>()
    }
}

/// Solve `[a, b]` from `y_a` (a piece without impulses); `Err` unless it reaches `b`.
pub(crate) fn solve_piece<S, St, C>(
    sys: &S,
    p: &[f64],
    stepper: &St,
    controller: &C,
    (a, b): (f64, f64),
    y_a: &[f64],
    save_at: &SaveAt,
) -> Result<Solution>
where
    S: OdeSystem + ?Sized,
    St: for<'x> Stepper<&'x S>,
    C: StepSizeController,
{
    let pr = Problem::new(sys, y_a.to_vec(), p.to_vec(), (a, b));
    let sol = solve(&pr, stepper, controller, save_at)?;
    if !sol.is_success() {
        return Err(SolveError::ForwardSolveFailed { status: sol.status() });
    }
    Ok(sol)
}

/// Checks the save times (finite, inside the span, in integration order).
fn check_save_times(ts: &[f64], t0: f64, t1: f64) -> Result<()> {
    let dir = (t1 - t0).signum();
    let mut prev = t0;
    for (index, &t) in ts.iter().enumerate() {
        let bad = |reason| Err(SolveError::InvalidSaveTime { index, t, t0, t1, reason });
        if !t.is_finite() {
            return bad("is not finite");
        }
        if dir * (t - t0) < 0.0 || dir * (t - t1) > 0.0 {
            return bad("lies outside the span");
        }
        if dir * (t - prev) < 0.0 {
            return bad("is out of order");
        }
        prev = t;
    }
    Ok(())
}

/// The forward pass, cut at the problem's impulse times and at `cuts` (checkpoints, strictly
/// inside the span). With `keep_dense` every piece keeps its dense output (interpolating and
/// quadrature adjoints without checkpoints); otherwise only the save values and the piece starts
/// are kept (backsolve; checkpointed interpolation re-solves pieces later).
///
/// Cutting restarts the stepper at each cut (fresh initial step), as the solve loop does after
/// an impulse; re-solving a piece from its stored start reproduces it bit for bit (the loop is
/// deterministic and steps are not shortened to hit save times), so the backward pass reads
/// exactly the trajectory whose loss is reported.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<S, St, C>(
    method: &str,
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
    cuts: &[f64],
    keep_dense: bool,
) -> Result<Forward>
where
    S: OdeSystem,
    St: for<'x> Stepper<&'x S>,
    C: StepSizeController,
{
    let sys = problem.system();
    let p = problem.params();
    let n = sys.n_states();
    let (t0, t1) = problem.t_span();
    let dir = (t1 - t0).signum();
    let ts = save_times(method, problem, save_at)?;
    if t0.is_finite() && t1.is_finite() && t0 != t1 {
        check_save_times(&ts, t0, t1)?;
    }
    if problem.y0().len() != n {
        return Err(SolveError::LengthMismatch {
            what: "y0",
            expected: n,
            found: problem.y0().len(),
        });
    }
    for (index, imp) in problem.impulses().iter().enumerate() {
        if !imp.t.is_finite() {
            return Err(SolveError::InvalidImpulseTime { index, t: imp.t });
        }
    }
    let impulses = problem.impulses_in_span();
    let mut bounds: Vec<f64> = impulses.iter().map(|i| i.t).collect();
    bounds.extend(cuts.iter().copied().filter(|&c| dir * (c - t0) > 0.0 && dir * (t1 - c) > 0.0));
    bounds.push(t1);
    bounds.sort_by(|a, b| (dir * a).total_cmp(&(dir * b)));
    bounds.dedup();

    let degree = <St as Stepper<&S>>::dense_degree(stepper);
    let mut fwd = Forward {
        ts,
        ys: Vec::new(),
        pieces: Vec::new(),
        ends: Vec::new(),
        stats: Stats::default(),
        dir,
    };
    let mut j = 0; // next save time
    let mut y = problem.y0().to_vec();
    while fwd.ts.get(j) == Some(&t0) {
        fwd.ys.extend_from_slice(&y);
        j += 1;
    }
    let mut next_imp = 0;
    let mut a = t0;
    let mut buf = vec![0.0; n];
    for &b in &bounds {
        let first_inner = j;
        while fwd.ts.get(j).is_some_and(|&s| dir * (b - s) > 0.0) {
            j += 1;
        }
        let inner = &fwd.ts[first_inner..j];
        let (sol, dense) = if keep_dense {
            let mut sol = solve_piece(sys, p, stepper, controller, (a, b), &y, &SaveAt::Dense)?;
            let dense = sol.dense.take().expect("SaveAt::Dense keeps the interpolant");
            for &s in inner {
                dense.eval(s, &mut buf)?;
                fwd.ys.extend_from_slice(&buf);
            }
            (sol, Some(dense))
        } else {
            let mut times = inner.to_vec();
            times.push(b);
            let sol = solve_piece(sys, p, stepper, controller, (a, b), &y, &SaveAt::Times(times))?;
            fwd.ys.extend_from_slice(&sol.ys()[..inner.len() * n]);
            (sol, None)
        };
        fwd.stats += *sol.stats();
        let steps = sol.stats().accepted_steps;
        let dense_values = dense.as_ref().map_or(0, |d| d.n_segments() * (degree + 1) * n);
        fwd.pieces.push(Piece { a, b, y_a: y.clone(), dense, dense_values, steps });
        y.copy_from_slice(sol.last().expect("a successful solve saves its end"));
        let mut fired = Vec::new();
        while let Some(imp) = impulses.get(next_imp).filter(|i| i.t == b) {
            imp.map.apply(b, &y, p, &mut buf);
            fired.push((Arc::clone(&imp.map), y.clone()));
            y.copy_from_slice(&buf);
            fwd.stats.impulses += 1;
            next_imp += 1;
        }
        if !y.iter().all(|v| v.is_finite()) {
            return Err(SolveError::ForwardSolveFailed { status: Status::NonFinite { t: b } });
        }
        while fwd.ts.get(j) == Some(&b) {
            fwd.ys.extend_from_slice(&y);
            j += 1;
        }
        fwd.ends.push(Boundary { t: b, impulses: fired, post: y.clone() });
        a = b;
    }
    Ok(fwd)
}

/// How one backward interval `[to, from]` of a piece is integrated: updates `λ` and `μ` in
/// place, reading the forward state from the piece's dense output.
pub(crate) type Integrate<'f> =
    dyn FnMut(&DenseOutput, &mut [f64], &mut [f64], f64, f64, &mut Stats) -> Result<()> + 'f;

/// The backward sweep of the interpolating and quadrature adjoints: from `t1` to `t0` over the
/// pieces in reverse, adding the loss cotangents at the save times and pulling `(λ, μ)` back
/// through every impulse; `dense_of(k)` yields piece `k`'s dense output (stored, or re-solved
/// from its checkpoint). Returns `(λ(t0), μ(t0)) = (dL/dy0, dL/dp)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep<'f>(
    fwd: &'f Forward,
    cot: &[f64],
    n: usize,
    p: &[f64],
    dense_of: &mut dyn FnMut(usize, &mut Stats) -> Result<std::borrow::Cow<'f, DenseOutput>>,
    integrate: &mut Integrate<'_>,
    stats: &mut Stats,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = p.len();
    let (mut lam, mut mu) = (vec![0.0; n], vec![0.0; m]);
    let (mut w_y, mut w_p) = (vec![0.0; n], vec![0.0; m]);
    let dir = fwd.dir;
    let mut j = fwd.ts.len();
    let add = |lam: &mut [f64], j: usize| {
        lam.iter_mut().zip(&cot[j * n..(j + 1) * n]).for_each(|(l, c)| *l += c);
    };
    for k in (0..fwd.pieces.len()).rev() {
        let (piece, end) = (&fwd.pieces[k], &fwd.ends[k]);
        while j > 0 && fwd.ts[j - 1] == end.t {
            add(&mut lam, j - 1);
            j -= 1;
        }
        impulses_back(end, p, &mut lam, &mut mu, &mut w_y, &mut w_p, stats);
        let dense = dense_of(k, stats)?;
        let mut cur = piece.b;
        while j > 0 && dir * (fwd.ts[j - 1] - piece.a) > 0.0 {
            let s = fwd.ts[j - 1];
            integrate(&dense, &mut lam, &mut mu, cur, s, stats)?;
            cur = s;
            while j > 0 && fwd.ts[j - 1] == s {
                add(&mut lam, j - 1);
                j -= 1;
            }
        }
        integrate(&dense, &mut lam, &mut mu, cur, piece.a, stats)?;
    }
    while j > 0 {
        add(&mut lam, j - 1); // save times at t0
        j -= 1;
    }
    Ok((lam, mu))
}

/// `λ ← (∂M/∂y)ᵀλ`, `μ += (∂M/∂p)ᵀλ` for the impulses at a boundary, last fired first.
pub(crate) fn impulses_back(
    end: &Boundary,
    p: &[f64],
    lam: &mut [f64],
    mu: &mut [f64],
    w_y: &mut [f64],
    w_p: &mut [f64],
    stats: &mut Stats,
) {
    for (map, pre) in end.impulses.iter().rev() {
        map.vjp(end.t, pre, p, lam, w_y, w_p);
        lam.copy_from_slice(w_y);
        mu.iter_mut().zip(w_p.iter()).for_each(|(a, b)| *a += b);
        stats.vjp_evals += 1;
    }
}

/// Whether the adjoint state is identically zero (no cotangent has entered yet): the backward
/// solve is then skipped, since `λ = 0` stays `0` and `μ` does not change.
pub(crate) fn is_zero(lam: &[f64]) -> bool {
    lam.iter().all(|&v| v == 0.0)
}

/// The backward solve's work as reverse work: every adjoint right-hand side is one VJP.
pub(crate) fn absorb_adjoint_stats(rev: &mut Stats, s: &Stats, jvps_per_jacobian: usize) {
    let mut s = *s;
    s.vjp_evals += s.rhs_evals;
    s.rhs_evals = 0;
    s.jvp_evals += jvps_per_jacobian * s.jacobian_evals;
    *rev += s;
}

/// Evaluate the loss at the forward save values: `(L, cotangents)`.
pub(crate) fn loss_at(
    method: &str,
    loss: &dyn Loss,
    fwd: &Forward,
    n: usize,
) -> Result<(f64, Vec<f64>)> {
    loss_cotangents(method, loss, &fwd.solution(n))
}

/// A memory report counted in state vectors of length `n` (values rounded up).
pub(crate) fn memory(n: usize, steps: usize, values: usize, recomputed: usize) -> MemoryReport {
    MemoryReport {
        n_states: n,
        steps,
        peak_stored_states: values.div_ceil(n.max(1)),
        store_all_states: steps + 1,
        recomputed_steps: recomputed,
    }
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre;

    #[test]
    fn gauss_legendre_integrates_degree_2k_minus_1_exactly() {
        for k in 1..=5 {
            let (nodes, weights) = gauss_legendre(k);
            for deg in 0..2 * k {
                let q: f64 = nodes.iter().zip(weights).map(|(x, w)| w * x.powi(deg as i32)).sum();
                assert!((q - 1.0 / (deg as f64 + 1.0)).abs() < 1e-15, "k = {k}, degree {deg}");
            }
        }
    }
}
