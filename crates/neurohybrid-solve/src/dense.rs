//! Dense output: each accepted step stores its interpolant as a polynomial in the normalized
//! time `θ = (t − t_n)/h ∈ [0, 1]`, in power basis `y(θ) = Σ_j θʲ c_j`.
//!
//! One representation serves every method: Dopri5's and Tsit5's own continuous extensions
//! (degree 4), cubic Hermite for methods without one, and later variable-order BDF
//! interpolants (each segment records its own degree).

use crate::error::{Result, SolveError};

/// Evaluate `Σ_j θʲ c_j` (Horner) into `out`; `coeffs` holds `d + 1` blocks of length `n`.
pub fn eval_power_basis(coeffs: &[f64], theta: f64, out: &mut [f64]) {
    let n = out.len();
    let d1 = coeffs.len() / n;
    out.copy_from_slice(&coeffs[(d1 - 1) * n..]);
    for j in (0..d1 - 1).rev() {
        let c = &coeffs[j * n..(j + 1) * n];
        out.iter_mut().zip(c).for_each(|(o, c)| *o = *o * theta + c);
    }
}

/// Cubic Hermite interpolant through `(y0, f0)` and `(y1, f1)` over a step `h` (HNW I, II.6,
/// eq. (6.7)), as power-basis coefficients (4 blocks of length n).
pub fn hermite_coefficients(
    y0: &[f64],
    f0: &[f64],
    y1: &[f64],
    f1: &[f64],
    h: f64,
    coeffs: &mut [f64],
) {
    let n = y0.len();
    let (c0, rest) = coeffs.split_at_mut(n);
    let (c1, rest) = rest.split_at_mut(n);
    let (c2, c3) = rest.split_at_mut(n);
    for i in 0..n {
        let dy = y1[i] - y0[i];
        c0[i] = y0[i];
        c1[i] = h * f0[i];
        c2[i] = 3.0 * dy - h * (2.0 * f0[i] + f1[i]);
        c3[i] = -2.0 * dy + h * (f0[i] + f1[i]);
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    t: f64,
    h: f64,
    offset: usize,
    degree: usize,
}

/// The piecewise-polynomial solution of a solve with `SaveAt::Dense`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseOutput {
    n: usize,
    direction: f64,
    segments: Vec<Segment>,
    coeffs: Vec<f64>,
}

impl DenseOutput {
    pub(crate) fn new(n: usize, direction: f64) -> Self {
        Self { n, direction, segments: Vec::new(), coeffs: Vec::new() }
    }

    pub(crate) fn push(&mut self, t: f64, h: f64, coeffs: &[f64]) {
        let degree = coeffs.len() / self.n - 1;
        self.segments.push(Segment { t, h, offset: self.coeffs.len(), degree });
        self.coeffs.extend_from_slice(coeffs);
    }

    /// Number of steps stored.
    pub fn n_segments(&self) -> usize {
        self.segments.len()
    }

    /// The covered interval `(start, end)` in integration order.
    pub fn span(&self) -> Option<(f64, f64)> {
        let first = self.segments.first()?;
        let last = self.segments.last()?;
        Some((first.t, last.t + last.h))
    }

    /// Evaluate the solution at `t` into `out`. Right-continuous at impulse times (the value at
    /// an impulse time is the post-impulse state).
    pub fn eval(&self, t: f64, out: &mut [f64]) -> Result<()> {
        if out.len() != self.n {
            return Err(SolveError::LengthMismatch {
                what: "out",
                expected: self.n,
                found: out.len(),
            });
        }
        let Some((start, end)) = self.span() else {
            return Err(SolveError::Interpolation { t, reason: "no steps were taken" });
        };
        let d = self.direction;
        if !t.is_finite() || d * (t - start) < 0.0 || d * (t - end) > 0.0 {
            return Err(SolveError::Interpolation { t, reason: "outside the solved interval" });
        }
        // Last segment whose start is not after t (in integration order).
        let k = self.segments.partition_point(|s| d * (s.t - t) <= 0.0).saturating_sub(1);
        let s = &self.segments[k];
        let theta = ((t - s.t) / s.h).clamp(0.0, 1.0);
        let len = (s.degree + 1) * self.n;
        eval_power_basis(&self.coeffs[s.offset..s.offset + len], theta, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermite_reproduces_cubics() {
        // y = t³ on [1, 3]: y0 = 1, f0 = 3, y1 = 27, f1 = 27.
        let mut c = [0.0; 4];
        hermite_coefficients(&[1.0], &[3.0], &[27.0], &[27.0], 2.0, &mut c);
        let mut out = [0.0];
        for &theta in &[0.0, 0.3, 0.5, 1.0] {
            eval_power_basis(&c, theta, &mut out);
            let t: f64 = 1.0 + 2.0 * theta;
            assert!((out[0] - t.powi(3)).abs() < 1e-12);
        }
    }

    #[test]
    fn dense_output_is_right_continuous_and_bounded() {
        let mut d = DenseOutput::new(1, -1.0); // backwards in time
        d.push(2.0, -1.0, &[10.0, 1.0]); // y = 10 + θ on [2 → 1]
        d.push(1.0, -1.0, &[20.0, 1.0]); // jump at t = 1
        let mut out = [0.0];
        d.eval(1.5, &mut out).unwrap();
        assert_eq!(out[0], 10.5);
        d.eval(1.0, &mut out).unwrap();
        assert_eq!(out[0], 20.0);
        d.eval(0.0, &mut out).unwrap();
        assert_eq!(out[0], 21.0);
        assert!(d.eval(2.5, &mut out).is_err());
        assert!(d.eval(-0.1, &mut out).is_err());
    }
}
