//! The solve loop's side of the `Stepper` contract, with a toy stepper that can fail: step
//! failures shrink h and end as `NewtonDivergence`, steppers may override the next step size.

use neurohybrid_solve::{
    ConstantStep, PiController, Problem, SaveAt, Stats, Status, Step, StepFailure, StepOutcome,
    StepState, Stepper, solve,
};
use neurohybrid_system::OdeSystem;

struct Decay;
impl OdeSystem for Decay {
    fn n_states(&self) -> usize {
        1
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy[0] = -y[0];
    }
}

/// Heun–Euler 2(1) that "fails its Newton iteration" whenever |h| > `fail_above`, and that
/// caps every step it proposes at `cap` (like a BDF choosing its own h).
struct Toy {
    fail_above: f64,
    cap: f64,
}
struct ToyState {
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    rejects_seen: usize,
}
impl StepState for ToyState {
    fn y(&self) -> &[f64] {
        &self.y
    }
    fn y_mut(&mut self) -> &mut [f64] {
        &mut self.y
    }
    fn y_proposed(&self) -> &[f64] {
        &self.y_new
    }
    fn error_estimate(&self) -> &[f64] {
        &self.err
    }
}
impl<S: OdeSystem> Stepper<S> for Toy {
    type State = ToyState;
    fn name(&self) -> &str {
        "Toy"
    }
    fn order(&self) -> usize {
        2
    }
    fn error_order(&self) -> Option<usize> {
        Some(1)
    }
    fn init(&self, _s: &S, _p: &[f64], _t0: f64, y0: &[f64], _st: &mut Stats) -> ToyState {
        ToyState { y: y0.to_vec(), y_new: vec![0.0], err: vec![0.0], rejects_seen: 0 }
    }
    fn step(
        &self,
        s: &S,
        p: &[f64],
        st: &mut ToyState,
        step: Step,
        stats: &mut Stats,
    ) -> StepOutcome {
        if step.h.abs() > self.fail_above {
            return StepOutcome::Failed(StepFailure::NewtonDivergence);
        }
        let (mut k1, mut k2) = ([0.0], [0.0]);
        s.rhs(step.t, &st.y, p, &mut k1);
        let euler = st.y[0] + step.h * k1[0];
        s.rhs(step.t + step.h, &[euler], p, &mut k2);
        stats.rhs_evals += 2;
        st.y_new[0] = st.y[0] + 0.5 * step.h * (k1[0] + k2[0]);
        st.err[0] = st.y_new[0] - euler;
        StepOutcome::Computed
    }
    fn dense(
        &self,
        _s: &S,
        _p: &[f64],
        st: &mut ToyState,
        _step: Step,
        c: &mut [f64],
        _stats: &mut Stats,
    ) {
        c.fill(0.0);
        c[0] = st.y[0];
        c[1] = st.y_new[0] - st.y[0];
    }
    fn accept(
        &self,
        _s: &S,
        _p: &[f64],
        st: &mut ToyState,
        _t: f64,
        h_next: f64,
        _stats: &mut Stats,
    ) -> f64 {
        std::mem::swap(&mut st.y, &mut st.y_new);
        h_next.min(self.cap)
    }
    fn reject(&self, st: &mut ToyState, h_next: f64) -> f64 {
        st.rejects_seen += 1;
        h_next.min(self.cap)
    }
    fn restart(&self, _s: &S, _p: &[f64], _st: &mut ToyState, _t: f64, _stats: &mut Stats) {}
}

#[test]
fn step_failures_shrink_h_and_the_run_recovers() {
    let pr = Problem::new(Decay, [1.0], [], (0.0, 1.0));
    let sol =
        solve(&pr, &Toy { fail_above: 0.05, cap: 1.0 }, &ConstantStep::new(0.1), &SaveAt::Final)
            .unwrap();
    assert!(sol.is_success());
    // Every 0.1 step fails once, is retried at 0.025 and then the constant step is restored.
    assert!(sol.stats().failed_steps > 0);
    assert!((sol.last().unwrap()[0] - (-1.0f64).exp()).abs() < 1e-3);
}

#[test]
fn persistent_failures_end_as_newton_divergence() {
    let pr = Problem::new(Decay, [1.0], [], (0.0, 1.0));
    let sol = solve(
        &pr,
        &Toy { fail_above: 0.0, cap: 1.0 },
        &PiController::new(1e-6, 1e-6),
        &SaveAt::Steps,
    )
    .unwrap();
    assert_eq!(sol.status(), Status::NewtonDivergence { t: 0.0 });
    assert_eq!(sol.stats().failed_steps, 10);
    assert_eq!(sol.len(), 1, "the trajectory so far: just the initial state");
}

#[test]
fn the_stepper_may_override_the_controllers_step_size() {
    let pr = Problem::new(Decay, [1.0], [], (0.0, 1.0));
    let sol = solve(
        &pr,
        &Toy { fail_above: 1.0, cap: 0.01 },
        &PiController::new(1e-3, 1e-3),
        &SaveAt::Steps,
    )
    .unwrap();
    assert!(sol.is_success());
    assert!(sol.ts().windows(2).skip(1).all(|w| w[1] - w[0] <= 0.01 + 1e-15));
    assert!(sol.stats().accepted_steps >= 90); // the first step comes from the heuristic
}
