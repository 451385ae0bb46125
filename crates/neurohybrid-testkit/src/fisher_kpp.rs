//! A 2D reaction–diffusion reference system on the finite-volume operator of
//! `neurohybrid-mesh`, shared by the sensitivity tests, the `gradients` validation suite and
//! anything else that needs a stiff-ish PDE with exact VJP, JVP and Jacobian.

use neurohybrid_mesh::{DiffusionOperator, Grid};
use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp, entry_index};
use std::cell::RefCell;

/// 2D Fisher–KPP `u' = D·Δu + ρ·u(1 − u)` with no-flux boundaries, `p = [D, ρ]`, on the
/// finite-volume operator of `neurohybrid-mesh` (unit diffusivity, scaled by `D`).
#[derive(Debug, Clone)]
pub struct FisherKpp {
    op: DiffusionOperator,
    diag: Vec<usize>,
    /// Scratch for `A u` in the parameter part of the JVP, so a JVP does not allocate.
    au: RefCell<Vec<f64>>,
}

impl FisherKpp {
    /// On a full `side × side` grid with 1 mm spacing.
    pub fn new(side: usize) -> Self {
        let grid = Grid::full_2d([side, side], [1.0, 1.0]).expect("a valid grid");
        let n = grid.n_active();
        let op = DiffusionOperator::new(&grid, vec![1.0; n]).expect("unit diffusivity is valid");
        let diag = (0..n)
            .map(|i| {
                entry_index(Jacobian::sparsity(&op), i, i).expect("the stencil has a diagonal")
            })
            .collect();
        Self { op, diag, au: RefCell::new(vec![0.0; n]) }
    }

    /// A Gaussian seed of width 3 mm at the centre of the grid (peak 0.5).
    pub fn seed(side: usize) -> Vec<f64> {
        let c = (side as f64 - 1.0) / 2.0;
        let mut u = Vec::with_capacity(side * side);
        for j in 0..side {
            for i in 0..side {
                let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2);
                u.push(0.5 * (-r2 / 18.0).exp());
            }
        }
        u
    }
}

impl OdeSystem for FisherKpp {
    fn n_states(&self) -> usize {
        self.op.n()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64]) {
        self.op.apply(u, du).expect("lengths checked by the solver");
        for (d, &u) in du.iter_mut().zip(u) {
            *d = p[0] * *d + p[1] * u * (1.0 - u);
        }
    }
}

impl Vjp for FisherKpp {
    fn vjp(&self, _t: f64, u: &[f64], p: &[f64], w: &[f64], w_u: &mut [f64], w_p: &mut [f64]) {
        // A is symmetric (uniform cells), so wᵀ(D A) = D (A w)ᵀ.
        self.op.vjp(w, w_u).expect("lengths checked by the solver");
        if !w_p.is_empty() {
            w_p[0] = w_u.iter().zip(u).map(|(a, b)| a * b).sum(); // wᵀ A u = (A w)ᵀ u
            w_p[1] = w.iter().zip(u).map(|(w, u)| w * u * (1.0 - u)).sum();
        }
        for ((g, &w), &u) in w_u.iter_mut().zip(w).zip(u) {
            *g = p[0] * *g + p[1] * (1.0 - 2.0 * u) * w;
        }
    }
}

impl Jvp for FisherKpp {
    fn jvp(&self, _t: f64, u: &[f64], p: &[f64], v_u: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.op.jvp(v_u, out).expect("lengths checked by the solver");
        for ((o, &v), &u) in out.iter_mut().zip(v_u).zip(u) {
            *o = p[0] * *o + p[1] * (1.0 - 2.0 * u) * v;
        }
        if let [dd, dr] = *v_p {
            let mut au = self.au.borrow_mut();
            self.op.apply(u, &mut au).expect("lengths checked by the solver");
            for ((o, a), &u) in out.iter_mut().zip(au.iter()).zip(u) {
                *o += dd * a + dr * u * (1.0 - u);
            }
        }
    }
}

impl Jacobian for FisherKpp {
    fn sparsity(&self) -> &SparsityPattern {
        Jacobian::sparsity(&self.op)
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], out: &mut CsrMatrix) {
        Jacobian::jacobian(&self.op, t, u, &[], out);
        let vals = out.values_mut();
        vals.iter_mut().for_each(|v| *v *= p[0]);
        for (i, &k) in self.diag.iter().enumerate() {
            vals[k] += p[1] * (1.0 - 2.0 * u[i]);
        }
    }
}
