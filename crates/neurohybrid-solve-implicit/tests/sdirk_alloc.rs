//! SDIRK and IMEX steps allocate nothing (dense LU path), counted with a global allocator in
//! its own test binary so no other test's allocations interfere.
//!
//! Counting starts after one warm-up step: linalg's `NewtonSolver` sizes its residual buffer
//! on its first solve (`Vec::resize` from empty). Everything after — steps with changing `h`
//! (refactorizations), dense output, accepts, impulses with Jacobian refreshes — is counted.

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_solve::{Stats, Step, StepState, Stepper};
use neurohybrid_solve_implicit::{Esdirk4, ImplicitEuler, KenCarp4, Kvaerno5, TrBdf2};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split, dense_pattern};
use neurohybrid_testkit::{Robertson, robertson};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Drive a stepper by hand through the whole contract with a varying step size.
fn steps_allocate_nothing<S: OdeSystem, St: Stepper<S>>(st: &St, sys: &S, p: &[f64], y0: &[f64]) {
    let n = sys.n_states();
    let mut stats = Stats::default();
    let mut state = st.init(sys, p, 0.0, y0, &mut stats);
    let mut coeffs = vec![0.0; (st.dense_degree() + 1) * n];
    let mut t = 0.0;
    let mut h = 1e-4;
    let mut cycle = |state: &mut St::State, t: &mut f64, h: f64, stats: &mut Stats| {
        let step = Step { t: *t, h };
        st.step(sys, p, state, step, stats);
        st.dense(sys, p, state, step, &mut coeffs, stats);
        st.accept(sys, p, state, *t + h, h, stats);
        *t += h;
    };
    cycle(&mut state, &mut t, h, &mut stats); // warm-up (module docs)
    let before = allocations();
    for k in 0..100 {
        // Step sizes that force refactorizations and exercise the reuse policy.
        h *= if k % 3 == 0 { 1.5 } else { 1.05 };
        cycle(&mut state, &mut t, h, &mut stats);
        if k % 40 == 0 {
            state.y_mut()[0] *= 0.99;
            st.restart(sys, p, &mut state, t, &mut stats);
        }
    }
    assert_eq!(allocations() - before, 0, "{} allocated during steps", st.name());
    assert!(state.y().iter().all(|v| v.is_finite()));
    assert!(stats.factorizations > 2, "{}: {stats:?}", st.name());
}

/// Stiff part `−k y` per component (dense pattern, so `W` goes through dense LU).
#[derive(Debug, Clone)]
struct Decay(SparsityPattern);
impl OdeSystem for Decay {
    fn n_states(&self) -> usize {
        self.0.major_dim()
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        for (i, (d, y)) in dy.iter_mut().zip(y).enumerate() {
            *d = -(10.0 + i as f64) * y;
        }
    }
}
impl Jacobian for Decay {
    fn sparsity(&self) -> &SparsityPattern {
        &self.0
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        for (i, j, v) in out.triplet_iter_mut() {
            *v = if i == j { -(10.0 + i as f64) } else { 0.0 };
        }
    }
}

/// Non-stiff part `sin(y)`.
#[derive(Debug, Clone)]
struct Sine(usize);
impl OdeSystem for Sine {
    fn n_states(&self) -> usize {
        self.0
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        dy.iter_mut().zip(y).for_each(|(d, y)| *d = y.sin());
    }
}

#[test]
fn no_allocation_after_init() {
    let rp = robertson();
    let sys: &Robertson = &rp.system;
    steps_allocate_nothing(&ImplicitEuler::new(), sys, &rp.p, &rp.y0);
    steps_allocate_nothing(&TrBdf2::new(), sys, &rp.p, &rp.y0);
    steps_allocate_nothing(&Kvaerno5::new(), sys, &rp.p, &rp.y0);
    steps_allocate_nothing(&Esdirk4::new(), sys, &rp.p, &rp.y0);

    let split = Split::new(Decay(dense_pattern(4)), Sine(4)).unwrap();
    steps_allocate_nothing(&KenCarp4::new(), &split, &[], &[1.0, 0.5, -0.5, 2.0]);
}
