//! After `init`, BDF and Rodas4 steps (step, dense, accept, reject, restart) allocate nothing on
//! the dense-LU path. Own test binary: it installs a counting global allocator.

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, Stepper};
use neurohybrid_solve_implicit::{Bdf, Rodas4, Tolerances};
use neurohybrid_testkit::{Robertson, robertson};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A minimal solve loop: accept every computed step with the stepper's own next h, reject
/// (and retry) every 7th, write the dense output, restart once. Returns allocations counted
/// after the first few steps.
fn allocations_after_init<St: Stepper<Robertson>>(stepper: &St, h0: f64) -> (usize, usize) {
    let rp = robertson();
    let (sys, p) = (&rp.system, &rp.p[..]);
    let mut stats = Stats::default();
    let mut state = stepper.init(sys, p, 0.0, &rp.y0, &mut stats);
    let mut coeffs = vec![0.0; (stepper.dense_degree() + 1) * 3];
    let (mut t, mut h) = (0.0, h0);
    let mut run =
        |steps: usize, state: &mut St::State, stats: &mut Stats, t: &mut f64, h: &mut f64| {
            for i in 0..steps {
                let step = Step { t: *t, h: *h };
                match stepper.step(sys, p, state, step, stats) {
                    StepOutcome::Computed if i % 7 == 3 => *h = stepper.reject(state, 0.5 * *h),
                    StepOutcome::Computed => {
                        stepper.dense(sys, p, state, step, &mut coeffs, stats);
                        *t += *h;
                        *h = stepper.accept(sys, p, state, *t, *h, stats).min(1.0);
                    }
                    StepOutcome::Failed(_) => *h = stepper.reject(state, 0.25 * *h),
                    _ => unreachable!("no other outcomes exist today"),
                }
                if i == steps / 2 {
                    state.y_mut()[0] *= 1.0 - 1e-9;
                    stepper.restart(sys, p, state, *t, stats);
                }
            }
        };
    run(20, &mut state, &mut stats, &mut t, &mut h);
    let before = allocations();
    run(300, &mut state, &mut stats, &mut t, &mut h);
    let after = allocations();
    assert!(state.y().iter().all(|v| v.is_finite()) && t > 0.0);
    (after - before, stats.accepted_steps + stats.jacobian_evals)
}

#[test]
fn bdf_and_rodas4_steps_do_not_allocate() {
    let (n, work) = allocations_after_init(&Bdf::new(Tolerances::new(1e-8, 1e-10)), 1e-6);
    assert_eq!(n, 0, "BDF allocated {n} times");
    assert!(work > 0);
    let (n, _) = allocations_after_init(&Rodas4::new(), 1e-6);
    assert_eq!(n, 0, "Rodas4 allocated {n} times");
}
