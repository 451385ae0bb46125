//! Integration tests of the glioma crate: config validation (each named error), exactness of
//! the radiotherapy impulse, mass and positivity, gradients against finite differences,
//! metrics on known shapes, and the hybrid's starting point.

use std::path::PathBuf;

use neurohybrid_glioma::anatomy::Anatomy;
use neurohybrid_glioma::metrics::{dice, front_error, rmse, volume_error};
use neurohybrid_glioma::model::{PARAM_SEED, T_START, add_impulses, parts};
use neurohybrid_glioma::{GliomaError, Scenario, simulate, solve_at};
use neurohybrid_mesh::io::{NiftiImage, write_nifti};
use neurohybrid_mesh::{Grid, Phantom};
use neurohybrid_solve::sensitivity::{
    DiscreteAdjoint, ForwardSensitivity, SquaredMisfit, gradient,
};
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

[seed]
location_mm = [-30.0, -10.0]
radius_mm = 8.0

[scans]
days = [60.0, 120.0, 180.0]
"#;

fn base() -> Scenario {
    Scenario::from_toml_str(BASE).expect("the base scenario is valid")
}

#[test]
fn base_scenario_round_trips_through_toml() {
    let s = base();
    let back = Scenario::from_toml_str(&s.to_toml_string().unwrap()).unwrap();
    assert_eq!(s, back);
}

#[test]
fn unknown_key_is_a_parse_error_naming_it() {
    let text = BASE.replace("rho = 0.04", "rho = 0.04\nrhoo = 1.0");
    match Scenario::from_toml_str(&text) {
        Err(GliomaError::Parse { message, .. }) => assert!(message.contains("rhoo"), "{message}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text = BASE.replace("spacing_mm = 8.0", "spacing_mm = 8.0\ncolour = 1");
    assert!(matches!(Scenario::from_toml_str(&text), Err(GliomaError::Parse { .. })));
}

#[test]
fn negative_diffusivity_is_named() {
    let text = BASE.replace("d_w = 0.3", "d_w = -0.3");
    match Scenario::from_toml_str(&text) {
        Err(GliomaError::NegativeDiffusivity { name, value }) => {
            assert_eq!(name, "tumor.d_w");
            assert_eq!(value, -0.3);
        }
        other => panic!("expected NegativeDiffusivity, got {other:?}"),
    }
}

#[test]
fn seed_outside_the_brain_is_refused() {
    // Far outside the head.
    let text = BASE.replace("[-30.0, -10.0]", "[500.0, 0.0]");
    assert!(matches!(Scenario::from_toml_str(&text), Err(GliomaError::SeedOutsideBrain { .. })));
    // Inside the head but in a CSF-filled ventricle (centre at x = 0.16 a, y = 0.05 b of the
    // phantom; a = b = 0.4 · 64 · 3 mm).
    let a = 0.4 * 64.0 * 3.0;
    let text = BASE
        .replace("shape = [24, 24]", "shape = [64, 64]")
        .replace("spacing_mm = 8.0", "spacing_mm = 3.0")
        .replace("[-30.0, -10.0]", &format!("[{:.3}, {:.3}]", 0.16 * a, 0.05 * a));
    match Scenario::from_toml_str(&text) {
        Err(GliomaError::SeedOutsideBrain { reason, .. }) => {
            assert!(reason.contains("fluid"), "{reason}")
        }
        other => panic!("expected SeedOutsideBrain, got {other:?}"),
    }
}

#[test]
fn other_bad_numbers_are_named() {
    let text = BASE.replace("rho = 0.04", "rho = 0.0");
    assert!(matches!(
        Scenario::from_toml_str(&text),
        Err(GliomaError::InvalidValue { name, .. }) if name == "tumor.rho"
    ));
    let text = BASE.replace("days = [60.0, 120.0, 180.0]", "days = [60.0, 50.0]");
    assert!(matches!(Scenario::from_toml_str(&text), Err(GliomaError::Invalid(_))));
}

fn nifti_scenario(dir: &std::path::Path, wm: &str, gm: &str, csf: &str) -> String {
    format!(
        "[anatomy]\nkind = \"nifti\"\nwm = \"{}\"\ngm = \"{}\"\ncsf = \"{}\"\n{}",
        dir.join(wm).display(),
        dir.join(gm).display(),
        dir.join(csf).display(),
        &BASE[BASE.find("[tumor]").unwrap()..]
    )
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("neurohybrid-glioma-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_map_file_is_named() {
    let dir = temp_dir("missing");
    let text = nifti_scenario(&dir, "wm.nii", "gm.nii", "csf.nii");
    match Scenario::from_toml_str(&text) {
        Err(GliomaError::MissingFile { path, what }) => {
            assert!(path.ends_with("wm.nii"));
            assert_eq!(what, "white-matter map");
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
    match Scenario::from_path(dir.join("nope.toml")) {
        Err(GliomaError::MissingFile { what, .. }) => assert_eq!(what, "scenario"),
        other => panic!("expected MissingFile, got {other:?}"),
    }
}

#[test]
fn tissue_maps_of_different_shapes_are_refused() {
    let dir = temp_dir("shapes");
    let write = |name: &str, shape: [usize; 3], value: f64| {
        let grid = Grid::full_3d(shape, [8.0; 3]).unwrap();
        let img = NiftiImage::from_grid_field(&grid, &vec![value; grid.n_active()], 0.0).unwrap();
        write_nifti(dir.join(name), &img).unwrap();
    };
    write("wm.nii", [10, 10, 10], 0.5);
    write("gm.nii", [10, 12, 10], 0.3);
    write("csf.nii", [10, 10, 10], 0.1);
    let text = nifti_scenario(&dir, "wm.nii", "gm.nii", "csf.nii");
    match Scenario::from_toml_str(&text) {
        Err(GliomaError::TissueShapeMismatch { first_shape, second_shape, second, .. }) => {
            assert_eq!(first_shape, vec![10, 10, 10]);
            assert_eq!(second_shape, vec![10, 12, 10]);
            assert!(second.ends_with("gm.nii"));
        }
        other => panic!("expected TissueShapeMismatch, got {other:?}"),
    }
}

/// Uniform density on the phantom: diffusion of a constant field is exactly 0 (no flux), so
/// the model is the logistic ODE, and each radiotherapy fraction multiplies by
/// `S = exp(−αd − βd²)`; the exact solution is piecewise logistic.
#[test]
fn radiotherapy_fractions_are_exact_lq_impulses() {
    let text = format!(
        "{BASE}\n[radiotherapy]\nstart_day = 20.0\nfractions = 5\ndose_gy = 2.0\nweekdays_only = false\n"
    );
    let s = Scenario::from_toml_str(&text).unwrap();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let (diff, react) = parts(&s, &anatomy, None).unwrap();
    let sys = Sum::new(diff, react).unwrap();
    let n = anatomy.n();
    let c0 = 0.3;
    let rt = s.radiotherapy.clone().unwrap();
    let sf = rt.surviving_fraction();
    assert!((sf - (-0.12f64 * 2.0 - 0.015 * 4.0).exp()).abs() < 1e-15);
    let mut problem = Problem::new(sys, vec![c0; n], vec![0.3, 0.04, 0.0, 0.0], (0.0, 40.0));
    for (t, m) in neurohybrid_glioma::model::treatment_impulses(&s) {
        problem.push_impulse(t, m);
    }
    let ctrl = neurohybrid_solve::PiController::new(1e-10, 1e-12);
    let sol = solve(&problem, &Tsit5, &ctrl, &SaveAt::Times(vec![19.0, 22.5, 40.0])).unwrap();
    assert!(sol.is_success());
    let logistic = |c: f64, t: f64| 1.0 / (1.0 + (1.0 / c - 1.0) * (-0.04 * t).exp());
    let mut c = c0;
    let mut t = 0.0;
    let mut expect = Vec::new();
    for (save, fractions_before) in [(19.0, 0usize), (22.5, 3), (40.0, 5)] {
        let done: Vec<f64> =
            rt.fraction_days().into_iter().take(fractions_before).filter(|&d| d > t).collect();
        for d in done {
            c = logistic(c, d - t) * sf;
            t = d;
        }
        expect.push(logistic(c, save - t));
        c = logistic(c, save - t);
        t = save;
    }
    for (k, e) in expect.iter().enumerate() {
        for &v in sol.y(k) {
            assert!((v - e).abs() < 1e-8, "scan {k}: {v} vs exact {e}");
        }
    }
}

/// The diffusion conserves mass (Σ V dc/dt = 0 for the diffusion part), the reaction only
/// adds mass, and the density stays in [0, 1].
#[test]
fn mass_and_positivity() {
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let (diff, _) = parts(&s, &anatomy, None).unwrap();
    let n = anatomy.n();
    let c: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 / 11.0).collect();
    let mut dc = vec![0.0; n];
    diff.rhs(0.0, &c, &[0.3], &mut dc);
    let total: f64 = dc.iter().sum();
    let scale: f64 = dc.iter().map(|x| x.abs()).sum();
    assert!(total.abs() < 1e-12 * scale, "diffusion changed the mass by {total}");

    let (states, _, _) =
        solve_at(&s, &anatomy, None, &[0.3, 0.04, -30.0, -10.0], &s.scans.days, &mut |_| {})
            .unwrap();
    let mass: Vec<f64> = states.iter().map(|c| c.iter().sum()).collect();
    assert!(mass.windows(2).all(|w| w[1] > w[0]), "logistic growth adds mass: {mass:?}");
    for c in &states {
        assert!(c.iter().all(|&v| (-1e-6..=1.0 + 1e-6).contains(&v)));
    }
}

/// The gradient of the misfit loss w.r.t. `[D_w, ρ, x_s, y_s]` by the discrete adjoint and by
/// forward sensitivities (through the seed impulse) against central finite differences of the
/// same fixed-step discretization.
#[test]
fn mechanistic_loss_gradient_matches_finite_differences() {
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let (diff, react) = parts(&s, &anatomy, None).unwrap();
    let sys = Sum::new(diff, react).unwrap();
    let n = anatomy.n();
    let p0 = vec![0.3, 0.04, -30.0, -10.0];
    let days = vec![60.0, 120.0];
    let mut problem = Problem::new(sys, vec![0.0; n], p0.clone(), (T_START, 120.0));
    add_impulses(&mut problem, &s, &anatomy, PARAM_SEED);
    let ctrl = ConstantStep::new(2.0);
    let save = SaveAt::Times(days.clone());
    // Targets: a different tumour.
    let (targets, _, _) =
        solve_at(&s, &anatomy, None, &[0.2, 0.05, -25.0, -5.0], &days, &mut |_| {}).unwrap();
    let loss = SquaredMisfit::new(targets.concat());
    let adj = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    let fwd =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::params()).unwrap();
    let value = |p: &[f64]| {
        let mut q = problem.clone();
        q.params_mut().copy_from_slice(p);
        let sol = solve(&q, &Tsit5, &ctrl, &save).unwrap();
        sol.ys().iter().zip(loss.targets()).map(|(y, t)| (y - t).powi(2)).sum::<f64>()
    };
    for j in 0..4 {
        let h = 1e-5 * p0[j].abs().max(1.0);
        let (mut a, mut b) = (p0.clone(), p0.clone());
        a[j] += h;
        b[j] -= h;
        let fd = (value(&a) - value(&b)) / (2.0 * h);
        let rel = |g: f64| (g - fd).abs() / fd.abs().max(1e-8);
        assert!(rel(adj.dl_dp[j]) < 1e-5, "param {j}: adjoint {} vs FD {fd}", adj.dl_dp[j]);
        assert!(rel(fwd.dl_dp[j]) < 1e-5, "param {j}: forward {} vs FD {fd}", fwd.dl_dp[j]);
    }
}

/// Dice, volume error, RMSE and front error on discs of known radii on a full grid.
#[test]
fn metrics_on_known_shapes() {
    let ph = Phantom::new_2d(64, 64, 1.0).unwrap();
    let (grid, _) = ph.into_parts();
    let full =
        Grid::full_2d([64, 64], [1.0, 1.0]).unwrap().with_origin([-31.5, -31.5, 0.0]).unwrap();
    let tissue =
        neurohybrid_mesh::TissueMaps::new(vec![1.0; 4096], vec![0.0; 4096], vec![0.0; 4096])
            .unwrap();
    let anatomy = Anatomy::from_parts(full, tissue).unwrap();
    let _ = grid;
    let centres = anatomy.centres();
    let disc = |r: f64, cx: f64| -> Vec<bool> {
        centres.iter().map(|c| (c[0] - cx).powi(2) + c[1].powi(2) <= r * r).collect()
    };
    let (a, b) = (disc(10.0, 0.0), disc(10.0, 0.0));
    assert_eq!(dice(&a, &b), 1.0);
    assert_eq!(volume_error(&a, &b), 0.0);
    assert_eq!(front_error(&anatomy, &a, &b), 0.0);
    let far = disc(5.0, 25.0);
    assert_eq!(dice(&disc(5.0, -20.0), &far), 0.0);
    assert_eq!(dice(&[false; 4], &[false; 4]), 1.0);
    // Concentric discs of radii 8 and 12: Dice = 2·64/(64 + 144), volume error 144/64 − 1,
    // front error ≈ 4 mm (up to the voxel staircase).
    let (small, big) = (disc(8.0, 0.0), disc(12.0, 0.0));
    let count = |m: &[bool]| m.iter().filter(|&&x| x).count() as f64;
    assert!(
        (dice(&small, &big) - 2.0 * count(&small) / (count(&small) + count(&big))).abs() < 1e-15
    );
    assert!((dice(&small, &big) - 2.0 * 64.0 / 208.0).abs() < 0.03);
    assert!((volume_error(&big, &small) - (count(&big) / count(&small) - 1.0)).abs() < 1e-15);
    let fe = front_error(&anatomy, &small, &big);
    assert!((fe - 4.0).abs() < 0.6, "front error {fe}");
    assert_eq!(rmse(&[0.0, 0.0], &[3.0, 4.0]), (12.5f64).sqrt());
}

#[test]
fn simulate_reports_growth_and_segmentations() {
    let sim = simulate(&base(), &mut |_| {}).unwrap();
    assert_eq!(sim.density.len(), 3);
    assert!(sim.tumor_volume_ml.windows(2).all(|w| w[1] > w[0]));
    let n_box = sim.grid.shape.iter().product::<usize>();
    assert!(sim.segmentation.iter().all(|s| s.len() == n_box));
    assert!(sim.segmentation[2].contains(&2), "an enhancing core by day 180");
}

/// The hybrid with a zero output layer is exactly the mechanistic model, and its VJP is the
/// transpose of its JVP (`⟨w, J v⟩ = ⟨Jᵀ w, v⟩` in state and parameters), gate included.
#[test]
fn hybrid_starts_as_the_mechanistic_model_with_consistent_derivatives() {
    use neurohybrid_glioma::hybrid::{hybrid_parallel, residual_mlp};
    use neurohybrid_nn::{Init, initialize};
    use neurohybrid_system::{Jvp, Vjp};
    let s = base();
    let anatomy = Anatomy::build(&s.anatomy).unwrap();
    let hyb = hybrid_parallel(&s, &anatomy, 6).unwrap();
    let (diff, react) = parts(&s, &anatomy, None).unwrap();
    let mech = Sum::new(diff, react).unwrap();
    let n = anatomy.n();
    let net = residual_mlp(6).unwrap();
    let mut w = initialize(&net, Init::GlorotUniform, 3);
    let theta = [0.3, 0.04, -30.0, -10.0];
    let y: Vec<f64> = (0..n).map(|i| 0.5 + 0.4 * ((i as f64) * 0.37).sin()).collect();
    // Zero output layer → identical right-hand sides.
    let mut w0 = w.clone();
    let blocks = neurohybrid_nn::Layer::param_blocks(&net);
    for b in &blocks[blocks.len() - 2..] {
        w0[b.range()].fill(0.0);
    }
    let p0: Vec<f64> = theta.iter().copied().chain(w0).collect();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    hyb.rhs(0.0, &y, &p0, &mut a);
    mech.rhs(0.0, &y, &theta, &mut b);
    assert_eq!(a, b);
    // Dot-product test with a nonzero network.
    w.iter_mut().for_each(|x| *x *= 0.5);
    let p: Vec<f64> = theta.iter().copied().chain(w).collect();
    let m = p.len();
    let v_y: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
    let v_p: Vec<f64> = (0..m).map(|j| ((j * 3) % 7) as f64 * 0.1 - 0.3).collect();
    let wv: Vec<f64> = (0..n).map(|i| ((i * 11) % 3) as f64 - 1.0).collect();
    let mut jv = vec![0.0; n];
    hyb.jvp(0.0, &y, &p, &v_y, &v_p, &mut jv);
    let (mut w_y, mut w_p) = (vec![0.0; n], vec![0.0; m]);
    hyb.vjp(0.0, &y, &p, &wv, &mut w_y, &mut w_p);
    let lhs: f64 = wv.iter().zip(&jv).map(|(a, b)| a * b).sum();
    let rhs: f64 = w_y.iter().zip(&v_y).map(|(a, b)| a * b).sum::<f64>()
        + w_p.iter().zip(&v_p).map(|(a, b)| a * b).sum::<f64>();
    assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
}
