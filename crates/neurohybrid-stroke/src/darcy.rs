//! The single- and three-compartment Darcy perfusion problems on a masked voxel grid and
//! their adjoints.
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
//!
//! **Three compartments** ([`Darcy3`], Józsa et al. 2021, arteriole `a` / capillary `c` /
//! venule `v`, all on the same voxels):
//!
//! ```text
//! −∇·(K_a∇p_a) + β_ac (p_a − p_c)                          = f_a
//! −∇·(K_c∇p_c) + β_ac (p_c − p_a) + β_cv (p_c − p_v)       = f_c
//! −∇·(K_v∇p_v) + β_cv (p_v − p_c) + β_out (p_v − p_out)    = f_v
//! ```
//!
//! with no flux across the mask for every compartment, perfusion `CBF = β_ac (p_a − p_c)`
//! (arteriolar blood entering the capillary bed) and venous drainage `β_out (p_v − p_out)`.
//! The per-cell coupling block `[[β_ac, −β_ac, 0], [−β_ac, β_ac + β_cv, −β_cv], [0, −β_cv,
//! β_cv + β_out]]` is the Laplacian of the chain a–c–v grounded at v, positive definite when
//! `β_out > 0` and `β_ac, β_cv ≥ 0`; with the three `−A(K)` blocks the `3n × 3n` matrix is
//! SPD and is factorized once by sparse Cholesky like the single compartment. The same
//! conservation holds compartment by compartment: with `f_c = f_v = 0`,
//! `Σ f_a = Σ CBF = Σ β_out (p_v − p_out)`. The adjoint solves `Mᵀλ = [β_ac g; −β_ac g; 0]`
//! and gives `dJ/dK_x = λ_xᵀ ∂(A p_x)/∂K_x`, `dJ/dβ_ac = g Δ_ac − (λ_a − λ_c) Δ_ac`,
//! `dJ/dβ_cv = −(λ_c − λ_v) Δ_cv`, `dJ/dβ_out = −λ_v (p_v − p_out)`, `dJ/df_x = λ_x`
//! (`Δ_ac = p_a − p_c`, `Δ_cv = p_c − p_v`).

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

/// The fields of the three-compartment problem, per active cell ([`Darcy3`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Darcy3Fields {
    /// Conductivities `K_a`, `K_c`, `K_v` (≥ 0).
    pub k: [Vec<f64>; 3],
    /// Arteriole–capillary coupling `β_ac` (≥ 0).
    pub beta_ac: Vec<f64>,
    /// Capillary–venule coupling `β_cv` (≥ 0).
    pub beta_cv: Vec<f64>,
    /// Venous drainage `β_out` (> 0: makes the matrix definite).
    pub beta_out: Vec<f64>,
    /// Outflow (pial venous) pressure.
    pub p_out: f64,
}

/// The three-compartment Darcy operator (module docs), factorized.
#[derive(Debug)]
pub struct Darcy3 {
    stencil: Arc<Stencil>,
    fields: Darcy3Fields,
    factor: SparseCholesky,
}

/// A solved three-compartment state.
#[derive(Debug, Clone, PartialEq)]
pub struct Darcy3Solution {
    /// Pressures `[p_a | p_c | p_v]` (compartment-major, `3n`).
    pub p: Vec<f64>,
    /// Perfusion `β_ac (p_a − p_c)` per cell.
    pub cbf: Vec<f64>,
    /// Venous drainage `β_out (p_v − p_out)` per cell.
    pub outflow: Vec<f64>,
}

impl Darcy3Solution {
    /// The larger of `|Σ f_a − Σ CBF|` and `|Σ f_a − Σ outflow|` relative to `Σ |f_a|` (for a
    /// source in the arterioles only).
    pub fn flux_imbalance(&self, f_a: &[f64]) -> f64 {
        let inflow: f64 = f_a.iter().sum();
        let scale = f_a.iter().map(|x| x.abs()).sum::<f64>().max(f64::MIN_POSITIVE);
        let perf: f64 = self.cbf.iter().sum();
        let out: f64 = self.outflow.iter().sum();
        (inflow - perf).abs().max((inflow - out).abs()) / scale
    }
}

/// Gradients of an objective `J(CBF)` from [`Darcy3::adjoint`] (sources held fixed).
#[derive(Debug, Clone, PartialEq)]
pub struct Darcy3Gradient {
    /// The adjoint `[λ_a | λ_c | λ_v]`; `λ_x` is also `dJ/df_x`.
    pub lambda: Vec<f64>,
    /// `dJ/dK_a`, `dJ/dK_c`, `dJ/dK_v` per cell.
    pub d_k: [Vec<f64>; 3],
    /// `dJ/dβ_ac` per cell.
    pub d_beta_ac: Vec<f64>,
    /// `dJ/dβ_cv` per cell.
    pub d_beta_cv: Vec<f64>,
    /// `dJ/dβ_out` per cell.
    pub d_beta_out: Vec<f64>,
}

impl Darcy3 {
    /// Assembles and factorizes the `3n × 3n` operator on `grid`.
    ///
    /// # Errors
    /// Length mismatches, negative or non-finite conductivities or couplings, a non-positive
    /// `β_out`, a non-finite `p_out`.
    pub fn new(grid: &Grid, fields: Darcy3Fields) -> Result<Self> {
        let stencil = Stencil::new(grid);
        let n = stencil.n();
        let nonneg = [
            ("k_a", &fields.k[0]),
            ("k_c", &fields.k[1]),
            ("k_v", &fields.k[2]),
            ("beta_ac", &fields.beta_ac),
            ("beta_cv", &fields.beta_cv),
        ];
        for (name, v) in nonneg {
            check_len(name, n, v.len())?;
            if let Some(&x) = v.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                return Err(StrokeError::InvalidParameter {
                    name,
                    value: x,
                    reason: "must be finite and ≥ 0",
                });
            }
        }
        check_len("beta_out", n, fields.beta_out.len())?;
        if let Some(&b) = fields.beta_out.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(StrokeError::InvalidParameter {
                name: "beta_out",
                value: b,
                reason: "venous drainage must be positive and finite (M is then SPD)",
            });
        }
        if !fields.p_out.is_finite() {
            return Err(StrokeError::InvalidParameter {
                name: "p_out",
                value: fields.p_out,
                reason: "must be finite",
            });
        }
        let mut triplets: Vec<(usize, usize, f64)> = Vec::new();
        for (c, k) in fields.k.iter().enumerate() {
            let a = AssembledDiffusion::from_stencil(stencil.clone(), k)?;
            let m = a.matrix();
            for (i, j, v) in m.triplet_iter() {
                triplets.push((c * n + i, c * n + j, -*v));
            }
        }
        for i in 0..n {
            let (ac, cv, out) = (fields.beta_ac[i], fields.beta_cv[i], fields.beta_out[i]);
            let (a, c, v) = (i, n + i, 2 * n + i);
            triplets.extend([
                (a, a, ac),
                (a, c, -ac),
                (c, a, -ac),
                (c, c, ac + cv),
                (c, v, -cv),
                (v, c, -cv),
                (v, v, cv + out),
            ]);
        }
        let matrix = SparseMatrix::from_triplets(3 * n, 3 * n, &triplets)?;
        let mut factor = SparseCholesky::new();
        factor.factorize(&matrix)?;
        Ok(Darcy3 { stencil, fields, factor })
    }

    /// Number of active cells (the state has `3n` pressures).
    pub fn n(&self) -> usize {
        self.stencil.n()
    }

    /// The fields.
    pub fn fields(&self) -> &Darcy3Fields {
        &self.fields
    }

    /// Solves with sources `f = [f_a | f_c | f_v]` (`3n`).
    ///
    /// # Errors
    /// Wrong length or non-finite `f`.
    pub fn solve(&mut self, f: &[f64]) -> Result<Darcy3Solution> {
        let n = self.n();
        check_len("f", 3 * n, f.len())?;
        if let Some(i) = f.iter().position(|x| !x.is_finite()) {
            return Err(neurohybrid_mesh::MeshError::NonFinite { what: "f", index: i }.into());
        }
        let fl = &self.fields;
        let mut p = f.to_vec();
        for i in 0..n {
            p[2 * n + i] += fl.beta_out[i] * fl.p_out;
        }
        self.factor.solve_in_place(&mut p)?;
        let cbf = (0..n).map(|i| fl.beta_ac[i] * (p[i] - p[n + i])).collect();
        let outflow = (0..n).map(|i| fl.beta_out[i] * (p[2 * n + i] - fl.p_out)).collect();
        Ok(Darcy3Solution { p, cbf, outflow })
    }

    /// Adjoint of `J(CBF)` at `solution` given `dj_dcbf`: one transpose solve (module docs).
    ///
    /// # Errors
    /// Length mismatches.
    pub fn adjoint(
        &mut self,
        solution: &Darcy3Solution,
        dj_dcbf: &[f64],
    ) -> Result<Darcy3Gradient> {
        let n = self.n();
        check_len("dj_dcbf", n, dj_dcbf.len())?;
        check_len("solution.p", 3 * n, solution.p.len())?;
        let fl = &self.fields;
        let mut lambda = vec![0.0; 3 * n];
        for i in 0..n {
            lambda[i] = fl.beta_ac[i] * dj_dcbf[i];
            lambda[n + i] = -fl.beta_ac[i] * dj_dcbf[i];
        }
        self.factor.solve_transpose_in_place(&mut lambda)?;
        let fd = FieldDiffusion::from_stencil(self.stencil.clone());
        let mut d_k = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        for (c, dk) in d_k.iter_mut().enumerate() {
            let r = c * n..(c + 1) * n;
            fd.vjp_d(&fl.k[c], &solution.p[r.clone()], &lambda[r], dk)?;
        }
        let p = &solution.p;
        let (mut d_beta_ac, mut d_beta_cv, mut d_beta_out) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            let (la, lc, lv) = (lambda[i], lambda[n + i], lambda[2 * n + i]);
            let d_ac = p[i] - p[n + i];
            let d_cv = p[n + i] - p[2 * n + i];
            d_beta_ac[i] = dj_dcbf[i] * d_ac - (la - lc) * d_ac;
            d_beta_cv[i] = -(lc - lv) * d_cv;
            d_beta_out[i] = -lv * (p[2 * n + i] - fl.p_out);
        }
        Ok(Darcy3Gradient { lambda, d_k, d_beta_ac, d_beta_cv, d_beta_out })
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
    fn three_compartments_reject_bad_fields_and_hold_a_uniform_state() {
        let g = Grid::full_2d([3, 3], [1.0, 1.0]).unwrap();
        let fields = Darcy3Fields {
            k: [vec![1.0; 9], vec![0.5; 9], vec![2.0; 9]],
            beta_ac: vec![1.0; 9],
            beta_cv: vec![2.0; 9],
            beta_out: vec![0.5; 9],
            p_out: 1.0,
        };
        let bad = Darcy3Fields { beta_out: vec![0.0; 9], ..fields.clone() };
        assert!(Darcy3::new(&g, bad).is_err());
        let bad = Darcy3Fields { beta_ac: vec![-1.0; 9], ..fields.clone() };
        assert!(Darcy3::new(&g, bad).is_err());
        // Uniform f_a = q: no lateral flow, the chain carries q through every coupling:
        // p_v = p_out + q/β_out, p_c = p_v + q/β_cv, p_a = p_c + q/β_ac.
        let mut d = Darcy3::new(&g, fields).unwrap();
        let mut f = vec![3.0; 9];
        f.extend([0.0; 18]);
        let s = d.solve(&f).unwrap();
        let (pv, pc, pa) = (1.0 + 6.0, 7.0 + 1.5, 8.5 + 3.0);
        for i in 0..9 {
            assert!((s.p[i] - pa).abs() < 1e-12 && (s.p[9 + i] - pc).abs() < 1e-12);
            assert!((s.p[18 + i] - pv).abs() < 1e-12 && (s.cbf[i] - 3.0).abs() < 1e-12);
        }
        assert!(d.solve(&[1.0; 9]).is_err());
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
