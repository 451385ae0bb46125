//! Every loss and regularizer: gradient against central finite differences, masks, values.

use neurohybrid_hybrid::{GaussianNll, Mse, Regularizer, RelativeL2, SoftDice, TrajectoryLoss};
use neurohybrid_nn::rng::SplitMix64;
use proptest::prelude::*;

/// Checks ∂L/∂pred and ∂L/∂params of `loss` at (pred, params) against central differences.
fn check_gradient(
    loss: &dyn TrajectoryLoss,
    pred: &[f64],
    target: &[f64],
    mask: Option<&[bool]>,
    params: &[f64],
) {
    let n = pred.len();
    let mut gp = vec![0.0; n];
    let mut gq = vec![0.0; params.len()];
    let v = loss.evaluate(pred, target, mask, params, &mut gp, &mut gq);
    assert!(v.is_finite());
    let mut scratch = vec![0.0; n];
    let mut sq = vec![0.0; params.len()];
    let mut eval = |p: &[f64], q: &[f64]| loss.evaluate(p, target, mask, q, &mut scratch, &mut sq);
    let h = 1e-6;
    for i in 0..n {
        let mut p = pred.to_vec();
        p[i] += h;
        let up = eval(&p, params);
        p[i] -= 2.0 * h;
        let dn = eval(&p, params);
        let fd = (up - dn) / (2.0 * h);
        assert!((gp[i] - fd).abs() < 1e-6 * fd.abs().max(1.0), "pred[{i}]: {} vs fd {fd}", gp[i]);
        if mask.is_some_and(|m| !m[i]) {
            assert_eq!(gp[i], 0.0);
        }
    }
    for j in 0..params.len() {
        let mut q = params.to_vec();
        q[j] += h;
        let up = eval(pred, &q);
        q[j] -= 2.0 * h;
        let dn = eval(pred, &q);
        let fd = (up - dn) / (2.0 * h);
        assert!((gq[j] - fd).abs() < 1e-6 * fd.abs().max(1.0), "param[{j}]: {} vs fd {fd}", gq[j]);
    }
}

fn sample(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
    let mut r = SplitMix64::new(seed);
    let pred = (0..n).map(|_| r.uniform()).collect();
    let target = (0..n).map(|_| r.uniform()).collect();
    let mask = (0..n).map(|i| i % 3 != 1).collect();
    (pred, target, mask)
}

#[test]
fn every_loss_gradient_matches_finite_differences() {
    let (pred, target, mask) = sample(12, 1);
    let binary: Vec<f64> = target.iter().map(|t| if *t > 0.5 { 1.0 } else { 0.0 }).collect();
    for m in [None, Some(mask.as_slice())] {
        check_gradient(&Mse, &pred, &target, m, &[]);
        check_gradient(&RelativeL2::default(), &pred, &target, m, &[]);
        check_gradient(&SoftDice::new(8.0, 0.4), &pred, &binary, m, &[]);
        check_gradient(&GaussianNll, &pred, &target, m, &[-0.7]);
    }
}

#[test]
fn loss_values_are_the_textbook_ones() {
    let pred = [1.0, 2.0, 4.0];
    let target = [1.0, 1.0, 2.0];
    let mask = [true, false, true];
    let (mut g, mut q) = (vec![0.0; 3], vec![0.0; 1]);
    assert_eq!(Mse.evaluate(&pred, &target, None, &[], &mut g, &mut q), 5.0 / 3.0);
    assert_eq!(Mse.evaluate(&pred, &target, Some(&mask), &[], &mut g, &mut q), 2.0);
    let rel = RelativeL2::default().evaluate(&pred, &target, None, &[], &mut g, &mut q);
    assert!((rel - (5.0f64 / 6.0).sqrt()).abs() < 1e-15);
    // NLL at σ = 1: mean of r²/2.
    let nll = GaussianNll.evaluate(&pred, &target, None, &[0.0], &mut g, &mut q);
    assert!((nll - 5.0 / 6.0).abs() < 1e-15);
    // The NLL's optimal log σ is log of the RMS residual: its gradient vanishes there.
    let mut q = vec![0.0];
    GaussianNll.evaluate(&pred, &target, None, &[(5.0f64 / 3.0).sqrt().ln()], &mut g, &mut q);
    assert!(q[0].abs() < 1e-14);
    // A perfect, sharp segmentation has Dice 1, loss ≈ 0; the opposite, loss ≈ 1.
    let dens = [0.9, 0.8, 0.1, 0.0];
    let seg = [1.0, 1.0, 0.0, 0.0];
    let d = SoftDice::new(200.0, 0.5).evaluate(&dens, &seg, None, &[], &mut [0.0; 4], &mut []);
    assert!(d < 1e-12);
    let inv = [0.0, 0.0, 1.0, 1.0];
    let d = SoftDice::new(200.0, 0.5).evaluate(&dens, &inv, None, &[], &mut [0.0; 4], &mut []);
    assert!((d - 1.0).abs() < 1e-12);
}

#[test]
fn regularizer_gradients_and_validation() {
    let params = [0.3, -1.2, 2.0, 0.5];
    let regs = [
        Regularizer::L2 { range: 1..3, weight: 0.1 },
        Regularizer::GaussianPrior { range: 2..4, mean: vec![1.0, 0.0], std: vec![0.5, 2.0] },
    ];
    for reg in &regs {
        reg.validate(4).unwrap();
        let mut g = vec![0.0; 4];
        reg.evaluate(&params, &mut g);
        for i in 0..4 {
            let h = 1e-6;
            let (mut up, mut dn) = (params, params);
            up[i] += h;
            dn[i] -= h;
            let mut s = vec![0.0; 4];
            let fd = (reg.evaluate(&up, &mut s) - reg.evaluate(&dn, &mut s)) / (2.0 * h);
            assert!((g[i] - fd).abs() < 1e-8, "{reg:?} [{i}]");
        }
    }
    assert_eq!(
        Regularizer::L2 { range: 0..2, weight: 0.5 }.evaluate(&params, &mut [0.0; 4]),
        0.5 * (0.09 + 1.44)
    );
    assert!(Regularizer::L2 { range: 2..5, weight: 1.0 }.validate(4).is_err());
    assert!(Regularizer::L2 { range: 0..1, weight: -1.0 }.validate(4).is_err());
    let bad = Regularizer::GaussianPrior { range: 0..2, mean: vec![0.0], std: vec![1.0, 1.0] };
    assert!(bad.validate(4).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Losses are bounded below where they should be and their gradient is linear in the
    /// residual direction: for Mse, <∇L, e> = 2 L for e = pred − target (Euler's theorem for a
    /// degree-2 homogeneous function).
    #[test]
    fn mse_gradient_is_homogeneous(seed in 0u64..1000) {
        let (pred, target, mask) = sample(9, seed);
        let mut g = vec![0.0; 9];
        let v = Mse.evaluate(&pred, &target, Some(&mask), &[], &mut g, &mut []);
        let dot: f64 = g.iter().zip(pred.iter().zip(&target)).map(|(g, (p, t))| g * (p - t)).sum();
        prop_assert!((dot - 2.0 * v).abs() < 1e-12);
        let rel = RelativeL2::default().evaluate(&pred, &target, Some(&mask), &[], &mut g, &mut []);
        let dot: f64 = g.iter().zip(pred.iter().zip(&target)).map(|(g, (p, t))| g * (p - t)).sum();
        prop_assert!((dot - rel).abs() < 1e-12); // degree 1
    }
}
