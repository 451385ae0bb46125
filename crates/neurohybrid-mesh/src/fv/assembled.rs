//! The diffusion operator assembled into a CSR matrix (nalgebra-sparse `CsrMatrix<f64>`).
//!
//! Implicit steppers need the matrix itself (to factor `I − h γ A`), and a matrix
//! refactorized many times wants a fixed pattern: the pattern is the stencil's (diagonal +
//! every active neighbour, even across zero-D faces), and [`AssembledDiffusion::refill`]
//! rewrites only the values when D changes.

use std::sync::Arc;

use nalgebra_sparse::CsrMatrix;
use nalgebra_sparse::pattern::SparsityPattern;

use super::matrix_free::check_diffusivity;
use super::operator::{NONE, Stencil, face};
use crate::error::Result;
use crate::grid::Grid;

/// Writes the CSR values of `A(D)` for the stencil's pattern (row order: slots `−z, −y, −x`,
/// diagonal, slots `+x, +y, +z`, skipping absent neighbours).
pub(crate) fn fill_values<F: Fn(usize) -> f64>(s: &Stencil, d: &F, values: &mut [f64]) {
    let ih2 = s.inv_h2();
    let mut at = 0;
    for i in 0..s.n() {
        let di = d(i);
        let mut diag = 0.0;
        let mut diag_at = 0;
        for (slot, &j) in s.slots(i).iter().enumerate() {
            if slot == 3 {
                diag_at = at;
                at += 1;
            }
            if j != NONE {
                let c = ih2[slot] * face(di, d(j as usize));
                values[at] = c;
                diag -= c;
                at += 1;
            }
        }
        values[diag_at] = diag;
    }
    debug_assert_eq!(at, values.len());
}

/// The diffusion operator `A(D)` as an assembled CSR matrix with a fixed pattern.
#[derive(Debug, Clone)]
pub struct AssembledDiffusion {
    stencil: Arc<Stencil>,
    matrix: CsrMatrix<f64>,
}

impl AssembledDiffusion {
    /// Assembles the operator on `grid` with diffusivity `d` (mm²/day per active cell, ≥ 0).
    pub fn new(grid: &Grid, d: &[f64]) -> Result<Self> {
        Self::from_stencil(Stencil::new(grid), d)
    }

    /// Assembles on an existing stencil.
    pub fn from_stencil(stencil: Arc<Stencil>, d: &[f64]) -> Result<Self> {
        stencil.check("D", d.len())?;
        check_diffusivity(d)?;
        let pattern = stencil.sparsity().clone();
        let mut values = vec![0.0; pattern.nnz()];
        fill_values(&stencil, &|i| d[i], &mut values);
        let matrix = CsrMatrix::try_from_pattern_and_values(pattern, values)
            .expect("values have the pattern's length");
        Ok(AssembledDiffusion { stencil, matrix })
    }

    /// Rewrites the values for a new diffusivity field, keeping the pattern.
    pub fn refill(&mut self, d: &[f64]) -> Result<()> {
        self.stencil.check("D", d.len())?;
        check_diffusivity(d)?;
        fill_values(&self.stencil, &|i| d[i], self.matrix.values_mut());
        Ok(())
    }

    /// The matrix (`n × n`, units 1/day for D in mm²/day).
    pub fn matrix(&self) -> &CsrMatrix<f64> {
        &self.matrix
    }

    /// The sparsity pattern.
    pub fn sparsity(&self) -> &SparsityPattern {
        self.matrix.pattern()
    }

    /// The shared stencil.
    pub fn stencil(&self) -> &Arc<Stencil> {
        &self.stencil
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.stencil.n()
    }

    /// `out = A u` (a hand-written CSR loop; nalgebra-sparse's generic matvec is ~1.5×
    /// slower, shared/CRATES.md).
    pub fn apply(&self, u: &[f64], out: &mut [f64]) -> Result<()> {
        self.stencil.check("u", u.len())?;
        self.stencil.check("out", out.len())?;
        self.apply_unchecked(u, out);
        Ok(())
    }

    pub(crate) fn apply_unchecked(&self, u: &[f64], out: &mut [f64]) {
        let (offsets, cols, vals) = self.matrix.csr_data();
        for (i, o) in out.iter_mut().enumerate() {
            let r = offsets[i]..offsets[i + 1];
            *o = cols[r.clone()].iter().zip(&vals[r]).map(|(&j, &a)| a * u[j]).sum();
        }
    }

    /// `w_u = Aᵀ w`, computed as a genuine transpose product (scatter by columns), so tests
    /// of symmetry compare two different computations.
    pub fn vjp(&self, w: &[f64], w_u: &mut [f64]) -> Result<()> {
        self.stencil.check("w", w.len())?;
        self.stencil.check("w_u", w_u.len())?;
        self.vjp_unchecked(w, w_u);
        Ok(())
    }

    pub(crate) fn vjp_unchecked(&self, w: &[f64], w_u: &mut [f64]) {
        let (offsets, cols, vals) = self.matrix.csr_data();
        w_u.fill(0.0);
        for (i, &wi) in w.iter().enumerate() {
            for k in offsets[i]..offsets[i + 1] {
                w_u[cols[k]] += vals[k] * wi;
            }
        }
    }

    /// `out = A v` (linear in `u`).
    pub fn jvp(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.apply(v, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_zero_and_refill_keeps_pattern() {
        let mask = vec![true, true, false, true, true, true, true, true, false];
        let g = Grid::new_2d([3, 3], [1.0, 0.5], mask).unwrap();
        let d: Vec<f64> = (0..7).map(|i| 0.1 * i as f64).collect();
        let mut a = AssembledDiffusion::new(&g, &d).unwrap();
        let (offsets, _, vals) = a.matrix().csr_data();
        for i in 0..a.n() {
            let s: f64 = vals[offsets[i]..offsets[i + 1]].iter().sum();
            assert!(s.abs() < 1e-14);
        }
        let nnz = a.sparsity().nnz();
        a.refill(&[1.0; 7]).unwrap();
        assert_eq!(a.sparsity().nnz(), nnz);
        assert!(a.refill(&[-1.0; 7]).is_err());
        // Cell 0 (D = 0) has structural but zero entries.
        assert_eq!(AssembledDiffusion::new(&g, &d).unwrap().matrix().values()[0], 0.0);
    }
}
