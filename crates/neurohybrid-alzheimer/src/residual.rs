//! [`LoadScaled`]: the hybrid's per-node residual `r_i = c_i · g(c_i; w)`.
//!
//! Why the factor `c_i`: a reaction term of a protein-spreading model must vanish where there is
//! no protein, or it creates load from nothing in every unseeded region (a free network has
//! `g(0) ≠ 0`, and L-BFGS would spend its effort holding `g(0)` at exactly zero across 68
//! regions). With the factor, `g` is a learned per-unit rate — for the synthetic truth it
//! should approach the missing clearance rate `−γ c/(c_s + c)` (plus whatever the fitted `α`
//! leaves over). The network `g` is `neurohybrid-hybrid`'s [`NetworkRhs::pointwise`]; this
//! wrapper only applies the product rule to its exact VJP and JVP.

use std::cell::RefCell;

use neurohybrid_hybrid::{NetworkRhs, Parameterized};
use neurohybrid_system::{Jvp, OdeSystem, ParamLayout, Vjp};

/// `r(c; w) = c ⊙ g(c; w)` for a pointwise network `g` with one channel per node.
/// `Send`, not `Sync` (the network's tape and the scratch are per instance): clone per thread.
#[derive(Debug, Clone)]
pub struct LoadScaled {
    net: NetworkRhs,
    scratch: RefCell<Vec<f64>>,
}

impl LoadScaled {
    /// Wraps a one-channel pointwise network.
    pub fn new(net: NetworkRhs) -> Self {
        let n = net.n_states();
        Self { net, scratch: RefCell::new(vec![0.0; 2 * n]) }
    }

    /// The per-unit rate `g(c; w)` (the network itself).
    pub fn network(&self) -> &NetworkRhs {
        &self.net
    }
}

impl Parameterized for LoadScaled {
    fn param_layout(&self) -> neurohybrid_hybrid::Result<ParamLayout> {
        self.net.param_layout()
    }
}

impl OdeSystem for LoadScaled {
    fn n_states(&self) -> usize {
        self.net.n_states()
    }
    fn n_params(&self) -> usize {
        self.net.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.net.rhs(t, y, p, dy);
        dy.iter_mut().zip(y).for_each(|(d, c)| *d *= c);
    }
}

impl Vjp for LoadScaled {
    /// `w_y = g ⊙ w + J_gᵀ (c ⊙ w)`, `w_p = (∂g/∂p)ᵀ (c ⊙ w)`.
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let n = y.len();
        let mut s = self.scratch.borrow_mut();
        let (g, cw) = s.split_at_mut(n);
        self.net.rhs(t, y, p, g);
        cw.iter_mut().zip(y.iter().zip(w)).for_each(|(o, (c, wi))| *o = c * wi);
        self.net.vjp(t, y, p, cw, w_y, w_p);
        if !w_y.is_empty() {
            for i in 0..n {
                w_y[i] += g[i] * w[i];
            }
        }
    }
}

impl Jvp for LoadScaled {
    /// `out = v ⊙ g + c ⊙ (J_g v + (∂g/∂p) v_p)`.
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let n = y.len();
        let mut s = self.scratch.borrow_mut();
        let g = &mut s[..n];
        self.net.rhs(t, y, p, g);
        self.net.jvp(t, y, p, v_y, v_p, out);
        for i in 0..n {
            out[i] = y[i] * out[i] + v_y[i] * g[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_nn::{Activation, Init, Mlp, initialize};

    #[test]
    fn product_rule_derivatives_are_consistent_with_finite_differences() {
        let n = 5;
        let mlp = Mlp::new(&[1, 6, 1], Activation::Tanh).unwrap();
        let r = LoadScaled::new(NetworkRhs::pointwise(&mlp, n, 1).unwrap());
        let p = initialize(&mlp, Init::GlorotUniform, 3);
        let m = p.len();
        let y: Vec<f64> = (0..n).map(|i| 0.1 + 0.2 * i as f64).collect();
        let v: Vec<f64> = (0..n).map(|i| 0.3 - 0.1 * i as f64).collect();
        let vp: Vec<f64> = (0..m).map(|j| ((j % 5) as f64 - 2.0) * 0.1).collect();
        let mut jv = vec![0.0; n];
        r.jvp(0.0, &y, &p, &v, &vp, &mut jv);
        let eps = 1e-6;
        let at = |s: f64| {
            let yy: Vec<f64> = y.iter().zip(&v).map(|(a, b)| a + s * b).collect();
            let pp: Vec<f64> = p.iter().zip(&vp).map(|(a, b)| a + s * b).collect();
            let mut out = vec![0.0; n];
            r.rhs(0.0, &yy, &pp, &mut out);
            out
        };
        let (fp, fm) = (at(eps), at(-eps));
        for i in 0..n {
            assert!((jv[i] - (fp[i] - fm[i]) / (2.0 * eps)).abs() < 1e-8);
        }
        let w: Vec<f64> = (0..n).map(|i| 1.0 - 0.3 * i as f64).collect();
        let (mut wy, mut wp) = (vec![0.0; n], vec![0.0; m]);
        r.vjp(0.0, &y, &p, &w, &mut wy, &mut wp);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = wy.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>()
            + wp.iter().zip(&vp).map(|(a, b)| a * b).sum::<f64>();
        assert!((lhs - rhs).abs() < 1e-12);
        // No protein, no reaction.
        let mut out = vec![1.0; n];
        r.rhs(0.0, &[0.0; 5], &p, &mut out);
        assert!(out.iter().all(|o| *o == 0.0));
    }
}
