//! Optimizers on standard test functions, and iterates against hand-written reference updates.

use neurohybrid_nn::optim::{
    Adam, AdamW, Lbfgs, LbfgsStatus, Optimizer, RmsProp, Schedule, Sgd, clip_grad_norm,
};

fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b) = (x[0], x[1]);
    g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
    g[1] = 200.0 * (b - a * a);
    (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
}

#[test]
fn lbfgs_solves_rosenbrock_to_1e_8_in_under_100_iterations() {
    let mut x = vec![-1.2, 1.0];
    let r = Lbfgs { grad_tol: 1e-10, ..Lbfgs::default() }.minimize(&mut x, rosenbrock).unwrap();
    assert_eq!(r.status, LbfgsStatus::GradTol, "{r:?}");
    assert!(r.iterations < 100, "{r:?}");
    assert!((x[0] - 1.0).abs() < 1e-8 && (x[1] - 1.0).abs() < 1e-8, "{x:?} {r:?}");
    assert!(r.value < 1e-16);
}

#[test]
fn lbfgs_on_an_ill_conditioned_quadratic_and_with_frozen_entries() {
    // f = Σ κ_i (x_i - i)² with condition number 1e4.
    let n = 20;
    let k: Vec<f64> = (0..n).map(|i| 10f64.powf(4.0 * i as f64 / (n - 1) as f64)).collect();
    let f = |x: &[f64], g: &mut [f64]| {
        let mut v = 0.0;
        for i in 0..x.len() {
            let d = x[i] - i as f64;
            g[i] = 2.0 * k[i] * d;
            v += k[i] * d * d;
        }
        v
    };
    let mut x = vec![0.0; n];
    let r = Lbfgs::default().minimize(&mut x, f).unwrap();
    assert!(r.status.is_success(), "{r:?}");
    assert!(x.iter().enumerate().all(|(i, &v)| (v - i as f64).abs() < 1e-8), "{x:?}");

    let mut y = vec![0.5; n];
    let r = Lbfgs::default().freeze(std::iter::once(0..5)).minimize(&mut y, f).unwrap();
    assert!(r.status.is_success(), "{r:?}");
    assert!(y[..5].iter().all(|&v| v == 0.5), "frozen entries moved: {:?}", &y[..5]);
    assert!((y[10] - 10.0).abs() < 1e-8);
}

#[test]
fn lbfgs_rejects_a_nonfinite_start_and_survives_nan_regions() {
    let mut x = vec![1.0];
    assert!(
        Lbfgs::default()
            .minimize(&mut x, |_, g| {
                g[0] = 0.0;
                f64::NAN
            })
            .is_err()
    );
    // f = -ln(x) + x, minimum at 1, undefined (NaN) for x ≤ 0: the line search must back off.
    let mut x = vec![0.05];
    let r = Lbfgs::default()
        .minimize(&mut x, |x, g| {
            g[0] = -1.0 / x[0] + 1.0;
            -x[0].ln() + x[0]
        })
        .unwrap();
    assert!(r.status.is_success(), "{r:?}");
    assert!((x[0] - 1.0).abs() < 1e-8, "{x:?}");
}

/// f(x) = x², gradient 2x.
fn grad(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| 2.0 * v).collect()
}

#[test]
fn adam_matches_reference_iterates_on_x_squared() {
    let (lr, b1, b2, eps) = (0.1, 0.9, 0.999, 1e-8);
    let adam = Adam::new(lr);
    let mut s = adam.init(1).unwrap();
    let mut x = vec![1.0];
    // Step 1 by hand: g = 2, m = 0.2, v = 0.004, m̂ = 2, v̂ = 4: x₁ = 1 − 0.1·2/(2 + 1e-8).
    {
        let g = grad(&x);
        adam.step(&mut s, &mut x, &g).unwrap();
    }
    assert!((x[0] - (1.0 - 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-15, "{}", x[0]);
    // Step 2 by hand: g = 2x₁, m = 0.9·0.2 + 0.1g, v = 0.999·0.004 + 0.001g².
    let x1 = x[0];
    let g = 2.0 * x1;
    let (m, v) = (0.9 * 0.2 + 0.1 * g, 0.999 * 0.004 + 0.001 * g * g);
    let x2 = x1 - lr * (m / (1.0 - 0.81)) / ((v / (1.0 - 0.999f64 * 0.999)).sqrt() + eps);
    {
        let g = grad(&x);
        adam.step(&mut s, &mut x, &g).unwrap();
    }
    assert!((x[0] - x2).abs() < 1e-15, "{} vs {x2}", x[0]);
    // 200 steps against the textbook form (Kingma & Ba 2015, Algorithm 1).
    let (mut xr, mut mr, mut vr) = (x2, m, v);
    for t in 3..=200 {
        let g = 2.0 * xr;
        mr = b1 * mr + (1.0 - b1) * g;
        vr = b2 * vr + (1.0 - b2) * g * g;
        let (mh, vh) = (mr / (1.0 - b1.powi(t)), vr / (1.0 - b2.powi(t)));
        xr -= lr * mh / (vh.sqrt() + eps);
        {
            let g = grad(&x);
            adam.step(&mut s, &mut x, &g).unwrap();
        }
        assert!((x[0] - xr).abs() < 1e-12, "step {t}: {} vs {xr}", x[0]);
    }
}

#[test]
fn adamw_decays_decoupled_from_the_gradient() {
    let (lr, wd) = (0.1, 0.5);
    let opt = AdamW::new(lr, wd);
    let mut s = opt.init(2).unwrap();
    let mut x = vec![1.0, 2.0];
    // Zero gradient: Adam's step is 0/(0+ε) = 0, so only the decay acts: x ← x(1 − lr·wd).
    opt.step(&mut s, &mut x, &[0.0, 0.0]).unwrap();
    assert_eq!(x, vec![0.95, 1.9]);
    // Adam with L2 (coupled) on the same zero gradient moves by the normalized step instead.
    let l2 = Adam::new(lr).with_weight_decay(wd);
    let mut s2 = l2.init(1).unwrap();
    let mut y = vec![1.0];
    l2.step(&mut s2, &mut y, &[0.0]).unwrap();
    assert!((y[0] - (1.0 - lr * 0.5 / (0.5 + 1e-8))).abs() < 1e-15, "{}", y[0]);
}

#[test]
fn rmsprop_matches_torch_semantics_on_x_squared() {
    // torch.optim.RMSprop(lr=1e-3) defaults: alpha 0.99, eps 1e-8 added after the sqrt.
    let (lr, alpha, eps) = (1e-3, 0.99, 1e-8);
    let opt = RmsProp::new(lr);
    let mut s = opt.init(1).unwrap();
    let mut x = vec![1.0];
    // Step 1 by hand: v = 0.01·4 = 0.04, avg = 0.2 + 1e-8, x₁ = 1 − 1e-3·2/(0.2 + 1e-8).
    {
        let g = grad(&x);
        opt.step(&mut s, &mut x, &g).unwrap();
    }
    assert!((x[0] - (1.0 - 1e-3 * 2.0 / (0.2 + 1e-8))).abs() < 1e-15, "{}", x[0]);
    let (mut xr, mut v) = (x[0], 0.04);
    for t in 2..=300 {
        let g = 2.0 * xr;
        v = alpha * v + (1.0 - alpha) * g * g;
        xr -= lr * g / (v.sqrt() + eps);
        {
            let g = grad(&x);
            opt.step(&mut s, &mut x, &g).unwrap();
        }
        assert!((x[0] - xr).abs() < 1e-12, "step {t}: {} vs {xr}", x[0]);
    }
    // Momentum and centered variants, first step by hand.
    let opt = RmsProp::new(1e-2).with_momentum(0.9).with_centered(true);
    let mut s = opt.init(1).unwrap();
    let mut x = vec![1.0];
    opt.step(&mut s, &mut x, &[2.0]).unwrap();
    // v = 0.04, ḡ = 0.02, avg = √(0.04 − 0.0004) + ε, b = 2/avg, x = 1 − 0.01 b.
    let avg = (0.04f64 - 0.0004).sqrt() + 1e-8;
    assert!((x[0] - (1.0 - 0.01 * (2.0 / avg))).abs() < 1e-15);
}

#[test]
fn sgd_momentum_and_nesterov_by_hand() {
    let opt = Sgd::new(0.1).with_momentum(0.9);
    let mut s = opt.init(1).unwrap();
    let mut x = vec![1.0];
    opt.step(&mut s, &mut x, &[2.0]).unwrap(); // b = 2, x = 0.8
    opt.step(&mut s, &mut x, &[1.0]).unwrap(); // b = 0.9·2 + 1 = 2.8, x = 0.52
    assert!((x[0] - 0.52).abs() < 1e-15, "{}", x[0]);
    let nag = Sgd::new(0.1).with_momentum(0.9).with_nesterov(true);
    let mut s = nag.init(1).unwrap();
    let mut y = vec![1.0];
    nag.step(&mut s, &mut y, &[2.0]).unwrap(); // b = 2, g = 2 + 1.8 = 3.8, y = 0.62
    assert!((y[0] - 0.62).abs() < 1e-15, "{}", y[0]);
    assert!(Sgd::new(0.1).with_nesterov(true).init(1).is_err(), "nesterov needs momentum");
}

#[test]
fn first_order_methods_minimize_rosenbrock_loosely() {
    // Not a race: each must make steady progress from the classic start.
    let mut x = vec![-1.2, 1.0];
    let mut g = vec![0.0; 2];
    let adam = Adam::new(2e-2);
    let mut s = adam.init(2).unwrap();
    for _ in 0..5000 {
        rosenbrock(&x, &mut g);
        adam.step(&mut s, &mut x, &g).unwrap();
    }
    assert!(rosenbrock(&x, &mut g) < 1e-3, "{x:?}");
}

#[test]
fn frozen_ranges_schedules_and_clipping() {
    let opt = Adam::new(0.1).freeze(std::iter::once(1..3));
    let mut s = opt.init(4).unwrap();
    let mut x = vec![1.0; 4];
    opt.step(&mut s, &mut x, &[1.0; 4]).unwrap();
    assert_eq!(&x[1..3], &[1.0, 1.0]);
    assert!(x[0] < 1.0 && x[3] < 1.0);
    assert_eq!(s.m[1], 0.0, "frozen state does not move");
    assert!(Adam::new(0.1).freeze(std::iter::once(3..9)).init(4).is_err());
    assert!(opt.step(&mut s, &mut x, &[1.0; 3]).is_err(), "gradient length is checked");

    let sgd = Sgd::new(1.0).with_schedule(Schedule::Step { step_size: 1, gamma: 0.5 });
    let mut s = sgd.init(1).unwrap();
    let mut x = vec![0.0];
    for _ in 0..3 {
        sgd.step(&mut s, &mut x, &[1.0]).unwrap();
    }
    assert_eq!(x[0], -(1.0 + 0.5 + 0.25));

    let mut g = vec![30.0, 40.0];
    let norm = clip_grad_norm(&mut g, 5.0).unwrap();
    assert_eq!(norm, 50.0);
    assert!(((g[0] * g[0] + g[1] * g[1]).sqrt() - 5.0).abs() < 1e-6);
    assert!(Adam { beta1: 1.0, ..Adam::default() }.init(1).is_err());
}
