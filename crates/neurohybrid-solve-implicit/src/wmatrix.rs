//! The iteration matrix `W = I − hγJ` shared by every implicit stepper of this crate.
//!
//! BDF, SDIRK/ESDIRK, IMEX and Rosenbrock steps all solve linear systems with
//! `W = I − hγ J`, `J = ∂f/∂y`. [`WMatrix`] owns
//!
//! - the Jacobian storage (the system's own [`Jacobian`] pattern, filled in place),
//! - `W` and its factorization: dense LU ([`DenseLu`]) for small systems; for sparse ones a
//!   sparse Cholesky ([`SparseCholesky`]) while `W` is symmetric positive definite (checked by
//!   the factorization itself: symmetric pattern once, symmetric values at every refactorization,
//!   positive pivots), sparse LU ([`SparseLu`]) otherwise or after Cholesky failed once
//!   (symbolic analysis once per solve in either case, numeric refactorizations after),
//!   or no factorization: [`LinearBackend::Krylov`] assembles `W` and solves it by CG/GMRES
//!   to tolerances derived from Newton's ([`KrylovW`], ADR 0016),
//! - the refresh policy: `J` is reused across steps and only re-evaluated when a Newton
//!   iteration fails or converges slowly, or after [`WConfig::max_jacobian_age`] accepted steps;
//!   `W` is refactored only when `J` was refreshed or `hγ` moved by more than
//!   [`WConfig::refactor_threshold`] relative to the factorized value
//!   (Hairer & Wanner II, §IV.8 "Reusing the Jacobian"; CVODE's `dgmax = 0.3`, `msbj = 50`),
//! - a stage-equation Newton helper ([`WMatrix::solve_stage`]) on top of
//!   `neurohybrid_linalg::NewtonSolver`, which applies that policy and retries once with a fresh
//!   Jacobian before it reports failure.
//!
//! Work is counted in the caller's [`Stats`]: `jacobian_evals`, `factorizations`,
//! `linear_solves`. Right-hand-side evaluations inside a residual are the caller's to count.
//!
//! Everything is allocated in [`WMatrix::new`], except a sparse backend's symbolic analysis
//! and factor storage, made at its first factorization (so a symmetric `W` never pays for the
//! LU's analysis); nothing after allocates.

use crate::error::{ImplicitError, Result};
use neurohybrid_linalg::{
    DenseLu, KrylovConfig, KrylovMethod, KrylovSolver, LinalgError, LinearSolver, Newton,
    NewtonSolver, NewtonStatus, PreconditionerKind, Residual, SparseCholesky, SparseLu,
    SparseMatrix, SparsePattern,
};
use neurohybrid_solve::{Atol, PiController, Stats, StepFailure, weighted_rms_norm};
use neurohybrid_system::{CsrMatrix, Jacobian};

/// faer's dense matrix type, named through the solver so this crate needs no faer dependency
/// (faer is reached only through `neurohybrid-linalg`, DESIGN.md §2).
type DenseMat = <DenseLu as LinearSolver>::Matrix;

/// Error-weighting tolerances of an implicit stepper.
///
/// The solve loop's controller owns the step-acceptance test, but Newton's stopping test and
/// BDF's order selection need the same weights `atol_i + rtol·|y_i|` inside the stepper
/// (docs/decisions/0007). Give the stepper the controller's values, e.g. with
/// [`Tolerances::from_controller`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (scalar).
    pub atol: f64,
    /// Per-component absolute tolerance; overrides `atol` when set.
    pub atol_components: Option<Vec<f64>>,
}

impl Default for Tolerances {
    /// The defaults of `PiController::default()`: `rtol = 1e-6`, `atol = 1e-9`.
    fn default() -> Self {
        Self::new(1e-6, 1e-9)
    }
}

impl Tolerances {
    /// Scalar tolerances.
    pub fn new(rtol: f64, atol: f64) -> Self {
        Self { rtol, atol, atol_components: None }
    }

    /// Per-component absolute tolerances.
    pub fn with_atol_components(mut self, atol: Vec<f64>) -> Self {
        self.atol_components = Some(atol);
        self
    }

    /// The tolerances of a PI controller (what the solve loop will test the error against).
    pub fn from_controller(controller: &PiController) -> Self {
        Self {
            rtol: controller.rtol,
            atol: controller.atol,
            atol_components: controller.atol_components.clone(),
        }
    }

    /// Rejects negative or non-finite values, `rtol = atol = 0`, and a component vector of the
    /// wrong length.
    pub fn validate(&self, n: usize) -> Result<()> {
        let bad = |what, value, reason| Err(ImplicitError::InvalidConfig { what, value, reason });
        if !(self.rtol >= 0.0 && self.rtol.is_finite()) {
            return bad("rtol", self.rtol, "must be finite and >= 0");
        }
        let atols: &[f64] = match &self.atol_components {
            Some(v) if v.len() != n => {
                return bad("atol_components length", v.len() as f64, "must equal n_states");
            }
            Some(v) => v,
            None => std::slice::from_ref(&self.atol),
        };
        if let Some(&a) = atols.iter().find(|a| !(**a >= 0.0 && a.is_finite())) {
            return bad("atol", a, "must be finite and >= 0");
        }
        if self.rtol == 0.0 && atols.contains(&0.0) {
            return bad("atol", 0.0, "rtol and atol are both zero");
        }
        Ok(())
    }

    fn atol_of(&self) -> Atol<'_> {
        match &self.atol_components {
            Some(v) => Atol::Vector(v),
            None => Atol::Scalar(self.atol),
        }
    }

    /// `out_i = atol_i + rtol·|y_i|`, the weights of Newton's RMS norm. A zero weight (zero
    /// `atol` at `y_i = 0`) is replaced by the smallest positive normal number so the norm
    /// stays defined.
    pub fn scale(&self, y: &[f64], out: &mut [f64]) {
        for (i, (o, yi)) in out.iter_mut().zip(y).enumerate() {
            let a = match &self.atol_components {
                Some(v) => v[i],
                None => self.atol,
            };
            *o = (a + self.rtol * yi.abs()).max(f64::MIN_POSITIVE);
        }
    }

    /// The controller's weighted RMS norm of `err` (scale `atol + rtol·max(|y|, |y_new|)`,
    /// HNW I, II.4, eq. 4.11), so a stepper can compare candidate error estimates the way the
    /// solve loop will.
    pub fn error_norm(&self, err: &[f64], y: &[f64], y_new: &[f64]) -> f64 {
        weighted_rms_norm(err, y, y_new, self.rtol, self.atol_of())
    }
}

/// Which factorization `W` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinearBackend {
    /// Dense LU for `n ≤ 8`, and for `n ≤ WConfig::dense_max` when `J`'s pattern fills at
    /// least a quarter of the matrix; [`LinearBackend::Sparse`] otherwise (measured, ADR 0007:
    /// a tridiagonal `W` factors faster sparse from `n = 16`, a full one dense up to `n = 64`).
    #[default]
    Auto,
    /// Always dense LU.
    Dense,
    /// Always sparse: Cholesky while `W` is symmetric positive definite, LU otherwise (and
    /// for good after a Cholesky refusal). Symbolic analysis once per backend.
    Sparse,
    /// Always sparse LU, even for a symmetric `W`.
    SparseLu,
    /// No factorization: `W` is assembled in `J`'s pattern and solved iteratively (CG while
    /// `W` is symmetric, GMRES otherwise) with the preconditioner and the inexact-Newton
    /// tolerances of [`WConfig::krylov`]. "Factorizing" is then an `O(nnz)` assembly plus a
    /// preconditioner setup, so `W` is rebuilt at every new `hγ` instead of being reused at a
    /// stale one. Worth it when a direct factorization is expensive and `W` is well
    /// conditioned (diffusion: `κ(W) ≈ 1 + hγ·8D/dx²` in 2D), see ADR 0016.
    Krylov,
}

/// Settings of the [`LinearBackend::Krylov`] backend.
///
/// Inside Newton ([`WMatrix::solve_stage`]) each linear solve stops when
/// `‖r‖₂ ≤ max(forcing·‖b‖₂, newton_factor·κ·tol·‖scale‖₂)`: a relative reduction `η`
/// (the forcing term of inexact Newton, Dembo–Eisenstat–Steihaug 1982), or an absolute
/// residual at a fraction of Newton's own tolerance (Brown & Hindmarsh 1989, CVODE's
/// `eplifac = 0.05`; `‖scale‖₂` turns the weighted RMS norm into a 2-norm for a residual shaped
/// like the weights). Newton's rate test on the increments then sees the linear error as part
/// of its contraction, so the accuracy of the converged stage is Newton's, not the Krylov
/// solver's. Solves outside Newton ([`WMatrix::solve_in_place`]: Rosenbrock stages, adjoint
/// solves) use the tight relative `direct_rtol`; the SDIRK error filter uses `forcing`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KrylovW {
    /// CG, GMRES, or CG while `W` is symmetric (default).
    pub method: KrylovMethod,
    /// Preconditioner rebuilt at every assembly (default Jacobi). `PreconditionerKind::Amg`
    /// is a smoothed-aggregation V-cycle (`neurohybrid_linalg::Amg`) whose aggregates and
    /// prolongators survive reassemblies at new `hγ` (only the Galerkin products are
    /// recomputed): 4–6× fewer CG iterations on the 256² Fisher–KPP `W`, but at ~4
    /// matrix–vector products per cycle not faster there, where `κ(W) ≤ ~60` (ADR 0018); it
    /// pays for worse-conditioned `W` (larger `hγ·D/dx²`, finer grids).
    pub preconditioner: PreconditionerKind,
    /// Relative residual reduction `η` of one Newton linear solve (default 0.01: on the 256²
    /// Fisher–KPP benchmark 0.05 needed ~20 % more CPU time for BDF and IMEX — more Newton
    /// iterations, each restarting CG — and 0.2 made Newton fail; ADR 0016).
    pub forcing: f64,
    /// Absolute stopping residual as a fraction of Newton's `κ·tol` (default 0.05).
    pub newton_factor: f64,
    /// Relative tolerance of solves outside Newton (default 1e-10).
    pub direct_rtol: f64,
    /// Iteration limit per solve (default 200); reaching it fails the Newton iteration.
    pub max_iters: usize,
    /// GMRES restart length (default 30).
    pub restart: usize,
    /// Absolute stopping residual of a linear stage solve ([`WMatrix::solve_linear_stage`]) as
    /// a multiple of Newton's `κ·tol·‖scale‖₂` (default 1).
    pub linear_stage_factor: f64,
}

impl Default for KrylovW {
    fn default() -> Self {
        Self {
            method: KrylovMethod::Auto,
            preconditioner: PreconditionerKind::Jacobi,
            forcing: 0.01,
            newton_factor: 0.05,
            direct_rtol: 1e-10,
            max_iters: 200,
            restart: 30,
            linear_stage_factor: 1.0,
        }
    }
}

impl KrylovW {
    fn config(&self, rtol: f64) -> KrylovConfig {
        KrylovConfig::default().rtol(rtol).atol(0.0).max_iters(self.max_iters).restart(self.restart)
    }
}

/// The factorization that holds (or, before the first one, will be tried for) `W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// Dense LU with partial pivoting.
    DenseLu,
    /// Sparse LU (faer, COLAMD).
    SparseLu,
    /// Sparse Cholesky `LLᵀ` (faer, AMD).
    SparseCholesky,
    /// No factorization: preconditioned CG/GMRES ([`LinearBackend::Krylov`]).
    Krylov,
}

/// Configuration of a [`WMatrix`]: linear backend, Jacobian/factorization reuse, Newton.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WConfig {
    /// Dense or sparse LU.
    pub backend: LinearBackend,
    /// Largest `n` that [`LinearBackend::Auto`] factors densely when `J` is at least 25 % full
    /// (default 32; see ADR 0007).
    pub dense_max: usize,
    /// Refactor `W` when `|hγ / hγ_W − 1|` exceeds this (CVODE's `dgmax = 0.3`). Below it the
    /// old factorization is used as a simplified-Newton matrix; [`WMatrix::solve_stage`]
    /// corrects the increment by `2/(1 + hγ/hγ_W)` as CVODE does.
    pub refactor_threshold: f64,
    /// Re-evaluate `J` after this many accepted steps even if Newton converges well (CVODE's
    /// `msbj = 50`).
    pub max_jacobian_age: usize,
    /// A converged Newton solve whose contraction rate `θ` exceeds this requests a fresh `J`
    /// for the next step (HW §IV.8 recompute `J` when `θ` is not small; RADAU5 uses 0.001 for
    /// its expensive 3-stage `J`-reuse, we use 0.2: our `J` is cheap to refactor but a slow
    /// iteration costs rhs evaluations every step).
    pub slow_theta: f64,
    /// Simplified Newton settings for [`WMatrix::solve_stage`].
    pub newton: Newton,
    /// Iterative-solver settings, used by [`LinearBackend::Krylov`] only.
    pub krylov: KrylovW,
}

impl Default for WConfig {
    fn default() -> Self {
        Self {
            backend: LinearBackend::Auto,
            dense_max: 32,
            refactor_threshold: 0.3,
            max_jacobian_age: 50,
            slow_theta: 0.2,
            newton: Newton::default(),
            krylov: KrylovW::default(),
        }
    }
}

impl WConfig {
    /// Validates the thresholds and the Newton settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, value, reason| Err(ImplicitError::InvalidConfig { what, value, reason });
        if !(self.refactor_threshold >= 0.0 && self.refactor_threshold.is_finite()) {
            return bad("refactor_threshold", self.refactor_threshold, "must be finite and >= 0");
        }
        if !(self.slow_theta > 0.0 && self.slow_theta < 1.0) {
            return bad("slow_theta", self.slow_theta, "must lie in (0, 1)");
        }
        self.newton.validate()?;
        let k = &self.krylov;
        for (what, v) in [("krylov.forcing", k.forcing), ("krylov.newton_factor", k.newton_factor)]
        {
            if !(v > 0.0 && v < 1.0) {
                return bad(what, v, "must lie in (0, 1)");
            }
        }
        if !(k.direct_rtol > 0.0 && k.direct_rtol < 1.0) {
            return bad("krylov.direct_rtol", k.direct_rtol, "must lie in (0, 1)");
        }
        if !(k.linear_stage_factor > 0.0 && k.linear_stage_factor.is_finite()) {
            return bad(
                "krylov.linear_stage_factor",
                k.linear_stage_factor,
                "must be finite and > 0",
            );
        }
        if k.max_iters == 0 || k.restart == 0 {
            return bad("krylov.max_iters/restart", 0.0, "must be >= 1");
        }
        Ok(())
    }
}

/// A converged stage solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSolve {
    /// Newton iterations of the successful attempt (= residual evaluations, = linear solves).
    pub iters: usize,
    /// Last contraction rate, if at least two iterations ran.
    pub theta: Option<f64>,
    /// Whether the helper had to re-evaluate `J` and retry.
    pub retried: bool,
}

// One `Backend` per solve, used in the hot loop: boxing the larger variant would only add an
// indirection per factorization and solve.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Backend {
    /// `jd` holds `J` column-major (refilled at each Jacobian evaluation), `w` is `I − hγJ`.
    Dense { jd: Vec<f64>, w: DenseMat, lu: DenseLu },
    /// `w` has `J`'s pattern plus the diagonal; `map[k]` is the position in `w` of `J`'s k-th
    /// stored entry and `diag[i]` that of `(i, i)`. `cholesky` is tried first while
    /// `try_cholesky` holds (cleared for good by a `NotSymmetric` / `NotPositiveDefinite`
    /// refusal); `chol_active` says which of the two holds the current factorization.
    Sparse {
        w: SparseMatrix,
        lu: SparseLu,
        cholesky: SparseCholesky,
        try_cholesky: bool,
        chol_active: bool,
        map: Vec<usize>,
        diag: Vec<usize>,
    },
    /// `w` as for `Sparse`; `solver` holds a copy of its values and the preconditioner.
    Krylov { w: SparseMatrix, solver: KrylovSolver, map: Vec<usize>, diag: Vec<usize> },
}

/// `W = I − hγJ` with its Jacobian, factorization, reuse policy and Newton workspace.
#[derive(Debug)]
pub struct WMatrix {
    config: WConfig,
    n: usize,
    jac: CsrMatrix,
    backend: Backend,
    newton: NewtonSolver,
    /// `hγ` of the current factorization (NaN when there is none).
    hgamma_w: f64,
    factorized: bool,
    /// `J` has been evaluated since the last accepted step (at this step's data).
    jac_fresh: bool,
    /// `J` holds values at all.
    jac_valid: bool,
    refresh_requested: bool,
    jac_age: usize,
    z0: Vec<f64>,
    /// `hγ` of the last Newton solve: the remembered Newton rate belongs to it.
    newton_hgamma: f64,
    /// Krylov iterations already added to a caller's [`Stats`].
    krylov_reported: usize,
}

impl WMatrix {
    /// Allocates Jacobian storage, `W` and its LU for `system`. Fails only when the system's
    /// Jacobian pattern is not `n × n` or the configuration is invalid.
    pub fn new<S: Jacobian + ?Sized>(system: &S, config: WConfig) -> Result<Self> {
        config.validate()?;
        let n = system.n_states();
        let jac = system.jacobian_matrix();
        if jac.nrows() != n || jac.ncols() != n {
            return Err(ImplicitError::JacobianShape { n, nrows: jac.nrows(), ncols: jac.ncols() });
        }
        let dense = match config.backend {
            LinearBackend::Auto => n <= 8 || (n <= config.dense_max && 4 * jac.nnz() >= n * n),
            LinearBackend::Dense => true,
            LinearBackend::Sparse | LinearBackend::SparseLu | LinearBackend::Krylov => false,
        };
        let backend = if dense {
            let w = SparseMatrix::identity(n).to_dense();
            Backend::Dense { jd: vec![0.0; n * n], w, lu: DenseLu::new(n) }
        } else {
            let pattern =
                SparsePattern::new(n, n, jac.row_offsets().to_vec(), jac.col_indices().to_vec())?
                    .with_diagonal()?;
            let mut map = Vec::with_capacity(jac.nnz());
            for i in 0..n {
                for &j in &jac.col_indices()[jac.row_offsets()[i]..jac.row_offsets()[i + 1]] {
                    map.push(pattern.position(i, j).expect("W's pattern contains J's"));
                }
            }
            let diag = (0..n)
                .map(|i| pattern.diagonal_position(i).expect("with_diagonal added every (i, i)"))
                .collect();
            if config.backend == LinearBackend::Krylov {
                let k = config.krylov;
                let solver = KrylovSolver::new(k.method, k.preconditioner, k.config(k.direct_rtol));
                Backend::Krylov { w: SparseMatrix::zeros(pattern), solver, map, diag }
            } else {
                // Lazy symbolic analyses: the LU's is only paid for if Cholesky is refused.
                let try_cholesky = config.backend != LinearBackend::SparseLu;
                Backend::Sparse {
                    w: SparseMatrix::zeros(pattern),
                    lu: SparseLu::new(),
                    // Simplicial: W is solved with ≥ 6 times per factorization, and on the 256²
                    // 5-point W faer's supernodal solve took 29 ms against 2.4 ms simplicial
                    // (numeric 147 vs 104 ms; ADR 0003). High-fill (3D) patterns may prefer the
                    // supernodal numeric factorization; not measured yet.
                    cholesky: SparseCholesky::new().force_simplicial(true),
                    try_cholesky,
                    chol_active: try_cholesky,
                    map,
                    diag,
                }
            }
        };
        Ok(Self {
            config,
            n,
            jac,
            backend,
            newton: NewtonSolver::new(config.newton)?,
            hgamma_w: f64::NAN,
            factorized: false,
            jac_fresh: false,
            jac_valid: false,
            refresh_requested: true,
            jac_age: 0,
            z0: vec![0.0; n],
            newton_hgamma: f64::NAN,
            krylov_reported: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WConfig {
        &self.config
    }

    /// Number of states.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Whether `W` is factored densely.
    pub fn is_dense(&self) -> bool {
        matches!(self.backend, Backend::Dense { .. })
    }

    /// Which factorization holds `W` (before the first factorization: the one that will be
    /// tried first).
    pub fn factor_kind(&self) -> FactorKind {
        match &self.backend {
            Backend::Dense { .. } => FactorKind::DenseLu,
            Backend::Sparse { chol_active: true, .. } => FactorKind::SparseCholesky,
            Backend::Sparse { .. } => FactorKind::SparseLu,
            Backend::Krylov { .. } => FactorKind::Krylov,
        }
    }

    /// Work counters of the Krylov backend's solver (Krylov iterations, assemblies), if that
    /// is the backend.
    pub fn krylov_stats(&self) -> Option<neurohybrid_linalg::LinearSolverStats> {
        match &self.backend {
            Backend::Krylov { solver, .. } => Some(solver.stats()),
            _ => None,
        }
    }

    /// The last evaluated Jacobian `∂f/∂y` (in the system's pattern).
    pub fn jacobian(&self) -> &CsrMatrix {
        &self.jac
    }

    /// `hγ` of the current factorization, if there is one.
    pub fn factorized_hgamma(&self) -> Option<f64> {
        self.factorized.then_some(self.hgamma_w)
    }

    /// Whether `J` was evaluated since the last [`WMatrix::step_accepted`].
    pub fn jacobian_is_fresh(&self) -> bool {
        self.jac_fresh
    }

    /// Evaluates `J = ∂f/∂y (t, y, p)` now and invalidates the factorization.
    pub fn refresh_jacobian<S: Jacobian + ?Sized>(
        &mut self,
        system: &S,
        t: f64,
        y: &[f64],
        p: &[f64],
        stats: &mut Stats,
    ) {
        system.jacobian(t, y, p, &mut self.jac);
        stats.jacobian_evals += 1;
        if let Backend::Dense { jd, .. } = &mut self.backend {
            let n = self.n;
            jd.fill(0.0);
            let (rp, ci, v) = (self.jac.row_offsets(), self.jac.col_indices(), self.jac.values());
            for i in 0..n {
                for k in rp[i]..rp[i + 1] {
                    jd[ci[k] * n + i] = v[k];
                }
            }
        }
        self.jac_fresh = true;
        self.jac_valid = true;
        self.refresh_requested = false;
        self.jac_age = 0;
        self.factorized = false;
    }

    /// Asks for a fresh `J` before the next factorization (after an impulse, or when the caller
    /// knows the state moved far).
    pub fn request_jacobian_refresh(&mut self) {
        self.refresh_requested = true;
    }

    /// Tells the policy that a step was accepted: `J` is now one step older.
    pub fn step_accepted(&mut self) {
        self.jac_fresh = false;
        self.jac_age += 1;
        if self.jac_age >= self.config.max_jacobian_age {
            self.refresh_requested = true;
        }
    }

    /// Assembles `W = I − hγJ` from the stored `J` and factorizes it, unconditionally.
    /// A singular (or non-finite) `W` is [`StepFailure::SingularMatrix`].
    pub fn factorize(
        &mut self,
        hgamma: f64,
        stats: &mut Stats,
    ) -> std::result::Result<(), StepFailure> {
        self.factorized = false;
        let n = self.n;
        let ok = match &mut self.backend {
            Backend::Dense { jd, w, lu } => {
                for j in 0..n {
                    for i in 0..n {
                        w[(i, j)] = f64::from(u8::from(i == j)) - hgamma * jd[j * n + i];
                    }
                }
                lu.factorize(w).is_ok()
            }
            Backend::Krylov { w, solver, map, diag } => {
                assemble(w, map, diag, self.jac.values(), hgamma);
                solver.factorize(w).is_ok()
            }
            Backend::Sparse { w, lu, cholesky, try_cholesky, chol_active, map, diag } => {
                assemble(w, map, diag, self.jac.values(), hgamma);
                let mut ok = false;
                if *try_cholesky {
                    match cholesky.factorize(w) {
                        Ok(()) => ok = true,
                        // Not SPD (now): LU from here on; a system whose J was symmetric once
                        // need not stay so, and a refused Cholesky costs a wasted factorization.
                        Err(
                            LinalgError::NotSymmetric { .. }
                            | LinalgError::NotPositiveDefinite { .. },
                        ) => {
                            *try_cholesky = false;
                        }
                        Err(_) => {}
                    }
                }
                *chol_active = *try_cholesky;
                if !*try_cholesky {
                    ok = lu.factorize(w).is_ok();
                }
                ok
            }
        };
        stats.factorizations += 1;
        // A new matrix invalidates the remembered Newton rate (linalg's NewtonSolver contract).
        self.newton.reset_rate();
        if !ok {
            return Err(StepFailure::SingularMatrix);
        }
        self.hgamma_w = hgamma;
        self.factorized = true;
        Ok(())
    }

    /// Applies the reuse policy for a step that needs `W = I − hγJ` with `J` taken at
    /// `(t, y)`: re-evaluates `J` if a refresh was requested (or there is none yet), and
    /// refactors if `J` changed, nothing is factored, or `hγ` moved by more than
    /// [`WConfig::refactor_threshold`].
    pub fn prepare<S: Jacobian + ?Sized>(
        &mut self,
        system: &S,
        t: f64,
        y: &[f64],
        p: &[f64],
        hgamma: f64,
        stats: &mut Stats,
    ) -> std::result::Result<(), StepFailure> {
        if self.refresh_requested || !self.jac_valid {
            self.refresh_jacobian(system, t, y, p, stats);
        }
        if !self.factorized || self.needs_refactor(hgamma) {
            self.factorize(hgamma, stats)?;
        }
        Ok(())
    }

    fn needs_refactor(&self, hgamma: f64) -> bool {
        if matches!(self.backend, Backend::Krylov { .. }) {
            // Assembly is O(nnz): keep W exact rather than iterate with a stale one.
            return hgamma != self.hgamma_w;
        }
        (hgamma / self.hgamma_w - 1.0).abs() > self.config.refactor_threshold
    }

    /// Adds the Krylov iterations run since the last report to `stats.krylov_iterations`.
    fn report_krylov(&mut self, stats: &mut Stats) {
        if let Some(k) = self.krylov_stats() {
            stats.krylov_iterations += k.krylov_iterations.saturating_sub(self.krylov_reported);
            self.krylov_reported = k.krylov_iterations;
        }
    }

    /// Overwrites `b` with `W⁻¹ b` (one counted linear solve). A failed solve (non-finite `b`,
    /// or no factorization) is [`StepFailure::SingularMatrix`].
    pub fn solve_in_place(
        &mut self,
        b: &mut [f64],
        stats: &mut Stats,
    ) -> std::result::Result<(), StepFailure> {
        stats.linear_solves += 1;
        let r = match &mut self.backend {
            Backend::Dense { lu, .. } => lu.solve_in_place(b),
            Backend::Sparse { cholesky, chol_active: true, .. } => cholesky.solve_in_place(b),
            Backend::Sparse { lu, .. } => lu.solve_in_place(b),
            Backend::Krylov { solver, .. } => {
                let rtol = self.config.krylov.direct_rtol;
                solver.set_tolerances(rtol, 0.0).and_then(|()| solver.solve_in_place(b))
            }
        };
        self.report_krylov(stats);
        r.map_err(|_| StepFailure::SingularMatrix)
    }

    /// Like [`WMatrix::solve_in_place`], for a result that only needs one or two correct
    /// digits (an error estimate's `W⁻¹` filter): the Krylov backend stops at the relative
    /// residual [`KrylovW::forcing`]; direct backends solve exactly as always.
    pub fn solve_estimate_in_place(
        &mut self,
        b: &mut [f64],
        stats: &mut Stats,
    ) -> std::result::Result<(), StepFailure> {
        if let Backend::Krylov { solver, .. } = &mut self.backend {
            stats.linear_solves += 1;
            let forcing = self.config.krylov.forcing;
            let r = solver.set_tolerances(forcing, 0.0).and_then(|()| solver.solve_in_place(b));
            self.report_krylov(stats);
            return r.map_err(|_| StepFailure::SingularMatrix);
        }
        self.solve_in_place(b, stats)
    }

    /// Solves the stage equation `F(z) = 0`, whose Jacobian is `∂F/∂z = I − hγJ`
    /// (e.g. `F(z) = z − ψ − hγ f(t, z)`), by simplified Newton from the initial guess in `z`.
    ///
    /// `J` is taken at `(t_jac, y_jac)` when it has to be (re-)evaluated; `scale` holds the
    /// positive weights of Newton's RMS norm (usually [`Tolerances::scale`] of the step's
    /// start), so `Newton::tol = 1` means "at the integration tolerance". The residual is the
    /// caller's closure and counts its own rhs evaluations.
    ///
    /// Policy (HW §IV.8): [`WMatrix::prepare`], then Newton; when `W`'s `hγ` differs from the
    /// stage's the increment is scaled by `2/(1 + hγ/hγ_W)` (CVODE). If Newton fails and `J`
    /// was not fresh, `J` is re-evaluated, `W` refactored at the exact `hγ`, `z` reset to the
    /// initial guess and Newton rerun once. A converged solve with `θ > slow_theta` requests a
    /// fresh `J` for the next step.
    ///
    /// Errors: [`StepFailure::SingularMatrix`] when `W` cannot be factorized,
    /// [`StepFailure::NewtonDivergence`] when Newton fails with a fresh `J`. The caller should
    /// return them as `StepOutcome::Failed` so the loop shrinks `h`.
    #[allow(clippy::too_many_arguments)]
    pub fn solve_stage<S, R>(
        &mut self,
        system: &S,
        p: &[f64],
        t_jac: f64,
        y_jac: &[f64],
        hgamma: f64,
        residual: &mut R,
        z: &mut [f64],
        scale: &[f64],
        stats: &mut Stats,
    ) -> std::result::Result<StageSolve, StepFailure>
    where
        S: Jacobian + ?Sized,
        R: Residual + ?Sized,
    {
        self.z0.copy_from_slice(z);
        let mut retried = false;
        loop {
            let prepared = self.prepare(system, t_jac, y_jac, p, hgamma, stats);
            let result = match prepared {
                Ok(()) => self.newton_once(hgamma, residual, z, scale, stats),
                Err(e) => Err(e),
            };
            match result {
                Ok((iters, theta)) => {
                    if theta.is_some_and(|th| th > self.config.slow_theta) {
                        self.refresh_requested = true;
                    }
                    return Ok(StageSolve { iters, theta, retried });
                }
                Err(failure) => {
                    if self.jac_fresh && (retried || self.hgamma_w == hgamma) {
                        return Err(failure);
                    }
                    // Stale J, or a fresh J factored at another hγ: one retry with both exact.
                    if !self.jac_fresh {
                        self.refresh_requested = true;
                    } else {
                        self.factorized = false;
                    }
                    z.copy_from_slice(&self.z0);
                    retried = true;
                }
            }
        }
    }

    /// Solves a stage equation `F(z) = z − ψ − hγ(Az + g) = 0` whose `f` is *linear* in `y`
    /// (constant `J = A`, e.g. diffusion) with one linear solve, `z ← z − W⁻¹F(z)`, instead
    /// of a Newton iteration: exact up to the linear solve, so no convergence test and no
    /// second residual (ARKODE's `ARKStepSetLinear` treats declared-linear implicit parts the
    /// same way). The Krylov backend solves to the absolute residual `κ·tol·‖scale‖₂` — the
    /// accuracy Newton's stopping test asks of its iterate. A direct backend whose
    /// factorization belongs to another `hγ` (reuse within the refactor threshold) would not
    /// give the exact solution, so then this falls back to [`WMatrix::solve_stage`].
    ///
    /// The caller promises linearity; for a nonlinear `f` the result is one simplified-Newton
    /// step, not a solution.
    #[allow(clippy::too_many_arguments)]
    pub fn solve_linear_stage<S, R>(
        &mut self,
        system: &S,
        p: &[f64],
        t_jac: f64,
        y_jac: &[f64],
        hgamma: f64,
        residual: &mut R,
        z: &mut [f64],
        scale: &[f64],
        stats: &mut Stats,
    ) -> std::result::Result<StageSolve, StepFailure>
    where
        S: Jacobian + ?Sized,
        R: Residual + ?Sized,
    {
        self.prepare(system, t_jac, y_jac, p, hgamma, stats)?;
        if self.hgamma_w != hgamma {
            return self.solve_stage(system, p, t_jac, y_jac, hgamma, residual, z, scale, stats);
        }
        let mut b = std::mem::take(&mut self.z0);
        residual.residual(z, &mut b);
        b.iter_mut().for_each(|v| *v = -*v);
        let solved = match &mut self.backend {
            Backend::Krylov { solver, .. } => {
                let Newton { kappa, tol, .. } = self.config.newton;
                let scale_norm = scale.iter().map(|s| s * s).sum::<f64>().sqrt();
                stats.linear_solves += 1;
                let k = self.config.krylov;
                solver
                    .set_tolerances(k.direct_rtol, k.linear_stage_factor * kappa * tol * scale_norm)
                    .and_then(|()| solver.solve_in_place(&mut b))
                    .map_err(|_| StepFailure::NewtonDivergence)
            }
            _ => self.solve_in_place(&mut b, stats),
        };
        self.report_krylov(stats);
        if solved.is_ok() {
            z.iter_mut().zip(&b).for_each(|(zi, d)| *zi += d);
        }
        self.z0 = b;
        solved?;
        if z.iter().any(|v| !v.is_finite()) {
            return Err(StepFailure::NewtonDivergence);
        }
        Ok(StageSolve { iters: 1, theta: None, retried: false })
    }

    fn newton_once<R: Residual + ?Sized>(
        &mut self,
        hgamma: f64,
        residual: &mut R,
        z: &mut [f64],
        scale: &[f64],
        stats: &mut Stats,
    ) -> std::result::Result<(usize, Option<f64>), StepFailure> {
        // The rate remembered from the last solve was measured for the iteration matrix seen
        // by *that* hγ; with a reused W at another hγ the contraction differs, and a stale small
        // rate would accept a single, inexact iteration. Forget it when hγ changes.
        if hgamma != self.newton_hgamma {
            self.newton.reset_rate();
            self.newton_hgamma = hgamma;
        }
        let ratio = hgamma / self.hgamma_w;
        let c = if ratio == 1.0 { 1.0 } else { 2.0 / (1.0 + ratio) };
        let mut scaled = ScaledResidual { inner: residual, c };
        let outcome = match &mut self.backend {
            Backend::Dense { lu, .. } => self.newton.solve(&mut scaled, lu, z, scale),
            Backend::Sparse { cholesky, chol_active: true, .. } => {
                self.newton.solve(&mut scaled, cholesky, z, scale)
            }
            Backend::Sparse { lu, .. } => self.newton.solve(&mut scaled, lu, z, scale),
            Backend::Krylov { solver, .. } => {
                let k = self.config.krylov;
                let Newton { kappa, tol, .. } = self.config.newton;
                let scale_norm = scale.iter().map(|s| s * s).sum::<f64>().sqrt();
                solver
                    .set_tolerances(k.forcing, k.newton_factor * kappa * tol * scale_norm)
                    .map_err(|_| StepFailure::SingularMatrix)?;
                self.newton.solve(&mut scaled, solver, z, scale)
            }
        };
        self.report_krylov(stats);
        let outcome = outcome.map_err(|_| StepFailure::SingularMatrix)?;
        stats.linear_solves += outcome.iters;
        match outcome.status {
            NewtonStatus::Converged { iters } => Ok((iters, outcome.theta)),
            _ => Err(StepFailure::NewtonDivergence),
        }
    }
}

/// `W = I − hγJ` in `w`'s pattern: `map[k]` is the position of `J`'s `k`-th stored value,
/// `diag[i]` that of `(i, i)`.
fn assemble(w: &mut SparseMatrix, map: &[usize], diag: &[usize], jac: &[f64], hgamma: f64) {
    let wv = w.values_mut();
    wv.fill(0.0);
    for &d in diag {
        wv[d] = 1.0;
    }
    for (&k, &jv) in map.iter().zip(jac) {
        wv[k] -= hgamma * jv;
    }
}

/// `c·F(z)`: with `W` factored at `hγ_W ≠ hγ`, scaling the residual scales the increment
/// `Δ = −W⁻¹ c F` (CVODE's `2/(1 + γ/γ_W)` correction of the simplified Newton step).
struct ScaledResidual<'a, R: ?Sized> {
    inner: &'a mut R,
    c: f64,
}

impl<R: Residual + ?Sized> Residual for ScaledResidual<'_, R> {
    fn residual(&mut self, z: &[f64], out: &mut [f64]) {
        self.inner.residual(z, out);
        if self.c != 1.0 {
            out.iter_mut().for_each(|v| *v *= self.c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_system::{OdeSystem, SparsityPattern, dense_pattern, tridiagonal_pattern};

    /// `y' = A y − y³` with `A` tridiagonal (−2 on the diagonal, `1 + skew` below, 1 above;
    /// symmetric for `skew = 0`), pattern given.
    struct Cubic {
        pattern: SparsityPattern,
        skew: f64,
    }
    impl OdeSystem for Cubic {
        fn n_states(&self) -> usize {
            self.pattern.major_dim()
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
            let n = y.len();
            for i in 0..n {
                let l = if i > 0 { y[i - 1] } else { 0.0 };
                let r = if i + 1 < n { y[i + 1] } else { 0.0 };
                dy[i] = (1.0 + self.skew) * l - 2.0 * y[i] + r - y[i].powi(3);
            }
        }
    }
    impl Jacobian for Cubic {
        fn sparsity(&self) -> &SparsityPattern {
            &self.pattern
        }
        fn jacobian(&self, _t: f64, y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
            for (i, j, v) in out.triplet_iter_mut() {
                *v = if i == j {
                    -2.0 - 3.0 * y[i] * y[i]
                } else if j + 1 == i {
                    1.0 + self.skew
                } else if i + 1 == j {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }

    fn implicit_euler(
        backend: LinearBackend,
        pattern: SparsityPattern,
        skew: f64,
    ) -> (Vec<f64>, Stats, FactorKind) {
        let sys = Cubic { pattern, skew };
        let n = sys.n_states();
        let config = WConfig { backend, ..WConfig::default() };
        let mut wm = WMatrix::new(&sys, config).unwrap();
        let mut stats = Stats::default();
        // h = 0.1 made this test fail (both backends): from the predictor z = y_n the first
        // increment is ~6e7 in the rtol = 1e-10 norm and simplified Newton contracts at
        // θ ≈ 0.05, so Hairer–Wanner's slow-convergence estimate θ^(kmax−k)/(1−θ)‖Δ‖ ≈ 14
        // exceeds κ = 0.03 even with a fresh J: Newton correctly refuses a step that is too
        // long for that tolerance. h = 0.02 gives θ ≈ 0.01 and converges in 3–4 iterations.
        let h = 0.02;
        let mut y: Vec<f64> = (0..n).map(|i| 1.0 + 0.1 * i as f64).collect();
        let mut f = vec![0.0; n];
        let mut scale = vec![0.0; n];
        let tol = Tolerances::new(1e-10, 1e-12);
        for _ in 0..5 {
            tol.scale(&y, &mut scale);
            let y_old = y.clone();
            let mut z = y.clone();
            let mut res = |z: &[f64], out: &mut [f64]| {
                sys.rhs(0.0, z, &[], &mut f);
                for i in 0..n {
                    out[i] = z[i] - y_old[i] - h * f[i];
                }
            };
            wm.solve_stage(&sys, &[], 0.0, &y_old, h, &mut res, &mut z, &scale, &mut stats)
                .unwrap();
            y = z;
            wm.step_accepted();
        }
        (y, stats, wm.factor_kind())
    }

    #[test]
    fn dense_and_sparse_backends_agree_and_reuse_the_factorization() {
        for skew in [0.0, 0.5] {
            let (yd, sd, kd) = implicit_euler(LinearBackend::Dense, tridiagonal_pattern(6), skew);
            assert_eq!(kd, FactorKind::DenseLu);
            let expected =
                if skew == 0.0 { FactorKind::SparseCholesky } else { FactorKind::SparseLu };
            for (backend, kind) in
                [(LinearBackend::Sparse, expected), (LinearBackend::SparseLu, FactorKind::SparseLu)]
            {
                let (ys, ss, ks) = implicit_euler(backend, tridiagonal_pattern(6), skew);
                assert_eq!(ks, kind, "skew = {skew}");
                for (a, b) in yd.iter().zip(&ys) {
                    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
                }
                assert_eq!(sd.jacobian_evals, ss.jacobian_evals);
                assert_eq!(sd.factorizations, ss.factorizations);
            }
        }
        let (_, sd, _) = implicit_euler(LinearBackend::Dense, tridiagonal_pattern(6), 0.0);
        // Constant h: J is reused until Newton slows down, so far fewer J's than steps.
        assert!(sd.jacobian_evals < 5, "{sd:?}");
        assert_eq!(sd.factorizations, sd.jacobian_evals);
        assert!(sd.linear_solves >= 5);
    }

    #[test]
    fn auto_backend_picks_dense_for_small_systems() {
        let small = Cubic { pattern: dense_pattern(3), skew: 0.0 };
        assert!(WMatrix::new(&small, WConfig::default()).unwrap().is_dense());
        let big = Cubic { pattern: tridiagonal_pattern(100), skew: 0.0 };
        let wm = WMatrix::new(&big, WConfig::default()).unwrap();
        assert!(!wm.is_dense());
        assert_eq!(wm.factor_kind(), FactorKind::SparseCholesky);
    }

    #[test]
    fn indefinite_symmetric_w_falls_back_to_lu_for_good() {
        // At y = 0, J = tridiag(1, −2, 1) has eigenvalues in (−4, 0); with hγ = −1,
        // W = I + J is symmetric, indefinite and (n + 1 = 41 odd) nonsingular.
        let sys = Cubic { pattern: tridiagonal_pattern(40), skew: 0.0 };
        let config = WConfig { backend: LinearBackend::Sparse, ..WConfig::default() };
        let mut wm = WMatrix::new(&sys, config).unwrap();
        let mut stats = Stats::default();
        let y = vec![0.0; 40];
        wm.prepare(&sys, 0.0, &y, &[], 0.1, &mut stats).unwrap();
        assert_eq!(wm.factor_kind(), FactorKind::SparseCholesky);
        let mut b = vec![1.0; 40];
        wm.solve_in_place(&mut b, &mut stats).unwrap();
        wm.prepare(&sys, 0.0, &y, &[], -1.0, &mut stats).unwrap();
        assert_eq!(wm.factor_kind(), FactorKind::SparseLu);
        let mut x = vec![1.0; 40];
        wm.solve_in_place(&mut x, &mut stats).unwrap();
        // Check W x = 1 with W = I + J.
        let mut jx = vec![0.0; 40];
        sys.rhs(0.0, &x, &[], &mut jx); // f(x) = J x − x³; add back x³
        for i in 0..40 {
            let wx = x[i] + jx[i] + x[i].powi(3);
            assert!((wx - 1.0).abs() < 1e-10, "{i}: {wx}");
        }
        wm.prepare(&sys, 0.0, &y, &[], 0.1, &mut stats).unwrap();
        assert_eq!(wm.factor_kind(), FactorKind::SparseLu);
        assert_eq!(stats.factorizations, 3);
    }

    #[test]
    fn refactors_only_beyond_the_threshold() {
        let sys = Cubic { pattern: dense_pattern(2), skew: 0.0 };
        let mut wm = WMatrix::new(&sys, WConfig::default()).unwrap();
        let mut stats = Stats::default();
        let y = [0.5, 0.5];
        wm.prepare(&sys, 0.0, &y, &[], 0.1, &mut stats).unwrap();
        wm.prepare(&sys, 0.0, &y, &[], 0.12, &mut stats).unwrap();
        assert_eq!((stats.jacobian_evals, stats.factorizations), (1, 1));
        wm.prepare(&sys, 0.0, &y, &[], 0.2, &mut stats).unwrap();
        assert_eq!((stats.jacobian_evals, stats.factorizations), (1, 2));
        assert_eq!(wm.factorized_hgamma(), Some(0.2));
    }

    #[test]
    fn singular_w_is_a_step_failure() {
        // J = diag(−2 − 3y²) at y = 0 is −2 on the diagonal (+ off-diagonals); for n = 1,
        // W = 1 + 2hγ·... choose hγ = −0.5 so that W = 1 − (−0.5)(−2) = 0.
        let sys = Cubic { pattern: dense_pattern(1), skew: 0.0 };
        let mut wm = WMatrix::new(&sys, WConfig::default()).unwrap();
        let mut stats = Stats::default();
        let r = wm.prepare(&sys, 0.0, &[0.0], &[], -0.5, &mut stats);
        assert_eq!(r, Err(StepFailure::SingularMatrix));
        assert_eq!(wm.factorized_hgamma(), None);
        let mut b = [1.0];
        assert_eq!(wm.solve_in_place(&mut b, &mut stats), Err(StepFailure::SingularMatrix));
    }

    #[test]
    fn tolerances_validate_and_scale() {
        assert!(Tolerances::new(1e-6, 1e-9).validate(3).is_ok());
        assert!(Tolerances::new(-1.0, 1e-9).validate(3).is_err());
        assert!(Tolerances::new(0.0, 0.0).validate(3).is_err());
        assert!(
            Tolerances::new(1e-6, 1e-9).with_atol_components(vec![1.0; 2]).validate(3).is_err()
        );
        let mut s = [0.0; 2];
        Tolerances::new(0.1, 1.0).scale(&[2.0, -4.0], &mut s);
        assert_eq!(s, [1.2, 1.4]);
        let pi = PiController::new(1e-4, 1e-7);
        assert_eq!(Tolerances::from_controller(&pi), Tolerances::new(1e-4, 1e-7));
    }
}
