//! Sparse identification of what a trained network learned (the second step of a universal
//! differential equation, Rackauckas et al. 2020, arXiv:2001.04385, §2.1): a
//! [`PolynomialLibrary`] of candidate terms, sequentially thresholded least squares
//! ([`Stlsq`], the SINDy regression of Brunton, Proctor & Kutz 2016, PNAS 113:3932) with a
//! threshold sweep ([`Stlsq::path`]) and information criteria ([`bic`], [`aicc`]) to choose
//! among the sparse models, and the recovered polynomial right-hand side as an ODE system
//! ([`PolynomialRhs`]) whose coefficients can then be calibrated against the data.
//!
//! Design choices: `docs/decisions/0020-sparse-regression.md`.

use serde::{Deserialize, Serialize};

use neurohybrid_system::{Jvp, OdeSystem, Vjp};

use crate::error::{HybridError, Result};

/// All monomials `u_0^{e_0} ⋯ u_{n−1}^{e_{n−1}}` of total degree `≤ degree` in `n_vars`
/// variables, graded (degree 0, then 1, …) and, within a degree, in descending lexicographic
/// order of the exponents: for `(x, y)` up to degree 2, `[1, x, y, x², xy, y²]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolynomialLibrary {
    n_vars: usize,
    degree: u32,
    /// `exponents[k]` of term `k` (length `n_vars`).
    exponents: Vec<Vec<u32>>,
}

impl PolynomialLibrary {
    /// The library of all monomials up to `degree` in `n_vars ≥ 1` variables.
    pub fn new(n_vars: usize, degree: u32) -> Result<Self> {
        if n_vars == 0 {
            return Err(HybridError::InvalidConfig {
                what: "polynomial library".into(),
                message: "needs at least one variable".into(),
            });
        }
        let mut exponents = Vec::new();
        for d in 0..=degree {
            let mut e = vec![0; n_vars];
            push_degree(&mut exponents, &mut e, 0, d);
        }
        Ok(PolynomialLibrary { n_vars, degree, exponents })
    }

    /// Number of variables.
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Highest total degree.
    pub fn degree(&self) -> u32 {
        self.degree
    }

    /// Number of terms, `C(n_vars + degree, degree)`.
    pub fn n_terms(&self) -> usize {
        self.exponents.len()
    }

    /// The exponents of term `k`.
    pub fn exponents(&self, k: usize) -> &[u32] {
        &self.exponents[k]
    }

    /// Term names from variable names: `"1"`, `"x"`, `"x^2"`, `"x*y"`.
    pub fn names(&self, vars: &[&str]) -> Result<Vec<String>> {
        check_len("variable names", self.n_vars, vars.len())?;
        Ok(self
            .exponents
            .iter()
            .map(|e| {
                let parts: Vec<String> = e
                    .iter()
                    .zip(vars)
                    .filter(|(p, _)| **p > 0)
                    .map(|(&p, v)| if p == 1 { (*v).to_string() } else { format!("{v}^{p}") })
                    .collect();
                if parts.is_empty() { "1".to_string() } else { parts.join("*") }
            })
            .collect())
    }

    /// Term `k` at `u`.
    pub fn term(&self, k: usize, u: &[f64]) -> f64 {
        self.exponents[k].iter().zip(u).map(|(&e, &x)| pow(x, e)).product()
    }

    /// `∂ term_k / ∂u_j` at `u`.
    pub fn term_derivative(&self, k: usize, j: usize, u: &[f64]) -> f64 {
        let e = &self.exponents[k];
        if e[j] == 0 {
            return 0.0;
        }
        let mut v = f64::from(e[j]) * pow(u[j], e[j] - 1);
        for (i, (&ei, &x)) in e.iter().zip(u).enumerate() {
            if i != j {
                v *= pow(x, ei);
            }
        }
        v
    }

    /// All terms at `u` into `out` (length `n_terms`).
    pub fn eval(&self, u: &[f64], out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.term(k, u);
        }
    }

    /// The library matrix `Θ` (`n_samples × n_terms`, row-major) of the states `states`
    /// (`n_samples × n_vars`, row-major).
    pub fn matrix(&self, states: &[f64]) -> Result<Vec<f64>> {
        if !states.len().is_multiple_of(self.n_vars) {
            return Err(HybridError::LengthMismatch {
                what: "states (a multiple of n_vars)".into(),
                expected: states.len() / self.n_vars * self.n_vars,
                got: states.len(),
            });
        }
        check_finite("states", states)?;
        let t = self.n_terms();
        let mut theta = vec![0.0; states.len() / self.n_vars * t];
        for (u, row) in states.chunks_exact(self.n_vars).zip(theta.chunks_exact_mut(t)) {
            self.eval(u, row);
        }
        Ok(theta)
    }
}

/// Exponent vectors of total degree `d` over variables `j..`, descending lexicographic.
fn push_degree(out: &mut Vec<Vec<u32>>, e: &mut [u32], j: usize, d: u32) {
    if j + 1 == e.len() {
        e[j] = d;
        out.push(e.to_vec());
        e[j] = 0;
        return;
    }
    for p in (0..=d).rev() {
        e[j] = p;
        push_degree(out, e, j + 1, d - p);
    }
    e[j] = 0;
}

fn pow(x: f64, e: u32) -> f64 {
    // `powi` takes i32; library degrees are small.
    x.powi(i32::try_from(e).unwrap_or(i32::MAX))
}

/// Sequentially thresholded least squares (STLSQ; Brunton, Proctor & Kutz 2016): fit
/// `target ≈ Θ ξ` by (ridge) least squares, drop the terms whose contribution is below the
/// threshold, refit on the rest, until the support stops changing; then a plain least-squares
/// fit on the final support. Configuration only.
///
/// With `normalize` (the default), each library column is scaled to unit RMS over the samples
/// first and a term is dropped when `|ξ_k| · rms(Θ_k) < threshold · rms(target)`: its
/// contribution along the data, relative to the size of what is being explained. The
/// threshold is then dimensionless and independent of the units and magnitudes of the terms
/// (an `xy` of size 25 and a constant compete on equal terms), which the raw-coefficient
/// threshold of the original paper is not. Without `normalize`, a term is dropped when
/// `|ξ_k| < threshold`.
///
/// `ridge` adds `ridge · N · ‖ξ̃‖²` (`ξ̃` the coefficients of the normalized columns, `N` the
/// number of samples) to the thresholding fits, as PySINDy's STLSQ does: nearly collinear
/// columns otherwise get large cancelling coefficients, which hide the term that matters
/// from the threshold. The final fit on the support is unregularized, so the returned
/// coefficients are not shrunk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stlsq {
    /// Relative (normalized) or absolute threshold, `≥ 0`.
    pub threshold: f64,
    /// Ridge weight in the thresholding iterations (normalized space), `≥ 0`.
    pub ridge: f64,
    /// Most threshold–refit iterations.
    pub max_iters: usize,
    /// Normalize the columns and threshold relative contributions (see the type's docs).
    pub normalize: bool,
}

impl Default for Stlsq {
    fn default() -> Self {
        Stlsq { threshold: 0.1, ridge: 0.0, max_iters: 20, normalize: true }
    }
}

/// One sparse model found by [`Stlsq`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseFit {
    /// Coefficient of each library term (zero off the support).
    pub coefficients: Vec<f64>,
    /// The indices of the nonzero terms, ascending.
    pub support: Vec<usize>,
    /// Residual sum of squares `‖Θ ξ − target‖²`.
    pub rss: f64,
    /// Number of samples.
    pub n_samples: usize,
    /// The threshold that produced it (the smallest of a [`Stlsq::path`] that did).
    pub threshold: f64,
}

impl SparseFit {
    /// The corrected Akaike information criterion of this fit ([`aicc`]).
    pub fn aicc(&self) -> f64 {
        aicc(self.rss, self.n_samples, self.support.len())
    }

    /// The Bayesian information criterion of this fit ([`bic`]).
    pub fn bic(&self) -> f64 {
        bic(self.rss, self.n_samples, self.support.len())
    }
}

/// The corrected Akaike information criterion of a least-squares fit with Gaussian errors,
/// `N ln(RSS/N) + 2k + 2k(k+1)/(N − k − 1)` (Hurvich & Tsai 1989), for `N` residuals and `k`
/// fitted coefficients; lower is better. Used (as by Mangan et al. 2017, Proc. R. Soc. A 473)
/// to choose among the sparse models of a threshold sweep. `+∞` when `N ≤ k + 1`.
pub fn aicc(rss: f64, n: usize, k: usize) -> f64 {
    if n <= k + 1 {
        return f64::INFINITY;
    }
    let (nf, kf) = (n as f64, k as f64);
    nf * (rss.max(f64::MIN_POSITIVE) / nf).ln() + 2.0 * kf + 2.0 * kf * (kf + 1.0) / (nf - kf - 1.0)
}

/// The Bayesian (Schwarz 1978) information criterion of a least-squares fit with Gaussian
/// errors, `N ln(RSS/N) + k ln N`; lower is better. Its penalty per coefficient (`ln N`, 4.1 at
/// `N = 62`) exceeds AIC's 2, so it admits a spurious term far less often (AIC's
/// false-inclusion rate for one term is `P(χ²₁ > 2) ≈ 16 %`, BIC's `P(χ²₁ > ln N)`, 4 % at
/// `N = 62`) and is consistent: it selects the true sparse model with probability → 1 as `N`
/// grows. The criterion for *identifying* terms; AICc ([`aicc`]) favours prediction.
pub fn bic(rss: f64, n: usize, k: usize) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let nf = n as f64;
    nf * (rss.max(f64::MIN_POSITIVE) / nf).ln() + k as f64 * nf.ln()
}

impl Stlsq {
    /// STLSQ with this threshold, otherwise the defaults.
    pub fn new(threshold: f64) -> Self {
        Stlsq { threshold, ..Stlsq::default() }
    }

    /// With this ridge weight.
    pub fn with_ridge(mut self, ridge: f64) -> Self {
        self.ridge = ridge;
        self
    }

    /// Fit one target column: `theta` is the library matrix (`N × n_terms`, row-major, e.g.
    /// from [`PolynomialLibrary::matrix`]), `target` has length `N`.
    pub fn fit(&self, theta: &[f64], n_terms: usize, target: &[f64]) -> Result<SparseFit> {
        let prep = Prepared::new(theta, n_terms, target)?;
        self.validate()?;
        prep.stlsq(self, prep.nonzero_columns())
    }

    /// STLSQ for each threshold of `thresholds` (ascending; this one's `threshold` ignored):
    /// the distinct supports found, each once (with the smallest threshold that gave it), in
    /// the order the thresholds are given. The sparsity–misfit trade-off, from which a
    /// criterion ([`SparseFit::aicc`], a held-out error, or a refit to the data) chooses.
    ///
    /// The path is a *continuation*: each threshold starts from the previous one's support,
    /// not from the whole library, so the supports are nested. Restarting from the full fit at
    /// a large threshold prunes from the dense, collinear coefficients in one shot and can
    /// skip the right small model (on a short arc where `y ≈ 2 + x/2`, the cold path jumps
    /// from `{x, xy}` to `{x²}`; the continuation refits `{x, xy}`, drops `x` and finds
    /// `{xy}`) — stepwise elimination guided by the threshold.
    pub fn path(
        &self,
        theta: &[f64],
        n_terms: usize,
        target: &[f64],
        thresholds: &[f64],
    ) -> Result<Vec<SparseFit>> {
        let prep = Prepared::new(theta, n_terms, target)?;
        let mut out: Vec<SparseFit> = Vec::new();
        let mut support = prep.nonzero_columns();
        for &threshold in thresholds {
            let cfg = Stlsq { threshold, ..*self };
            cfg.validate()?;
            let fit = prep.stlsq(&cfg, support)?;
            support = fit.support.clone();
            if !out.iter().any(|f| f.support == fit.support) {
                out.push(fit);
            }
        }
        Ok(out)
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| HybridError::InvalidConfig {
            what: format!("STLSQ {what}"),
            message: format!("must be finite and ≥ 0, got {v}"),
        };
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(bad("threshold", self.threshold));
        }
        if !(self.ridge.is_finite() && self.ridge >= 0.0) {
            return Err(bad("ridge", self.ridge));
        }
        Ok(())
    }
}

/// The normal equations of one regression, computed once per `fit`/`path`.
struct Prepared<'a> {
    theta: &'a [f64],
    target: &'a [f64],
    n: usize,
    t: usize,
    /// Column scales (RMS, or 1 without normalization; 0 marks an all-zero column).
    rms: Vec<f64>,
    /// Gram matrix of the raw columns, `ΘᵀΘ` (`t × t`).
    gram: Vec<f64>,
    /// `Θᵀ target`.
    rhs: Vec<f64>,
    /// `‖target‖²`.
    tt: f64,
}

impl<'a> Prepared<'a> {
    fn new(theta: &'a [f64], t: usize, target: &'a [f64]) -> Result<Self> {
        let n = target.len();
        if n == 0 || t == 0 {
            return Err(HybridError::InvalidConfig {
                what: "sparse regression".into(),
                message: "needs at least one sample and one library term".into(),
            });
        }
        check_len("library matrix (samples × terms)", n * t, theta.len())?;
        check_finite("library matrix", theta)?;
        check_finite("regression target", target)?;
        let mut gram = vec![0.0; t * t];
        let mut rhs = vec![0.0; t];
        for (row, &b) in theta.chunks_exact(t).zip(target) {
            for i in 0..t {
                rhs[i] += row[i] * b;
                for j in 0..t {
                    gram[i * t + j] += row[i] * row[j];
                }
            }
        }
        let rms = (0..t).map(|i| (gram[i * t + i] / n as f64).sqrt()).collect();
        let tt = target.iter().map(|b| b * b).sum();
        Ok(Prepared { theta, target, n, t, rms, gram, rhs, tt })
    }

    /// Residual sum of squares of `ξ` (raw coefficients), from the residuals themselves (the
    /// normal-equation form `‖b‖² − 2ξᵀΘᵀb + ξᵀΘᵀΘξ` cancels catastrophically for good fits).
    fn rss(&self, xi: &[f64]) -> f64 {
        self.theta
            .chunks_exact(self.t)
            .zip(self.target)
            .map(|(row, b)| (row.iter().zip(xi).map(|(a, x)| a * x).sum::<f64>() - b).powi(2))
            .sum()
    }

    /// Least squares on `support` in normalized coordinates, ridge `ridge·N`; returns raw
    /// coefficients (zero off the support).
    fn solve(&self, support: &[usize], ridge: f64, normalize: bool) -> Result<Vec<f64>> {
        let (t, m) = (self.t, support.len());
        let scale = |k: usize| if normalize { self.rms[k] } else { 1.0 };
        let mut a = vec![0.0; m * m];
        let mut b = vec![0.0; m];
        for (i, &ki) in support.iter().enumerate() {
            b[i] = self.rhs[ki] / scale(ki);
            for (j, &kj) in support.iter().enumerate() {
                a[i * m + j] = self.gram[ki * t + kj] / (scale(ki) * scale(kj));
            }
        }
        // A relative jitter of 1e-12 keeps an exactly collinear pair solvable (the Gram matrix
        // is positive semidefinite; rounding may leave a pivot at −1e-16 of the diagonal).
        let dmax = (0..m).map(|i| a[i * m + i]).fold(0.0f64, f64::max);
        for i in 0..m {
            a[i * m + i] += ridge * self.n as f64 + 1e-12 * dmax;
        }
        cholesky_solve(&mut a, &mut b, m)
            .map_err(|i| HybridError::NotIdentifiable { parameter: support[i] })?;
        let mut xi = vec![0.0; t];
        for (&k, v) in support.iter().zip(&b) {
            xi[k] = v / scale(k);
        }
        Ok(xi)
    }

    /// All-zero columns cannot explain anything and would divide by zero when normalized.
    fn nonzero_columns(&self) -> Vec<usize> {
        (0..self.t).filter(|&k| self.rms[k] > 0.0).collect()
    }

    /// STLSQ from the support `support`.
    fn stlsq(&self, cfg: &Stlsq, mut support: Vec<usize>) -> Result<SparseFit> {
        let target_rms = (self.tt / self.n as f64).sqrt();
        let cut = if cfg.normalize { cfg.threshold * target_rms } else { cfg.threshold };
        for _ in 0..cfg.max_iters.max(1) {
            if support.is_empty() {
                break;
            }
            let xi = self.solve(&support, cfg.ridge, cfg.normalize)?;
            let size =
                |k: usize| if cfg.normalize { xi[k].abs() * self.rms[k] } else { xi[k].abs() };
            let next: Vec<usize> = support.iter().copied().filter(|&k| size(k) >= cut).collect();
            if next == support {
                break;
            }
            support = next;
        }
        let coefficients = if support.is_empty() {
            vec![0.0; self.t]
        } else {
            self.solve(&support, 0.0, cfg.normalize)?
        };
        Ok(SparseFit {
            rss: self.rss(&coefficients),
            coefficients,
            support,
            n_samples: self.n,
            threshold: cfg.threshold,
        })
    }
}

/// The best model of each size among `fits` (for instance the [`Stlsq::path`]s of several
/// ridge weights together): for every support size the fit with the lowest residual, sorted
/// by size. A criterion then chooses along this front; keeping one model per size bounds the
/// number of candidates (at most `n_terms + 1`) however many sweeps produced them.
pub fn pareto_front(fits: impl IntoIterator<Item = SparseFit>) -> Vec<SparseFit> {
    let mut best: Vec<SparseFit> = Vec::new();
    for f in fits {
        match best.iter_mut().find(|b| b.support.len() == f.support.len()) {
            Some(b) if b.rss <= f.rss => {}
            Some(b) => *b = f,
            None => best.push(f),
        }
    }
    best.sort_by_key(|f| f.support.len());
    best
}

/// Solve `A x = b` for symmetric positive definite `A` (`m × m`, overwritten by its Cholesky
/// factor; `b` by `x`). `Err(i)` when pivot `i` is not positive.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], m: usize) -> std::result::Result<(), usize> {
    for j in 0..m {
        let mut d = a[j * m + j];
        for k in 0..j {
            d -= a[j * m + k] * a[j * m + k];
        }
        if d.is_nan() || d <= 0.0 {
            return Err(j);
        }
        let d = d.sqrt();
        a[j * m + j] = d;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = s / d;
        }
    }
    for i in 0..m {
        let s: f64 = (0..i).map(|k| a[i * m + k] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * m + i];
    }
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|k| a[k * m + i] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * m + i];
    }
    Ok(())
}

/// A polynomial right-hand side `du_i/dt = Σ_k ξ_{i,k} Θ_k(u)` over a [`PolynomialLibrary`]
/// in the state: a recovered sparse model as an ODE system with exact [`Vjp`] and [`Jvp`], so
/// its coefficients `p = [ξ_0 | ξ_1 | …]` (`n_states × n_terms`, row-major) can be trained or
/// calibrated like any parameters (terms off the support are simply left out of the
/// calibration and stay zero). Add known physics with `neurohybrid_system::Sum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolynomialRhs {
    library: PolynomialLibrary,
}

impl PolynomialRhs {
    /// The right-hand side over `library` (whose variables are the states).
    pub fn new(library: PolynomialLibrary) -> Self {
        PolynomialRhs { library }
    }

    /// The library.
    pub fn library(&self) -> &PolynomialLibrary {
        &self.library
    }

    /// Index of coefficient `ξ_{state, term}` in the parameter vector.
    pub fn param_index(&self, state: usize, term: usize) -> usize {
        state * self.library.n_terms() + term
    }
}

impl OdeSystem for PolynomialRhs {
    fn n_states(&self) -> usize {
        self.library.n_vars
    }
    fn n_params(&self) -> usize {
        self.library.n_vars * self.library.n_terms()
    }
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64]) {
        let nt = self.library.n_terms();
        du.fill(0.0);
        for k in 0..nt {
            let th = self.library.term(k, u);
            for (i, d) in du.iter_mut().enumerate() {
                *d += p[i * nt + k] * th;
            }
        }
    }
}

impl Vjp for PolynomialRhs {
    fn vjp(&self, _t: f64, u: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let nt = self.library.n_terms();
        w_y.fill(0.0);
        for k in 0..nt {
            // Σ_i w_i ξ_{i,k}: the cotangent of term k.
            let c: f64 = w.iter().enumerate().map(|(i, wi)| wi * p[i * nt + k]).sum();
            if c != 0.0 {
                for (j, wy) in w_y.iter_mut().enumerate() {
                    *wy += c * self.library.term_derivative(k, j, u);
                }
            }
            if !w_p.is_empty() {
                let th = self.library.term(k, u);
                for (i, wi) in w.iter().enumerate() {
                    w_p[i * nt + k] = wi * th;
                }
            }
        }
    }
}

impl Jvp for PolynomialRhs {
    fn jvp(&self, _t: f64, u: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let nt = self.library.n_terms();
        out.fill(0.0);
        for k in 0..nt {
            let dth: f64 = v_y
                .iter()
                .enumerate()
                .map(|(j, v)| v * self.library.term_derivative(k, j, u))
                .sum();
            let th = if v_p.is_empty() { 0.0 } else { self.library.term(k, u) };
            for (i, o) in out.iter_mut().enumerate() {
                *o += p[i * nt + k] * dth;
                if !v_p.is_empty() {
                    *o += v_p[i * nt + k] * th;
                }
            }
        }
    }
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(HybridError::LengthMismatch { what: what.into(), expected, got })
    }
}

fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(HybridError::NonFinite { what: what.into(), index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_order_and_names() {
        let lib = PolynomialLibrary::new(2, 2).unwrap();
        assert_eq!(lib.names(&["x", "y"]).unwrap(), ["1", "x", "y", "x^2", "x*y", "y^2"]);
        let lib3 = PolynomialLibrary::new(3, 3).unwrap();
        assert_eq!(lib3.n_terms(), 20); // C(6, 3)
    }

    #[test]
    fn cholesky_matches_a_known_solution() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0 * 4.0 + 2.0, 2.0 * 2.0 + 3.0]; // x = [2, 1]
        cholesky_solve(&mut a, &mut b, 2).unwrap();
        assert!((b[0] - 2.0).abs() < 1e-14 && (b[1] - 1.0).abs() < 1e-14);
    }
}
