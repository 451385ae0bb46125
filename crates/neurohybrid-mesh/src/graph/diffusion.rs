//! Network diffusion `dx/dt = −β L x` (Raj et al. 2012) as an operator, an `OdeSystem`
//! building block and an autodiff op.
//!
//! The interface mirrors the grid operators of `crate::fv` (`TissueDiffusion`): checked
//! `apply` / `vjp` / `jvp` methods returning [`crate::Result`], the Jacobian pattern handed
//! over by [`GraphDiffusion::sparsity`], an assembled CSR matrix, unchecked trait impls of
//! `neurohybrid-system` (`p = [β]`, lengths are checked once by the solver), and
//! [`GraphDiffusionOp`] to record the operator into an autodiff graph.
//!
//! Sign convention as the grid operators: the operator is `A(β) = −β L`, negative
//! semi-definite for `β ≥ 0`, with `1ᵀ A = 0` for the combinatorial Laplacian (the total
//! `Σ x` is conserved). `L` is symmetric, so `Aᵀ w = A w`: the VJP in the state is the same
//! sparse product as the JVP.

use std::sync::Arc;

use nalgebra_sparse::CsrMatrix;
use nalgebra_sparse::pattern::SparsityPattern;
use neurohybrid_autodiff::{AutodiffError, CustomOp};
use neurohybrid_system::{Jacobian, Jvp, OdeSystem, Vjp};

use super::{Graph, LaplacianKind};
use crate::error::{MeshError, Result};

/// The operator `A(β) = −β L` of a fixed graph; `β` (1/time, e.g. 1/yr) is its one parameter.
#[derive(Debug, Clone)]
pub struct GraphDiffusion {
    laplacian: Arc<CsrMatrix<f64>>,
    kind: LaplacianKind,
}

impl GraphDiffusion {
    /// The diffusion operator of `graph` with the given Laplacian.
    pub fn new(graph: &Graph, kind: LaplacianKind) -> Self {
        Self { laplacian: Arc::new(graph.laplacian(kind)), kind }
    }

    /// Number of states (nodes).
    pub fn n(&self) -> usize {
        self.laplacian.nrows()
    }

    /// The Laplacian kind used.
    pub fn kind(&self) -> LaplacianKind {
        self.kind
    }

    /// The Laplacian `L` (CSR, pattern = the graph's edges plus the diagonal).
    pub fn laplacian(&self) -> &CsrMatrix<f64> {
        &self.laplacian
    }

    /// The structural nonzeros of `∂f/∂x = −β L` (the Laplacian's pattern).
    pub fn sparsity(&self) -> &SparsityPattern {
        self.laplacian.pattern()
    }

    /// The assembled matrix `−β L`.
    pub fn matrix(&self, beta: f64) -> CsrMatrix<f64> {
        let mut m = (*self.laplacian).clone();
        m.values_mut().iter_mut().for_each(|v| *v *= -beta);
        m
    }

    fn check(&self, what: &'static str, len: usize) -> Result<()> {
        if len == self.n() {
            Ok(())
        } else {
            Err(MeshError::ShapeMismatch { what, expected: self.n(), got: len })
        }
    }

    fn check_beta(beta: f64) -> Result<()> {
        if beta.is_finite() {
            Ok(())
        } else {
            Err(MeshError::InvalidParameter { name: "beta", value: beta, reason: "not finite" })
        }
    }

    /// `out = −β L u`.
    ///
    /// # Errors
    /// [`MeshError::ShapeMismatch`] for wrong lengths, [`MeshError::InvalidParameter`] for a
    /// non-finite `β`.
    pub fn apply(&self, beta: f64, u: &[f64], out: &mut [f64]) -> Result<()> {
        Self::check_beta(beta)?;
        self.check("u", u.len())?;
        self.check("out", out.len())?;
        self.scaled_apply(-beta, u, out);
        Ok(())
    }

    /// `w_u = Aᵀ w = −β L w` and `w_p = [wᵀ ∂(Au)/∂β] = [−wᵀ L u]`; pass an empty `w_u` or
    /// `w_p` to skip that part.
    ///
    /// # Errors
    /// As [`GraphDiffusion::apply`] (`w_p` must be empty or of length 1).
    pub fn vjp(
        &self,
        beta: f64,
        u: &[f64],
        w: &[f64],
        w_u: &mut [f64],
        w_p: &mut [f64],
    ) -> Result<()> {
        Self::check_beta(beta)?;
        self.check("u", u.len())?;
        self.check("w", w.len())?;
        if !w_u.is_empty() {
            self.check("w_u", w_u.len())?;
        }
        if w_p.len() > 1 {
            return Err(MeshError::ShapeMismatch { what: "w_p", expected: 1, got: w_p.len() });
        }
        self.vjp_unchecked(beta, u, w, w_u, w_p);
        Ok(())
    }

    /// `out = −β L v_u − v_β L u`; an empty `v_p` is a zero tangent.
    ///
    /// # Errors
    /// As [`GraphDiffusion::apply`] (`v_p` must be empty or of length 1).
    pub fn jvp(
        &self,
        beta: f64,
        u: &[f64],
        v_u: &[f64],
        v_p: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        Self::check_beta(beta)?;
        self.check("u", u.len())?;
        self.check("v_u", v_u.len())?;
        self.check("out", out.len())?;
        if v_p.len() > 1 {
            return Err(MeshError::ShapeMismatch { what: "v_p", expected: 1, got: v_p.len() });
        }
        self.jvp_unchecked(beta, u, v_u, v_p, out);
        Ok(())
    }

    /// `out = scale · L x` (lengths checked by the callers).
    fn scaled_apply(&self, scale: f64, x: &[f64], out: &mut [f64]) {
        let (offsets, cols, vals) = self.laplacian.csr_data();
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for k in offsets[i]..offsets[i + 1] {
                acc += vals[k] * x[cols[k]];
            }
            *o = scale * acc;
        }
    }

    /// `(L x)_i`.
    fn row(&self, x: &[f64], i: usize) -> f64 {
        let (offsets, cols, vals) = self.laplacian.csr_data();
        (offsets[i]..offsets[i + 1]).map(|k| vals[k] * x[cols[k]]).sum()
    }

    fn vjp_unchecked(&self, beta: f64, u: &[f64], w: &[f64], w_u: &mut [f64], w_p: &mut [f64]) {
        if !w_u.is_empty() {
            self.scaled_apply(-beta, w, w_u);
        }
        if let Some(wb) = w_p.first_mut() {
            // Recomputed rather than taken from w_u / β: β may be 0.
            *wb = -(0..self.n()).map(|i| w[i] * self.row(u, i)).sum::<f64>();
        }
    }

    fn jvp_unchecked(&self, beta: f64, u: &[f64], v_u: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.scaled_apply(-beta, v_u, out);
        if let Some(&vb) = v_p.first().filter(|v| **v != 0.0) {
            for (i, o) in out.iter_mut().enumerate() {
                *o -= vb * self.row(u, i);
            }
        }
    }
}

impl OdeSystem for GraphDiffusion {
    fn n_states(&self) -> usize {
        self.n()
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.scaled_apply(-p[0], y, dy);
    }
}

impl Vjp for GraphDiffusion {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.vjp_unchecked(p[0], y, w, w_y, w_p);
    }
}

impl Jvp for GraphDiffusion {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.jvp_unchecked(p[0], y, v_y, v_p, out);
    }
}

impl Jacobian for GraphDiffusion {
    fn sparsity(&self) -> &SparsityPattern {
        GraphDiffusion::sparsity(self)
    }
    fn jacobian(&self, _t: f64, _y: &[f64], p: &[f64], out: &mut CsrMatrix<f64>) {
        for (v, l) in out.values_mut().iter_mut().zip(self.laplacian.values()) {
            *v = -p[0] * l;
        }
    }
}

/// `−β L u` as an autodiff node: operands `u [n]` and `p = [β]`, gradients to both.
///
/// Replays cannot fail, so `β` is not validated at replay time.
#[derive(Debug, Clone)]
pub struct GraphDiffusionOp {
    op: GraphDiffusion,
}

impl GraphDiffusionOp {
    /// Wraps an operator (cheap: the Laplacian is shared).
    pub fn new(op: GraphDiffusion) -> Self {
        Self { op }
    }
}

impl CustomOp for GraphDiffusionOp {
    fn name(&self) -> &str {
        "mesh.graph_diffusion"
    }

    fn output_shape(&self, input_shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        let n = self.op.n();
        match input_shapes {
            [u, p] if *u == [n] && *p == [1] => Ok(vec![n]),
            _ => Err(AutodiffError::Custom {
                op: self.name().to_string(),
                message: format!("expected operands u [{n}] and p [1], got {input_shapes:?}"),
            }),
        }
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        self.op.scaled_apply(-inputs[1][0], inputs[0], out);
    }

    fn vjp(&self, inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let (u, beta) = (inputs[0], inputs[1][0]);
        // Accumulate (+=), as the CustomOp contract requires.
        if !in_cot[0].is_empty() {
            for (i, c) in in_cot[0].iter_mut().enumerate() {
                *c -= beta * self.op.row(w, i);
            }
        }
        if !in_cot[1].is_empty() {
            in_cot[1][0] -= (0..self.op.n()).map(|i| w[i] * self.op.row(u, i)).sum::<f64>();
        }
    }

    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let (u, beta) = (inputs[0], inputs[1][0]);
        if tangents[0].is_empty() {
            out_tan.fill(0.0);
        } else {
            self.op.scaled_apply(-beta, tangents[0], out_tan);
        }
        if let Some(&vb) = tangents[1].first() {
            for (i, o) in out_tan.iter_mut().enumerate() {
                *o -= vb * self.op.row(u, i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path3() -> Graph {
        Graph::from_edges(3, &[(0, 1, 1.0), (1, 2, 2.0)]).unwrap()
    }

    #[test]
    fn derivatives_match_finite_differences_and_each_other() {
        let op = GraphDiffusion::new(&path3(), LaplacianKind::Combinatorial);
        let (y, p) = ([0.3, -1.0, 2.0], [0.7]);
        let (v, vp) = ([0.1, 0.2, -0.4], [0.5]);
        let mut jv = [0.0; 3];
        op.jvp(p[0], &y, &v, &vp, &mut jv).unwrap();
        let eps = 1e-6;
        let shift = |s: f64| {
            let yy: Vec<f64> = y.iter().zip(&v).map(|(a, b)| a + s * b).collect();
            let mut out = [0.0; 3];
            op.apply(p[0] + s * vp[0], &yy, &mut out).unwrap();
            out
        };
        let (fp, fm) = (shift(eps), shift(-eps));
        for i in 0..3 {
            assert!((jv[i] - (fp[i] - fm[i]) / (2.0 * eps)).abs() < 1e-8);
        }
        // ⟨w, J v⟩ = ⟨Jᵀ w, v⟩ in state and parameter.
        let w = [1.0, -0.5, 0.25];
        let (mut wy, mut wp) = ([0.0; 3], [0.0]);
        op.vjp(p[0], &y, &w, &mut wy, &mut wp).unwrap();
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = wy.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() + wp[0] * vp[0];
        assert!((lhs - rhs).abs() < 1e-12);
    }

    #[test]
    fn wrong_lengths_and_bad_beta_are_errors() {
        let op = GraphDiffusion::new(&path3(), LaplacianKind::Combinatorial);
        let mut out = [0.0; 3];
        assert!(matches!(
            op.apply(1.0, &[0.0; 2], &mut out),
            Err(MeshError::ShapeMismatch { what: "u", expected: 3, got: 2 })
        ));
        assert!(matches!(
            op.apply(f64::NAN, &[0.0; 3], &mut out),
            Err(MeshError::InvalidParameter { name: "beta", .. })
        ));
        assert!(op.vjp(1.0, &[0.0; 3], &[0.0; 3], &mut [], &mut [0.0; 2]).is_err());
    }
}
