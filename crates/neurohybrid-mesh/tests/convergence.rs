//! Second-order convergence of the finite-volume diffusion operator (REFERENCES.md,
//! "Reference solutions"): heat-equation modes with no-flux (Neumann) and Dirichlet
//! boundaries, and the manufactured heterogeneous-diffusion solution
//! `D(x) = D0 (1 + a sin x)`, `u = e^{−t} sin(πx)`.
//!
//! Each case compares the operator applied to the exact solution with the exact `∇·(D∇u)`
//! and/or integrates in time with a few lines of explicit Euler (this crate has no solvers;
//! `dt ∝ h²`, so the O(dt) time error is O(h²) too). The observed order is the least-squares
//! slope of log(error) against log(h) over at least three resolutions, required in 2 ± 0.2.

use std::f64::consts::PI;

use neurohybrid_mesh::{DiffusionOperator, Grid};

/// Least-squares slope of `log err` against `log h`.
fn observed_order(hs: &[f64], errs: &[f64]) -> f64 {
    let x: Vec<f64> = hs.iter().map(|h| h.ln()).collect();
    let y: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

fn assert_second_order(name: &str, hs: &[f64], errs: &[f64]) {
    assert!(hs.len() >= 3);
    let p = observed_order(hs, errs);
    eprintln!("{name}: observed order {p:.3}");
    assert!(
        (p - 2.0).abs() <= 0.2,
        "{name}: observed order {p:.3} (h = {hs:?}, errors = {errs:?})"
    );
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Cell centres `(i + ½) h` of a full 1D line of `n` cells on `[0, l]` (a `n × 1` 2D grid).
fn line(n: usize, l: f64) -> (Grid, Vec<f64>) {
    let h = l / n as f64;
    let g = Grid::full_2d([n, 1], [h, 1.0]).unwrap();
    (g, (0..n).map(|i| (i as f64 + 0.5) * h).collect())
}

#[test]
fn neumann_modes_operator_error_is_second_order_in_1d_2d_3d() {
    // 1D: u = cos(kπx/L) satisfies u'(0) = u'(L) = 0, the no-flux condition the operator
    // imposes at the mask boundary.
    let (l, k, d) = (2.0, 3.0, 0.7);
    let mut hs = Vec::new();
    let mut errs = Vec::new();
    for n in [16, 32, 64, 128] {
        let (g, x) = line(n, l);
        let op = DiffusionOperator::new(&g, vec![d; n]).unwrap();
        let u: Vec<f64> = x.iter().map(|&x| (k * PI * x / l).cos()).collect();
        let exact: Vec<f64> = u.iter().map(|u| -d * (k * PI / l).powi(2) * u).collect();
        let mut au = vec![0.0; n];
        op.apply(&u, &mut au).unwrap();
        hs.push(l / n as f64);
        errs.push(max_abs_diff(&au, &exact));
    }
    assert_second_order("neumann 1d", &hs, &errs);

    // 2D with anisotropic spacing: u = cos(πx/Lx) cos(2πy/Ly), Lx = 1, Ly = 2.
    let (lx, ly) = (1.0, 2.0);
    let (mut hs, mut errs) = (Vec::new(), Vec::new());
    for n in [16, 32, 64, 128] {
        let (hx, hy) = (lx / n as f64, ly / n as f64);
        let g = Grid::full_2d([n, n], [hx, hy]).unwrap();
        let op = DiffusionOperator::new(&g, vec![d; n * n]).unwrap();
        let lam = d * ((PI / lx).powi(2) + (2.0 * PI / ly).powi(2));
        let u: Vec<f64> = (0..n * n)
            .map(|v| {
                let [i, j, _] = g.coords(v);
                let x = (i as f64 + 0.5) * hx;
                let y = (j as f64 + 0.5) * hy;
                (PI * x / lx).cos() * (2.0 * PI * y / ly).cos()
            })
            .collect();
        let exact: Vec<f64> = u.iter().map(|u| -lam * u).collect();
        let mut au = vec![0.0; n * n];
        op.apply(&u, &mut au).unwrap();
        hs.push(hx);
        errs.push(max_abs_diff(&au, &exact));
    }
    assert_second_order("neumann 2d", &hs, &errs);

    // 3D on the unit cube: u = cos(πx) cos(πy) cos(2πz).
    let (mut hs, mut errs) = (Vec::new(), Vec::new());
    for n in [12, 24, 48] {
        let h = 1.0 / n as f64;
        let g = Grid::full_3d([n, n, n], [h, h, h]).unwrap();
        let op = DiffusionOperator::new(&g, vec![d; n * n * n]).unwrap();
        let lam = d * 6.0 * PI * PI;
        let c = |i: usize| (i as f64 + 0.5) * h;
        let u: Vec<f64> = (0..g.n_voxels())
            .map(|v| {
                let [i, j, k] = g.coords(v);
                (PI * c(i)).cos() * (PI * c(j)).cos() * (2.0 * PI * c(k)).cos()
            })
            .collect();
        let exact: Vec<f64> = u.iter().map(|u| -lam * u).collect();
        let mut au = vec![0.0; u.len()];
        op.apply(&u, &mut au).unwrap();
        hs.push(h);
        errs.push(max_abs_diff(&au, &exact));
    }
    assert_second_order("neumann 3d", &hs, &errs);
}

/// Explicit Euler for `u' = A u + f(t)` to time `t_end` with `dt ≤ cfl · h² / d_max`.
/// `ghosts` is applied to `u` before every operator evaluation (boundary data).
fn euler(
    op: &DiffusionOperator,
    u: &mut [f64],
    t_end: f64,
    dt_max: f64,
    ghosts: impl Fn(&mut [f64]),
    source: impl Fn(f64, &mut [f64]),
) {
    let steps = (t_end / dt_max).ceil() as usize;
    let dt = t_end / steps as f64;
    let mut du = vec![0.0; u.len()];
    let mut f = vec![0.0; u.len()];
    for s in 0..steps {
        let t = s as f64 * dt;
        ghosts(u);
        op.apply(u, &mut du).unwrap();
        source(t, &mut f);
        for ((u, du), f) in u.iter_mut().zip(&du).zip(&f) {
            *u += dt * (du + f);
        }
    }
    ghosts(u);
}

#[test]
fn neumann_heat_equation_in_time_is_second_order() {
    // u = exp(−D k²π² t / L²) cos(kπx/L), no flux at both ends.
    let (l, k, d, t_end) = (1.0, 2.0, 0.5, 0.05);
    let (mut hs, mut errs) = (Vec::new(), Vec::new());
    for n in [16, 32, 64] {
        let (g, x) = line(n, l);
        let h = l / n as f64;
        let op = DiffusionOperator::new(&g, vec![d; n]).unwrap();
        let mut u: Vec<f64> = x.iter().map(|&x| (k * PI * x / l).cos()).collect();
        euler(&op, &mut u, t_end, 0.4 * h * h / d, |_| {}, |_, f| f.fill(0.0));
        let decay = (-d * (k * PI / l).powi(2) * t_end).exp();
        let exact: Vec<f64> = x.iter().map(|&x| decay * (k * PI * x / l).cos()).collect();
        hs.push(h);
        errs.push(max_abs_diff(&u, &exact));
    }
    assert_second_order("neumann heat", &hs, &errs);
}

/// A Dirichlet line on `[0, 1]`: `n` interior cells plus one ghost cell at each end
/// (centres `−h/2` and `1 + h/2`), all active. The ghost value is the odd reflection
/// `u_ghost = −u_boundary_cell`, which makes the linear interpolant vanish on the boundary
/// face (second-order cell-centred Dirichlet, LeVeque 2002 §7.1); only the interior rows of
/// the operator are used — the operator "restricted appropriately".
fn dirichlet_line(n: usize) -> (Grid, Vec<f64>, f64) {
    let h = 1.0 / n as f64;
    let g = Grid::full_2d([n + 2, 1], [h, 1.0]).unwrap();
    let x = (0..n + 2).map(|i| (i as f64 - 0.5) * h).collect();
    (g, x, h)
}

fn odd_ghosts(u: &mut [f64]) {
    let m = u.len();
    u[0] = -u[1];
    u[m - 1] = -u[m - 2];
}

#[test]
fn dirichlet_heat_mode_with_ghost_cells_is_second_order() {
    // u = exp(−D k²π² t) sin(kπx) on [0, 1].
    let (k, d, t_end) = (1.0, 1.0, 0.05);
    let (mut hs, mut e_op, mut e_time) = (Vec::new(), Vec::new(), Vec::new());
    for n in [16, 32, 64] {
        let (g, x, h) = dirichlet_line(n);
        let op = DiffusionOperator::new(&g, vec![d; n + 2]).unwrap();
        let mut u: Vec<f64> = x.iter().map(|&x| (k * PI * x).sin()).collect();
        odd_ghosts(&mut u);
        // Operator against the exact Laplacian on the interior cells.
        let mut au = vec![0.0; n + 2];
        op.apply(&u, &mut au).unwrap();
        let exact: Vec<f64> = u.iter().map(|u| -d * (k * PI).powi(2) * u).collect();
        e_op.push(max_abs_diff(&au[1..=n], &exact[1..=n]));
        // Time integration.
        euler(&op, &mut u, t_end, 0.4 * h * h / d, odd_ghosts, |_, f| f.fill(0.0));
        let decay = (-d * (k * PI).powi(2) * t_end).exp();
        let exact: Vec<f64> = x.iter().map(|&x| decay * (k * PI * x).sin()).collect();
        e_time.push(max_abs_diff(&u[1..=n], &exact[1..=n]));
        hs.push(h);
    }
    assert_second_order("dirichlet operator", &hs, &e_op);
    assert_second_order("dirichlet heat", &hs, &e_time);
}

#[test]
fn manufactured_heterogeneous_diffusion_is_second_order() {
    // D(x) = D0 (1 + a sin x), u = e^{−t} sin(πx); the source f makes u exact
    // (REFERENCES.md): f = e^{−t}[π² D0 (1 + a sin x) sin(πx) − π D0 a cos x cos(πx) − sin(πx)].
    let (d0, a, t_end) = (1.0, 0.5, 0.1);
    let dfun = |x: f64| d0 * (1.0 + a * x.sin());
    let div_d_grad = |t: f64, x: f64| {
        (-t).exp() * (d0 * a * x.cos() * PI * (PI * x).cos() - dfun(x) * PI * PI * (PI * x).sin())
    };
    let source = |t: f64, x: f64| {
        (-t).exp()
            * (PI * PI * dfun(x) * (PI * x).sin()
                - PI * d0 * a * x.cos() * (PI * x).cos()
                - (PI * x).sin())
    };
    let (mut hs, mut e_op, mut e_time) = (Vec::new(), Vec::new(), Vec::new());
    for n in [16, 32, 64, 128] {
        let (g, x, h) = dirichlet_line(n);
        // Face diffusivities are harmonic means of the cell values D(x_i), ghosts included.
        let dcell: Vec<f64> = x.iter().map(|&x| dfun(x)).collect();
        let d_max = dcell.iter().cloned().fold(0.0, f64::max);
        let op = DiffusionOperator::new(&g, dcell).unwrap();
        let mut u: Vec<f64> = x.iter().map(|&x| (PI * x).sin()).collect();
        odd_ghosts(&mut u);
        let mut au = vec![0.0; n + 2];
        op.apply(&u, &mut au).unwrap();
        let exact: Vec<f64> = x.iter().map(|&x| div_d_grad(0.0, x)).collect();
        e_op.push(max_abs_diff(&au[1..=n], &exact[1..=n]));
        let xs = x.clone();
        euler(&op, &mut u, t_end, 0.4 * h * h / d_max, odd_ghosts, |t, f| {
            for (f, &x) in f.iter_mut().zip(&xs) {
                *f = source(t, x);
            }
        });
        let exact: Vec<f64> = x.iter().map(|&x| (-t_end).exp() * (PI * x).sin()).collect();
        e_time.push(max_abs_diff(&u[1..=n], &exact[1..=n]));
        hs.push(h);
    }
    assert_second_order("heterogeneous operator", &hs, &e_op);
    assert_second_order("heterogeneous in time", &hs, &e_time);
}

#[test]
fn observed_order_fit_detects_first_order() {
    // The order estimator itself: errors ∝ h give slope 1, which the assertion rejects.
    let hs = [0.1, 0.05, 0.025];
    let errs: Vec<f64> = hs.iter().map(|h| 3.0 * h).collect();
    assert!((observed_order(&hs, &errs) - 1.0).abs() < 1e-12);
    let r = std::panic::catch_unwind(|| assert_second_order("first order", &hs, &errs));
    assert!(r.is_err());
}
