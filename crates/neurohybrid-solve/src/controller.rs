//! How steps are chosen: the [`StepSizeController`] trait, the PI controller and a constant
//! step.

use crate::error::{Result, SolveError};

/// A right-hand side `rhs(t, y, dy)` with the parameters bound, handed to the starting-step
/// heuristic (which counts its evaluations).
pub type RhsFn<'a> = dyn FnMut(f64, &[f64], &mut [f64]) + 'a;

/// The controller's verdict on a computed step. Step sizes are magnitudes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Keep the step; try `h_next` next.
    Accept {
        /// Proposed next step size.
        h_next: f64,
    },
    /// Discard the step; retry with `h_next`.
    Reject {
        /// Step size to retry with.
        h_next: f64,
    },
}

/// Inputs of the starting-step heuristic.
#[derive(Debug, Clone, Copy)]
pub struct InitialStep<'a> {
    /// Start time.
    pub t0: f64,
    /// Initial state.
    pub y0: &'a [f64],
    /// `f(t0, y0)`.
    pub f0: &'a [f64],
    /// `t1 − t0` (signed).
    pub span: f64,
    /// Order of the method.
    pub order: usize,
}

/// Chooses step sizes. Holds configuration only; per-solve memory is [`Self::State`].
pub trait StepSizeController {
    /// Per-solve memory (e.g. the previous error norm).
    type State;

    /// Whether this controller uses error estimates (then the stepper must have one).
    fn is_adaptive(&self) -> bool;

    /// Check the configuration against the state dimension; misuse is an `Err`.
    fn validate(&self, n_states: usize) -> Result<()>;

    /// Maximum number of attempted steps before the run ends with `Status::MaxSteps`.
    fn max_steps(&self) -> usize;

    /// Smallest allowed step size magnitude.
    fn h_min(&self) -> f64 {
        0.0
    }

    /// Largest allowed step size magnitude.
    fn h_max(&self) -> f64 {
        f64::INFINITY
    }

    /// Fresh per-solve memory.
    fn init_state(&self) -> Self::State;

    /// The first step size magnitude. `rhs(t, y, dy)` evaluates the system (counted).
    fn initial_step(&self, input: &InitialStep<'_>, rhs: &mut RhsFn<'_>) -> f64;

    /// The scalar error of a step from the stepper's error-estimate vector.
    fn error_norm(&self, err: &[f64], y: &[f64], y_new: &[f64]) -> f64;

    /// Accept or reject a step of size `h` with error norm `err_norm` (≤ 1 is within
    /// tolerance); `order` is the stepper's control order `q` (exponent `1/(q+1)`).
    fn decide(&self, state: &mut Self::State, h: f64, err_norm: f64, order: usize) -> Decision;

    /// Step size to retry with after the stepper failed to compute a step of size `h`.
    fn after_failure(&self, state: &mut Self::State, h: f64) -> f64 {
        let _ = state;
        0.25 * h
    }
}

/// Weighted RMS norm `sqrt(1/n Σ (e_i / (atol_i + rtol·max(|y_i|, |ŷ_i|)))²)` (HNW I, II.4,
/// eq. (4.11)): the mixed absolute/relative scale keeps the test meaningful for components
/// passing through zero.
pub fn weighted_rms_norm(err: &[f64], y: &[f64], y_new: &[f64], rtol: f64, atol: Atol<'_>) -> f64 {
    let n = err.len();
    if n == 0 {
        return 0.0;
    }
    let (y, y_new) = (&y[..n], &y_new[..n]);
    // Zero error weighs nothing, also where the scale is zero (atol = 0 at y = 0).
    let term = |e: f64, a: f64, y: f64, yn: f64| {
        let r = if e == 0.0 { 0.0 } else { e / (a + rtol * y.abs().max(yn.abs())) };
        r * r
    };
    // Lanes of partial sums: the loop vectorizes (the division dominates a step of a cheap
    // PDE right-hand side otherwise); the result differs from a sequential sum by rounding.
    const L: usize = 4;
    let mut acc = [0.0; L];
    let full = n - n % L;
    match atol {
        Atol::Scalar(a) => {
            for ((e, yb), ynb) in
                err[..full].chunks_exact(L).zip(y.chunks_exact(L)).zip(y_new.chunks_exact(L))
            {
                for l in 0..L {
                    acc[l] += term(e[l], a, yb[l], ynb[l]);
                }
            }
        }
        Atol::Vector(v) => {
            let v = &v[..n];
            for (((e, yb), ynb), ab) in err[..full]
                .chunks_exact(L)
                .zip(y.chunks_exact(L))
                .zip(y_new.chunks_exact(L))
                .zip(v.chunks_exact(L))
            {
                for l in 0..L {
                    acc[l] += term(e[l], ab[l], yb[l], ynb[l]);
                }
            }
        }
    }
    let mut sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for i in full..n {
        let a = match atol {
            Atol::Scalar(a) => a,
            Atol::Vector(v) => v[i],
        };
        sum += term(err[i], a, y[i], y_new[i]);
    }
    (sum / n as f64).sqrt()
}

/// Absolute tolerance: one value or one per component.
#[derive(Debug, Clone, Copy)]
pub enum Atol<'a> {
    /// Same for every component.
    Scalar(f64),
    /// Per component.
    Vector(&'a [f64]),
}

/// Proportional–integral step-size control (Gustafsson 1991; Söderlind 2002, "Automatic
/// control and adaptive time-stepping", Numer. Algorithms 31; HNW II, IV.2):
///
/// `h_{n+1} = h_n · clamp(safety · err_n^{−α} · err_{n−1}^{β}, min_factor, max_factor)`,
/// with `α = 1/(q+1) − 0.75 β`. `β = 0` is the classical I controller; the default `β = 0.04`
/// is Hairer's DOPRI5 choice, which damps step-size oscillation on mildly stiff problems at no
/// cost elsewhere. After a rejection the next accepted step may not grow (Hairer's DOPRI5;
/// avoids an accept/reject ping-pong).
#[derive(Debug, Clone, PartialEq)]
pub struct PiController {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (scalar).
    pub atol: f64,
    /// Per-component absolute tolerance; overrides `atol` when set.
    pub atol_components: Option<Vec<f64>>,
    /// Integral gain β of the PI formula.
    pub beta: f64,
    /// Safety factor (< 1).
    pub safety: f64,
    /// Smallest step-size ratio.
    pub min_factor: f64,
    /// Largest step-size ratio.
    pub max_factor: f64,
    /// Smallest step size; below it the run ends with `StepSizeTooSmall`.
    pub h_min: f64,
    /// Largest step size.
    pub h_max: f64,
    /// Fixed first step; `None` uses the Hairer–Wanner heuristic.
    pub h0: Option<f64>,
    /// Budget of attempted steps.
    pub max_steps: usize,
}

impl PiController {
    /// A PI controller with the given tolerances and DOPRI5's defaults otherwise.
    pub fn new(rtol: f64, atol: f64) -> Self {
        Self {
            rtol,
            atol,
            atol_components: None,
            beta: 0.04,
            safety: 0.9,
            min_factor: 0.2,
            max_factor: 10.0,
            h_min: 0.0,
            h_max: f64::INFINITY,
            h0: None,
            max_steps: 100_000,
        }
    }

    /// Per-component absolute tolerances.
    pub fn with_atol_components(mut self, atol: Vec<f64>) -> Self {
        self.atol_components = Some(atol);
        self
    }
    /// Set β (0 gives an I controller).
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }
    /// Set the step budget.
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = max_steps;
        self
    }
    /// Set the step-size bounds.
    pub fn with_step_bounds(mut self, h_min: f64, h_max: f64) -> Self {
        self.h_min = h_min;
        self.h_max = h_max;
        self
    }
    /// Use a fixed first step.
    pub fn with_initial_step(mut self, h0: f64) -> Self {
        self.h0 = Some(h0);
        self
    }

    fn atol(&self) -> Atol<'_> {
        match &self.atol_components {
            Some(v) => Atol::Vector(v),
            None => Atol::Scalar(self.atol),
        }
    }
}

impl Default for PiController {
    fn default() -> Self {
        Self::new(1e-6, 1e-9)
    }
}

fn check_tol(name: &'static str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(SolveError::InvalidTolerance { name, value, reason: "not finite" });
    }
    if value < 0.0 {
        return Err(SolveError::InvalidTolerance { name, value, reason: "negative" });
    }
    Ok(())
}

fn check_h(name: &'static str, value: f64, allow_zero: bool, allow_inf: bool) -> Result<()> {
    let ok = (value > 0.0 || (allow_zero && value == 0.0))
        && (value.is_finite() || (allow_inf && value == f64::INFINITY));
    if ok { Ok(()) } else { Err(SolveError::InvalidStepSize { name, value }) }
}

/// Memory of the PI controller between steps.
#[derive(Debug, Clone, Copy)]
pub struct PiState {
    prev_err: f64,
    last_rejected: bool,
}

impl StepSizeController for PiController {
    type State = PiState;

    fn is_adaptive(&self) -> bool {
        true
    }

    fn validate(&self, n_states: usize) -> Result<()> {
        check_tol("rtol", self.rtol)?;
        match &self.atol_components {
            None => check_tol("atol", self.atol)?,
            Some(v) => {
                if v.len() != n_states {
                    return Err(SolveError::LengthMismatch {
                        what: "atol components",
                        expected: n_states,
                        found: v.len(),
                    });
                }
                v.iter().try_for_each(|&a| check_tol("atol", a))?;
            }
        }
        let atol_zero = match &self.atol_components {
            None => self.atol == 0.0,
            Some(v) => v.contains(&0.0),
        };
        if self.rtol == 0.0 && atol_zero {
            return Err(SolveError::InvalidTolerance {
                name: "atol",
                value: 0.0,
                reason: "rtol and atol are both zero",
            });
        }
        check_h("h_min", self.h_min, true, false)?;
        check_h("h_max", self.h_max, false, true)?;
        if let Some(h0) = self.h0 {
            check_h("h0", h0, false, false)?;
        }
        let factors_ok = self.safety > 0.0
            && self.safety <= 1.0
            && self.min_factor > 0.0
            && self.min_factor < 1.0
            && self.max_factor > 1.0
            && self.max_factor.is_finite()
            && self.beta.is_finite()
            && self.beta >= 0.0;
        if !factors_ok {
            return Err(SolveError::InvalidStepSize {
                name: "PI controller factors",
                value: self.safety,
            });
        }
        Ok(())
    }

    fn max_steps(&self) -> usize {
        self.max_steps
    }
    fn h_min(&self) -> f64 {
        self.h_min
    }
    fn h_max(&self) -> f64 {
        self.h_max
    }

    fn init_state(&self) -> PiState {
        // Hairer's FACOLD = 1e-4 makes the first PI step a plain I step in effect.
        PiState { prev_err: 1e-4, last_rejected: false }
    }

    /// The Hairer–Wanner starting step (HNW I, II.4, "Starting step size"): a first guess
    /// `h0 = 0.01 ‖y0‖/‖f0‖`, then one explicit Euler step to estimate the second derivative,
    /// `h1 = (0.01 / max(‖f0‖, ‖f'‖))^{1/(p+1)}`, and `h = min(100 h0, h1)`. Costs one rhs.
    fn initial_step(&self, input: &InitialStep<'_>, rhs: &mut RhsFn<'_>) -> f64 {
        if let Some(h0) = self.h0 {
            return h0.min(input.span.abs());
        }
        let (y0, f0) = (input.y0, input.f0);
        let n = y0.len();
        let atol = self.atol();
        let zeros = vec![0.0; n];
        // ‖·‖ with scale atol + rtol·|y0| (the max with a zero vector leaves |y0|).
        let norm = |v: &[f64]| weighted_rms_norm(v, y0, &zeros, self.rtol, atol);
        let d0 = norm(y0);
        let d1 = norm(f0);
        let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
        let h0 = h0.min(input.span.abs());
        let dir = input.span.signum();
        let y1: Vec<f64> = y0.iter().zip(f0).map(|(y, f)| y + dir * h0 * f).collect();
        let mut f1 = vec![0.0; n];
        rhs(input.t0 + dir * h0, &y1, &mut f1);
        let diff: Vec<f64> = f1.iter().zip(f0).map(|(a, b)| (a - b) / h0).collect();
        let d2 = norm(&diff);
        let dmax = d1.max(d2);
        let h1 = if dmax <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / dmax).powf(1.0 / (input.order as f64 + 1.0))
        };
        (100.0 * h0).min(h1).min(input.span.abs()).min(self.h_max)
    }

    fn error_norm(&self, err: &[f64], y: &[f64], y_new: &[f64]) -> f64 {
        weighted_rms_norm(err, y, y_new, self.rtol, self.atol())
    }

    fn decide(&self, state: &mut PiState, h: f64, err_norm: f64, order: usize) -> Decision {
        let k = order as f64 + 1.0;
        let alpha = 1.0 / k - 0.75 * self.beta;
        if err_norm <= 1.0 {
            let err = err_norm.max(1e-10); // a zero error would make the factor infinite
            let mut fac = self.safety * err.powf(-alpha) * state.prev_err.powf(self.beta);
            fac = fac.clamp(self.min_factor, self.max_factor);
            if state.last_rejected {
                fac = fac.min(1.0);
            }
            state.prev_err = err_norm.max(1e-4);
            state.last_rejected = false;
            Decision::Accept { h_next: (h * fac).min(self.h_max) }
        } else {
            // Rejections use the I part only: the previous error says nothing about this one.
            let fac = (self.safety * err_norm.powf(-alpha)).max(self.min_factor);
            state.last_rejected = true;
            Decision::Reject { h_next: h * fac }
        }
    }
}

/// A constant step size `h` (the last step before an end, impulse or save time is shortened to
/// land on it exactly). Use with any stepper; error estimates are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstantStep {
    /// Step size magnitude.
    pub h: f64,
    /// Budget of attempted steps.
    pub max_steps: usize,
}

impl ConstantStep {
    /// Steps of size `h`.
    pub fn new(h: f64) -> Self {
        Self { h, max_steps: usize::MAX }
    }

    /// `n` equal steps over `[t0, t1]`.
    pub fn with_steps(t_span: (f64, f64), n: usize) -> Self {
        Self::new((t_span.1 - t_span.0).abs() / n as f64)
    }
}

impl StepSizeController for ConstantStep {
    type State = ();

    fn is_adaptive(&self) -> bool {
        false
    }
    fn validate(&self, _n_states: usize) -> Result<()> {
        check_h("h", self.h, false, false)
    }
    fn max_steps(&self) -> usize {
        self.max_steps
    }
    fn init_state(&self) {}
    fn initial_step(&self, input: &InitialStep<'_>, _rhs: &mut RhsFn<'_>) -> f64 {
        self.h.min(input.span.abs())
    }
    fn error_norm(&self, _err: &[f64], _y: &[f64], _y_new: &[f64]) -> f64 {
        0.0
    }
    fn decide(&self, _state: &mut (), _h: f64, _err_norm: f64, _order: usize) -> Decision {
        Decision::Accept { h_next: self.h }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_uses_mixed_scale() {
        let e = weighted_rms_norm(&[1e-3, 0.0], &[1.0, 0.0], &[2.0, 0.0], 1e-3, Atol::Scalar(0.0));
        // component 0: 1e-3 / (1e-3 · 2) = 0.5; rms over 2 components
        assert!((e - 0.5 / 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn pi_rejects_large_errors_and_grows_on_small_ones() {
        let c = PiController::new(1e-6, 1e-6);
        let mut s = c.init_state();
        match c.decide(&mut s, 1.0, 4.0, 4) {
            Decision::Reject { h_next } => assert!((0.2..1.0).contains(&h_next)),
            d => panic!("{d:?}"),
        }
        // No growth right after a rejection.
        match c.decide(&mut s, 1.0, 1e-6, 4) {
            Decision::Accept { h_next } => assert_eq!(h_next, 1.0),
            d => panic!("{d:?}"),
        }
        match c.decide(&mut s, 1.0, 1e-6, 4) {
            Decision::Accept { h_next } => assert!(h_next > 1.0 && h_next <= 10.0),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn validation_catches_bad_tolerances() {
        assert!(PiController::new(-1.0, 1e-6).validate(1).is_err());
        assert!(PiController::new(f64::NAN, 1e-6).validate(1).is_err());
        assert!(PiController::new(0.0, 0.0).validate(1).is_err());
        assert!(PiController::new(1e-6, 0.0).validate(1).is_ok());
        assert!(PiController::new(1e-6, 1e-6).with_atol_components(vec![1.0]).validate(2).is_err());
        assert!(ConstantStep::new(0.0).validate(1).is_err());
    }

    #[test]
    fn initial_step_on_linear_decay() {
        // y' = -y, y0 = 1: d0 = d1 = 1/(atol + rtol) ⇒ h0 = 0.01, second derivative ≈ 1.
        let c = PiController::new(1e-6, 1e-6);
        let input = InitialStep { t0: 0.0, y0: &[1.0], f0: &[-1.0], span: 10.0, order: 5 };
        let h = c.initial_step(&input, &mut |_t, y, dy| dy[0] = -y[0]);
        assert!(h > 0.0 && h <= 1.0, "{h}");
    }
}
