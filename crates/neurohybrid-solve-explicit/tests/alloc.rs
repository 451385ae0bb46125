//! A step allocates nothing after `init`: counted with a global allocator (its own test binary,
//! so no other test's allocations interfere; the single test keeps the count deterministic).

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_solve::{
    ConstantStep, PiController, Problem, SaveAt, Stats, Step, StepState, Stepper, solve,
};
use neurohybrid_solve_explicit::{Bosh3, Dopri5, Euler, Heun, Rk4, Tsit5};
use neurohybrid_system::OdeSystem;
use neurohybrid_testkit::{LotkaVolterra, lotka_volterra};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Drive the stepper by hand through the full contract (step, dense, accept, restart).
fn steps_allocate_nothing<St: Stepper<LotkaVolterra>>(st: &St) {
    let rp = lotka_volterra();
    let mut stats = Stats::default();
    let mut state = st.init(&rp.system, &rp.p, 0.0, &rp.y0, &mut stats);
    let mut coeffs = vec![0.0; (st.dense_degree() + 1) * 2];
    let before = allocations();
    let (mut t, h) = (0.0, 0.01);
    for k in 0..200 {
        let step = Step { t, h };
        st.step(&rp.system, &rp.p, &mut state, step, &mut stats);
        st.dense(&rp.system, &rp.p, &mut state, step, &mut coeffs, &mut stats);
        st.accept(&rp.system, &rp.p, &mut state, t + h, h, &mut stats);
        t += h;
        if k % 50 == 0 {
            state.y_mut()[0] *= 0.9;
            st.restart(&rp.system, &rp.p, &mut state, t, &mut stats);
        }
    }
    assert_eq!(allocations() - before, 0, "{} allocated during steps", st.name());
    assert!(state.y().iter().all(|v| v.is_finite()));
}

/// A whole solve allocates a fixed amount (setup and output), independent of the step count.
fn solve_allocations(t1: f64) -> (usize, usize) {
    let rp = lotka_volterra();
    let pr = Problem::new(rp.system.clone(), rp.y0.clone(), rp.p.clone(), (0.0, t1));
    let c = PiController::new(1e-8, 1e-8);
    let before = allocations();
    let sol = solve(&pr, &Tsit5, &c, &SaveAt::Final).unwrap();
    (allocations() - before, sol.stats().accepted_steps)
}

#[test]
fn no_allocation_after_init() {
    steps_allocate_nothing(&Euler);
    steps_allocate_nothing(&Heun);
    steps_allocate_nothing(&Rk4);
    steps_allocate_nothing(&Bosh3);
    steps_allocate_nothing(&Dopri5);
    steps_allocate_nothing(&Tsit5);

    let (short, short_steps) = solve_allocations(1.0);
    let (long, long_steps) = solve_allocations(10.0);
    assert!(long_steps > 5 * short_steps);
    assert!(short > 0, "the counter sees the setup allocations");
    assert_eq!(short, long, "solve allocations must not grow with the number of steps");

    // Constant steps with the system evaluated through a trait object still allocate nothing.
    let rp = lotka_volterra();
    let dynsys: &dyn OdeSystem = &rp.system;
    let pr = Problem::new(dynsys, rp.y0.clone(), rp.p.clone(), (0.0, 10.0));
    let before = allocations();
    let a = solve(&pr, &Rk4, &ConstantStep::new(0.1), &SaveAt::Final).unwrap();
    let mid = allocations() - before;
    let before = allocations();
    let b = solve(&pr, &Rk4, &ConstantStep::new(0.001), &SaveAt::Final).unwrap();
    assert_eq!(allocations() - before, mid);
    assert_eq!(b.stats().accepted_steps, 100 * a.stats().accepted_steps);
}
