//! [`DiscreteAdjoint`]: reverse through the accepted steps with each stepper's [`StepVjp`].

use super::checkpoint::{Checkpointing, SlotStore, binomial_split};
use super::trace::{Event, Tape, traced_solve};
use super::{Gradient, Loss, MemoryReport, Sensitivity, StepVjp, loss_cotangents, save_times};
use crate::controller::StepSizeController;
use crate::error::{Result, SolveError};
use crate::problem::{Problem, ScheduledImpulse};
use crate::save::SaveAt;
use crate::stats::Stats;
use crate::stepper::{StepOutcome, StepState};

use neurohybrid_system::Vjp;

/// Where a reverse-mode gradient's forward solve takes the values at the save times
/// (`docs/decisions/0022-interpolated-saves-in-the-discrete-adjoint.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveSteps {
    /// Save times are stops of the forward solve (like impulses): every loss cotangent enters
    /// at a step boundary. Works with every [`StepVjp`]; the saved values are full-order step
    /// ends. The default.
    #[default]
    Stop,
    /// Save times inside a step are read from the stepper's dense output, as
    /// [`crate::solve`] does with [`SaveAt::Times`] (the forward pass *is* that solve, bit for
    /// bit), and the reverse pass differentiates the interpolant
    /// ([`StepVjp::step_vjp_dense`]). Fewer steps when save times are denser than the steps
    /// the tolerance needs (training on many observation times). Needs
    /// [`StepVjp::dense_vjp_supported`] (explicit Runge–Kutta methods).
    Interpolate,
}

/// The discrete adjoint: the exact gradient of the computed solution.
///
/// The forward solve lands on every save time ([`SaveSteps::Stop`], the default) or reads them
/// from the dense output ([`SaveSteps::Interpolate`]); its accepted steps are then reversed, each with
/// the stepper's [`StepVjp`] (for an explicit Runge–Kutta method the adjoint Runge–Kutta
/// scheme of Hager 2000 / Sandu 2006; for implicit stages one transpose solve with
/// `(I − hγJ)ᵀ` each), the loss cotangents entering as jumps at the save times and impulses
/// pulled back with [`crate::Impulse::vjp`] (interpolated saves enter inside their step through
/// the interpolant's VJP). Step sizes are constants of the derivative, so
/// the result agrees with finite differences of the same discrete map (a solve under the
/// recorded step sequence) to rounding, and with the continuous gradient to the solver's
/// accuracy.
///
/// Memory is set by [`Checkpointing`]; the gradient is identical for every strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscreteAdjoint {
    /// Which forward states are kept.
    pub checkpointing: Checkpointing,
    /// Whether save times are stops or interpolated.
    pub saves: SaveSteps,
}

impl DiscreteAdjoint {
    /// A discrete adjoint with the given checkpointing (save times are stops).
    pub fn new(checkpointing: Checkpointing) -> Self {
        Self { checkpointing, saves: SaveSteps::Stop }
    }

    /// The same adjoint with save times taken as `saves` says.
    pub fn with_saves(mut self, saves: SaveSteps) -> Self {
        self.saves = saves;
        self
    }
}

const NAME: &str = "discrete adjoint";

impl<S, St, C> Sensitivity<S, St, C> for DiscreteAdjoint
where
    S: Vjp,
    St: StepVjp<S>,
    C: StepSizeController,
{
    fn name(&self) -> &str {
        NAME
    }

    fn gradient(
        &self,
        problem: &Problem<S>,
        stepper: &St,
        controller: &C,
        save_at: &SaveAt,
        loss: &dyn Loss,
    ) -> Result<Gradient> {
        if let Checkpointing::Every(0) | Checkpointing::Revolve { slots: 0 | 1 } =
            self.checkpointing
        {
            return Err(SolveError::SensitivityUnsupported {
                method: NAME.to_string(),
                reason: "checkpointing needs Every(k ≥ 1) or Revolve { slots ≥ 2 }",
            });
        }
        if self.saves == SaveSteps::Interpolate && !stepper.dense_vjp_supported() {
            return Err(SolveError::SensitivityUnsupported {
                method: NAME.to_string(),
                reason: "SaveSteps::Interpolate needs a stepper with a dense-output VJP",
            });
        }
        let save_ts = save_times(NAME, problem, save_at)?;
        // Forward pass, keeping every `stride`-th boundary state (thinned for Revolve).
        let (mut stride, cap) = self.checkpointing.forward_plan();
        let mut store = SlotStore::default();
        let mut controls = Vec::new();
        let mut snapshot = Vec::new();
        // With `All`, computed steps (stages included) are cached in the forward pass, so the
        // reverse pass restores them instead of recomputing (`StepVjp::save_step`; for an
        // s-stage RK method s + 2 state vectors per step). `Every` and `Revolve` keep their
        // memory bounds and recompute.
        let n = problem.system().n_states();
        let mut cache =
            StepCache { len: 0, on: self.checkpointing == Checkpointing::All, values: Vec::new() };
        let traced = traced_solve(
            problem,
            stepper,
            controller,
            &save_ts,
            self.saves,
            |b, st| {
                controls.push(stepper.control(st));
                if b % stride == 0 {
                    stepper.save_reversed(st, &mut snapshot);
                    store.insert(b, &snapshot);
                    if cap.is_some_and(|cap| store.len() > cap) {
                        stride *= 2;
                        store.thin(stride);
                    }
                }
            },
            |k, st| {
                if !cache.on {
                    return;
                }
                if k == 0 {
                    cache.len = stepper.step_cache_len(problem.system(), st);
                }
                let end = (k + 1) * cache.len;
                if cache.len == 0 {
                    cache.on = false;
                    return;
                }
                cache.values.resize(end, 0.0);
                stepper.save_step(st, &mut cache.values[k * cache.len..end]);
            },
        )?;
        super::require_success(&traced.solution)?;
        let (value, cot) = loss_cotangents(NAME, loss, &traced.solution)?;

        let sys = problem.system();
        let nz = stepper.reversed_len(sys, &traced.state);
        let mut rev = Reverse {
            sys,
            p: problem.params(),
            stepper,
            tape: &traced.tape,
            impulses: &traced.impulses,
            controls: &controls,
            work: stepper.vjp_work(sys, &traced.state),
            state: traced.state,
            cot: &cot,
            n,
            w: vec![0.0; nz],
            w_p: vec![0.0; sys.n_params()],
            w_y: vec![0.0; n],
            snapshot,
            imp_states: Vec::new(),
            imp_w: vec![0.0; n],
            imp_wp: vec![0.0; sys.n_params()],
            thetas: Vec::new(),
            dense_cot: Vec::new(),
            stats: Stats::default(),
            recomputed: 0,
            store,
            cache,
        };
        let n_steps = traced.tape.steps();
        // Reverse segment by segment, from the last forward checkpoint back to y0.
        let mut starts = rev.store.indices();
        starts.retain(|&b| b < n_steps);
        let mut end = n_steps;
        for &a in starts.iter().rev() {
            let slots = self.checkpointing.segment_slots(rev.store.len());
            rev.reverse_range(a, end, slots)?;
            if a != 0 {
                rev.store.remove(a);
            }
            end = a;
        }
        debug_assert_eq!(end, 0, "y0 is always a forward checkpoint");
        rev.add_save_cotangents(0);
        // Through the history `init` built from y0 (identity for one-step methods).
        rev.load(0);
        let y0 = problem.y0();
        rev.stepper.restart_vjp(
            sys,
            rev.p,
            &mut rev.state,
            rev.tape.ts[0],
            y0,
            &rev.w,
            &mut rev.w_y,
            &mut rev.w_p,
            &mut rev.work,
            &mut rev.stats,
        );
        rev.store.remove(0);
        let memory = MemoryReport {
            n_states: n,
            steps: n_steps,
            peak_stored_states: rev.store.peak() + rev.cache.values.len().div_ceil(n.max(1)),
            store_all_states: n_steps + 1,
            recomputed_steps: rev.recomputed,
        };
        Ok(Gradient {
            value,
            dl_dy0: rev.w_y,
            dl_dp: rev.w_p,
            solution: traced.solution,
            reverse_stats: rev.stats,
            memory,
        })
    }
}

/// Computed steps of the forward pass, `len` values each (see [`StepVjp::save_step`]).
struct StepCache {
    len: usize,
    /// Still caching (forward) / every step cached (reverse).
    on: bool,
    values: Vec<f64>,
}

impl StepCache {
    fn get(&self, n: usize) -> Option<&[f64]> {
        if !self.on || self.len == 0 {
            return None;
        }
        self.values.get(n * self.len..(n + 1) * self.len)
    }
}

/// Working data of the reverse pass.
struct Reverse<'a, S: Vjp, St: StepVjp<S>> {
    sys: &'a S,
    p: &'a [f64],
    stepper: &'a St,
    tape: &'a Tape,
    impulses: &'a [ScheduledImpulse],
    /// [`StepVjp::control`] at every boundary of the forward pass.
    controls: &'a [usize],
    state: St::State,
    work: St::VjpWork,
    /// Loss cotangents, flat per save time.
    cot: &'a [f64],
    n: usize,
    /// `∂L/∂z` (the reversed state: `y`, or a multistep history whose first `n` entries are
    /// `y`) at the current boundary (after its events when going backwards).
    w: Vec<f64>,
    /// `∂L/∂p` accumulated so far.
    w_p: Vec<f64>,
    /// `∂L/∂y` at a boundary whose history was rebuilt by `restart` (impulses, `t0`).
    w_y: Vec<f64>,
    /// Scratch for a checkpoint's contents.
    snapshot: Vec<f64>,
    /// States before each impulse of one boundary (several impulses may share a time).
    imp_states: Vec<Vec<f64>>,
    imp_w: Vec<f64>,
    imp_wp: Vec<f64>,
    /// `θ`s and cotangents of the interpolated saves inside the step being reversed.
    thetas: Vec<f64>,
    dense_cot: Vec<f64>,
    stats: Stats,
    recomputed: usize,
    store: SlotStore,
    cache: StepCache,
}

impl<S: Vjp, St: StepVjp<S>> Reverse<'_, S, St> {
    /// Put the stepper at boundary `b` with state `y` (a checkpoint): the same inputs as the
    /// forward pass had, minus derived data such as an FSAL stage, which `restart` drops and
    /// `step` recomputes from `y`.
    fn load(&mut self, b: usize) {
        let saved = self.store.get(b).expect("reverse pass loads only stored boundaries");
        let t = self.tape.ts[b];
        self.stepper.load_reversed(self.sys, self.p, &mut self.state, t, saved, &mut self.stats);
        self.stepper.impose_control(&mut self.state, self.controls[b]);
    }

    /// Recompute step `n` from the state at boundary `n` (already in `self.state`).
    fn compute(&mut self, n: usize) -> Result<()> {
        let step = self.tape.step(n);
        match self.stepper.step(self.sys, self.p, &mut self.state, step, &mut self.stats) {
            StepOutcome::Computed => Ok(()),
            _ => Err(SolveError::ReplayFailed { step: n, t: step.t }),
        }
    }

    /// Accept the recomputed step `n` and apply the impulses at boundary `n + 1`.
    fn finish(&mut self, n: usize) {
        let t_new = self.tape.ts[n + 1];
        let h = self.tape.hs[n].abs();
        self.stepper.accept(self.sys, self.p, &mut self.state, t_new, h, &mut self.stats);
        let mut fired = false;
        let mut scratch = std::mem::take(&mut self.imp_w);
        for &(_, e) in self.tape.events_at(n + 1) {
            if let Event::Impulse(i) = e {
                self.impulses[i].map.apply(t_new, self.state.y(), self.p, &mut scratch);
                self.state.y_mut().copy_from_slice(&scratch);
                fired = true;
            }
        }
        self.imp_w = scratch;
        if fired {
            self.stepper.restart(self.sys, self.p, &mut self.state, t_new, &mut self.stats);
        }
        self.stepper.impose_control(&mut self.state, self.controls[n + 1]);
        self.recomputed += 1;
    }

    /// Advance from stored boundary `a` to boundary `m`, storing boundaries in `keep`.
    fn advance(&mut self, a: usize, m: usize, keep: impl Fn(usize) -> bool) -> Result<()> {
        self.load(a);
        for n in a..m {
            self.compute(n)?;
            self.finish(n);
            if keep(n + 1) {
                self.stepper.save_reversed(&self.state, &mut self.snapshot);
                self.store.insert(n + 1, &self.snapshot);
            }
        }
        Ok(())
    }

    fn add_save_cotangents(&mut self, b: usize) {
        let n = self.n;
        for &(_, e) in self.tape.events_at(b) {
            if let Event::Save(k) = e {
                let c = &self.cot[k * n..(k + 1) * n];
                self.w[..n].iter_mut().zip(c).for_each(|(w, c)| *w += c);
            }
        }
    }

    /// Reverse step `n`, whose input state is stored: rebuild its stages, pull `w` back through
    /// the events at boundary `n + 1` (save cotangents, then impulses in reverse order) and
    /// through the step.
    /// `loaded`: the state already is at boundary `n` (no stored copy needed).
    fn reverse_step(&mut self, n: usize, loaded: bool) -> Result<()> {
        if let Some(saved) = self.cache.get(n) {
            // The forward pass's computed step, restored instead of recomputed.
            self.stepper.load_step(&mut self.state, saved);
        } else {
            if !loaded {
                self.load(n);
            }
            self.compute(n)?;
        }
        let b = n + 1;
        self.add_save_cotangents(b);
        let t = self.tape.ts[b];
        let imps: Vec<usize> = self
            .tape
            .events_at(b)
            .iter()
            .filter_map(|&(_, e)| if let Event::Impulse(i) = e { Some(i) } else { None })
            .collect();
        if !imps.is_empty() {
            // Inputs of each impulse: y_{n+1}⁻, then each map's output in turn.
            self.imp_states.resize_with(imps.len(), Vec::new);
            self.imp_states[0].clear();
            self.imp_states[0].extend_from_slice(self.state.y_proposed());
            // ... and the last map's output y_{n+1}⁺, from which `restart` built the history.
            self.imp_states.resize_with(imps.len() + 1, Vec::new);
            for j in 1..=imps.len() {
                let (done, rest) = self.imp_states.split_at_mut(j);
                rest[0].resize(self.n, 0.0);
                self.impulses[imps[j - 1]].map.apply(t, &done[j - 1], self.p, &mut rest[0]);
            }
            self.stepper.restart_vjp(
                self.sys,
                self.p,
                &mut self.state,
                t,
                &self.imp_states[imps.len()],
                &self.w,
                &mut self.w_y,
                &mut self.w_p,
                &mut self.work,
                &mut self.stats,
            );
            std::mem::swap(&mut self.w_y, &mut self.imp_w);
            for (j, &i) in imps.iter().enumerate().rev() {
                let map = &self.impulses[i].map;
                map.vjp(
                    t,
                    &self.imp_states[j],
                    self.p,
                    &self.imp_w,
                    &mut self.w_y,
                    &mut self.imp_wp,
                );
                std::mem::swap(&mut self.w_y, &mut self.imp_w);
                self.w_p.iter_mut().zip(&self.imp_wp).for_each(|(a, b)| *a += b);
            }
            // Before the impulses only y_{n+1}⁻ carries a cotangent (the history is rebuilt).
            self.w.fill(0.0);
            self.w[..self.n].copy_from_slice(&self.imp_w);
        }
        let step = self.tape.step(n);
        let inside = self.tape.dense_in(n);
        if inside.is_empty() {
            self.stepper.step_vjp(
                self.sys,
                self.p,
                &mut self.state,
                step,
                &mut self.w,
                &mut self.w_p,
                &mut self.work,
                &mut self.stats,
            );
        } else {
            self.thetas.clear();
            self.dense_cot.clear();
            for d in inside {
                self.thetas.push(d.theta);
                self.dense_cot.extend_from_slice(&self.cot[d.save * self.n..][..self.n]);
            }
            self.stepper.step_vjp_dense(
                self.sys,
                self.p,
                &mut self.state,
                step,
                &self.thetas,
                &self.dense_cot,
                &mut self.w,
                &mut self.w_p,
                &mut self.work,
                &mut self.stats,
            );
        }
        Ok(())
    }

    /// Reverse steps `a..b` given the stored state at boundary `a` and `slots` state vectors
    /// (including `a`'s). With enough slots the segment's states are recomputed once and kept;
    /// otherwise the binomial split places one checkpoint and recurses on the right part with
    /// one slot less (revolve's recursion; Griewank & Walther 2000).
    fn reverse_range(&mut self, a: usize, mut b: usize, slots: usize) -> Result<()> {
        while b - a > slots {
            if slots <= 1 {
                // No free slot: recompute from `a` up to each step's input (quadratic cost,
                // the one-snapshot case of revolve).
                self.advance(a, b - 1, |_| false)?;
                self.reverse_step(b - 1, true)?;
                b -= 1;
                continue;
            }
            let m = a + binomial_split(b - a, slots);
            self.advance(a, m, |i| i == m)?;
            self.reverse_range(m, b, slots - 1)?;
            self.store.remove(m);
            b = m;
        }
        // Enough slots: store every state of the segment, then reverse it.
        if b - a > 1 {
            self.advance(a, b - 1, |_| true)?;
        }
        for n in (a..b).rev() {
            self.reverse_step(n, false)?;
            if n != a {
                self.store.remove(n);
            }
        }
        Ok(())
    }
}
