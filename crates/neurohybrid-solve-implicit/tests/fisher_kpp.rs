//! 2D Fisher–KPP `u_t = D Δu + ρ u (1 − u)` on a 64×64 grid with stiff diffusion — the small
//! version of the `fisher_kpp` benchmark (256×256 with the mesh crate's operator, in
//! `benches/benches/fisher_kpp.rs`). KenCarp4 treats the diffusion implicitly (sparse LU of
//! `I − hγ D Δ`) and the reaction explicitly; it must agree with a tight Tsit5 reference to
//! 1e-5 while evaluating the right-hand side far less often (Tsit5 is held at its stability
//! limit `h ≲ 3.3 dx² / (8D)`).

use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_solve_implicit::{DirkConfig, KenCarp4, Tolerances};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Split};
use neurohybrid_testkit::max_abs_diff;

/// `D Δu` on an `m × m` cell-centred grid, spacing `dx`, no-flux boundaries (finite volumes:
/// `(D/dx²) Σ_neighbours (u_j − u_i)`), with its exact 5-point Jacobian.
struct Diffusion {
    m: usize,
    coef: f64,
    pattern: SparsityPattern,
}

impl Diffusion {
    fn new(m: usize, dx: f64, d: f64) -> Self {
        let mut offsets = vec![0];
        let mut cols = Vec::new();
        for i in 0..m * m {
            let (r, c) = (i / m, i % m);
            if r > 0 {
                cols.push(i - m);
            }
            if c > 0 {
                cols.push(i - 1);
            }
            cols.push(i);
            if c + 1 < m {
                cols.push(i + 1);
            }
            if r + 1 < m {
                cols.push(i + m);
            }
            offsets.push(cols.len());
        }
        let n = m * m;
        let pattern = SparsityPattern::try_from_offsets_and_indices(n, n, offsets, cols).unwrap();
        Self { m, coef: d / (dx * dx), pattern }
    }
}

impl OdeSystem for Diffusion {
    fn n_states(&self) -> usize {
        self.m * self.m
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        for (i, d) in dy.iter_mut().enumerate() {
            let row = self.pattern.lane(i);
            *d = self.coef * row.iter().map(|&j| y[j] - y[i]).sum::<f64>();
        }
    }
}

impl Jacobian for Diffusion {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, _t: f64, _y: &[f64], _p: &[f64], out: &mut CsrMatrix) {
        for (i, j, v) in out.triplet_iter_mut() {
            *v = if i == j {
                -self.coef * (self.pattern.lane(i).len() - 1) as f64
            } else {
                self.coef
            };
        }
    }
}

/// `ρ u (1 − u)`, pointwise; no Jacobian (the IMEX method never needs one).
struct Reaction {
    n: usize,
    rho: f64,
}

impl OdeSystem for Reaction {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        0
    }
    fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
        for (d, u) in dy.iter_mut().zip(y) {
            *d = self.rho * u * (1.0 - u);
        }
    }
}

#[test]
fn imex_matches_tight_tsit5_with_far_less_work() {
    // D = 1 mm²/day, dx = 0.5 mm (largest diffusion eigenvalue 8D/dx² = 32/day), ρ = 0.05/day,
    // 100 days, a Gaussian seed (σ = 3 mm, peak 0.5) at the centre of a 32 mm square.
    let (m, dx) = (64, 0.5);
    let n = m * m;
    let diffusion = Diffusion::new(m, dx, 1.0);
    let system = Split::new(diffusion, Reaction { n, rho: 0.05 }).unwrap();
    let centre = m as f64 * dx / 2.0;
    let y0: Vec<f64> = (0..n)
        .map(|i| {
            let (x, y) =
                (((i % m) as f64 + 0.5) * dx - centre, ((i / m) as f64 + 0.5) * dx - centre);
            0.5 * (-(x * x + y * y) / (2.0 * 9.0)).exp()
        })
        .collect();
    let problem = Problem::new(system, y0, [], (0.0, 100.0));

    let tight = PiController::new(1e-10, 1e-12).with_max_steps(1_000_000);
    let reference = solve(&problem, &Tsit5, &tight, &SaveAt::Final).unwrap();
    assert!(reference.is_success());

    let c = PiController::new(1e-6, 1e-8);
    let method = KenCarp4::with_config(
        DirkConfig::default().with_tolerances(Tolerances::from_controller(&c)),
    )
    .unwrap();
    let imex = solve(&problem, &method, &c, &SaveAt::Final).unwrap();
    assert!(imex.is_success(), "{:?}", imex.status());
    let err = max_abs_diff(imex.last().unwrap(), reference.last().unwrap());
    assert!(err < 1e-5, "max |IMEX − Tsit5| = {err}");

    let loose = solve(&problem, &Tsit5, &c, &SaveAt::Final).unwrap();
    let (si, st) = (imex.stats(), loose.stats());
    // IMEX counts the stiff and the non-stiff part separately (an overcount against it).
    let ratio = st.rhs_evals as f64 / si.rhs_evals as f64;
    eprintln!("err {err:.3e}, rhs work ratio {ratio:.1}: IMEX {si:?}, Tsit5 {st:?}");
    assert!(ratio > 5.0, "rhs work ratio {ratio}: IMEX {si:?}, Tsit5 {st:?}");
    // The diffusion Jacobian is constant: evaluated a handful of times, factorized rarely.
    assert!(si.factorizations * 2 < si.accepted_steps, "{si:?}");
}
