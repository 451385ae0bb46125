//! W2 (`../shared/peers/README.md`): Fisher–KPP `u_t = D Δu + ρ u (1 − u)` on 128×128,
//! dx = 1 mm, no-flux boundary, D = 0.1 mm²/day, ρ = 0.05/day, Gaussian seed (σ = 5 mm, peak
//! 0.5) at the centre, T = 100 days; Tsit5 at rtol 1e-6, atol 1e-8. Loss: squared misfit of
//! `u(T)` to the target field (the solution at D = 0.13, ρ = 0.04, computed once at rtol
//! 1e-10); gradient w.r.t. (D, ρ). Peer reference ∂L/∂D = 367.05, ∂L/∂ρ = 5453.17.
//!
//! The Laplacian is a 5-point kernel over the full rectangle (zip loops, no bounds checks, no
//! index maps), checked at start-up against the mesh crate's `DiffusionOperator` on
//! `Grid::full_2d` (same finite-volume operator, agreement to 1e-13); the mesh operator's
//! general masked-grid kernel is ~8 ns/cell, this one well under 1 ns/cell.
//!
//! Prints `{"bench":"w2_forward","ours_ns":…,"diffsol_ns":7200000,"ratio":…}` and one line
//! per gradient method (`w2_grad_forward_sens`, `w2_grad_discrete_adjoint`,
//! `w2_grad_discrete_adjoint_revolve16`, `w2_grad_interpolating_adjoint`,
//! `w2_grad_quadrature_adjoint`, each with `dL_dD`, `dL_drho`; `w2_grad_backsolve_adjoint`
//! prints its named instability instead), `ratio = ours / peer` (peers: diffsol 7.2 ms forward, diffsol discrete
//! step-VJP 24 ms for the gradient).

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_mesh::{DiffusionOperator, Grid};
use neurohybrid_solve::sensitivity::{
    BacksolveAdjoint, Checkpointing, DiscreteAdjoint, ForwardSensitivity, Gradient,
    InterpolatingAdjoint, QuadratureAdjoint, Sensitivity, SquaredMisfit, gradient,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, SolveError, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, OdeSystem, Vjp};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

const M: usize = 128;

/// `out = Δu` (dx = 1) with zero-flux boundaries: the sum over existing neighbours of
/// `u_nb − u`.
fn laplacian(u: &[f64], out: &mut [f64]) {
    for r in 0..M {
        let cur = &u[r * M..(r + 1) * M];
        let o = &mut out[r * M..(r + 1) * M];
        match (r > 0, r + 1 < M) {
            (true, true) => {
                let up = &u[(r - 1) * M..r * M];
                let dn = &u[(r + 1) * M..(r + 2) * M];
                for (((o, c), a), b) in o.iter_mut().zip(cur).zip(up).zip(dn) {
                    *o = a + b - 2.0 * c;
                }
            }
            (false, _) => {
                let dn = &u[M..2 * M];
                o.iter_mut().zip(cur).zip(dn).for_each(|((o, c), b)| *o = b - c);
            }
            (_, false) => {
                let up = &u[(r - 1) * M..r * M];
                o.iter_mut().zip(cur).zip(up).for_each(|((o, c), a)| *o = a - c);
            }
        }
        // Horizontal faces: interior cells get both, edge cells one.
        o[0] += cur[1] - cur[0];
        o[M - 1] += cur[M - 2] - cur[M - 1];
        let (l, rest) = (&cur[..M - 2], &cur[1..]);
        for ((o, l), (c, r)) in o[1..M - 1].iter_mut().zip(l).zip(rest.iter().zip(&cur[2..])) {
            *o += l + r - 2.0 * c;
        }
    }
}

/// W2's right-hand side, `p = [D, ρ]`.
struct FisherKpp {
    scratch: RefCell<Vec<f64>>,
}

impl FisherKpp {
    fn new() -> Self {
        Self { scratch: RefCell::new(vec![0.0; M * M]) }
    }
}

impl OdeSystem for FisherKpp {
    fn n_states(&self) -> usize {
        M * M
    }
    fn n_params(&self) -> usize {
        2
    }
    fn rhs(&self, _t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        laplacian(y, dy);
        let (d, rho) = (p[0], p[1]);
        dy.iter_mut().zip(y).for_each(|(o, u)| *o = d * *o + rho * u * (1.0 - u));
    }
}

impl Vjp for FisherKpp {
    fn vjp(&self, _t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        // Δ is symmetric: wᵀ(DΔ) = D Δw, and wᵀ Δu = (Δw)ᵀ u, read from Δw in the same pass
        // before it is overwritten (one stencil pass per VJP).
        laplacian(w, w_y);
        let (d, rho) = (p[0], p[1]);
        let (mut g_d, mut g_rho) = (0.0, 0.0);
        for ((o, u), w) in w_y.iter_mut().zip(y).zip(w) {
            g_d += *o * u;
            g_rho += w * u * (1.0 - u);
            *o = d * *o + rho * (1.0 - 2.0 * u) * w;
        }
        if let [wd, wr] = w_p {
            *wd = g_d;
            *wr = g_rho;
        }
    }
}

impl Jvp for FisherKpp {
    fn jvp(&self, _t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        laplacian(v_y, out);
        let (d, rho) = (p[0], p[1]);
        out.iter_mut()
            .zip(y)
            .zip(v_y)
            .for_each(|((o, u), v)| *o = d * *o + rho * (1.0 - 2.0 * u) * v);
        match *v_p {
            // ∂f/∂D = Δu needs a stencil pass; ∂f/∂ρ = u(1 − u) does not.
            [vd, vr] if vd != 0.0 => {
                let lu = &mut *self.scratch.borrow_mut();
                laplacian(y, lu);
                for ((o, u), l) in out.iter_mut().zip(y).zip(lu.iter()) {
                    *o += vd * l + vr * u * (1.0 - u);
                }
            }
            [_, vr] if vr != 0.0 => {
                out.iter_mut().zip(y).for_each(|(o, u)| *o += vr * u * (1.0 - u));
            }
            _ => {}
        }
    }
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, clock ticks of 10 ms),
/// which contention from other processes inflates far less than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields after the command: state(skipped, not numeric) ppid … utime(14) stime(15).
    f.get(10).copied().unwrap_or(0.0) / 100.0 + f.get(11).copied().unwrap_or(0.0) / 100.0
}

fn seed() -> Vec<f64> {
    let c = M as f64 / 2.0;
    (0..M * M)
        .map(|i| {
            let (x, y) = ((i / M) as f64 + 0.5 - c, (i % M) as f64 + 0.5 - c);
            0.5 * (-(x * x + y * y) / (2.0 * 25.0)).exp()
        })
        .collect()
}

/// The fast kernel is the mesh crate's finite-volume operator (D = 1, dx = 1, no flux).
fn check_against_mesh(u: &[f64]) {
    let grid = Grid::full_2d([M, M], [1.0, 1.0]).expect("a valid grid");
    let op = DiffusionOperator::new(&grid, vec![1.0; M * M]).expect("D ≥ 0");
    let (mut a, mut b) = (vec![0.0; M * M], vec![0.0; M * M]);
    op.apply(u, &mut a).expect("lengths match");
    laplacian(u, &mut b);
    let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(err < 1e-13, "fast Laplacian differs from the mesh operator by {err:e}");
}

fn main() {
    let y0 = seed();
    check_against_mesh(&y0);
    let ctrl = PiController::new(1e-6, 1e-8);
    let target_problem = Problem::new(FisherKpp::new(), y0.clone(), [0.13, 0.04], (0.0, 100.0));
    let target = solve(&target_problem, &Tsit5, &PiController::new(1e-10, 1e-12), &SaveAt::Final)
        .expect("valid problem");
    let loss = SquaredMisfit::new(target.last().expect("final state").to_vec());
    let pr = Problem::new(FisherKpp::new(), y0, [0.1, 0.05], (0.0, 100.0));
    let run_fwd = || solve(&pr, &Tsit5, &ctrl, &SaveAt::Final).expect("valid problem");
    // Every method of the sensitivity module on the same problem. Backsolve re-integrates the
    // diffusion backward, which is unstable (the peers' backsolve adjoints fail here too): ours
    // ends with a named error, printed instead of a time.
    let methods: Vec<(&str, Method)> = vec![
        ("forward_sens", Box::new(|| run(&pr, &loss, &ForwardSensitivity::params()))),
        (
            "discrete_adjoint",
            Box::new(|| run(&pr, &loss, &DiscreteAdjoint::new(Checkpointing::All))),
        ),
        (
            "discrete_adjoint_revolve16",
            Box::new(|| {
                run(&pr, &loss, &DiscreteAdjoint::new(Checkpointing::Revolve { slots: 16 }))
            }),
        ),
        ("interpolating_adjoint", Box::new(|| run(&pr, &loss, &InterpolatingAdjoint::new()))),
        ("quadrature_adjoint", Box::new(|| run(&pr, &loss, &QuadratureAdjoint::new()))),
        ("backsolve_adjoint", Box::new(|| run(&pr, &loss, &BacksolveAdjoint::new()))),
    ];
    let mut usable = Vec::new();
    for (name, m) in &methods {
        match m() {
            Ok(g) => {
                eprintln!(
                    "w2 {name}: dL/dp {:?}, {} forward steps, memory {:?}",
                    g.dl_dp, g.memory.steps, g.memory
                );
                usable.push((*name, m, g.dl_dp));
            }
            Err(e) => {
                eprintln!("w2 {name}: {e}");
                println!("{{\"bench\":\"w2_grad_{name}\",\"error\":{:?}}}", e.to_string());
            }
        }
    }
    let run_adj = || methods[1].1().expect("the discrete adjoint succeeds on W2");
    let run_sens = || methods[0].1().expect("forward sensitivities succeed on W2");
    eprintln!("w2: forward {} steps", run_fwd().stats().accepted_steps);

    // `W2_PROFILE=forward|sens|adjoint[:iterations]`: run one workload only (for callgrind /
    // perf on this loaded machine) and print its CPU time per iteration.
    if let Ok(spec) = std::env::var("W2_PROFILE") {
        let (what, iters) = spec.split_once(':').unwrap_or((spec.as_str(), "20"));
        let iters: usize = iters.parse().unwrap_or(20);
        let cpu0 = cpu_seconds();
        let wall0 = std::time::Instant::now();
        for _ in 0..iters {
            match what {
                "forward" => drop(black_box(run_fwd())),
                "sens" => drop(black_box(run_sens())),
                _ => drop(black_box(run_adj())),
            }
        }
        let per = |x: f64| x / iters as f64 * 1e3;
        eprintln!(
            "w2 profile {what}: {:.3} ms CPU, {:.3} ms wall per iteration",
            per(cpu_seconds() - cpu0),
            per(wall0.elapsed().as_secs_f64())
        );
        return;
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("w2");
    group.bench_function("forward", |b| b.iter(|| black_box(run_fwd())));
    for (name, m, _) in &usable {
        group.bench_function(format!("grad_{name}"), |b| b.iter(|| black_box(m())));
    }
    group.finish();

    let Some(f) = criterion_median_ns("w2", "forward") else {
        // `cargo test --benches` runs each function once without writing estimates.
        eprintln!("w2: no fresh criterion estimates for every function (a test or filtered run)");
        return;
    };
    report_json("w2_forward", &[("ours_ns", f), ("diffsol_ns", 7.2e6), ("ratio", f / 7.2e6)]);
    for (name, _, dl_dp) in &usable {
        if let Some(t) = criterion_median_ns("w2", &format!("grad_{name}")) {
            report_json(
                &format!("w2_grad_{name}"),
                &[
                    ("ours_ns", t),
                    ("diffsol_ns", 24e6),
                    ("ratio", t / 24e6),
                    ("dL_dD", dl_dp[0]),
                    ("dL_drho", dl_dp[1]),
                ],
            );
        }
    }
}

type Method<'a> = Box<dyn Fn() -> Result<Gradient, SolveError> + 'a>;

fn run(
    pr: &Problem<FisherKpp>,
    loss: &SquaredMisfit,
    method: &impl Sensitivity<FisherKpp, Tsit5, PiController>,
) -> Result<Gradient, SolveError> {
    gradient(pr, &Tsit5, &PiController::new(1e-6, 1e-8), &SaveAt::Final, loss, method)
}
