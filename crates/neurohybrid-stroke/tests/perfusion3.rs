//! The three-compartment (arteriole / capillary / venule) perfusion solver: manufactured-
//! solution convergence, flux balance, adjoint gradients against finite differences — the
//! tests of the single compartment (`tests/perfusion.rs`), for `Darcy3`.

use std::f64::consts::PI;

use neurohybrid_mesh::{Grid, Phantom};
use neurohybrid_stroke::darcy::{Darcy3, Darcy3Fields};

/// `c0 + amp cos(mπx/L) cos(nπy/L)` and its gradient and Laplacian (zero normal derivative
/// on the boundary of `[0, L]²`: the no-flux condition of every compartment).
fn mode(c0: f64, amp: f64, m: f64, n: f64, l: f64, x: f64, y: f64) -> (f64, [f64; 2], f64) {
    let (a, b) = (m * PI / l, n * PI / l);
    let (cx, sx, cy, sy) = ((a * x).cos(), (a * x).sin(), (b * y).cos(), (b * y).sin());
    (c0 + amp * cx * cy, [-amp * a * sx * cy, -amp * b * cx * sy], -amp * (a * a + b * b) * cx * cy)
}

/// Max-norm error over the three pressures on an `n × n` grid for heterogeneous K and β.
fn manufactured_error(n: usize) -> f64 {
    let l = 10.0;
    let h = l / n as f64;
    let g = Grid::full_2d([n, n], [h, h]).unwrap();
    let a = PI / l;
    let p_out = 0.2;
    let cells = n * n;
    let mut k = [vec![0.0; cells], vec![0.0; cells], vec![0.0; cells]];
    let (mut bac, mut bcv, mut bout) = (vec![0.0; cells], vec![0.0; cells], vec![0.0; cells]);
    let (mut f, mut exact) = (vec![0.0; 3 * cells], vec![0.0; 3 * cells]);
    for j in 0..n {
        for i in 0..n {
            let c = j * n + i;
            let (x, y) = ((i as f64 + 0.5) * h, (j as f64 + 0.5) * h);
            let ps = [
                mode(3.0, 1.0, 1.0, 1.0, l, x, y),
                mode(2.0, 0.5, 2.0, 1.0, l, x, y),
                mode(1.0, 0.3, 1.0, 2.0, l, x, y),
            ];
            // K_a = 1 + ½ sin sin, K_c = 0.5 + 0.2 x/L, K_v = 0.8.
            let ks = [
                (
                    1.0 + 0.5 * (a * x).sin() * (a * y).sin(),
                    [
                        0.5 * a * (a * x).cos() * (a * y).sin(),
                        0.5 * a * (a * x).sin() * (a * y).cos(),
                    ],
                ),
                (0.5 + 0.2 * x / l, [0.2 / l, 0.0]),
                (0.8, [0.0, 0.0]),
            ];
            let (ac, cv, out) = (0.5 + x / l, 0.7 + 0.3 * y / l, 0.4 + 0.2 * x * y / (l * l));
            let (pa, pc, pv) = (ps[0].0, ps[1].0, ps[2].0);
            let coupling = [
                ac * (pa - pc),
                ac * (pc - pa) + cv * (pc - pv),
                cv * (pv - pc) + out * (pv - p_out),
            ];
            for comp in 0..3 {
                let (kk, gk) = ks[comp];
                let (p, gp, lap) = ps[comp];
                // −∇·(K∇p) = −(K Δp + ∇K·∇p)
                f[comp * cells + c] = -(kk * lap + gk[0] * gp[0] + gk[1] * gp[1]) + coupling[comp];
                k[comp][c] = kk;
                exact[comp * cells + c] = p;
            }
            (bac[c], bcv[c], bout[c]) = (ac, cv, out);
        }
    }
    let fields = Darcy3Fields { k, beta_ac: bac, beta_cv: bcv, beta_out: bout, p_out };
    let s = Darcy3::new(&g, fields).unwrap().solve(&f).unwrap();
    s.p.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
}

#[test]
fn second_order_on_a_manufactured_solution() {
    let errs: Vec<f64> = [16, 32, 64].iter().map(|&n| manufactured_error(n)).collect();
    let orders: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    eprintln!("three-compartment manufactured errors {errs:?}, observed orders {orders:?}");
    for o in orders {
        assert!((o - 2.0).abs() < 0.1, "observed order {o}");
    }
}

fn phantom_fields(grid: &Grid, tissue: &[f64]) -> Darcy3Fields {
    let n = grid.n_active();
    Darcy3Fields {
        k: [vec![4.0; n], vec![0.5; n], vec![3.0; n]],
        beta_ac: tissue.iter().map(|t| 0.1 + 0.9 * t).collect(),
        beta_cv: vec![0.8; n],
        beta_out: tissue.iter().map(|t| 0.05 + 0.5 * t).collect(),
        p_out: 0.0,
    }
}

#[test]
fn inflow_equals_perfusion_and_drainage() {
    let ph = Phantom::new_2d(40, 48, 4.0).unwrap();
    let grid = ph.grid();
    let n = grid.n_active();
    let tissue: Vec<f64> = (0..n).map(|a| ph.tissue().wm()[a] + ph.tissue().gm()[a]).collect();
    let mut d = Darcy3::new(grid, phantom_fields(grid, &tissue)).unwrap();
    // Arterial inflow only in the first half of the cells (an occluded other half).
    let f_a: Vec<f64> = (0..n).map(|a| if a < n / 2 { 60.0 * tissue[a] } else { 0.0 }).collect();
    let mut f = f_a.clone();
    f.extend(vec![0.0; 2 * n]);
    let s = d.solve(&f).unwrap();
    let imbalance = s.flux_imbalance(&f_a);
    eprintln!("three-compartment flux imbalance {imbalance:.2e}");
    assert!(imbalance < 1e-10);
    assert!(s.cbf.iter().sum::<f64>() > 0.0);
}

#[test]
fn adjoint_gradients_match_finite_differences() {
    let g = Grid::full_2d([6, 5], [2.0, 2.0]).unwrap();
    let n = 30;
    let wave = |k: usize, s: f64| 1.0 + 0.4 * ((k as f64) * s).sin();
    let base = Darcy3Fields {
        k: [
            (0..n).map(|i| 2.0 * wave(i, 0.7)).collect(),
            (0..n).map(|i| 0.5 * wave(i, 1.3)).collect(),
            (0..n).map(|i| 1.5 * wave(i, 2.1)).collect(),
        ],
        beta_ac: (0..n).map(|i| 0.6 * wave(i, 0.9)).collect(),
        beta_cv: (0..n).map(|i| 0.8 * wave(i, 1.7)).collect(),
        beta_out: (0..n).map(|i| 0.3 * wave(i, 0.4)).collect(),
        p_out: 0.5,
    };
    let mut f = vec![0.0; 3 * n];
    for (i, x) in f.iter_mut().take(n).enumerate() {
        *x = 10.0 * wave(i, 0.3) * if i % 6 < 3 { 1.0 } else { 0.2 };
    }
    let w: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).cos()).collect();
    let objective = |fields: &Darcy3Fields, f: &[f64]| -> f64 {
        let s = Darcy3::new(&g, fields.clone()).unwrap().solve(f).unwrap();
        s.cbf.iter().zip(&w).map(|(c, w)| 0.5 * w * c * c).sum()
    };
    let mut d = Darcy3::new(&g, base.clone()).unwrap();
    let s = d.solve(&f).unwrap();
    let dj: Vec<f64> = s.cbf.iter().zip(&w).map(|(c, w)| w * c).collect();
    let grad = d.adjoint(&s, &dj).unwrap();
    let mut worst = 0.0f64;
    let mut check = |name: &str, analytic: f64, perturb: &dyn Fn(f64) -> f64, x: f64| {
        // Relative step 1e-4: the central difference's truncation (~1e-8 relative) is below its
        // round-off at 1e-6 steps (J ~ 10², measured 3.6e-6 of noise there).
        let e = 1e-4 * x.abs().max(1e-3);
        let fd = (perturb(e) - perturb(-e)) / (2.0 * e);
        let rel = (analytic - fd).abs() / fd.abs().max(1e-8);
        worst = worst.max(rel);
        assert!(rel < 1e-6, "{name}: adjoint {analytic} vs FD {fd} ({rel:.2e})");
    };
    for i in [0, 7, 14, 29] {
        for c in 0..3 {
            let p = |e: f64| {
                let mut fl = base.clone();
                fl.k[c][i] += e;
                objective(&fl, &f)
            };
            check("k", grad.d_k[c][i], &p, base.k[c][i]);
        }
        let p = |e: f64| {
            let mut fl = base.clone();
            fl.beta_ac[i] += e;
            objective(&fl, &f)
        };
        check("beta_ac", grad.d_beta_ac[i], &p, base.beta_ac[i]);
        let p = |e: f64| {
            let mut fl = base.clone();
            fl.beta_cv[i] += e;
            objective(&fl, &f)
        };
        check("beta_cv", grad.d_beta_cv[i], &p, base.beta_cv[i]);
        let p = |e: f64| {
            let mut fl = base.clone();
            fl.beta_out[i] += e;
            objective(&fl, &f)
        };
        check("beta_out", grad.d_beta_out[i], &p, base.beta_out[i]);
        let p = |e: f64| {
            let mut ff = f.clone();
            ff[i] += e;
            objective(&base, &ff)
        };
        check("f_a", grad.lambda[i], &p, f[i]);
    }
    eprintln!("three-compartment adjoint vs FD: worst relative {worst:.2e}");
}
