//! The diffusion operators as autodiff graph nodes ([`CustomOp`]s), so a mechanistic term
//! composes with networks in one recorded, compiled tape.
//!
//! | op | inputs | output | gradients to |
//! |---|---|---|---|
//! | [`DiffusionOp`] | `u [n]` | `A u` | `u` |
//! | [`TissueDiffusionOp`] | `u [n]`, `p = [D_w, R]` | `A(D_w, R) u` | `u`, `D_w`, `R` |
//! | [`FieldDiffusionOp`] | `u [n]`, `D [n]` | `A(D) u` | `u`, the per-voxel `D` |
//!
//! Replays cannot return errors, so parameter values are not validated at replay time: keep
//! `D ≥ 0` and `R > 0` by construction (e.g. a softplus on the raw parameter). The row
//! kernels are those of the matrix-free operators, so the tape and the direct calls agree to
//! the last bit, and no replay allocates.

use std::sync::Arc;

use neurohybrid_autodiff::{AutodiffError, CustomOp, Graph, Var};

use super::matrix_free::{DiffusionOperator, FieldDiffusion, TissueDiffusion};
use super::operator::{add_rows, for_rows, row_apply, row_jvp_d, row_vjp_d};
use crate::tissue::TissueModel;

fn check_shapes(
    name: &str,
    shapes: &[&[usize]],
    expected: &[usize],
) -> neurohybrid_autodiff::Result<Vec<usize>> {
    let ok = shapes.len() == expected.len()
        && shapes.iter().zip(expected).all(|(s, &n)| s.len() == 1 && s[0] == n);
    if ok {
        Ok(vec![expected[0]])
    } else {
        Err(AutodiffError::Custom {
            op: name.to_string(),
            message: format!("expected rank-1 operands of lengths {expected:?}, got {shapes:?}"),
        })
    }
}

/// `A u` with a fixed diffusivity: a linear op on one operand.
#[derive(Debug, Clone)]
pub struct DiffusionOp {
    op: DiffusionOperator,
}

impl DiffusionOp {
    /// Wraps an operator (cheap to share: the stencil is an `Arc`).
    pub fn new(op: DiffusionOperator) -> Self {
        DiffusionOp { op }
    }
}

impl CustomOp for DiffusionOp {
    fn name(&self) -> &str {
        "mesh.diffusion"
    }

    fn output_shape(&self, input_shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        check_shapes(self.name(), input_shapes, &[self.op.n()])
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        self.op.apply_unchecked(inputs[0], out);
    }

    fn vjp(&self, _inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        if !in_cot[0].is_empty() {
            // Aᵀ = A (symmetric face coefficients).
            self.op.add_unchecked(w, in_cot[0]);
        }
    }

    fn jvp(&self, _inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        if tangents[0].is_empty() {
            out_tan.fill(0.0);
        } else {
            self.op.apply_unchecked(tangents[0], out_tan);
        }
    }
}

/// `A(D_w, R) u` with `D = D_w (p_wm + p_gm / R)`: operands `u` and `p = [D_w, R]`.
#[derive(Debug, Clone)]
pub struct TissueDiffusionOp {
    op: TissueDiffusion,
}

impl TissueDiffusionOp {
    /// Wraps a tissue-parameterized operator.
    pub fn new(op: TissueDiffusion) -> Self {
        TissueDiffusionOp { op }
    }
}

fn model(p: &[f64]) -> TissueModel {
    TissueModel { d_w: p[0], r: p[1] }
}

impl CustomOp for TissueDiffusionOp {
    fn name(&self) -> &str {
        "mesh.tissue_diffusion"
    }

    fn output_shape(&self, input_shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        check_shapes(self.name(), input_shapes, &[self.op.n(), 2])
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        self.op.apply_unchecked(model(inputs[1]), inputs[0], out);
    }

    fn vjp(&self, inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let m = model(inputs[1]);
        let (cot_u, rest) = in_cot.split_at_mut(1);
        if !cot_u[0].is_empty() {
            let s = &**self.op.stencil();
            let (wm, gm) = (self.op.wm(), self.op.gm());
            let df = |i: usize| m.diffusivity(wm[i], gm[i]);
            add_rows(self.op.parallelism(), cot_u[0], |i| row_apply(s, &df, w, i));
        }
        if !rest[0].is_empty() {
            let g = self.op.param_vjp(m, inputs[0], w);
            rest[0][0] += g[0];
            rest[0][1] += g[1];
        }
    }

    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let m = model(inputs[1]);
        let u = inputs[0];
        match (tangents[0].is_empty(), tangents[1].is_empty()) {
            (true, true) => out_tan.fill(0.0),
            (false, _) => self.op.jvp_unchecked(m, u, tangents[0], tangents[1], out_tan),
            (true, false) => {
                let s = &**self.op.stencil();
                let (wm, gm) = (self.op.wm(), self.op.gm());
                let df = |i: usize| m.diffusivity(wm[i], gm[i]);
                let (vw, vr) = (tangents[1][0], tangents[1][1]);
                let vf = |i: usize| {
                    let (dd, dr) = m.diffusivity_derivatives(wm[i], gm[i]);
                    dd * vw + dr * vr
                };
                for_rows(self.op.parallelism(), out_tan, |i| row_jvp_d(s, &df, &vf, u, i));
            }
        }
    }
}

/// `A(D) u` with the per-cell diffusivity as the second operand: a network (or any graph
/// expression) can predict the D map and receive its gradient.
#[derive(Debug, Clone)]
pub struct FieldDiffusionOp {
    op: FieldDiffusion,
}

impl FieldDiffusionOp {
    /// Wraps a field-parameterized operator.
    pub fn new(op: FieldDiffusion) -> Self {
        FieldDiffusionOp { op }
    }
}

impl CustomOp for FieldDiffusionOp {
    fn name(&self) -> &str {
        "mesh.field_diffusion"
    }

    fn output_shape(&self, input_shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        check_shapes(self.name(), input_shapes, &[self.op.n(), self.op.n()])
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        self.op.apply_unchecked(inputs[1], inputs[0], out);
    }

    fn vjp(&self, inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let (u, d) = (inputs[0], inputs[1]);
        let s = &**self.op.stencil();
        let df = |i: usize| d[i];
        let par = self.op.parallelism();
        let (cot_u, rest) = in_cot.split_at_mut(1);
        if !cot_u[0].is_empty() {
            add_rows(par, cot_u[0], |i| row_apply(s, &df, w, i));
        }
        if !rest[0].is_empty() {
            add_rows(par, rest[0], |k| row_vjp_d(s, &df, u, w, k));
        }
    }

    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let (u, d) = (inputs[0], inputs[1]);
        match (tangents[0].is_empty(), tangents[1].is_empty()) {
            (true, true) => out_tan.fill(0.0),
            (false, _) => self.op.jvp_unchecked(d, u, tangents[0], tangents[1], out_tan),
            (true, false) => {
                let s = &**self.op.stencil();
                let df = |i: usize| d[i];
                let vd = tangents[1];
                let vf = |i: usize| vd[i];
                for_rows(self.op.parallelism(), out_tan, |i| row_jvp_d(s, &df, &vf, u, i));
            }
        }
    }
}

impl DiffusionOperator {
    /// Records `A u` into `g` as a [`DiffusionOp`] node.
    pub fn record(&self, g: &mut Graph, u: Var) -> neurohybrid_autodiff::Result<Var> {
        g.custom(Arc::new(DiffusionOp::new(self.clone())), &[u])
    }
}

impl TissueDiffusion {
    /// Records `A(D_w, R) u` into `g` as a [`TissueDiffusionOp`] node (`p = [D_w, R]`).
    pub fn record(&self, g: &mut Graph, u: Var, p: Var) -> neurohybrid_autodiff::Result<Var> {
        g.custom(Arc::new(TissueDiffusionOp::new(self.clone())), &[u, p])
    }
}

impl FieldDiffusion {
    /// Records `A(D) u` into `g` as a [`FieldDiffusionOp`] node.
    pub fn record(&self, g: &mut Graph, u: Var, d: Var) -> neurohybrid_autodiff::Result<Var> {
        g.custom(Arc::new(FieldDiffusionOp::new(self.clone())), &[u, d])
    }
}
