//! The fused dense layer `act(x · W + b)`, formed by a peephole pass at compile time.
//!
//! The pass looks for `matmul → add(row-broadcast bias) → tanh | sigmoid | relu` (bias and
//! activation each optional, at least one present) where every intermediate has exactly one
//! consumer and is not an output, and replaces the chain by one instruction. Semantics and
//! derivative rules are those of the separate ops, in the same order of operations:
//!
//! - forward: `y = x·W` (faer or the small hand loop), then `y = act(y + b)` in one pass;
//! - VJP: `g = w ∘ act'(y)` from the stored output (`tanh' = 1 − y²`, no second
//!   transcendental), computed in place in the layer's own cotangent region (nobody reads it
//!   after this instruction), then `∂x = g Wᵀ`, `∂W = xᵀ g`, `∂b = Σ_rows g`;
//! - JVP: `ẏ = act'(y) ∘ (ẋ W + x Ẇ + ḃ)`.
//!
//! What it saves: two instructions, two `[m, n]` buffers (values, cotangents, tangents) and
//! their passes over memory per layer.

use crate::graph::{Graph, Node};
use crate::ops::Op;
use crate::ops::elementwise::{Binary, Unary};

/// The operands of a matched dense layer (graph indices) and the nodes it absorbs.
struct Match {
    op: Op,
    absorbed: [Option<usize>; 2],
}

impl Graph {
    /// The peephole pass over kept nodes: returns one replacement op per fused root and
    /// clears `keep` for the absorbed intermediates.
    pub(crate) fn fuse_dense(&self, keep: &mut [bool], outputs: &[usize]) -> Vec<Option<Op>> {
        let nodes = &self.nodes;
        let mut uses = vec![0usize; nodes.len()];
        for (i, node) in nodes.iter().enumerate() {
            if keep[i] {
                node.op.for_each_operand(|a| uses[a] += 1);
            }
        }
        for &o in outputs {
            // An output must stay materialised: count it as an extra use.
            uses[o] += 1;
        }
        let single = |i: usize| uses[i] == 1;
        let mut fused: Vec<Option<Op>> = vec![None; nodes.len()];
        let mut absorbed = vec![false; nodes.len()];
        // Activation roots first, so a bias add feeding an activation is absorbed by it.
        for i in 0..nodes.len() {
            if !keep[i] {
                continue;
            }
            if let Op::Unary(u, z) = nodes[i].op
                && u.deriv_needs_only_output()
                && single(z)
                && let Some(m) = dense_parts(nodes, z, Some(u), &single)
            {
                fused[i] = Some(m.op);
                for a in m.absorbed.into_iter().flatten() {
                    absorbed[a] = true;
                }
            }
        }
        // Then bias adds that no activation took.
        for i in 0..nodes.len() {
            if !keep[i] || absorbed[i] || fused[i].is_some() {
                continue;
            }
            if let Some(m) = bias_add(nodes, i, None, &single) {
                fused[i] = Some(m.op);
                for a in m.absorbed.into_iter().flatten() {
                    absorbed[a] = true;
                }
            }
        }
        for (k, a) in keep.iter_mut().zip(&absorbed) {
            *k &= !a;
        }
        fused
    }
}

/// `z` as `matmul + bias` or a bare `matmul`, with activation `act`.
fn dense_parts(
    nodes: &[Node],
    z: usize,
    act: Option<Unary>,
    single: &impl Fn(usize) -> bool,
) -> Option<Match> {
    if let Some(m) = bias_add(nodes, z, act, single) {
        return Some(Match { op: m.op, absorbed: [Some(z), m.absorbed[0]] });
    }
    if let Op::MatMul { a, b, m, k, n } = nodes[z].op {
        return Some(Match {
            op: Op::Dense { x: a, w: b, b: None, act, m, k, n },
            absorbed: [Some(z), None],
        });
    }
    None
}

/// Node `i` as `matmul(x, W) + b` with a row-broadcast `b: [n]` (either operand order) and a
/// single-use matmul; `absorbed[0]` is the matmul.
fn bias_add(
    nodes: &[Node],
    i: usize,
    act: Option<Unary>,
    single: &impl Fn(usize) -> bool,
) -> Option<Match> {
    let Op::Binary(Binary::Add, l, r, g) = nodes[i].op else { return None };
    let full = (g.cols, 1);
    let (z, bias) = if g.a == full && g.b == (0, 1) {
        (l, r)
    } else if g.b == full && g.a == (0, 1) {
        (r, l)
    } else {
        return None;
    };
    if !single(z) {
        return None;
    }
    let Op::MatMul { a, b, m, k, n } = nodes[z].op else { return None };
    Some(Match {
        op: Op::Dense { x: a, w: b, b: Some(bias), act, m, k, n },
        absorbed: [Some(z), None],
    })
}
