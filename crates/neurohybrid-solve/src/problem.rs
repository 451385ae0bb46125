//! What is integrated: a system, its initial state and parameters, the time span, and the
//! impulses (state maps at fixed times, e.g. radiotherapy fractions).

use neurohybrid_system::OdeSystem;
use std::ops::Range;
use std::sync::Arc;

/// A discontinuous state map `y ← M(t, y, p)` applied at a fixed time. Its parameters are the
/// problem's parameter vector (name the blocks with a `ParamLayout`).
///
/// The derivative methods are part of the contract because every sensitivity method
/// differentiates through impulses.
pub trait Impulse: Send + Sync {
    /// `out = M(t, y, p)`.
    fn apply(&self, t: f64, y: &[f64], p: &[f64], out: &mut [f64]);

    /// `w_y = wᵀ ∂M/∂y`, `w_p = wᵀ ∂M/∂p` (overwritten; `w_p` may be empty: not needed).
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]);

    /// `out = ∂M/∂y · v_y + ∂M/∂p · v_p` (`v_p` may be empty: zero tangent).
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]);
}

/// Multiply a range of state components by a constant factor, e.g. the surviving fraction
/// `exp(−αd − βd²)` of a radiotherapy fraction with fixed α, β, d.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    range: Option<Range<usize>>,
    factor: f64,
}

impl Scale {
    /// Scale the whole state.
    pub fn all(factor: f64) -> Self {
        Self { range: None, factor }
    }

    /// Scale the components in `range` only.
    pub fn components(range: Range<usize>, factor: f64) -> Self {
        Self { range: Some(range), factor }
    }

    fn scale(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
        let r = self.range.clone().unwrap_or(0..x.len());
        out[r].iter_mut().for_each(|v| *v *= self.factor);
    }
}

impl Impulse for Scale {
    fn apply(&self, _t: f64, y: &[f64], _p: &[f64], out: &mut [f64]) {
        self.scale(y, out);
    }
    fn vjp(&self, _t: f64, _y: &[f64], _p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.scale(w, w_y); // the map is linear and diagonal: its transpose is itself
        w_p.fill(0.0);
    }
    fn jvp(&self, _t: f64, _y: &[f64], _p: &[f64], v_y: &[f64], _v_p: &[f64], out: &mut [f64]) {
        self.scale(v_y, out);
    }
}

/// An impulse with the time it fires.
#[derive(Clone)]
pub struct ScheduledImpulse {
    /// When it fires.
    pub t: f64,
    /// The map.
    pub map: Arc<dyn Impulse>,
}

impl std::fmt::Debug for ScheduledImpulse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledImpulse").field("t", &self.t).finish_non_exhaustive()
    }
}

/// An initial-value problem `y' = f(t, y, p)`, `y(t0) = y0` on `[t0, t1]` (or `[t1, t0]`
/// backwards when `t1 < t0`), with impulses.
///
/// Impulse semantics: an impulse at time `τ` strictly after `t0` and not after `t1` (in the
/// direction of integration) is applied when the solution reaches `τ`; the solution is
/// right-continuous, so every saved value at `τ` is the post-impulse state. Impulses outside
/// that window are ignored (a dosing schedule may extend beyond the simulated window).
/// Several impulses at the same time are applied in the order they were added.
#[derive(Debug, Clone)]
pub struct Problem<S> {
    system: S,
    y0: Vec<f64>,
    p: Vec<f64>,
    t0: f64,
    t1: f64,
    impulses: Vec<ScheduledImpulse>,
}

impl<S: OdeSystem> Problem<S> {
    /// A problem without impulses. Inputs are validated when a solve starts.
    pub fn new(
        system: S,
        y0: impl Into<Vec<f64>>,
        p: impl Into<Vec<f64>>,
        t_span: (f64, f64),
    ) -> Self {
        let (t0, t1) = t_span;
        Self { system, y0: y0.into(), p: p.into(), t0, t1, impulses: Vec::new() }
    }

    /// Add an impulse at time `t`.
    pub fn with_impulse(mut self, t: f64, map: impl Impulse + 'static) -> Self {
        self.impulses.push(ScheduledImpulse { t, map: Arc::new(map) });
        self
    }

    /// Add an already shared impulse at time `t`.
    pub fn push_impulse(&mut self, t: f64, map: Arc<dyn Impulse>) {
        self.impulses.push(ScheduledImpulse { t, map });
    }

    /// The system.
    pub fn system(&self) -> &S {
        &self.system
    }
    /// The initial state.
    pub fn y0(&self) -> &[f64] {
        &self.y0
    }
    /// The initial state, mutably (e.g. to fit it). Its length is fixed.
    pub fn y0_mut(&mut self) -> &mut [f64] {
        &mut self.y0
    }
    /// The parameters.
    pub fn params(&self) -> &[f64] {
        &self.p
    }
    /// The parameters, mutably (training loops update them in place). Their length is fixed.
    pub fn params_mut(&mut self) -> &mut [f64] {
        &mut self.p
    }
    /// `(t0, t1)`.
    pub fn t_span(&self) -> (f64, f64) {
        (self.t0, self.t1)
    }
    /// Change the span (e.g. to integrate the same problem backwards).
    pub fn set_t_span(&mut self, t_span: (f64, f64)) {
        (self.t0, self.t1) = t_span;
    }
    /// All impulses as added.
    pub fn impulses(&self) -> &[ScheduledImpulse] {
        &self.impulses
    }

    /// The impulses that fire within `(t0, t1]`, in the order they fire.
    pub fn impulses_in_span(&self) -> Vec<ScheduledImpulse> {
        let dir = (self.t1 - self.t0).signum();
        let mut v: Vec<ScheduledImpulse> = self
            .impulses
            .iter()
            .filter(|i| dir * (i.t - self.t0) > 0.0 && dir * (self.t1 - i.t) >= 0.0)
            .cloned()
            .collect();
        // Stable sort keeps insertion order among equal times.
        v.sort_by(|a, b| (dir * a.t).total_cmp(&(dir * b.t)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Zero;
    impl OdeSystem for Zero {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs(&self, _t: f64, _y: &[f64], _p: &[f64], dy: &mut [f64]) {
            dy[0] = 0.0;
        }
    }

    #[test]
    fn impulses_in_span_filters_and_orders_by_direction() {
        let pr = Problem::new(Zero, [1.0], [], (10.0, 0.0))
            .with_impulse(2.0, Scale::all(0.5))
            .with_impulse(10.0, Scale::all(0.5)) // at t0: ignored
            .with_impulse(0.0, Scale::all(0.5)) // at t1: applied
            .with_impulse(7.0, Scale::all(0.5))
            .with_impulse(-1.0, Scale::all(0.5)); // outside
        let ts: Vec<f64> = pr.impulses_in_span().iter().map(|i| i.t).collect();
        assert_eq!(ts, vec![7.0, 2.0, 0.0]);
    }

    #[test]
    fn scale_components_and_its_vjp() {
        let s = Scale::components(1..2, 3.0);
        let mut out = [0.0; 3];
        s.apply(0.0, &[1.0, 2.0, 3.0], &[], &mut out);
        assert_eq!(out, [1.0, 6.0, 3.0]);
        let mut wy = [0.0; 3];
        s.vjp(0.0, &[0.0; 3], &[], &[1.0, 1.0, 1.0], &mut wy, &mut []);
        assert_eq!(wy, [1.0, 3.0, 1.0]);
    }
}
