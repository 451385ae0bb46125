//! The derivative of the outputs w.r.t. the onset-to-reperfusion time `T` (the switch time of
//! the right-hand side) against central finite differences of the same discrete solve.
//!
//! The solve uses constant steps of `h = 1/256` h with `T` half-way between two step
//! boundaries and `δ = 10⁻⁴ < h/2`: the step sequence of both phases is then the same at
//! `T ± δ` (only the two shortened steps change length), so the computed solution is a smooth
//! function of `T` and its difference quotient is meaningful. (With the adaptive controller a
//! step-size decision can flip between `T − δ` and `T + δ`.) The analytic value is
//! `λ⁺ᵀ (f_occluded − f_reperfused)` at `y(T)` with the discrete adjoint's `λ⁺`; it differs
//! from the derivative of the discrete map by the integration error only (`O(h⁵)` for Tsit5).

use neurohybrid_solve::ConstantStep;
use neurohybrid_stroke::anatomy::OccludedPerfusion;
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::patient::MechanisticModel;
use neurohybrid_stroke::perfusion::Territory;
use neurohybrid_stroke::sim::treatment_time_gradient;

fn model() -> MechanisticModel {
    // Four voxels: core, deep penumbra, shallow penumbra, oligemia.
    let perf = OccludedPerfusion {
        territory: Territory::LeftMca,
        p_normal: vec![60.0, 55.0, 45.0, 50.0],
        p_zero: vec![3.0, 8.0, 12.0, 20.0],
        weight: vec![1.0; 4],
    };
    MechanisticModel::new(&perf, FateConstants::default(), 0.2).unwrap()
}

const H: f64 = 1.0 / 256.0;

#[test]
fn treatment_time_derivative_matches_finite_differences() {
    let m = model();
    let p = [2.0, 1.0, 0.35];
    let n = 4;
    let y0 = vec![0.0; 2 * n];
    let ctrl = ConstantStep::new(H);
    let t_treat = 4.5 + 0.5 * H;
    // Final infarct (Σ D at 24 h) and a held-out-style misfit at 6 h and 24 h.
    let infarct = |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
        cot[..n].fill(0.0);
        cot[n..].fill(1.0);
        ys[n..].iter().sum::<f64>()
    };
    let target = [0.1, 0.2, 0.0, 0.0, 0.3, 0.2, 0.1, 0.0];
    let misfit = |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
        let mut v = 0.0;
        for (k, (c, y)) in cot.iter_mut().zip(ys).enumerate() {
            let r = y - target[k % (2 * n)];
            v += 0.5 * r * r;
            *c = r;
        }
        v
    };
    let cases: [(&str, &dyn neurohybrid_solve::sensitivity::Loss, Vec<f64>); 2] =
        [("infarct", &infarct, vec![24.0]), ("misfit", &misfit, vec![6.0, 24.0])];
    for (name, loss, times) in cases {
        let g = treatment_time_gradient(&m, &p, &y0, t_treat, &times, loss, &ctrl, true).unwrap();
        let at = |t: f64, p: &[f64]| {
            treatment_time_gradient(&m, p, &y0, t, &times, loss, &ctrl, false).unwrap().value
        };
        let d = 1e-4;
        let fd = (at(t_treat + d, &p) - at(t_treat - d, &p)) / (2.0 * d);
        let rel = (g.dl_dt - fd).abs() / fd.abs();
        eprintln!("{name}: dL/dT = {:.10e}, FD {fd:.10e}, relative {rel:.2e}", g.dl_dt);
        assert!(fd.abs() > 1e-3, "{name}: the delay must matter: {fd}");
        assert!(rel < 1e-6, "{name}: {} vs {fd} ({rel:.2e})", g.dl_dt);
        // dL/dp through both phases (the second adjoint over [0, T]).
        for j in 0..3 {
            let dp = 1e-5 * p[j];
            let (mut pp, mut pm) = (p, p);
            pp[j] += dp;
            pm[j] -= dp;
            let fd = (at(t_treat, &pp) - at(t_treat, &pm)) / (2.0 * dp);
            let rel = (g.dl_dp[j] - fd).abs() / fd.abs().max(1e-12);
            eprintln!("{name}: dL/dp{j} = {:.8e}, FD {fd:.8e}, relative {rel:.2e}", g.dl_dp[j]);
            assert!(rel < 1e-6, "{name} p{j}: {} vs {fd}", g.dl_dp[j]);
        }
    }
}

#[test]
fn calibration_losses_do_not_depend_on_the_treatment_time() {
    // Scans before T cannot see T: asking for them is an error, not a silent zero.
    let m = model();
    let r = treatment_time_gradient(
        &m,
        &[2.0, 1.0, 0.35],
        &[0.0; 8],
        4.5,
        &[1.5, 3.0],
        &|_: &[f64], _: &[f64], _: &mut [f64]| 0.0,
        &ConstantStep::new(H),
        false,
    );
    assert!(r.is_err());
}
