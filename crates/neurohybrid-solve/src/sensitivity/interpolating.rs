//! [`InterpolatingAdjoint`]: the continuous adjoint integrated backward against the stored
//! (or checkpointed and recomputed) dense forward solution.

use super::adjoint_system::{AdjointSystem, Trajectory};
use super::continuous::{
    Forward, absorb_adjoint_stats, forward, is_zero, loss_at, memory, solve_piece, sweep,
};
use super::{Gradient, Loss, Sensitivity};
use crate::controller::StepSizeController;
use crate::dense::DenseOutput;
use crate::error::{Result, SolveError};
use crate::problem::Problem;
use crate::save::SaveAt;
use crate::solve::solve;
use crate::stats::Stats;
use crate::stepper::Stepper;
use neurohybrid_system::Vjp;
use std::borrow::Cow;
use std::cell::OnceCell;

const NAME: &str = "interpolating adjoint";

/// The interpolating continuous adjoint (SciMLSensitivity's `InterpolatingAdjoint`; Rackauckas
/// et al. 2020, "Universal Differential Equations for Scientific Machine Learning",
/// arXiv:2001.04385, and Cao, Li, Petzold & Serban 2003).
///
/// The forward solve keeps its dense output; `(λ, μ)` — `n + m` states — is then integrated
/// backward from `t1` to `t0` with the *same* stepper and controller, reading `y(t)` from the
/// interpolant. Loss cotangents enter as jumps at the save times, impulses as
/// `λ ← (∂M/∂y)ᵀλ`, `μ += (∂M/∂p)ᵀλ`.
///
/// Because the state is never re-integrated backward, it is stable on diffusion PDEs, where
/// [`BacksolveAdjoint`](super::BacksolveAdjoint) is not — with
/// [`QuadratureAdjoint`](super::QuadratureAdjoint) and the discrete adjoint, one of the PDE
/// methods. Cost: one
/// backward solve, one VJP per adjoint right-hand side; memory: the forward dense output
/// (`steps × (degree + 1)` state vectors), or with [`InterpolatingAdjoint::with_checkpoints`]
/// `K` checkpoints plus the dense output of one of `K` stretches, recomputed during the
/// backward pass (SciMLSensitivity's `InterpolatingAdjoint(checkpointing = true)`).
///
/// The gradient is that of the continuous problem, accurate to the tolerances of both solves
/// (not the exact derivative of the computed solution, which is what the discrete adjoint
/// gives).
///
/// Steppers: any explicit stepper; any implicit stepper that accepts a system with a
/// `Jacobian` (the adjoint system provides the transposed `−(∂f/∂y)ᵀ` and the `−(∂f/∂p)ᵀ`
/// rows when the forward system has `Jacobian + Jvp`). The controller is reused for the
/// backward solve, so a per-component `atol` (length `n`) is refused there (length `n + m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterpolatingAdjoint {
    checkpoints: Option<usize>,
}

impl InterpolatingAdjoint {
    /// Store the whole forward dense output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store only `k ≥ 1` states (the starts of `k` equal stretches of the span; impulses cut
    /// further) and recompute each stretch's dense output from its start when the backward pass
    /// reaches it: one extra forward solve in total, memory bounded by the longest stretch.
    pub fn with_checkpoints(k: usize) -> Self {
        Self { checkpoints: Some(k.max(1)) }
    }

    /// The number of checkpointed stretches, if checkpointing.
    pub fn checkpoints(&self) -> Option<usize> {
        self.checkpoints
    }
}

/// Interior cut times splitting `(t0, t1)` into `k` equal stretches.
pub(crate) fn uniform_cuts(t0: f64, t1: f64, k: usize) -> Vec<f64> {
    (1..k).map(|i| t0 + (t1 - t0) * (i as f64 / k as f64)).collect()
}

impl<S, St, C> Sensitivity<S, St, C> for InterpolatingAdjoint
where
    S: Vjp,
    St: for<'x> Stepper<&'x S> + for<'x> Stepper<AdjointSystem<'x, S>>,
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
        let cuts = self.checkpoints.map_or_else(Vec::new, |k| uniform_cuts(t0, t1, k));
        let keep = self.checkpoints.is_none();
        let fwd = forward(NAME, problem, stepper, controller, save_at, &cuts, keep)?;
        let (value, cot) = loss_at(NAME, loss, &fwd, n)?;

        let pattern = OnceCell::new();
        let mut rev = Stats::default();
        let mut recomputed = 0;
        let mut peak_dense = 0;
        let degree = <St as Stepper<&S>>::dense_degree(stepper);
        let mut dense_of = |k: usize, stats: &mut Stats| -> Result<Cow<'_, DenseOutput>> {
            let piece = &fwd.pieces[k];
            if let Some(d) = &piece.dense {
                return Ok(Cow::Borrowed(d));
            }
            let mut sol = solve_piece(
                sys,
                p,
                stepper,
                controller,
                (piece.a, piece.b),
                &piece.y_a,
                &SaveAt::Dense,
            )?;
            *stats += *sol.stats();
            recomputed += sol.stats().accepted_steps;
            let d = sol.dense.take().expect("SaveAt::Dense keeps the interpolant");
            peak_dense = peak_dense.max(d.n_segments() * (degree + 1) * n);
            Ok(Cow::Owned(d))
        };
        let mut x = vec![0.0; n + m];
        let mut integrate = |dense: &DenseOutput,
                             lam: &mut [f64],
                             mu: &mut [f64],
                             from: f64,
                             to: f64,
                             stats: &mut Stats|
         -> Result<()> {
            if from == to || is_zero(lam) {
                return Ok(());
            }
            x[..n].copy_from_slice(lam);
            x[n..].copy_from_slice(mu);
            let adj = AdjointSystem::new(sys, p, Trajectory::new(dense), true, &pattern);
            let pr = Problem::new(adj, x.clone(), Vec::new(), (from, to));
            let sol = solve(&pr, stepper, controller, &SaveAt::Final)?;
            absorb_adjoint_stats(stats, sol.stats(), m);
            if !sol.is_success() {
                return Err(SolveError::AdjointSolveFailed {
                    method: NAME.to_string(),
                    status: sol.status(),
                });
            }
            let last = sol.last().expect("a successful solve saves its end");
            lam.copy_from_slice(&last[..n]);
            mu.copy_from_slice(&last[n..]);
            Ok(())
        };
        let (dl_dy0, dl_dp) = sweep(&fwd, &cot, n, p, &mut dense_of, &mut integrate, &mut rev)?;
        let stored = stored_values(&fwd, n, peak_dense);
        Ok(Gradient {
            value,
            dl_dy0,
            dl_dp,
            solution: fwd.solution(n),
            reverse_stats: rev,
            memory: memory(n, fwd.steps(), stored, recomputed),
        })
    }
}

/// Values held at the peak: saved and impulse states, piece starts when checkpointing, and the
/// dense output (all of it when stored, one stretch's when recomputed).
pub(crate) fn stored_values(fwd: &Forward, n: usize, peak_recomputed_dense: usize) -> usize {
    let stored_dense: usize = fwd.pieces.iter().map(|p| p.dense_values).sum();
    let checkpoints = if stored_dense == 0 { fwd.pieces.len() * n } else { 0 };
    fwd.stored_states() * n + checkpoints + stored_dense + peak_recomputed_dense
}
