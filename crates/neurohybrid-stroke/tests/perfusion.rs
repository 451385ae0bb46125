//! The perfusion solver: manufactured-solution convergence, flux balance, adjoint gradients
//! against finite differences.

use std::f64::consts::PI;

use neurohybrid_mesh::{Grid, Phantom};
use neurohybrid_stroke::darcy::Darcy;
use neurohybrid_stroke::perfusion::{Occlusion, Perfusion, PerfusionParams, Territory};

/// `p = 2 + cos(πx/L) cos(πy/L)` on `[0, L]²` (zero normal derivative on the boundary, the
/// no-flux condition), `K = 1 + ½ sin(πx/L) sin(πy/L)`, `β = 0.5 + x/L`, `p_v = 0.3`;
/// returns the max-norm error of the cell-centred solution on an `n × n` grid.
fn manufactured_error(n: usize) -> f64 {
    let l = 10.0;
    let h = l / n as f64;
    let g = Grid::full_2d([n, n], [h, h]).unwrap();
    let a = PI / l;
    let (mut k, mut beta, mut f, mut exact) = (vec![], vec![], vec![], vec![]);
    let p_v = 0.3;
    for j in 0..n {
        for i in 0..n {
            let (x, y) = ((i as f64 + 0.5) * h, (j as f64 + 0.5) * h);
            let (cx, sx, cy, sy) = ((a * x).cos(), (a * x).sin(), (a * y).cos(), (a * y).sin());
            let p = 2.0 + cx * cy;
            let kk = 1.0 + 0.5 * sx * sy;
            let b = 0.5 + x / l;
            // ∇·(K∇p) = K Δp + ∇K·∇p
            let lap = -2.0 * a * a * cx * cy;
            let (kx, ky) = (0.5 * a * cx * sy, 0.5 * a * sx * cy);
            let (px, py) = (-a * sx * cy, -a * cx * sy);
            f.push(-(kk * lap + kx * px + ky * py) + b * (p - p_v));
            k.push(kk);
            beta.push(b);
            exact.push(p);
        }
    }
    let mut d = Darcy::new(&g, k, beta, p_v).unwrap();
    let s = d.solve(&f).unwrap();
    s.p.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn second_order_on_a_manufactured_solution() {
    let errs: Vec<f64> = [16, 32, 64].iter().map(|&n| manufactured_error(n)).collect();
    let orders: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    eprintln!("manufactured errors {errs:?}, observed orders {orders:?}");
    for o in orders {
        assert!((o - 2.0).abs() < 0.1, "observed order {o}");
    }
}

#[test]
fn inflow_equals_perfusion_integral() {
    let p = Phantom::new_2d(40, 48, 4.0).unwrap();
    let mut perf = Perfusion::new(p.grid(), p.tissue(), PerfusionParams::default()).unwrap();
    for occ in
        [None, Some(Occlusion { territory: Territory::RightMca, severity: 1.0, collateral: 0.2 })]
    {
        let f = perf.source(occ.as_ref()).unwrap();
        let s = perf.solve(occ.as_ref()).unwrap();
        let imbalance = s.flux_imbalance(&f);
        eprintln!("flux imbalance {imbalance:e}");
        assert!(imbalance < 1e-10);
    }
}

#[test]
fn occlusion_lowers_perfusion_in_its_territory_only() {
    let p = Phantom::new_2d(40, 48, 4.0).unwrap();
    let mut perf = Perfusion::new(p.grid(), p.tissue(), PerfusionParams::default()).unwrap();
    let healthy = perf.solve(None).unwrap();
    let occ = Occlusion { territory: Territory::LeftMca, severity: 1.0, collateral: 0.0 };
    let s = perf.solve(Some(&occ)).unwrap();
    let labels = perf.territory_labels();
    let tissue = perf.tissue().to_vec();
    let mean = |cbf: &[f64], t: Territory| {
        let (mut sum, mut n) = (0.0, 0.0);
        for i in 0..cbf.len() {
            if labels[i] == t && tissue[i] > 0.9 {
                sum += cbf[i];
                n += 1.0;
            }
        }
        sum / n
    };
    let (lh, lo) = (mean(&healthy.cbf, Territory::LeftMca), mean(&s.cbf, Territory::LeftMca));
    let (rh, ro) = (mean(&healthy.cbf, Territory::RightMca), mean(&s.cbf, Territory::RightMca));
    eprintln!("left MCA {lh:.1} → {lo:.1}, right MCA {rh:.1} → {ro:.1}");
    assert!(lh > 30.0 && lo < 0.35 * lh, "occluded territory keeps too much flow");
    assert!((ro - rh).abs() < 0.02 * rh, "contralateral territory changed");
}

/// J(CBF) = Σ w_i CBF_i² / 2 with fixed weights.
fn objective(cbf: &[f64], w: &[f64]) -> f64 {
    cbf.iter().zip(w).map(|(c, w)| 0.5 * w * c * c).sum()
}

#[test]
fn adjoint_gradients_match_finite_differences() {
    let p = Phantom::new_2d(24, 28, 6.0).unwrap();
    let (grid, tissue) = (p.grid(), p.tissue());
    let n = grid.n_active();
    let w: Vec<f64> = (0..n).map(|i| 1.0 + 0.5 * ((i as f64) * 0.37).sin()).collect();
    let occ = Occlusion { territory: Territory::RightAca, severity: 0.8, collateral: 0.3 };
    let params = PerfusionParams::default();
    let mut perf = Perfusion::new(grid, tissue, params).unwrap();
    let s = perf.solve(Some(&occ)).unwrap();
    let g_cbf: Vec<f64> = s.cbf.iter().zip(&w).map(|(c, w)| w * c).collect();
    let grad = perf.gradient(Some(&occ), &s, &g_cbf).unwrap();
    let j_of = |params: PerfusionParams, occ: Occlusion| {
        let mut perf = Perfusion::new(grid, tissue, params).unwrap();
        objective(&perf.solve(Some(&occ)).unwrap().cbf, &w)
    };
    let check = |name: &str, fd: f64, adj: f64| {
        let rel = (fd - adj).abs() / adj.abs().max(1e-12);
        eprintln!("{name}: adjoint {adj:.10e}, fd {fd:.10e}, rel {rel:.1e}");
        assert!(rel < 1e-6, "{name}: rel error {rel}");
    };
    // Scalars: central differences with a relative step.
    let fd = |f: &dyn Fn(f64) -> f64, x: f64| {
        let e = 1e-5 * x.abs().max(1e-3);
        (f(x + e) - f(x - e)) / (2.0 * e)
    };
    check("K", fd(&|k| j_of(PerfusionParams { k, ..params }, occ), params.k), grad.d_k);
    check(
        "beta_gm",
        fd(&|b| j_of(PerfusionParams { beta_gm: b, ..params }, occ), params.beta_gm),
        grad.d_beta_gm,
    );
    check("p_a", fd(&|x| j_of(PerfusionParams { p_a: x, ..params }, occ), params.p_a), grad.d_p_a);
    check(
        "severity",
        fd(&|x| j_of(params, Occlusion { severity: x, ..occ }), occ.severity),
        grad.d_severity,
    );
    check(
        "collateral",
        fd(&|x| j_of(params, Occlusion { collateral: x, ..occ }), occ.collateral),
        grad.d_collateral,
    );

    // Per-cell fields: perturb K_i and β_i directly in the Darcy problem (source fixed), with
    // J = ½ Σ w (CBF − CBF_ref)², CBF_ref = CBF − 1, so that J is O(n) and a per-cell
    // derivative stands well above the finite-difference round-off.
    let f = perf.source(Some(&occ)).unwrap();
    let darcy = perf.darcy();
    let (k0, b0, pv) = (darcy.k().to_vec(), darcy.beta().to_vec(), darcy.p_v());
    let reference: Vec<f64> = s.cbf.iter().map(|c| c - 1.0).collect();
    let local = |cbf: &[f64]| -> f64 {
        cbf.iter().zip(&reference).zip(&w).map(|((c, r), w)| 0.5 * w * (c - r) * (c - r)).sum()
    };
    let g_local: Vec<f64> = w.clone();
    let field = darcy.adjoint(&s, &g_local).unwrap();
    // The cells where K matters most (elsewhere dJ/dK_i is below the finite-difference noise
    // floor of a J of order 10⁵), plus one arbitrary cell for β.
    let mut by_k: Vec<usize> = (0..n).collect();
    by_k.sort_by(|&a, &b| field.d_k[b].abs().total_cmp(&field.d_k[a].abs()));
    for &i in by_k.iter().take(3).chain(&[n / 2]) {
        let jk = |x: f64| {
            let mut k = k0.clone();
            k[i] = x;
            local(&Darcy::new(grid, k, b0.clone(), pv).unwrap().solve(&f).unwrap().cbf)
        };
        if i != n / 2 {
            check("K_i", fd(&jk, k0[i]), field.d_k[i]);
        }
        let jb = |x: f64| {
            let mut b = b0.clone();
            b[i] = x;
            local(&Darcy::new(grid, k0.clone(), b, pv).unwrap().solve(&f).unwrap().cbf)
        };
        check("beta_i", fd(&jb, b0[i]), field.d_beta[i]);
    }
}
