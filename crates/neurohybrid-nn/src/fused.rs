//! The fused pointwise-MLP kernel: one [`CustomOp`] that evaluates a small MLP on every row of
//! `[n, inputs]`, parallel over chunks of rows.
//!
//! Why fused: recorded op by op, a 1→16→16→1 network on 10⁶ voxels materializes a dozen
//! `[10⁶, 16]` buffers (values and cotangents, ~1.5 GB) and streams them through memory once per
//! op. Here each row stays in cache for the whole network. The backward sweep needs each hidden
//! layer's activations; rather than recompute them (a second round of `tanh`, the dominant cost)
//! the op *outputs* them next to the network output, in a packed row
//! `[y (outputs) | s_1 | … | s_{L-1} | z_L (if needed)]`, and [`Columns`] extracts `y`. Memory
//! stays O(n · Σ widths) and lives in the tape's workspace, so replays are allocation-free and
//! thread-safe. `s_k` is the post-activation `h_k` when the derivative is a function of it
//! (tanh, sigmoid, relu), else the pre-activation `z_k`.

use std::ops::Range;

use neurohybrid_autodiff::{AutodiffError, CustomOp};

use crate::activation::Activation;
use crate::mlp::Mlp;
use crate::parallel::{for_rows, for_rows_reduce, with_scratch};

/// Where one dense layer finds its weights and stores its activations in the packed row.
#[derive(Debug, Clone)]
struct LayerPlan {
    fan_in: usize,
    fan_out: usize,
    w: usize,
    b: Option<usize>,
    act: Activation,
    /// Column of `h_k` in the packed row, if stored.
    h_col: Option<usize>,
    /// Column of `z_k` in the packed row, if stored.
    z_col: Option<usize>,
    /// Offset of this layer's `h`/`d` in the per-row scratch.
    scratch: usize,
}

/// Fused MLP over rows: operands `x [n, inputs]`, `p [n_params]`; output `[n, stride]`.
pub(crate) struct FusedMlp {
    n: usize,
    inputs: usize,
    n_params: usize,
    stride: usize,
    max_width: usize,
    hidden_total: usize,
    layers: Vec<LayerPlan>,
}

impl FusedMlp {
    pub(crate) fn new(net: &Mlp, n: usize) -> Self {
        let n_layers = net.widths.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        let (mut off, mut col, mut scratch) = (0, net.outputs(), 0);
        for (k, d) in net.layers().enumerate() {
            let act = net.activation_after(k);
            let last = k + 1 == n_layers;
            let (h_col, z_col) = if last {
                let z = (!act.derivative_from_output_only()).then_some(col);
                (Some(0), z)
            } else if act.derivative_from_output_only() {
                (Some(col), None)
            } else {
                (None, Some(col))
            };
            if !last || z_col.is_some() {
                col += d.outputs;
            }
            layers.push(LayerPlan {
                fan_in: d.inputs,
                fan_out: d.outputs,
                w: off,
                b: d.bias.then_some(off + d.inputs * d.outputs),
                act,
                h_col,
                z_col,
                scratch,
            });
            scratch += d.outputs;
            off += d.inputs * d.outputs + if d.bias { d.outputs } else { 0 };
        }
        FusedMlp {
            n,
            inputs: net.inputs(),
            n_params: off,
            stride: col,
            max_width: net.widths.iter().copied().max().unwrap_or(1),
            hidden_total: scratch,
            layers,
        }
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// `z = b + h W` for one layer.
    #[inline]
    fn affine<const F: bool>(&self, l: &LayerPlan, p: &[f64], h: &[f64], z: &mut [f64]) {
        let z = &mut z[..l.fan_out];
        match l.b {
            Some(b) => z.copy_from_slice(&p[b..b + l.fan_out]),
            None => z.iter_mut().for_each(|v| *v = 0.0),
        }
        for (i, &hi) in h[..l.fan_in].iter().enumerate() {
            let row = &p[l.w + i * l.fan_out..l.w + (i + 1) * l.fan_out];
            for (zj, &wij) in z.iter_mut().zip(row) {
                *zj = madd::<F>(hi, wij, *zj);
            }
        }
    }

    /// Rebuilds `h_k` and `d_k = act'(z_k)` of every layer of one packed row.
    #[inline]
    fn unpack(&self, row: &[f64], hs: &mut [f64], ds: &mut [f64]) {
        for l in &self.layers {
            let (h, d) = (&mut hs[l.scratch..][..l.fan_out], &mut ds[l.scratch..][..l.fan_out]);
            if let Some(zc) = l.z_col {
                for ((hj, dj), &z) in h.iter_mut().zip(d.iter_mut()).zip(&row[zc..zc + l.fan_out]) {
                    *hj = l.act.value(z);
                    *dj = l.act.derivative(z);
                }
            } else {
                let hc = l.h_col.expect("plan stores h or z");
                for ((hj, dj), &hv) in h.iter_mut().zip(d.iter_mut()).zip(&row[hc..hc + l.fan_out])
                {
                    *hj = hv;
                    *dj = l.act.derivative_from_output(hv);
                }
            }
        }
    }
}

/// `a·b + c`, fused (one rounding) in the FMA build of a kernel, plain otherwise: results are
/// reproducible on a given machine, and differ across the two builds at the rounding level.
#[inline(always)]
fn madd<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `Σ aᵢbᵢ` with four independent partial sums (a strictly ordered sum is latency-bound).
#[inline(always)]
fn dot<const F: bool>(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] = madd::<F>(x[k], y[k], acc[k]);
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail = madd::<F>(*x, *y, tail);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[inline(always)]
fn add_assign(a: &mut [f64], b: &[f64]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Operands of one VJP task.
#[derive(Clone, Copy)]
struct VjpArgs<'a> {
    x: &'a [f64],
    p: &'a [f64],
    out: &'a [f64],
    w: &'a [f64],
    need_x: bool,
}

/// Operands of one JVP task.
#[derive(Clone, Copy)]
struct JvpArgs<'a> {
    x: &'a [f64],
    p: &'a [f64],
    out: &'a [f64],
    tx: &'a [f64],
    tp: &'a [f64],
}

/// Defines `$name`, which runs `$generic` compiled for AVX2 + FMA when the CPU has them
/// (checked at run time, cached by std) and as plain x86-64/other code otherwise. The row
/// kernels are short loops over widths of ~16: 4-wide FMA is what lets them beat dfdx's
/// `gemm` on the same machine, and the default x86-64 target stops at SSE2.
macro_rules! dispatch {
    ($name:ident, $avx:ident, $generic:ident, ($($arg:ident: $ty:ty),*)) => {
        #[inline]
        fn $name(&self, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA, checked on the line above.
                return unsafe { self.$avx($($arg),*) };
            }
            self.$generic::<false>($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx(&self, $($arg: $ty),*) {
            self.$generic::<true>($($arg),*)
        }
    };
}

impl FusedMlp {
    dispatch!(fwd_rows, fwd_rows_avx2, fwd_rows_generic, (range: Range<usize>, rows: &mut [f64], x: &[f64], p: &[f64], s: &mut [f64]));
    dispatch!(vjp_rows, vjp_rows_avx2, vjp_rows_generic, (range: Range<usize>, xrows: &mut [f64], pacc: &mut [f64], a: VjpArgs<'_>, s: &mut [f64]));
    dispatch!(jvp_rows, jvp_rows_avx2, jvp_rows_generic, (range: Range<usize>, trows: &mut [f64], a: JvpArgs<'_>, s: &mut [f64]));

    /// Forward over rows `range`: packed rows into `rows`.
    #[inline(always)]
    fn fwd_rows_generic<const F: bool>(
        &self,
        range: Range<usize>,
        rows: &mut [f64],
        x: &[f64],
        p: &[f64],
        s: &mut [f64],
    ) {
        let (a, b) = s.split_at_mut(self.max_width);
        for (i, row) in range.zip(rows.chunks_exact_mut(self.stride)) {
            let (mut cur, mut nxt) = (&mut *a, &mut *b);
            cur[..self.inputs].copy_from_slice(&x[i * self.inputs..(i + 1) * self.inputs]);
            for l in &self.layers {
                self.affine::<F>(l, p, cur, nxt);
                let z = &mut nxt[..l.fan_out];
                if let Some(zc) = l.z_col {
                    row[zc..zc + l.fan_out].copy_from_slice(z);
                }
                l.act.apply_slice_with::<F>(z);
                if let Some(hc) = l.h_col {
                    row[hc..hc + l.fan_out].copy_from_slice(z);
                }
                std::mem::swap(&mut cur, &mut nxt);
            }
        }
    }

    /// Reverse over rows `range`: input cotangents into `xrows`, parameter partial sums into
    /// `pacc`.
    #[inline(always)]
    fn vjp_rows_generic<const F: bool>(
        &self,
        range: Range<usize>,
        xrows: &mut [f64],
        pacc: &mut [f64],
        a: VjpArgs<'_>,
        s: &mut [f64],
    ) {
        let VjpArgs { x, p, out, w, need_x } = a;
        let (mw, ht) = (self.max_width, self.hidden_total);
        let (hs, rest) = s.split_at_mut(ht);
        let (ds, rest) = rest.split_at_mut(ht);
        let (gz, rest) = rest.split_at_mut(mw);
        let (gh, wt) = rest.split_at_mut(mw);
        // Transposed weights (once per task), so the input cotangent h̄ = W z̄ is an
        // axpy over contiguous rows that vectorizes, not a strictly ordered dot product.
        for l in &self.layers {
            for i in 0..l.fan_in {
                for j in 0..l.fan_out {
                    wt[l.w + j * l.fan_in + i] = p[l.w + i * l.fan_out + j];
                }
            }
        }
        let start = range.start;
        for i in range {
            let row = &out[i * self.stride..(i + 1) * self.stride];
            let wrow = &w[i * self.stride..(i + 1) * self.stride];
            self.unpack(row, hs, ds);
            let last = self.layers.last().expect("at least one layer");
            // Output cotangent through the output activation (plus any cotangent on a
            // stored z_L).
            let nl = last.fan_out;
            for ((g, &wv), &d) in
                gz[..nl].iter_mut().zip(&wrow[..nl]).zip(&ds[last.scratch..][..nl])
            {
                *g = wv * d;
            }
            if let Some(zc) = last.z_col {
                add_assign(&mut gz[..nl], &wrow[zc..zc + nl]);
            }
            for (k, l) in self.layers.iter().enumerate().rev() {
                let h_prev: &[f64] = if k == 0 {
                    &x[i * self.inputs..(i + 1) * self.inputs]
                } else {
                    let pl = &self.layers[k - 1];
                    &hs[pl.scratch..pl.scratch + pl.fan_out]
                };
                let gzl = &gz[..l.fan_out];
                if !pacc.is_empty() {
                    if let Some(b) = l.b {
                        for (a, &g) in pacc[b..b + l.fan_out].iter_mut().zip(gzl) {
                            *a += g;
                        }
                    }
                    for (ii, &hi) in h_prev.iter().enumerate() {
                        let acc = &mut pacc[l.w + ii * l.fan_out..][..l.fan_out];
                        for (a, &g) in acc.iter_mut().zip(gzl) {
                            *a = madd::<F>(hi, g, *a);
                        }
                    }
                }
                if k == 0 && !need_x {
                    break;
                }
                let ghl = &mut gh[..l.fan_in];
                if l.fan_in <= 4 {
                    // Few inputs, long rows: register-resident dot products.
                    for (ii, ghi) in ghl.iter_mut().enumerate() {
                        *ghi = dot::<F>(&p[l.w + ii * l.fan_out..][..l.fan_out], gzl);
                    }
                } else {
                    ghl.iter_mut().for_each(|v| *v = 0.0);
                    for (j, &g) in gzl.iter().enumerate() {
                        let col = &wt[l.w + j * l.fan_in..][..l.fan_in];
                        for (a, &w) in ghl.iter_mut().zip(col) {
                            *a = madd::<F>(g, w, *a);
                        }
                    }
                }
                if k == 0 {
                    let xr = &mut xrows[(i - start) * self.inputs..][..self.inputs];
                    for (a, &g) in xr.iter_mut().zip(&gh[..self.inputs]) {
                        *a += g;
                    }
                } else {
                    let pl = &self.layers[k - 1];
                    let np = pl.fan_out;
                    if let Some(hc) = pl.h_col {
                        add_assign(&mut gh[..np], &wrow[hc..hc + np]);
                    }
                    for ((g, &h), &d) in
                        gz[..np].iter_mut().zip(&gh[..np]).zip(&ds[pl.scratch..][..np])
                    {
                        *g = h * d;
                    }
                    if let Some(zc) = pl.z_col {
                        add_assign(&mut gz[..np], &wrow[zc..zc + np]);
                    }
                }
            }
        }
    }

    /// Tangents over rows `range` into `trows`.
    #[inline(always)]
    fn jvp_rows_generic<const F: bool>(
        &self,
        range: Range<usize>,
        trows: &mut [f64],
        a: JvpArgs<'_>,
        s: &mut [f64],
    ) {
        let JvpArgs { x, p, out, tx, tp } = a;
        let (mw, ht) = (self.max_width, self.hidden_total);
        let (hs, rest) = s.split_at_mut(ht);
        let (ds, rest) = rest.split_at_mut(ht);
        let (ta, tb) = rest.split_at_mut(mw);
        for (i, trow) in range.zip(trows.chunks_exact_mut(self.stride)) {
            let row = &out[i * self.stride..(i + 1) * self.stride];
            self.unpack(row, hs, ds);
            let (mut th, mut tz) = (&mut *ta, &mut *tb);
            if tx.is_empty() {
                th[..self.inputs].iter_mut().for_each(|v| *v = 0.0);
            } else {
                th[..self.inputs].copy_from_slice(&tx[i * self.inputs..][..self.inputs]);
            }
            for (k, l) in self.layers.iter().enumerate() {
                // ż = ḣ_prev W (+ ḃ + h_prev Ẇ when parameters move).
                self.affine::<F>(&LayerPlan { b: None, ..l.clone() }, p, th, tz);
                if !tp.is_empty() {
                    let h_prev: &[f64] = if k == 0 {
                        &x[i * self.inputs..(i + 1) * self.inputs]
                    } else {
                        let pl = &self.layers[k - 1];
                        &hs[pl.scratch..pl.scratch + pl.fan_out]
                    };
                    self.affine::<F>(l, tp, h_prev, th);
                    for (a, &b) in tz[..l.fan_out].iter_mut().zip(&th[..l.fan_out]) {
                        *a += b;
                    }
                }
                let z = &mut tz[..l.fan_out];
                if let Some(zc) = l.z_col {
                    trow[zc..zc + l.fan_out].copy_from_slice(z);
                }
                for (v, &d) in z.iter_mut().zip(&ds[l.scratch..l.scratch + l.fan_out]) {
                    *v *= d;
                }
                if let Some(hc) = l.h_col {
                    trow[hc..hc + l.fan_out].copy_from_slice(z);
                }
                std::mem::swap(&mut th, &mut tz);
            }
        }
    }
}

impl CustomOp for FusedMlp {
    fn name(&self) -> &str {
        "nn.pointwise_mlp"
    }

    fn output_shape(&self, shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        let bad = |message: String| AutodiffError::Custom { op: self.name().into(), message };
        if shapes.len() != 2 {
            return Err(bad(format!("expected operands (x, p), got {}", shapes.len())));
        }
        let nx: usize = shapes[0].iter().product();
        let np: usize = shapes[1].iter().product();
        if nx != self.n * self.inputs || np != self.n_params {
            return Err(bad(format!(
                "x {:?} / p {:?} do not fit n = {}, inputs = {}, n_params = {}",
                shapes[0], shapes[1], self.n, self.inputs, self.n_params
            )));
        }
        Ok(vec![self.n, self.stride])
    }

    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        let (x, p) = (inputs[0], inputs[1]);
        for_rows(self.n, self.stride, out, |range, rows| {
            with_scratch(2 * self.max_width, |s| self.fwd_rows(range, rows, x, p, s))
        });
    }

    fn vjp(&self, inputs: &[&[f64]], out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let (x, p) = (inputs[0], inputs[1]);
        let [x_cot, p_cot] = in_cot else { return };
        let need_x = !x_cot.is_empty();
        let (mw, ht) = (self.max_width, self.hidden_total);
        for_rows_reduce(self.n, self.inputs, x_cot, p_cot, |range, xrows, pacc| {
            with_scratch(2 * ht + 2 * mw + self.n_params, |s| {
                self.vjp_rows(range, xrows, pacc, VjpArgs { x, p, out, w, need_x }, s)
            })
        });
    }

    fn jvp(&self, inputs: &[&[f64]], out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let (x, p) = (inputs[0], inputs[1]);
        let (tx, tp) = (tangents[0], tangents[1]);
        let (mw, ht) = (self.max_width, self.hidden_total);
        for_rows(self.n, self.stride, out_tan, |range, trows| {
            with_scratch(2 * ht + 2 * mw, |s| {
                self.jvp_rows(range, trows, JvpArgs { x, p, out, tx, tp }, s)
            })
        });
    }
}

/// Columns `start..start + len` of a row-major `[n, stride]` operand, as `[n, len]`.
pub(crate) struct Columns {
    pub(crate) n: usize,
    pub(crate) stride: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl CustomOp for Columns {
    fn name(&self) -> &str {
        "nn.columns"
    }
    fn output_shape(&self, shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        if shapes.len() != 1 || shapes[0] != [self.n, self.stride] {
            return Err(AutodiffError::Custom {
                op: self.name().into(),
                message: format!("expected one [{}, {}] operand", self.n, self.stride),
            });
        }
        Ok(vec![self.n, self.len])
    }
    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        for (o, row) in out.chunks_exact_mut(self.len).zip(inputs[0].chunks_exact(self.stride)) {
            o.copy_from_slice(&row[self.start..self.start + self.len]);
        }
    }
    fn vjp(&self, _inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        if in_cot[0].is_empty() {
            return;
        }
        for (c, wr) in in_cot[0].chunks_exact_mut(self.stride).zip(w.chunks_exact(self.len)) {
            for (a, &b) in c[self.start..self.start + self.len].iter_mut().zip(wr) {
                *a += b;
            }
        }
    }
    fn jvp(&self, _inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        if tangents[0].is_empty() {
            out_tan.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        self.forward(tangents, out_tan);
    }
}
