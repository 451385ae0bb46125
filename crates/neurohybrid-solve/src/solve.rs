//! The solve loop: the only place that knows problem, stepper, controller and output together.

use crate::controller::{Decision, InitialStep, StepSizeController};
use crate::dense::{DenseOutput, eval_power_basis};
use crate::error::{Result, SolveError};
use crate::problem::Problem;
use crate::save::SaveAt;
use crate::solution::Solution;
use crate::stats::{Stats, Status};
use crate::stepper::{Step, StepOutcome, StepState, Stepper};
use neurohybrid_system::OdeSystem;

/// After this many consecutive step failures (e.g. Newton divergence) the run stops, as CVODE
/// does with its `maxncf = 10`.
const MAX_CONSECUTIVE_FAILURES: usize = 10;

/// A step within 1 % of the next stop is stretched to land on it, instead of leaving a sliver
/// step behind (Hairer's DOPRI5: `X + 1.01·H − XEND`).
const STRETCH: f64 = 1.01;

/// Integrate `problem` with `stepper`, choosing steps with `controller`, recording `save_at`.
///
/// `Err` only for misuse, detected before the first step: wrong lengths, non-finite initial
/// state or parameters, bad tolerances, an empty or non-finite span, save times outside the
/// span or out of order, an adaptive controller with a stepper that has no error estimate.
/// A run that starts and then fails returns `Ok` with a non-success [`Status`] and the
/// trajectory up to where it stopped.
pub fn solve<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
) -> Result<Solution>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    validate(problem, stepper, controller, save_at)?;
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

    let mut out = Recorder::new(save_at, n, dir);
    out.record_start(t0, problem.y0());
    let impulses = problem.impulses_in_span();
    let mut next_impulse = 0;
    let mut coeffs = vec![0.0; (stepper.dense_degree() + 1) * n];
    let mut scratch = vec![0.0; n];
    let mut failures = 0;
    let mut t = t0;

    let status = loop {
        if t == t1 {
            break Status::Success;
        }
        if stats.attempted_steps() >= controller.max_steps() {
            break Status::MaxSteps { t };
        }
        let stop = impulses.get(next_impulse).map_or(t1, |i| i.t);
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
            // A blow-up in a trial step is treated like a large error: retry smaller, and give
            // up only when the step cannot shrink further (or cannot shrink at all).
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
                let need_dense = out.needs_dense(t_new);
                if need_dense {
                    stepper.dense(sys, p, &mut state, step, &mut coeffs, &mut stats);
                }
                stats.accepted_steps += 1;
                h_mag = stepper.accept(sys, p, &mut state, t_new, h_next, &mut stats);
                if need_dense {
                    out.record_inside(t, t_new - t, t_new, &coeffs, &mut scratch);
                }
                let mut fired = false;
                while let Some(imp) = impulses.get(next_impulse).filter(|i| hits && i.t == t_new) {
                    imp.map.apply(t_new, state.y(), p, &mut scratch);
                    state.y_mut().copy_from_slice(&scratch);
                    stats.impulses += 1;
                    next_impulse += 1;
                    fired = true;
                }
                if fired {
                    stepper.restart(sys, p, &mut state, t_new, &mut stats);
                }
                t = t_new;
                out.record_end(t, state.y());
                if fired && !state.y().iter().all(|v| v.is_finite()) {
                    break Status::NonFinite { t };
                }
            }
        }
    };
    Ok(out.finish(t, state.y(), status, stats))
}

pub(crate) fn initial_step<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    state: &St::State,
    stats: &mut Stats,
) -> f64
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    let (sys, p) = (problem.system(), problem.params());
    let (t0, t1) = problem.t_span();
    let y0 = problem.y0();
    let own;
    let f0 = match state.dydt() {
        Some(f) => f,
        None if controller.is_adaptive() => {
            let mut f = vec![0.0; y0.len()];
            sys.rhs(t0, y0, p, &mut f);
            stats.rhs_evals += 1;
            own = f;
            &own
        }
        None => &[][..], // a non-adaptive controller ignores it
    };
    let input = InitialStep { t0, y0, f0, span: t1 - t0, order: stepper.order() };
    let mut rhs = |t: f64, y: &[f64], dy: &mut [f64]| {
        stats.rhs_evals += 1;
        sys.rhs(t, y, p, dy);
    };
    controller.initial_step(&input, &mut rhs).min(controller.h_max()).min((t1 - t0).abs())
}

pub(crate) fn validate<S, St, C>(
    problem: &Problem<S>,
    stepper: &St,
    controller: &C,
    save_at: &SaveAt,
) -> Result<()>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
{
    let sys = problem.system();
    let n = sys.n_states();
    let len = |what, expected, found| {
        if expected == found {
            Ok(())
        } else {
            Err(SolveError::LengthMismatch { what, expected, found })
        }
    };
    len("y0", n, problem.y0().len())?;
    len("parameters", sys.n_params(), problem.params().len())?;
    let finite = |what, v: &[f64]| match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(SolveError::NonFiniteInput { what, index, value: v[index] }),
    };
    finite("y0", problem.y0())?;
    finite("parameters", problem.params())?;
    let (t0, t1) = problem.t_span();
    if !t0.is_finite() || !t1.is_finite() {
        return Err(SolveError::InvalidTimeSpan { t0, t1, reason: "not finite" });
    }
    if t0 == t1 {
        return Err(SolveError::InvalidTimeSpan { t0, t1, reason: "zero length" });
    }
    controller.validate(n)?;
    if controller.is_adaptive() && !stepper.is_adaptive() {
        return Err(SolveError::MissingCapability {
            stepper: stepper.name().to_string(),
            capability: "an error estimate (needed by an adaptive controller)",
        });
    }
    for (index, imp) in problem.impulses().iter().enumerate() {
        if !imp.t.is_finite() {
            return Err(SolveError::InvalidImpulseTime { index, t: imp.t });
        }
    }
    if let SaveAt::Times(ts) = save_at {
        let dir = (t1 - t0).signum();
        let mut prev = t0;
        for (index, &t) in ts.iter().enumerate() {
            let bad = |reason| Err(SolveError::InvalidSaveTime { index, t, t0, t1, reason });
            if !t.is_finite() {
                return bad("is not finite");
            }
            if dir * (t - t0) < 0.0 || dir * (t - t1) > 0.0 {
                return bad("lies outside the span");
            }
            if dir * (t - prev) < 0.0 {
                return bad("is out of order");
            }
            prev = t;
        }
    }
    Ok(())
}

/// Collects saved values according to `SaveAt`.
struct Recorder<'a> {
    save_at: &'a SaveAt,
    n: usize,
    dir: f64,
    next: usize,
    ts: Vec<f64>,
    ys: Vec<f64>,
    dense: Option<DenseOutput>,
}

impl<'a> Recorder<'a> {
    fn new(save_at: &'a SaveAt, n: usize, dir: f64) -> Self {
        let dense = matches!(save_at, SaveAt::Dense).then(|| DenseOutput::new(n, dir));
        let cap = match save_at {
            SaveAt::Times(ts) => ts.len(),
            SaveAt::Final => 1,
            _ => 0,
        };
        Self {
            save_at,
            n,
            dir,
            next: 0,
            ts: Vec::with_capacity(cap),
            ys: Vec::with_capacity(cap * n),
            dense,
        }
    }

    fn push(&mut self, t: f64, y: &[f64]) {
        self.ts.push(t);
        self.ys.extend_from_slice(y);
    }

    fn record_start(&mut self, t0: f64, y0: &[f64]) {
        match self.save_at {
            SaveAt::Steps | SaveAt::Dense => self.push(t0, y0),
            SaveAt::Times(_) => self.record_end(t0, y0),
            _ => {}
        }
    }

    /// Whether the step ending at `t_new` needs interpolated values.
    fn needs_dense(&self, t_new: f64) -> bool {
        match self.save_at {
            SaveAt::Dense => true,
            SaveAt::Times(ts) => ts.get(self.next).is_some_and(|&s| self.dir * (s - t_new) < 0.0),
            _ => false,
        }
    }

    /// Values strictly inside the step `[t, t + h]` (the interpolant is pre-impulse).
    fn record_inside(&mut self, t: f64, h: f64, t_new: f64, coeffs: &[f64], buf: &mut [f64]) {
        if let Some(d) = &mut self.dense {
            d.push(t, h, coeffs);
        }
        if let SaveAt::Times(ts) = self.save_at {
            while let Some(&s) = ts.get(self.next).filter(|&&s| self.dir * (s - t_new) < 0.0) {
                eval_power_basis(coeffs, (s - t) / h, buf);
                self.push(s, buf);
                self.next += 1;
            }
        }
    }

    /// Values at an accepted step's end (post-impulse).
    fn record_end(&mut self, t: f64, y: &[f64]) {
        match self.save_at {
            SaveAt::Steps | SaveAt::Dense => self.push(t, y),
            SaveAt::Times(ts) => {
                while ts.get(self.next) == Some(&t) {
                    self.push(t, y);
                    self.next += 1;
                }
            }
            _ => {}
        }
    }

    fn finish(mut self, t: f64, y: &[f64], status: Status, stats: Stats) -> Solution {
        if matches!(self.save_at, SaveAt::Final) {
            self.push(t, y);
        }
        Solution { n: self.n, ts: self.ts, ys: self.ys, status, stats, dense: self.dense }
    }
}
