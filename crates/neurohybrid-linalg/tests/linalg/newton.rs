//! Simplified Newton: convergence with reported rate, divergence, slow convergence, failures.

use faer::Mat;
use neurohybrid_linalg::{
    DenseLu, KrylovConfig, KrylovMethod, KrylovSolver, LinalgError, LinearSolver, Newton,
    NewtonSolver, NewtonStatus, PreconditionerKind, SparseLu, SparseMatrix,
};

use crate::alloc_count::allocations_in;
use crate::common::laplacian_2d;

fn dense_diag(n: usize, d: f64) -> DenseLu {
    let mut lu = DenseLu::new(n);
    let mut w = Mat::zeros(n, n);
    for i in 0..n {
        w[(i, i)] = d;
    }
    lu.factorize(&w).unwrap();
    lu
}

fn sqrt2_residual(z: &[f64], out: &mut [f64]) {
    for (o, x) in out.iter_mut().zip(z) {
        *o = x * x - 2.0;
    }
}

#[test]
fn componentwise_sqrt2_converges_with_reported_rate() {
    // W = F'(1) = 2I frozen; the fixed-point map x − (x² − 2)/2 contracts at |1 − √2| ≈ 0.414.
    let n = 3;
    let mut w = dense_diag(n, 2.0);
    let mut newton =
        NewtonSolver::new(Newton::default().max_iters(60).kappa(0.1).tol(1e-12)).unwrap();
    let mut z = vec![1.0; n];
    let out = newton.solve(&mut sqrt2_residual, &mut w, &mut z, &[1.0; 3]).unwrap();
    let NewtonStatus::Converged { iters } = out.status else { panic!("{out:?}") };
    assert!(iters > 5, "simplified Newton is linear here: {iters}");
    for x in &z {
        assert!((x - 2f64.sqrt()).abs() < 1e-11, "{x}");
    }
    let theta = out.theta.unwrap();
    assert!((theta - (2f64.sqrt() - 1.0)).abs() < 0.02, "θ = {theta}");
    assert_eq!(w.stats().numeric_factorizations, 1);
    assert_eq!(w.stats().solves, iters);
}

#[test]
fn coupled_2x2_system_with_jacobian_at_initial_guess() {
    // x² + y² = 4, x·y = 1; root near (1.932, 0.518).
    let mut f = |z: &[f64], out: &mut [f64]| {
        out[0] = z[0] * z[0] + z[1] * z[1] - 4.0;
        out[1] = z[0] * z[1] - 1.0;
    };
    let z0 = [2.0, 0.5];
    let jac = faer::mat![[2.0 * z0[0], 2.0 * z0[1]], [z0[1], z0[0]]];
    let mut lu = DenseLu::new(2);
    lu.factorize(&jac).unwrap();
    // A tight absolute tolerance: the frozen Jacobian needs more than RADAU5's 7 iterations.
    let mut newton = NewtonSolver::new(Newton::default().max_iters(12).tol(1e-10)).unwrap();
    let mut z = z0.to_vec();
    let out = newton.solve(&mut f, &mut lu, &mut z, &[1.0, 1.0]).unwrap();
    assert!(out.status.is_success(), "{out:?}");
    let theta = out.theta.unwrap();
    assert!(theta < 0.1, "good Jacobian, fast contraction: θ = {theta}");
    assert!(out.iters <= 8, "{out:?}");
    let mut r = [0.0; 2];
    f(&z, &mut r);
    assert!(r[0].abs() < 1e-10 && r[1].abs() < 1e-10, "{r:?}");
}

#[test]
fn jacobian_reuse_across_calls_like_an_ode_solver() {
    // Stage equations z − h·f(z) = rhs for f(z) = −z³ + Δz on a grid, with W = I − hΔ factorized
    // once (sparse) and reused for several "steps" with changing right-hand sides.
    let lap = laplacian_2d(6, 0.0); // this is −Δ
    let n = 36;
    let h = 0.05;
    let mut w = SparseMatrix::zeros(lap.pattern().clone());
    w.add_scaled(h, &lap).unwrap();
    w.add_to_diagonal(1.0).unwrap();
    let mut lu = SparseLu::new();
    lu.factorize(&w).unwrap();
    let mut newton = NewtonSolver::new(Newton::default()).unwrap();
    let scale = vec![1e-6; n]; // atol + rtol·|y| with rtol ≈ 1e-6
    let mut y: Vec<f64> = (0..n).map(|i| 0.5 + 0.01 * i as f64).collect();
    let mut lz = vec![0.0; n];
    let mut total_iters = 0;
    for _step in 0..5 {
        let y_old = y.clone();
        let mut f = |z: &[f64], out: &mut [f64]| {
            lap.matvec(z, &mut lz).unwrap();
            for i in 0..n {
                out[i] = z[i] - y_old[i] - h * (-z[i].powi(3) - lz[i]);
            }
        };
        let out = newton.solve(&mut f, &mut lu, &mut y, &scale).unwrap();
        assert!(out.status.is_success(), "{out:?}");
        assert!(out.theta.is_none_or(|t| t < 0.2));
        total_iters += out.iters;
    }
    assert_eq!(lu.stats().numeric_factorizations, 1);
    assert_eq!(lu.stats().symbolic_factorizations, 1);
    assert_eq!(lu.stats().solves, total_iters);
    // No allocation per iteration once the workspace exists.
    let y_old = y.clone();
    let mut f = |z: &[f64], out: &mut [f64]| {
        lap.matvec(z, &mut lz).unwrap();
        for i in 0..n {
            out[i] = z[i] - y_old[i] - h * (-z[i].powi(3) - lz[i]);
        }
    };
    let allocs = allocations_in(|| {
        newton.solve(&mut f, &mut lu, &mut y, &scale).unwrap();
    });
    assert_eq!(allocs, 0);
}

#[test]
fn wrong_sign_jacobian_is_reported_as_divergence() {
    let mut w = dense_diag(2, -2.0);
    let mut newton = NewtonSolver::new(Newton::default().tol(1e-10)).unwrap();
    let mut z = vec![1.0, 1.0];
    let out = newton.solve(&mut sqrt2_residual, &mut w, &mut z, &[1.0, 1.0]).unwrap();
    match out.status {
        NewtonStatus::Diverged { theta } => assert!(theta >= 1.0, "{theta}"),
        other => panic!("expected divergence, got {other:?}"),
    }
    assert_eq!(out.iters, 2, "divergence is detected at the first rate estimate");
    assert!(!out.status.is_success());
}

#[test]
fn slow_contraction_is_predicted_before_max_iterations() {
    // W = 20I: contraction rate |1 − 2√2/20| ≈ 0.86 cannot reach 1e-10 in 7 iterations.
    let mut w = dense_diag(1, 20.0);
    let mut newton = NewtonSolver::new(Newton::default().tol(1e-10)).unwrap();
    let mut z = vec![1.0];
    let out = newton.solve(&mut sqrt2_residual, &mut w, &mut z, &[1.0]).unwrap();
    match out.status {
        NewtonStatus::SlowConvergence { theta } => assert!(theta > 0.8 && theta < 1.0, "{theta}"),
        other => panic!("expected slow convergence, got {other:?}"),
    }
    assert_eq!(out.iters, 2);
    // With no prediction possible (one iteration allowed) the status is MaxIterations.
    let mut one = NewtonSolver::new(Newton::default().max_iters(1).tol(1e-10)).unwrap();
    let out = one.solve(&mut sqrt2_residual, &mut w, &mut [1.0], &[1.0]).unwrap();
    assert_eq!(out.status, NewtonStatus::MaxIterations);
}

#[test]
fn failures_are_statuses_and_misuse_is_an_error() {
    let mut w = dense_diag(2, 2.0);
    let mut newton = NewtonSolver::new(Newton::default()).unwrap();
    let mut nan = |_: &[f64], out: &mut [f64]| out.fill(f64::NAN);
    let out = newton.solve(&mut nan, &mut w, &mut [1.0, 1.0], &[1.0, 1.0]).unwrap();
    assert_eq!(out.status, NewtonStatus::NonFinite);

    // A Krylov iteration matrix that cannot converge: the linear failure is carried along.
    let a = laplacian_2d(10, 0.0);
    let mut krylov = KrylovSolver::new(
        KrylovMethod::Cg,
        PreconditionerKind::None,
        KrylovConfig::default().max_iters(1),
    );
    krylov.factorize(&a).unwrap();
    let mut lin = |z: &[f64], out: &mut [f64]| {
        a.matvec(z, out).unwrap();
        out.iter_mut().for_each(|v| *v -= 1.0);
    };
    let out = newton.solve(&mut lin, &mut krylov, &mut vec![0.0; 100], &[1.0; 100]).unwrap();
    assert!(
        matches!(out.status, NewtonStatus::LinearSolveFailed(LinalgError::NotConverged { .. })),
        "{out:?}"
    );

    // Misuse.
    let mut unfactorized = DenseLu::new(2);
    assert_eq!(
        newton.solve(&mut sqrt2_residual, &mut unfactorized, &mut [1.0, 1.0], &[1.0, 1.0]),
        Err(LinalgError::NotFactorized)
    );
    assert!(matches!(
        newton.solve(&mut sqrt2_residual, &mut w, &mut [1.0; 3], &[1.0; 3]),
        Err(LinalgError::DimensionMismatch { .. })
    ));
    assert!(newton.solve(&mut sqrt2_residual, &mut w, &mut [1.0; 2], &[1.0, 0.0]).is_err());
    assert!(matches!(
        NewtonSolver::new(Newton::default().kappa(0.0)),
        Err(LinalgError::InvalidConfig { .. })
    ));
}

#[test]
fn krylov_newton_converges_on_linear_problem_in_one_iteration() {
    // F(z) = A z − 1 with W = A through GMRES + ILU(0): Newton is exact after one step.
    let a = laplacian_2d(10, 0.0);
    let mut krylov = KrylovSolver::new(
        KrylovMethod::Gmres,
        PreconditionerKind::Ilu0,
        KrylovConfig::default().rtol(1e-13),
    );
    krylov.factorize(&a).unwrap();
    let mut lin = |z: &[f64], out: &mut [f64]| {
        a.matvec(z, out).unwrap();
        out.iter_mut().for_each(|v| *v -= 1.0);
    };
    let mut newton = NewtonSolver::new(Newton::default().tol(1e-8)).unwrap();
    let mut z = vec![0.0; 100];
    let out = newton.solve(&mut lin, &mut krylov, &mut z, &[1.0; 100]).unwrap();
    // First iteration cannot stop (no rate yet); the second sees a tiny increment.
    assert_eq!(out.status, NewtonStatus::Converged { iters: 2 }, "{out:?}");
    assert!(out.theta.unwrap() < 1e-6);
}
