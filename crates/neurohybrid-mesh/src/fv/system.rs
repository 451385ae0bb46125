//! The diffusion operators as `neurohybrid-system` building blocks: `dy/dt = A(p) y`.
//!
//! | type | `n_params` | parameters |
//! |---|---|---|
//! | [`DiffusionOperator`] | 0 | — (D fixed) |
//! | [`AssembledDiffusion`] | 0 | — (D fixed) |
//! | [`TissueDiffusion`] | 2 | `[D_w, R]` |
//! | [`FieldDiffusion`] | `n` | the per-cell D |
//!
//! Every one hands its Jacobian pattern over (never guessed: DESIGN.md §7) and fills the
//! Jacobian values directly — the operator is linear in `y`, so `∂f/∂y = A(p)`. As the system
//! traits document, lengths are checked once when a solve starts, so these impls do not check
//! them again (a wrong length panics on indexing) and do not validate `p` (keep `D_w ≥ 0`,
//! `R > 0`).

use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp};

use super::assembled::{AssembledDiffusion, fill_values};
use super::matrix_free::{DiffusionOperator, FieldDiffusion, TissueDiffusion};
use crate::tissue::TissueModel;

fn model(p: &[f64]) -> TissueModel {
    TissueModel { d_w: p[0], r: p[1] }
}

impl OdeSystem for DiffusionOperator {
    fn n_states(&self) -> usize {
        self.n()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        self.apply_unchecked(y, dy);
    }
}

impl Vjp for DiffusionOperator {
    fn vjp(&self, _t: f64, _y: &[f64], _p: &[f64], w: &[f64], w_y: &mut [f64], _w_p: &mut [f64]) {
        self.apply_unchecked(w, w_y);
    }
}

impl Jvp for DiffusionOperator {
    fn jvp(&self, _t: f64, _y: &[f64], _p: &[f64], v_y: &[f64], _v_p: &[f64], out: &mut [f64]) {
        self.apply_unchecked(v_y, out);
    }
}

impl Jacobian for DiffusionOperator {
    fn sparsity(&self) -> &SparsityPattern {
        DiffusionOperator::sparsity(self)
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        let d = self.diffusivity();
        fill_values(self.stencil(), &|i| d[i], out.values_mut());
    }
}

impl OdeSystem for AssembledDiffusion {
    fn n_states(&self) -> usize {
        self.n()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        self.apply_unchecked(y, dy);
    }
}

impl Vjp for AssembledDiffusion {
    fn vjp(&self, _t: f64, _y: &[f64], _p: &[f64], w: &[f64], w_y: &mut [f64], _w_p: &mut [f64]) {
        self.vjp_unchecked(w, w_y);
    }
}

impl Jvp for AssembledDiffusion {
    fn jvp(&self, _t: f64, _y: &[f64], _p: &[f64], v_y: &[f64], _v_p: &[f64], out: &mut [f64]) {
        self.apply_unchecked(v_y, out);
    }
}

impl Jacobian for AssembledDiffusion {
    fn sparsity(&self) -> &SparsityPattern {
        AssembledDiffusion::sparsity(self)
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        out.values_mut().copy_from_slice(self.matrix().values());
    }
}

impl OdeSystem for TissueDiffusion {
    fn n_states(&self) -> usize {
        self.n()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.apply_unchecked(model(p), y, dy);
    }
}

impl Vjp for TissueDiffusion {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.vjp_unchecked(model(p), y, w, w_y, w_p);
    }
}

impl Jvp for TissueDiffusion {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.jvp_unchecked(model(p), y, v_y, v_p, out);
    }
}

impl Jacobian for TissueDiffusion {
    fn sparsity(&self) -> &SparsityPattern {
        TissueDiffusion::sparsity(self)
    }
    fn jacobian(&self, _t: f64, _y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let m = model(p);
        let (wm, gm) = (self.wm(), self.gm());
        fill_values(self.stencil(), &|i| m.diffusivity(wm[i], gm[i]), out.values_mut());
    }
}

impl OdeSystem for FieldDiffusion {
    fn n_states(&self) -> usize {
        self.n()
    }
    fn n_params(&self) -> usize {
        self.n()
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.apply_unchecked(p, y, dy);
    }
}

impl Vjp for FieldDiffusion {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        if !w_y.is_empty() {
            self.apply_unchecked(p, w, w_y);
        }
        if !w_p.is_empty() {
            self.vjp_d_unchecked(p, y, w, w_p);
        }
    }
}

impl Jvp for FieldDiffusion {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.jvp_unchecked(p, y, v_y, v_p, out);
    }
}

impl Jacobian for FieldDiffusion {
    fn sparsity(&self) -> &SparsityPattern {
        FieldDiffusion::sparsity(self)
    }
    fn jacobian(&self, _t: f64, _y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        fill_values(self.stencil(), &|i| p[i], out.values_mut());
    }
}
