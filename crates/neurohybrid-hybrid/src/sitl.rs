//! [`SolverInTheLoop`]: a coarse solver step followed by a learned correction, trained by
//! unrolling steps with the discrete adjoint (Um et al. 2020, "Solver-in-the-Loop: Learning
//! from Differentiable Physics to Interact with Iterative PDE-Solvers", NeurIPS).

use crate::error::{HybridError, Result};
use crate::loss::TrajectoryLoss;
use crate::map::DiffMap;
use neurohybrid_solve::sensitivity::StepVjp;
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState};
use neurohybrid_system::Vjp;
use std::cell::RefCell;

/// `y_{n+1} = z + c(z; w)`, `z = Φ_Δt(t_n, y_n; p)`: one step of size `dt` of `stepper` on
/// `system`, then the corrector `c` (a [`DiffMap`] from states to state corrections).
///
/// Parameters are `params = [p | w]` (the system's, then the corrector's); `t_n = t0 + n·dt`.
/// The gradient of a loss of an unrolled rollout is the discrete adjoint of exactly the steps
/// taken: the corrector's VJP, then the stepper's own [`StepVjp`] (for the explicit
/// Runge–Kutta methods, the transformed adjoint of Hager 2000 / Sandu 2006), step by step
/// backwards. Nothing of Runge–Kutta is re-implemented here.
///
/// Working memory (the stepper's state and reverse scratch) is created at the first call and
/// reused; a step allocates nothing. `Send`, not `Sync`.
pub struct SolverInTheLoop<S, St, C>
where
    S: Vjp,
    St: StepVjp<S>,
    C: DiffMap,
{
    system: S,
    stepper: St,
    corrector: C,
    dt: f64,
    t0: f64,
    work: RefCell<Option<Work<St::State, St::VjpWork>>>,
}

struct Work<State, VjpWork> {
    state: State,
    vjp: VjpWork,
    stats: Stats,
    /// Corrector scratch: `c(z)`, `(∂c/∂z)ᵀ λ`.
    corr: Vec<f64>,
    z_bar: Vec<f64>,
}

impl<S, St, C> std::fmt::Debug for SolverInTheLoop<S, St, C>
where
    S: Vjp,
    St: StepVjp<S>,
    C: DiffMap,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolverInTheLoop")
            .field("stepper", &self.stepper.name())
            .field("n_states", &self.system.n_states())
            .field("dt", &self.dt)
            .field("t0", &self.t0)
            .finish()
    }
}

impl<S, St, C> SolverInTheLoop<S, St, C>
where
    S: Vjp,
    St: StepVjp<S>,
    C: DiffMap,
{
    /// Coarse steps of size `dt > 0` of `stepper` on `system`, corrected by `corrector`
    /// (`n_inputs = n_outputs = system.n_states()`).
    pub fn new(system: S, stepper: St, corrector: C, dt: f64) -> Result<Self> {
        let n = system.n_states();
        if corrector.n_inputs() != n || corrector.n_outputs() != n {
            return Err(HybridError::InvalidConfig {
                what: "solver-in-the-loop corrector".into(),
                message: format!(
                    "maps {} inputs to {} outputs; the state has {n}",
                    corrector.n_inputs(),
                    corrector.n_outputs()
                ),
            });
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(HybridError::InvalidConfig {
                what: "solver-in-the-loop step".into(),
                message: format!("dt = {dt} must be positive and finite"),
            });
        }
        Ok(Self { system, stepper, corrector, dt, t0: 0.0, work: RefCell::new(None) })
    }

    /// Start time of rollouts (default 0).
    pub fn with_t0(mut self, t0: f64) -> Self {
        self.t0 = t0;
        self
    }

    /// Total parameter count `system.n_params() + corrector.n_params()`.
    pub fn n_params(&self) -> usize {
        self.system.n_params() + self.corrector.n_params()
    }

    /// State length.
    pub fn n_states(&self) -> usize {
        self.system.n_states()
    }

    /// The coarse step size.
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// The system.
    pub fn system(&self) -> &S {
        &self.system
    }

    /// The corrector.
    pub fn corrector(&self) -> &C {
        &self.corrector
    }

    /// The stepper.
    pub fn stepper(&self) -> &St {
        &self.stepper
    }

    fn check(&self, what: &str, got: usize, expected: usize) -> Result<()> {
        if got == expected {
            Ok(())
        } else {
            Err(HybridError::LengthMismatch { what: what.into(), expected, got })
        }
    }

    /// The stepper's state at `(t, y)`, with stages of the step from `y` computed.
    fn coarse_step(&self, w: &mut Work<St::State, St::VjpWork>, t: f64, y: &[f64], p: &[f64]) {
        w.state.y_mut().copy_from_slice(y);
        self.stepper.restart(&self.system, p, &mut w.state, t, &mut w.stats);
        let outcome =
            self.stepper.step(&self.system, p, &mut w.state, Step { t, h: self.dt }, &mut w.stats);
        // Explicit steppers always compute a step; an implicit one whose Newton iteration
        // failed leaves a stale proposal, which the non-finite check of the caller catches
        // only if it is non-finite, so report it loudly instead.
        assert!(
            matches!(outcome, StepOutcome::Computed),
            "solver-in-the-loop: the coarse stepper {} failed a step at t = {t}",
            self.stepper.name()
        );
    }

    fn with_work<R>(
        &self,
        y: &[f64],
        p: &[f64],
        f: impl FnOnce(&mut Work<St::State, St::VjpWork>) -> R,
    ) -> R {
        let mut cell = self.work.borrow_mut();
        let w = cell.get_or_insert_with(|| {
            let mut stats = Stats::default();
            let state = self.stepper.init(&self.system, p, self.t0, y, &mut stats);
            let vjp = self.stepper.vjp_work(&self.system, &state);
            let n = self.system.n_states();
            Work { state, vjp, stats, corr: vec![0.0; n], z_bar: vec![0.0; n] }
        });
        f(w)
    }

    /// One corrected step at time `t`: `out = z + c(z; w)`, `z = Φ_Δt(t, y; p)`.
    /// `params = [p | w]`.
    ///
    /// # Panics
    /// On slices of the wrong length (a caller bug; [`SolverInTheLoop::rollout_gradient`]
    /// checks its inputs and returns errors).
    pub fn step_at(&self, t: f64, y: &[f64], params: &[f64], out: &mut [f64]) {
        let (p, wc) = params.split_at(self.system.n_params());
        self.with_work(y, p, |w| {
            self.coarse_step(w, t, y, p);
            let z = w.state.y_proposed();
            self.corrector.eval(z, wc, &mut w.corr);
            for ((o, z), c) in out.iter_mut().zip(z).zip(&w.corr) {
                *o = z + c;
            }
        })
    }

    /// One corrected step from `t0`.
    pub fn step(&self, y: &[f64], params: &[f64], out: &mut [f64]) {
        self.step_at(self.t0, y, params, out)
    }

    /// The coarse step alone (no correction) at time `t`: `out = Φ_Δt(t, y; p)`.
    pub fn coarse(&self, t: f64, y: &[f64], p: &[f64], out: &mut [f64]) {
        self.with_work(y, p, |w| {
            self.coarse_step(w, t, y, p);
            out.copy_from_slice(w.state.y_proposed());
        })
    }

    /// `n_steps` corrected steps from `y0` at `t0`: `n_steps + 1` states, flat (`y0` first).
    pub fn rollout(&self, y0: &[f64], params: &[f64], n_steps: usize) -> Vec<f64> {
        let n = self.system.n_states();
        let mut traj = vec![0.0; (n_steps + 1) * n];
        traj[..n].copy_from_slice(y0);
        for k in 0..n_steps {
            let (done, next) = traj.split_at_mut((k + 1) * n);
            let t = self.t0 + k as f64 * self.dt;
            self.step_at(t, &done[k * n..], params, &mut next[..n]);
        }
        traj
    }

    /// Unroll `K = targets.len() / n` corrected steps from `y0` and differentiate
    /// `L = loss(states 1..=K, targets)` (both flat, `K·n`) by the discrete adjoint through
    /// the unrolled steps. Returns `(L, ∂L/∂y0, ∂L/∂params)`.
    ///
    /// Memory: the `K + 1` states; each reverse step recomputes its coarse step once to
    /// rebuild the stages (one extra forward step per step, like a checkpoint at every
    /// boundary).
    pub fn rollout_gradient(
        &self,
        y0: &[f64],
        params: &[f64],
        targets: &[f64],
        loss: &dyn TrajectoryLoss,
    ) -> Result<(f64, Vec<f64>, Vec<f64>)> {
        let n = self.system.n_states();
        let m = self.system.n_params();
        self.check("initial state", y0.len(), n)?;
        self.check("solver-in-the-loop parameters", params.len(), self.n_params())?;
        if targets.is_empty() || !targets.len().is_multiple_of(n) {
            return Err(HybridError::LengthMismatch {
                what: "rollout targets (steps × states)".into(),
                expected: n * (targets.len() / n).max(1),
                got: targets.len(),
            });
        }
        if loss.n_params() > 0 {
            return Err(HybridError::InvalidConfig {
                what: "rollout loss".into(),
                message: "a loss with its own parameters needs them in the parameter vector; \
                          use a parameter-free loss here"
                    .into(),
            });
        }
        let k_steps = targets.len() / n;
        let traj = self.rollout(y0, params, k_steps);
        if let Some(i) = traj.iter().position(|v| !v.is_finite()) {
            return Err(HybridError::NonFinite { what: "rollout".into(), index: i });
        }
        let mut cot = vec![0.0; k_steps * n];
        let value = loss.evaluate(&traj[n..], targets, None, &[], &mut cot, &mut []);
        if !value.is_finite() {
            return Err(HybridError::NonFinite { what: "rollout loss".into(), index: 0 });
        }
        let (p, wc) = params.split_at(m);
        let mut lambda = vec![0.0; n];
        let mut grad = vec![0.0; params.len()];
        let mut wc_step = vec![0.0; wc.len()];
        self.with_work(y0, p, |w| {
            for k in (0..k_steps).rev() {
                // λ = ∂L/∂y_{k+1}: the loss's own cotangent plus what later steps sent back.
                for (l, c) in lambda.iter_mut().zip(&cot[k * n..(k + 1) * n]) {
                    *l += c;
                }
                let t = self.t0 + k as f64 * self.dt;
                self.coarse_step(w, t, &traj[k * n..(k + 1) * n], p);
                // y_{k+1} = z + c(z; w): z̄ = λ + (∂c/∂z)ᵀ λ, w̄ += (∂c/∂w)ᵀ λ.
                let z = w.state.y_proposed();
                self.corrector.vjp(z, wc, &lambda, &mut w.z_bar, &mut wc_step);
                for (zb, l) in w.z_bar.iter_mut().zip(&lambda) {
                    *zb += l;
                }
                for (g, d) in grad[m..].iter_mut().zip(&wc_step) {
                    *g += d;
                }
                // z = Φ(y_k; p): the stepper's reverse step turns z̄ into ∂L/∂y_k, adds ∂L/∂p.
                lambda.copy_from_slice(&w.z_bar);
                self.stepper.step_vjp(
                    &self.system,
                    p,
                    &mut w.state,
                    Step { t, h: self.dt },
                    &mut lambda,
                    &mut grad[..m],
                    &mut w.vjp,
                    &mut w.stats,
                );
            }
        });
        Ok((value, lambda, grad))
    }
}
