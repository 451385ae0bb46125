//! IMEX additive Runge–Kutta for split systems `y' = f_stiff(y) + f_nonstiff(y)`
//! ([`Split`]): the stiff part (diffusion) implicitly, the non-stiff part (reaction) explicitly.
//!
//! Stage `i` of an ARK pair (Kennedy & Carpenter 2003, eq. (3)) solves
//!
//! ```text
//! Y_i = ψ_i + hγ f_I(t_i, Y_i),   ψ_i = y_n + h Σ_{j<i} (aᴱ_ij kᴱ_j + aᴵ_ij kᴵ_j),
//! kᴵ_i = (Y_i − ψ_i)/(hγ),        kᴱ_i = f_E(t_i, Y_i),
//! y_{n+1} = y_n + h Σ_i b_i (kᴱ_i + kᴵ_i).
//! ```
//!
//! Only the stiff part enters Newton, so `W = I − hγ J_I` holds the stiff part's Jacobian
//! alone: for reaction–diffusion it is the constant, symmetric diffusion matrix, whose sparse LU
//! keeps its symbolic analysis for the whole solve and is refactored only when `hγ` moves
//! (and a linear stiff part converges in one Newton iteration). The reaction — nonlinear,
//! pointwise, with eigenvalues far smaller than the diffusion's — costs one evaluation per
//! stage and never a Jacobian. Predictor, stage derivatives from the stage equation, the
//! `W⁻¹` error filter and the step-size hold are those of the SDIRK steppers
//! ([`crate::sdirk`] module docs). The explicit tableau is not stiffly accurate, so there is
//! no first-same-as-last: each step starts with one evaluation of each part at `y_n`.

use crate::error::Result;
use crate::sdirk::{DirkConfig, check_tolerances, held_step, smooth};
use crate::tableaus::{ArkTableau, KENCARP4};
use crate::wmatrix::{Tolerances, WMatrix};
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, Stepper};
use neurohybrid_system::{Jacobian, OdeSystem, Split};

/// Working memory of an IMEX solve, allocated once by `init`.
#[derive(Debug)]
pub struct ImexState {
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    ke: Vec<Vec<f64>>,
    ki: Vec<Vec<f64>>,
    psi: Vec<f64>,
    stage: Vec<f64>,
    f: Vec<f64>,
    scale: Vec<f64>,
    /// `kᴱ_1, kᴵ_1` hold both parts at `(t_n, y_n)`.
    k0_valid: bool,
    wm: WMatrix,
}

impl ImexState {
    /// Explicit (non-stiff) stage derivatives `kᴱ_i` of the last computed step.
    pub fn explicit_stages(&self) -> &[Vec<f64>] {
        &self.ke
    }

    /// Implicit (stiff) stage derivatives `kᴵ_i` of the last computed step.
    pub fn implicit_stages(&self) -> &[Vec<f64>] {
        &self.ki
    }

    /// The iteration matrix `I − hγ J_stiff`.
    pub fn w_matrix(&self) -> &WMatrix {
        &self.wm
    }
}

impl StepState for ImexState {
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
}

/// `out = y + h Σ_j (ae_j ke_j + ai_j ki_j)`.
fn combine2(
    out: &mut [f64],
    y: &[f64],
    h: f64,
    ae: &[f64],
    ke: &[Vec<f64>],
    ai: &[f64],
    ki: &[Vec<f64>],
) {
    out.copy_from_slice(y);
    for (&a, kj) in ae.iter().zip(ke).chain(ai.iter().zip(ki)) {
        if a != 0.0 {
            let ha = h * a;
            out.iter_mut().zip(kj).for_each(|(o, k)| *o += ha * k);
        }
    }
}

fn init<A, B>(
    tab: &ArkTableau,
    cfg: &DirkConfig,
    system: &Split<A, B>,
    p: &[f64],
    t0: f64,
    y0: &[f64],
    stats: &mut Stats,
) -> ImexState
where
    A: OdeSystem + Jacobian,
    B: OdeSystem,
{
    let n = system.n_states();
    check_tolerances(&cfg.tolerances, n);
    let v = || vec![0.0; n];
    let wm = WMatrix::new(system.stiff(), cfg.w)
        .expect("the stiff part's Jacobian::sparsity must be an n x n pattern");
    let mut st = ImexState {
        y: y0.to_vec(),
        y_new: v(),
        err: v(),
        ke: vec![v(); tab.stages()],
        ki: vec![v(); tab.stages()],
        psi: v(),
        stage: v(),
        f: v(),
        scale: v(),
        k0_valid: false,
        wm,
    };
    eval_first_stage(system, p, t0, &mut st, stats);
    st
}

fn eval_first_stage<A: OdeSystem, B: OdeSystem>(
    system: &Split<A, B>,
    p: &[f64],
    t: f64,
    st: &mut ImexState,
    stats: &mut Stats,
) {
    let (ps, pn) = system.split_params(p);
    system.stiff().rhs(t, &st.y, ps, &mut st.ki[0]);
    system.nonstiff().rhs(t, &st.y, pn, &mut st.ke[0]);
    stats.rhs_evals += 2;
    st.k0_valid = true;
}

fn ark_step<A, B>(
    tab: &ArkTableau,
    cfg: &DirkConfig,
    system: &Split<A, B>,
    p: &[f64],
    st: &mut ImexState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome
where
    A: OdeSystem + Jacobian,
    B: OdeSystem,
{
    let Step { t, h } = step;
    let s = tab.stages();
    let hg = h * tab.gamma;
    let (ps, pn) = system.split_params(p);
    let (stiff, nonstiff) = (system.stiff(), system.nonstiff());
    if !st.k0_valid {
        eval_first_stage(system, p, t, st, stats);
    }
    cfg.tolerances.scale(&st.y, &mut st.scale);
    for i in 1..s {
        let (ke_done, ke_rest) = st.ke.split_at_mut(i);
        let (ki_done, ki_rest) = st.ki.split_at_mut(i);
        let ai = &tab.a_implicit[i][..i];
        combine2(&mut st.psi, &st.y, h, tab.a_explicit[i], ke_done, ai, ki_done);
        // Predictor: the previous implicit stage derivative.
        let prev = &ki_done[i - 1];
        st.stage.iter_mut().zip(&st.psi).zip(prev).for_each(|((z, s), k)| *z = s + hg * k);
        let ti = t + tab.c[i] * h;
        let mut evals = 0;
        let (psi, f) = (&st.psi, &mut st.f);
        let mut residual = |z: &[f64], out: &mut [f64]| {
            stiff.rhs(ti, z, ps, f);
            evals += 1;
            for ((o, z), (s, f)) in out.iter_mut().zip(z).zip(psi.iter().zip(f.iter())) {
                *o = z - s - hg * f;
            }
        };
        let solve =
            if cfg.linear_implicit { WMatrix::solve_linear_stage } else { WMatrix::solve_stage };
        let solved = solve(
            &mut st.wm,
            stiff,
            ps,
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
        let inv = 1.0 / hg;
        ki_rest[0].iter_mut().zip(&st.stage).zip(&st.psi).for_each(|((k, z), s)| {
            *k = (z - s) * inv;
        });
        nonstiff.rhs(ti, &st.stage, pn, &mut ke_rest[0]);
        stats.rhs_evals += 1;
    }
    combine2(&mut st.y_new, &st.y, h, tab.b, &st.ke, tab.b, &st.ki);
    st.err.fill(0.0);
    for ((&w, ke), ki) in tab.b_err.iter().zip(&st.ke).zip(&st.ki) {
        if w != 0.0 {
            let hw = h * w;
            st.err.iter_mut().zip(ke.iter().zip(ki)).for_each(|(o, (e, i))| *o += hw * (e + i));
        }
    }
    if cfg.smooth_error
        && let Err(failure) = smooth(&mut st.wm, &mut st.err, stats)
    {
        return StepOutcome::Failed(failure);
    }
    StepOutcome::Computed
}

fn dense(tab: &ArkTableau, st: &ImexState, step: Step, coeffs: &mut [f64]) {
    // Kennedy & Carpenter 2003, §4: y(t_n + θh) = y_n + h Σ_i b*_i(θ) (kᴱ_i + kᴵ_i).
    let n = st.y.len();
    let h = step.h;
    coeffs[..n].copy_from_slice(&st.y);
    for j in 0..tab.dense_degree() {
        let c = &mut coeffs[(j + 1) * n..(j + 2) * n];
        c.fill(0.0);
        for ((row, ke), ki) in tab.interpolant.iter().zip(&st.ke).zip(&st.ki) {
            let w = h * row[j];
            if w != 0.0 {
                c.iter_mut().zip(ke.iter().zip(ki)).for_each(|(o, (e, i))| *o += w * (e + i));
            }
        }
    }
}

fn accept(tab: &ArkTableau, cfg: &DirkConfig, st: &mut ImexState, h_next: f64) -> f64 {
    std::mem::swap(&mut st.y, &mut st.y_new);
    st.k0_valid = false;
    st.wm.step_accepted();
    held_step(&st.wm, tab.gamma, cfg.hold_ratio, h_next)
}

macro_rules! imex_stepper {
    ($ty:ty) => {
        impl<A, B> Stepper<Split<A, B>> for $ty
        where
            A: OdeSystem + Jacobian,
            B: OdeSystem,
        {
            type State = ImexState;
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
            fn init(
                &self,
                system: &Split<A, B>,
                p: &[f64],
                t0: f64,
                y0: &[f64],
                stats: &mut Stats,
            ) -> ImexState {
                init(self.tableau(), self.config(), system, p, t0, y0, stats)
            }
            fn step(
                &self,
                system: &Split<A, B>,
                p: &[f64],
                state: &mut ImexState,
                step: Step,
                stats: &mut Stats,
            ) -> StepOutcome {
                ark_step(self.tableau(), self.config(), system, p, state, step, stats)
            }
            fn dense(
                &self,
                _system: &Split<A, B>,
                _p: &[f64],
                state: &mut ImexState,
                step: Step,
                coeffs: &mut [f64],
                _stats: &mut Stats,
            ) {
                dense(self.tableau(), state, step, coeffs)
            }
            fn accept(
                &self,
                _system: &Split<A, B>,
                _p: &[f64],
                state: &mut ImexState,
                _t_new: f64,
                h_next: f64,
                _stats: &mut Stats,
            ) -> f64 {
                accept(self.tableau(), self.config(), state, h_next)
            }
            fn restart(
                &self,
                _system: &Split<A, B>,
                _p: &[f64],
                state: &mut ImexState,
                _t: f64,
                _stats: &mut Stats,
            ) {
                state.k0_valid = false;
                state.wm.request_jacobian_refresh();
            }
        }
    };
}

/// KenCarp4, Kennedy & Carpenter's ARK4(3)6L\[2\]SA IMEX pair (2003): order 4, the implicit
/// half L-stable and stiffly accurate, third-order embedded estimate and dense output
/// ([`crate::tableaus::KENCARP4`]). A stepper for [`Split`] systems only; the implicit half alone is
/// [`crate::Esdirk4`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KenCarp4 {
    config: DirkConfig,
}

impl KenCarp4 {
    /// The method with the default configuration (Newton weights `rtol = 1e-6`, `atol = 1e-9`;
    /// pass the controller's with [`Self::with_tolerances`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The method with Newton weights `atol + rtol·|y|`; use the controller's values. Panics on
    /// invalid values ([`Self::with_config`] reports them as errors).
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

    /// The IMEX tableau pair.
    pub fn tableau(&self) -> &'static ArkTableau {
        &KENCARP4
    }
}

imex_stepper!(KenCarp4);

/// An IMEX method from any `'static` [`ArkTableau`] pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Ark {
    tableau: &'static ArkTableau,
    config: DirkConfig,
}

impl Ark {
    /// A stepper for `tableau` with the default configuration.
    pub fn new(tableau: &'static ArkTableau) -> Self {
        Self { tableau, config: DirkConfig::default() }
    }

    /// A stepper for `tableau` with a validated configuration.
    pub fn with_config(tableau: &'static ArkTableau, config: DirkConfig) -> Result<Self> {
        config.validate(None)?;
        Ok(Self { tableau, config })
    }

    /// The configuration.
    pub fn config(&self) -> &DirkConfig {
        &self.config
    }

    /// The tableau pair.
    pub fn tableau(&self) -> &'static ArkTableau {
        self.tableau
    }
}

imex_stepper!(Ark);
