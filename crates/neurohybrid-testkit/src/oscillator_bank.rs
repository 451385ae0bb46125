//! A large, cheap, linear system for memory tests of the sensitivity methods: many states,
//! trivial right-hand side, so a 20,000-step solve costs milliseconds per thousand steps and
//! what is measured is what the adjoint stores, not what the system computes.

use neurohybrid_system::{Jvp, OdeSystem, Vjp};

/// A bank of `n/2` decoupled oscillators `x_i'' = −ω_i² x_i` with `ω_i = 1 + p0·i/(n/2)`,
/// written as a first-order system with states `(x_0, x_0', x_1, x_1', …)` and one parameter.
#[derive(Debug, Clone)]
pub struct OscillatorBank {
    n: usize,
}

impl OscillatorBank {
    /// `n` states (`n/2` oscillators); `n` should be even.
    pub fn new(n: usize) -> Self {
        Self { n }
    }

    fn omega(&self, p: &[f64], i: usize) -> f64 {
        1.0 + p[0] * self.slope(i)
    }

    /// `∂ω_i/∂p0`.
    fn slope(&self, i: usize) -> f64 {
        i as f64 / (self.n / 2) as f64
    }
}

impl OdeSystem for OscillatorBank {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        for i in 0..self.n / 2 {
            let w = self.omega(p, i);
            dy[2 * i] = y[2 * i + 1];
            dy[2 * i + 1] = -w * w * y[2 * i];
        }
    }
}

impl Vjp for OscillatorBank {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut gp = 0.0;
        for i in 0..self.n / 2 {
            let om = self.omega(p, i);
            w_y[2 * i] = -om * om * w[2 * i + 1];
            w_y[2 * i + 1] = w[2 * i];
            gp += -2.0 * om * self.slope(i) * y[2 * i] * w[2 * i + 1];
        }
        if let Some(g) = w_p.first_mut() {
            *g = gp;
        }
    }
}

impl Jvp for OscillatorBank {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let dp = v_p.first().copied().unwrap_or(0.0);
        for i in 0..self.n / 2 {
            let om = self.omega(p, i);
            out[2 * i] = v_y[2 * i + 1];
            out[2 * i + 1] = -om * om * v_y[2 * i] - 2.0 * om * self.slope(i) * dp * y[2 * i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vjp_and_jvp_are_transposes_and_match_finite_differences() {
        let bank = OscillatorBank::new(8);
        let y = [0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 0.05, -1.3];
        let p = [0.6];
        let (vy, vp) = ([0.2, 0.1, -0.4, 0.3, 0.8, -0.6, 0.5, 0.7], [0.9]);
        let w = [1.0, -0.5, 0.25, 0.3, -0.8, 0.6, 0.1, 0.4];
        let mut jv = [0.0; 8];
        bank.jvp(0.0, &y, &p, &vy, &vp, &mut jv);
        let (mut wy, mut wp) = ([0.0; 8], [0.0]);
        bank.vjp(0.0, &y, &p, &w, &mut wy, &mut wp);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = wy.iter().zip(&vy).map(|(a, b)| a * b).sum::<f64>() + wp[0] * vp[0];
        assert!((lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
        // Central differences along (vy, vp).
        let h = 1e-6;
        let shifted = |s: f64| {
            let ys: Vec<f64> = y.iter().zip(&vy).map(|(a, b)| a + s * h * b).collect();
            let mut f = [0.0; 8];
            bank.rhs(0.0, &ys, &[p[0] + s * h * vp[0]], &mut f);
            f
        };
        let (fp, fm) = (shifted(1.0), shifted(-1.0));
        for k in 0..8 {
            let fd = (fp[k] - fm[k]) / (2.0 * h);
            assert!((fd - jv[k]).abs() < 1e-8, "component {k}: fd {fd} vs jvp {}", jv[k]);
        }
    }
}
