//! Quickstart: a universal differential equation (UDE) in a few lines.
//!
//! The right-hand side is Lotka–Volterra with a small neural residual,
//! `f(y; θ, w) = f_LV(y; θ) + MLP(y; w)`, recorded once as an autodiff graph and compiled into a
//! tape. `TapeSystem` turns the tape into an `OdeSystem` with exact VJPs and JVPs; Tsit5 with a
//! PI controller solves it. The example prints the trajectory, the solver statistics, and checks
//! the tape's exact vector–Jacobian product against central finite differences.
//!
//! Run: `cargo run --release -p neurohybrid-solve-explicit --example quickstart`

use neurohybrid_autodiff::Graph;
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, TapeSystem, Vjp};

const HIDDEN: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Parameter vector: [α, β, γ, δ | W1 (2×H), b1 (H), W2 (H×2), b2 (2)].
    let n_nn = 2 * HIDDEN + HIDDEN + HIDDEN * 2 + 2;
    let n_p = 4 + n_nn;

    let mut g = Graph::new();
    let y = g.input("y", &[2])?;
    let p = g.input("p", &[n_p])?;
    // Mechanistic part: dx = αx − βxy, dy = −γy + δxy.
    let (x1, x2) = (g.slice(y, 0, 1)?, g.slice(y, 1, 1)?);
    let (alpha, beta) = (g.slice(p, 0, 1)?, g.slice(p, 1, 1)?);
    let (gamma, delta) = (g.slice(p, 2, 1)?, g.slice(p, 3, 1)?);
    let xy = g.mul(x1, x2)?;
    let ax = g.mul(alpha, x1)?;
    let bxy = g.mul(beta, xy)?;
    let f1 = g.sub(ax, bxy)?;
    let gy = g.mul(gamma, x2)?;
    let dxy = g.mul(delta, xy)?;
    let f2 = g.sub(dxy, gy)?;
    let mech = g.concat(&[f1, f2])?;
    // Neural residual: a 2→H→2 tanh MLP on the state (a row vector [1, 2]).
    let mut off = 4;
    let mut take =
        |g: &mut Graph, shape: &[usize]| -> Result<_, neurohybrid_autodiff::AutodiffError> {
            let len = shape.iter().product();
            let v = g.slice(p, off, len)?;
            off += len;
            g.reshape(v, shape)
        };
    let (w1, b1) = (take(&mut g, &[2, HIDDEN])?, take(&mut g, &[HIDDEN])?);
    let (w2, b2) = (take(&mut g, &[HIDDEN, 2])?, take(&mut g, &[2])?);
    let row = g.reshape(y, &[1, 2])?;
    let h = g.matmul(row, w1)?;
    let h = g.add(h, b1)?;
    let h = g.tanh(h)?;
    let out = g.matmul(h, w2)?;
    let out = g.add(out, b2)?;
    let nn = g.reshape(out, &[2])?;
    let f = g.add(mech, nn)?;
    let system = TapeSystem::new(g.compile(&[f])?)?;

    // Mechanistic parameters of Rackauckas et al. 2020; small deterministic network weights.
    let mut params = vec![1.3, 0.9, 0.8, 1.8];
    params.extend((0..n_nn).map(|i| 0.05 * ((i as f64) * 0.7).sin()));
    let y0 = [0.44249296, 4.6280594];
    let times: Vec<f64> = (0..=6).map(|i| 0.5 * i as f64).collect();

    let problem = Problem::new(&system, y0, params.clone(), (0.0, 3.0));
    let sol = solve(&problem, &Tsit5, &PiController::new(1e-8, 1e-10), &SaveAt::Times(times))?;
    println!("UDE Lotka–Volterra + MLP residual ({n_p} parameters), Tsit5 rtol 1e-8");
    println!("{:>6} {:>14} {:>14}", "t", "prey", "predator");
    for (t, y) in sol.iter() {
        println!("{t:>6.2} {:>14.8} {:>14.8}", y[0], y[1]);
    }
    let s = sol.stats();
    println!(
        "status {:?}: {} accepted, {} rejected steps, {} rhs evaluations",
        sol.status(),
        s.accepted_steps,
        s.rejected_steps,
        s.rhs_evals
    );

    // The exact VJP wᵀ∂f/∂p of the compiled tape against central finite differences.
    let (t, w) = (0.0, [0.3, -0.7]);
    let (mut w_y, mut w_p) = ([0.0; 2], vec![0.0; n_p]);
    system.vjp(t, &y0, &params, &w, &mut w_y, &mut w_p);
    let mut max_rel = 0.0f64;
    let (mut fp, mut fm) = ([0.0; 2], [0.0; 2]);
    for j in 0..n_p {
        let h = 1e-6 * params[j].abs().max(1.0);
        let mut q = params.clone();
        q[j] += h;
        system.rhs(t, &y0, &q, &mut fp);
        q[j] -= 2.0 * h;
        system.rhs(t, &y0, &q, &mut fm);
        let fd = (0..2).map(|i| w[i] * (fp[i] - fm[i]) / (2.0 * h)).sum::<f64>();
        max_rel = max_rel.max((fd - w_p[j]).abs() / w_p[j].abs().max(1e-3));
    }
    println!("tape VJP vs central differences over {n_p} parameters: max rel. error {max_rel:.1e}");
    if !sol.is_success() || max_rel > 1e-6 {
        return Err("quickstart check failed".into());
    }
    Ok(())
}
