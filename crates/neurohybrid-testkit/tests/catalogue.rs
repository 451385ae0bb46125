//! Every catalogue system's derivatives against finite differences, exact solutions against
//! their ODE, and the colored Jacobian against the hand-written one.

use neurohybrid_system::{ColoredJacobian, Jacobian, Jvp, Vjp};
use neurohybrid_testkit::*;

/// Check JVP against central differences, VJP against JVP (dot-product identity), and the
/// Jacobian against JVPs with unit vectors.
fn check_derivatives<S: Vjp + Jvp + Jacobian>(name: &str, s: &S, t: f64, y: &[f64], p: &[f64]) {
    let (n, m) = (s.n_states(), s.n_params());
    let v_y: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * i as f64).collect();
    let v_p: Vec<f64> = (0..m).map(|k| -0.2 + 0.15 * k as f64).collect();
    let mut jv = vec![0.0; n];
    s.jvp(t, y, p, &v_y, &v_p, &mut jv);
    let eps = 1e-6;
    let shift = |sign: f64| -> Vec<f64> {
        let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + sign * eps * b).collect();
        let pp: Vec<f64> = p.iter().zip(&v_p).map(|(a, b)| a + sign * eps * b).collect();
        let mut f = vec![0.0; n];
        s.rhs(t, &yy, &pp, &mut f);
        f
    };
    let (fp, fm) = (shift(1.0), shift(-1.0));
    for i in 0..n {
        let fd = (fp[i] - fm[i]) / (2.0 * eps);
        let scale = 1.0 + fd.abs();
        assert!((fd - jv[i]).abs() < 1e-5 * scale, "{name}: jvp[{i}] {} vs fd {fd}", jv[i]);
    }
    let w: Vec<f64> = (0..n).map(|i| 1.0 - 0.25 * i as f64).collect();
    let (mut w_y, mut w_p) = (vec![0.0; n], vec![0.0; m]);
    s.vjp(t, y, p, &w, &mut w_y, &mut w_p);
    let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
    let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
        + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
    assert!(
        (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
        "{name}: <w, Jv> {lhs} vs <Jᵀw, v> {rhs}"
    );
    let mut jac = s.jacobian_matrix();
    s.jacobian(t, y, p, &mut jac);
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        e.fill(0.0);
        e[j] = 1.0;
        s.jvp(t, y, p, &e, &[], &mut col);
        for (i, &c) in col.iter().enumerate() {
            let entry = jac.get_entry(i, j).map_or(0.0, |v| v.into_value());
            assert!((entry - c).abs() < 1e-9 * (1.0 + c.abs()), "{name}: J[{i},{j}]");
        }
    }
}

#[test]
fn derivatives_of_every_system() {
    let rp = exponential_decay();
    check_derivatives(rp.name, &rp.system, 0.3, &[0.7], &rp.p);
    let rp = harmonic_oscillator();
    check_derivatives(rp.name, &rp.system, 0.3, &[0.7, -0.2], &[1.3]);
    let rp = logistic();
    check_derivatives(rp.name, &rp.system, 0.3, &[0.4], &[1.7]);
    let rp = lotka_volterra();
    check_derivatives(rp.name, &rp.system, 0.3, &[1.2, 0.8], &rp.p);
    let rp = robertson();
    check_derivatives(rp.name, &rp.system, 0.3, &[0.9, 1e-3, 0.1], &rp.p);
    let rp = van_der_pol_stiff();
    check_derivatives(rp.name, &rp.system, 0.3, &[1.5, -0.4], &[5.0]);
    let rp = fisher_wave(12);
    let y: Vec<f64> = (0..12).map(|i| 0.5 + 0.3 * (i as f64).sin()).collect();
    check_derivatives(rp.name, &rp.system, 0.3, &y, &rp.p);
}

/// `d/dt exact(t) = f(t, exact(t))` by central differences.
fn check_exact<S: ExactSolution>(rp: &RefProblem<S>) {
    let n = rp.system.n_states();
    let (mut a, mut b, mut y, mut f) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for &t in &[0.0, 0.7, rp.t_span.1] {
        let eps = 1e-5;
        rp.exact(t + eps, &mut a);
        rp.exact(t - eps, &mut b);
        rp.exact(t, &mut y);
        rp.system.rhs(t, &y, &rp.p, &mut f);
        for i in 0..n {
            let fd = (a[i] - b[i]) / (2.0 * eps);
            assert!((fd - f[i]).abs() < 1e-8, "{}: t={t} component {i}", rp.name);
        }
    }
    rp.exact(rp.t_span.0, &mut y);
    assert_eq!(y, rp.y0, "{}: exact(t0) = y0", rp.name);
    assert_eq!(rp.final_reference().len(), n);
}

#[test]
fn exact_solutions_solve_their_odes() {
    check_exact(&exponential_decay());
    check_exact(&harmonic_oscillator());
    check_exact(&logistic());
}

#[test]
fn fisher_wave_solves_the_pde_and_colored_jacobian_matches() {
    // The wave satisfies u_t = D u_xx + r u(1−u): check by differences at one point.
    let p = [1.0, 1.0];
    let (x, t, e) = (2.0, 1.0, 1e-4);
    let u = |x: f64, t: f64| FisherWave::wave(&p, x, t);
    let ut = (u(x, t + e) - u(x, t - e)) / (2.0 * e);
    let uxx = (u(x + e, t) - 2.0 * u(x, t) + u(x - e, t)) / (e * e);
    assert!((ut - (uxx + u(x, t) * (1.0 - u(x, t)))).abs() < 1e-5);

    let rp = fisher_wave(30);
    let colored = ColoredJacobian::new(rp.system.clone(), rp.system.sparsity().clone()).unwrap();
    assert_eq!(colored.n_colors(), 3);
    let (mut j1, mut j2) = (rp.system.jacobian_matrix(), colored.jacobian_matrix());
    rp.system.jacobian(0.5, &rp.y0, &rp.p, &mut j1);
    colored.jacobian(0.5, &rp.y0, &rp.p, &mut j2);
    for (a, b) in j1.values().iter().zip(j2.values()) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn stiff_references_are_conserving() {
    // Robertson conserves y1 + y2 + y3 = 1: the tabulated references must too.
    for r in &robertson().reference {
        let s: f64 = r.y.iter().sum();
        assert!((s - 1.0).abs() < 1e-12, "t = {}", r.t);
    }
    assert_eq!(van_der_pol_stiff().final_reference().len(), 2);
}
