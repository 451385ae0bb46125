//! Small helpers for gradient tests: central finite differences and a normwise relative
//! error, so every test crate compares gradients the same way.

/// `max_i |a_i − b_i| / max(‖b‖_∞, floor)`: the normwise relative error of `a` against the
/// reference `b` (`floor` keeps a near-zero reference from inflating it).
///
/// # Panics
/// If the lengths differ (a test bug, not user input).
pub fn rel_err(a: &[f64], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err: lengths differ");
    let scale = b.iter().fold(floor, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// Central differences of `f` at `x`, with steps `eps·max(1, |x_j|)` (absolute near zero,
/// relative for large entries); `O(eps²)` truncation error for smooth `f`.
pub fn central_fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64], eps: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|j| {
            let h = eps * x[j].abs().max(1.0);
            xp[j] = x[j] + h;
            let fp = f(&xp);
            xp[j] = x[j] - h;
            let fm = f(&xp);
            xp[j] = x[j];
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_differences_of_a_cubic_are_exact_up_to_eps_squared() {
        let f = |x: &[f64]| x[0].powi(3) + 2.0 * x[0] * x[1];
        let g = central_fd(&f, &[2.0, -1.0], 1e-5);
        let exact = [3.0 * 4.0 - 2.0, 4.0];
        assert!(rel_err(&g, &exact, 1e-300) < 1e-9, "{g:?}");
        assert_eq!(rel_err(&[1.0, 2.0], &[1.0, 2.0], 0.0), 0.0);
        assert!((rel_err(&[1.1, 2.0], &[1.0, 2.0], 0.0) - 0.05).abs() < 1e-12);
    }
}
