//! Per-instruction dispatch of the three replays. Every arm works on regions of the
//! workspace's flat buffers (see the buffer plan in `tape.rs`) and allocates nothing.

use crate::ops::Op;
use crate::ops::custom::MAX_CUSTOM_OPERANDS;
use crate::ops::elementwise::{bias_act, mul_deriv_from_output, unary_fwd, unary_jvp, unary_vjp};
use crate::ops::elementwise::{binary_fwd, binary_jvp, binary_vjp_a, binary_vjp_b};
use crate::ops::linalg::{csr_mul, csr_mul_t_add, csr_values_vjp, gemm_nn, gemm_nt, gemm_tn};
use crate::ops::reduce::{sum_axis_fwd, sum_axis_vjp};
use crate::ops::vmath::multiversion;
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

/// `dst (=|+=) src`.
#[inline]
fn put(add: bool, dst: &mut [f64], src: &[f64]) {
    if add { add_into(dst, src) } else { dst.copy_from_slice(src) }
}

multiversion! {
    /// `cb[c] (=|+=) Σ_r g[r, c]` for `g: [rows, cb.len()]` (rows in order, as the broadcast
    /// add's own VJP sums them).
    fn col_sums(add: bool, g: &[f64], cb: &mut [f64]) {
        if !add {
            cb.fill(0.0);
        }
        if !cb.is_empty() {
            for row in g.chunks_exact(cb.len()) {
                for (c, &v) in cb.iter_mut().zip(row) { *c += v; }
            }
        }
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
            &Op::Dense { x, w, b, act, m, k, n } => {
                gemm_nn(false, v(x), v(w), y, m, k, n);
                bias_act(act, b.map(v), y);
            }
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
        let w: &mut [f64] = &mut hi[..node.len];
        let v = |i: usize| region(vals, &nodes[i]);
        // `add(s)`: operand slot `s` accumulates; otherwise this instruction is the first
        // writer of that cotangent region and overwrites it (see `compile`).
        let add = |s: usize| !node.first[s];
        // `c(i)` re-borrows the cotangent region of operand `i` (operands precede `n`);
        // `cz(i, s)` also zero-fills it when slot `s` is a first writer whose kernel can only
        // accumulate.
        macro_rules! c {
            ($i:expr) => {
                region_mut(lo, &nodes[$i])
            };
        }
        macro_rules! cz {
            ($i:expr, $s:expr) => {{
                let r = region_mut(lo, &nodes[$i]);
                if !add($s) {
                    r.fill(0.0);
                }
                r
            }};
        }
        if let &Op::Dense { x, w: wt, b, act, m, k, n: cols } = &node.op {
            // g = w ∘ act'(y), in place: this node's cotangent is not read after this point.
            if let Some(u) = act {
                mul_deriv_from_output(u, v(n), w);
            }
            let g: &[f64] = w;
            if need[x] {
                gemm_nt(add(0), g, v(wt), c!(x), m, cols, k);
            }
            if need[wt] {
                gemm_tn(add(1), v(x), g, c!(wt), m, k, cols);
            }
            if let Some(b) = b
                && need[b]
            {
                col_sums(add(2), g, c!(b));
            }
            return;
        }
        let w: &[f64] = w;
        match &node.op {
            Op::Input(_) | Op::Constant(_) | Op::Reshape(_) | Op::Dense { .. } => {}
            &Op::Unary(u, a) => {
                if need[a] {
                    unary_vjp(u, add(0), v(a), v(n), w, c!(a));
                }
            }
            &Op::Binary(o, a, b, ref g) => {
                if need[a] {
                    binary_vjp_a(o, add(0), g, v(b), w, c!(a));
                }
                if need[b] {
                    binary_vjp_b(o, add(1), g, v(a), v(b), v(n), w, c!(b));
                }
            }
            &Op::MatMul { a, b, m, k, n: cols } => {
                if need[a] {
                    gemm_nt(add(0), w, v(b), c!(a), m, cols, k);
                }
                if need[b] {
                    gemm_tn(add(1), v(a), w, c!(b), m, k, cols);
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
                        cz!(*x, 0),
                    );
                }
            }
            &Op::SpmvValues { ref pattern, values, x, k } => {
                let (offs, cols) = (pattern.row_offsets(), pattern.col_indices());
                if need[values] {
                    csr_values_vjp(offs, cols, w, v(x), k, cz!(values, 0));
                }
                if need[x] {
                    csr_mul_t_add(offs, cols, v(values), w, k, cz!(x, 1));
                }
            }
            &Op::Sum(a) => {
                let s = add(0);
                for ci in c!(a).iter_mut() {
                    *ci = if s { *ci + w[0] } else { w[0] };
                }
            }
            &Op::Mean(a) => {
                let (g, s) = (w[0] / nodes[a].len as f64, add(0));
                for ci in c!(a).iter_mut() {
                    *ci = if s { *ci + g } else { g };
                }
            }
            &Op::Dot(a, b) => {
                if need[a] {
                    for (ci, &bi) in cz!(a, 0).iter_mut().zip(v(b)) {
                        *ci += w[0] * bi;
                    }
                }
                if need[b] {
                    for (ci, &ai) in cz!(b, 1).iter_mut().zip(v(a)) {
                        *ci += w[0] * ai;
                    }
                }
            }
            &Op::SumAxis { a, outer, len, inner } => sum_axis_vjp(w, outer, len, inner, cz!(a, 0)),
            &Op::Slice { a, start } => add_into(&mut cz!(a, 0)[start..start + node.len], w),
            Op::Concat(args) => {
                let mut off = 0;
                for (s, &a) in args.iter().enumerate() {
                    let len = nodes[a].len;
                    if need[a] {
                        put(add(s), c!(a), &w[off..off + len]);
                    }
                    off += len;
                }
            }
            Op::Gather { a, idx } => {
                let ca = cz!(*a, 0);
                for (&wi, &j) in w.iter().zip(idx.iter()) {
                    ca[j] += wi;
                }
            }
            Op::ScatterAdd { a, idx } => {
                let s = add(0);
                for (ci, &j) in c!(*a).iter_mut().zip(idx.iter()) {
                    *ci = if s { *ci + w[j] } else { w[j] };
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
                for (s, &a) in args.iter().enumerate() {
                    let len = nodes[a].len;
                    if need[a] {
                        put(add(s), c!(a), &ws.scratch[off..off + len]);
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
            &Op::Dense { x, w, b, act, m, k, n: cols } => {
                // ẏ = act'(y) ∘ (ẋ W + x Ẇ + ḃ); inactive parts are zero and skipped.
                let mut written = false;
                if active[x] {
                    gemm_nn(false, t(x), v(w), ty, m, k, cols);
                    written = true;
                }
                if active[w] {
                    gemm_nn(written, v(x), t(w), ty, m, k, cols);
                    written = true;
                }
                if let Some(b) = b
                    && active[b]
                {
                    if !written {
                        ty.fill(0.0);
                    }
                    bias_act(None, Some(t(b)), ty);
                }
                if let Some(u) = act {
                    mul_deriv_from_output(u, v(n), ty);
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
