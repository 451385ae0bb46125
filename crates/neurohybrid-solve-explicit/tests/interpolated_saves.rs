//! The discrete adjoint with interpolated save times (`SaveSteps::Interpolate`): the forward
//! pass is `solve` with `SaveAt::Times` bit for bit, and the gradient differentiates the dense
//! output — checked against central finite differences of the same discrete map (`solve` under
//! the frozen step sequence) to 1e-7, against forward sensitivities, and across checkpointing
//! strategies, for the method's own interpolant (Tsit5, Dopri5), FSAL cubic Hermite (Bosh3) and
//! non-FSAL cubic Hermite (Heun, RK4, fixed steps).

mod common;

use common::loss_of_solve;
use neurohybrid_solve::sensitivity::{
    Checkpointing, DiscreteAdjoint, ForwardSensitivity, FrozenSteps, Loss, SaveSteps,
    SquaredMisfit, StepVjp, gradient, step_sequence, step_sequence_with,
};
use neurohybrid_solve::{
    ConstantStep, PiController, Problem, SaveAt, Scale, StepSizeController, Stepper, solve,
};
use neurohybrid_solve_explicit::{Bosh3, Dopri5, Heun, Rk4, Tsit5};
use neurohybrid_testkit::{LotkaVolterra, central_fd, rel_err};

fn interpolating() -> DiscreteAdjoint {
    DiscreteAdjoint::default().with_saves(SaveSteps::Interpolate)
}

/// Save times denser than the steps (several per step), one at t0, a repeated one, one at the
/// impulse time and t1.
fn save_times() -> Vec<f64> {
    let mut ts: Vec<f64> = (0..=40).map(|k| k as f64 * 0.1).collect();
    ts.insert(17, ts[17]);
    ts
}

fn problem() -> Problem<LotkaVolterra> {
    Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.5, 1.0, 3.0, 1.0], (0.0, 4.0))
        .with_impulse(2.0, Scale::all(0.8))
}

fn loss(n_saves: usize) -> SquaredMisfit {
    let targets: Vec<f64> = (0..2 * n_saves).map(|i| 0.5 + 0.3 * (i as f64 * 0.37).sin()).collect();
    SquaredMisfit::new(targets)
}

/// Loss of `solve` (interpolated saves) with the step boundaries `ts` frozen.
fn frozen_loss<St: Stepper<LotkaVolterra>>(
    stepper: &St,
    y0: &[f64],
    p: &[f64],
    ts: &[f64],
    save: &SaveAt,
    loss: &dyn Loss,
) -> f64 {
    let frozen = FrozenSteps::new(ts);
    let (value, steps) = loss_of_solve(&problem(), stepper, &frozen, y0, p, save, loss);
    assert_eq!(steps, ts.len() - 1, "the frozen replay takes the same steps");
    value
}

/// Adjoint (interpolated saves) vs FD of the frozen discrete map, ≤ 1e-7.
fn check_against_frozen_fd<St, C>(stepper: &St, ctrl: &C) -> usize
where
    St: StepVjp<LotkaVolterra>,
    C: StepSizeController,
{
    let pr = problem();
    let saves = save_times();
    let save = SaveAt::Times(saves.clone());
    let loss = loss(saves.len());
    let adj = gradient(&pr, stepper, ctrl, &save, &loss, &interpolating()).unwrap();
    // The forward pass is `solve` itself.
    let sol = solve(&pr, stepper, ctrl, &save).unwrap();
    assert_eq!(adj.solution.ys(), sol.ys(), "{}: bit for bit", stepper.name());
    assert_eq!(adj.solution.stats(), sol.stats(), "{}", stepper.name());
    let ts = step_sequence_with(&pr, stepper, ctrl, &save, SaveSteps::Interpolate).unwrap();
    assert_eq!(ts.len() - 1, sol.stats().accepted_steps);
    let stops = step_sequence(&pr, stepper, ctrl, &save).unwrap();
    assert!(ts.len() < stops.len(), "{}: {} vs {} steps", stepper.name(), ts.len(), stops.len());
    let (y0, p) = (pr.y0().to_vec(), pr.params().to_vec());
    let fd_p = central_fd(&|q| frozen_loss(stepper, &y0, q, &ts, &save, &loss), &p, 1e-5);
    let fd_y0 = central_fd(&|y| frozen_loss(stepper, y, &p, &ts, &save, &loss), &y0, 1e-5);
    let e = rel_err(&adj.dl_dp, &fd_p, 1e-8);
    assert!(e < 1e-7, "{}: dL/dp vs frozen FD {e:e}\n{:?}\n{fd_p:?}", stepper.name(), adj.dl_dp);
    let e = rel_err(&adj.dl_dy0, &fd_y0, 1e-8);
    assert!(e < 1e-7, "{}: dL/dy0 vs frozen FD {e:e}", stepper.name());
    ts.len() - 1
}

#[test]
fn own_interpolants_match_finite_differences_of_the_same_discrete_map() {
    let ctrl = PiController::new(1e-7, 1e-9);
    check_against_frozen_fd(&Tsit5, &ctrl);
    check_against_frozen_fd(&Dopri5, &ctrl);
}

#[test]
fn hermite_interpolants_match_finite_differences_of_the_same_discrete_map() {
    check_against_frozen_fd(&Bosh3, &PiController::new(1e-6, 1e-8));
    // Non-FSAL Hermite: f(t + h, y_{n+1}) is an extra evaluation with its own VJP. 13 steps
    // of 4/13 put 3–4 saves in each step.
    let steps = ConstantStep::with_steps((0.0, 4.0), 13);
    check_against_frozen_fd(&Heun, &steps);
    check_against_frozen_fd(&Rk4, &steps);
}

#[test]
fn interpolated_saves_agree_with_forward_sensitivities_in_fewer_steps() {
    let pr = problem();
    let saves = save_times();
    let save = SaveAt::Times(saves.clone());
    let loss = loss(saves.len());
    let ctrl = PiController::new(1e-10, 1e-12);
    let fwd = gradient(&pr, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let interp = gradient(&pr, &Tsit5, &ctrl, &save, &loss, &interpolating()).unwrap();
    let stop = gradient(&pr, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    for g in [&interp, &stop] {
        assert!(rel_err(&g.dl_dp, &fwd.dl_dp, 1e-8) < 1e-6, "{:?} vs {:?}", g.dl_dp, fwd.dl_dp);
        assert!(rel_err(&g.dl_dy0, &fwd.dl_dy0, 1e-8) < 1e-6);
        assert!((g.value - fwd.value).abs() <= 1e-7 * fwd.value.abs());
    }
    let stop_steps = step_sequence(&pr, &Tsit5, &ctrl, &save).unwrap().len() - 1;
    assert_eq!(stop.memory.steps, stop_steps);
    assert!(
        interp.memory.steps < stop_steps,
        "interpolated {} vs stops {stop_steps}",
        interp.memory.steps
    );
}

#[test]
fn checkpointing_gives_the_identical_interpolated_gradient() {
    let pr = problem();
    let saves = save_times();
    let save = SaveAt::Times(saves.clone());
    let loss = loss(saves.len());
    let ctrl = PiController::new(1e-9, 1e-11);
    let run = |c| {
        let m = DiscreteAdjoint::new(c).with_saves(SaveSteps::Interpolate);
        gradient(&pr, &Dopri5, &ctrl, &save, &loss, &m).unwrap()
    };
    let all = run(Checkpointing::All);
    for c in [Checkpointing::Every(3), Checkpointing::Revolve { slots: 3 }] {
        let g = run(c);
        assert_eq!(g.dl_dp, all.dl_dp, "{c:?}");
        assert_eq!(g.dl_dy0, all.dl_dy0, "{c:?}");
    }
}
