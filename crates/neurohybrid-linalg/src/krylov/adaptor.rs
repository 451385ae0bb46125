//! A Krylov method behind the [`LinearSolver`] trait.

use crate::amg::{Amg, AmgConfig};
use crate::error::{LinalgError, Result};
use crate::krylov::operator::{IdentityPreconditioner, Preconditioner};
use crate::krylov::precond::{Ilu0, Jacobi};
use crate::krylov::{Cg, Gmres, KrylovConfig, KrylovOutcome, KrylovStatus};
use crate::solver::{LinearSolver, LinearSolverStats};
use crate::sparse::SparseMatrix;

/// Which Krylov method [`KrylovSolver`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KrylovMethod {
    /// Restarted GMRES: any nonsingular matrix.
    #[default]
    Gmres,
    /// Conjugate gradients: symmetric positive definite matrices only.
    Cg,
    /// CG while the factorized matrix is symmetric (checked at every `factorize`, `O(nnz)`,
    /// relative tolerance [`crate::SYMMETRY_RTOL`]), GMRES otherwise. A CG breakdown (the
    /// matrix or the preconditioner is not positive definite) reruns that solve with GMRES and
    /// switches to GMRES until the next `factorize`. For `W = I − hγJ`, which is SPD exactly
    /// when `J` is symmetric and `hγ·λ_max(J) < 1`, the cheaper and monotone CG is used
    /// whenever it applies.
    Auto,
}

/// Which preconditioner [`KrylovSolver`] builds at `factorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreconditionerKind {
    /// None.
    None,
    /// Diagonal scaling.
    Jacobi,
    /// Incomplete LU with zero fill-in.
    #[default]
    Ilu0,
    /// One smoothed-aggregation AMG V-cycle ([`Amg`], default [`AmgConfig`]): symmetric
    /// Gauss–Seidel smoothing, so CG stays valid. A refactorization with the same pattern
    /// keeps the aggregates and prolongators and only recomputes the Galerkin products.
    Amg,
}

#[derive(Debug)]
enum AnyPreconditioner {
    Identity(IdentityPreconditioner),
    Jacobi(Jacobi),
    Ilu0(Ilu0),
    Amg(Box<Amg>),
}

impl Preconditioner for AnyPreconditioner {
    fn apply(&mut self, r: &[f64], z: &mut [f64]) {
        match self {
            Self::Identity(p) => p.apply(r, z),
            Self::Jacobi(p) => p.apply(r, z),
            Self::Ilu0(p) => p.apply(r, z),
            Self::Amg(p) => p.apply(r, z),
        }
    }
    fn apply_transpose(&mut self, r: &[f64], z: &mut [f64]) {
        match self {
            Self::Identity(p) => p.apply_transpose(r, z),
            Self::Jacobi(p) => p.apply_transpose(r, z),
            Self::Ilu0(p) => p.apply_transpose(r, z),
            Self::Amg(p) => p.apply_transpose(r, z),
        }
    }
    fn is_identity(&self) -> bool {
        matches!(self, Self::Identity(_))
    }
}

/// An iterative solver usable wherever a [`LinearSolver`] is expected (e.g. by
/// [`crate::NewtonSolver`]): "factorize" stores the matrix values and (re)builds the
/// preconditioner; "solve" runs the Krylov method from a zero initial guess and returns
/// [`LinalgError::NotConverged`] if it does not meet the tolerance.
///
/// Preconditioner setups are counted in [`LinearSolverStats`]: a new pattern counts as a
/// symbolic factorization, every refresh as a numeric one.
#[derive(Debug)]
pub struct KrylovSolver {
    method: KrylovMethod,
    kind: PreconditionerKind,
    matrix: Option<SparseMatrix>,
    pc: Option<AnyPreconditioner>,
    /// Transpose partners of the pattern's entries (`Auto` only; `None`: pattern not
    /// symmetric or not analysed yet).
    mirror: Option<Vec<usize>>,
    /// `Auto`: CG applies to the factorized matrix.
    use_cg: bool,
    gmres: Gmres,
    cg: Cg,
    x: Vec<f64>,
    last: Option<KrylovOutcome>,
    stats: LinearSolverStats,
}

impl KrylovSolver {
    /// A solver running `method` with `preconditioner` and `config`.
    pub fn new(
        method: KrylovMethod,
        preconditioner: PreconditionerKind,
        config: KrylovConfig,
    ) -> Self {
        Self {
            method,
            kind: preconditioner,
            matrix: None,
            pc: None,
            mirror: None,
            use_cg: method == KrylovMethod::Cg,
            gmres: Gmres::new(config),
            cg: Cg::new(config),
            x: Vec::new(),
            last: None,
            stats: LinearSolverStats::default(),
        }
    }

    /// Outcome of the last solve (iterations, residual), if any.
    pub fn last_outcome(&self) -> Option<KrylovOutcome> {
        self.last
    }

    /// Changes the stopping rule `‖b − A x‖₂ ≤ max(rtol·‖b‖₂, atol)` of the following solves
    /// (an inexact Newton iteration ties it to its own tolerance, solve by solve). Invalid
    /// values are rejected and leave the old ones.
    pub fn set_tolerances(&mut self, rtol: f64, atol: f64) -> Result<()> {
        let config = self.cg.config().rtol(rtol).atol(atol);
        config.validate()?;
        self.cg = std::mem::take(&mut self.cg).with_config(config);
        self.gmres = std::mem::take(&mut self.gmres).with_config(config);
        Ok(())
    }

    /// The current stopping rule and limits.
    pub fn config(&self) -> &KrylovConfig {
        self.cg.config()
    }

    /// Whether the next solve runs CG (`Cg`, or `Auto` on a symmetric matrix without a CG
    /// breakdown since the last `factorize`).
    pub fn uses_cg(&self) -> bool {
        self.use_cg
    }

    fn solve_impl(&mut self, b: &mut [f64], transpose: bool) -> Result<()> {
        let (Some(a), Some(pc)) = (self.matrix.as_mut(), self.pc.as_mut()) else {
            return Err(LinalgError::NotFactorized);
        };
        crate::error::check_len("right-hand side", a.nrows(), b.len())?;
        self.x.clear();
        self.x.resize(b.len(), 0.0);
        let mut out = match (self.use_cg, transpose) {
            (false, false) => self.gmres.solve(a, pc, b, &mut self.x)?,
            (false, true) => self.gmres.solve_transpose(a, pc, b, &mut self.x)?,
            (true, false) => self.cg.solve(a, pc, b, &mut self.x)?,
            (true, true) => self.cg.solve_transpose(a, pc, b, &mut self.x)?,
        };
        if out.status == KrylovStatus::Breakdown && self.use_cg && self.method == KrylovMethod::Auto
        {
            // Symmetric but not positive definite (or an indefinite preconditioner): GMRES
            // from scratch, and for every solve until the next factorization.
            self.stats.krylov_iterations += out.iterations;
            self.use_cg = false;
            self.x.fill(0.0);
            out = if transpose {
                self.gmres.solve_transpose(a, pc, b, &mut self.x)?
            } else {
                self.gmres.solve(a, pc, b, &mut self.x)?
            };
        }
        self.last = Some(out);
        self.stats.krylov_iterations += out.iterations;
        if transpose {
            self.stats.transpose_solves += 1;
        } else {
            self.stats.solves += 1;
        }
        if !out.is_converged() {
            return Err(LinalgError::NotConverged {
                iterations: out.iterations,
                residual: out.residual_norm,
            });
        }
        b.copy_from_slice(&self.x);
        Ok(())
    }
}

impl LinearSolver for KrylovSolver {
    type Matrix = SparseMatrix;

    fn factorize(&mut self, a: &SparseMatrix) -> Result<()> {
        if a.nrows() != a.ncols() {
            return Err(LinalgError::NotSquare { nrows: a.nrows(), ncols: a.ncols() });
        }
        a.check_finite()?;
        let same = self.matrix.as_ref().is_some_and(|m| m.pattern().same_as(a.pattern()));
        let pc = self.pc.take();
        let pc = match (self.kind, pc) {
            (PreconditionerKind::None, _) => AnyPreconditioner::Identity(IdentityPreconditioner),
            (PreconditionerKind::Jacobi, Some(AnyPreconditioner::Jacobi(mut j))) => {
                j.update(a)?;
                AnyPreconditioner::Jacobi(j)
            }
            (PreconditionerKind::Jacobi, _) => AnyPreconditioner::Jacobi(Jacobi::new(a)?),
            (PreconditionerKind::Ilu0, Some(AnyPreconditioner::Ilu0(mut p))) if same => {
                p.update(a)?;
                AnyPreconditioner::Ilu0(p)
            }
            (PreconditionerKind::Ilu0, _) => AnyPreconditioner::Ilu0(Ilu0::new(a)?),
            (PreconditionerKind::Amg, Some(AnyPreconditioner::Amg(mut p))) => {
                p.update(a)?;
                AnyPreconditioner::Amg(p)
            }
            (PreconditionerKind::Amg, _) => {
                AnyPreconditioner::Amg(Box::new(Amg::new(a, AmgConfig::default())?))
            }
        };
        match self.matrix.as_mut() {
            Some(m) if same => m.set_values(a.values())?,
            _ => {
                self.matrix = Some(a.clone());
                self.mirror = match self.method {
                    KrylovMethod::Auto => a.pattern().mirror_positions().ok(),
                    _ => None,
                };
                self.stats.symbolic_factorizations += 1;
            }
        }
        self.use_cg = match self.method {
            KrylovMethod::Cg => true,
            KrylovMethod::Gmres => false,
            KrylovMethod::Auto => self
                .mirror
                .as_deref()
                .is_some_and(|m| crate::sparse::first_asymmetry(m, a.values()).is_none()),
        };
        self.pc = Some(pc);
        self.stats.numeric_factorizations += 1;
        Ok(())
    }

    fn is_factorized(&self) -> bool {
        self.pc.is_some()
    }

    fn dim(&self) -> usize {
        self.matrix.as_ref().map_or(0, SparseMatrix::nrows)
    }

    fn solve_in_place(&mut self, b: &mut [f64]) -> Result<()> {
        self.solve_impl(b, false)
    }

    fn solve_transpose_in_place(&mut self, b: &mut [f64]) -> Result<()> {
        self.solve_impl(b, true)
    }

    fn stats(&self) -> LinearSolverStats {
        self.stats
    }
}
