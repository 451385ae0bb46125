//! Helpers shared by this crate's sensitivity tests (a `tests/common` module is compiled into
//! each test binary that declares `mod common;`, and is not a test binary itself).

use neurohybrid_solve::sensitivity::Loss;
use neurohybrid_solve::{Problem, SaveAt, StepSizeController, Stepper, solve};
use neurohybrid_system::OdeSystem;

/// `loss` of `solve` for `pr` with its initial state and parameters replaced by `y0` and `p`,
/// and the solve's accepted steps. Panics unless the solve succeeds. Under `FrozenSteps` this
/// is the discrete map the discrete adjoint differentiates (its forward pass is `solve`).
pub fn loss_of_solve<S, St, C>(
    pr: &Problem<S>,
    stepper: &St,
    controller: &C,
    y0: &[f64],
    p: &[f64],
    save: &SaveAt,
    loss: &dyn Loss,
) -> (f64, usize)
where
    S: OdeSystem + Clone,
    St: Stepper<S>,
    C: StepSizeController,
{
    let mut q = pr.clone();
    q.y0_mut().copy_from_slice(y0);
    q.params_mut().copy_from_slice(p);
    let sol = solve(&q, stepper, controller, save).expect("a valid problem");
    assert!(sol.is_success(), "{:?}", sol.status());
    let mut cot = vec![0.0; sol.ys().len()];
    (loss.value_and_cotangents(sol.ts(), sol.ys(), &mut cot), sol.stats().accepted_steps)
}
