//! Rodas5P, and a Rosenbrock engine over any stiffly accurate [`RosenbrockTableau`].
//!
//! The step is the C/h form documented on [`RosenbrockTableau`] (Hairer & Wanner II,
//! eq. (7.25), as in OrdinaryDiffEq.jl): one `W = I − hγJ` with the exact `J` at `(tₙ, yₙ)`,
//! one linear solve per stage, no Newton iteration. `J` is re-evaluated every step (reused by
//! the retries of a rejected step) and `∂f/∂t` is a forward difference unless the system is
//! declared autonomous — the same policy as [`crate::Rodas4`], whose module explains it.
//! The engine differs from `Rodas4`'s only in reading its coefficients from a tableau, so that
//! Rodas5P's 8 stages and 3 dense-output combinations need no second copy of the loop.

// Index loops over stage rows mirror the formulas they implement.
#![allow(clippy::needless_range_loop)]

use crate::error::Result;
use crate::rosenbrock::TimeDerivative;
use crate::tableaus::{RODAS5P, RosenbrockTableau};
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, Stepper};
use neurohybrid_system::Jacobian;

/// Rodas5P (Steinebach 2023): order 5, embedded order 4, stiffly accurate, L-stable, dense
/// output of order 4. Configuration only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rodas5P {
    /// How `∂f/∂t` is obtained.
    pub time_derivative: TimeDerivative,
    /// Linear backend (only `backend`/`dense_max`/`krylov` matter: `W` is refactored every
    /// step). A Krylov backend solves each stage to `krylov.direct_rtol`.
    pub w: WConfig,
}

impl Rodas5P {
    /// Rodas5P with finite-difference `∂f/∂t`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the system autonomous (skips the `∂f/∂t` evaluation).
    pub fn autonomous(mut self) -> Self {
        self.time_derivative = TimeDerivative::Autonomous;
        self
    }

    /// Linear-backend settings.
    pub fn with_w_config(mut self, w: WConfig) -> Result<Self> {
        w.validate()?;
        self.w = w;
        Ok(self)
    }

    /// The coefficients.
    pub fn tableau(&self) -> &'static RosenbrockTableau {
        &RODAS5P
    }
}

/// Working state of a [`Rodas5P`] solve.
#[derive(Debug)]
pub struct Rodas5PState {
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
    f0_valid: bool,
    wm: WMatrix,
}

impl Rodas5PState {
    /// The stage increments of the last step (row-major, `s × n`).
    pub fn stages(&self) -> &[f64] {
        &self.k
    }

    /// The shared iteration matrix.
    pub fn w_matrix(&self) -> &WMatrix {
        &self.wm
    }
}

impl StepState for Rodas5PState {
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

impl<S: Jacobian + ?Sized> Stepper<S> for Rodas5P {
    type State = Rodas5PState;

    fn name(&self) -> &str {
        RODAS5P.name
    }

    fn order(&self) -> usize {
        RODAS5P.order
    }

    fn error_order(&self) -> Option<usize> {
        Some(RODAS5P.error_order)
    }

    fn dense_degree(&self) -> usize {
        RODAS5P.dense_degree()
    }

    /// # Panics
    /// If the system's Jacobian pattern is not `n × n` (a bug in the system).
    fn init(&self, system: &S, p: &[f64], t0: f64, y0: &[f64], stats: &mut Stats) -> Rodas5PState {
        let n = system.n_states();
        let wm = WMatrix::new(system, self.w).expect("Rodas5P needs an n x n Jacobian pattern");
        let mut st = Rodas5PState {
            n,
            y: y0.to_vec(),
            y_new: vec![0.0; n],
            err: vec![0.0; n],
            k: vec![0.0; RODAS5P.stages() * n],
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

    fn step(
        &self,
        system: &S,
        p: &[f64],
        st: &mut Rodas5PState,
        step: Step,
        stats: &mut Stats,
    ) -> StepOutcome {
        rosenbrock_step(&RODAS5P, self.time_derivative, system, p, st, step, stats)
    }

    fn dense(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut Rodas5PState,
        _step: Step,
        coeffs: &mut [f64],
        _stats: &mut Stats,
    ) {
        rosenbrock_dense(&RODAS5P, st, coeffs);
    }

    fn accept(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut Rodas5PState,
        _t_new: f64,
        h_next: f64,
        _stats: &mut Stats,
    ) -> f64 {
        std::mem::swap(&mut st.y, &mut st.y_new);
        st.wm.step_accepted();
        st.f0_valid = false;
        h_next
    }

    fn restart(&self, _system: &S, _p: &[f64], st: &mut Rodas5PState, _t: f64, _stats: &mut Stats) {
        st.f0_valid = false;
        st.wm.step_accepted(); // J belongs to the pre-impulse state: recompute before the next step
    }
}

/// One step of the C/h-form Rosenbrock method `tab` (see [`RosenbrockTableau`]).
fn rosenbrock_step<S: Jacobian + ?Sized>(
    tab: &RosenbrockTableau,
    time_derivative: TimeDerivative,
    system: &S,
    p: &[f64],
    st: &mut Rodas5PState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome {
    let (n, t, h) = (st.n, step.t, step.h);
    let stages = tab.stages();
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
                let delta = f64::EPSILON.sqrt() * t.abs().max(h.abs()).max(f64::MIN_POSITIVE);
                system.rhs(t + delta, &st.y, p, &mut st.dfdt);
                stats.rhs_evals += 1;
                let dt = (t + delta) - t; // the representable increment
                for i in 0..n {
                    st.dfdt[i] = (st.dfdt[i] - st.f0[i]) / dt;
                }
            }
        }
    }
    let hg = h * tab.gamma;
    if st.wm.factorized_hgamma() != Some(hg)
        && let Err(failure) = st.wm.factorize(hg, stats)
    {
        return StepOutcome::Failed(failure);
    }
    for s in 0..stages {
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
        for i in 0..n {
            st.rhs[i] = st.f[i] + dh * st.dfdt[i];
        }
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
    let ks = &st.k[(stages - 1) * n..stages * n];
    for i in 0..n {
        st.y_new[i] = st.u[i] + ks[i];
        st.err[i] = ks[i];
    }
    StepOutcome::Computed
}

/// Power-basis coefficients of `(1−θ)y₀ + θ(y₁ + (1−θ)(K₁ + θK₂ + θ²K₃ + …))`:
/// `y₀`, `y₁ − y₀ + K₁`, `K₂ − K₁`, …, `K_m − K_{m−1}`, `−K_m`.
fn rosenbrock_dense(tab: &RosenbrockTableau, st: &Rodas5PState, coeffs: &mut [f64]) {
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
