//! The single-compartment Darcy perfusion problem on a masked voxel grid and its adjoint.
//!
//! ```text
//! −∇·(K ∇p) + β (p − p_v) = f     in the brain,     n·K∇p = 0 on the mask boundary
//! ```
//!
//! (Józsa et al. 2021 with one compartment; shared/REFERENCES.md "Stroke"). `p` is the
//! tissue (capillary-bed) pressure, `K` the effective conductivity of the arteriolar tree
//! (how far blood can be pushed sideways — leptomeningeal and intraparenchymal collaterals),
//! `β` the capillary-to-venous exchange coefficient, `f` the arterial inflow per volume.
//! Perfusion is what leaves to the veins, `CBF = β (p − p_v)`.
//!
//! **Discretization.** The finite-volume operator of `neurohybrid-mesh` (ADR 0006):
//! `−∇·(K∇p) ≈ −A(K) p`, harmonic-mean faces, no flux across the mask boundary, second order
//! for smooth K. The matrix `M = −A(K) + diag(β)` is symmetric positive definite whenever
//! `β > 0` everywhere (`−A` is positive semidefinite), so it is factorized once with
//! `neurohybrid-linalg`'s sparse Cholesky (AMD ordering) and every further right-hand side
//! (another occlusion, the adjoint) costs one pair of triangular solves.
//!
//! **Conservation.** `1ᵀA = 0` (every face flux leaves one cell and enters its neighbour), so
//! `Σ_i V β_i (p_i − p_v) = Σ_i V f_i` exactly: total inflow equals total perfusion, up to
//! the solve's round-off ([`DarcySolution::flux_imbalance`]).
//!
//! **Adjoint.** For an objective `J(CBF)` with `g = ∂J/∂CBF`, the adjoint state solves
//! `Mᵀ λ = β ∘ g` (one transpose solve with the same factor; `M` is symmetric) and
//!
//! ```text
//! dJ/dK_k = λᵀ ∂(A(K) p)/∂K_k                       (mesh's FieldDiffusion::vjp_d)
//! dJ/dβ_k = g_k (p_k − p_v) + λ_k (∂f_k/∂β_k − (p_k − p_v))
//! dJ/dθ   = λᵀ ∂f/∂θ                                (source parameters: occlusion, collaterals)
//! ```
//!
//! — the solver itself is never differentiated (Giles & Pierce 2000, "An introduction to the
//! adjoint approach to design").

use std::sync::Arc;

use neurohybrid_linalg::{LinearSolver, SparseCholesky, SparseMatrix};
use neurohybrid_mesh::fv::{FieldDiffusion, Stencil};
use neurohybrid_mesh::{AssembledDiffusion, Grid};

use crate::error::{Result, StrokeError, check_len};

/// The Darcy operator `M = −A(K) + diag(β)` on one grid, factorized.
///
/// Holds configuration (the fields) and the factorization; solves for any right-hand side.
#[derive(Debug)]
pub struct Darcy {
    stencil: Arc<Stencil>,
    k: Vec<f64>,
    beta: Vec<f64>,
    p_v: f64,
    matrix: SparseMatrix,
    factor: SparseCholesky,
}

/// A solved pressure field with its perfusion.
#[derive(Debug, Clone, PartialEq)]
pub struct DarcySolution {
    /// Pressure per active cell (mmHg above the venous pressure when `p_v = 0`).
    pub p: Vec<f64>,
    /// Perfusion `β (p − p_v)` per active cell (ml/100 g/min).
    pub cbf: Vec<f64>,
}

impl DarcySolution {
    /// `|Σ V f − Σ V CBF| / Σ V |f|`: the relative imbalance between inflow and perfusion
    /// (the cell volume cancels on a uniform grid).
    pub fn flux_imbalance(&self, f: &[f64]) -> f64 {
        let inflow: f64 = f.iter().sum();
        let out: f64 = self.cbf.iter().sum();
        let scale: f64 = f.iter().map(|x| x.abs()).sum::<f64>().max(f64::MIN_POSITIVE);
        (inflow - out).abs() / scale
    }
}

/// Gradients of an objective `J(CBF)` from [`Darcy::adjoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct DarcyGradient {
    /// The adjoint state `λ` (solves `Mᵀλ = β ∘ ∂J/∂CBF`); `λᵀ ∂f/∂θ` is `dJ/dθ` for any
    /// source parameter θ.
    pub lambda: Vec<f64>,
    /// `dJ/dK` per active cell, with the source held fixed.
    pub d_k: Vec<f64>,
    /// `dJ/dβ` per active cell, with the source held fixed (add `λ_k ∂f_k/∂β_k` when the
    /// source depends on β, see [`Darcy::adjoint`]).
    pub d_beta: Vec<f64>,
}

impl Darcy {
    /// Assembles and factorizes `M` on `grid` for conductivity `k` (≥ 0), exchange
    /// coefficient `beta` (> 0) per active cell and venous pressure `p_v`.
    ///
    /// # Errors
    /// Length mismatches, a negative or non-finite `k`, a non-positive `beta`.
    pub fn new(grid: &Grid, k: Vec<f64>, beta: Vec<f64>, p_v: f64) -> Result<Self> {
        let stencil = Stencil::new(grid);
        let n = stencil.n();
        check_len("k", n, k.len())?;
        check_len("beta", n, beta.len())?;
        if let Some(&b) = beta.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(StrokeError::InvalidParameter {
                name: "beta",
                value: b,
                reason: "exchange coefficient must be positive and finite (M is then SPD)",
            });
        }
        if !p_v.is_finite() {
            return Err(StrokeError::InvalidParameter {
                name: "p_v",
                value: p_v,
                reason: "must be finite",
            });
        }
        let a = AssembledDiffusion::from_stencil(stencil.clone(), &k)?;
        let mut matrix = SparseMatrix::from_nalgebra(a.matrix());
        matrix.values_mut().iter_mut().for_each(|v| *v = -*v);
        for (i, &b) in beta.iter().enumerate() {
            let at =
                matrix.pattern().diagonal_position(i).expect("the stencil pattern has a diagonal");
            matrix.values_mut()[at] += b;
        }
        let mut factor = SparseCholesky::new();
        factor.factorize(&matrix)?;
        Ok(Darcy { stencil, k, beta, p_v, matrix, factor })
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.stencil.n()
    }

    /// The conductivity field.
    pub fn k(&self) -> &[f64] {
        &self.k
    }

    /// The exchange-coefficient field.
    pub fn beta(&self) -> &[f64] {
        &self.beta
    }

    /// The venous pressure.
    pub fn p_v(&self) -> f64 {
        self.p_v
    }

    /// The assembled SPD matrix `M = −A(K) + diag(β)`.
    pub fn matrix(&self) -> &SparseMatrix {
        &self.matrix
    }

    /// Solves `M p = f + β p_v` and returns pressure and perfusion.
    ///
    /// # Errors
    /// Wrong length or non-finite `f`.
    pub fn solve(&mut self, f: &[f64]) -> Result<DarcySolution> {
        check_len("f", self.n(), f.len())?;
        if let Some(i) = f.iter().position(|x| !x.is_finite()) {
            return Err(neurohybrid_mesh::MeshError::NonFinite { what: "f", index: i }.into());
        }
        let mut p: Vec<f64> = f.iter().zip(&self.beta).map(|(f, b)| f + b * self.p_v).collect();
        self.factor.solve_in_place(&mut p)?;
        let cbf = p.iter().zip(&self.beta).map(|(p, b)| b * (p - self.p_v)).collect();
        Ok(DarcySolution { p, cbf })
    }

    /// Adjoint of an objective `J(CBF)` at `solution`, given `dj_dcbf = ∂J/∂CBF`: one
    /// transpose solve, then the gradients w.r.t. the fields (module docs for the formulas).
    ///
    /// # Errors
    /// Length mismatches.
    pub fn adjoint(&mut self, solution: &DarcySolution, dj_dcbf: &[f64]) -> Result<DarcyGradient> {
        let n = self.n();
        check_len("dj_dcbf", n, dj_dcbf.len())?;
        check_len("solution.p", n, solution.p.len())?;
        let mut lambda: Vec<f64> = dj_dcbf.iter().zip(&self.beta).map(|(g, b)| g * b).collect();
        self.factor.solve_transpose_in_place(&mut lambda)?;
        let mut d_k = vec![0.0; n];
        // M = −A(K) + diag β, residual R = M p − f − β p_v: dJ/dK = −λᵀ ∂R/∂K = λᵀ ∂(A p)/∂K.
        FieldDiffusion::from_stencil(self.stencil.clone()).vjp_d(
            &self.k,
            &solution.p,
            &lambda,
            &mut d_k,
        )?;
        let d_beta = (0..n)
            .map(|i| {
                let dp = solution.p[i] - self.p_v;
                dj_dcbf[i] * dp - lambda[i] * dp
            })
            .collect();
        Ok(DarcyGradient { lambda, d_k, d_beta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_fields() {
        let g = Grid::full_2d([3, 3], [1.0, 1.0]).unwrap();
        assert!(Darcy::new(&g, vec![1.0; 9], vec![0.0; 9], 0.0).is_err());
        assert!(Darcy::new(&g, vec![-1.0; 9], vec![1.0; 9], 0.0).is_err());
        assert!(Darcy::new(&g, vec![1.0; 8], vec![1.0; 9], 0.0).is_err());
        let mut d = Darcy::new(&g, vec![1.0; 9], vec![1.0; 9], 0.0).unwrap();
        assert!(d.solve(&[f64::NAN; 9]).is_err());
        assert!(d.solve(&[1.0; 3]).is_err());
    }

    #[test]
    fn uniform_source_gives_uniform_pressure() {
        // With f = β p_a everywhere, p = p_a + p_v solves the problem (no lateral flow).
        let g = Grid::full_2d([5, 4], [2.0, 2.0]).unwrap();
        let mut d = Darcy::new(&g, vec![3.0; 20], vec![0.5; 20], 2.0).unwrap();
        let s = d.solve(&[0.5 * 10.0; 20]).unwrap();
        assert!(s.p.iter().all(|p| (p - 12.0).abs() < 1e-12));
        assert!(s.cbf.iter().all(|c| (c - 5.0).abs() < 1e-12));
    }
}
