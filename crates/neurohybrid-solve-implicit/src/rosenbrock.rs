//! The Rosenbrock engine (one stage loop over any stiffly accurate [`RosenbrockTableau`]) and
//! Rodas4, a stiffly accurate 6-stage, order-4(3) method with its own order-3 dense output
//! (Hairer & Wanner II, §IV.7, Table 7.2 and the RODAS code; Hairer & Wanner 1996).
//!
//! Rosenbrock methods are linearly implicit: each step factors `W = I − hγJ` once, with the
//! *exact* Jacobian at `(tₙ, yₙ)`, and solves one linear system per stage — no Newton
//! iteration, hence no convergence failures, only a possibly singular `W`. Because the order
//! conditions assume the exact `J`, the Jacobian is re-evaluated at every step (reused only by
//! retries of a rejected step, which start from the same point), unlike the BDF/SDIRK reuse
//! policy of [`crate::wmatrix`].
//!
//! # Formulation
//!
//! The engine uses the "C/h" form of OrdinaryDiffEq.jl (SciML,
//! `src/tableaus/rosenbrock_tableaus.jl`), which is Hairer's form transformed so that stage
//! values need no matrix–vector products (HW II, eq. (7.25)); see [`RosenbrockTableau`]:
//!
//! ```text
//! Uᵢ = yₙ + Σⱼ aᵢⱼ kⱼ,
//! (I/(hγ) − J) kᵢ = f(tₙ + cᵢh, Uᵢ) + Σⱼ (Cᵢⱼ/h) kⱼ + dᵢ h ∂f/∂t,
//! ```
//!
//! i.e. `kᵢ = hγ·W⁻¹(…)`. The stages after the last row of `a` add their predecessor's `k` to
//! the previous stage value (stiff accuracy); the last stage value is the embedded solution,
//! so `yₙ₊₁ = U_s + k_s` and the error estimate is `k_s`. The dense output is
//! `y(tₙ + θh) = (1−θ)yₙ + θ(yₙ₊₁ + (1−θ)(K₁ + θK₂ + …))`, `K_r = Σⱼ h_{rj} kⱼ` (HW II's RODAS
//! continuous extension for Rodas4, as in MATLAB's ode suite and OrdinaryDiffEq).
//!
//! [`Rodas4`] and [`crate::Rodas5P`] are this one loop over two tableaus
//! ([`crate::tableaus::RODAS4`], [`crate::tableaus::RODAS5P`]), and so share one discrete
//! adjoint (`StepVjp`, ADR 0017 and 0019).
//!
//! # Non-autonomous systems
//!
//! `∂f/∂t` is needed for the full order when `f` depends on `t`. With
//! [`TimeDerivative::FiniteDifference`] (default) it is the forward difference
//! `(f(tₙ + δ, yₙ) − f(tₙ, yₙ))/δ`, `δ = √ε·max(|tₙ|, |h|)` (one extra rhs per step, error
//! `O(δ)` relative, harmless at the tolerances that matter; HW II, §IV.7 "the derivative fₜ ...
//! may be approximated by finite differences"). [`TimeDerivative::Autonomous`] declares
//! `∂f/∂t = 0` and saves that rhs.

use crate::tableaus::{RODAS4, RosenbrockTableau};
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState};
use neurohybrid_system::Jacobian;

/// How a Rosenbrock step obtains `∂f/∂t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeDerivative {
    /// Forward finite difference in `t` (one extra rhs per step).
    #[default]
    FiniteDifference,
    /// The system does not depend on `t` explicitly: `∂f/∂t = 0`.
    Autonomous,
}

/// Working state of a Rosenbrock solve ([`Rodas4`], [`crate::Rodas5P`]).
#[derive(Debug)]
pub struct RosenbrockState {
    n: usize,
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    /// Stage increments `k₁..k_s`, row-major.
    k: Vec<f64>,
    u: Vec<f64>,
    f: Vec<f64>,
    f0: Vec<f64>,
    dfdt: Vec<f64>,
    rhs: Vec<f64>,
    /// `f(tₙ, yₙ)` is valid in `f0` (reused by retries of a rejected step).
    f0_valid: bool,
    wm: WMatrix,
}

impl RosenbrockState {
    /// The stage increments `k₁..k_s` of the last step (row-major, `s × n`).
    pub fn stages(&self) -> &[f64] {
        &self.k
    }

    /// The shared iteration matrix.
    pub fn w_matrix(&self) -> &WMatrix {
        &self.wm
    }
}

impl StepState for RosenbrockState {
    fn y(&self) -> &[f64] {
        &self.y
    }
    fn y_mut(&mut self) -> &mut [f64] {
        &mut self.y
    }
    fn y_proposed(&self) -> &[f64] {
        &self.y_new
    }
    fn error_estimate(&self) -> &[f64] {
        &self.err
    }
    fn dydt(&self) -> Option<&[f64]> {
        self.f0_valid.then_some(&self.f0[..])
    }
}

/// The working state for `tab` at `(t0, y0)`; evaluates `f(t0, y0)` (the first stage, also
/// used by the initial-step heuristic through `dydt`).
///
/// # Panics
/// If the system's Jacobian pattern is not `n × n` (a bug in the system).
pub(crate) fn init<S: Jacobian + ?Sized>(
    tab: &RosenbrockTableau,
    w: WConfig,
    system: &S,
    p: &[f64],
    t0: f64,
    y0: &[f64],
    stats: &mut Stats,
) -> RosenbrockState {
    let n = system.n_states();
    let wm = WMatrix::new(system, w).expect("a Rosenbrock method needs an n x n Jacobian pattern");
    let mut st = RosenbrockState {
        n,
        y: y0.to_vec(),
        y_new: vec![0.0; n],
        err: vec![0.0; n],
        k: vec![0.0; tab.stages() * n],
        u: vec![0.0; n],
        f: vec![0.0; n],
        f0: vec![0.0; n],
        dfdt: vec![0.0; n],
        rhs: vec![0.0; n],
        f0_valid: false,
        wm,
    };
    system.rhs(t0, y0, p, &mut st.f0);
    stats.rhs_evals += 1;
    st.f0_valid = true;
    st
}

/// The step `δ` of the forward difference for `∂f/∂t` at `t` (module docs); the adjoint
/// differentiates the same difference.
pub(crate) fn time_step(t: f64, h: f64) -> f64 {
    f64::EPSILON.sqrt() * t.abs().max(h.abs()).max(f64::MIN_POSITIVE)
}

/// One step of the C/h-form Rosenbrock method `tab` (module docs).
pub(crate) fn step<S: Jacobian + ?Sized>(
    tab: &RosenbrockTableau,
    time_derivative: TimeDerivative,
    system: &S,
    p: &[f64],
    st: &mut RosenbrockState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome {
    let (n, t, h) = (st.n, step.t, step.h);
    if !st.f0_valid {
        system.rhs(t, &st.y, p, &mut st.f0);
        stats.rhs_evals += 1;
        st.f0_valid = true;
    }
    if !st.wm.jacobian_is_fresh() {
        st.wm.refresh_jacobian(system, t, &st.y, p, stats);
        match time_derivative {
            TimeDerivative::Autonomous => st.dfdt.fill(0.0),
            TimeDerivative::FiniteDifference => {
                let delta = time_step(t, h);
                system.rhs(t + delta, &st.y, p, &mut st.dfdt);
                stats.rhs_evals += 1;
                let dt = (t + delta) - t; // the representable increment
                st.dfdt.iter_mut().zip(&st.f0).for_each(|(d, f)| *d = (*d - f) / dt);
            }
        }
    }
    let hg = h * tab.gamma;
    if st.wm.factorized_hgamma() != Some(hg)
        && let Err(failure) = st.wm.factorize(hg, stats)
    {
        return StepOutcome::Failed(failure);
    }
    for s in 0..tab.stages() {
        // Stage value Uₛ and f(t + cₛh, Uₛ).
        if s == 0 {
            st.f.copy_from_slice(&st.f0);
        } else {
            if s <= tab.a.len() {
                st.u.copy_from_slice(&st.y);
                for (j, &a) in tab.a[s - 1].iter().enumerate() {
                    let kj = &st.k[j * n..(j + 1) * n];
                    st.u.iter_mut().zip(kj).for_each(|(u, k)| *u += a * k);
                }
            } else {
                // Stiffly accurate tail: Uₛ = Uₛ₋₁ + kₛ₋₁.
                let kp = &st.k[(s - 1) * n..s * n];
                st.u.iter_mut().zip(kp).for_each(|(u, k)| *u += k);
            }
            system.rhs(t + tab.c[s] * h, &st.u, p, &mut st.f);
            stats.rhs_evals += 1;
        }
        // rhs = f + Σ (C_sj/h) k_j + d_s h ∂f/∂t, then kₛ = hγ W⁻¹ rhs.
        let dh = tab.d[s] * h;
        st.rhs.iter_mut().zip(st.f.iter().zip(&st.dfdt)).for_each(|(r, (f, d))| *r = f + dh * d);
        if s > 0 {
            for (j, &c) in tab.c_mat[s - 1].iter().enumerate() {
                let c = c / h;
                let kj = &st.k[j * n..(j + 1) * n];
                st.rhs.iter_mut().zip(kj).for_each(|(r, k)| *r += c * k);
            }
        }
        st.rhs.iter_mut().for_each(|r| *r *= hg);
        if let Err(failure) = st.wm.solve_in_place(&mut st.rhs, stats) {
            return StepOutcome::Failed(failure);
        }
        st.k[s * n..(s + 1) * n].copy_from_slice(&st.rhs);
    }
    // y_{n+1} = U_s + k_s (stiffly accurate); error estimate k_s.
    let ks = &st.k[(tab.stages() - 1) * n..];
    for ((y, e), (u, k)) in st.y_new.iter_mut().zip(st.err.iter_mut()).zip(st.u.iter().zip(ks)) {
        *y = u + k;
        *e = *k;
    }
    StepOutcome::Computed
}

/// Power-basis coefficients of `(1−θ)y₀ + θ(y₁ + (1−θ)(K₁ + θK₂ + θ²K₃ + …))`:
/// `y₀`, `y₁ − y₀ + K₁`, `K₂ − K₁`, …, `K_m − K_{m−1}`, `−K_m`.
pub(crate) fn dense(tab: &RosenbrockTableau, st: &RosenbrockState, coeffs: &mut [f64]) {
    let n = st.n;
    let m = tab.h.len();
    for i in 0..n {
        coeffs[i] = st.y[i];
        let mut prev = 0.0;
        for (r, row) in tab.h.iter().enumerate() {
            let kr: f64 = row.iter().enumerate().map(|(j, &hj)| hj * st.k[j * n + i]).sum();
            let c = if r == 0 { st.y_new[i] - st.y[i] + kr } else { kr - prev };
            coeffs[(r + 1) * n + i] = c;
            prev = kr;
        }
        coeffs[(m + 1) * n + i] = -prev;
    }
}

pub(crate) fn accept(st: &mut RosenbrockState) {
    std::mem::swap(&mut st.y, &mut st.y_new);
    st.wm.step_accepted();
    st.f0_valid = false;
}

pub(crate) fn restart(st: &mut RosenbrockState) {
    st.f0_valid = false;
    st.wm.step_accepted(); // J belongs to the pre-impulse state: recompute before the next step
}

/// `Stepper` for a Rosenbrock method type with `tableau()`, `time_derivative` and `w`.
/// The configuration methods and the `Stepper` impl of a Rosenbrock method struct
/// (fields `time_derivative`, `w`) over its tableau: the methods differ only in coefficients.
macro_rules! rosenbrock_stepper {
    ($ty:ty, $tableau:expr) => {
        impl $ty {
            /// The method with finite-difference `∂f/∂t`.
            pub fn new() -> Self {
                Self::default()
            }

            /// Declares the system autonomous (skips the `∂f/∂t` evaluation).
            pub fn autonomous(mut self) -> Self {
                self.time_derivative = $crate::rosenbrock::TimeDerivative::Autonomous;
                self
            }

            /// Linear-backend settings.
            ///
            /// # Errors
            /// An invalid [`WConfig`](crate::WConfig).
            pub fn with_w_config(
                mut self,
                w: $crate::wmatrix::WConfig,
            ) -> $crate::error::Result<Self> {
                w.validate()?;
                self.w = w;
                Ok(self)
            }

            /// The coefficients.
            pub fn tableau(&self) -> &'static $crate::tableaus::RosenbrockTableau {
                &$tableau
            }
        }

        impl<S: neurohybrid_system::Jacobian + ?Sized> neurohybrid_solve::Stepper<S> for $ty {
            type State = $crate::rosenbrock::RosenbrockState;

            fn name(&self) -> &str {
                self.tableau().name
            }

            fn order(&self) -> usize {
                self.tableau().order
            }

            fn error_order(&self) -> Option<usize> {
                Some(self.tableau().error_order)
            }

            fn dense_degree(&self) -> usize {
                self.tableau().dense_degree()
            }

            /// # Panics
            /// If the system's Jacobian pattern is not `n × n` (a bug in the system).
            fn init(
                &self,
                system: &S,
                p: &[f64],
                t0: f64,
                y0: &[f64],
                stats: &mut neurohybrid_solve::Stats,
            ) -> Self::State {
                $crate::rosenbrock::init(self.tableau(), self.w, system, p, t0, y0, stats)
            }

            fn step(
                &self,
                system: &S,
                p: &[f64],
                state: &mut Self::State,
                step: neurohybrid_solve::Step,
                stats: &mut neurohybrid_solve::Stats,
            ) -> neurohybrid_solve::StepOutcome {
                $crate::rosenbrock::step(
                    self.tableau(),
                    self.time_derivative,
                    system,
                    p,
                    state,
                    step,
                    stats,
                )
            }

            fn dense(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut Self::State,
                _step: neurohybrid_solve::Step,
                coeffs: &mut [f64],
                _stats: &mut neurohybrid_solve::Stats,
            ) {
                $crate::rosenbrock::dense(self.tableau(), state, coeffs);
            }

            fn accept(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut Self::State,
                _t_new: f64,
                h_next: f64,
                _stats: &mut neurohybrid_solve::Stats,
            ) -> f64 {
                $crate::rosenbrock::accept(state);
                h_next
            }

            fn restart(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut Self::State,
                _t: f64,
                _stats: &mut neurohybrid_solve::Stats,
            ) {
                $crate::rosenbrock::restart(state);
            }
        }
    };
}
pub(crate) use rosenbrock_stepper;

/// The Rodas4 Rosenbrock method: order 4, embedded order 3, stiffly accurate, L-stable, with a
/// continuous extension of order 3 ([`crate::tableaus::RODAS4`]). Configuration only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rodas4 {
    /// How `∂f/∂t` is obtained.
    pub time_derivative: TimeDerivative,
    /// Linear backend (dense/sparse). Only `backend`/`dense_max` are used: Rosenbrock
    /// re-evaluates `J` and refactors `W` every step.
    pub w: WConfig,
}

rosenbrock_stepper!(Rodas4, RODAS4);
