//! Continuous adjoints on a diffusion PDE: 2D Fisher–KPP on 32×32 with the finite-volume
//! operator of `neurohybrid-mesh`, gradient w.r.t. `(D, ρ)`. The backsolve adjoint
//! re-integrates the diffusion backward in time (the ill-posed backward heat equation) and must
//! end with a named instability rather than a wrong gradient (DESIGN.md §7, the peers' W2
//! failures); the interpolating and quadrature adjoints read the stored forward solution and
//! agree with forward sensitivities.

use neurohybrid_mesh::{DiffusionOperator, Grid};
use neurohybrid_solve::sensitivity::{
    BacksolveAdjoint, ForwardSensitivity, InterpolatingAdjoint, QuadratureAdjoint, SquaredMisfit,
    gradient,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, SolveError};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Vjp, entry_index};

/// 2D Fisher–KPP `u' = D·Δu + ρ·u(1 − u)` with no-flux boundaries, `p = [D, ρ]`, on the
/// finite-volume operator of `neurohybrid-mesh` (unit diffusivity, scaled by `D`).
#[derive(Debug, Clone)]
struct FisherKpp {
    op: DiffusionOperator,
    diag: Vec<usize>,
}

impl FisherKpp {
    /// On a full `side × side` grid with 1 mm spacing.
    fn new(side: usize) -> Self {
        let grid = Grid::full_2d([side, side], [1.0, 1.0]).expect("a valid grid");
        let n = grid.n_active();
        let op = DiffusionOperator::new(&grid, vec![1.0; n]).expect("unit diffusivity is valid");
        let diag = (0..n)
            .map(|i| {
                entry_index(Jacobian::sparsity(&op), i, i).expect("the stencil has a diagonal")
            })
            .collect();
        Self { op, diag }
    }

    /// A Gaussian seed of width 3 mm at the centre of the grid (peak 0.5).
    fn seed(side: usize) -> Vec<f64> {
        let c = (side as f64 - 1.0) / 2.0;
        let mut u = Vec::with_capacity(side * side);
        for j in 0..side {
            for i in 0..side {
                let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2);
                u.push(0.5 * (-r2 / 18.0).exp());
            }
        }
        u
    }
}

impl OdeSystem for FisherKpp {
    fn n_states(&self) -> usize {
        self.op.n()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, u: &[f64], p: &[f64], du: &mut [f64]) {
        self.op.apply(u, du).expect("lengths checked by the solver");
        for (d, &u) in du.iter_mut().zip(u) {
            *d = p[0] * *d + p[1] * u * (1.0 - u);
        }
    }
}

impl Vjp for FisherKpp {
    fn vjp(&self, _t: f64, u: &[f64], p: &[f64], w: &[f64], w_u: &mut [f64], w_p: &mut [f64]) {
        // A is symmetric (uniform cells), so wᵀ(D A) = D (A w)ᵀ.
        self.op.vjp(w, w_u).expect("lengths checked by the solver");
        if !w_p.is_empty() {
            w_p[0] = w_u.iter().zip(u).map(|(a, b)| a * b).sum(); // wᵀ A u = (A w)ᵀ u
            w_p[1] = w.iter().zip(u).map(|(w, u)| w * u * (1.0 - u)).sum();
        }
        for ((g, &w), &u) in w_u.iter_mut().zip(w).zip(u) {
            *g = p[0] * *g + p[1] * (1.0 - 2.0 * u) * w;
        }
    }
}

impl Jvp for FisherKpp {
    fn jvp(&self, _t: f64, u: &[f64], p: &[f64], v_u: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.op.jvp(v_u, out).expect("lengths checked by the solver");
        for ((o, &v), &u) in out.iter_mut().zip(v_u).zip(u) {
            *o = p[0] * *o + p[1] * (1.0 - 2.0 * u) * v;
        }
        if let [dd, dr] = *v_p {
            let mut au = vec![0.0; u.len()];
            self.op.apply(u, &mut au).expect("lengths checked by the solver");
            for ((o, a), &u) in out.iter_mut().zip(&au).zip(u) {
                *o += dd * a + dr * u * (1.0 - u);
            }
        }
    }
}

impl Jacobian for FisherKpp {
    fn sparsity(&self) -> &SparsityPattern {
        Jacobian::sparsity(&self.op)
    }
    fn jacobian(&self, t: f64, u: &[f64], p: &[f64], out: &mut CsrMatrix) {
        Jacobian::jacobian(&self.op, t, u, &[], out);
        let vals = out.values_mut();
        vals.iter_mut().for_each(|v| *v *= p[0]);
        for (i, &k) in self.diag.iter().enumerate() {
            vals[k] += p[1] * (1.0 - 2.0 * u[i]);
        }
    }
}

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
