//! [`BacksolveAdjoint`]: the state re-integrated backward together with the adjoint
//! (`[y, λ, μ]`), O(1) memory, with a stability check that refuses to return a wrong gradient.

use super::adjoint_system::BacksolveSystem;
use super::continuous::{forward, impulses_back, loss_at, memory};
use super::{Gradient, Loss, Sensitivity};
use crate::controller::StepSizeController;
use crate::error::{Result, SolveError};
use crate::problem::Problem;
use crate::save::SaveAt;
use crate::solve::solve;
use crate::stats::Stats;
use crate::stepper::Stepper;
use neurohybrid_system::Vjp;

const NAME: &str = "backsolve adjoint";

/// The backsolve continuous adjoint (Chen et al. 2018, "Neural Ordinary Differential
/// Equations", Algorithm 1; SciMLSensitivity's `BacksolveAdjoint`).
///
/// The forward solve keeps nothing but the values the loss needs (the save times) and the
/// states around impulses; the augmented system `[y; λ; μ]` (`2n + m` states) is integrated
/// backward from `(y(t1), 0, 0)`. Fast and memory-free for small ODEs.
///
/// **Not for diffusion PDEs.** Integrating `u_t = DΔu` backward in time is the backward heat
/// equation: its high-frequency modes grow like `exp(D k² t)`, and rounding errors in them
/// swamp `y`. The peers measured it on Fisher–KPP 128×128 (`shared/peers/results`,
/// 2026-12-01): diffrax's backsolve adjoint stops at its step limit, torchdiffeq's
/// `odeint_adjoint` with `dt` underflow (DESIGN.md §7: backsolve is not the PDE default). Use
/// [`InterpolatingAdjoint`](super::InterpolatingAdjoint),
/// [`QuadratureAdjoint`](super::QuadratureAdjoint) or the discrete adjoint there.
///
/// So that an unstable backward solve never returns a wrong gradient, the re-integrated state
/// is compared with the forward values it is bound to meet — at every save time, every impulse
/// and at `t0` — in the relative max norm `‖y_back − y_fwd‖∞ / ‖y_fwd‖∞`. Beyond
/// [`BacksolveAdjoint::with_reconstruction_tolerance`] (default `1e-4`) the gradient ends with
/// [`SolveError::BacksolveUnstable`] `{ t, reconstruction_error }`; a backward solve that cannot
/// finish ends with [`SolveError::AdjointSolveFailed`]. Where the check passes, `y` is reset to
/// the stored forward value before continuing (the save values are kept anyway for the loss),
/// as SciMLSensitivity's `BacksolveAdjoint(checkpointing = true)` does, so errors do not carry
/// from one save interval into the next.
///
/// Explicit steppers only (the augmented system has no Jacobian: its `λ` rows would need
/// second derivatives of `f`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BacksolveAdjoint {
    reconstruction_tolerance: f64,
}

impl Default for BacksolveAdjoint {
    fn default() -> Self {
        Self { reconstruction_tolerance: 1e-4 }
    }
}

impl BacksolveAdjoint {
    /// With the default reconstruction tolerance `1e-4`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest relative max-norm mismatch between the backward-reconstructed and the forward
    /// state accepted at a save, impulse or initial time (a bad value — NaN or negative —
    /// makes every check fail).
    pub fn with_reconstruction_tolerance(mut self, tol: f64) -> Self {
        self.reconstruction_tolerance = tol;
        self
    }

    /// The reconstruction tolerance.
    pub fn reconstruction_tolerance(&self) -> f64 {
        self.reconstruction_tolerance
    }
}

/// `‖a − b‖∞ / ‖b‖∞` (absolute when `b` is zero; `∞` when `a` is not finite).
pub(crate) fn relative_mismatch(a: &[f64], b: &[f64]) -> f64 {
    if a.iter().any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let diff = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    let scale = b.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    if scale > 0.0 { diff / scale } else { diff }
}

impl<S, St, C> Sensitivity<S, St, C> for BacksolveAdjoint
where
    S: Vjp,
    St: for<'x> Stepper<&'x S> + for<'x> Stepper<BacksolveSystem<'x, S>>,
    C: StepSizeController,
{
    fn name(&self) -> &str {
        NAME
    }

    fn gradient(
        &self,
        problem: &Problem<S>,
        stepper: &St,
        controller: &C,
        save_at: &SaveAt,
        loss: &dyn Loss,
    ) -> Result<Gradient> {
        let (sys, p) = (problem.system(), problem.params());
        let (n, m) = (sys.n_states(), sys.n_params());
        let (t0, t1) = problem.t_span();
        let fwd = forward(NAME, problem, stepper, controller, save_at, &[], false)?;
        let (value, cot) = loss_at(NAME, loss, &fwd, n)?;
        let dir = fwd.dir;

        // Stops of the backward pass, from t1 down to t0: save times, impulse times, t0.
        let mut stops: Vec<f64> = fwd.ts.clone();
        stops.extend(fwd.ends.iter().map(|b| b.t));
        stops.push(t0);
        stops.sort_by(|a, b| (dir * b).total_cmp(&(dir * a)));
        stops.dedup();

        let mut x = vec![0.0; 2 * n + m];
        x[..n].copy_from_slice(&fwd.ends.last().expect("at least one piece").post);
        let (mut w_y, mut w_p) = (vec![0.0; n], vec![0.0; m]);
        let mut rev = Stats::default();
        let mut j = fwd.ts.len();
        let mut e = fwd.ends.len();
        let mut cur = t1;
        for &tau in &stops {
            if tau != cur {
                let pr =
                    Problem::new(BacksolveSystem::new(sys, p), x.clone(), Vec::new(), (cur, tau));
                let sol = solve(&pr, stepper, controller, &SaveAt::Final)?;
                // Each augmented right-hand side is one f and one VJP.
                rev += *sol.stats();
                rev.vjp_evals += sol.stats().rhs_evals;
                if !sol.is_success() {
                    return Err(SolveError::AdjointSolveFailed {
                        method: NAME.to_string(),
                        status: sol.status(),
                    });
                }
                x.copy_from_slice(sol.last().expect("a successful solve saves its end"));
                cur = tau;
                // The forward value at tau (right limit): an impulse boundary's post state, a
                // saved value, or y0.
                let known: &[f64] = if e > 0 && fwd.ends[e - 1].t == tau {
                    &fwd.ends[e - 1].post
                } else if j > 0 && fwd.ts[j - 1] == tau {
                    &fwd.ys[(j - 1) * n..j * n]
                } else {
                    problem.y0()
                };
                let mismatch = relative_mismatch(&x[..n], known);
                // A NaN mismatch or tolerance fails the check too.
                let within = mismatch <= self.reconstruction_tolerance;
                if !within {
                    return Err(SolveError::BacksolveUnstable {
                        t: tau,
                        reconstruction_error: mismatch,
                    });
                }
                x[..n].copy_from_slice(known);
            }
            let (lam, mu) = x[n..].split_at_mut(n);
            while j > 0 && fwd.ts[j - 1] == tau {
                let c = &cot[(j - 1) * n..j * n];
                lam.iter_mut().zip(c).for_each(|(l, c)| *l += c);
                j -= 1;
            }
            if e > 0 && fwd.ends[e - 1].t == tau {
                let end = &fwd.ends[e - 1];
                impulses_back(end, p, lam, mu, &mut w_y, &mut w_p, &mut rev);
                if let Some((_, pre)) = end.impulses.first() {
                    x[..n].copy_from_slice(pre);
                }
                e -= 1;
            }
        }
        let stored = fwd.stored_states() * n;
        Ok(Gradient {
            value,
            dl_dy0: x[n..2 * n].to_vec(),
            dl_dp: x[2 * n..].to_vec(),
            solution: fwd.solution(n),
            reverse_stats: rev,
            memory: memory(n, fwd.steps(), stored, 0),
        })
    }
}
