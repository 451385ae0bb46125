//! Convergence-order estimation by least squares on a log–log plot.

/// Errors from the estimators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The two inputs have different lengths.
    #[error("{xs} step sizes but {ys} errors")]
    LengthMismatch {
        /// Number of abscissae.
        xs: usize,
        /// Number of ordinates.
        ys: usize,
    },
    /// Fewer than two points.
    #[error("need at least 2 points, got {0}")]
    TooFewPoints(usize),
    /// A value that must be positive and finite is not (its logarithm is undefined).
    #[error("point #{index} = ({x}, {y}) is not positive and finite")]
    NonPositive {
        /// Index of the point.
        index: usize,
        /// Abscissa.
        x: f64,
        /// Ordinate.
        y: f64,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TestkitError>;

/// A fitted power law `y ≈ C · x^slope`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerFit {
    /// The exponent (the observed order when `x` is a step size).
    pub slope: f64,
    /// `ln C`.
    pub log_constant: f64,
    /// Coefficient of determination of the log–log regression (1 = a perfect power law).
    pub r_squared: f64,
}

/// Least-squares line through `(ln x_i, ln y_i)`.
pub fn log_log_fit(xs: &[f64], ys: &[f64]) -> Result<PowerFit> {
    if xs.len() != ys.len() {
        return Err(TestkitError::LengthMismatch { xs: xs.len(), ys: ys.len() });
    }
    if xs.len() < 2 {
        return Err(TestkitError::TooFewPoints(xs.len()));
    }
    for (index, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        if !(x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite()) {
            return Err(TestkitError::NonPositive { index, x, y });
        }
    }
    let lx: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let n = lx.len() as f64;
    let mx = lx.iter().sum::<f64>() / n;
    let my = ly.iter().sum::<f64>() / n;
    let sxx: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let syy: f64 = ly.iter().map(|y| (y - my).powi(2)).sum();
    if sxx == 0.0 {
        return Err(TestkitError::TooFewPoints(1)); // all abscissae equal: one distinct point
    }
    let slope = sxy / sxx;
    let r_squared = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Ok(PowerFit { slope, log_constant: my - slope * mx, r_squared })
}

/// Observed order of convergence from step sizes `hs` and global errors `errors`
/// (`error ≈ C hᵖ`, returns the fitted `p` with its fit quality).
pub fn estimate_order(hs: &[f64], errors: &[f64]) -> Result<PowerFit> {
    log_log_fit(hs, errors)
}

/// Largest absolute componentwise difference.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_power_law() {
        let hs = [0.1, 0.05, 0.025, 0.0125];
        let errs: Vec<f64> = hs.iter().map(|h: &f64| 3.0 * h.powi(4)).collect();
        let fit = estimate_order(&hs, &errs).unwrap();
        assert!((fit.slope - 4.0).abs() < 1e-12);
        assert!((fit.log_constant - 3f64.ln()).abs() < 1e-10);
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
    }

    #[test]
    fn noisy_data_lowers_r_squared() {
        let fit = log_log_fit(&[1.0, 2.0, 4.0, 8.0], &[1.0, 5.0, 3.0, 70.0]).unwrap();
        assert!(fit.r_squared < 0.95);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(log_log_fit(&[1.0], &[1.0]), Err(TestkitError::TooFewPoints(1)));
        assert!(matches!(
            log_log_fit(&[1.0, 2.0], &[1.0]),
            Err(TestkitError::LengthMismatch { .. })
        ));
        assert!(matches!(
            log_log_fit(&[1.0, 2.0], &[0.0, 1.0]),
            Err(TestkitError::NonPositive { index: 0, .. })
        ));
    }
}
