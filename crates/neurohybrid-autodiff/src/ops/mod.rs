//! The op catalogue: one enum for all node kinds, and one module per op family holding the
//! family's builders (on [`Graph`](crate::Graph)) and its forward, reverse and tangent kernels.
//!
//! Kernels work on flat slices handed out by the replay loop in `tape.rs`; they never allocate.
//! Reverse kernels *accumulate* (`+=`) into operand cotangents, so an operand used twice (or
//! aliased by a reshape) simply receives both contributions.

use std::sync::Arc;

pub(crate) mod custom;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod index;
pub(crate) mod linalg;
pub(crate) mod reduce;
pub(crate) mod vmath;

use crate::Csr;
use custom::CustomOp;
use elementwise::{Binary, Geom, Unary};

/// A node's producer. Operands are node indices (graph indices while building, tape-local
/// indices after compilation).
#[derive(Clone)]
pub(crate) enum Op {
    /// The `k`-th declared input.
    Input(usize),
    /// Fixed data, copied into each workspace once.
    Constant(Arc<[f64]>),
    Unary(Unary, usize),
    Binary(Binary, usize, usize, Geom),
    /// `[m,k] x [k,n] -> [m,n]`.
    MatMul {
        a: usize,
        b: usize,
        m: usize,
        k: usize,
        n: usize,
    },
    /// Fused dense layer `act(x · W + b)` (`x: [m,k]`, `W: [k,n]`, `b: [n]`), made only by
    /// the compile-time peephole pass (`fused.rs`).
    Dense {
        x: usize,
        w: usize,
        b: Option<usize>,
        act: Option<Unary>,
        m: usize,
        k: usize,
        n: usize,
    },
    /// Constant CSR times `x` (`[ncols]` or `[ncols, k]`).
    Spmv {
        mat: Arc<Csr>,
        x: usize,
        k: usize,
    },
    /// CSR pattern with differentiable `values` times `x`.
    SpmvValues {
        pattern: Arc<Csr>,
        values: usize,
        x: usize,
        k: usize,
    },
    Sum(usize),
    Mean(usize),
    Dot(usize, usize),
    /// Sum over the middle axis of an `[outer, len, inner]` view.
    SumAxis {
        a: usize,
        outer: usize,
        len: usize,
        inner: usize,
    },
    /// Flat slice starting at `start` (length = the node's length).
    Slice {
        a: usize,
        start: usize,
    },
    Concat(Vec<usize>),
    /// Same data, new shape: shares its operand's buffers (no instruction at replay).
    Reshape(usize),
    Gather {
        a: usize,
        idx: Arc<[usize]>,
    },
    ScatterAdd {
        a: usize,
        idx: Arc<[usize]>,
    },
    Custom {
        op: Arc<dyn CustomOp>,
        args: Vec<usize>,
    },
}

impl Op {
    /// Calls `f` on every operand (with repetition), in the order the VJP kernels write their
    /// cotangents (`TNode::first` is indexed by this order).
    pub(crate) fn for_each_operand(&self, mut f: impl FnMut(usize)) {
        match self {
            Op::Input(_) | Op::Constant(_) => {}
            Op::Unary(_, a)
            | Op::Sum(a)
            | Op::Mean(a)
            | Op::SumAxis { a, .. }
            | Op::Slice { a, .. }
            | Op::Reshape(a)
            | Op::Gather { a, .. }
            | Op::ScatterAdd { a, .. }
            | Op::Spmv { x: a, .. } => f(*a),
            Op::Binary(_, a, b, _) | Op::MatMul { a, b, .. } | Op::Dot(a, b) => {
                f(*a);
                f(*b);
            }
            Op::SpmvValues { values, x, .. } => {
                f(*values);
                f(*x);
            }
            Op::Dense { x, w, b, .. } => {
                f(*x);
                f(*w);
                if let Some(b) = b {
                    f(*b);
                }
            }
            Op::Concat(args) | Op::Custom { args, .. } => args.iter().copied().for_each(f),
        }
    }

    /// The same op with every operand renamed through `map`.
    pub(crate) fn remap(&self, map: &[usize]) -> Op {
        let m = |i: &usize| map[*i];
        match self {
            Op::Input(k) => Op::Input(*k),
            Op::Constant(c) => Op::Constant(c.clone()),
            Op::Unary(u, a) => Op::Unary(*u, m(a)),
            Op::Binary(o, a, b, g) => Op::Binary(*o, m(a), m(b), *g),
            Op::MatMul { a, b, m: rows, k, n } => {
                Op::MatMul { a: m(a), b: m(b), m: *rows, k: *k, n: *n }
            }
            Op::Dense { x, w, b, act, m: rows, k, n } => Op::Dense {
                x: m(x),
                w: m(w),
                b: b.as_ref().map(m),
                act: *act,
                m: *rows,
                k: *k,
                n: *n,
            },
            Op::Spmv { mat, x, k } => Op::Spmv { mat: mat.clone(), x: m(x), k: *k },
            Op::SpmvValues { pattern, values, x, k } => {
                Op::SpmvValues { pattern: pattern.clone(), values: m(values), x: m(x), k: *k }
            }
            Op::Sum(a) => Op::Sum(m(a)),
            Op::Mean(a) => Op::Mean(m(a)),
            Op::Dot(a, b) => Op::Dot(m(a), m(b)),
            Op::SumAxis { a, outer, len, inner } => {
                Op::SumAxis { a: m(a), outer: *outer, len: *len, inner: *inner }
            }
            Op::Slice { a, start } => Op::Slice { a: m(a), start: *start },
            Op::Concat(args) => Op::Concat(args.iter().map(m).collect()),
            Op::Reshape(a) => Op::Reshape(m(a)),
            Op::Gather { a, idx } => Op::Gather { a: m(a), idx: idx.clone() },
            Op::ScatterAdd { a, idx } => Op::ScatterAdd { a: m(a), idx: idx.clone() },
            Op::Custom { op, args } => {
                Op::Custom { op: op.clone(), args: args.iter().map(m).collect() }
            }
        }
    }

    /// A short name for debugging output.
    pub(crate) fn name(&self) -> &str {
        match self {
            Op::Input(_) => "input",
            Op::Constant(_) => "constant",
            Op::Unary(u, _) => u.name(),
            Op::Binary(b, ..) => b.name(),
            Op::MatMul { .. } => "matmul",
            Op::Dense { act: None, .. } => "dense",
            Op::Dense { act: Some(Unary::Tanh), .. } => "dense_tanh",
            Op::Dense { act: Some(Unary::Sigmoid), .. } => "dense_sigmoid",
            Op::Dense { act: Some(_), .. } => "dense_relu",
            Op::Spmv { .. } => "spmv",
            Op::SpmvValues { .. } => "spmv_values",
            Op::Sum(_) => "sum",
            Op::Mean(_) => "mean",
            Op::Dot(..) => "dot",
            Op::SumAxis { .. } => "sum_axis",
            Op::Slice { .. } => "slice",
            Op::Concat(_) => "concat",
            Op::Reshape(_) => "reshape",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Custom { op, .. } => op.name(),
        }
    }
}
