//! Per-instruction dispatch of the three replays. Every arm works on regions of the
//! workspace's flat buffers (see the buffer plan in `tape.rs`) and allocates nothing.

use crate::ops::Op;
use crate::ops::custom::MAX_CUSTOM_OPERANDS;
use crate::ops::elementwise::{binary_fwd, binary_jvp, binary_vjp_a, binary_vjp_b};
use crate::ops::elementwise::{unary_fwd, unary_jvp, unary_vjp};
use crate::ops::linalg::{
    csr_mul, csr_mul_t_add, csr_values_vjp, gemm_nn, gemm_nt_add, gemm_tn_add,
};
use crate::ops::reduce::{sum_axis_fwd, sum_axis_vjp};
use crate::tape::{TNode, Tape, Workspace};

/// The region of `node` in a buffer laid out by the tape's plan.
#[inline]
fn region<'a>(buf: &'a [f64], node: &TNode) -> &'a [f64] {
    &buf[node.off..node.off + node.len]
}

#[inline]
fn region_mut<'a>(buf: &'a mut [f64], node: &TNode) -> &'a mut [f64] {
    &mut buf[node.off..node.off + node.len]
}

#[inline]
fn add_into(dst: &mut [f64], src: &[f64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

impl Tape {
    pub(crate) fn exec_forward(&self, n: usize, vals: &mut [f64]) {
        let nodes = &self.nodes;
        let node = &nodes[n];
        let (lo, hi) = vals.split_at_mut(node.off);
        let lo: &[f64] = lo;
        let y = &mut hi[..node.len];
        let v = |i: usize| region(lo, &nodes[i]);
        match &node.op {
            Op::Input(_) | Op::Constant(_) | Op::Reshape(_) => {}
            Op::Unary(u, a) => unary_fwd(*u, v(*a), y),
            Op::Binary(o, a, b, g) => binary_fwd(*o, g, v(*a), v(*b), y),
            &Op::MatMul { a, b, m, k, n } => gemm_nn(false, v(a), v(b), y, m, k, n),
            Op::Spmv { mat, x, k } => {
                csr_mul(false, mat.row_offsets(), mat.col_indices(), mat.values(), v(*x), *k, y)
            }
            Op::SpmvValues { pattern: p, values, x, k } => {
                csr_mul(false, p.row_offsets(), p.col_indices(), v(*values), v(*x), *k, y)
            }
            Op::Sum(a) => y[0] = v(*a).iter().sum(),
            Op::Mean(a) => y[0] = v(*a).iter().sum::<f64>() / nodes[*a].len as f64,
            Op::Dot(a, b) => y[0] = v(*a).iter().zip(v(*b)).map(|(p, q)| p * q).sum(),
            &Op::SumAxis { a, outer, len, inner } => sum_axis_fwd(v(a), outer, len, inner, y),
            &Op::Slice { a, start } => y.copy_from_slice(&v(a)[start..start + node.len]),
            Op::Concat(args) => {
                let mut off = 0;
                for &a in args {
                    let part = v(a);
                    y[off..off + part.len()].copy_from_slice(part);
                    off += part.len();
                }
            }
            Op::Gather { a, idx } => {
                let x = v(*a);
                for (yi, &j) in y.iter_mut().zip(idx.iter()) {
                    *yi = x[j];
                }
            }
            Op::ScatterAdd { a, idx } => {
                y.fill(0.0);
                for (&xi, &j) in v(*a).iter().zip(idx.iter()) {
                    y[j] += xi;
                }
            }
            Op::Custom { op, args } => {
                let mut ins: [&[f64]; MAX_CUSTOM_OPERANDS] = [&[]; MAX_CUSTOM_OPERANDS];
                for (slot, &a) in ins.iter_mut().zip(args) {
                    *slot = v(a);
                }
                op.forward(&ins[..args.len()], y);
            }
        }
    }

    pub(crate) fn exec_vjp(&self, n: usize, ws: &mut Workspace) {
        let nodes = &self.nodes;
        let node = &nodes[n];
        let need = &ws.need;
        let vals = &ws.vals;
        let (lo, hi) = ws.cots.split_at_mut(node.off);
        let w: &[f64] = &hi[..node.len];
        let v = |i: usize| region(vals, &nodes[i]);
        // `c(i)` re-borrows the cotangent region of operand `i` (operands precede `n`).
        macro_rules! c {
            ($i:expr) => {
                region_mut(lo, &nodes[$i])
            };
        }
        match &node.op {
            Op::Input(_) | Op::Constant(_) | Op::Reshape(_) => {}
            &Op::Unary(u, a) => {
                if need[a] {
                    unary_vjp(u, v(a), v(n), w, c!(a));
                }
            }
            &Op::Binary(o, a, b, ref g) => {
                if need[a] {
                    binary_vjp_a(o, g, v(b), w, c!(a));
                }
                if need[b] {
                    binary_vjp_b(o, g, v(a), v(b), v(n), w, c!(b));
                }
            }
            &Op::MatMul { a, b, m, k, n: cols } => {
                if need[a] {
                    gemm_nt_add(w, v(b), c!(a), m, cols, k);
                }
                if need[b] {
                    gemm_tn_add(v(a), w, c!(b), m, k, cols);
                }
            }
            Op::Spmv { mat, x, k } => {
                if need[*x] {
                    csr_mul_t_add(
                        mat.row_offsets(),
                        mat.col_indices(),
                        mat.values(),
                        w,
                        *k,
                        c!(*x),
                    );
                }
            }
            &Op::SpmvValues { ref pattern, values, x, k } => {
                let (offs, cols) = (pattern.row_offsets(), pattern.col_indices());
                if need[values] {
                    csr_values_vjp(offs, cols, w, v(x), k, c!(values));
                }
                if need[x] {
                    csr_mul_t_add(offs, cols, v(values), w, k, c!(x));
                }
            }
            &Op::Sum(a) => c!(a).iter_mut().for_each(|ci| *ci += w[0]),
            &Op::Mean(a) => {
                let g = w[0] / nodes[a].len as f64;
                c!(a).iter_mut().for_each(|ci| *ci += g);
            }
            &Op::Dot(a, b) => {
                if need[a] {
                    c!(a).iter_mut().zip(v(b)).for_each(|(ci, &bi)| *ci += w[0] * bi);
                }
                if need[b] {
                    c!(b).iter_mut().zip(v(a)).for_each(|(ci, &ai)| *ci += w[0] * ai);
                }
            }
            &Op::SumAxis { a, outer, len, inner } => sum_axis_vjp(w, outer, len, inner, c!(a)),
            &Op::Slice { a, start } => add_into(&mut c!(a)[start..start + node.len], w),
            Op::Concat(args) => {
                let mut off = 0;
                for &a in args {
                    let len = nodes[a].len;
                    if need[a] {
                        add_into(c!(a), &w[off..off + len]);
                    }
                    off += len;
                }
            }
            Op::Gather { a, idx } => {
                let ca = c!(*a);
                for (&wi, &j) in w.iter().zip(idx.iter()) {
                    ca[j] += wi;
                }
            }
            Op::ScatterAdd { a, idx } => {
                for (ci, &j) in c!(*a).iter_mut().zip(idx.iter()) {
                    *ci += w[j];
                }
            }
            Op::Custom { op, args } => {
                // The op writes into private scratch regions, added into the real cotangents
                // afterwards: operands may repeat or alias (reshape), and `&mut` slices may not.
                let mut ins: [&[f64]; MAX_CUSTOM_OPERANDS] = [&[]; MAX_CUSTOM_OPERANDS];
                let mut slots: [&mut [f64]; MAX_CUSTOM_OPERANDS] = Default::default();
                let mut rest: &mut [f64] = &mut ws.scratch;
                for (i, &a) in args.iter().enumerate() {
                    ins[i] = v(a);
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(nodes[a].len);
                    rest = tail;
                    if need[a] {
                        head.fill(0.0);
                        slots[i] = head;
                    }
                }
                op.vjp(&ins[..args.len()], v(n), w, &mut slots[..args.len()]);
                let mut off = 0;
                for &a in args {
                    let len = nodes[a].len;
                    if need[a] {
                        add_into(c!(a), &ws.scratch[off..off + len]);
                    }
                    off += len;
                }
            }
        }
    }

    pub(crate) fn exec_jvp(&self, n: usize, ws: &mut Workspace) {
        let nodes = &self.nodes;
        let node = &nodes[n];
        let active = &ws.active;
        let vals = &ws.vals;
        let (lo, hi) = ws.tans.split_at_mut(node.off);
        let lo: &[f64] = lo;
        let ty = &mut hi[..node.len];
        let v = |i: usize| region(vals, &nodes[i]);
        let t = |i: usize| region(lo, &nodes[i]);
        match &node.op {
            Op::Input(_) | Op::Constant(_) | Op::Reshape(_) => {}
            &Op::Unary(u, a) => unary_jvp(u, v(a), v(n), t(a), ty),
            &Op::Binary(o, a, b, ref g) => binary_jvp(o, g, v(a), v(b), v(n), t(a), t(b), ty),
            &Op::MatMul { a, b, m, k, n: cols } => {
                // d(AB) = dA·B + A·dB; a side whose tangent is zero is skipped.
                let mut written = false;
                if active[a] {
                    gemm_nn(false, t(a), v(b), ty, m, k, cols);
                    written = true;
                }
                if active[b] {
                    gemm_nn(written, v(a), t(b), ty, m, k, cols);
                }
            }
            Op::Spmv { mat, x, k } => {
                csr_mul(false, mat.row_offsets(), mat.col_indices(), mat.values(), t(*x), *k, ty)
            }
            &Op::SpmvValues { ref pattern, values, x, k } => {
                let (offs, cols) = (pattern.row_offsets(), pattern.col_indices());
                let mut written = false;
                if active[x] {
                    csr_mul(false, offs, cols, v(values), t(x), k, ty);
                    written = true;
                }
                if active[values] {
                    csr_mul(written, offs, cols, t(values), v(x), k, ty);
                }
            }
            &Op::Sum(a) => ty[0] = t(a).iter().sum(),
            &Op::Mean(a) => ty[0] = t(a).iter().sum::<f64>() / nodes[a].len as f64,
            &Op::Dot(a, b) => {
                ty[0] = v(a)
                    .iter()
                    .zip(t(b))
                    .zip(v(b).iter().zip(t(a)))
                    .map(|((p, tq), (q, tp))| p * tq + q * tp)
                    .sum()
            }
            &Op::SumAxis { a, outer, len, inner } => sum_axis_fwd(t(a), outer, len, inner, ty),
            &Op::Slice { a, start } => ty.copy_from_slice(&t(a)[start..start + node.len]),
            Op::Concat(args) => {
                let mut off = 0;
                for &a in args {
                    let part = t(a);
                    ty[off..off + part.len()].copy_from_slice(part);
                    off += part.len();
                }
            }
            Op::Gather { a, idx } => {
                let x = t(*a);
                for (yi, &j) in ty.iter_mut().zip(idx.iter()) {
                    *yi = x[j];
                }
            }
            Op::ScatterAdd { a, idx } => {
                ty.fill(0.0);
                for (&xi, &j) in t(*a).iter().zip(idx.iter()) {
                    ty[j] += xi;
                }
            }
            Op::Custom { op, args } => {
                let mut ins: [&[f64]; MAX_CUSTOM_OPERANDS] = [&[]; MAX_CUSTOM_OPERANDS];
                let mut tan: [&[f64]; MAX_CUSTOM_OPERANDS] = [&[]; MAX_CUSTOM_OPERANDS];
                for (i, &a) in args.iter().enumerate() {
                    ins[i] = v(a);
                    if active[a] {
                        tan[i] = t(a);
                    }
                }
                op.jvp(&ins[..args.len()], v(n), &tan[..args.len()], ty);
            }
        }
    }
}
