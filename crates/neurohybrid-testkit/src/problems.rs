//! Reference problems as systems with hand-written derivatives (VJP, JVP, Jacobian), so the same
//! problems exercise explicit, implicit and sensitivity code.

use neurohybrid_system::{
    CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp, dense_pattern, tridiagonal_pattern,
};

/// A system with a closed-form solution `y(t)` for any `(t0, y0, p)`.
pub trait ExactSolution: OdeSystem {
    /// Write `y(t)` for the initial value `y(t0) = y0`.
    fn exact(&self, t0: f64, y0: &[f64], p: &[f64], t: f64, out: &mut [f64]);
}

/// Implements `Jacobian` for a small system through a dense `J` computed by `$fill`.
macro_rules! dense_jacobian {
    ($ty:ty, $fill:expr) => {
        impl Jacobian for $ty {
            fn sparsity(&self) -> &SparsityPattern {
                &self.pattern
            }
            fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
                let n = self.n_states();
                let values = out.values_mut();
                for (i, row) in values.chunks_mut(n).enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = $fill(self, t, y, p, i, j);
                    }
                }
            }
        }
    };
}

/// Implements `Vjp`/`Jvp` from the entry functions `jy(i, j)` (∂f_i/∂y_j) and `jp(i, k)`.
macro_rules! small_derivatives {
    ($ty:ty, $jy:expr, $jp:expr) => {
        impl Vjp for $ty {
            fn vjp(
                &self,
                t: f64,
                y: &[f64],
                p: &[f64],
                w: &[f64],
                w_y: &mut [f64],
                w_p: &mut [f64],
            ) {
                let (n, m) = (self.n_states(), self.n_params());
                for j in 0..n {
                    w_y[j] = (0..n).map(|i| w[i] * $jy(self, t, y, p, i, j)).sum();
                }
                if !w_p.is_empty() {
                    for k in 0..m {
                        w_p[k] = (0..n).map(|i| w[i] * $jp(self, t, y, p, i, k)).sum();
                    }
                }
            }
        }
        impl Jvp for $ty {
            fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
                let (n, m) = (self.n_states(), self.n_params());
                for i in 0..n {
                    let mut s: f64 = (0..n).map(|j| $jy(self, t, y, p, i, j) * v_y[j]).sum();
                    if !v_p.is_empty() {
                        s += (0..m).map(|k| $jp(self, t, y, p, i, k) * v_p[k]).sum::<f64>();
                    }
                    out[i] = s;
                }
            }
        }
        dense_jacobian!($ty, $jy);
    };
}

/// `y' = −λ y`, `p = [λ]`; exact `y0·e^{−λ(t−t0)}`.
#[derive(Debug, Clone)]
pub struct ExponentialDecay {
    pattern: SparsityPattern,
}

impl Default for ExponentialDecay {
    fn default() -> Self {
        Self { pattern: dense_pattern(1) }
    }
}

impl OdeSystem for ExponentialDecay {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = -p[0] * y[0];
    }
}

small_derivatives!(
    ExponentialDecay,
    |_: &ExponentialDecay, _t: f64, _y: &[f64], p: &[f64], _i: usize, _j: usize| -p[0],
    |_: &ExponentialDecay, _t: f64, y: &[f64], _p: &[f64], _i: usize, _k: usize| -y[0]
);

impl ExactSolution for ExponentialDecay {
    fn exact(&self, t0: f64, y0: &[f64], p: &[f64], t: f64, out: &mut [f64]) {
        out[0] = y0[0] * (-p[0] * (t - t0)).exp();
    }
}

/// `x' = v`, `v' = −ω² x`, `p = [ω]`; exact rotation.
#[derive(Debug, Clone)]
pub struct HarmonicOscillator {
    pattern: SparsityPattern,
}

impl Default for HarmonicOscillator {
    fn default() -> Self {
        Self { pattern: dense_pattern(2) }
    }
}

impl OdeSystem for HarmonicOscillator {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = y[1];
        dy[1] = -p[0] * p[0] * y[0];
    }
}

small_derivatives!(
    HarmonicOscillator,
    |_: &HarmonicOscillator, _t: f64, _y: &[f64], p: &[f64], i: usize, j: usize| match (i, j) {
        (0, 1) => 1.0,
        (1, 0) => -p[0] * p[0],
        _ => 0.0,
    },
    |_: &HarmonicOscillator, _t: f64, y: &[f64], p: &[f64], i: usize, _k: usize| if i == 1 {
        -2.0 * p[0] * y[0]
    } else {
        0.0
    }
);

impl ExactSolution for HarmonicOscillator {
    fn exact(&self, t0: f64, y0: &[f64], p: &[f64], t: f64, out: &mut [f64]) {
        let w = p[0];
        let (s, c) = (w * (t - t0)).sin_cos();
        out[0] = y0[0] * c + y0[1] / w * s;
        out[1] = -y0[0] * w * s + y0[1] * c;
    }
}

/// `u' = r u (1 − u)`, `p = [r]`; exact `u0 e^{r t}/(1 − u0 + u0 e^{r t})`.
#[derive(Debug, Clone)]
pub struct Logistic {
    pattern: SparsityPattern,
}

impl Default for Logistic {
    fn default() -> Self {
        Self { pattern: dense_pattern(1) }
    }
}

impl OdeSystem for Logistic {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = p[0] * y[0] * (1.0 - y[0]);
    }
}

small_derivatives!(
    Logistic,
    |_: &Logistic, _t: f64, y: &[f64], p: &[f64], _i: usize, _j: usize| p[0] * (1.0 - 2.0 * y[0]),
    |_: &Logistic, _t: f64, y: &[f64], _p: &[f64], _i: usize, _k: usize| y[0] * (1.0 - y[0])
);

impl ExactSolution for Logistic {
    fn exact(&self, t0: f64, y0: &[f64], p: &[f64], t: f64, out: &mut [f64]) {
        let e = (p[0] * (t - t0)).exp();
        out[0] = y0[0] * e / (1.0 - y0[0] + y0[0] * e);
    }
}

/// Lotka–Volterra predator–prey: `x' = αx − βxy`, `y' = δxy − γy`, `p = [α, β, γ, δ]`.
#[derive(Debug, Clone)]
pub struct LotkaVolterra {
    pattern: SparsityPattern,
}

impl Default for LotkaVolterra {
    fn default() -> Self {
        Self { pattern: dense_pattern(2) }
    }
}

impl OdeSystem for LotkaVolterra {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        4
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = p[0] * y[0] - p[1] * y[0] * y[1];
        dy[1] = p[3] * y[0] * y[1] - p[2] * y[1];
    }
}

small_derivatives!(
    LotkaVolterra,
    |_: &LotkaVolterra, _t: f64, y: &[f64], p: &[f64], i: usize, j: usize| match (i, j) {
        (0, 0) => p[0] - p[1] * y[1],
        (0, 1) => -p[1] * y[0],
        (1, 0) => p[3] * y[1],
        _ => p[3] * y[0] - p[2],
    },
    |_: &LotkaVolterra, _t: f64, y: &[f64], _p: &[f64], i: usize, k: usize| match (i, k) {
        (0, 0) => y[0],
        (0, 1) => -y[0] * y[1],
        (1, 2) => -y[1],
        (1, 3) => y[0] * y[1],
        _ => 0.0,
    }
);

/// Robertson's chemical kinetics (stiff): `p = [k1, k2, k3] = [0.04, 3e7, 1e4]`,
/// `y1' = −k1 y1 + k3 y2 y3`, `y2' = k1 y1 − k3 y2 y3 − k2 y2²`, `y3' = k2 y2²`.
#[derive(Debug, Clone)]
pub struct Robertson {
    pattern: SparsityPattern,
}

impl Default for Robertson {
    fn default() -> Self {
        Self { pattern: dense_pattern(3) }
    }
}

impl OdeSystem for Robertson {
    fn n_states(&self) -> usize {
        3
    }
    fn n_params(&self) -> usize {
        3
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let (a, b, c) = (p[0] * y[0], p[2] * y[1] * y[2], p[1] * y[1] * y[1]);
        dy[0] = -a + b;
        dy[1] = a - b - c;
        dy[2] = c;
    }
}

small_derivatives!(
    Robertson,
    |_: &Robertson, _t: f64, y: &[f64], p: &[f64], i: usize, j: usize| {
        // rows of ∂(a, b, c)/∂y, combined per equation
        let da = [p[0], 0.0, 0.0];
        let db = [0.0, p[2] * y[2], p[2] * y[1]];
        let dc = [0.0, 2.0 * p[1] * y[1], 0.0];
        match i {
            0 => -da[j] + db[j],
            1 => da[j] - db[j] - dc[j],
            _ => dc[j],
        }
    },
    |_: &Robertson, _t: f64, y: &[f64], _p: &[f64], i: usize, k: usize| {
        let (a, c, b) = (y[0], y[1] * y[1], y[1] * y[2]); // ∂a/∂k1, ∂c/∂k2, ∂b/∂k3
        match (i, k) {
            (0, 0) => -a,
            (0, 2) => b,
            (1, 0) => a,
            (1, 1) => -c,
            (1, 2) => -b,
            (2, 1) => c,
            _ => 0.0,
        }
    }
);

/// Van der Pol oscillator: `y1' = y2`, `y2' = μ(1 − y1²) y2 − y1`, `p = [μ]`.
#[derive(Debug, Clone)]
pub struct VanDerPol {
    pattern: SparsityPattern,
}

impl Default for VanDerPol {
    fn default() -> Self {
        Self { pattern: dense_pattern(2) }
    }
}

impl OdeSystem for VanDerPol {
    fn n_states(&self) -> usize {
        2
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        dy[0] = y[1];
        dy[1] = p[0] * (1.0 - y[0] * y[0]) * y[1] - y[0];
    }
}

small_derivatives!(
    VanDerPol,
    |_: &VanDerPol, _t: f64, y: &[f64], p: &[f64], i: usize, j: usize| match (i, j) {
        (0, 0) => 0.0,
        (0, 1) => 1.0,
        (1, 0) => -2.0 * p[0] * y[0] * y[1] - 1.0,
        _ => p[0] * (1.0 - y[0] * y[0]),
    },
    |_: &VanDerPol, _t: f64, y: &[f64], _p: &[f64], i: usize, _k: usize| if i == 1 {
        (1.0 - y[0] * y[0]) * y[1]
    } else {
        0.0
    }
);

/// Fisher–KPP `u_t = D u_xx + r u(1 − u)` on `[a, b]` by the method of lines: `n` interior
/// nodes, second-order central differences, time-dependent Dirichlet values from the exact
/// traveling wave (Ablowitz & Zeppetella 1979) `u = [1 + exp(√(r/(6D)) x − (5r/6) t)]^{−2}`.
/// `p = [D, r]`. The semi-discrete solution differs from the exact wave by `O(dx²)`.
#[derive(Debug, Clone)]
pub struct FisherWave {
    n: usize,
    a: f64,
    dx: f64,
    pattern: SparsityPattern,
}

impl FisherWave {
    /// `n` interior nodes on `[a, b]` (spacing `(b − a)/(n + 1)`).
    pub fn new(n: usize, a: f64, b: f64) -> Self {
        Self { n, a, dx: (b - a) / (n as f64 + 1.0), pattern: tridiagonal_pattern(n) }
    }

    /// Node `i` (0 and `n + 1` are the boundary nodes).
    pub fn x(&self, i: usize) -> f64 {
        self.a + i as f64 * self.dx
    }

    /// Grid spacing.
    pub fn dx(&self) -> f64 {
        self.dx
    }

    /// The exact traveling wave at `(x, t)` for `p = [D, r]`.
    pub fn wave(p: &[f64], x: f64, t: f64) -> f64 {
        let (d, r) = (p[0], p[1]);
        let z = (r / (6.0 * d)).sqrt() * x - 5.0 * r / 6.0 * t;
        (1.0 + z.exp()).powi(-2)
    }

    /// The exact wave sampled at the interior nodes.
    pub fn wave_on_grid(&self, p: &[f64], t: f64, out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = Self::wave(p, self.x(i + 1), t);
        }
    }

    fn neighbours(&self, t: f64, y: &[f64], p: &[f64], i: usize) -> (f64, f64) {
        let left = if i == 0 { Self::wave(p, self.x(0), t) } else { y[i - 1] };
        let right = if i + 1 == self.n { Self::wave(p, self.x(self.n + 1), t) } else { y[i + 1] };
        (left, right)
    }
}

impl OdeSystem for FisherWave {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let k = p[0] / (self.dx * self.dx);
        for i in 0..self.n {
            let (l, r) = self.neighbours(t, y, p, i);
            dy[i] = k * (l - 2.0 * y[i] + r) + p[1] * y[i] * (1.0 - y[i]);
        }
    }
}

impl FisherWave {
    /// `(u, ∂u/∂D, ∂u/∂r)` of the exact wave.
    fn wave_grad(p: &[f64], x: f64, t: f64) -> (f64, f64, f64) {
        let (d, r) = (p[0], p[1]);
        let zx = (r / (6.0 * d)).sqrt() * x;
        let z = zx - 5.0 * r / 6.0 * t;
        let ez = z.exp();
        let u = (1.0 + ez).powi(-2);
        let du_dz = -2.0 * ez * (1.0 + ez).powi(-3);
        (u, du_dz * (-zx / (2.0 * d)), du_dz * (zx / (2.0 * r) - 5.0 * t / 6.0))
    }

    /// `∂f_i/∂(D, r)` including the Dirichlet data's dependence on the parameters.
    fn param_derivatives(&self, t: f64, y: &[f64], p: &[f64], i: usize) -> (f64, f64) {
        let inv_dx2 = 1.0 / (self.dx * self.dx);
        let k = p[0] * inv_dx2;
        let (l, r) = self.neighbours(t, y, p, i);
        let mut d_d = (l - 2.0 * y[i] + r) * inv_dx2;
        let mut d_r = y[i] * (1.0 - y[i]);
        for (is_boundary, node) in [(i == 0, 0), (i + 1 == self.n, self.n + 1)] {
            if is_boundary {
                let (_, ud, ur) = Self::wave_grad(p, self.x(node), t);
                d_d += k * ud;
                d_r += k * ur;
            }
        }
        (d_d, d_r)
    }
}

impl Jvp for FisherWave {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let k = p[0] / (self.dx * self.dx);
        for i in 0..self.n {
            let vl = if i == 0 { 0.0 } else { v_y[i - 1] };
            let vr = if i + 1 == self.n { 0.0 } else { v_y[i + 1] };
            out[i] = k * (vl - 2.0 * v_y[i] + vr) + p[1] * (1.0 - 2.0 * y[i]) * v_y[i];
            if !v_p.is_empty() {
                let (d_d, d_r) = self.param_derivatives(t, y, p, i);
                out[i] += v_p[0] * d_d + v_p[1] * d_r;
            }
        }
    }
}

impl Vjp for FisherWave {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        // The diffusion stencil is symmetric, so its transpose is itself.
        let k = p[0] / (self.dx * self.dx);
        for i in 0..self.n {
            let wl = if i == 0 { 0.0 } else { w[i - 1] };
            let wr = if i + 1 == self.n { 0.0 } else { w[i + 1] };
            w_y[i] = k * (wl - 2.0 * w[i] + wr) + p[1] * (1.0 - 2.0 * y[i]) * w[i];
        }
        if !w_p.is_empty() {
            w_p.fill(0.0);
            for (i, &wi) in w.iter().enumerate() {
                let (d_d, d_r) = self.param_derivatives(t, y, p, i);
                w_p[0] += wi * d_d;
                w_p[1] += wi * d_r;
            }
        }
    }
}

impl Jacobian for FisherWave {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, _t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let k = p[0] / (self.dx * self.dx);
        let values = out.values_mut();
        let mut slot = 0;
        for (i, &yi) in y.iter().enumerate().take(self.n) {
            if i > 0 {
                values[slot] = k;
                slot += 1;
            }
            values[slot] = -2.0 * k + p[1] * (1.0 - 2.0 * yi);
            slot += 1;
            if i + 1 < self.n {
                values[slot] = k;
                slot += 1;
            }
        }
    }
}
