//! Combinators: the sum of two systems, and the stiff/non-stiff split used by IMEX methods.
//!
//! Parameter convention: a composite's parameter vector is the concatenation of its parts'
//! (`[p_first; p_second]`), so each part keeps its own layout; use [`crate::ParamLayout::append`]
//! to name the combined vector. Scratch memory lives in `RefCell`s (allocated once at
//! construction; the Jacobian's on first use), so composites are `Send` but not `Sync`.

use crate::error::{Result, SystemError};
use crate::sparsity::{CsrMatrix, entry_index, pattern_union, zeros_with_pattern};
use crate::traits::{Jacobian, Jvp, OdeSystem, Vjp};
use nalgebra_sparse::pattern::SparsityPattern;
use std::cell::{OnceCell, RefCell};

/// `f(t, y, [p₁; p₂]) = f₁(t, y, p₁) + f₂(t, y, p₂)` — e.g. mechanistic physics plus a neural
/// residual (a universal differential equation).
#[derive(Debug)]
pub struct Sum<A, B> {
    first: A,
    second: B,
    scratch: RefCell<Vec<f64>>,
    jac: OnceCell<SumJacobian>,
}

#[derive(Debug)]
struct SumJacobian {
    pattern: SparsityPattern,
    /// Union slot of each value of the first (second) part's Jacobian.
    map_first: Vec<usize>,
    map_second: Vec<usize>,
    parts: RefCell<(CsrMatrix, CsrMatrix)>,
}

impl<A: Clone, B: Clone> Clone for Sum<A, B> {
    fn clone(&self) -> Self {
        // A fresh scratch: clones are meant for other threads.
        Self {
            first: self.first.clone(),
            second: self.second.clone(),
            scratch: RefCell::new(vec![0.0; self.scratch.borrow().len()]),
            jac: OnceCell::new(),
        }
    }
}

impl<A: OdeSystem, B: OdeSystem> Sum<A, B> {
    /// Sum two systems with the same state dimension.
    pub fn new(first: A, second: B) -> Result<Self> {
        let (l, r) = (first.n_states(), second.n_states());
        if l != r {
            return Err(SystemError::StateMismatch { combinator: "Sum", left: l, right: r });
        }
        Ok(Self { first, second, scratch: RefCell::new(vec![0.0; l]), jac: OnceCell::new() })
    }

    /// The first term.
    pub fn first(&self) -> &A {
        &self.first
    }

    /// The second term.
    pub fn second(&self) -> &B {
        &self.second
    }

    /// Split `p` into the parameters of the first and the second term.
    pub fn split_params<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64]) {
        p.split_at(self.first.n_params())
    }
}

/// Split a possibly empty "not needed" slice at `k`.
fn split_opt(s: &mut [f64], k: usize) -> (&mut [f64], &mut [f64]) {
    if s.is_empty() { (Default::default(), Default::default()) } else { s.split_at_mut(k) }
}

impl<A: OdeSystem, B: OdeSystem> OdeSystem for Sum<A, B> {
    fn n_states(&self) -> usize {
        self.first.n_states()
    }
    fn n_params(&self) -> usize {
        self.first.n_params() + self.second.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let (p1, p2) = self.split_params(p);
        self.first.rhs(t, y, p1, dy);
        let mut s = self.scratch.borrow_mut();
        self.second.rhs(t, y, p2, &mut s);
        dy.iter_mut().zip(s.iter()).for_each(|(d, s)| *d += s);
    }
}

impl<A: Vjp, B: Vjp> Vjp for Sum<A, B> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let (p1, p2) = self.split_params(p);
        let (wp1, wp2) = split_opt(w_p, self.first.n_params());
        self.first.vjp(t, y, p1, w, w_y, wp1);
        let mut s = self.scratch.borrow_mut();
        self.second.vjp(t, y, p2, w, &mut s, wp2);
        w_y.iter_mut().zip(s.iter()).for_each(|(d, s)| *d += s);
    }
}

impl<A: Jvp, B: Jvp> Jvp for Sum<A, B> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let (p1, p2) = self.split_params(p);
        let (vp1, vp2) =
            if v_p.is_empty() { (v_p, v_p) } else { v_p.split_at(self.first.n_params()) };
        self.first.jvp(t, y, p1, v_y, vp1, out);
        let mut s = self.scratch.borrow_mut();
        self.second.jvp(t, y, p2, v_y, vp2, &mut s);
        out.iter_mut().zip(s.iter()).for_each(|(d, s)| *d += s);
    }
}

impl<A: Jacobian, B: Jacobian> Sum<A, B> {
    fn jac(&self) -> &SumJacobian {
        self.jac.get_or_init(|| {
            let (pa, pb) = (self.first.sparsity(), self.second.sparsity());
            let pattern = pattern_union(pa, pb).expect("both parts are n x n Jacobian patterns");
            let map = |part: &SparsityPattern| -> Vec<usize> {
                (0..part.major_dim())
                    .flat_map(|i| part.lane(i).iter().map(move |&j| (i, j)))
                    .map(|(i, j)| entry_index(&pattern, i, j).expect("union contains the part"))
                    .collect()
            };
            let (map_first, map_second) = (map(pa), map(pb));
            let parts = RefCell::new((zeros_with_pattern(pa), zeros_with_pattern(pb)));
            SumJacobian { pattern, map_first, map_second, parts }
        })
    }
}

impl<A: Jacobian, B: Jacobian> Jacobian for Sum<A, B> {
    fn sparsity(&self) -> &SparsityPattern {
        &self.jac().pattern
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let jac = self.jac();
        let (p1, p2) = self.split_params(p);
        let mut parts = jac.parts.borrow_mut();
        let (ja, jb) = &mut *parts;
        self.first.jacobian(t, y, p1, ja);
        self.second.jacobian(t, y, p2, jb);
        let values = out.values_mut();
        values.fill(0.0);
        for (&slot, &v) in jac.map_first.iter().zip(ja.values()) {
            values[slot] += v;
        }
        for (&slot, &v) in jac.map_second.iter().zip(jb.values()) {
            values[slot] += v;
        }
    }
}

/// A right-hand side split as `f = f_stiff + f_nonstiff` for IMEX methods, which treat the
/// stiff part implicitly and the rest explicitly. As an [`OdeSystem`] it is their sum, so any
/// stepper can solve it; parameters are `[p_stiff; p_nonstiff]`.
#[derive(Debug, Clone)]
pub struct Split<S, N> {
    sum: Sum<S, N>,
}

impl<S: OdeSystem, N: OdeSystem> Split<S, N> {
    /// Split a system into its stiff and non-stiff parts (same state dimension).
    pub fn new(stiff: S, nonstiff: N) -> Result<Self> {
        let sum = Sum::new(stiff, nonstiff).map_err(|e| match e {
            SystemError::StateMismatch { left, right, .. } => {
                SystemError::StateMismatch { combinator: "Split", left, right }
            }
            other => other,
        })?;
        Ok(Self { sum })
    }

    /// The stiff part (treated implicitly).
    pub fn stiff(&self) -> &S {
        self.sum.first()
    }

    /// The non-stiff part (treated explicitly).
    pub fn nonstiff(&self) -> &N {
        self.sum.second()
    }

    /// Split `p` into `(p_stiff, p_nonstiff)`.
    pub fn split_params<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64]) {
        self.sum.split_params(p)
    }

    /// The combined system `f_stiff + f_nonstiff`.
    pub fn as_sum(&self) -> &Sum<S, N> {
        &self.sum
    }
}

impl<S: OdeSystem, N: OdeSystem> OdeSystem for Split<S, N> {
    fn n_states(&self) -> usize {
        self.sum.n_states()
    }
    fn n_params(&self) -> usize {
        self.sum.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.sum.rhs(t, y, p, dy)
    }
}

impl<S: Vjp, N: Vjp> Vjp for Split<S, N> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.sum.vjp(t, y, p, w, w_y, w_p)
    }
}

impl<S: Jvp, N: Jvp> Jvp for Split<S, N> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.sum.jvp(t, y, p, v_y, v_p, out)
    }
}

impl<S: Jacobian, N: Jacobian> Jacobian for Split<S, N> {
    fn sparsity(&self) -> &SparsityPattern {
        self.sum.sparsity()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        self.sum.jacobian(t, y, p, out)
    }
}
