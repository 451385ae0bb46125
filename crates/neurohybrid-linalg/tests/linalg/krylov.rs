//! GMRES and CG on 2D Laplacians, with and without preconditioners.

use neurohybrid_linalg::{
    Cg, Gmres, IdentityPreconditioner, Ilu0, Jacobi, KrylovConfig, KrylovMethod, KrylovSolver,
    KrylovStatus, LinalgError, LinearOperator, LinearSolver, Preconditioner, PreconditionerKind,
    SparseLu, SparseMatrix,
};

use crate::alloc_count::allocations_in;
use crate::common::{
    convection_diffusion_2d, dense_solve, laplacian_2d, random_nonsymmetric, random_spd, rel_err,
    rel_residual, test_vector,
};
use proptest::prelude::*;

const K: usize = 30;

fn config() -> KrylovConfig {
    KrylovConfig::default().rtol(1e-10).max_iters(20_000).restart(30)
}

fn preconditioners(a: &SparseMatrix) -> Vec<(&'static str, Box<dyn Preconditioner>)> {
    vec![
        ("none", Box::new(IdentityPreconditioner)),
        ("jacobi", Box::new(Jacobi::new(a).unwrap())),
        ("ilu0", Box::new(Ilu0::new(a).unwrap())),
    ]
}

#[test]
fn gmres_and_cg_converge_on_laplacian_and_ilu0_helps() {
    let a = laplacian_2d(K, 0.01);
    let b = test_vector(K * K);
    let mut iters = std::collections::HashMap::new();
    for (name, mut pc) in preconditioners(&a) {
        for method in ["gmres", "cg"] {
            let mut x = vec![0.0; K * K];
            let mut op = a.clone();
            let out = match method {
                "gmres" => Gmres::new(config()).solve(&mut op, pc.as_mut(), &b, &mut x).unwrap(),
                _ => Cg::new(config()).solve(&mut op, pc.as_mut(), &b, &mut x).unwrap(),
            };
            assert_eq!(out.status, KrylovStatus::Converged, "{method}/{name}: {out:?}");
            let res = rel_residual(&a, &x, &b, false);
            assert!(res <= 2e-10, "{method}/{name}: true residual {res:e}");
            let b_norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((out.residual_norm / b_norm - res).abs() < 1e-12, "{method}/{name}");
            iters.insert((method, name), out.iterations);
        }
    }
    for method in ["gmres", "cg"] {
        let (none, ilu) = (iters[&(method, "none")], iters[&(method, "ilu0")]);
        assert!(ilu < none, "{method}: ilu0 {ilu} vs none {none}");
        // ILU(0) on the 5-point Laplacian is a strong preconditioner: well under half.
        assert!(2 * ilu < none, "{method}: ilu0 {ilu} vs none {none}");
    }
}

#[test]
fn gmres_transpose_solves_match_sparse_lu_on_nonsymmetric_problem() {
    let a = convection_diffusion_2d(12, 0.0, 3.0);
    let n = 144;
    let b = test_vector(n);
    let mut lu = SparseLu::new();
    lu.factorize(&a).unwrap();
    let (mut x_ref, mut xt_ref) = (b.clone(), b.clone());
    lu.solve_in_place(&mut x_ref).unwrap();
    lu.solve_transpose_in_place(&mut xt_ref).unwrap();
    assert!(rel_err(&x_ref, &xt_ref) > 1e-3, "problem must be visibly nonsymmetric");
    for (name, mut pc) in preconditioners(&a) {
        let mut gmres = Gmres::new(config().rtol(1e-12));
        let mut op = a.clone();
        let mut x = vec![0.0; n];
        assert!(gmres.solve(&mut op, pc.as_mut(), &b, &mut x).unwrap().is_converged());
        let mut xt = vec![0.0; n];
        let out = gmres.solve_transpose(&mut op, pc.as_mut(), &b, &mut xt).unwrap();
        assert!(out.is_converged(), "{name}: {out:?}");
        assert!(rel_err(&x, &x_ref) < 1e-9, "{name}");
        assert!(rel_err(&xt, &xt_ref) < 1e-9, "{name}");
    }
}

#[test]
fn cg_transpose_solve_on_spd_matches_direct() {
    let a = laplacian_2d(10, 0.5);
    let b = test_vector(100);
    let mut lu = SparseLu::new();
    lu.factorize(&a).unwrap();
    let mut xt_ref = b.clone();
    lu.solve_transpose_in_place(&mut xt_ref).unwrap();
    let mut ilu = Ilu0::new(&a).unwrap();
    let mut xt = vec![0.0; 100];
    let out = Cg::new(config().rtol(1e-12))
        .solve_transpose(&mut a.clone(), &mut ilu, &b, &mut xt)
        .unwrap();
    assert!(out.is_converged());
    assert!(rel_err(&xt, &xt_ref) < 1e-9);
}

#[test]
fn non_convergence_is_a_status_not_an_error() {
    let a = laplacian_2d(K, 0.0);
    let b = test_vector(K * K);
    let mut x = vec![0.0; K * K];
    let out = Gmres::new(config().max_iters(5))
        .solve(&mut a.clone(), &mut IdentityPreconditioner, &b, &mut x)
        .unwrap();
    assert_eq!(out.status, KrylovStatus::MaxIterations);
    assert_eq!(out.iterations, 5);
    // CG on an indefinite matrix breaks down instead of returning garbage.
    let mut indefinite = SparseMatrix::identity(4);
    indefinite.values_mut()[2] = -1.0;
    let mut x = vec![0.0; 4];
    let out = Cg::new(config())
        .solve(&mut indefinite, &mut IdentityPreconditioner, &[0.0, 0.0, 1.0, 0.0], &mut x)
        .unwrap();
    assert_eq!(out.status, KrylovStatus::Breakdown);
    // NaN from a matrix-free operator.
    struct NanOp;
    impl LinearOperator for NanOp {
        fn dim(&self) -> usize {
            2
        }
        fn apply(&mut self, _: &[f64], y: &mut [f64]) {
            y.fill(f64::NAN);
        }
        fn apply_transpose(&mut self, _: &[f64], y: &mut [f64]) {
            y.fill(f64::NAN);
        }
    }
    let mut x = vec![0.0; 2];
    let out = Gmres::new(config())
        .solve(&mut NanOp, &mut IdentityPreconditioner, &[1.0, 1.0], &mut x)
        .unwrap();
    assert_eq!(out.status, KrylovStatus::NonFinite);
    // Misuse is an error.
    assert!(matches!(
        Gmres::new(config()).solve(&mut NanOp, &mut IdentityPreconditioner, &[1.0], &mut x),
        Err(LinalgError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        Gmres::new(config().restart(0)).solve(
            &mut NanOp,
            &mut IdentityPreconditioner,
            &[1.0, 1.0],
            &mut x
        ),
        Err(LinalgError::InvalidConfig { .. })
    ));
}

#[test]
fn krylov_behind_the_linear_solver_trait() {
    let a = convection_diffusion_2d(15, 0.1, 1.0);
    let b = test_vector(225);
    let mut solver = KrylovSolver::new(KrylovMethod::Gmres, PreconditionerKind::Ilu0, config());
    assert_eq!(solver.solve_in_place(&mut b.clone()), Err(LinalgError::NotFactorized));
    let mut w = a.clone();
    for k in 0..3 {
        w.add_to_diagonal(0.1 * k as f64).unwrap();
        solver.factorize(&w).unwrap();
        let (mut x, mut xt) = (b.clone(), b.clone());
        solver.solve_in_place(&mut x).unwrap();
        solver.solve_transpose_in_place(&mut xt).unwrap();
        assert!(rel_residual(&w, &x, &b, false) < 1e-9);
        assert!(rel_residual(&w, &xt, &b, true) < 1e-9);
    }
    let s = solver.stats();
    assert_eq!((s.symbolic_factorizations, s.numeric_factorizations), (1, 3));
    assert!(s.krylov_iterations > 0);
    // Steady state: refresh + solve allocate nothing.
    let mut x = b.clone();
    let allocs = allocations_in(|| {
        solver.factorize(&w).unwrap();
        solver.solve_in_place(&mut x).unwrap();
    });
    assert_eq!(allocs, 0);
    // Non-convergence surfaces as a named error through the trait.
    let mut weak =
        KrylovSolver::new(KrylovMethod::Cg, PreconditionerKind::None, config().max_iters(2));
    weak.factorize(&laplacian_2d(K, 0.0)).unwrap();
    assert!(matches!(
        weak.solve_in_place(&mut test_vector(K * K)),
        Err(LinalgError::NotConverged { iterations: 2, .. })
    ));
}

/// `KrylovMethod::Auto` with every preconditioner against dense LU.
fn auto_matches_dense(
    a: &SparseMatrix,
    b: &[f64],
    expect_cg: bool,
) -> std::result::Result<(), TestCaseError> {
    let reference = dense_solve(&a.to_dense(), b);
    for kind in [PreconditionerKind::None, PreconditionerKind::Jacobi, PreconditionerKind::Ilu0] {
        let mut s = KrylovSolver::new(KrylovMethod::Auto, kind, config().rtol(1e-12));
        s.factorize(a).unwrap();
        prop_assert_eq!(s.uses_cg(), expect_cg);
        let (mut x, mut xt) = (b.to_vec(), b.to_vec());
        s.solve_in_place(&mut x).unwrap();
        s.solve_transpose_in_place(&mut xt).unwrap();
        prop_assert!(rel_err(&x, &reference) < 1e-9, "{:?}: {}", kind, rel_err(&x, &reference));
        prop_assert!(rel_residual(a, &xt, b, true) < 1e-11);
        // A looser tolerance set between solves is honoured: the residual meets it, and it
        // takes no more iterations than the tight solve.
        let tight = s.last_outcome().unwrap().iterations;
        s.set_tolerances(1e-3, 0.0).unwrap();
        let mut xl = b.to_vec();
        s.solve_in_place(&mut xl).unwrap();
        prop_assert!(rel_residual(a, &xl, b, false) <= 1e-3 * (1.0 + 1e-9));
        prop_assert!(s.last_outcome().unwrap().iterations <= tight);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn auto_runs_cg_on_spd_matrices_and_matches_dense_lu((a, b) in random_spd()) {
        auto_matches_dense(&a, &b, true)?;
    }

    #[test]
    fn auto_runs_gmres_on_nonsymmetric_matrices_and_matches_dense_lu(
        (a, b) in random_nonsymmetric()
    ) {
        let symmetric = a.to_dense() == a.to_dense().transpose().to_owned();
        auto_matches_dense(&a, &b, symmetric)?;
    }
}

#[test]
fn auto_falls_back_to_gmres_when_cg_breaks_down() {
    // Symmetric indefinite: diag(1, −1) plus a coupling. CG's curvature test fails.
    let a = SparseMatrix::from_triplets(
        3,
        3,
        &[(0, 0, 2.0), (1, 1, -1.0), (2, 2, 1.0), (0, 1, 0.5), (1, 0, 0.5)],
    )
    .unwrap();
    let b = [1.0, 2.0, 3.0];
    let mut s = KrylovSolver::new(KrylovMethod::Auto, PreconditionerKind::None, config());
    s.factorize(&a).unwrap();
    assert!(s.uses_cg());
    let mut x = b;
    s.solve_in_place(&mut x).unwrap();
    assert!(!s.uses_cg());
    assert!(rel_err(&x, &dense_solve(&a.to_dense(), &b)) < 1e-10);
    s.factorize(&a).unwrap();
    assert!(s.uses_cg(), "a new factorization tries CG again");
}
