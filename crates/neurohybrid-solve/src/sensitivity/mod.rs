//! Gradients of a loss of the solution: one [`Sensitivity`] trait, one entry point
//! [`gradient`], interchangeable methods.
//!
//! A [`Loss`] is a function of the solution at the save times; [`gradient`] returns its value,
//! `∂L/∂y0` and `∂L/∂p` in a [`Gradient`], together with the forward solution, the work of the
//! reverse (or tangent) pass and a [`MemoryReport`]. Impulses of the problem (radiotherapy
//! fractions, …) are differentiated through by every method, including their dependence on `p`
//! (through [`crate::Impulse::vjp`] / [`crate::Impulse::jvp`]).
//!
//! # Which method
//!
//! | method | cost | memory | use it for |
//! |---|---|---|---|
//! | [`ForwardSensitivity`] | one solve of `n·(1 + m)` states | nothing extra | few parameters (`m ≲ 10`), any size of `n` |
//! | [`DiscreteAdjoint`] | ~2–3 forward solves + one VJP per stage | bounded by [`Checkpointing`] | many parameters; PDEs; the exact gradient of what was computed |
//! | interpolating / quadrature adjoints | one backward solve | forward dense output | many parameters, when a continuous adjoint with its own error control is wanted |
//! | backsolve adjoint | one backward solve of `2n + m` states | nothing extra | small, non-diffusive ODEs only |
//!
//! - **Forward sensitivities** integrate the sensitivity equations `S' = J S + ∂f/∂p` alongside
//!   `y`, one column per requested parameter or initial-state component. Cost grows with the
//!   number of columns, so they are the right choice for a handful of parameters (fitting `D`
//!   and `ρ` of a tumour model), wrong for a neural network's thousands of weights.
//! - **The discrete adjoint** reverses through the accepted steps of the forward solve with each
//!   stepper's [`StepVjp`]. It is the exact derivative of the computed solution (step sizes held
//!   constant), which is what an optimizer needs for consistent line searches (Sandu 2006, "On
//!   the properties of Runge–Kutta discrete adjoints", LNCS 3994; Hager 2000). Memory is bounded
//!   by checkpointing (Griewank & Walther 2008, "Evaluating Derivatives", ch. 12).
//! - **Continuous adjoints** integrate `λ' = −Jᵀλ` backward. Interpolating and quadrature
//!   adjoints read the forward state from stored dense output, so they are stable on diffusion
//!   PDEs. **Backsolve** re-integrates `y` backward together with `λ`; on a diffusion PDE the
//!   backward heat equation is ill-posed and it fails (measured on diffrax and torchdiffeq for
//!   Fisher–KPP, DESIGN.md §7), so keep it for small, non-diffusive ODEs.
//!
//! Save times must be given as [`SaveAt::Times`] (or [`SaveAt::Final`]): the loss is a
//! function of the solution there. Methods that reverse through steps make the save times
//! stops of the forward solve (like impulses), so each cotangent enters at a step boundary;
//! see `docs/decisions/0009-sensitivities.md`. [`DiscreteAdjoint`] can instead read them from
//! the dense output and differentiate the interpolant ([`SaveSteps::Interpolate`], for
//! steppers with [`StepVjp::step_vjp_dense`]; `docs/decisions/0022-*.md`).
//!
//! ```
//! use neurohybrid_solve::sensitivity::{
//!     DiscreteAdjoint, ForwardSensitivity, SquaredMisfit, StepVjp, gradient,
//! };
//! use neurohybrid_solve::{ConstantStep, Problem, SaveAt, Stats, Step, StepOutcome, StepState, Stepper};
//! use neurohybrid_system::{Jvp, OdeSystem, Vjp};
//!
//! /// y' = −p₀ y
//! struct Decay;
//! impl OdeSystem for Decay {
//!     fn n_states(&self) -> usize { 1 }
//!     fn n_params(&self) -> usize { 1 }
//!     fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) { dy[0] = -p[0] * y[0]; }
//! }
//! impl Vjp for Decay {
//!     fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
//!         w_y[0] = -p[0] * w[0];
//!         if let Some(wp) = w_p.first_mut() { *wp = -y[0] * w[0]; }
//!     }
//! }
//! impl Jvp for Decay {
//!     fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
//!         out[0] = -p[0] * v_y[0] - v_p.first().map_or(0.0, |v| v * y[0]);
//!     }
//! }
//! # // Explicit Euler with its step VJP (real steppers live in neurohybrid-solve-explicit).
//! # struct Euler;
//! # struct St { y: Vec<f64>, y1: Vec<f64>, f: Vec<f64>, e: Vec<f64> }
//! # impl StepState for St {
//! #     fn y(&self) -> &[f64] { &self.y }
//! #     fn y_mut(&mut self) -> &mut [f64] { &mut self.y }
//! #     fn y_proposed(&self) -> &[f64] { &self.y1 }
//! #     fn error_estimate(&self) -> &[f64] { &self.e }
//! # }
//! # impl<S: OdeSystem> Stepper<S> for Euler {
//! #     type State = St;
//! #     fn name(&self) -> &str { "Euler" }
//! #     fn order(&self) -> usize { 1 }
//! #     fn init(&self, s: &S, _p: &[f64], _t: f64, y0: &[f64], _st: &mut Stats) -> St {
//! #         let n = s.n_states();
//! #         St { y: y0.to_vec(), y1: vec![0.0; n], f: vec![0.0; n], e: vec![0.0; n] }
//! #     }
//! #     fn step(&self, s: &S, p: &[f64], st: &mut St, step: Step, _st: &mut Stats) -> StepOutcome {
//! #         s.rhs(step.t, &st.y, p, &mut st.f);
//! #         for i in 0..st.y.len() { st.y1[i] = st.y[i] + step.h * st.f[i]; }
//! #         StepOutcome::Computed
//! #     }
//! #     fn dense(&self, _s: &S, _p: &[f64], st: &mut St, _step: Step, c: &mut [f64], _st: &mut Stats) {
//! #         let n = st.y.len();
//! #         c.fill(0.0);
//! #         c[..n].copy_from_slice(&st.y);
//! #         for i in 0..n { c[n + i] = st.y1[i] - st.y[i]; }
//! #     }
//! #     fn accept(&self, _s: &S, _p: &[f64], st: &mut St, _t: f64, h: f64, _st: &mut Stats) -> f64 {
//! #         std::mem::swap(&mut st.y, &mut st.y1);
//! #         h
//! #     }
//! #     fn restart(&self, _s: &S, _p: &[f64], _st: &mut St, _t: f64, _stats: &mut Stats) {}
//! # }
//! # impl<S: Vjp> StepVjp<S> for Euler {
//! #     type VjpWork = (Vec<f64>, Vec<f64>);
//! #     fn vjp_work(&self, s: &S, _st: &St) -> Self::VjpWork {
//! #         (vec![0.0; s.n_states()], vec![0.0; s.n_params()])
//! #     }
//! #     fn step_vjp(&self, s: &S, p: &[f64], st: &mut St, step: Step, w: &mut [f64],
//! #                 w_p: &mut [f64], (wy, wp): &mut Self::VjpWork, _stats: &mut Stats) {
//! #         // y1 = y + h f(y): w_y = w + h Jᵀw, w_p += h (∂f/∂p)ᵀ w
//! #         s.vjp(step.t, &st.y, p, w, wy, wp);
//! #         for i in 0..w.len() { w[i] += step.h * wy[i]; }
//! #         for j in 0..w_p.len() { w_p[j] += step.h * wp[j]; }
//! #     }
//! # }
//!
//! // L = (y(1) − 0.5)² with y(1) ≈ y0·e^{−p}, so dL/dp ≈ −2 (y(1) − 0.5) y(1).
//! let problem = Problem::new(Decay, [1.0], [0.3], (0.0, 1.0));
//! let save = SaveAt::Times(vec![1.0]);
//! let loss = SquaredMisfit::new([0.5]);
//! let ctrl = ConstantStep::with_steps((0.0, 1.0), 1000);
//! let fwd = gradient(&problem, &Euler, &ctrl, &save, &loss, &ForwardSensitivity::all())?;
//! let adj = gradient(&problem, &Euler, &ctrl, &save, &loss, &DiscreteAdjoint::default())?;
//! let y1 = (-0.3f64).exp();
//! let exact = -2.0 * (y1 - 0.5) * y1;
//! assert!((fwd.dl_dp[0] - exact).abs() < 1e-3);
//! // Euler's sensitivity equations are Euler's derivative: both methods agree to rounding.
//! assert!((adj.dl_dp[0] - fwd.dl_dp[0]).abs() < 1e-12);
//! assert!((adj.dl_dy0[0] - fwd.dl_dy0[0]).abs() < 1e-12);
//! assert!(adj.memory.peak_stored_states <= 64); // the default keeps at most 64 states
//! # Ok::<(), neurohybrid_solve::SolveError>(())
//! ```

mod adjoint_system;
mod backsolve;
mod checkpoint;
mod continuous;
mod discrete;
mod forward;
mod interpolating;
mod loss;
mod quadrature;
mod trace;

pub use adjoint_system::{AdjointSystem, BacksolveSystem};
pub use backsolve::BacksolveAdjoint;
pub use checkpoint::Checkpointing;
pub use discrete::{DiscreteAdjoint, SaveSteps};
pub use forward::{Column, ForwardSensitivity, SensitivitySystem};
pub use interpolating::InterpolatingAdjoint;
pub use loss::{Loss, SquaredMisfit};
pub use quadrature::QuadratureAdjoint;
pub use trace::{
    FrozenSteps, RecordedSteps, Replay, recorded_steps, recorded_steps_with, step_sequence,
    step_sequence_with,
};

use crate::error::{Result, SolveError};
use crate::problem::Problem;
use crate::save::SaveAt;
use crate::solution::Solution;
use crate::stats::Stats;
use crate::stepper::{Step, StepState, Stepper};
use neurohybrid_system::{OdeSystem, Vjp};

/// A way of computing [`Gradient`]s. Implemented by [`ForwardSensitivity`],
/// [`DiscreteAdjoint`] and the continuous adjoints, each with the bounds it needs on the system
/// `S`, the stepper `St` and the controller `C`; call it through [`gradient`].
pub trait Sensitivity<S, St, C> {
    /// Human-readable name ("discrete adjoint").
    fn name(&self) -> &str;

    /// Solve `problem` forward with `stepper` and `controller`, evaluate `loss` at the save
    /// times of `save_at` ([`SaveAt::Times`] or [`SaveAt::Final`]) and differentiate it w.r.t.
    /// the initial state and the parameters.
    ///
    /// `Err` for misuse (as [`crate::solve`], plus an unsupported `save_at`) and when the
    /// forward solve does not reach the end of the span ([`SolveError::ForwardSolveFailed`]):
    /// a loss of a partial trajectory has no meaningful gradient.
    fn gradient(
        &self,
        problem: &Problem<S>,
        stepper: &St,
        controller: &C,
        save_at: &SaveAt,
        loss: &dyn Loss,
    ) -> Result<Gradient>;
}

/// The loss, its gradient and what it cost. See [`Sensitivity::gradient`].
///
/// ```text
/// (value, dl_dy0, dl_dp) = gradient(problem, stepper, controller, save_at, loss, method)
/// ```
pub fn gradient<S, St, C, M>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
    loss: &dyn Loss,
    method: &M,
) -> Result<Gradient>
where
    M: Sensitivity<S, St, C> + ?Sized,
{
    method.gradient(problem, stepper, controller, save_at, loss)
}

/// What [`gradient`] returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Gradient {
    /// The loss `L`.
    pub value: f64,
    /// `∂L/∂y0` (length `n`). Methods that were asked not to compute it (forward sensitivities
    /// without initial-state columns) leave it empty.
    pub dl_dy0: Vec<f64>,
    /// `∂L/∂p` (length `m`). Entries a method was asked not to compute are NaN.
    pub dl_dp: Vec<f64>,
    /// The forward solution at the save times (its `stats` are the forward solve's work).
    pub solution: Solution,
    /// Work of the reverse pass (adjoints: recomputed steps, VJPs, transpose solves) or of the
    /// tangent part (forward sensitivities: JVPs). Forward work is in `solution.stats()`.
    pub reverse_stats: Stats,
    /// How many state vectors the method held.
    pub memory: MemoryReport,
}

/// Memory of a gradient computation, counted in state vectors (`n` values each) on top of the
/// stepper's own working state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryReport {
    /// State dimension `n`.
    pub n_states: usize,
    /// Accepted steps of the forward solve.
    pub steps: usize,
    /// Most state vectors held at once (checkpoints + recomputed segment states; for forward
    /// sensitivities the `m` sensitivity columns; for interpolating adjoints the dense output).
    pub peak_stored_states: usize,
    /// What a store-everything reverse pass would hold: one state per step boundary
    /// (`steps + 1`).
    pub store_all_states: usize,
    /// Steps recomputed from checkpoints during the reverse pass (excluding the one
    /// recomputation per step that rebuilds its stages for the step VJP).
    pub recomputed_steps: usize,
}

impl MemoryReport {
    /// `peak_stored_states / store_all_states`.
    pub fn stored_fraction(&self) -> f64 {
        self.peak_stored_states as f64 / self.store_all_states.max(1) as f64
    }
}

/// The reverse-mode derivative of one step, used by [`DiscreteAdjoint`]: one-step methods
/// (explicit Runge–Kutta, DIRK / ESDIRK, Rosenbrock) and multistep methods (BDF) alike.
///
/// Step sizes are treated as constants: the derivative is that of the discrete map
/// `y_{n+1} = Φ_h(t_n, y_n, p)` for the `h` the forward solve accepted (the step-size
/// controller's dependence on `y` is deliberately not differentiated — it is piecewise constant
/// in exact arithmetic and its derivative carries no information; Griewank & Walther 2008,
/// §15; Sandu 2006).
///
/// # Multistep methods: the reversed state
///
/// A multistep step maps a *history* (BDF: the difference array `D₀ … D_{k+2}`), not just
/// `y_n`. The reverse pass therefore runs on a **reversed state** `z` of
/// [`StepVjp::reversed_len`] values whose first `n` entries are `y` (so loss cotangents at
/// save times are added to `w[..n]`); for a one-step method `z = y` and every method below
/// has the right default. The pieces a multistep method provides:
///
/// - [`StepVjp::save_reversed`] / [`StepVjp::load_reversed`]: checkpoints hold the whole
///   history (and its discrete settings such as the order), so a recomputed step is the
///   forward one;
/// - [`StepVjp::restart_vjp`]: the derivative of [`Stepper::restart`], which builds the
///   history from `y` (at `t0` and after impulses; BDF: `D₁ = h f(y)`);
/// - [`StepVjp::control`] / [`StepVjp::impose_control`]: discrete decisions the stepper
///   takes inside `accept` (BDF's order), recorded at every boundary of the forward pass and
///   imposed on recomputed steps, so the reverse pass differentiates exactly the forward map
///   even where a recomputation's rounding would tip an order decision. [`Replay`] imposes
///   them (with [`FrozenSteps`]) for finite-difference checks of the same discrete map.
pub trait StepVjp<S: Vjp + ?Sized>: Stepper<S> {
    /// Scratch memory of the reverse pass, allocated once per gradient.
    type VjpWork;

    /// Allocate the scratch for `system` (called once, after `init`).
    fn vjp_work(&self, system: &S, state: &Self::State) -> Self::VjpWork;

    /// Pull the cotangent of `y_{n+1}` back through the step `step` just computed.
    ///
    /// `state` is as left by a [`Stepper::step`] from `y_n` that returned `Computed`, before
    /// `accept`: `state.y()` is `y_n`, stage data of the step are in place. On entry
    /// `w = ∂L/∂y_{n+1}`; on return `w = ∂L/∂y_n`. `w_p` (length `m`) is *incremented* by
    /// this step's contribution to `∂L/∂p`. Count VJPs and linear solves in `stats`.
    #[allow(clippy::too_many_arguments)]
    fn step_vjp(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        step: Step,
        w: &mut [f64],
        w_p: &mut [f64],
        work: &mut Self::VjpWork,
        stats: &mut Stats,
    );

    /// Whether [`StepVjp::step_vjp_dense`] is implemented: the stepper can pull cotangents of
    /// its dense-output values *inside* a step back to the step's inputs, so a
    /// [`DiscreteAdjoint`] with [`SaveSteps::Interpolate`] need not stop at save times.
    /// Default `false` (the adjoint then refuses `Interpolate`).
    fn dense_vjp_supported(&self) -> bool {
        false
    }

    /// Like [`StepVjp::step_vjp`], with cotangents of dense-output values inside the step:
    /// `thetas[j] ∈ (0, 1)` are normalized times `(s − t_n)/(t_{n+1} − t_n)` and
    /// `cot[j*n..(j+1)*n] = ∂L/∂y(s_j)` for the interpolant [`Stepper::dense`] writes. On
    /// return `w = ∂L/∂y_n` including the interpolant's dependence on `y_n`, the step's stages
    /// and `y_{n+1}`. Called only when [`StepVjp::dense_vjp_supported`]; the default handles
    /// the empty case and panics otherwise (a stepper contract violation, not user input).
    #[allow(clippy::too_many_arguments)]
    fn step_vjp_dense(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        step: Step,
        thetas: &[f64],
        cot: &[f64],
        w: &mut [f64],
        w_p: &mut [f64],
        work: &mut Self::VjpWork,
        stats: &mut Stats,
    ) {
        assert!(
            thetas.is_empty() && cot.is_empty(),
            "{}: step_vjp_dense called without dense_vjp_supported()",
            self.name()
        );
        self.step_vjp(system, p, state, step, w, w_p, work, stats)
    }

    /// Length of a cached computed step ([`StepVjp::save_step`]); 0 (the default): the stepper
    /// cannot restore one and the reverse pass recomputes every step from its input state.
    fn step_cache_len(&self, system: &S, state: &Self::State) -> usize {
        let _ = (system, state);
        0
    }

    /// Write the state of a computed step (as left by `step`, before `accept`: input state,
    /// stages, trial solution) into `out` (length [`StepVjp::step_cache_len`]).
    fn save_step(&self, state: &Self::State, out: &mut [f64]) {
        let _ = (state, out);
    }

    /// Restore a step saved by [`StepVjp::save_step`]: afterwards `state` is exactly as the
    /// forward `step` left it, so [`StepVjp::step_vjp`] can run without recomputing the stages.
    fn load_step(&self, state: &mut Self::State, saved: &[f64]) {
        let _ = (state, saved);
    }

    /// Length of the reversed state (default `n`: one-step methods reverse `y` alone). `w` in
    /// [`StepVjp::step_vjp`] has this length.
    fn reversed_len(&self, system: &S, state: &Self::State) -> usize {
        let _ = state;
        system.n_states()
    }

    /// Write what a checkpoint at the current step boundary must hold (after `accept`,
    /// impulses and `restart`) into `out` (cleared first). Default: `y`.
    fn save_reversed(&self, state: &Self::State, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(state.y());
    }

    /// Put the stepper back at a boundary saved by [`StepVjp::save_reversed`] at time `t`, so
    /// that the next `step` repeats the forward one. Default: copy `y` and `restart` (which
    /// drops derived data such as an FSAL stage; `step` recomputes it from `y`).
    fn load_reversed(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        t: f64,
        saved: &[f64],
        stats: &mut Stats,
    ) {
        state.y_mut().copy_from_slice(&saved[..system.n_states()]);
        self.restart(system, p, state, t, stats);
    }

    /// Pull the cotangent `w` (length [`StepVjp::reversed_len`]) of the reversed state built
    /// by [`Stepper::restart`] from `y` at time `t` back to `w_y = ∂L/∂y` (length `n`), adding
    /// the parameter part to `w_p`. `state` is as when `restart` was called, except that its
    /// `y` may differ (`y` is passed explicitly). Default (one-step methods: `z = y`):
    /// `w_y = w`.
    #[allow(clippy::too_many_arguments)]
    fn restart_vjp(
        &self,
        system: &S,
        p: &[f64],
        state: &mut Self::State,
        t: f64,
        y: &[f64],
        w: &[f64],
        w_y: &mut [f64],
        w_p: &mut [f64],
        work: &mut Self::VjpWork,
        stats: &mut Stats,
    ) {
        let _ = (p, state, t, y, w_p, work, stats);
        w_y.copy_from_slice(&w[..system.n_states()]);
    }

    /// The discrete setting the next step will use besides `(t, h)` (BDF: its order), read at
    /// each step boundary of the forward pass. Default: 0 (none).
    fn control(&self, state: &Self::State) -> usize {
        let _ = state;
        0
    }

    /// Impose a setting read by [`StepVjp::control`] (after `accept`, impulses and `restart`
    /// of a recomputed step). Default: nothing.
    fn impose_control(&self, state: &mut Self::State, control: usize) {
        let _ = (state, control);
    }
}

/// The save times of `save_at` for a gradient: [`SaveAt::Times`] as given, [`SaveAt::Final`] as
/// `[t1]`; other variants are refused (the loss would depend on where steps fall).
pub fn save_times<S: OdeSystem>(
    method: &str,
    problem: &Problem<S>,
    save_at: &SaveAt,
) -> Result<Vec<f64>> {
    match save_at {
        SaveAt::Times(ts) => Ok(ts.clone()),
        SaveAt::Final => Ok(vec![problem.t_span().1]),
        _ => Err(SolveError::SensitivityUnsupported {
            method: method.to_string(),
            reason: "the loss needs SaveAt::Times or SaveAt::Final",
        }),
    }
}

/// Evaluate `loss` on `solution` (saved at the save times) and return `(L, cotangents)`, the
/// cotangents flat with the layout of `solution.ys()`. Checks the loss's result is finite.
pub fn loss_cotangents(
    method: &str,
    loss: &dyn Loss,
    solution: &Solution,
) -> Result<(f64, Vec<f64>)> {
    let mut cot = vec![0.0; solution.ys().len()];
    let value = loss.value_and_cotangents(solution.ts(), solution.ys(), &mut cot);
    if !value.is_finite() || cot.iter().any(|c| !c.is_finite()) {
        return Err(SolveError::SensitivityUnsupported {
            method: method.to_string(),
            reason: "the loss or its cotangents are not finite",
        });
    }
    Ok((value, cot))
}

/// `Err(ForwardSolveFailed)` unless `solution` reached the end of its span.
pub fn require_success(solution: &Solution) -> Result<()> {
    if solution.is_success() {
        Ok(())
    } else {
        Err(SolveError::ForwardSolveFailed { status: solution.status() })
    }
}
