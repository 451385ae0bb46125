//! Elementwise unary and binary ops (with scalar / row / column broadcasting).

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var, numel};
use crate::ops::Op;
use crate::ops::vmath::{self, multiversion};

/// Elementwise unary ops. Each knows its value `f(x)` and derivative `f'(x)` written in terms
/// of `x` and the already computed `y = f(x)` (cheaper and, for tanh/sigmoid, more accurate
/// than re-evaluating).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unary {
    Neg,
    Exp,
    Ln,
    Sqrt,
    Square,
    Powi(i32),
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Sin,
    Cos,
    Scale(f64),
    AddScalar(f64),
}

/// Logistic function, evaluated so that it never overflows: for x < 0 use
/// `e^x / (1 + e^x)` (e^x ≤ 1) instead of `1 / (1 + e^{-x})` (e^{-x} would overflow to inf
/// for x < -709; the quotient is still right but the form below also keeps full relative
/// accuracy of tiny results). Branch-free, on the vectorisable `exp` of [`vmath`].
#[inline(always)]
pub(crate) fn sigmoid(x: f64) -> f64 {
    vmath::sigmoid(x)
}

impl Unary {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Ln => "ln",
            Unary::Sqrt => "sqrt",
            Unary::Square => "square",
            Unary::Powi(_) => "powi",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Softplus => "softplus",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Scale(_) => "scale",
            Unary::AddScalar(_) => "add_scalar",
        }
    }

    #[inline(always)]
    fn eval(self, x: f64) -> f64 {
        match self {
            Unary::Neg => -x,
            Unary::Exp => vmath::exp(x),
            Unary::Ln => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Square => x * x,
            Unary::Powi(k) => x.powi(k),
            Unary::Tanh => vmath::tanh(x),
            Unary::Sigmoid => sigmoid(x),
            Unary::Relu => x.max(0.0),
            // softplus(x) = ln(1 + e^x) = max(x, 0) + ln1p(e^{-|x|}): never overflows (e^{-|x|}
            // ≤ 1) and keeps full accuracy for x ≪ 0, where ln(1 + tiny) would round to 0.
            Unary::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Scale(f) => f * x,
            Unary::AddScalar(c) => x + c,
        }
    }

    /// `f'(x)` given `y = f(x)`.
    #[inline(always)]
    fn deriv(self, x: f64, y: f64) -> f64 {
        match self {
            Unary::Neg => -1.0,
            Unary::Exp => y,
            Unary::Ln => 1.0 / x,
            Unary::Sqrt => 0.5 / y,
            Unary::Square => 2.0 * x,
            Unary::Powi(0) => 0.0,
            Unary::Powi(k) => f64::from(k) * x.powi(k - 1),
            // 1 - tanh² from y: exact to rounding and no second transcendental call.
            Unary::Tanh => 1.0 - y * y,
            Unary::Sigmoid => y * (1.0 - y),
            // The kink at 0 gets derivative 0 (the subgradient PyTorch and JAX also pick).
            Unary::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::Softplus => sigmoid(x),
            Unary::Sin => x.cos(),
            Unary::Cos => -x.sin(),
            Unary::Scale(f) => f,
            Unary::AddScalar(_) => 1.0,
        }
    }
}

/// Runs `$body` with `$u` bound to `$op` inside a `match` arm per variant, so the per-element
/// `eval`/`deriv` calls inline to a single branch-free expression in each specialised loop.
macro_rules! specialise {
    ($op:expr, $u:ident => $body:expr) => {
        match $op {
            $u @ Unary::Neg => $body,
            $u @ Unary::Exp => $body,
            $u @ Unary::Ln => $body,
            $u @ Unary::Sqrt => $body,
            $u @ Unary::Square => $body,
            $u @ Unary::Powi(_) => $body,
            $u @ Unary::Tanh => $body,
            $u @ Unary::Sigmoid => $body,
            $u @ Unary::Relu => $body,
            $u @ Unary::Softplus => $body,
            $u @ Unary::Sin => $body,
            $u @ Unary::Cos => $body,
            $u @ Unary::Scale(_) => $body,
            $u @ Unary::AddScalar(_) => $body,
        }
    };
}

// Every kernel below is a `multiversion!` function (baseline and AVX2 variants, runtime
// switch; see `vmath`): the per-element bodies are branch-free for the transcendental ops,
// and each `specialise!` arm is its own loop, so they vectorise.

multiversion! {
    pub(crate) fn unary_fwd(op: Unary, x: &[f64], y: &mut [f64]) {
        specialise!(op, u => {
            for (yi, &xi) in y.iter_mut().zip(x) {
                *yi = u.eval(xi);
            }
        })
    }

    /// `cx (+)= w ∘ f'(x)`; with `add == false` the cotangent is overwritten (the tape's first
    /// writer of that region), which saves zero-filling it.
    pub(crate) fn unary_vjp(op: Unary, add: bool, x: &[f64], y: &[f64], w: &[f64], cx: &mut [f64]) {
        specialise!(op, u => {
            let it = cx.iter_mut().zip(w).zip(x.iter().zip(y));
            if add {
                for ((c, &wi), (&xi, &yi)) in it {
                    *c += wi * u.deriv(xi, yi);
                }
            } else {
                for ((c, &wi), (&xi, &yi)) in it {
                    *c = wi * u.deriv(xi, yi);
                }
            }
        })
    }

    pub(crate) fn unary_jvp(op: Unary, x: &[f64], y: &[f64], tx: &[f64], ty: &mut [f64]) {
        specialise!(op, u => {
            for ((t, &ti), (&xi, &yi)) in ty.iter_mut().zip(tx).zip(x.iter().zip(y)) {
                *t = ti * u.deriv(xi, yi);
            }
        })
    }

    /// `y = f(y)` in place.
    fn unary_in_place(op: Unary, y: &mut [f64]) {
        specialise!(op, u => {
            for v in y.iter_mut() {
                *v = u.eval(*v);
            }
        })
    }

    /// `y[r, :] = f(y[r, :] + b)` (`f` optional).
    fn bias_rows(op: Option<Unary>, b: &[f64], y: &mut [f64]) {
        if b.is_empty() {
            return;
        }
        let Some(op) = op else {
            for row in y.chunks_exact_mut(b.len()) {
                for (v, &bb) in row.iter_mut().zip(b) { *v += bb; }
            }
            return;
        };
        specialise!(op, u => {
            for row in y.chunks_exact_mut(b.len()) {
                for (v, &bb) in row.iter_mut().zip(b) { *v = u.eval(*v + bb); }
            }
        })
    }

    /// `g = g ∘ f'` with `f'` taken from the activation output `y` (the backward epilogue of a
    /// fused dense layer; `g` starts as the layer's output cotangent or tangent).
    pub(crate) fn mul_deriv_from_output(act: Unary, y: &[f64], g: &mut [f64]) {
        match act {
            Unary::Tanh => for (g, &y) in g.iter_mut().zip(y) { *g *= 1.0 - y * y; },
            Unary::Sigmoid => for (g, &y) in g.iter_mut().zip(y) { *g *= y * (1.0 - y); },
            _ => for (g, &y) in g.iter_mut().zip(y) { *g *= deriv_from_output(act, y); },
        }
    }
}

/// Derivative of an activation from its output alone, `f'(x) = d(f(x))` — the form the fused
/// dense instruction uses (it keeps `y`, not the pre-activation). Only for
/// [`Unary::deriv_needs_only_output`] ops.
#[inline(always)]
pub(crate) fn deriv_from_output(op: Unary, y: f64) -> f64 {
    match op {
        Unary::Tanh => 1.0 - y * y,
        Unary::Sigmoid => y * (1.0 - y),
        // y > 0 exactly when x > 0 (also for NaN: y = 0, derivative 0 either way).
        Unary::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        _ => unreachable!("deriv_from_output on {op:?}"),
    }
}

/// Fused epilogue of a dense layer, in place on `y: [rows, b.len()]`: `y = act(y + b)` (either
/// part optional). Same operations in the same order as the separate add and unary ops, so the
/// fused forward is bit-identical to the unfused one.
pub(crate) fn bias_act(act: Option<Unary>, b: Option<&[f64]>, y: &mut [f64]) {
    match (act, b) {
        (None, None) => {}
        (Some(u), None) => unary_in_place(u, y),
        (act, Some(b)) => bias_rows(act, b, y),
    }
}

impl Unary {
    /// Whether `f'(x)` is a function of `y = f(x)` alone, with the same formula as `deriv`
    /// (so fusing the op keeps derivatives bit-identical).
    pub(crate) fn deriv_needs_only_output(self) -> bool {
        matches!(self, Unary::Tanh | Unary::Sigmoid | Unary::Relu)
    }
}

/// Elementwise binary ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
}

/// Broadcast geometry: the output is viewed as `rows × cols`, and operand element `(r, c)`
/// sits at `r * s.0 + c * s.1` (full: `(cols, 1)`, scalar: `(0, 0)`, row vector `[cols]`:
/// `(0, 1)`, column `[rows, 1]`: `(1, 0)`). One strided loop serves all broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) a: (usize, usize),
    pub(crate) b: (usize, usize),
}

impl Geom {
    fn full(&self) -> bool {
        self.a == (self.cols, 1) && self.b == (self.cols, 1)
    }

    /// Calls `f(out_index, a_index, b_index)` for every output element.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize, usize, usize)) {
        if self.full() {
            for i in 0..self.rows * self.cols {
                f(i, i, i);
            }
            return;
        }
        for r in 0..self.rows {
            for c in 0..self.cols {
                f(r * self.cols + c, r * self.a.0 + c * self.a.1, r * self.b.0 + c * self.b.1);
            }
        }
    }
}

/// Output shape and geometry for `a ∘ b`, or a shape error.
fn broadcast(op: &'static str, sa: &[usize], sb: &[usize]) -> Result<(Vec<usize>, Geom)> {
    let err = || AutodiffError::ShapeMismatch { op, left: sa.to_vec(), right: sb.to_vec() };
    let view = |s: &[usize]| if s.len() == 2 { (s[0], s[1]) } else { (1, numel(s)) };
    let is_scalar = |s: &[usize]| s.len() <= 1 && numel(s) == 1;
    if sa == sb {
        let (rows, cols) = view(sa);
        return Ok((sa.to_vec(), Geom { rows, cols, a: (cols, 1), b: (cols, 1) }));
    }
    // Stride of the smaller operand `s` against the larger `big`, if it broadcasts.
    let small = |s: &[usize], big: &[usize]| -> Option<(usize, usize)> {
        if is_scalar(s) {
            Some((0, 0))
        } else if big.len() == 2 && s == [big[1]] {
            Some((0, 1))
        } else if big.len() == 2 && s == [big[0], 1] {
            Some((1, 0))
        } else {
            None
        }
    };
    if let Some(sbs) = small(sb, sa) {
        let (rows, cols) = view(sa);
        return Ok((sa.to_vec(), Geom { rows, cols, a: (cols, 1), b: sbs }));
    }
    if let Some(sas) = small(sa, sb) {
        let (rows, cols) = view(sb);
        return Ok((sb.to_vec(), Geom { rows, cols, a: sas, b: (cols, 1) }));
    }
    Err(err())
}

/// `f(dst, p, q)` over a full `rows × cols` destination `dst` and full operand `p`, with `q`
/// at strides `qs` (full, row vector, scalar or column). The contiguous cases are plain zips,
/// so they vectorise; the column case falls back to indexing.
#[inline(always)]
fn zip_full(
    rows: usize,
    cols: usize,
    dst: &mut [f64],
    p: &[f64],
    q: &[f64],
    qs: (usize, usize),
    f: impl Fn(&mut f64, f64, f64),
) {
    if dst.is_empty() {
        return;
    }
    if qs == (cols, 1) {
        for ((d, &p), &q) in dst.iter_mut().zip(p).zip(q) {
            f(d, p, q);
        }
    } else if qs == (0, 1) {
        for (dr, pr) in dst.chunks_exact_mut(cols).zip(p.chunks_exact(cols)) {
            for ((d, &p), &q) in dr.iter_mut().zip(pr).zip(q) {
                f(d, p, q);
            }
        }
    } else if qs == (0, 0) {
        let q = q[0];
        for (d, &p) in dst.iter_mut().zip(p) {
            f(d, p, q);
        }
    } else {
        for r in 0..rows {
            let (dr, pr) = (&mut dst[r * cols..][..cols], &p[r * cols..][..cols]);
            for c in 0..cols {
                f(&mut dr[c], pr[c], q[r * qs.0 + c * qs.1]);
            }
        }
    }
}

const fn is_full(g: &Geom, s: (usize, usize)) -> bool {
    s.0 == g.cols && s.1 == 1
}

multiversion! {
    pub(crate) fn binary_fwd(op: Binary, g: &Geom, a: &[f64], b: &[f64], y: &mut [f64]) {
        let (r, c) = (g.rows, g.cols);
        {
            // One operand is always full (see `broadcast`); put it first.
            if is_full(g, g.a) {
                match op {
                    Binary::Add => zip_full(r, c, y, a, b, g.b, |y, a, b| *y = a + b),
                    Binary::Sub => zip_full(r, c, y, a, b, g.b, |y, a, b| *y = a - b),
                    Binary::Mul => zip_full(r, c, y, a, b, g.b, |y, a, b| *y = a * b),
                    Binary::Div => zip_full(r, c, y, a, b, g.b, |y, a, b| *y = a / b),
                }
            } else {
                match op {
                    Binary::Add => zip_full(r, c, y, b, a, g.a, |y, b, a| *y = a + b),
                    Binary::Sub => zip_full(r, c, y, b, a, g.a, |y, b, a| *y = a - b),
                    Binary::Mul => zip_full(r, c, y, b, a, g.a, |y, b, a| *y = a * b),
                    Binary::Div => zip_full(r, c, y, b, a, g.a, |y, b, a| *y = a / b),
                }
            }
        }
    }

    /// The cotangent of the left operand: `ca (+)= …` (`add == false`: overwrite, see
    /// `unary_vjp`).
    pub(crate) fn binary_vjp_a(op: Binary, add: bool, g: &Geom, b: &[f64], w: &[f64], ca: &mut [f64]) {
        let (r, c) = (g.rows, g.cols);
        {
            if is_full(g, g.a) {
                // Same element order as `ca`: contiguous, and overwriting is free.
                let ws = (c, 1);
                match (op, add) {
                    (Binary::Add | Binary::Sub, true) => {
                        zip_full(r, c, ca, w, w, ws, |d, w, _| *d += w)
                    }
                    (Binary::Add | Binary::Sub, false) => ca.copy_from_slice(w),
                    (Binary::Mul, true) => zip_full(r, c, ca, w, b, g.b, |d, w, b| *d += w * b),
                    (Binary::Mul, false) => zip_full(r, c, ca, w, b, g.b, |d, w, b| *d = w * b),
                    (Binary::Div, true) => zip_full(r, c, ca, w, b, g.b, |d, w, b| *d += w / b),
                    (Binary::Div, false) => zip_full(r, c, ca, w, b, g.b, |d, w, b| *d = w / b),
                }
                return;
            }
            // Broadcast operand: a reduction over the broadcast axis.
            if !add {
                ca.fill(0.0);
            }
            match op {
                Binary::Add | Binary::Sub => g.for_each(|i, ia, _| ca[ia] += w[i]),
                Binary::Mul => g.for_each(|i, ia, ib| ca[ia] += w[i] * b[ib]),
                Binary::Div => g.for_each(|i, ia, ib| ca[ia] += w[i] / b[ib]),
            }
        }
    }

    /// The cotangent of the right operand (`y` is the op's output), `cb (+)= …`.
    pub(crate) fn binary_vjp_b(
        op: Binary,
        add: bool,
        g: &Geom,
        a: &[f64],
        b: &[f64],
        y: &[f64],
        w: &[f64],
        cb: &mut [f64],
    ) {
        let (r, c) = (g.rows, g.cols);
        {
            if is_full(g, g.b) {
                let ws = (c, 1);
                match (op, add) {
                    (Binary::Add, true) => zip_full(r, c, cb, w, w, ws, |d, w, _| *d += w),
                    (Binary::Add, false) => cb.copy_from_slice(w),
                    (Binary::Sub, true) => zip_full(r, c, cb, w, w, ws, |d, w, _| *d -= w),
                    (Binary::Sub, false) => zip_full(r, c, cb, w, w, ws, |d, w, _| *d = -w),
                    (Binary::Mul, true) => zip_full(r, c, cb, w, a, g.a, |d, w, a| *d += w * a),
                    (Binary::Mul, false) => zip_full(r, c, cb, w, a, g.a, |d, w, a| *d = w * a),
                    // ∂(a/b)/∂b = -a/b² = -y/b: reuses the quotient instead of squaring b (b and
                    // y are both full here).
                    (Binary::Div, true) => {
                        for ((d, &w), (&y, &b)) in cb.iter_mut().zip(w).zip(y.iter().zip(b)) {
                            *d -= w * y / b;
                        }
                    }
                    (Binary::Div, false) => {
                        for ((d, &w), (&y, &b)) in cb.iter_mut().zip(w).zip(y.iter().zip(b)) {
                            *d = -(w * y / b);
                        }
                    }
                }
                return;
            }
            if !add {
                cb.fill(0.0);
            }
            match op {
                Binary::Add => g.for_each(|i, _, ib| cb[ib] += w[i]),
                Binary::Sub => g.for_each(|i, _, ib| cb[ib] -= w[i]),
                Binary::Mul => g.for_each(|i, ia, ib| cb[ib] += w[i] * a[ia]),
                Binary::Div => g.for_each(|i, _, ib| cb[ib] -= w[i] * y[i] / b[ib]),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn binary_jvp(
    op: Binary,
    g: &Geom,
    a: &[f64],
    b: &[f64],
    y: &[f64],
    ta: &[f64],
    tb: &[f64],
    ty: &mut [f64],
) {
    match op {
        Binary::Add => g.for_each(|i, ia, ib| ty[i] = ta[ia] + tb[ib]),
        Binary::Sub => g.for_each(|i, ia, ib| ty[i] = ta[ia] - tb[ib]),
        Binary::Mul => g.for_each(|i, ia, ib| ty[i] = ta[ia] * b[ib] + a[ia] * tb[ib]),
        Binary::Div => g.for_each(|i, ia, ib| ty[i] = (ta[ia] - y[i] * tb[ib]) / b[ib]),
    }
}

macro_rules! unary_builders {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, a: Var) -> Result<Var> {
                self.unary($op, a)
            }
        )*
    };
}

macro_rules! binary_builders {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {
        $(
            $(#[$doc])*
            ///
            /// Shapes: equal, either a scalar (`[]` or `[1]`), `[m,n] ∘ [n]` (row broadcast) or
            /// `[m,n] ∘ [m,1]` (column broadcast), in either order.
            pub fn $name(&mut self, a: Var, b: Var) -> Result<Var> {
                self.binary($op, a, b)
            }
        )*
    };
}

impl Graph {
    fn unary(&mut self, op: Unary, a: Var) -> Result<Var> {
        let ia = self.check(a)?;
        let shape = self.shape_of(a)?;
        Ok(self.push(shape, Op::Unary(op, ia)))
    }

    fn binary(&mut self, op: Binary, a: Var, b: Var) -> Result<Var> {
        let (ia, ib) = (self.check(a)?, self.check(b)?);
        let (shape, geom) = broadcast(op.name(), self.shape(a)?, self.shape(b)?)?;
        Ok(self.push(shape, Op::Binary(op, ia, ib, geom)))
    }

    unary_builders! {
        /// `-a`.
        neg => Unary::Neg;
        /// `exp(a)`.
        exp => Unary::Exp;
        /// Natural logarithm (derivative `1/a`; keep `a > 0`).
        ln => Unary::Ln;
        /// Square root (derivative `1/(2√a)`; keep `a > 0`).
        sqrt => Unary::Sqrt;
        /// `a²`.
        square => Unary::Square;
        /// `tanh(a)`.
        tanh => Unary::Tanh;
        /// Logistic `1/(1+e^{-a})`, overflow-free for any `a`.
        sigmoid => Unary::Sigmoid;
        /// `max(a, 0)`; derivative 0 at the kink.
        relu => Unary::Relu;
        /// `ln(1+e^a)` computed as `max(a,0) + ln1p(e^{-|a|})` (no overflow, no cancellation).
        softplus => Unary::Softplus;
        /// `sin(a)`.
        sin => Unary::Sin;
        /// `cos(a)`.
        cos => Unary::Cos;
    }

    /// `a^k` for an integer power `k` (any sign; `k < 0` needs `a ≠ 0`).
    pub fn powi(&mut self, a: Var, k: i32) -> Result<Var> {
        self.unary(Unary::Powi(k), a)
    }

    /// `f · a` for a fixed factor `f`.
    pub fn scale(&mut self, a: Var, f: f64) -> Result<Var> {
        self.unary(Unary::Scale(f), a)
    }

    /// `a + c` for a fixed offset `c`.
    pub fn add_scalar(&mut self, a: Var, c: f64) -> Result<Var> {
        self.unary(Unary::AddScalar(c), a)
    }

    binary_builders! {
        /// `a + b`, elementwise.
        add => Binary::Add;
        /// `a - b`, elementwise.
        sub => Binary::Sub;
        /// `a · b`, elementwise (Hadamard).
        mul => Binary::Mul;
        /// `a / b`, elementwise.
        div => Binary::Div;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let (s, g) = broadcast("add", &[3, 4], &[4]).unwrap();
        assert_eq!((s, g.b), (vec![3, 4], (0, 1)));
        let (s, g) = broadcast("add", &[3, 1], &[3, 4]).unwrap();
        assert_eq!((s, g.a), (vec![3, 4], (1, 0)));
        let (s, g) = broadcast("add", &[], &[5]).unwrap();
        assert_eq!((s, g.a), (vec![5], (0, 0)));
        assert!(matches!(
            broadcast("mul", &[3, 4], &[3]),
            Err(AutodiffError::ShapeMismatch { op: "mul", .. })
        ));
        assert!(broadcast("add", &[2, 3], &[3, 2]).is_err());
    }

    #[test]
    fn stable_forms_survive_extremes() {
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((sigmoid(-40.0) - (-40.0f64).exp()).abs() < 1e-30);
        assert_eq!(Unary::Softplus.eval(800.0), 800.0);
        let tiny = Unary::Softplus.eval(-40.0);
        assert!((tiny - (-40.0f64).exp()).abs() / tiny < 1e-15);
    }
}
