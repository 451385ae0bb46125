//! Rodas4: a stiffly accurate 6-stage, order-4(3) Rosenbrock method with its own order-3
//! dense output (Hairer & Wanner II, §IV.7, Table 7.2 and the RODAS code; Hairer & Wanner 1996).
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
//! The implementation uses the "C/h" form of OrdinaryDiffEq.jl (`Rodas4Tableau`, SciML,
//! `src/tableaus/rosenbrock_tableaus.jl`), which is Hairer's RODAS transformed so that stage
//! values need no matrix–vector products (HW II, eq. (7.25)):
//!
//! ```text
//! Uᵢ = yₙ + Σⱼ aᵢⱼ kⱼ,
//! (I/(hγ) − J) kᵢ = f(tₙ + cᵢh, Uᵢ) + Σⱼ (Cᵢⱼ/h) kⱼ + dᵢ h ∂f/∂t,
//! ```
//!
//! i.e. `kᵢ = hγ·W⁻¹(…)`. Stages 5 and 6 add their `k` to the previous stage value (the method
//! is stiffly accurate: `yₙ₊₁ = U₅ + k₅ + k₆`), the embedded order-3 solution is `U₅ + k₅`, so
//! the error estimate is `k₆`. The dense output (HW II's RODAS continuous extension, as in
//! MATLAB's ode suite and OrdinaryDiffEq) is
//! `y(tₙ + θh) = (1−θ)yₙ + θ(yₙ₊₁ + (1−θ)(k'₁ + θk'₂))` with `k'₁ = Σ h₂ⱼkⱼ`, `k'₂ = Σ h₃ⱼkⱼ`.
//!
//! The coefficients were checked against two independent public copies of OrdinaryDiffEq.jl's
//! `Rodas4Tableau` (the CPU tableau file and the GPU kernel's copy), whose values are Hairer's
//! RODAS (`METH = 1`) constants rewritten for this form.
//!
//! # Non-autonomous systems
//!
//! `∂f/∂t` is needed for order 4 when `f` depends on `t`. With [`TimeDerivative::FiniteDifference`]
//! (default) it is the forward difference `(f(tₙ + δ, yₙ) − f(tₙ, yₙ))/δ`,
//! `δ = √ε·max(|tₙ|, |h|)` (one extra rhs per step, error `O(δ)` relative, harmless at the
//! tolerances that matter; HW II, §IV.7 "the derivative fₜ ... may be approximated by finite
//! differences"). [`TimeDerivative::Autonomous`] declares `∂f/∂t = 0` and saves that rhs.

// Index loops over stage/difference rows mirror the formulas they implement.
#![allow(clippy::needless_range_loop)]

use crate::error::Result;
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, Stepper};
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

/// The Rodas4 Rosenbrock method: order 4, embedded order 3, stiffly accurate, L-stable, with a
/// continuous extension of order 3. Configuration only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rodas4 {
    /// How `∂f/∂t` is obtained.
    pub time_derivative: TimeDerivative,
    /// Linear backend (dense/sparse). Only `backend`/`dense_max` are used: Rosenbrock
    /// re-evaluates `J` and refactors `W` every step.
    pub w: WConfig,
}

impl Rodas4 {
    /// Rodas4 with finite-difference `∂f/∂t`.
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
}

/// Rodas4 coefficients (OrdinaryDiffEq.jl `Rodas4Tableau`; HW II RODAS).
pub(crate) mod tab {
    pub const GAMMA: f64 = 0.25;
    pub const A: [[f64; 5]; 5] = [
        [1.544, 0.0, 0.0, 0.0, 0.0],
        [0.9466785280815826, 0.2557011698983284, 0.0, 0.0, 0.0],
        [3.314825187068521, 2.896124015972201, 0.9986419139977817, 0.0, 0.0],
        [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 0.0],
        // Row 5 is unused (stage 6 is U₅ + k₅); kept zero for uniform indexing.
        [0.0; 5],
    ];
    /// `C[i][j]` for stage `i + 2` (rows 2..=6).
    pub const C: [[f64; 5]; 5] = [
        [-5.6688, 0.0, 0.0, 0.0, 0.0],
        [-2.430093356833875, -0.2063599157091915, 0.0, 0.0, 0.0],
        [-0.1073529058151375, -9.594562251023355, -20.47028614809616, 0.0, 0.0],
        [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616, 0.0],
        [
            8.083246795921522,
            -7.981132988064893,
            -31.52159432874371,
            16.31930543123136,
            -6.058818238834054,
        ],
    ];
    /// Stage times `cᵢ` (c₁ = 0, c₅ = c₆ = 1).
    pub const CT: [f64; 6] = [0.0, 0.386, 0.21, 0.63, 1.0, 1.0];
    /// `dᵢ` (time-derivative weights; d₅ = d₆ = 0).
    pub const D: [f64; 6] = [0.25, -0.1043, 0.1035, -0.03620000000000023, 0.0, 0.0];
    /// Dense-output combinations `k'₁ = Σ H[0][j] kⱼ`, `k'₂ = Σ H[1][j] kⱼ`.
    pub const H: [[f64; 5]; 2] = [
        [
            10.12623508344586,
            -7.487995877610167,
            -34.80091861555747,
            -7.992771707568823,
            1.025137723295662,
        ],
        [
            -0.6762803392801253,
            6.087714651680015,
            16.43084320892478,
            24.76722511418386,
            -6.594389125716872,
        ],
    ];
}

const STAGES: usize = 6;

/// Working state of a [`Rodas4`] solve.
#[derive(Debug)]
pub struct RosenbrockState {
    n: usize,
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    /// Stage increments `k₁..k₆`, row-major.
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
    /// The stage increments `k₁..k₆` of the last step (row-major, `6 × n`).
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

impl<S: Jacobian + ?Sized> Stepper<S> for Rodas4 {
    type State = RosenbrockState;

    fn name(&self) -> &str {
        "Rodas4"
    }

    fn order(&self) -> usize {
        4
    }

    fn error_order(&self) -> Option<usize> {
        Some(3)
    }

    fn dense_degree(&self) -> usize {
        3
    }

    /// # Panics
    /// If the system's Jacobian pattern is not `n × n` (a bug in the system).
    fn init(
        &self,
        system: &S,
        p: &[f64],
        t0: f64,
        y0: &[f64],
        stats: &mut Stats,
    ) -> RosenbrockState {
        let n = system.n_states();
        let wm = WMatrix::new(system, self.w).expect("Rodas4 needs an n x n Jacobian pattern");
        let mut st = RosenbrockState {
            n,
            y: y0.to_vec(),
            y_new: vec![0.0; n],
            err: vec![0.0; n],
            k: vec![0.0; STAGES * n],
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
            match self.time_derivative {
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
        let hg = h * tab::GAMMA;
        if st.wm.factorized_hgamma() != Some(hg)
            && let Err(failure) = st.wm.factorize(hg, stats)
        {
            return StepOutcome::Failed(failure);
        }
        for s in 0..STAGES {
            // Stage value Uₛ and f(t + cₛh, Uₛ).
            if s == 0 {
                st.f.copy_from_slice(&st.f0);
            } else {
                if s < 5 {
                    st.u.copy_from_slice(&st.y);
                    for j in 0..s {
                        let a = tab::A[s - 1][j];
                        let kj = &st.k[j * n..(j + 1) * n];
                        st.u.iter_mut().zip(kj).for_each(|(u, k)| *u += a * k);
                    }
                } else {
                    // Stage 6: U₆ = U₅ + k₅.
                    let k5 = &st.k[4 * n..5 * n];
                    st.u.iter_mut().zip(k5).for_each(|(u, k)| *u += k);
                }
                system.rhs(t + tab::CT[s] * h, &st.u, p, &mut st.f);
                stats.rhs_evals += 1;
            }
            // rhs = f + Σ (C_sj/h) k_j + d_s h ∂f/∂t, then kₛ = hγ W⁻¹ rhs.
            let dh = tab::D[s] * h;
            for i in 0..n {
                st.rhs[i] = st.f[i] + dh * st.dfdt[i];
            }
            for j in 0..s {
                let c = tab::C[s - 1][j] / h;
                let kj = &st.k[j * n..(j + 1) * n];
                st.rhs.iter_mut().zip(kj).for_each(|(r, k)| *r += c * k);
            }
            st.rhs.iter_mut().for_each(|r| *r *= hg);
            if let Err(failure) = st.wm.solve_in_place(&mut st.rhs, stats) {
                return StepOutcome::Failed(failure);
            }
            st.k[s * n..(s + 1) * n].copy_from_slice(&st.rhs);
        }
        // y_{n+1} = U₆ + k₆ (stiffly accurate); error estimate k₆.
        let k6 = &st.k[5 * n..6 * n];
        for i in 0..n {
            st.y_new[i] = st.u[i] + k6[i];
            st.err[i] = k6[i];
        }
        StepOutcome::Computed
    }

    fn dense(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut RosenbrockState,
        _step: Step,
        coeffs: &mut [f64],
        _stats: &mut Stats,
    ) {
        // (1−θ)y₀ + θ(y₁ + (1−θ)(k'₁ + θk'₂))
        //   = y₀ + θ(y₁ − y₀ + k'₁) + θ²(k'₂ − k'₁) − θ³k'₂.
        let n = st.n;
        for i in 0..n {
            let (mut k1, mut k2) = (0.0, 0.0);
            for j in 0..5 {
                let kj = st.k[j * n + i];
                k1 += tab::H[0][j] * kj;
                k2 += tab::H[1][j] * kj;
            }
            coeffs[i] = st.y[i];
            coeffs[n + i] = st.y_new[i] - st.y[i] + k1;
            coeffs[2 * n + i] = k2 - k1;
            coeffs[3 * n + i] = -k2;
        }
    }

    fn accept(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut RosenbrockState,
        _t_new: f64,
        h_next: f64,
        _stats: &mut Stats,
    ) -> f64 {
        std::mem::swap(&mut st.y, &mut st.y_new);
        st.wm.step_accepted();
        st.f0_valid = false;
        h_next
    }

    fn restart(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut RosenbrockState,
        _t: f64,
        _stats: &mut Stats,
    ) {
        st.f0_valid = false;
        st.wm.step_accepted(); // J belongs to the pre-impulse state: recompute before the next step
    }
}
