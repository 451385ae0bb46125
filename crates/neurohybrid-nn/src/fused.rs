//! The fused pointwise-MLP kernel: one [`CustomOp`] that evaluates a small MLP on every row of
//! `[n, inputs]`, parallel over chunks of rows, register-blocked over [`BLOCK`] rows at a time.
//!
//! Why fused: recorded op by op, a 1→16→16→1 network on 10⁶ voxels materializes a dozen
//! `[10⁶, 16]` buffers (values and cotangents, ~1.5 GB) and streams them through memory once per
//! op. Here a block of rows stays in L1 for the whole network.
//!
//! Why recompute: the backward sweep needs every hidden layer's activations. Storing them
//! (the first version of this op output a packed row `[y | h₁ | … ]`, 33 values per point for
//! 1→16→16→1) costs ~1.3 GB of memory traffic per forward + VJP at 10⁶ points (write, zero the
//! cotangent, scatter the cotangent of `y`, read both back) — more than the arithmetic. The op
//! now outputs only `y` and the VJP and JVP re-run the forward pass of each block in L1: the
//! extra `tanh` work is cheaper than the traffic (measured, ADR 0005), and the tape's workspace
//! holds O(n · outputs) values for the network instead of O(n · Σ widths).
//!
//! Blocking: rows are processed [`BLOCK`] at a time, so a layer is a small `[8, in] × [in, out]`
//! product computed in register tiles of 4 rows × 8 outputs, and the weight gradient is an
//! outer-product accumulation over the block (each gradient tile loaded once per block, not
//! once per row). Every sum keeps the order of the row-by-row loop it replaces (over inputs for
//! a product, over rows for a gradient), and blocks start at fixed offsets of each task, whose
//! size depends on `n` only: results are bit-identical for any thread count.

use std::ops::Range;

use neurohybrid_autodiff::{AutodiffError, CustomOp};

use crate::activation::Activation;
use crate::mlp::Mlp;
use crate::parallel::{for_rows, for_rows_reduce, with_scratch};

/// Rows per register block. A partial block (the end of a task) is padded with zero inputs and
/// zero cotangents, which add exact zeros to the parameter sums.
const BLOCK: usize = 8;
/// Output columns per register tile (two 4-wide vectors).
const JT: usize = 8;
/// Rows per register tile of a product (4 × [`JT`] accumulators: 8 AVX2 registers).
const RT: usize = 4;

/// Where one dense layer finds its weights and keeps its block activations.
#[derive(Debug, Clone)]
struct LayerPlan {
    fan_in: usize,
    fan_out: usize,
    w: usize,
    b: Option<usize>,
    act: Activation,
    /// Offset (in values per row) of this layer's `z`/`h` in the block scratch.
    scratch: usize,
    /// Stored mode: column of this layer's saved activation in the packed output row (`h` when
    /// the derivative is a function of it, else `z`; the last layer only saves a needed `z`).
    col: Option<usize>,
}

/// Fused MLP over rows: operands `x [n, inputs]`, `p [n_params]`; output `y [n, outputs]`.
pub(crate) struct FusedMlp {
    n: usize,
    inputs: usize,
    outputs: usize,
    n_params: usize,
    max_width: usize,
    hidden_total: usize,
    /// Values per output row: `outputs`, or the packed `[y | s₁ | …]` row in stored mode.
    stride: usize,
    layers: Vec<LayerPlan>,
}

impl FusedMlp {
    /// The op; `store` saves each layer's activations in a packed output row for the VJP
    /// (instead of recomputing them per block), read back through [`Columns`].
    pub(crate) fn new(net: &Mlp, n: usize, store: bool) -> Self {
        let n_layers = net.widths.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        let (mut off, mut scratch, mut stride) = (0, 0, net.outputs());
        for (k, d) in net.layers().enumerate() {
            let act = net.activation_after(k);
            let saved = store && (k + 1 < n_layers || !act.derivative_from_output_only());
            let col = saved.then_some(stride);
            if saved {
                stride += d.outputs;
            }
            layers.push(LayerPlan {
                col,
                fan_in: d.inputs,
                fan_out: d.outputs,
                w: off,
                b: d.bias.then_some(off + d.inputs * d.outputs),
                act,
                scratch,
            });
            scratch += d.outputs;
            off += d.inputs * d.outputs + if d.bias { d.outputs } else { 0 };
        }
        FusedMlp {
            n,
            inputs: net.inputs(),
            outputs: net.outputs(),
            n_params: off,
            max_width: net.widths.iter().copied().max().unwrap_or(1),
            hidden_total: scratch,
            stride,
            layers,
        }
    }

    /// Values per output row.
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// Whether the layer's saved activation is `h` (else `z`).
    fn saves_h(l: &LayerPlan) -> bool {
        l.act.derivative_from_output_only()
    }
}

/// `a·b + c`, fused (one rounding) in the FMA build of a kernel, plain otherwise: results are
/// reproducible on a given machine, and differ across the two builds at the rounding level.
#[inline(always)]
fn madd<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `z[r, :] = bias + h[r, :] W` for the [`BLOCK`] rows of a block: `h [BLOCK, fi]`,
/// `w [fi, fo]`, `z [BLOCK, fo]`. Each entry is summed over `i` in order.
#[inline(always)]
fn gemm_block<const F: bool>(
    h: &[f64],
    fi: usize,
    w: &[f64],
    fo: usize,
    bias: Option<&[f64]>,
    z: &mut [f64],
) {
    let (h, w, z) = (&h[..BLOCK * fi], &w[..fi * fo], &mut z[..BLOCK * fo]);
    let mut j0 = 0;
    while j0 + JT <= fo {
        let init: [f64; JT] = match bias {
            Some(b) => b[j0..j0 + JT].try_into().expect("tile"),
            None => [0.0; JT],
        };
        for r0 in (0..BLOCK).step_by(RT) {
            let mut acc = [init; RT];
            for i in 0..fi {
                let wr: &[f64; JT] = w[i * fo + j0..][..JT].try_into().expect("tile");
                for (rr, a) in acc.iter_mut().enumerate() {
                    let hv = h[(r0 + rr) * fi + i];
                    for (aj, &wj) in a.iter_mut().zip(wr) {
                        *aj = madd::<F>(hv, wj, *aj);
                    }
                }
            }
            for (rr, a) in acc.iter().enumerate() {
                z[(r0 + rr) * fo + j0..][..JT].copy_from_slice(a);
            }
        }
        j0 += JT;
    }
    for j in j0..fo {
        let mut acc = [bias.map_or(0.0, |b| b[j]); BLOCK];
        for i in 0..fi {
            let wv = w[i * fo + j];
            for (r, a) in acc.iter_mut().enumerate() {
                *a = madd::<F>(h[r * fi + i], wv, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            z[r * fo + j] = *a;
        }
    }
}

/// `gw[i, j] += Σ_r h[r, i] g[r, j]` and `gb[j] += Σ_r g[r, j]` over the rows of a block, in
/// row order (the order of a row-by-row accumulation), each gradient tile held in registers
/// for the whole block.
#[inline(always)]
fn outer_acc<const F: bool>(
    h: &[f64],
    fi: usize,
    g: &[f64],
    fo: usize,
    gw: &mut [f64],
    gb: Option<&mut [f64]>,
) {
    let (h, g, gw) = (&h[..BLOCK * fi], &g[..BLOCK * fo], &mut gw[..fi * fo]);
    if let Some(gb) = gb {
        for (j, a) in gb[..fo].iter_mut().enumerate() {
            for r in 0..BLOCK {
                *a += g[r * fo + j];
            }
        }
    }
    let mut j0 = 0;
    while j0 + JT <= fo {
        let mut i0 = 0;
        while i0 + RT <= fi {
            let mut acc = [[0.0; JT]; RT];
            for (ii, a) in acc.iter_mut().enumerate() {
                a.copy_from_slice(&gw[(i0 + ii) * fo + j0..][..JT]);
            }
            for r in 0..BLOCK {
                let gr: &[f64; JT] = g[r * fo + j0..][..JT].try_into().expect("tile");
                for (ii, a) in acc.iter_mut().enumerate() {
                    let hv = h[r * fi + i0 + ii];
                    for (aj, &gj) in a.iter_mut().zip(gr) {
                        *aj = madd::<F>(hv, gj, *aj);
                    }
                }
            }
            for (ii, a) in acc.iter().enumerate() {
                gw[(i0 + ii) * fo + j0..][..JT].copy_from_slice(a);
            }
            i0 += RT;
        }
        for i in i0..fi {
            let mut a: [f64; JT] = gw[i * fo + j0..][..JT].try_into().expect("tile");
            for r in 0..BLOCK {
                let hv = h[r * fi + i];
                for (aj, &gj) in a.iter_mut().zip(&g[r * fo + j0..][..JT]) {
                    *aj = madd::<F>(hv, gj, *aj);
                }
            }
            gw[i * fo + j0..][..JT].copy_from_slice(&a);
        }
        j0 += JT;
    }
    for j in j0..fo {
        for i in 0..fi {
            let mut a = gw[i * fo + j];
            for r in 0..BLOCK {
                a = madd::<F>(h[r * fi + i], g[r * fo + j], a);
            }
            gw[i * fo + j] = a;
        }
    }
}

/// Copies the rows `rows` of a row-major `[_, width]` array into a `[BLOCK, width]` block,
/// zero-padding missing rows (or everything when `src` is empty).
#[inline(always)]
fn load_block(src: &[f64], rows: Range<usize>, width: usize, dst: &mut [f64]) {
    let dst = &mut dst[..BLOCK * width];
    let m = rows.len();
    if src.is_empty() {
        dst.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    dst[..m * width].copy_from_slice(&src[rows.start * width..rows.end * width]);
    dst[m * width..].iter_mut().for_each(|v| *v = 0.0);
}

#[inline(always)]
fn add_assign(a: &mut [f64], b: &[f64]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Copies columns `col..col + width` of the rows `rows` of a row-major `[_, stride]` array into
/// a `[BLOCK, width]` block, zero-padding missing rows.
#[inline(always)]
fn load_cols(
    src: &[f64],
    rows: Range<usize>,
    stride: usize,
    col: usize,
    width: usize,
    dst: &mut [f64],
) {
    let dst = &mut dst[..BLOCK * width];
    let m = rows.len();
    for (d, r) in dst.chunks_exact_mut(width).zip(rows) {
        d.copy_from_slice(&src[r * stride + col..][..width]);
    }
    dst[m * width..].iter_mut().for_each(|v| *v = 0.0);
}

/// Writes the first `m` rows of a `[BLOCK, width]` block into columns `col..` of `dst`
/// (`[m, stride]`).
#[inline(always)]
fn store_cols(src: &[f64], m: usize, stride: usize, col: usize, width: usize, dst: &mut [f64]) {
    for (r, s) in src[..m * width].chunks_exact(width).enumerate() {
        dst[r * stride + col..][..width].copy_from_slice(s);
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
    tx: &'a [f64],
    tp: &'a [f64],
}

/// Defines `$name`, which runs `$generic` compiled for AVX2 + FMA when the CPU has them
/// (checked at run time, cached by std) and as plain x86-64/other code otherwise. The row
/// kernels are short loops over widths of ~16: 4-wide FMA is what lets them beat dfdx's
/// `gemm` on the same machine, and the default x86-64 target stops at SSE2.
macro_rules! dispatch {
    ($name:ident, $avx:ident, $avx512:ident, $generic:ident, ($($arg:ident: $ty:ty),*)) => {
        #[inline]
        fn $name(&self, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX-512F and FMA, checked on the line above.
                return unsafe { self.$avx512($($arg),*) };
            }
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

        // The same FMA arithmetic element by element (every sum keeps its order), 8 lanes wide:
        // bit-identical to the AVX2 build.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn $avx512(&self, $($arg: $ty),*) {
            self.$generic::<true>($($arg),*)
        }
    };
}

impl FusedMlp {
    dispatch!(fwd_rows, fwd_rows_avx2, fwd_rows_avx512, fwd_rows_generic, (range: Range<usize>, rows: &mut [f64], x: &[f64], p: &[f64], s: &mut [f64]));
    dispatch!(vjp_rows, vjp_rows_avx2, vjp_rows_avx512, vjp_rows_generic, (range: Range<usize>, xrows: &mut [f64], pacc: &mut [f64], a: VjpArgs<'_>, s: &mut [f64]));
    dispatch!(jvp_rows, jvp_rows_avx2, jvp_rows_avx512, jvp_rows_generic, (range: Range<usize>, trows: &mut [f64], a: JvpArgs<'_>, s: &mut [f64]));

    /// Scratch values for one task: the block input, each layer's `z` and `h` over a block,
    /// three `[BLOCK, max_width]` work blocks, and a transposed copy of the weights.
    fn scratch_len(&self) -> usize {
        BLOCK * (self.inputs + 2 * self.hidden_total + 3 * self.max_width) + self.n_params
    }

    /// Forward pass of one block (`xb [BLOCK, inputs]`): every layer's `z` into `zs` and `h`
    /// into `hs` (both `[BLOCK, fan_out]` at `BLOCK · scratch`).
    #[inline(always)]
    fn fwd_block<const F: bool>(&self, xb: &[f64], p: &[f64], zs: &mut [f64], hs: &mut [f64]) {
        for (k, l) in self.layers.iter().enumerate() {
            let (at, len) = (BLOCK * l.scratch, BLOCK * l.fan_out);
            let (done, rest) = hs.split_at_mut(at);
            let h_prev: &[f64] =
                if k == 0 { xb } else { &done[BLOCK * self.layers[k - 1].scratch..] };
            let z = &mut zs[at..at + len];
            let bias = l.b.map(|b| &p[b..b + l.fan_out]);
            gemm_block::<F>(h_prev, l.fan_in, &p[l.w..], l.fan_out, bias, z);
            let h = &mut rest[..len];
            h.copy_from_slice(z);
            l.act.apply_slice_with::<F>(h);
        }
    }

    /// Stored mode: every layer's `z`/`h` of one block read back from the packed rows `out`
    /// (an `h` saved as `z` is re-activated; `y` is the last layer's `h`).
    fn unpack_block(&self, out: &[f64], rows: Range<usize>, zs: &mut [f64], hs: &mut [f64]) {
        let (sd, n_layers) = (self.stride, self.layers.len());
        for (k, l) in self.layers.iter().enumerate() {
            let (at, len) = (BLOCK * l.scratch, BLOCK * l.fan_out);
            if k + 1 == n_layers {
                load_cols(out, rows.clone(), sd, 0, l.fan_out, &mut hs[at..]);
            }
            match l.col {
                Some(c) if Self::saves_h(l) => {
                    load_cols(out, rows.clone(), sd, c, l.fan_out, &mut hs[at..])
                }
                Some(c) => {
                    load_cols(out, rows.clone(), sd, c, l.fan_out, &mut zs[at..]);
                    if k + 1 < n_layers {
                        hs[at..at + len].copy_from_slice(&zs[at..at + len]);
                        l.act.apply_slice(&mut hs[at..at + len]);
                    }
                }
                None => {}
            }
        }
    }

    /// `act'(z)` of layer `l` over a block, multiplied into `g`.
    #[inline(always)]
    fn times_derivative(l: &LayerPlan, zs: &[f64], hs: &[f64], g: &mut [f64]) {
        let (at, len) = (BLOCK * l.scratch, BLOCK * l.fan_out);
        let g = &mut g[..len];
        match l.act {
            Activation::Identity => {}
            act if act.derivative_from_output_only() => {
                for (gv, &h) in g.iter_mut().zip(&hs[at..at + len]) {
                    *gv *= act.derivative_from_output(h);
                }
            }
            act => {
                for (gv, &z) in g.iter_mut().zip(&zs[at..at + len]) {
                    *gv *= act.derivative(z);
                }
            }
        }
    }

    /// Forward over rows `range`: outputs into `rows`.
    #[inline(always)]
    fn fwd_rows_generic<const F: bool>(
        &self,
        range: Range<usize>,
        rows: &mut [f64],
        x: &[f64],
        p: &[f64],
        s: &mut [f64],
    ) {
        let ht = BLOCK * self.hidden_total;
        let (xb, rest) = s.split_at_mut(BLOCK * self.inputs);
        let (zs, rest) = rest.split_at_mut(ht);
        let hs = &mut rest[..ht];
        let last = self.layers.last().expect("at least one layer");
        let (o, start) = (self.outputs, range.start);
        for b0 in range.clone().step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(range.end);
            load_block(x, b0..b1, self.inputs, xb);
            self.fwd_block::<F>(xb, p, zs, hs);
            let (m, sd) = (b1 - b0, self.stride);
            let dst = &mut rows[(b0 - start) * sd..(b1 - start) * sd];
            store_cols(&hs[BLOCK * last.scratch..], m, sd, 0, o, dst);
            for l in &self.layers {
                if let Some(c) = l.col {
                    let src = if Self::saves_h(l) { &*hs } else { &*zs };
                    store_cols(&src[BLOCK * l.scratch..], m, sd, c, l.fan_out, dst);
                }
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
        let sd = self.stride;
        let (ht, mw) = (BLOCK * self.hidden_total, BLOCK * self.max_width);
        let (xb, rest) = s.split_at_mut(BLOCK * self.inputs);
        let (zs, rest) = rest.split_at_mut(ht);
        let (hs, rest) = rest.split_at_mut(ht);
        let (gz, rest) = rest.split_at_mut(mw);
        let (gh, rest) = rest.split_at_mut(mw);
        let (wb, rest) = rest.split_at_mut(mw);
        let wt = &mut rest[..self.n_params];
        // Transposed weights (once per task): the input cotangent h̄ = z̄ Wᵀ is then the same
        // blocked product as the forward pass.
        for l in &self.layers {
            for i in 0..l.fan_in {
                for j in 0..l.fan_out {
                    wt[l.w + j * l.fan_in + i] = p[l.w + i * l.fan_out + j];
                }
            }
        }
        let (o, start) = (self.outputs, range.start);
        let last = self.layers.last().expect("at least one layer");
        for b0 in range.clone().step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(range.end);
            load_block(x, b0..b1, self.inputs, xb);
            if sd == o {
                self.fwd_block::<F>(xb, p, zs, hs);
            } else {
                self.unpack_block(out, b0..b1, zs, hs);
            }
            // Output cotangent through the output activation; padded rows get zero.
            load_cols(w, b0..b1, sd, 0, o, wb);
            gz[..BLOCK * o].copy_from_slice(&wb[..BLOCK * o]);
            Self::times_derivative(last, zs, hs, gz);
            if let Some(c) = last.col {
                load_cols(w, b0..b1, sd, c, o, wb);
                add_assign(&mut gz[..BLOCK * o], &wb[..BLOCK * o]);
            }
            for (k, l) in self.layers.iter().enumerate().rev() {
                let h_prev: &[f64] =
                    if k == 0 { xb } else { &hs[BLOCK * self.layers[k - 1].scratch..] };
                if !pacc.is_empty() {
                    let (gw, gb) = pacc[l.w..].split_at_mut(l.fan_in * l.fan_out);
                    let gb = if l.b.is_some() { Some(&mut gb[..l.fan_out]) } else { None };
                    outer_acc::<F>(h_prev, l.fan_in, gz, l.fan_out, gw, gb);
                }
                if k == 0 && !need_x {
                    break;
                }
                gemm_block::<F>(gz, l.fan_out, &wt[l.w..], l.fan_in, None, gh);
                if k == 0 {
                    let m = b1 - b0;
                    let xr = &mut xrows[(b0 - start) * self.inputs..][..m * self.inputs];
                    for (a, &g) in xr.iter_mut().zip(&gh[..m * self.inputs]) {
                        *a += g;
                    }
                } else {
                    let pl = &self.layers[k - 1];
                    let len = BLOCK * pl.fan_out;
                    gz[..len].copy_from_slice(&gh[..len]);
                    // Cotangents on the saved activations (zero when only `y` is read).
                    let saved = pl.col.map(|c| {
                        load_cols(w, b0..b1, sd, c, pl.fan_out, wb);
                        Self::saves_h(pl)
                    });
                    if saved == Some(true) {
                        add_assign(&mut gz[..len], &wb[..len]);
                    }
                    Self::times_derivative(pl, zs, hs, gz);
                    if saved == Some(false) {
                        add_assign(&mut gz[..len], &wb[..len]);
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
        let JvpArgs { x, p, tx, tp } = a;
        let (ht, mw) = (BLOCK * self.hidden_total, BLOCK * self.max_width);
        let (xb, rest) = s.split_at_mut(BLOCK * self.inputs);
        let (zs, rest) = rest.split_at_mut(ht);
        let (hs, rest) = rest.split_at_mut(ht);
        let (ta, rest) = rest.split_at_mut(mw);
        let (tb, rest) = rest.split_at_mut(mw);
        let tmp = &mut rest[..mw];
        let (o, start) = (self.outputs, range.start);
        for b0 in range.clone().step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(range.end);
            load_block(x, b0..b1, self.inputs, xb);
            self.fwd_block::<F>(xb, p, zs, hs);
            let (mut th, mut tz) = (&mut *ta, &mut *tb);
            load_block(tx, b0..b1, self.inputs, th);
            for (k, l) in self.layers.iter().enumerate() {
                // ż = ḣ_prev W (+ ḃ + h_prev Ẇ when parameters move); ḣ = act'(z) ż.
                gemm_block::<F>(th, l.fan_in, &p[l.w..], l.fan_out, None, tz);
                if !tp.is_empty() {
                    let h_prev: &[f64] =
                        if k == 0 { xb } else { &hs[BLOCK * self.layers[k - 1].scratch..] };
                    let bias = l.b.map(|b| &tp[b..b + l.fan_out]);
                    gemm_block::<F>(h_prev, l.fan_in, &tp[l.w..], l.fan_out, bias, tmp);
                    for (a, &b) in tz[..BLOCK * l.fan_out].iter_mut().zip(&tmp[..]) {
                        *a += b;
                    }
                }
                let (m, sd) = (b1 - b0, self.stride);
                let dst = &mut trows[(b0 - start) * sd..(b1 - start) * sd];
                if let (Some(c), false) = (l.col, Self::saves_h(l)) {
                    store_cols(tz, m, sd, c, l.fan_out, dst);
                }
                Self::times_derivative(l, zs, hs, tz);
                if let (Some(c), true) = (l.col, Self::saves_h(l)) {
                    store_cols(tz, m, sd, c, l.fan_out, dst);
                }
                std::mem::swap(&mut th, &mut tz);
            }
            let (m, sd) = (b1 - b0, self.stride);
            store_cols(th, m, sd, 0, o, &mut trows[(b0 - start) * sd..(b1 - start) * sd]);
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
            with_scratch(self.scratch_len(), |s| self.fwd_rows(range, rows, x, p, s))
        });
    }

    fn vjp(&self, inputs: &[&[f64]], out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        let (x, p) = (inputs[0], inputs[1]);
        let [x_cot, p_cot] = in_cot else { return };
        let need_x = !x_cot.is_empty();
        for_rows_reduce(self.n, self.inputs, x_cot, p_cot, |range, xrows, pacc| {
            with_scratch(self.scratch_len(), |s| {
                self.vjp_rows(range, xrows, pacc, VjpArgs { x, p, out, w, need_x }, s)
            })
        });
    }

    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        let (x, p) = (inputs[0], inputs[1]);
        let (tx, tp) = (tangents[0], tangents[1]);
        for_rows(self.n, self.stride, out_tan, |range, trows| {
            with_scratch(self.scratch_len(), |s| {
                self.jvp_rows(range, trows, JvpArgs { x, p, tx, tp }, s)
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
