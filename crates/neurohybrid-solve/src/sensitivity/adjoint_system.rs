//! The continuous adjoint ODEs as [`OdeSystem`]s, so that any stepper integrates them backward:
//! [`AdjointSystem`] (against an interpolated forward solution, with the transposed Jacobian
//! for implicit steppers) and [`BacksolveSystem`] (state and adjoint together).
//!
//! For `y' = f(t, y, p)` the adjoint equations are (Chen et al. 2018, "Neural Ordinary
//! Differential Equations", NeurIPS, eq. 4 and Algorithm 1; Cao, Li, Petzold & Serban 2003,
//! "Adjoint sensitivity analysis for differential-algebraic equations", SIAM J. Sci. Comput.
//! 24(3), eq. 2.2):
//!
//! ```text
//! λ' = −(∂f/∂y)ᵀ λ,    μ' = −(∂f/∂p)ᵀ λ,    integrated from t1 down to t0.
//! ```

use crate::dense::DenseOutput;
use neurohybrid_system::{
    CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp, entry_index, pattern_from_rows,
};
use std::cell::{OnceCell, RefCell};

/// The forward state `y(t)` on one piece of the forward solution: a dense output whose interval
/// holds no impulse, so its value at the piece's end is the pre-impulse state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trajectory<'a> {
    dense: &'a DenseOutput,
    lo: f64,
    hi: f64,
}

impl<'a> Trajectory<'a> {
    pub(crate) fn new(dense: &'a DenseOutput) -> Self {
        let (a, b) = dense.span().unwrap_or((0.0, 0.0));
        Self { dense, lo: a.min(b), hi: a.max(b) }
    }

    /// `y(t)`, with `t` clamped into the piece: a Rosenbrock stepper differences `∂f/∂t` a hair
    /// outside its step, and the interpolant's end value is the best value there.
    pub(crate) fn eval(&self, t: f64, out: &mut [f64]) {
        self.dense
            .eval(t.clamp(self.lo, self.hi), out)
            .expect("a piece's dense output covers its own (clamped) interval");
    }
}

/// The pattern of the adjoint Jacobian `[−(∂f/∂y)ᵀ 0; −(∂f/∂p)ᵀ 0]` and where each forward
/// Jacobian entry lands in it. Built once per gradient, on the first Jacobian request.
#[derive(Debug, Clone)]
pub(crate) struct TransposedPattern {
    pattern: SparsityPattern,
    /// `perm[k]`: slot in `pattern` of the forward Jacobian's `k`-th stored entry, transposed.
    perm: Vec<usize>,
    /// Slot of row `n`, column 0: start of the dense `−(∂f/∂p)ᵀ` rows (when `μ` is a state).
    p_rows: Option<usize>,
}

impl TransposedPattern {
    /// For `sys` with Jacobian pattern `J` (`n × n`). With `mu`, `m` parameter rows follow the
    /// `λ` rows, dense over the `λ` columns; the `μ` columns are empty (nothing depends on `μ`).
    fn new<S: Jacobian + ?Sized>(sys: &S, mu: bool) -> Self {
        let n = sys.n_states();
        let m_rows = if mu { sys.n_params() } else { 0 };
        let j = sys.sparsity();
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n + m_rows];
        for i in 0..n {
            for &c in j.lane(i) {
                rows[c].push(i); // (i, c) of J is (c, i) of Jᵀ
            }
        }
        rows.iter_mut().take(n).for_each(|r| r.sort_unstable());
        rows.iter_mut().skip(n).for_each(|r| *r = (0..n).collect());
        let pattern = pattern_from_rows(n + m_rows, &rows)
            .expect("the transpose of a valid pattern has sorted, unique, in-range columns");
        let mut perm = Vec::with_capacity(j.nnz());
        for i in 0..n {
            for &c in j.lane(i) {
                perm.push(entry_index(&pattern, c, i).expect("Jᵀ holds every transposed entry"));
            }
        }
        let p_rows = (m_rows > 0 && n > 0)
            .then(|| entry_index(&pattern, n, 0).expect("the μ rows are dense"));
        Self { pattern, perm, p_rows }
    }
}

/// The adjoint ODE against a stored forward solution: state `x = [λ; μ]` (interpolating
/// adjoint) or `x = [λ]` (quadrature adjoint), `λ' = −(∂f/∂y(t))ᵀλ`, `μ' = −(∂f/∂p)ᵀλ`, with
/// `y(t)` read from the forward dense output. One VJP per right-hand side.
///
/// It has no parameters of its own (the forward system's are held inside). Explicit steppers
/// integrate it as it is; implicit steppers use its [`Jacobian`] (when the forward system has a
/// Jacobian and a JVP): the transposed pattern `−(∂f/∂y)ᵀ`, filled from the forward Jacobian,
/// plus, with `μ`, the dense block `−(∂f/∂p)ᵀ` filled by one JVP per parameter. Exact rather
/// than dropped because Rosenbrock methods lose their order with an inexact Jacobian (Hairer &
/// Wanner II, §IV.7) and Newton converges in fewer iterations.
///
/// A gradient builds one per forward piece (a stretch of the solution between impulses or
/// checkpoints); the sensitivity methods' stepper bounds name this type.
pub struct AdjointSystem<'a, S: ?Sized> {
    sys: &'a S,
    p: &'a [f64],
    traj: Trajectory<'a>,
    with_mu: bool,
    pattern: &'a OnceCell<TransposedPattern>,
    scratch: RefCell<AdjScratch>,
}

impl<S: ?Sized> std::fmt::Debug for AdjointSystem<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdjointSystem").field("with_mu", &self.with_mu).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct AdjScratch {
    y: Vec<f64>,
    zeros: Vec<f64>,
    e_k: Vec<f64>,
    col: Vec<f64>,
    forward_jac: Option<CsrMatrix>,
}

impl<'a, S: Vjp + ?Sized> AdjointSystem<'a, S> {
    /// `pattern` is shared by the pieces of one gradient (filled on first use).
    pub(crate) fn new(
        sys: &'a S,
        p: &'a [f64],
        traj: Trajectory<'a>,
        with_mu: bool,
        pattern: &'a OnceCell<TransposedPattern>,
    ) -> Self {
        let scratch = AdjScratch { y: vec![0.0; sys.n_states()], ..AdjScratch::default() };
        Self { sys, p, traj, with_mu, pattern, scratch: RefCell::new(scratch) }
    }
}

impl<S: Vjp + ?Sized> OdeSystem for AdjointSystem<'_, S> {
    fn n_states(&self) -> usize {
        self.sys.n_states() + if self.with_mu { self.sys.n_params() } else { 0 }
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, t: f64, x: &[f64], _p: &[f64], dx: &mut [f64]) {
        let n = self.sys.n_states();
        let mut sc = self.scratch.borrow_mut();
        self.traj.eval(t, &mut sc.y);
        let (dl, dmu) = dx.split_at_mut(n);
        // An empty `w_p` skips the parameter cotangent when μ is not integrated (quadrature).
        let w_p: &mut [f64] = if self.with_mu { dmu } else { &mut [] };
        self.sys.vjp(t, &sc.y, self.p, &x[..n], dl, w_p);
        dx.iter_mut().for_each(|v| *v = -*v);
    }
}

impl<S: Vjp + Jvp + Jacobian + ?Sized> Jacobian for AdjointSystem<'_, S> {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern.get_or_init(|| TransposedPattern::new(self.sys, self.with_mu)).pattern
    }
    fn jacobian(&self, t: f64, _x: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        let tp = self.pattern.get_or_init(|| TransposedPattern::new(self.sys, self.with_mu));
        let (n, m) = (self.sys.n_states(), self.sys.n_params());
        let mut sc = self.scratch.borrow_mut();
        let sc = &mut *sc;
        self.traj.eval(t, &mut sc.y);
        let fj = sc.forward_jac.get_or_insert_with(|| self.sys.jacobian_matrix());
        self.sys.jacobian(t, &sc.y, self.p, fj);
        let vals = out.values_mut();
        for (k, &v) in fj.values().iter().enumerate() {
            vals[tp.perm[k]] = -v;
        }
        if let Some(start) = tp.p_rows {
            // Row k of (∂f/∂p)ᵀ is ∂f/∂p · e_k: a JVP with a zero state tangent.
            if sc.e_k.len() != m {
                (sc.zeros, sc.e_k, sc.col) = (vec![0.0; n], vec![0.0; m], vec![0.0; n]);
            }
            for k in 0..m {
                sc.e_k[k] = 1.0;
                self.sys.jvp(t, &sc.y, self.p, &sc.zeros, &sc.e_k, &mut sc.col);
                sc.e_k[k] = 0.0;
                let row = &mut vals[start + k * n..start + (k + 1) * n];
                row.iter_mut().zip(&sc.col).for_each(|(r, c)| *r = -c);
            }
        }
    }
}

/// The augmented backsolve ODE, state `x = [y; λ; μ]` (`2n + m`): `y' = f(t, y, p)`,
/// `λ' = −(∂f/∂y)ᵀλ`, `μ' = −(∂f/∂p)ᵀλ`, re-integrating the state backward alongside the
/// adjoint so nothing of the trajectory is stored (Chen et al. 2018, Algorithm 1). One
/// right-hand side and one VJP at the same point per evaluation (a `TapeSystem` reuses its
/// forward replay for the VJP). No Jacobian: backsolve is for small non-stiff ODEs.
pub struct BacksolveSystem<'a, S: ?Sized> {
    sys: &'a S,
    p: &'a [f64],
}

impl<S: ?Sized> std::fmt::Debug for BacksolveSystem<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BacksolveSystem").finish_non_exhaustive()
    }
}

impl<'a, S: ?Sized> BacksolveSystem<'a, S> {
    pub(crate) fn new(sys: &'a S, p: &'a [f64]) -> Self {
        Self { sys, p }
    }
}

impl<S: Vjp + ?Sized> OdeSystem for BacksolveSystem<'_, S> {
    fn n_states(&self) -> usize {
        2 * self.sys.n_states() + self.sys.n_params()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, t: f64, x: &[f64], _p: &[f64], dx: &mut [f64]) {
        let n = self.sys.n_states();
        let (y, lam) = (&x[..n], &x[n..2 * n]);
        let (dy, rest) = dx.split_at_mut(n);
        self.sys.rhs(t, y, self.p, dy);
        let (dl, dmu) = rest.split_at_mut(n);
        self.sys.vjp(t, y, self.p, lam, dl, dmu);
        rest.iter_mut().for_each(|v| *v = -*v);
    }
}
