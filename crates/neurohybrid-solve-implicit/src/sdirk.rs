//! One generic (E)SDIRK stepper driven by a [`DirkTableau`], and the named methods.
//!
//! Each implicit stage solves `Y_i = ψ_i + hγ f(t_n + c_i h, Y_i)` with
//! `ψ_i = y_n + h Σ_{j<i} a_ij k_j`, by simplified Newton on the shared iteration matrix
//! `W = I − hγJ` ([`WMatrix::solve_stage`]: one `J` at `(t_n, y_n)` for all stages, reused
//! across steps while Newton converges well; Hairer & Wanner II, §IV.8). Choices, each with
//! its reason:
//!
//! - **Stage derivatives from the stage equation**, `k_i = (Y_i − ψ_i)/(hγ)`, not `f(Y_i)`:
//!   for stiff components `f` amplifies the Newton error by `‖J‖`, the stage relation does not
//!   (HW II, IV.8, the remark after eq. (8.17); OrdinaryDiffEq.jl's ESDIRKs do the same). It also
//!   saves one `f` evaluation per stage.
//! - **Predictor: the previous stage's derivative**, `Y_i⁰ = ψ_i + hγ k_{i−1}` (for the first
//!   implicit stage of an ESDIRK this is an explicit Euler step to `t_n + c_2 h`). It is exact for
//!   a constant `f`, costs nothing, and for the stiff problems of the test set converges in as
//!   few iterations as the extrapolating predictors we tried on paper; see ADR 0008.
//! - **First same as last**: for stiffly accurate ESDIRKs with `c_s = 1` the last stage
//!   derivative `k_s ≈ f(t_{n+1}, y_{n+1})` becomes the next step's explicit first stage and
//!   the end-point slope of the cubic Hermite dense output.
//! - **Smoothed error estimate** (default on): `err = W⁻¹ · h Σ (b_i − b̂_i) k_i`, Shampine's
//!   filter (Hairer & Wanner II, IV.8, eq. (8.19); Hosea & Shampine 1996, §3 for TR-BDF2). The raw
//!   estimate of stiff components is `O(h‖J‖)` too large and forces tiny steps on problems like
//!   Robertson; `W⁻¹` damps exactly those components and leaves non-stiff ones `O(h)`-close. It
//!   costs one linear solve with the factorization the stages already paid for.
//! - **Step-size hold**: when the controller proposes to grow `h` by less than
//!   [`DirkConfig::hold_ratio`] (default 1.2) over the `h` at which `W` is factorized, the stepper
//!   keeps that `h`, so `W` stays exact and Newton converges in one iteration on linear stiff
//!   parts (RADAU5's `quot1 = 1, quot2 = 1.2`, HW II, IV.8).

use crate::error::{ImplicitError, Result};
use crate::tableaus::{DirkTableau, IMPLICIT_EULER, KENCARP4_ESDIRK, KVAERNO5, TRBDF2};
use crate::wmatrix::{Tolerances, WConfig, WMatrix};
use neurohybrid_solve::{
    Stats, Step, StepFailure, StepOutcome, StepState, Stepper, hermite_coefficients,
};
use neurohybrid_system::{Jacobian, OdeSystem};

/// Configuration shared by the DIRK and IMEX steppers.
#[derive(Debug, Clone, PartialEq)]
pub struct DirkConfig {
    /// Error weights for Newton's stopping test; use the controller's
    /// ([`Tolerances::from_controller`]).
    pub tolerances: Tolerances,
    /// Iteration-matrix configuration (backend, reuse thresholds, Newton settings).
    pub w: WConfig,
    /// Filter the error estimate through `W⁻¹` (see the module docs). Default `true`.
    pub smooth_error: bool,
    /// Keep the factorized `h` when the controller proposes `h_next ∈ [h_W, hold_ratio·h_W]`.
    /// `1.0` disables the hold. Default `1.2`.
    pub hold_ratio: f64,
    /// The implicitly treated `f` is linear in `y` (IMEX steppers: the stiff part, e.g.
    /// diffusion): each stage is one linear solve ([`WMatrix::solve_linear_stage`]) instead of
    /// a Newton iteration. A promise by the caller, not checked. Default `false`.
    pub linear_implicit: bool,
}

impl Default for DirkConfig {
    fn default() -> Self {
        Self {
            tolerances: Tolerances::default(),
            w: WConfig::default(),
            smooth_error: true,
            hold_ratio: 1.2,
            linear_implicit: false,
        }
    }
}

impl DirkConfig {
    /// The default configuration with the given Newton tolerances.
    pub fn with_tolerances(mut self, tolerances: Tolerances) -> Self {
        self.tolerances = tolerances;
        self
    }

    /// Replace the iteration-matrix configuration.
    pub fn with_w(mut self, w: WConfig) -> Self {
        self.w = w;
        self
    }

    /// Turn the `W⁻¹` error filter on or off.
    pub fn with_smooth_error(mut self, smooth: bool) -> Self {
        self.smooth_error = smooth;
        self
    }

    /// Declare the implicitly treated part linear in `y` (see [`DirkConfig::linear_implicit`]).
    pub fn with_linear_implicit(mut self, linear: bool) -> Self {
        self.linear_implicit = linear;
        self
    }

    /// Set the step-size hold ratio (`≥ 1`; `1` disables it).
    pub fn with_hold_ratio(mut self, ratio: f64) -> Self {
        self.hold_ratio = ratio;
        self
    }

    /// Checks the tolerances (against `n` when per-component), the W configuration and the
    /// hold ratio.
    pub fn validate(&self, n: Option<usize>) -> Result<()> {
        let n = n.or(self.tolerances.atol_components.as_ref().map(Vec::len)).unwrap_or(1);
        self.tolerances.validate(n)?;
        self.w.validate()?;
        if !(self.hold_ratio >= 1.0 && self.hold_ratio.is_finite()) {
            return Err(ImplicitError::InvalidConfig {
                what: "hold_ratio",
                value: self.hold_ratio,
                reason: "must be finite and >= 1",
            });
        }
        Ok(())
    }
}

/// Working memory of an (E)SDIRK solve, allocated once by `init`.
///
/// The stage derivatives of the last computed step stay readable through
/// [`SdirkState::stages`] until the next step, and the iteration matrix through
/// [`SdirkState::w_matrix`] (a discrete adjoint reuses both).
#[derive(Debug)]
pub struct SdirkState {
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    k: Vec<Vec<f64>>,
    psi: Vec<f64>,
    stage: Vec<f64>,
    f: Vec<f64>,
    scale: Vec<f64>,
    /// `f(t_n, y_n)`.
    f0: Vec<f64>,
    f0_valid: bool,
    /// `f(t_{n+1}, y_{n+1})` when dense output of a non-FSAL method evaluated it.
    f1: Vec<f64>,
    f1_valid: bool,
    wm: WMatrix,
}

impl SdirkState {
    /// Stage derivatives `k_i` of the last computed step.
    pub fn stages(&self) -> &[Vec<f64>] {
        &self.k
    }

    /// The iteration matrix (its Jacobian, factorization and `hγ`).
    pub fn w_matrix(&self) -> &WMatrix {
        &self.wm
    }
}

impl StepState for SdirkState {
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

/// `out = y + h Σ_j coeffs_j k_j`.
pub(crate) fn combine(out: &mut [f64], y: &[f64], h: f64, coeffs: &[f64], k: &[Vec<f64>]) {
    out.copy_from_slice(y);
    for (&a, kj) in coeffs.iter().zip(k) {
        if a != 0.0 {
            let ha = h * a;
            out.iter_mut().zip(kj).for_each(|(o, k)| *o += ha * k);
        }
    }
}

/// Whether the last stage derivative is `f(t_{n+1}, y_{n+1})` (first same as last).
fn fsal(tab: &DirkTableau) -> bool {
    tab.stiffly_accurate && tab.c[tab.stages() - 1] == 1.0
}

/// Per-component tolerances must match the state (the `Stepper` contract has no error channel
/// at `init`, so a mismatch is reported as a panic naming the lengths).
pub(crate) fn check_tolerances(tol: &Tolerances, n: usize) {
    if let Some(v) = &tol.atol_components {
        assert_eq!(v.len(), n, "per-component atol has {} entries for {n} states", v.len());
    }
}

fn new_w<S: Jacobian + ?Sized>(system: &S, cfg: &DirkConfig) -> WMatrix {
    // The configuration was validated when the method was built; the only other failure is a
    // Jacobian pattern that is not n × n, a broken `Jacobian` impl (trait contract).
    WMatrix::new(system, cfg.w).expect("Jacobian::sparsity must be an n x n pattern")
}

pub(crate) fn init<S: Jacobian + ?Sized>(
    tab: &DirkTableau,
    cfg: &DirkConfig,
    system: &S,
    p: &[f64],
    t0: f64,
    y0: &[f64],
    stats: &mut Stats,
) -> SdirkState {
    let n = system.n_states();
    check_tolerances(&cfg.tolerances, n);
    let v = || vec![0.0; n];
    let mut st = SdirkState {
        y: y0.to_vec(),
        y_new: v(),
        err: v(),
        k: vec![v(); tab.stages()],
        psi: v(),
        stage: v(),
        f: v(),
        scale: v(),
        f0: v(),
        f0_valid: false,
        f1: v(),
        f1_valid: false,
        wm: new_w(system, cfg),
    };
    if tab.explicit_first_stage {
        // The first stage; the initial-step heuristic reuses it through `dydt`.
        system.rhs(t0, y0, p, &mut st.f0);
        stats.rhs_evals += 1;
        st.f0_valid = true;
    }
    st
}

pub(crate) fn dirk_step<S: Jacobian + ?Sized>(
    tab: &DirkTableau,
    cfg: &DirkConfig,
    system: &S,
    p: &[f64],
    st: &mut SdirkState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome {
    let Step { t, h } = step;
    let s = tab.stages();
    let hg = h * tab.gamma;
    st.f1_valid = false;
    cfg.tolerances.scale(&st.y, &mut st.scale);
    let first = if tab.explicit_first_stage {
        if !st.f0_valid {
            system.rhs(t, &st.y, p, &mut st.f0);
            stats.rhs_evals += 1;
            st.f0_valid = true;
        }
        st.k[0].copy_from_slice(&st.f0);
        1
    } else {
        0
    };
    for i in first..s {
        let (done, rest) = st.k.split_at_mut(i);
        combine(&mut st.psi, &st.y, h, &tab.a[i][..i], done);
        // Predictor: the previous stage derivative (module docs).
        let prev: Option<&[f64]> = match done.last() {
            Some(k) => Some(k),
            None => st.f0_valid.then_some(&st.f0[..]),
        };
        match prev {
            Some(k) => st.stage.iter_mut().zip(&st.psi).zip(k).for_each(|((z, s), k)| {
                *z = s + hg * k;
            }),
            None => st.stage.copy_from_slice(&st.psi),
        }
        let ti = t + tab.c[i] * h;
        let mut evals = 0;
        let (psi, f) = (&st.psi, &mut st.f);
        let mut residual = |z: &[f64], out: &mut [f64]| {
            system.rhs(ti, z, p, f);
            evals += 1;
            for ((o, z), (s, f)) in out.iter_mut().zip(z).zip(psi.iter().zip(f.iter())) {
                *o = z - s - hg * f;
            }
        };
        let solved = st.wm.solve_stage(
            system,
            p,
            t,
            &st.y,
            hg,
            &mut residual,
            &mut st.stage,
            &st.scale,
            stats,
        );
        stats.rhs_evals += evals;
        if let Err(failure) = solved {
            return StepOutcome::Failed(failure);
        }
        let ki = &mut rest[0];
        let inv = 1.0 / hg;
        ki.iter_mut().zip(&st.stage).zip(&st.psi).for_each(|((k, z), s)| *k = (z - s) * inv);
    }
    if tab.stiffly_accurate {
        st.y_new.copy_from_slice(&st.stage);
    } else {
        combine(&mut st.y_new, &st.y, h, tab.b, &st.k);
    }
    if let Some(e) = tab.b_err {
        st.err.fill(0.0);
        for (&w, kj) in e.iter().zip(&st.k) {
            if w != 0.0 {
                let hw = h * w;
                st.err.iter_mut().zip(kj).for_each(|(o, k)| *o += hw * k);
            }
        }
        if cfg.smooth_error
            && let Err(failure) = smooth(&mut st.wm, &mut st.err, stats)
        {
            return StepOutcome::Failed(failure);
        }
    }
    StepOutcome::Computed
}

/// `err ← W⁻¹ err` with the factorization of the step just taken.
pub(crate) fn smooth(
    wm: &mut WMatrix,
    err: &mut [f64],
    stats: &mut Stats,
) -> std::result::Result<(), StepFailure> {
    wm.solve_estimate_in_place(err, stats)
}

pub(crate) fn dense<S: Jacobian + ?Sized>(
    tab: &DirkTableau,
    system: &S,
    p: &[f64],
    st: &mut SdirkState,
    step: Step,
    coeffs: &mut [f64],
    stats: &mut Stats,
) {
    let n = st.y.len();
    let Step { t, h } = step;
    if let Some(rows) = tab.interpolant {
        coeffs[..n].copy_from_slice(&st.y);
        for j in 0..tab.dense_degree() {
            let c = &mut coeffs[(j + 1) * n..(j + 2) * n];
            c.fill(0.0);
            for (row, kj) in rows.iter().zip(&st.k) {
                let w = h * row[j];
                if w != 0.0 {
                    c.iter_mut().zip(kj).for_each(|(o, k)| *o += w * k);
                }
            }
        }
        return;
    }
    if !st.f0_valid {
        system.rhs(t, &st.y, p, &mut st.f0);
        stats.rhs_evals += 1;
        st.f0_valid = true;
    }
    let f1: &[f64] = if fsal(tab) {
        &st.k[tab.stages() - 1]
    } else {
        if !st.f1_valid {
            system.rhs(t + h, &st.y_new, p, &mut st.f1);
            stats.rhs_evals += 1;
            st.f1_valid = true;
        }
        &st.f1
    };
    hermite_coefficients(&st.y, &st.f0, &st.y_new, f1, h, coeffs);
}

pub(crate) fn accept(tab: &DirkTableau, cfg: &DirkConfig, st: &mut SdirkState, h_next: f64) -> f64 {
    std::mem::swap(&mut st.y, &mut st.y_new);
    if fsal(tab) {
        st.f0.copy_from_slice(&st.k[tab.stages() - 1]);
        st.f0_valid = true;
    } else if st.f1_valid {
        std::mem::swap(&mut st.f0, &mut st.f1);
        st.f0_valid = true;
    } else {
        st.f0_valid = false;
    }
    st.f1_valid = false;
    st.wm.step_accepted();
    held_step(&st.wm, tab.gamma, cfg.hold_ratio, h_next)
}

/// The step-size hold (module docs): `h_W` if `h_next ∈ [h_W, ratio·h_W]`, else `h_next`.
pub(crate) fn held_step(wm: &WMatrix, gamma: f64, ratio: f64, h_next: f64) -> f64 {
    match wm.factorized_hgamma() {
        Some(hg) => {
            let h_w = (hg / gamma).abs();
            if h_next >= h_w && h_next <= ratio * h_w { h_w } else { h_next }
        }
        None => h_next,
    }
}

pub(crate) fn restart(st: &mut SdirkState) {
    st.f0_valid = false;
    st.f1_valid = false;
    st.wm.request_jacobian_refresh();
}

macro_rules! dirk_stepper {
    ($ty:ty) => {
        impl<S: OdeSystem + Jacobian + ?Sized> Stepper<S> for $ty {
            type State = SdirkState;
            fn name(&self) -> &str {
                self.tableau().name
            }
            fn order(&self) -> usize {
                self.tableau().order
            }
            fn error_order(&self) -> Option<usize> {
                self.tableau().error_order
            }
            fn dense_degree(&self) -> usize {
                self.tableau().dense_degree()
            }
            fn init(
                &self,
                system: &S,
                p: &[f64],
                t0: f64,
                y0: &[f64],
                stats: &mut Stats,
            ) -> SdirkState {
                init(self.tableau(), self.config(), system, p, t0, y0, stats)
            }
            fn step(
                &self,
                system: &S,
                p: &[f64],
                state: &mut SdirkState,
                step: Step,
                stats: &mut Stats,
            ) -> StepOutcome {
                dirk_step(self.tableau(), self.config(), system, p, state, step, stats)
            }
            fn dense(
                &self,
                system: &S,
                p: &[f64],
                state: &mut SdirkState,
                step: Step,
                coeffs: &mut [f64],
                stats: &mut Stats,
            ) {
                dense(self.tableau(), system, p, state, step, coeffs, stats)
            }
            fn accept(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut SdirkState,
                _t_new: f64,
                h_next: f64,
                _stats: &mut Stats,
            ) -> f64 {
                accept(self.tableau(), self.config(), state, h_next)
            }
            fn restart(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut SdirkState,
                _t: f64,
                _stats: &mut Stats,
            ) {
                restart(state)
            }
        }
    };
}

/// Builder methods shared by the named methods (`new`, `with_tolerances`, `with_config`).
macro_rules! dirk_method {
    ($(#[$doc:meta])* $name:ident, $tab:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            config: DirkConfig,
        }

        impl $name {
            /// The method with the default configuration (Newton weights `rtol = 1e-6`,
            /// `atol = 1e-9`; pass the controller's with [`Self::with_tolerances`]).
            pub fn new() -> Self {
                Self::default()
            }

            /// The method with Newton weights `atol + rtol·|y|`; use the controller's values.
            /// Invalid values are reported when the configuration is validated by
            /// [`Self::with_config`]; this shortcut panics on them instead.
            pub fn with_tolerances(rtol: f64, atol: f64) -> Self {
                let config = DirkConfig::default().with_tolerances(Tolerances::new(rtol, atol));
                Self::with_config(config).expect("rtol and atol must be finite, >= 0, not both 0")
            }

            /// The method with a validated configuration.
            pub fn with_config(config: DirkConfig) -> Result<Self> {
                config.validate(None)?;
                Ok(Self { config })
            }

            /// The configuration.
            pub fn config(&self) -> &DirkConfig {
                &self.config
            }

            /// The method's tableau.
            pub fn tableau(&self) -> &'static DirkTableau {
                &$tab
            }
        }

        dirk_stepper!($name);
    };
}

dirk_method!(
    /// Implicit (backward) Euler: order 1, L-stable, adaptive through the embedded trapezoidal
    /// rule ([`crate::tableaus::IMPLICIT_EULER`]); one implicit stage per step.
    ImplicitEuler,
    IMPLICIT_EULER
);
dirk_method!(
    /// TR-BDF2 (Hosea & Shampine 1996): order 2, L-stable, stiffly accurate, two implicit
    /// stages sharing one `W`, third-order embedded estimate ([`crate::tableaus::TRBDF2`]).
    TrBdf2,
    TRBDF2
);
dirk_method!(
    /// Kværnø's ESDIRK 5(4) (2004): order 5, L-stable, stiffly accurate, six implicit stages,
    /// fourth-order embedded estimate, cubic Hermite dense output ([`crate::tableaus::KVAERNO5`]).
    Kvaerno5,
    KVAERNO5
);
dirk_method!(
    /// The implicit half of KenCarp4, ESDIRK4(3)6L\[2\]SA (Kennedy & Carpenter 2003), as a
    /// stand-alone method for non-split systems: order 4, L-stable, stiffly accurate, five
    /// implicit stages, its own third-order dense output ([`crate::tableaus::KENCARP4_ESDIRK`]).
    Esdirk4,
    KENCARP4_ESDIRK
);

/// An (E)SDIRK method from any `'static` [`DirkTableau`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sdirk {
    tableau: &'static DirkTableau,
    config: DirkConfig,
}

impl Sdirk {
    /// A stepper for `tableau` with the default configuration.
    pub fn new(tableau: &'static DirkTableau) -> Self {
        Self { tableau, config: DirkConfig::default() }
    }

    /// A stepper for `tableau` with a validated configuration.
    pub fn with_config(tableau: &'static DirkTableau, config: DirkConfig) -> Result<Self> {
        config.validate(None)?;
        Ok(Self { tableau, config })
    }

    /// The configuration.
    pub fn config(&self) -> &DirkConfig {
        &self.config
    }

    /// The tableau.
    pub fn tableau(&self) -> &'static DirkTableau {
        self.tableau
    }
}

dirk_stepper!(Sdirk);
