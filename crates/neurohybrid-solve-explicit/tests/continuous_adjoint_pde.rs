//! Continuous adjoints on a diffusion PDE: 2D Fisher–KPP on 32×32 with the finite-volume
//! operator of `neurohybrid-mesh`, gradient w.r.t. `(D, ρ)`. The backsolve adjoint
//! re-integrates the diffusion backward in time (the ill-posed backward heat equation) and must
//! end with a named instability rather than a wrong gradient (DESIGN.md §7, the peers' W2
//! failures); the interpolating and quadrature adjoints read the stored forward solution and
//! agree with forward sensitivities.

use neurohybrid_solve::sensitivity::{
    BacksolveAdjoint, ForwardSensitivity, InterpolatingAdjoint, QuadratureAdjoint, SquaredMisfit,
    gradient,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, SolveError};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_testkit::FisherKpp;

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d = a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    d / b.iter().fold(0.0f64, |m, y| m.max(y.abs()))
}

#[test]
fn backsolve_names_its_instability_where_interpolating_and_quadrature_agree() {
    let side = 32;
    let seed = FisherKpp::seed(side);
    let targets: Vec<f64> = seed.iter().map(|u| 0.8 * u + 0.05).collect();
    let problem = Problem::new(FisherKpp::new(side), seed, [0.1, 0.05], (0.0, 50.0));
    let (save, loss) = (SaveAt::Final, SquaredMisfit::new(targets));
    let ctrl = PiController::new(1e-8, 1e-10);
    let fwd =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::params()).unwrap();
    for g in [
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::new()).unwrap(),
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &InterpolatingAdjoint::with_checkpoints(4))
            .unwrap(),
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &QuadratureAdjoint::new()).unwrap(),
    ] {
        assert!(rel(&g.dl_dp, &fwd.dl_dp) < 1e-5, "{:?} vs {:?}", g.dl_dp, fwd.dl_dp);
    }
    match gradient(&problem, &Tsit5, &ctrl, &save, &loss, &BacksolveAdjoint::new()) {
        Err(SolveError::BacksolveUnstable { t, reconstruction_error }) => {
            println!("backsolve: BacksolveUnstable at t = {t}, error {reconstruction_error:e}");
            assert!(reconstruction_error > 1e-4);
        }
        Err(SolveError::AdjointSolveFailed { status, .. }) => {
            println!("backsolve: backward solve failed with {status:?}");
        }
        Ok(g) => panic!(
            "backsolve returned a gradient on backward diffusion: {:?} (forward {:?})",
            g.dl_dp, fwd.dl_dp
        ),
        Err(e) => panic!("unexpected error {e}"),
    }
}
