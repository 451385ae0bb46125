//! The forward pass of a reverse-mode method: the solve loop of [`crate::solve`] with the
//! accepted step sequence recorded, and the save times either made stops (like impulses,
//! [`SaveSteps::Stop`]) or read from the stepper's dense output inside the steps
//! ([`SaveSteps::Interpolate`], as `solve` itself does).
//!
//! Why a separate loop: a reverse pass needs every accepted `(t, h)`, the state at chosen step
//! boundaries, and where each loss cotangent enters: at a step boundary, or inside step `n` at
//! a normalized time `θ` (then the reverse step differentiates the dense-output polynomial,
//! [`StepVjp::step_vjp_dense`]). The loop below is `solve`'s, step for step (same controller
//! calls, same stretch to stops, same failure handling); `tests::traced_loop_matches_solve`
//! keeps them in sync, and with `Interpolate` the whole trace equals `solve` with
//! `SaveAt::Times` bit for bit (`tests::interpolated_trace_is_solve`).

use super::StepVjp;
use super::discrete::SaveSteps;
use crate::controller::{Decision, StepSizeController};
use crate::dense::eval_power_basis;
use crate::error::Result;
use crate::problem::{Problem, ScheduledImpulse};
use crate::save::SaveAt;
use crate::solution::Solution;
use crate::solve::{initial_step, validate};
use crate::stats::{Stats, Status};
use crate::stepper::{Step, StepOutcome, StepState, Stepper};
use neurohybrid_system::{OdeSystem, Vjp};

/// Same constants as the solve loop.
const MAX_CONSECUTIVE_FAILURES: usize = 10;
const STRETCH: f64 = 1.01;

/// Something that happens at a step boundary, after the step that ends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Impulse `i` of `impulses_in_span()` fires.
    Impulse(usize),
    /// Save time `k` is recorded (after all impulses at this boundary).
    Save(usize),
}

/// The accepted steps of a forward solve and what happens between them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tape {
    /// Step boundaries: step `n` goes from `ts[n]` to `ts[n + 1]`.
    pub ts: Vec<f64>,
    /// Signed step sizes as passed to `Stepper::step` (`ts[n] + hs[n]` may differ from
    /// `ts[n + 1]` by rounding when the step was stretched onto a stop).
    pub hs: Vec<f64>,
    /// `(boundary, event)` in the order they happen; boundary `b` is `ts[b]`.
    pub events: Vec<(usize, Event)>,
    /// Save times read from the dense output inside a step, in save order.
    pub dense: Vec<DenseSave>,
}

/// A save time strictly inside an accepted step (interpolated saves only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DenseSave {
    /// The step `n` (from `ts[n]` to `ts[n + 1]`).
    pub step: usize,
    /// `θ = (s − ts[n]) / (ts[n + 1] − ts[n])`, as `solve` evaluates the interpolant.
    pub theta: f64,
    /// Index of the save time.
    pub save: usize,
}

impl Tape {
    pub(crate) fn steps(&self) -> usize {
        self.hs.len()
    }

    pub(crate) fn step(&self, n: usize) -> Step {
        Step { t: self.ts[n], h: self.hs[n] }
    }

    /// The events at boundary `b` (a contiguous run of `events`).
    pub(crate) fn events_at(&self, b: usize) -> &[(usize, Event)] {
        let lo = self.events.partition_point(|e| e.0 < b);
        let hi = self.events.partition_point(|e| e.0 <= b);
        &self.events[lo..hi]
    }

    /// The interpolated saves inside step `n` (a contiguous run of `dense`).
    pub(crate) fn dense_in(&self, n: usize) -> &[DenseSave] {
        let lo = self.dense.partition_point(|d| d.step < n);
        let hi = self.dense.partition_point(|d| d.step <= n);
        &self.dense[lo..hi]
    }
}

/// Result of [`traced_solve`].
pub(crate) struct Traced<T> {
    pub tape: Tape,
    pub solution: Solution,
    pub impulses: Vec<ScheduledImpulse>,
    pub state: T,
}

/// Solve `problem` landing on every save time (`Stop`) or interpolating them (`Interpolate`),
/// calling `at_boundary(b, state)` with the stepper's state after every step boundary (after
/// `accept`, impulses and `restart`; `b = 0` is right after `init`, `state.y() = y0`), and
/// `before_accept(n, state)` with the state of accepted step `n` before `accept` (stages in
/// place, as [`StepVjp::step_vjp`] needs them).
pub(crate) fn traced_solve<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_ts: &[f64],
    saves: SaveSteps,
    mut at_boundary: impl FnMut(usize, &St::State),
    mut before_accept: impl FnMut(usize, &St::State),
) -> Result<Traced<St::State>>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    let save_at = SaveAt::Times(save_ts.to_vec());
    validate(problem, stepper, controller, &save_at)?;
    let sys = problem.system();
    let p = problem.params();
    let n = sys.n_states();
    let (t0, t1) = problem.t_span();
    let dir = (t1 - t0).signum();
    let adaptive = controller.is_adaptive();
    let h_min = controller.h_min();

    let mut stats = Stats::default();
    let mut state = stepper.init(sys, p, t0, problem.y0(), &mut stats);
    let mut cstate = controller.init_state();
    let mut h_mag = initial_step(problem, stepper, controller, &state, &mut stats);

    let impulses = problem.impulses_in_span();
    // Stops: impulse times (and save times after t0 unless interpolated), merged in
    // integration order, then t1.
    let interpolate = saves == SaveSteps::Interpolate;
    let mut stops: Vec<f64> = impulses.iter().map(|i| i.t).collect();
    if !interpolate {
        stops.extend(save_ts.iter().copied().filter(|&s| dir * (s - t0) > 0.0));
    }
    stops.sort_by(|a, b| (dir * a).total_cmp(&(dir * b)));
    stops.dedup();
    let mut next_stop = 0;

    let mut tape = Tape { ts: vec![t0], ..Tape::default() };
    let mut ts_saved = Vec::with_capacity(save_ts.len());
    let mut ys_saved = Vec::with_capacity(save_ts.len() * n);
    let mut next_save = 0;
    while save_ts.get(next_save) == Some(&t0) {
        tape.events.push((0, Event::Save(next_save)));
        ts_saved.push(t0);
        ys_saved.extend_from_slice(problem.y0());
        next_save += 1;
    }
    at_boundary(0, &state);
    let mut next_impulse = 0;
    let mut scratch = vec![0.0; n];
    let mut coeffs = if interpolate { vec![0.0; (stepper.dense_degree() + 1) * n] } else { vec![] };
    let mut failures = 0;
    let mut t = t0;

    let status = loop {
        if t == t1 {
            break Status::Success;
        }
        if stats.attempted_steps() >= controller.max_steps() {
            break Status::MaxSteps { t };
        }
        let stop = stops.get(next_stop).copied().unwrap_or(t1);
        let remaining = stop - t;
        let hits = h_mag * STRETCH >= remaining.abs();
        let h = if hits { remaining } else { dir * h_mag };
        if !hits && (h_mag < h_min || t + h == t) {
            break Status::StepSizeTooSmall { t };
        }
        let step = Step { t, h };

        if let StepOutcome::Failed(failure) = stepper.step(sys, p, &mut state, step, &mut stats) {
            stats.failed_steps += 1;
            failures += 1;
            let h_new = controller.after_failure(&mut cstate, h.abs());
            if failures >= MAX_CONSECUTIVE_FAILURES || h_new < h_min || t + dir * h_new == t {
                break failure.status(t);
            }
            h_mag = stepper.reject(&mut state, h_new);
            continue;
        }

        let finite = state.y_proposed().iter().all(|v| v.is_finite());
        let err_norm = if adaptive && finite {
            controller.error_norm(state.error_estimate(), state.y(), state.y_proposed())
        } else {
            0.0
        };
        if !finite || !err_norm.is_finite() {
            stats.rejected_steps += 1;
            let h_new = controller.after_failure(&mut cstate, h.abs());
            if !adaptive || h_new < h_min || t + dir * h_new == t {
                break Status::NonFinite { t };
            }
            h_mag = stepper.reject(&mut state, h_new);
            continue;
        }

        match controller.decide(&mut cstate, h.abs(), err_norm, stepper.control_order(&state)) {
            Decision::Reject { h_next } => {
                stats.rejected_steps += 1;
                h_mag = stepper.reject(&mut state, h_next);
            }
            Decision::Accept { h_next } => {
                failures = 0;
                let t_new = if hits { stop } else { t + h };
                // Save times strictly inside the step: from its interpolant (pre-impulse), in
                // exactly `solve`'s arithmetic.
                let inside = |s: f64| dir * (s - t_new) < 0.0;
                let need_dense = interpolate && save_ts.get(next_save).is_some_and(|&s| inside(s));
                if need_dense {
                    stepper.dense(sys, p, &mut state, step, &mut coeffs, &mut stats);
                }
                before_accept(tape.hs.len(), &state);
                stats.accepted_steps += 1;
                h_mag = stepper.accept(sys, p, &mut state, t_new, h_next, &mut stats);
                if need_dense {
                    let hh = t_new - t;
                    while let Some(&s) = save_ts.get(next_save).filter(|&&s| inside(s)) {
                        let theta = (s - t) / hh;
                        eval_power_basis(&coeffs, theta, &mut scratch);
                        ts_saved.push(s);
                        ys_saved.extend_from_slice(&scratch);
                        tape.dense.push(DenseSave { step: tape.hs.len(), theta, save: next_save });
                        next_save += 1;
                    }
                }
                tape.hs.push(h);
                tape.ts.push(t_new);
                let b = tape.hs.len();
                let mut fired = false;
                while let Some(imp) = impulses.get(next_impulse).filter(|i| hits && i.t == t_new) {
                    imp.map.apply(t_new, state.y(), p, &mut scratch);
                    state.y_mut().copy_from_slice(&scratch);
                    stats.impulses += 1;
                    tape.events.push((b, Event::Impulse(next_impulse)));
                    next_impulse += 1;
                    fired = true;
                }
                if fired {
                    stepper.restart(sys, p, &mut state, t_new, &mut stats);
                }
                if hits {
                    next_stop += 1;
                }
                t = t_new;
                while save_ts.get(next_save) == Some(&t) {
                    tape.events.push((b, Event::Save(next_save)));
                    ts_saved.push(t);
                    ys_saved.extend_from_slice(state.y());
                    next_save += 1;
                }
                at_boundary(b, &state);
                if fired && !state.y().iter().all(|v| v.is_finite()) {
                    break Status::NonFinite { t };
                }
            }
        }
    };
    let solution = Solution { n, ts: ts_saved, ys: ys_saved, status, stats, dense: None };
    Ok(Traced { tape, solution, impulses, state })
}

/// The step boundaries `t_0 < t_1 < … < t_N` that a reverse-mode gradient's forward solve
/// takes with [`SaveSteps::Stop`] (save times are stops, like impulses; the default of
/// [`super::DiscreteAdjoint`]). Replaying them with [`FrozenSteps`] solves the same discrete
/// map, the one the adjoint differentiates — what a finite-difference check of it must perturb.
pub fn step_sequence<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
) -> Result<Vec<f64>>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    step_sequence_with(problem, stepper, controller, save_at, SaveSteps::Stop)
}

/// [`step_sequence`] for the given save mode. With [`SaveSteps::Interpolate`] these are the
/// steps of `solve` itself (save times do not shorten steps); the same discrete map is
/// `solve(problem, stepper, &FrozenSteps::new(&ts), save_at)`.
pub fn step_sequence_with<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
    saves: SaveSteps,
) -> Result<Vec<f64>>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    let save_ts = super::save_times("step sequence", problem, save_at)?;
    let traced = traced_solve(problem, stepper, controller, &save_ts, saves, |_, _| {}, |_, _| {})?;
    super::require_success(&traced.solution)?;
    Ok(traced.tape.ts)
}

/// The step sequence of a reverse-mode gradient's forward solve together with the stepper's
/// discrete decisions at every boundary ([`StepVjp::control`], e.g. BDF's order): all a
/// finite-difference check needs to re-solve *the same discrete map* under perturbed inputs,
/// with [`RecordedSteps::controller`] and [`RecordedSteps::replay`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSteps {
    /// Step boundaries `t_0, …, t_N`.
    pub ts: Vec<f64>,
    /// `controls[b]`: the stepper's [`StepVjp::control`] at boundary `b`.
    pub controls: Vec<usize>,
}

impl RecordedSteps {
    /// The controller replaying the step sizes.
    pub fn controller(&self) -> FrozenSteps {
        FrozenSteps::new(&self.ts)
    }

    /// `stepper`, with its recorded decisions imposed.
    pub fn replay<St>(&self, stepper: St) -> Replay<St> {
        Replay { inner: stepper, ts: self.ts.clone(), controls: self.controls.clone() }
    }
}

/// Like [`step_sequence`], also recording the stepper's [`StepVjp::control`] per boundary.
pub fn recorded_steps<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
) -> Result<RecordedSteps>
where
    S: Vjp,
    St: StepVjp<S>,
    C: StepSizeController,
{
    recorded_steps_with(problem, stepper, controller, save_at, SaveSteps::Stop)
}

/// [`recorded_steps`] for the given save mode (see [`step_sequence_with`]).
pub fn recorded_steps_with<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
    saves: SaveSteps,
) -> Result<RecordedSteps>
where
    S: Vjp,
    St: StepVjp<S>,
    C: StepSizeController,
{
    let save_ts = super::save_times("recorded steps", problem, save_at)?;
    let mut controls = Vec::new();
    let traced = traced_solve(
        problem,
        stepper,
        controller,
        &save_ts,
        saves,
        |_, st| {
            controls.push(stepper.control(st));
        },
        |_, _| {},
    )?;
    super::require_success(&traced.solution)?;
    Ok(RecordedSteps { ts: traced.tape.ts, controls })
}

/// A stepper that repeats a recorded forward pass's discrete decisions
/// ([`RecordedSteps::replay`]): after every `accept` the recorded [`StepVjp::control`] of the
/// boundary reached is imposed, and the step size returned is the controller's (use
/// [`RecordedSteps::controller`]), not the stepper's own choice. So a multistep method with
/// its own step-size and order selection (BDF) solves exactly the map
/// [`super::DiscreteAdjoint`] differentiates, also under perturbed parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay<St> {
    inner: St,
    ts: Vec<f64>,
    controls: Vec<usize>,
}

impl<St> Replay<St> {
    /// The wrapped stepper.
    pub fn inner(&self) -> &St {
        &self.inner
    }

    fn control_at(&self, t: f64) -> Option<usize> {
        let dir = if self.ts.last() >= self.ts.first() { 1.0 } else { -1.0 };
        let b = self.ts.binary_search_by(|s| (dir * s).total_cmp(&(dir * t))).ok()?;
        self.controls.get(b).copied()
    }
}

impl<S: Vjp, St: StepVjp<S>> Stepper<S> for Replay<St> {
    type State = St::State;
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn order(&self) -> usize {
        self.inner.order()
    }
    fn error_order(&self) -> Option<usize> {
        self.inner.error_order()
    }
    fn is_adaptive(&self) -> bool {
        self.inner.is_adaptive()
    }
    fn dense_degree(&self) -> usize {
        self.inner.dense_degree()
    }
    fn control_order(&self, state: &Self::State) -> usize {
        self.inner.control_order(state)
    }
    fn init(&self, system: &S, p: &[f64], t0: f64, y0: &[f64], stats: &mut Stats) -> St::State {
        let mut st = self.inner.init(system, p, t0, y0, stats);
        if let Some(c) = self.control_at(t0) {
            self.inner.impose_control(&mut st, c);
        }
        st
    }
    fn step(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        step: Step,
        stats: &mut Stats,
    ) -> StepOutcome {
        self.inner.step(system, p, state, step, stats)
    }
    fn dense(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        step: Step,
        coeffs: &mut [f64],
        stats: &mut Stats,
    ) {
        self.inner.dense(system, p, state, step, coeffs, stats)
    }
    fn accept(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        t_new: f64,
        h_next: f64,
        stats: &mut Stats,
    ) -> f64 {
        self.inner.accept(system, p, state, t_new, h_next, stats);
        if let Some(c) = self.control_at(t_new) {
            self.inner.impose_control(state, c);
        }
        h_next
    }
    fn reject(&self, state: &mut St::State, h_next: f64) -> f64 {
        self.inner.reject(state, h_next)
    }
    fn restart(&self, system: &S, p: &[f64], state: &mut St::State, t: f64, stats: &mut Stats) {
        self.inner.restart(system, p, state, t, stats);
        // An impulse's restart resets the history; the recorded decision is the one after it.
        if let Some(c) = self.control_at(t) {
            self.inner.impose_control(state, c);
        }
    }
}

impl<S: Vjp, St: StepVjp<S>> StepVjp<S> for Replay<St> {
    type VjpWork = St::VjpWork;
    fn vjp_work(&self, system: &S, state: &St::State) -> St::VjpWork {
        self.inner.vjp_work(system, state)
    }
    fn step_vjp(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        step: Step,
        w: &mut [f64],
        w_p: &mut [f64],
        work: &mut St::VjpWork,
        stats: &mut Stats,
    ) {
        self.inner.step_vjp(system, p, state, step, w, w_p, work, stats)
    }
    fn dense_vjp_supported(&self) -> bool {
        self.inner.dense_vjp_supported()
    }
    fn step_vjp_dense(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        step: Step,
        thetas: &[f64],
        cot: &[f64],
        w: &mut [f64],
        w_p: &mut [f64],
        work: &mut St::VjpWork,
        stats: &mut Stats,
    ) {
        self.inner.step_vjp_dense(system, p, state, step, thetas, cot, w, w_p, work, stats)
    }
    fn step_cache_len(&self, system: &S, state: &St::State) -> usize {
        self.inner.step_cache_len(system, state)
    }
    fn save_step(&self, state: &St::State, out: &mut [f64]) {
        self.inner.save_step(state, out)
    }
    fn load_step(&self, state: &mut St::State, saved: &[f64]) {
        self.inner.load_step(state, saved)
    }
    fn reversed_len(&self, system: &S, state: &St::State) -> usize {
        self.inner.reversed_len(system, state)
    }
    fn save_reversed(&self, state: &St::State, out: &mut Vec<f64>) {
        self.inner.save_reversed(state, out)
    }
    fn load_reversed(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        t: f64,
        saved: &[f64],
        stats: &mut Stats,
    ) {
        self.inner.load_reversed(system, p, state, t, saved, stats)
    }
    fn restart_vjp(
        &self,
        system: &S,
        p: &[f64],
        state: &mut St::State,
        t: f64,
        y: &[f64],
        w: &[f64],
        w_y: &mut [f64],
        w_p: &mut [f64],
        work: &mut St::VjpWork,
        stats: &mut Stats,
    ) {
        self.inner.restart_vjp(system, p, state, t, y, w, w_y, w_p, work, stats)
    }
    fn control(&self, state: &St::State) -> usize {
        self.inner.control(state)
    }
    fn impose_control(&self, state: &mut St::State, control: usize) {
        self.inner.impose_control(state, control)
    }
}

/// A non-adaptive controller that replays a recorded step sequence (from [`step_sequence`]):
/// step `n` has size `|t_{n+1} − t_n|`. For finite-difference checks of discrete adjoints and
/// for reproducing a solve exactly under perturbed parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenSteps {
    hs: Vec<f64>,
}

impl FrozenSteps {
    /// Replay the steps between consecutive `boundaries` (at least two times).
    pub fn new(boundaries: &[f64]) -> Self {
        Self { hs: boundaries.windows(2).map(|w| (w[1] - w[0]).abs()).collect() }
    }
}

impl StepSizeController for FrozenSteps {
    type State = usize;
    fn is_adaptive(&self) -> bool {
        false
    }
    fn validate(&self, _n_states: usize) -> Result<()> {
        match self.hs.iter().find(|h| !(h.is_finite() && **h > 0.0)) {
            Some(&value) => Err(crate::SolveError::InvalidStepSize { name: "frozen step", value }),
            None if self.hs.is_empty() => {
                Err(crate::SolveError::InvalidStepSize { name: "frozen step (none)", value: 0.0 })
            }
            None => Ok(()),
        }
    }
    fn max_steps(&self) -> usize {
        self.hs.len()
    }
    fn init_state(&self) -> usize {
        0
    }
    fn initial_step(&self, _input: &crate::InitialStep<'_>, _rhs: &mut crate::RhsFn<'_>) -> f64 {
        self.hs[0]
    }
    fn error_norm(&self, _err: &[f64], _y: &[f64], _y_new: &[f64]) -> f64 {
        0.0
    }
    fn decide(&self, n: &mut usize, _h: f64, _err: f64, _order: usize) -> Decision {
        *n += 1;
        // Past the recorded sequence (only if the caller changed the problem) keep the last h.
        Decision::Accept { h_next: self.hs[(*n).min(self.hs.len() - 1)] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::PiController;
    use crate::problem::Scale;
    use crate::solve::solve;
    use crate::stepper::StepState;

    /// Heun–Euler 2(1), enough to exercise the adaptive loop.
    struct HeunEuler;
    struct St {
        y: Vec<f64>,
        y1: Vec<f64>,
        k0: Vec<f64>,
        k1: Vec<f64>,
        err: Vec<f64>,
    }
    impl StepState for St {
        fn y(&self) -> &[f64] {
            &self.y
        }
        fn y_mut(&mut self) -> &mut [f64] {
            &mut self.y
        }
        fn y_proposed(&self) -> &[f64] {
            &self.y1
        }
        fn error_estimate(&self) -> &[f64] {
            &self.err
        }
    }
    impl<S: OdeSystem> Stepper<S> for HeunEuler {
        type State = St;
        fn name(&self) -> &str {
            "HeunEuler"
        }
        fn order(&self) -> usize {
            2
        }
        fn error_order(&self) -> Option<usize> {
            Some(1)
        }
        fn init(&self, s: &S, _p: &[f64], _t0: f64, y0: &[f64], _st: &mut Stats) -> St {
            let n = s.n_states();
            St {
                y: y0.to_vec(),
                y1: vec![0.0; n],
                k0: vec![0.0; n],
                k1: vec![0.0; n],
                err: vec![0.0; n],
            }
        }
        fn step(
            &self,
            s: &S,
            p: &[f64],
            st: &mut St,
            step: Step,
            stats: &mut Stats,
        ) -> StepOutcome {
            s.rhs(step.t, &st.y, p, &mut st.k0);
            for i in 0..st.y.len() {
                st.y1[i] = st.y[i] + step.h * st.k0[i];
            }
            s.rhs(step.t + step.h, &st.y1, p, &mut st.k1);
            for i in 0..st.y.len() {
                st.y1[i] = st.y[i] + 0.5 * step.h * (st.k0[i] + st.k1[i]);
                st.err[i] = 0.5 * step.h * (st.k1[i] - st.k0[i]);
            }
            stats.rhs_evals += 2;
            StepOutcome::Computed
        }
        fn dense(
            &self,
            _s: &S,
            _p: &[f64],
            st: &mut St,
            step: Step,
            c: &mut [f64],
            _stats: &mut Stats,
        ) {
            crate::hermite_coefficients(&st.y, &st.k0, &st.y1, &st.k1, step.h, c);
        }
        fn accept(
            &self,
            _s: &S,
            _p: &[f64],
            st: &mut St,
            _t: f64,
            h: f64,
            _stats: &mut Stats,
        ) -> f64 {
            std::mem::swap(&mut st.y, &mut st.y1);
            h
        }
        fn restart(&self, _s: &S, _p: &[f64], _st: &mut St, _t: f64, _stats: &mut Stats) {}
    }

    struct Osc;
    impl OdeSystem for Osc {
        fn n_states(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
            dy[0] = y[1];
            dy[1] = -y[0];
        }
    }

    #[test]
    fn traced_loop_matches_solve() {
        let pr = Problem::new(Osc, [1.0, 0.0], [], (0.0, 7.0)).with_impulse(3.0, Scale::all(0.5));
        let c = PiController::new(1e-6, 1e-8);
        let sol = solve(&pr, &HeunEuler, &c, &SaveAt::Steps).unwrap();
        let mut boundaries = Vec::new();
        let tr = traced_solve(
            &pr,
            &HeunEuler,
            &c,
            &[7.0],
            SaveSteps::Stop,
            |b, st| boundaries.push((b, st.y().to_vec())),
            |_, _| {},
        )
        .unwrap();
        // Without save times inside the span the step sequence is the solve loop's, bit for bit.
        assert_eq!(tr.tape.ts, sol.ts());
        assert_eq!(tr.solution.y(0), sol.last().unwrap());
        assert_eq!(tr.solution.stats(), sol.stats());
        assert_eq!(boundaries.len(), sol.len());
        assert_eq!(boundaries[5].1, sol.y(5));
        let b_imp = tr.tape.ts.iter().position(|&t| t == 3.0).unwrap();
        assert_eq!(tr.tape.events_at(b_imp), &[(b_imp, Event::Impulse(0))]);
    }

    #[test]
    fn save_times_become_stops() {
        let pr = Problem::new(Osc, [1.0, 0.0], [], (0.0, 2.0));
        let c = PiController::new(1e-6, 1e-8);
        let saves = [0.0, 0.3, 0.3, 2.0];
        let tr = traced_solve(&pr, &HeunEuler, &c, &saves, SaveSteps::Stop, |_, _| {}, |_, _| {})
            .unwrap();
        assert!(tr.tape.ts.contains(&0.3));
        assert_eq!(tr.solution.ts(), &[0.0, 0.3, 0.3, 2.0]);
        assert_eq!(tr.tape.events_at(0), &[(0, Event::Save(0))]);
        let b = tr.tape.ts.iter().position(|&t| t == 0.3).unwrap();
        assert_eq!(tr.tape.events_at(b), &[(b, Event::Save(1)), (b, Event::Save(2))]);
    }

    #[test]
    fn interpolated_trace_is_solve() {
        // Save times inside steps, one at t0, two equal ones, one at t1, and an impulse.
        let pr = Problem::new(Osc, [1.0, 0.0], [], (0.0, 7.0)).with_impulse(3.0, Scale::all(0.5));
        let c = PiController::new(1e-6, 1e-8);
        let saves = vec![0.0, 0.3, 1.7, 1.7, 3.0, 4.25, 7.0];
        let save = SaveAt::Times(saves.clone());
        let sol = solve(&pr, &HeunEuler, &c, &save).unwrap();
        let steps = solve(&pr, &HeunEuler, &c, &SaveAt::Steps).unwrap();
        let tr =
            traced_solve(&pr, &HeunEuler, &c, &saves, SaveSteps::Interpolate, |_, _| {}, |_, _| {})
                .unwrap();
        assert_eq!(tr.tape.ts, steps.ts(), "save times do not shorten steps");
        assert_eq!(tr.solution.ts(), sol.ts());
        assert_eq!(tr.solution.ys(), sol.ys(), "bit for bit");
        assert_eq!(tr.solution.stats(), sol.stats());
        let inside: Vec<usize> = tr.tape.dense.iter().map(|d| d.save).collect();
        assert_eq!(inside, vec![1, 2, 3, 5]);
        for d in &tr.tape.dense {
            assert!(d.theta > 0.0 && d.theta < 1.0);
            let (a, b) = (tr.tape.ts[d.step], tr.tape.ts[d.step + 1]);
            assert!(a < saves[d.save] && saves[d.save] < b);
            assert_eq!(tr.tape.dense_in(d.step).iter().filter(|e| e.save == d.save).count(), 1);
        }
    }
}
