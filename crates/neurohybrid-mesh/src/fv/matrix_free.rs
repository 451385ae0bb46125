//! Matrix-free diffusion operators: the stencil is applied row by row, face coefficients are
//! computed on the fly from the cell diffusivities, so changing D (calibration) costs nothing.
//!
//! Three parameterizations of the one operator `A(D) u = (1/V) Σ faces flux`:
//! - [`DiffusionOperator`]: a fixed per-cell D field (mm²/day);
//! - [`TissueDiffusion`]: `D = D_w (p_wm + p_gm / R)` with parameters `p = [D_w, R]`;
//! - [`FieldDiffusion`]: the per-cell D field itself is the parameter vector (series hybrids
//!   where a network predicts D).

use std::sync::Arc;

use nalgebra_sparse::pattern::SparsityPattern;

use super::assembled::AssembledDiffusion;
use super::operator::{
    Parallelism, Stencil, add_rows, for_rows, row_apply, row_apply_faces, row_jvp_d, row_vjp_d,
    sum_rows, up_faces,
};
use crate::error::{MeshError, Result};
use crate::grid::Grid;
use crate::tissue::{TissueMaps, TissueModel};

/// Checks a diffusivity field: finite and non-negative.
pub(crate) fn check_diffusivity(d: &[f64]) -> Result<()> {
    for (index, &value) in d.iter().enumerate() {
        if !value.is_finite() {
            return Err(MeshError::NonFinite { what: "diffusivity", index });
        }
        if value < 0.0 {
            return Err(MeshError::NegativeDiffusivity { value, index });
        }
    }
    Ok(())
}

fn check_len(s: &Stencil, items: &[(&'static str, usize)]) -> Result<()> {
    items.iter().try_for_each(|&(what, n)| s.check(what, n))
}

/// The operator with D as an explicit input: `A(D) u` and its derivatives in `u` and `D`.
///
/// This is the kernel the other two types forward to; use it directly when D changes from
/// call to call (it is the parameter vector of a series hybrid).
#[derive(Debug, Clone)]
pub struct FieldDiffusion {
    stencil: Arc<Stencil>,
    par: Parallelism,
}

impl FieldDiffusion {
    /// The operator on `grid`'s active cells.
    pub fn new(grid: &Grid) -> Self {
        Self::from_stencil(Stencil::new(grid))
    }

    /// The operator on an existing (shared) stencil.
    pub fn from_stencil(stencil: Arc<Stencil>) -> Self {
        FieldDiffusion { stencil, par: Parallelism::default() }
    }

    /// Chooses sequential or rayon row loops.
    pub fn with_parallelism(mut self, par: Parallelism) -> Self {
        self.par = par;
        self
    }

    /// The row-loop mode.
    pub fn parallelism(&self) -> Parallelism {
        self.par
    }

    /// The shared stencil.
    pub fn stencil(&self) -> &Arc<Stencil> {
        &self.stencil
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.stencil.n()
    }

    /// Jacobian sparsity pattern in `u` (independent of D).
    pub fn sparsity(&self) -> &SparsityPattern {
        self.stencil.sparsity()
    }

    /// `out = A(D) u`. D must be finite and ≥ 0 (not checked here, so this can run in hot
    /// loops; negative D gives a meaningless, possibly singular, harmonic mean).
    pub fn apply(&self, d: &[f64], u: &[f64], out: &mut [f64]) -> Result<()> {
        check_len(&self.stencil, &[("D", d.len()), ("u", u.len()), ("out", out.len())])?;
        self.apply_unchecked(d, u, out);
        Ok(())
    }

    pub(crate) fn apply_unchecked(&self, d: &[f64], u: &[f64], out: &mut [f64]) {
        let s = &*self.stencil;
        let df = |i: usize| d[i];
        for_rows(self.par, out, |i| row_apply(s, &df, u, i));
    }

    /// `w_u = A(D)ᵀ w`. `A` is symmetric (the harmonic mean is symmetric in its arguments),
    /// so this is `A(D) w` — exact, not an approximation.
    pub fn vjp_u(&self, d: &[f64], w: &[f64], w_u: &mut [f64]) -> Result<()> {
        self.apply(d, w, w_u)
    }

    /// `w_d = wᵀ ∂(A(D) u)/∂D` (overwrite).
    pub fn vjp_d(&self, d: &[f64], u: &[f64], w: &[f64], w_d: &mut [f64]) -> Result<()> {
        check_len(
            &self.stencil,
            &[("D", d.len()), ("u", u.len()), ("w", w.len()), ("w_d", w_d.len())],
        )?;
        self.vjp_d_unchecked(d, u, w, w_d);
        Ok(())
    }

    pub(crate) fn vjp_d_unchecked(&self, d: &[f64], u: &[f64], w: &[f64], w_d: &mut [f64]) {
        let s = &*self.stencil;
        let df = |i: usize| d[i];
        for_rows(self.par, w_d, |k| row_vjp_d(s, &df, u, w, k));
    }

    /// `out = A(D) v_u + ∂(A(D) u)/∂D · v_d`; an empty `v_d` is a zero tangent.
    pub fn jvp(
        &self,
        d: &[f64],
        u: &[f64],
        v_u: &[f64],
        v_d: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        check_len(
            &self.stencil,
            &[("D", d.len()), ("u", u.len()), ("v_u", v_u.len()), ("out", out.len())],
        )?;
        if !v_d.is_empty() {
            self.stencil.check("v_d", v_d.len())?;
        }
        self.jvp_unchecked(d, u, v_u, v_d, out);
        Ok(())
    }

    pub(crate) fn jvp_unchecked(
        &self,
        d: &[f64],
        u: &[f64],
        v_u: &[f64],
        v_d: &[f64],
        out: &mut [f64],
    ) {
        let s = &*self.stencil;
        let df = |i: usize| d[i];
        if v_d.is_empty() {
            for_rows(self.par, out, |i| row_apply(s, &df, v_u, i));
        } else {
            let vf = |i: usize| v_d[i];
            for_rows(self.par, out, |i| row_apply(s, &df, v_u, i) + row_jvp_d(s, &df, &vf, u, i));
        }
    }
}

/// The diffusion operator with a fixed per-cell diffusivity field, matrix-free.
///
/// No matrix is formed: besides the shared stencil it keeps D and, per cell, the coefficients
/// of its three upward faces (24 B/cell), refreshed by [`set_diffusivity`](Self::set_diffusivity).
/// Each face's harmonic mean is then computed once per D instead of twice per apply — the
/// divisions, not memory traffic, bound the on-the-fly kernel. Results are bit-identical to
/// [`FieldDiffusion::apply`] with the same D.
#[derive(Debug, Clone)]
pub struct DiffusionOperator {
    inner: FieldDiffusion,
    d: Vec<f64>,
    faces: Vec<[f64; 3]>,
}

impl DiffusionOperator {
    /// The operator on `grid` with diffusivity `d` (mm²/day, one per active cell, ≥ 0).
    pub fn new(grid: &Grid, d: Vec<f64>) -> Result<Self> {
        Self::from_stencil(Stencil::new(grid), d)
    }

    /// The operator on an existing stencil.
    pub fn from_stencil(stencil: Arc<Stencil>, d: Vec<f64>) -> Result<Self> {
        stencil.check("D", d.len())?;
        check_diffusivity(&d)?;
        let faces = up_faces(&stencil, &|i| d[i]);
        Ok(DiffusionOperator { inner: FieldDiffusion::from_stencil(stencil), d, faces })
    }

    /// The operator with `D = D_w (p_wm + p_gm / R)` from tissue maps (Swanson et al. 2000).
    pub fn from_tissue(grid: &Grid, tissue: &TissueMaps, model: TissueModel) -> Result<Self> {
        Self::new(grid, model.field(grid, tissue)?)
    }

    /// Chooses sequential or rayon row loops.
    pub fn with_parallelism(mut self, par: Parallelism) -> Self {
        self.inner.par = par;
        self
    }

    /// The row-loop mode.
    pub fn parallelism(&self) -> Parallelism {
        self.inner.par
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.inner.n()
    }

    /// The shared stencil.
    pub fn stencil(&self) -> &Arc<Stencil> {
        self.inner.stencil()
    }

    /// The per-cell diffusivity (mm²/day).
    pub fn diffusivity(&self) -> &[f64] {
        &self.d
    }

    /// Replaces the diffusivity field (validated: finite, ≥ 0).
    pub fn set_diffusivity(&mut self, d: &[f64]) -> Result<()> {
        self.inner.stencil.check("D", d.len())?;
        check_diffusivity(d)?;
        self.d.copy_from_slice(d);
        self.faces = up_faces(&self.inner.stencil, &|i| d[i]);
        Ok(())
    }

    /// Jacobian sparsity pattern (diagonal + active neighbours).
    pub fn sparsity(&self) -> &SparsityPattern {
        self.inner.sparsity()
    }

    /// `out = A u`.
    pub fn apply(&self, u: &[f64], out: &mut [f64]) -> Result<()> {
        check_len(&self.inner.stencil, &[("u", u.len()), ("out", out.len())])?;
        self.apply_unchecked(u, out);
        Ok(())
    }

    pub(crate) fn apply_unchecked(&self, u: &[f64], out: &mut [f64]) {
        let (s, faces) = (&*self.inner.stencil, &self.faces[..]);
        for_rows(self.inner.par, out, |i| row_apply_faces(s, faces, u, i));
    }

    /// `out += A u` (the accumulating form autodiff cotangents need).
    pub(crate) fn add_unchecked(&self, u: &[f64], out: &mut [f64]) {
        let (s, faces) = (&*self.inner.stencil, &self.faces[..]);
        add_rows(self.inner.par, out, |i| row_apply_faces(s, faces, u, i));
    }

    /// `w_u = Aᵀ w` (= `A w`, the operator being symmetric).
    pub fn vjp(&self, w: &[f64], w_u: &mut [f64]) -> Result<()> {
        self.apply(w, w_u)
    }

    /// `out = A v` (the operator is linear in `u`).
    pub fn jvp(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.apply(v, out)
    }

    /// `w_d = wᵀ ∂(A u)/∂D` at this operator's D.
    pub fn vjp_diffusivity(&self, u: &[f64], w: &[f64], w_d: &mut [f64]) -> Result<()> {
        self.inner.vjp_d(&self.d, u, w, w_d)
    }

    /// `out = ∂(A u)/∂D · v_d` at this operator's D.
    pub fn jvp_diffusivity(&self, u: &[f64], v_d: &[f64], out: &mut [f64]) -> Result<()> {
        self.inner.stencil.check("v_d", v_d.len())?;
        let s = &*self.inner.stencil;
        check_len(s, &[("u", u.len()), ("out", out.len())])?;
        let df = |i: usize| self.d[i];
        let vf = |i: usize| v_d[i];
        for_rows(self.inner.par, out, |i| row_jvp_d(s, &df, &vf, u, i));
        Ok(())
    }

    /// The same operator as an assembled CSR matrix.
    pub fn assemble(&self) -> AssembledDiffusion {
        AssembledDiffusion::from_stencil(self.inner.stencil.clone(), &self.d)
            .expect("D was validated on construction")
    }
}

/// The diffusion operator parameterized by tissue: `D = D_w (p_wm + p_gm / R)` per cell,
/// parameters `p = [D_w, R]` (mm²/day, dimensionless).
///
/// `A` is linear in `D_w` (the harmonic mean is 1-homogeneous: `face(cD_i, cD_j) =
/// c·face(D_i, D_j)`), and depends on `R` through the gray-matter term inside the harmonic
/// mean; both derivatives are exact chain rules through [`FieldDiffusion`]'s D-derivative,
/// computed without forming the D field (no allocation).
#[derive(Debug, Clone)]
pub struct TissueDiffusion {
    inner: FieldDiffusion,
    wm: Vec<f64>,
    gm: Vec<f64>,
}

impl TissueDiffusion {
    /// The operator on `grid`'s active cells with the white/gray fractions of `tissue`.
    pub fn new(grid: &Grid, tissue: &TissueMaps) -> Result<Self> {
        let (wm, gm) = tissue.active_fractions(grid)?;
        Ok(TissueDiffusion { inner: FieldDiffusion::new(grid), wm, gm })
    }

    /// Chooses sequential or rayon row loops.
    pub fn with_parallelism(mut self, par: Parallelism) -> Self {
        self.inner.par = par;
        self
    }

    /// The row-loop mode.
    pub fn parallelism(&self) -> Parallelism {
        self.inner.par
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.inner.n()
    }

    /// The shared stencil.
    pub fn stencil(&self) -> &Arc<Stencil> {
        self.inner.stencil()
    }

    /// Jacobian sparsity pattern in `u`.
    pub fn sparsity(&self) -> &SparsityPattern {
        self.inner.sparsity()
    }

    /// White matter fraction per active cell.
    pub fn wm(&self) -> &[f64] {
        &self.wm
    }

    /// Gray matter fraction per active cell.
    pub fn gm(&self) -> &[f64] {
        &self.gm
    }

    /// The D field for `model` (allocates; for inspection and assembly).
    pub fn field(&self, model: TissueModel) -> Vec<f64> {
        self.wm.iter().zip(&self.gm).map(|(&w, &g)| model.diffusivity(w, g)).collect()
    }

    /// The fixed-D operator for `model`.
    pub fn operator(&self, model: TissueModel) -> Result<DiffusionOperator> {
        model.validate()?;
        DiffusionOperator::from_stencil(self.inner.stencil.clone(), self.field(model))
            .map(|op| op.with_parallelism(self.inner.par))
    }

    /// `out = A(D_w, R) u`.
    pub fn apply(&self, model: TissueModel, u: &[f64], out: &mut [f64]) -> Result<()> {
        model.validate()?;
        check_len(&self.inner.stencil, &[("u", u.len()), ("out", out.len())])?;
        self.apply_unchecked(model, u, out);
        Ok(())
    }

    pub(crate) fn apply_unchecked(&self, m: TissueModel, u: &[f64], out: &mut [f64]) {
        let s = &*self.inner.stencil;
        let df = |i: usize| m.diffusivity(self.wm[i], self.gm[i]);
        for_rows(self.inner.par, out, |i| row_apply(s, &df, u, i));
    }

    /// `w_u = Aᵀ w` and `w_p = [wᵀ ∂(Au)/∂D_w, wᵀ ∂(Au)/∂R]`; pass an empty `w_u` or `w_p`
    /// to skip that part.
    pub fn vjp(
        &self,
        model: TissueModel,
        u: &[f64],
        w: &[f64],
        w_u: &mut [f64],
        w_p: &mut [f64],
    ) -> Result<()> {
        model.validate()?;
        let s = &*self.inner.stencil;
        check_len(s, &[("u", u.len()), ("w", w.len())])?;
        if !w_u.is_empty() {
            s.check("w_u", w_u.len())?;
        }
        if !w_p.is_empty() && w_p.len() != 2 {
            return Err(MeshError::ShapeMismatch { what: "w_p", expected: 2, got: w_p.len() });
        }
        self.vjp_unchecked(model, u, w, w_u, w_p);
        Ok(())
    }

    pub(crate) fn vjp_unchecked(
        &self,
        m: TissueModel,
        u: &[f64],
        w: &[f64],
        w_u: &mut [f64],
        w_p: &mut [f64],
    ) {
        if !w_u.is_empty() {
            self.apply_unchecked(m, w, w_u);
        }
        if !w_p.is_empty() {
            let g = self.param_vjp(m, u, w);
            w_p[..2].copy_from_slice(&g);
        }
    }

    /// `[wᵀ ∂(Au)/∂D_w, wᵀ ∂(Au)/∂R]`.
    pub(crate) fn param_vjp(&self, m: TissueModel, u: &[f64], w: &[f64]) -> [f64; 2] {
        let s = &*self.inner.stencil;
        let df = |i: usize| m.diffusivity(self.wm[i], self.gm[i]);
        sum_rows(self.inner.par, s.n(), |k| {
            let wd = row_vjp_d(s, &df, u, w, k);
            let (dd, dr) = m.diffusivity_derivatives(self.wm[k], self.gm[k]);
            [wd * dd, wd * dr]
        })
    }

    /// `out = A v_u + ∂(Au)/∂p · v_p`; an empty `v_p` is a zero tangent.
    pub fn jvp(
        &self,
        model: TissueModel,
        u: &[f64],
        v_u: &[f64],
        v_p: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        model.validate()?;
        check_len(&self.inner.stencil, &[("u", u.len()), ("v_u", v_u.len()), ("out", out.len())])?;
        if !v_p.is_empty() && v_p.len() != 2 {
            return Err(MeshError::ShapeMismatch { what: "v_p", expected: 2, got: v_p.len() });
        }
        self.jvp_unchecked(model, u, v_u, v_p, out);
        Ok(())
    }

    pub(crate) fn jvp_unchecked(
        &self,
        m: TissueModel,
        u: &[f64],
        v_u: &[f64],
        v_p: &[f64],
        out: &mut [f64],
    ) {
        let s = &*self.inner.stencil;
        let df = |i: usize| m.diffusivity(self.wm[i], self.gm[i]);
        if v_p.is_empty() {
            for_rows(self.inner.par, out, |i| row_apply(s, &df, v_u, i));
        } else {
            let (vw, vr) = (v_p[0], v_p[1]);
            let vf = |i: usize| {
                let (dd, dr) = m.diffusivity_derivatives(self.wm[i], self.gm[i]);
                dd * vw + dr * vr
            };
            for_rows(self.inner.par, out, |i| {
                row_apply(s, &df, v_u, i) + row_jvp_d(s, &df, &vf, u, i)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Grid {
        Grid::full_2d([n, 1], [0.5, 1.0]).unwrap()
    }

    #[test]
    fn constant_d_is_the_three_point_laplacian() {
        let g = line(4);
        let op = DiffusionOperator::new(&g, vec![2.0; 4]).unwrap();
        let u = [1.0, 2.0, 4.0, 8.0];
        let mut out = [0.0; 4];
        op.apply(&u, &mut out).unwrap();
        // D/h² = 8; no-flux ends: one-sided rows.
        assert_eq!(out, [8.0, 8.0 * 1.0, 8.0 * 2.0, -8.0 * 4.0]);
    }

    #[test]
    fn csf_cell_blocks_flux() {
        let g = line(3);
        let op = DiffusionOperator::new(&g, vec![1.0, 0.0, 1.0]).unwrap();
        let mut out = [0.0; 3];
        op.apply(&[1.0, 0.0, 5.0], &mut out).unwrap();
        assert_eq!(out, [0.0; 3]);
    }

    #[test]
    fn rejects_bad_diffusivity_and_lengths() {
        let g = line(3);
        assert!(matches!(
            DiffusionOperator::new(&g, vec![1.0, -0.5, 1.0]),
            Err(MeshError::NegativeDiffusivity { index: 1, .. })
        ));
        assert!(matches!(
            DiffusionOperator::new(&g, vec![1.0, f64::NAN, 1.0]),
            Err(MeshError::NonFinite { index: 1, .. })
        ));
        let op = DiffusionOperator::new(&g, vec![1.0; 3]).unwrap();
        assert!(matches!(
            op.apply(&[0.0; 2], &mut [0.0; 3]),
            Err(MeshError::ShapeMismatch { what: "u", .. })
        ));
        let t = TissueMaps::new(vec![1.0; 3], vec![0.0; 3], vec![0.0; 3]).unwrap();
        let td = TissueDiffusion::new(&g, &t).unwrap();
        assert!(td.apply(TissueModel { d_w: 1.0, r: -1.0 }, &[0.0; 3], &mut [0.0; 3]).is_err());
        assert!(
            td.vjp(TissueModel::default(), &[0.0; 3], &[0.0; 3], &mut [], &mut [0.0; 3]).is_err()
        );
    }

    #[test]
    fn tissue_operator_matches_fixed_field() {
        let g = line(5);
        let wm = vec![1.0, 0.8, 0.2, 0.0, 0.5];
        let gm = vec![0.0, 0.2, 0.7, 0.0, 0.5];
        let t = TissueMaps::new(wm, gm, vec![0.0, 0.0, 0.1, 1.0, 0.0]).unwrap();
        let m = TissueModel { d_w: 0.3, r: 7.0 };
        let td = TissueDiffusion::new(&g, &t).unwrap();
        let op = DiffusionOperator::from_tissue(&g, &t, m).unwrap();
        let u = [0.1, 0.5, -0.2, 3.0, 1.0];
        let (mut a, mut b) = ([0.0; 5], [0.0; 5]);
        td.apply(m, &u, &mut a).unwrap();
        op.apply(&u, &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-15);
        }
    }
}
