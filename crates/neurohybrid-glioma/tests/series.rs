//! The series hybrid (a pointwise network maps tissue features to the diffusivity field):
//! exact starting point, loss gradient against finite differences, and a fit to a patient
//! whose true white/gray diffusivity ratio differs from the plain model's `R`.

use neurohybrid_glioma::anatomy::Anatomy;
use neurohybrid_glioma::fit::fit_mechanistic;
use neurohybrid_glioma::hybrid::{
    TrainOptions, hybrid_series, predict_series, series_initial_params, series_mlp,
    series_seed_offset, train_series,
};
use neurohybrid_glioma::metrics::rmse;
use neurohybrid_glioma::model::{T_START, add_impulses, parts};
use neurohybrid_glioma::{Scenario, solve_at};
use neurohybrid_nn::{Init, initialize};
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, gradient};
use neurohybrid_solve::{ConstantStep, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, Sum};

const BASE: &str = r#"
[anatomy]
kind = "phantom"
dim = 2
shape = [24, 24]
spacing_mm = 8.0

[tumor]
d_w = 0.3
rho = 0.04
r = 10.0

[seed]
location_mm = [-30.0, -10.0]
radius_mm = 8.0

[scans]
days = [60.0, 100.0, 140.0, 200.0]
training = 2
"#;

fn base() -> Scenario {
    Scenario::from_toml_str(BASE).expect("the base scenario is valid")
}

#[test]
fn series_starts_as_the_mechanistic_model() {
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let theta = [0.3, 0.04, -30.0, -10.0];
    let sys = hybrid_series(&s, &anatomy, theta[0], 5).unwrap();
    let p = series_initial_params(&theta, 5, 3).unwrap();
    assert_eq!(p.len(), sys.n_params());
    let (diff, react) = parts(&s, &anatomy, None).unwrap();
    let mech = Sum::new(diff, react).unwrap();
    let n = anatomy.n();
    let y: Vec<f64> = (0..n).map(|i| 0.5 + 0.4 * ((i as f64) * 0.37).sin()).collect();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    sys.rhs(0.0, &y, &p, &mut a);
    mech.rhs(0.0, &y, &theta, &mut b);
    for (x, z) in a.iter().zip(&b) {
        assert!((x - z).abs() < 1e-12 * z.abs().max(1.0), "{x} vs {z}");
    }
    // The learned field is positive and, at the start, the plain model's D_w (p_wm + p_gm/R).
    let d = sys.mech_params(&p);
    for (i, (&di, (&w, &g))) in d.iter().zip(anatomy.wm.iter().zip(&anatomy.gm)).enumerate() {
        let d0 = 0.3 * (w + g / 10.0);
        assert!((di - d0).abs() < 1e-12, "cell {i}: {di} vs {d0}");
    }
}

#[test]
fn series_loss_gradient_matches_finite_differences() {
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let hidden = 4;
    let sys = hybrid_series(&s, &anatomy, 0.3, hidden).unwrap();
    let offset = series_seed_offset(&sys);
    // A nonzero network (every layer), then ρ and the seed.
    let mut p: Vec<f64> = initialize(&series_mlp(hidden).unwrap(), Init::GlorotUniform, 5)
        .into_iter()
        .map(|w| 0.5 * w)
        .collect();
    p.extend([0.04, -30.0, -10.0]);
    let days = vec![60.0, 120.0];
    let mut problem = Problem::new(sys, vec![0.0; anatomy.n()], p.clone(), (T_START, 120.0));
    add_impulses(&mut problem, &s, &anatomy, offset);
    let ctrl = ConstantStep::new(2.0);
    let save = SaveAt::Times(days.clone());
    let (targets, _, _) =
        solve_at(&s, &anatomy, None, &[0.2, 0.05, -25.0, -5.0], &days, &mut |_| {}).unwrap();
    let loss = SquaredMisfit::new(targets.concat());
    let adj = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    let value = |q: &[f64]| {
        let mut pr = problem.clone();
        pr.params_mut().copy_from_slice(q);
        let sol = solve(&pr, &Tsit5, &ctrl, &save).unwrap();
        sol.ys().iter().zip(loss.targets()).map(|(y, t)| (y - t).powi(2)).sum::<f64>()
    };
    let m = p.len();
    // First-layer weights, a hidden bias, the output layer, ρ and both seed coordinates.
    for j in [0, 1, 9, m - 5, m - 4, m - 3, m - 2, m - 1] {
        let h = 1e-5 * p[j].abs().max(1.0);
        let (mut a, mut b) = (p.clone(), p.clone());
        a[j] += h;
        b[j] -= h;
        let fd = (value(&a) - value(&b)) / (2.0 * h);
        let rel = (adj.dl_dp[j] - fd).abs() / fd.abs().max(1e-8);
        assert!(rel < 1e-5, "param {j}: adjoint {} vs FD {fd}", adj.dl_dp[j]);
    }
}

/// The truth's gray matter diffuses at `D_w / 2` (ratio 2); the models assume `R = 10`. The
/// calibrated plain model can only trade `D_w` against the wrong ratio; the series network
/// learns the tissue dependence and predicts the held-out scans better.
#[test]
fn series_fits_a_wrong_tissue_ratio_better_than_the_mechanistic_model() {
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let mut truth_s = s.clone();
    truth_s.tumor.r = 2.0;
    let theta_true = [0.3, 0.04, -30.0, -10.0];
    let days = s.scans.days.clone();
    let k = s.scans.training;
    let (truth, _, _) =
        solve_at(&truth_s, &anatomy, None, &theta_true, &days, &mut |_| {}).unwrap();
    let train = &truth[..k];
    let (cal, _) =
        fit_mechanistic(&s, &anatomy, &days[..k], train, &[0.25, 0.035, -28.0, -12.0], 30).unwrap();
    let (mech, _, _) = solve_at(&s, &anatomy, None, &cal.theta, &days, &mut |_| {}).unwrap();
    let opts = TrainOptions { iterations: 30, hidden: 6, learning_rate: 3e-2, seed: 7 };
    let (sys, trained) =
        train_series(&s, &anatomy, &cal.theta, &days[..k], train, &opts, &mut |_| {}).unwrap();
    let series = predict_series(&s, &anatomy, sys, &trained.params, &days).unwrap();
    let heldout = |pred: &[Vec<f64>]| {
        let e: Vec<f64> = (k..days.len()).map(|i| rmse(&pred[i], &truth[i])).collect();
        e.iter().sum::<f64>() / e.len() as f64
    };
    let (e_mech, e_series) = (heldout(&mech), heldout(&series));
    let first = trained.loss_curve[0];
    let best = trained.loss_curve.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!(
        "held-out RMSE: mechanistic {e_mech:.4}, series {e_series:.4}; training loss {first:.3e} → {best:.3e}"
    );
    assert!(best < 0.5 * first, "training loss {first} → {best}");
    assert!(e_series < 0.8 * e_mech, "series {e_series} vs mechanistic {e_mech}");
}
