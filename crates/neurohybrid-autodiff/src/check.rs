//! Derivative checks: VJP against central finite differences, and the dot-product test
//! `⟨w, J v⟩ = ⟨Jᵀ w, v⟩` tying the JVP and VJP of a tape together.
//!
//! These helpers allocate (they build workspaces and copies); they are for tests, not hot loops.

use crate::error::Result;
use crate::tape::Tape;

/// Central-difference step for a coordinate of size `x`: `h = ε^{1/3} · max(|x|, 1)`.
///
/// Why: the central difference has truncation error `O(h²)` and rounding error `O(ε/h)`;
/// balancing them gives `h ∝ ε^{1/3}` (≈ 6·10⁻⁶), and scaling with `|x|` keeps `x + h ≠ x` for
/// large coordinates (Griewank–Walther, *Evaluating Derivatives*, §8; Nocedal–Wright §8.1).
pub fn fd_step(x: f64) -> f64 {
    f64::EPSILON.cbrt() * x.abs().max(1.0)
}

/// Result of [`check_vjp`].
#[derive(Debug, Clone, PartialEq)]
pub struct VjpCheck {
    /// The tape's VJP, one vector per input.
    pub vjp: Vec<Vec<f64>>,
    /// The finite-difference estimate, one vector per input.
    pub fd: Vec<Vec<f64>>,
    /// Largest normwise relative error over inputs: `‖vjp_i − fd_i‖_∞ / max(‖vjp_i‖_∞,
    /// ‖fd_i‖_∞)` (0 where both vanish). Normwise, because an elementwise ratio is meaningless
    /// for entries that are zero up to the finite-difference noise.
    pub max_rel_err: f64,
}

/// Compares the tape's VJP at `inputs` with cotangents `w` against central finite differences of
/// `φ(x) = Σ_j ⟨w_j, out_j(x)⟩`, one input coordinate at a time.
pub fn check_vjp(tape: &Tape, inputs: &[&[f64]], w: &[&[f64]]) -> Result<VjpCheck> {
    let mut ws = tape.workspace();
    tape.forward(&mut ws, inputs)?;
    let mut vjp: Vec<Vec<f64>> =
        (0..tape.n_inputs()).map(|i| vec![0.0; tape.input_len(i)]).collect();
    {
        let mut slots: Vec<&mut [f64]> = vjp.iter_mut().map(|v| v.as_mut_slice()).collect();
        tape.vjp(&mut ws, w, &mut slots)?;
    }
    let mut x: Vec<Vec<f64>> = inputs.iter().map(|s| s.to_vec()).collect();
    let mut phi = |x: &[Vec<f64>]| -> Result<f64> {
        let refs: Vec<&[f64]> = x.iter().map(|v| v.as_slice()).collect();
        tape.forward(&mut ws, &refs)?;
        Ok((0..tape.n_outputs())
            .map(|j| ws.output(j).iter().zip(w[j]).map(|(a, b)| a * b).sum::<f64>())
            .sum())
    };
    let mut fd = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let mut g = vec![0.0; x[i].len()];
        for (k, gk) in g.iter_mut().enumerate() {
            let x0 = x[i][k];
            let h = fd_step(x0);
            x[i][k] = x0 + h;
            let up = phi(&x)?;
            x[i][k] = x0 - h;
            let down = phi(&x)?;
            x[i][k] = x0;
            // Divide by the step actually taken (x0+h and x0-h are rounded).
            *gk = (up - down) / ((x0 + h) - (x0 - h));
        }
        fd.push(g);
    }
    let max_rel_err = vjp.iter().zip(&fd).map(|(a, b)| rel_err_inf(a, b)).fold(0.0, f64::max);
    Ok(VjpCheck { vjp, fd, max_rel_err })
}

/// `‖a − b‖_∞ / max(‖a‖_∞, ‖b‖_∞)`, 0 when both vanish.
pub fn rel_err_inf(a: &[f64], b: &[f64]) -> f64 {
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = a.iter().chain(b).map(|x| x.abs()).fold(0.0, f64::max);
    if scale == 0.0 { diff } else { diff / scale }
}

/// Result of [`check_jvp_vjp_dot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DotCheck {
    /// `Σ_j ⟨w_j, (J v)_j⟩` from the JVP.
    pub w_jv: f64,
    /// `Σ_i ⟨(Jᵀ w)_i, v_i⟩` from the VJP.
    pub jtw_v: f64,
    /// `|w_jv − jtw_v| / max(|w_jv|, |jtw_v|)`, normalised by the sum of absolute products when
    /// that is larger (so cancellation in either sum is not blamed on the tape).
    pub rel_err: f64,
}

/// The dot-product test: with tangents `v` (one per input) and cotangents `w` (one per
/// output), `⟨w, J v⟩` must equal `⟨Jᵀ w, v⟩` to rounding.
pub fn check_jvp_vjp_dot(
    tape: &Tape,
    inputs: &[&[f64]],
    v: &[&[f64]],
    w: &[&[f64]],
) -> Result<DotCheck> {
    let mut ws = tape.workspace();
    tape.forward(&mut ws, inputs)?;
    let mut jv: Vec<Vec<f64>> =
        (0..tape.n_outputs()).map(|j| vec![0.0; tape.output_len(j)]).collect();
    {
        let mut slots: Vec<&mut [f64]> = jv.iter_mut().map(|x| x.as_mut_slice()).collect();
        tape.jvp(&mut ws, v, &mut slots)?;
    }
    let mut jtw: Vec<Vec<f64>> =
        (0..tape.n_inputs()).map(|i| vec![0.0; tape.input_len(i)]).collect();
    {
        let mut slots: Vec<&mut [f64]> = jtw.iter_mut().map(|x| x.as_mut_slice()).collect();
        tape.vjp(&mut ws, w, &mut slots)?;
    }
    let (mut w_jv, mut abs_l) = (0.0, 0.0);
    for (a, b) in jv.iter().zip(w) {
        for (x, y) in a.iter().zip(b.iter()) {
            w_jv += x * y;
            abs_l += (x * y).abs();
        }
    }
    let (mut jtw_v, mut abs_r) = (0.0, 0.0);
    for (a, b) in jtw.iter().zip(v) {
        for (x, y) in a.iter().zip(b.iter()) {
            jtw_v += x * y;
            abs_r += (x * y).abs();
        }
    }
    let scale = f64::max(abs_l, abs_r);
    let rel_err = if scale == 0.0 { (w_jv - jtw_v).abs() } else { (w_jv - jtw_v).abs() / scale };
    Ok(DotCheck { w_jv, jtw_v, rel_err })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;

    #[test]
    fn step_scales_with_x() {
        assert_eq!(fd_step(0.0), fd_step(1.0));
        assert!((fd_step(1e4) / fd_step(1.0) - 1e4).abs() < 1e-9);
    }

    #[test]
    fn a_wrong_derivative_is_caught() {
        // sin's VJP is right, so perturbing w's pairing (checking cos instead) must fail.
        let mut g = Graph::new();
        let x = g.input("x", &[3]).unwrap();
        let s = g.sin(x).unwrap();
        let tape = g.compile(&[s]).unwrap();
        let x0 = [0.3, -1.2, 2.0];
        let ok = check_vjp(&tape, &[&x0], &[&[1.0, 2.0, -1.0]]).unwrap();
        assert!(ok.max_rel_err < 1e-8, "{ok:?}");
        let wrong: Vec<f64> = ok.vjp[0].iter().map(|g| g * 1.001).collect();
        assert!(rel_err_inf(&wrong, &ok.fd[0]) > 1e-4);
    }
}
