//! [`QuadratureAdjoint`]: `λ` backward against the dense forward solution, then
//! `dL/dp = ∫ λᵀ ∂f/∂p dt` by Gauss–Legendre quadrature on every backward step.

use super::adjoint_system::{AdjointSystem, Trajectory};
use super::continuous::{
    absorb_adjoint_stats, forward, gauss_legendre, is_zero, loss_at, memory, sweep,
};
use super::interpolating::stored_values;
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

const NAME: &str = "quadrature adjoint";

/// The quadrature continuous adjoint (SciMLSensitivity's `QuadratureAdjoint`; Cao, Li,
/// Petzold & Serban 2003, SIAM J. Sci. Comput. 24(3), §2: the parameter gradient as a
/// quadrature of `λᵀ ∂f/∂p` instead of an integrated state).
///
/// Only `λ` (`n` states, not `n + m`) is integrated backward against the forward dense output,
/// with its own dense output; on every backward step `[t_a, t_b]` the contribution
/// `∫ λ(t)ᵀ ∂f/∂p(t, y(t)) dt` is added by `k`-point Gauss–Legendre quadrature (exact for
/// polynomials of degree `2k − 1`; the default `k = 5` integrates the product of two
/// degree-4 interpolants exactly when `∂f/∂p` is linear in `y`). The error control of the
/// backward solve sees only `λ` — the point when `m` is large (a network's weights): the
/// adjoint solve does not grow with `m` and its steps are not chosen by the parameter
/// components. Costs `k` extra VJPs per backward step.
///
/// Like [`InterpolatingAdjoint`](super::InterpolatingAdjoint) it never re-integrates the state
/// backward, so it is stable on diffusion PDEs. Its `λ` system has the exact Jacobian
/// `−(∂f/∂y)ᵀ` (no parameter rows), so every implicit stepper, Rosenbrock included, accepts it
/// when the forward system has a `Jacobian`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuadratureAdjoint {
    points: usize,
}

impl Default for QuadratureAdjoint {
    fn default() -> Self {
        Self { points: 5 }
    }
}

impl QuadratureAdjoint {
    /// Five Gauss–Legendre points per backward step.
    pub fn new() -> Self {
        Self::default()
    }

    /// `k` Gauss–Legendre points per backward step, clamped to `1..=5`.
    pub fn with_points(k: usize) -> Self {
        Self { points: k.clamp(1, 5) }
    }

    /// Gauss–Legendre points per backward step.
    pub fn points(&self) -> usize {
        self.points
    }
}

impl<S, St, C> Sensitivity<S, St, C> for QuadratureAdjoint
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
        let fwd = forward(NAME, problem, stepper, controller, save_at, &[], true)?;
        let (value, cot) = loss_at(NAME, loss, &fwd, n)?;

        let (nodes, weights) = gauss_legendre(self.points);
        let degree = <St as Stepper<AdjointSystem<'_, S>>>::dense_degree(stepper);
        let pattern = OnceCell::new();
        let mut rev = Stats::default();
        let mut peak_lambda = 0;
        let (mut y, mut lt, mut w_y, mut w_p) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; m]);
        let mut dense_of = |k: usize, _: &mut Stats| -> Result<Cow<'_, DenseOutput>> {
            Ok(Cow::Borrowed(fwd.pieces[k].dense.as_ref().expect("dense output kept")))
        };
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
            let traj = Trajectory::new(dense);
            let adj = AdjointSystem::new(sys, p, traj, false, &pattern);
            let pr = Problem::new(adj, lam.to_vec(), Vec::new(), (from, to));
            let sol = solve(&pr, stepper, controller, &SaveAt::Dense)?;
            absorb_adjoint_stats(stats, sol.stats(), 0);
            if !sol.is_success() {
                return Err(SolveError::AdjointSolveFailed {
                    method: NAME.to_string(),
                    status: sol.status(),
                });
            }
            let lam_dense = sol.dense().expect("SaveAt::Dense keeps the interpolant");
            peak_lambda = peak_lambda.max(lam_dense.n_segments() * (degree + 1) * n);
            // μ(t_a) = μ(t_b) + ∫_{t_a}^{t_b} (∂f/∂p)ᵀ λ dt, one Gauss–Legendre rule per
            // backward step (the steps are where λ's interpolant is smooth).
            for w in sol.ts().windows(2) {
                let (ta, h) = (w[0], w[1] - w[0]);
                for (&c, &wt) in nodes.iter().zip(weights) {
                    let t = ta + c * h;
                    sol.interpolate(t, &mut lt)?;
                    traj.eval(t, &mut y);
                    sys.vjp(t, &y, p, &lt, &mut w_y, &mut w_p);
                    let s = wt * h.abs();
                    mu.iter_mut().zip(&w_p).for_each(|(a, b)| *a += s * b);
                }
                stats.vjp_evals += nodes.len();
            }
            lam.copy_from_slice(sol.last().expect("a successful solve saves its end"));
            Ok(())
        };
        let (dl_dy0, dl_dp) = sweep(&fwd, &cot, n, p, &mut dense_of, &mut integrate, &mut rev)?;
        let stored = stored_values(&fwd, n, peak_lambda);
        Ok(Gradient {
            value,
            dl_dy0,
            dl_dp,
            solution: fwd.solution(n),
            reverse_stats: rev,
            memory: memory(n, fwd.steps(), stored, 0),
        })
    }
}
