//! [`OdeObjective`]: a solved ODE model against a [`Dataset`], single or multiple shooting.

use std::cell::RefCell;

use neurohybrid_solve::sensitivity::{Sensitivity, gradient};
use neurohybrid_solve::{Problem, SaveAt, StepSizeController, Stepper, solve};
use neurohybrid_system::OdeSystem;

use super::{Batch, Objective};
use crate::data::{Dataset, Trajectory};
use crate::error::{HybridError, Result};
use crate::loss::{Regularizer, TrajectoryLoss};

/// Multiple shooting (Bock & Plitt 1984; for neural ODEs Turan & Jäschke 2022): each training
/// trajectory is cut at observation times into `segments` pieces, each integrated from its own
/// initial state. The initial states of segments 2.. are extra parameters, pulled towards the
/// end states of their predecessors by `continuity_weight · ‖y_s(T_{s+1}) − u_{s+1}‖²`.
/// Short segments keep gradients of long, chaotic or stiff trajectories well conditioned and
/// let the optimizer fit pieces before it must connect them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shooting {
    /// Segments per trajectory (≥ 1; 1 = single shooting).
    pub segments: usize,
    /// Weight of the continuity penalty.
    pub continuity_weight: f64,
}

/// A model `y' = f(t, y; p)` solved from each trajectory's `y0` and compared with its
/// observations by a [`TrajectoryLoss`], plus [`Regularizer`]s.
///
/// Parameter vector: `[p (the system's m) | the loss's own (e.g. log σ) | shooting states]`,
/// the shooting block holding `(segments − 1) · n` initial states per training trajectory, in
/// trajectory order. [`initial_params`](Self::initial_params) builds a full vector from `p`.
///
/// The objective of a batch is the mean over its trajectories of the loss (plus, under
/// shooting, the continuity penalty), plus the regularizers once. Gradients come from the
/// sensitivity method `M` (any of `neurohybrid_solve::sensitivity`; with multiple shooting it
/// must also return `∂L/∂y0`, e.g. `ForwardSensitivity::all()` or `DiscreteAdjoint`).
///
/// Under multiple shooting the loss is evaluated per segment and weighted by the segment's
/// share of the trajectory's present observations: identical to the whole-trajectory loss for
/// mean-type losses ([`crate::Mse`], [`crate::GaussianNll`]), an approximation for ratio-type
/// ones ([`crate::RelativeL2`], [`crate::SoftDice`]) — see ADR 0011.
pub struct OdeObjective<S, St, C, M, L> {
    problem: RefCell<Problem<S>>,
    stepper: St,
    controller: C,
    method: M,
    loss: L,
    data: Dataset,
    validation: Option<Dataset>,
    regularizers: Vec<Regularizer>,
    shooting: Shooting,
    observed: Vec<usize>,
    /// Per trajectory: the indices into `times` where segments 1.. start.
    cuts: Vec<Vec<usize>>,
    /// Buffers of [`Objective::loss_and_grad`] and [`Objective::validation_loss`], reused across
    /// calls (the objective is evaluated thousands of times in a training run).
    work: RefCell<Workspace>,
}

/// Scratch reused by every evaluation; grown to the largest segment on first use.
#[derive(Debug, Default)]
struct Workspace {
    segs: Vec<Segment>,
    /// A segment's save times (moved into `SaveAt::Times` for the solve and back).
    save: Vec<f64>,
    loss: LossScratch,
}

/// What the loss closure writes: predictions at the observed components, their cotangents,
/// the loss's own gradient and the continuity gradient w.r.t. the next shooting state.
#[derive(Debug, Default)]
struct LossScratch {
    pred: Vec<f64>,
    gpred: Vec<f64>,
    /// `∂L/∂(loss params)` of one evaluation (the loss accumulates into it).
    lg: Vec<f64>,
    /// Its share-weighted value for the current segment.
    lp_grad: Vec<f64>,
    cont_grad: Vec<f64>,
}

impl<S, St, C, M, L> std::fmt::Debug for OdeObjective<S, St, C, M, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdeObjective")
            .field("trajectories", &self.data.len())
            .field("shooting", &self.shooting)
            .finish_non_exhaustive()
    }
}

/// One segment of a trajectory: its start time, where its initial state lives, and the
/// observation indices it covers.
#[derive(Debug)]
struct Segment {
    t_start: f64,
    t_end: f64,
    /// `None` for the trajectory's own `y0`; `Some(offset)` into the parameter vector.
    y0_at: Option<usize>,
    /// Observation time indices `lo..hi` inside the segment.
    obs: std::ops::Range<usize>,
    /// Offset of the next segment's initial state (continuity), if it is active.
    next_at: Option<usize>,
}

impl<S, St, C, M, L> OdeObjective<S, St, C, M, L>
where
    S: OdeSystem,
    L: TrajectoryLoss,
{
    /// `problem` is the template: its system and parameters (the starting `p`); its `y0`,
    /// span and impulses are per trajectory (impulses are kept: a dosing schedule in absolute
    /// time applies to every trajectory whose span contains it).
    pub fn new(
        problem: Problem<S>,
        stepper: St,
        controller: C,
        method: M,
        loss: L,
        data: Dataset,
    ) -> Result<Self> {
        let n = problem.system().n_states();
        data.validate(n)?;
        if data.is_empty() {
            return Err(HybridError::InvalidConfig {
                what: "dataset".into(),
                message: "no trajectories".into(),
            });
        }
        let observed = data.observed_indices(n);
        let mut me = OdeObjective {
            problem: RefCell::new(problem),
            stepper,
            controller,
            method,
            loss,
            data,
            validation: None,
            regularizers: Vec::new(),
            shooting: Shooting { segments: 1, continuity_weight: 0.0 },
            observed,
            cuts: Vec::new(),
            work: RefCell::default(),
        };
        me.cuts = me.make_cuts();
        Ok(me)
    }

    /// A validation set, evaluated by [`Objective::validation_loss`] (single shooting, the
    /// full horizon).
    pub fn with_validation(mut self, validation: Dataset) -> Result<Self> {
        let n = self.problem.borrow().system().n_states();
        validation.validate(n)?;
        if validation.observed_indices(n) != self.observed {
            return Err(HybridError::InvalidConfig {
                what: "validation set".into(),
                message: "observes different states than the training set".into(),
            });
        }
        self.validation = Some(validation);
        Ok(self)
    }

    /// Add a regularizer (its range indexes the full parameter vector).
    pub fn with_regularizer(mut self, reg: Regularizer) -> Result<Self> {
        self.regularizers.push(reg);
        let n = self.n_total();
        self.regularizers.last().expect("just pushed").validate(n)?;
        Ok(self)
    }

    /// Multiple shooting with `segments` per trajectory. Each trajectory needs at least
    /// `segments` observation times.
    pub fn with_shooting(mut self, shooting: Shooting) -> Result<Self> {
        if shooting.segments == 0
            || !(shooting.continuity_weight.is_finite() && shooting.continuity_weight >= 0.0)
        {
            return Err(HybridError::InvalidConfig {
                what: "multiple shooting".into(),
                message: "segments must be ≥ 1 and the continuity weight finite, ≥ 0".into(),
            });
        }
        if let Some(i) =
            self.data.trajectories.iter().position(|t| t.times.len() < shooting.segments)
        {
            return Err(HybridError::InvalidConfig {
                what: "multiple shooting".into(),
                message: format!(
                    "trajectory {i} has fewer observation times than {} segments",
                    shooting.segments
                ),
            });
        }
        self.shooting = shooting;
        self.cuts = self.make_cuts();
        let n = self.n_total();
        self.regularizers.iter().try_for_each(|r| r.validate(n))?;
        Ok(self)
    }

    /// Segment starts at evenly spaced observation indices: segment `s` starts at the
    /// observation `⌊s·K/S⌋ − 1` (its first state is that observation's state).
    fn make_cuts(&self) -> Vec<Vec<usize>> {
        let s = self.shooting.segments;
        self.data
            .trajectories
            .iter()
            .map(|t| (1..s).map(|j| (j * t.times.len() / s).max(1) - 1).collect())
            .collect()
    }

    fn n_model(&self) -> usize {
        self.problem.borrow().system().n_params()
    }

    fn n_states(&self) -> usize {
        self.problem.borrow().system().n_states()
    }

    fn shooting_offset(&self) -> usize {
        self.n_model() + self.loss.n_params()
    }

    fn n_total(&self) -> usize {
        self.shooting_offset() + self.data.len() * (self.shooting.segments - 1) * self.n_states()
    }

    /// The full parameter vector for model parameters `p` and loss parameters `loss_params`,
    /// the shooting states taken from a single-shooting solve with `p` (the standard
    /// initialization: start with a continuous trajectory).
    pub fn initial_params(&self, p: &[f64], loss_params: &[f64]) -> Result<Vec<f64>>
    where
        St: Stepper<S>,
        C: StepSizeController,
    {
        check_len("model parameters", self.n_model(), p.len())?;
        check_len("loss parameters", self.loss.n_params(), loss_params.len())?;
        let n = self.n_states();
        let mut out = p.to_vec();
        out.extend_from_slice(loss_params);
        for (j, traj) in self.data.trajectories.iter().enumerate() {
            if self.cuts[j].is_empty() {
                continue;
            }
            let ts: Vec<f64> = self.cuts[j].iter().map(|&k| traj.times[k]).collect();
            let ys = self.solve_plain(p, traj.t0, &traj.y0, &ts)?;
            out.extend_from_slice(&ys[..ts.len() * n]);
        }
        Ok(out)
    }

    fn solve_plain(&self, p: &[f64], t0: f64, y0: &[f64], ts: &[f64]) -> Result<Vec<f64>>
    where
        St: Stepper<S>,
        C: StepSizeController,
    {
        let t1 = *ts.last().expect("at least one time");
        let mut pb = self.problem.borrow_mut();
        pb.params_mut().copy_from_slice(p);
        pb.y0_mut().copy_from_slice(y0);
        pb.set_t_span((t0, t1));
        let sol = solve(&*pb, &self.stepper, &self.controller, &SaveAt::Times(ts.to_vec()))?;
        if !sol.is_success() {
            return Err(HybridError::Solve(neurohybrid_solve::SolveError::ForwardSolveFailed {
                status: sol.status(),
            }));
        }
        Ok(sol.ys().to_vec())
    }

    /// The segments of trajectory `j` that lie inside the horizon (written into `segs`).
    fn segments(&self, j: usize, horizon: f64, segs: &mut Vec<Segment>) {
        let traj = &self.data.trajectories[j];
        let n = self.n_states();
        let limit = traj.t0 + horizon;
        let cuts = &self.cuts[j];
        let base = self.shooting_offset() + j * cuts.len() * n;
        let n_in = traj.times.iter().take_while(|&&t| t <= limit).count();
        segs.clear();
        for s in 0..=cuts.len() {
            let (t_start, first) =
                if s == 0 { (traj.t0, 0) } else { (traj.times[cuts[s - 1]], cuts[s - 1] + 1) };
            if s > 0 && t_start >= limit {
                break;
            }
            let last = if s < cuts.len() { cuts[s] + 1 } else { traj.times.len() };
            let hi = last.min(n_in);
            let next_active = s < cuts.len() && traj.times[cuts[s]] < limit;
            let obs = first.min(hi)..hi;
            let t_end = if obs.is_empty() { t_start } else { traj.times[hi - 1] };
            segs.push(Segment {
                t_start,
                t_end,
                y0_at: (s > 0).then(|| base + (s - 1) * n),
                obs,
                next_at: next_active.then(|| base + s * n),
            });
        }
    }

    /// Present observations of trajectory `traj` at time indices `obs`.
    fn count_present(&self, traj: &Trajectory, obs: std::ops::Range<usize>) -> usize {
        let no = self.observed.len();
        (obs.start * no..obs.end * no).filter(|&i| traj.is_present(i)).count()
    }
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(HybridError::LengthMismatch { what: what.into(), expected, got })
    }
}

impl<S, St, C, M, L> Objective for OdeObjective<S, St, C, M, L>
where
    S: OdeSystem,
    St: Stepper<S>,
    C: StepSizeController,
    M: Sensitivity<S, St, C>,
    L: TrajectoryLoss,
{
    fn n_params(&self) -> usize {
        self.n_total()
    }

    fn n_items(&self) -> usize {
        self.data.len()
    }

    fn loss_and_grad(&self, params: &[f64], batch: &Batch, grad: &mut [f64]) -> Result<f64> {
        check_len("parameters", self.n_total(), params.len())?;
        check_len("gradient", self.n_total(), grad.len())?;
        if batch.items.is_empty() {
            return Err(HybridError::InvalidConfig {
                what: "batch".into(),
                message: "no items".into(),
            });
        }
        grad.fill(0.0);
        let (m, n, no) = (self.n_model(), self.n_states(), self.observed.len());
        let n_lp = self.loss.n_params();
        let loss_params = &params[m..m + n_lp];
        let scale = 1.0 / batch.items.len() as f64;
        let mut total = 0.0;
        let mut guard = self.work.borrow_mut();
        let ws = &mut *guard;
        ws.loss.lg.resize(n_lp, 0.0);
        ws.loss.lp_grad.resize(n_lp, 0.0);
        ws.loss.cont_grad.resize(n, 0.0);
        for &j in batch.items {
            let traj = self.data.trajectories.get(j).ok_or_else(|| HybridError::InvalidConfig {
                what: "batch item".into(),
                message: format!("{j} is not below {} trajectories", self.data.len()),
            })?;
            self.segments(j, batch.horizon, &mut ws.segs);
            let n_present: usize =
                ws.segs.iter().map(|s| self.count_present(traj, s.obs.clone())).sum();
            for seg in &ws.segs {
                let has_next = seg.next_at.is_some();
                if seg.obs.is_empty() && !has_next {
                    continue;
                }
                let share = if n_present == 0 {
                    0.0
                } else {
                    self.count_present(traj, seg.obs.clone()) as f64 / n_present as f64
                };
                let target = &traj.values[seg.obs.start * no..seg.obs.end * no];
                let mask = traj.mask.as_ref().map(|mk| &mk[seg.obs.start * no..seg.obs.end * no]);
                ws.loss.pred.resize(target.len(), 0.0);
                ws.loss.gpred.resize(target.len(), 0.0);
                ws.loss.lp_grad.fill(0.0);
                ws.loss.cont_grad.fill(0.0);
                let next: Option<&[f64]> = seg.next_at.map(|at| &params[at..at + n]);
                let w = self.shooting.continuity_weight;
                let scratch = RefCell::new(&mut ws.loss);
                let observed = &self.observed;
                let loss = |ts: &[f64], ys: &[f64], cot: &mut [f64]| -> f64 {
                    cot.fill(0.0);
                    let mut guard = scratch.borrow_mut();
                    let LossScratch { pred: pr, gpred: gp, lg, lp_grad, cont_grad } = &mut **guard;
                    for k in 0..ts.len() {
                        for (i, &o) in observed.iter().enumerate() {
                            pr[k * no + i] = ys[k * n + o];
                        }
                    }
                    let mut v = 0.0;
                    if !ts.is_empty() {
                        lg.fill(0.0);
                        v = share * self.loss.evaluate(pr, target, mask, loss_params, gp, lg);
                        for (a, b) in lp_grad.iter_mut().zip(lg.iter()) {
                            *a += share * b;
                        }
                        for k in 0..ts.len() {
                            for (i, &o) in observed.iter().enumerate() {
                                cot[k * n + o] += share * gp[k * no + i];
                            }
                        }
                    }
                    if let Some(u) = next {
                        // The segment's end state is the last saved one (the end time is
                        // the last observation time of the segment, or the start when the
                        // segment has no observations inside the horizon — then it is saved
                        // separately below).
                        let last = ys.len() - n;
                        for i in 0..n {
                            let d = ys[last + i] - u[i];
                            v += w * d * d;
                            cot[last + i] += 2.0 * w * d;
                            cont_grad[i] = -2.0 * w * d;
                        }
                    }
                    v
                };
                ws.save.clear();
                ws.save.extend_from_slice(&traj.times[seg.obs.clone()]);
                if ws.save.is_empty() {
                    ws.save.push(seg.t_end);
                }
                let save_at = SaveAt::Times(std::mem::take(&mut ws.save));
                let g = {
                    let mut pb = self.problem.borrow_mut();
                    pb.params_mut().copy_from_slice(&params[..m]);
                    match seg.y0_at {
                        None => pb.y0_mut().copy_from_slice(&traj.y0),
                        Some(at) => pb.y0_mut().copy_from_slice(&params[at..at + n]),
                    }
                    let t_end = seg.t_end.max(seg.t_start);
                    pb.set_t_span((seg.t_start, t_end));
                    drop(pb);
                    let pb = self.problem.borrow();
                    gradient(&*pb, &self.stepper, &self.controller, &save_at, &loss, &self.method)
                };
                if let SaveAt::Times(v) = save_at {
                    ws.save = v;
                }
                let g = g?;
                let sc = scratch.into_inner();
                total += scale * g.value;
                for (a, b) in grad[..m].iter_mut().zip(&g.dl_dp) {
                    if b.is_nan() {
                        return Err(HybridError::InvalidConfig {
                            what: "sensitivity method".into(),
                            message: "did not compute every parameter's derivative".into(),
                        });
                    }
                    *a += scale * b;
                }
                for (a, b) in grad[m..m + n_lp].iter_mut().zip(&sc.lp_grad) {
                    *a += scale * b;
                }
                if let Some(at) = seg.y0_at {
                    if g.dl_dy0.len() != n {
                        return Err(HybridError::InvalidConfig {
                            what: "sensitivity method".into(),
                            message: "multiple shooting needs ∂L/∂y0 (ForwardSensitivity::all(), DiscreteAdjoint)".into(),
                        });
                    }
                    for (a, b) in grad[at..at + n].iter_mut().zip(&g.dl_dy0) {
                        *a += scale * b;
                    }
                }
                if let Some(at) = seg.next_at {
                    for (a, b) in grad[at..at + n].iter_mut().zip(&sc.cont_grad) {
                        *a += scale * b;
                    }
                }
            }
        }
        for reg in &self.regularizers {
            total += reg.evaluate(params, grad);
        }
        Ok(total)
    }

    fn validation_loss(&self, params: &[f64]) -> Result<Option<f64>> {
        let Some(val) = &self.validation else { return Ok(None) };
        check_len("parameters", self.n_total(), params.len())?;
        let (m, n, no) = (self.n_model(), self.n_states(), self.observed.len());
        let lp = &params[m..m + self.loss.n_params()];
        let mut total = 0.0;
        let mut guard = self.work.borrow_mut();
        let LossScratch { pred, gpred: gp, lg, .. } = &mut guard.loss;
        lg.resize(lp.len(), 0.0);
        for traj in &val.trajectories {
            if traj.times.is_empty() {
                continue;
            }
            let ys = self.solve_plain(&params[..m], traj.t0, &traj.y0, &traj.times)?;
            pred.resize(traj.values.len(), 0.0);
            gp.resize(traj.values.len(), 0.0);
            for k in 0..traj.times.len() {
                for (i, &o) in self.observed.iter().enumerate() {
                    pred[k * no + i] = ys[k * n + o];
                }
            }
            total += self.loss.evaluate(pred, &traj.values, traj.mask.as_deref(), lp, gp, lg);
        }
        Ok(Some(total / val.len().max(1) as f64))
    }
}
