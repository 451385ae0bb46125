//! Training: loss decreases, multiple-shooting gradients against finite differences,
//! kill-and-resume bit-identical, damaged checkpoints rejected, dataset splits.

use std::path::PathBuf;

use neurohybrid_hybrid::{
    Batch, CheckpointConfig, Control, Dataset, EarlyStopping, GaussianNll, HybridError, Mse,
    Objective, OdeObjective, Regularizer, Shooting, Trainer, Trajectory, read_checkpoint,
};
use neurohybrid_nn::rng::SplitMix64;
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, ForwardSensitivity};
use neurohybrid_solve::{ConstantStep, PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_testkit::{ExponentialDecay, LotkaVolterra};

/// Noisy Lotka–Volterra trajectories from a few initial states.
fn lv_data(n_traj: usize, noise: f64, seed: u64) -> Dataset {
    let p = [1.5, 1.0, 3.0, 1.0];
    let mut rng = SplitMix64::new(seed);
    let times: Vec<f64> = (1..=12).map(|k| k as f64 * 0.25).collect();
    let trajs = (0..n_traj)
        .map(|j| {
            let y0 = vec![1.0 + 0.1 * j as f64, 1.0 - 0.05 * j as f64];
            let pb = Problem::new(LotkaVolterra::default(), y0.clone(), p, (0.0, 3.0));
            let sol =
                solve(&pb, &Tsit5, &PiController::new(1e-10, 1e-12), &SaveAt::Times(times.clone()))
                    .unwrap();
            let values = sol.ys().iter().map(|v| v + noise * rng.normal()).collect();
            Trajectory::new(0.0, y0, times.clone(), values)
        })
        .collect();
    Dataset::new(trajs)
}

fn fd_check(obj: &dyn Objective, params: &[f64], batch: &Batch, rel: f64) {
    let n = obj.n_params();
    let mut g = vec![0.0; n];
    obj.loss_and_grad(params, batch, &mut g).unwrap();
    let mut scratch = vec![0.0; n];
    for i in 0..n {
        let h = 1e-6 * params[i].abs().max(1.0);
        let mut p = params.to_vec();
        p[i] += h;
        let up = obj.loss_and_grad(&p, batch, &mut scratch).unwrap();
        p[i] -= 2.0 * h;
        let dn = obj.loss_and_grad(&p, batch, &mut scratch).unwrap();
        let fd = (up - dn) / (2.0 * h);
        assert!((g[i] - fd).abs() <= rel * fd.abs().max(1e-3), "param {i}: {} vs fd {fd}", g[i]);
    }
}

/// Lotka–Volterra with 3 shooting segments per trajectory, GaussianNll, constant steps.
fn lv_shooting<M>(
    method: M,
    data: Dataset,
) -> OdeObjective<LotkaVolterra, Tsit5, ConstantStep, M, GaussianNll> {
    let pb = Problem::new(LotkaVolterra::default(), [1.0, 1.0], [1.2, 0.9, 2.8, 1.1], (0.0, 3.0));
    OdeObjective::new(pb, Tsit5, ConstantStep::new(0.01), method, GaussianNll, data)
        .unwrap()
        .with_shooting(Shooting { segments: 3, continuity_weight: 2.0 })
        .unwrap()
}

#[test]
fn multiple_shooting_gradient_matches_finite_differences() {
    // Constant steps: the discrete adjoint is the exact derivative of the computed solution,
    // and central differences of that same discrete map agree to ~1e-9.
    let mut data = lv_data(2, 0.05, 1);
    // a missing observation and a partially observed state
    data.trajectories[1].mask = Some((0..24).map(|i| i != 5).collect());
    let obj = lv_shooting(DiscreteAdjoint::default(), data)
        .with_regularizer(Regularizer::L2 { range: 0..4, weight: 0.01 })
        .unwrap();
    // 4 model + 1 loss + 2 trajectories × 2 segments × 2 states
    assert_eq!(obj.n_params(), 4 + 1 + 8);
    let mut params = obj.initial_params(&[1.2, 0.9, 2.8, 1.1], &[-1.0]).unwrap();
    // Break continuity so the penalty's gradient is exercised.
    for (k, v) in params[5..].iter_mut().enumerate() {
        *v += 0.03 * (k as f64 - 3.5);
    }
    fd_check(&obj, &params, &Batch { items: &[0, 1], horizon: f64::INFINITY }, 1e-6);
    // Curriculum horizon inside the second segment: later segments drop out.
    fd_check(&obj, &params, &Batch { items: &[1], horizon: 1.6 }, 1e-6);

    // Forward sensitivities with y0 columns give the same gradient to solver accuracy.
    let fwd = lv_shooting(ForwardSensitivity::all(), lv_data(2, 0.05, 1));
    let adj = lv_shooting(DiscreteAdjoint::default(), lv_data(2, 0.05, 1));
    let batch = Batch { items: &[0, 1], horizon: f64::INFINITY };
    let (mut g1, mut g2) = (vec![0.0; 13], vec![0.0; 13]);
    let v1 = fwd.loss_and_grad(&params, &batch, &mut g1).unwrap();
    let v2 = adj.loss_and_grad(&params, &batch, &mut g2).unwrap();
    assert!((v1 - v2).abs() < 1e-10 * v1.abs());
    for (a, b) in g1.iter().zip(&g2) {
        assert!((a - b).abs() < 1e-8 * b.abs().max(1.0), "{a} vs {b}");
    }
}

fn decay_objective(
    seed: u64,
) -> OdeObjective<ExponentialDecay, Tsit5, PiController, ForwardSensitivity, Mse> {
    let mut rng = SplitMix64::new(seed);
    let times: Vec<f64> = (1..=8).map(|k| k as f64 * 0.25).collect();
    let trajs: Vec<Trajectory> = (0..5)
        .map(|j| {
            let y0 = 1.0 + 0.3 * j as f64;
            let values =
                times.iter().map(|t| y0 * (-0.8 * t).exp() + 0.01 * rng.normal()).collect();
            Trajectory::new(0.0, vec![y0], times.clone(), values)
        })
        .collect();
    let (train, val) = Dataset::new(trajs).split(0.2, 9);
    let pb = Problem::new(ExponentialDecay::default(), [1.0], [0.2], (0.0, 2.0));
    OdeObjective::new(
        pb,
        Tsit5,
        PiController::new(1e-8, 1e-10),
        ForwardSensitivity::params(),
        Mse,
        train,
    )
    .unwrap()
    .with_validation(val)
    .unwrap()
}

#[test]
fn training_recovers_the_decay_rate() {
    let obj = decay_objective(3);
    let mut trainer = Trainer::adam(0.05, 150);
    trainer.batch_size = 2;
    trainer.clip_norm = Some(10.0);
    let mut first = None;
    let report = trainer
        .train(&obj, &[0.2], &mut |p| {
            first.get_or_insert(p.train_loss);
            Control::Continue
        })
        .unwrap();
    let last = report.history.last().unwrap();
    assert!(last.1 < 1e-2 * first.unwrap(), "{} vs {}", last.1, first.unwrap());
    assert!((report.params[0] - 0.8).abs() < 0.02, "{}", report.params[0]);
    assert!(last.2.unwrap() < 1e-3);
    assert_eq!(report.iterations, 150 * 2); // 4 training items, batches of 2
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nh-train-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn killed_and_resumed_run_is_bit_identical() {
    let obj = decay_objective(4);
    let dir = tmp_dir("resume");
    let ckpt = dir.join("run.ckpt");
    let mut trainer = Trainer::adam(0.03, 12);
    trainer.batch_size = 3; // 4 items: batches of 3 and 1, so checkpoints fall mid-epoch
    trainer.seed = 77;
    trainer.early_stopping = Some(EarlyStopping { patience: 100, min_delta: 0.0 });
    let full = trainer.train(&obj, &[0.2], &mut |_| Control::Continue).unwrap();

    trainer.checkpoint = Some(CheckpointConfig { path: ckpt.clone(), every: 5 });
    let killed = trainer
        .train(&obj, &[0.2], &mut |p| {
            if p.iteration == 8 { Control::Stop } else { Control::Continue }
        })
        .unwrap();
    assert!(killed.stopped_by_callback);
    assert_eq!(killed.iterations, 8);
    let info = read_checkpoint(&ckpt).unwrap();
    assert_eq!((info.iteration, info.epoch), (5, 2)); // mid-epoch: batch 2 of epoch 3 is next
    let resumed = trainer.resume(&obj, &ckpt, &mut |_| Control::Continue).unwrap();
    assert_eq!(resumed.iterations, full.iterations);
    assert_eq!(bits(&resumed.params), bits(&full.params));
    assert_eq!(resumed.history.len(), full.history.len());
    for (a, b) in resumed.history.iter().zip(&full.history) {
        assert_eq!(
            (a.0, a.1.to_bits(), a.2.map(f64::to_bits)),
            (b.0, b.1.to_bits(), b.2.map(f64::to_bits))
        );
    }
    assert_eq!(resumed.best_iteration, full.best_iteration);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_checkpoints_are_named_errors_and_leave_the_good_one_alone() {
    let obj = decay_objective(5);
    let dir = tmp_dir("damage");
    let ckpt = dir.join("run.ckpt");
    let mut trainer = Trainer::adam(0.03, 3);
    trainer.checkpoint = Some(CheckpointConfig { path: ckpt.clone(), every: 1 });
    trainer.train(&obj, &[0.2], &mut |_| Control::Continue).unwrap();
    let good = std::fs::read(&ckpt).unwrap();

    // A write killed halfway leaves a truncated temporary file; the checkpoint is untouched.
    std::fs::write(dir.join("run.ckpt.tmp"), &good[..good.len() / 2]).unwrap();
    assert_eq!(read_checkpoint(&ckpt).unwrap().iteration, 3);

    let truncated = dir.join("truncated.ckpt");
    std::fs::write(&truncated, &good[..good.len() - 7]).unwrap();
    let e = trainer.resume(&obj, &truncated, &mut |_| Control::Continue).unwrap_err();
    assert!(
        matches!(&e, HybridError::Checkpoint { message, .. } if message.contains("truncated")),
        "{e}"
    );
    // Resuming from a bad file writes nothing (not even over the configured checkpoint).
    assert_eq!(std::fs::read(&truncated).unwrap(), &good[..good.len() - 7]);
    assert_eq!(std::fs::read(&ckpt).unwrap(), good);

    let mut flipped = good.clone();
    let at = flipped.len() - 20;
    flipped[at] = if flipped[at] == b'1' { b'2' } else { b'1' };
    let corrupt = dir.join("corrupt.ckpt");
    std::fs::write(&corrupt, &flipped).unwrap();
    let e = trainer.resume(&obj, &corrupt, &mut |_| Control::Continue).unwrap_err();
    assert!(
        matches!(&e, HybridError::Checkpoint { message, .. } if message.contains("checksum")),
        "{e}"
    );

    let garbage = dir.join("garbage.ckpt");
    std::fs::write(&garbage, b"hello").unwrap();
    assert!(matches!(read_checkpoint(&garbage), Err(HybridError::Checkpoint { .. })));
    assert!(matches!(read_checkpoint(&dir.join("missing")), Err(HybridError::Checkpoint { .. })));

    // A different trainer configuration is refused.
    let mut other = trainer.clone();
    other.seed = 1;
    let e = other.resume(&obj, &ckpt, &mut |_| Control::Continue).unwrap_err();
    assert!(matches!(e, HybridError::Checkpoint { .. }));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dataset_split_is_seeded_and_disjoint() {
    let trajs: Vec<Trajectory> =
        (0..10).map(|j| Trajectory::new(0.0, vec![j as f64], vec![1.0], vec![0.0])).collect();
    let d = Dataset::new(trajs);
    let (a, b) = d.split(0.3, 42);
    let (a2, b2) = d.split(0.3, 42);
    assert_eq!((a.len(), b.len()), (7, 3));
    assert_eq!((&a, &b), (&a2, &b2));
    let mut ids: Vec<i64> =
        a.trajectories.iter().chain(&b.trajectories).map(|t| t.y0[0] as i64).collect();
    ids.sort();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    assert_ne!(d.split(0.3, 43).1, b);
    // Everything to validation still leaves one for training.
    assert_eq!(d.split(1.0, 0).0.len(), 1);
    // Bad data are named.
    let bad = Dataset::new(vec![Trajectory::new(0.0, vec![1.0], vec![1.0, 0.5], vec![0.0, 0.0])]);
    assert!(matches!(bad.validate(1), Err(HybridError::InvalidConfig { .. })));
    let nan = Dataset::new(vec![Trajectory::new(0.0, vec![1.0], vec![1.0], vec![f64::NAN])]);
    assert!(matches!(nan.validate(1), Err(HybridError::NonFinite { .. })));
    let masked = Dataset::new(vec![
        Trajectory::new(0.0, vec![1.0], vec![1.0], vec![f64::NAN]).with_mask(vec![false]),
    ]);
    masked.validate(1).unwrap();
}

#[test]
fn early_stopping_returns_the_best_parameters_and_curriculum_stages_apply() {
    let obj = decay_objective(6);
    let mut trainer = Trainer::adam(0.05, 50);
    // No later epoch can beat the first by 1e9: stop after `patience + 1` bad epochs.
    trainer.early_stopping = Some(EarlyStopping { patience: 2, min_delta: 1e9 });
    let mut seen = Vec::new();
    let report = trainer
        .train(&obj, &[0.2], &mut |p| {
            seen.push(p.iteration);
            Control::Continue
        })
        .unwrap();
    assert!(report.stopped_early);
    assert_eq!(report.history.len(), 4);
    assert_eq!(report.best_iteration, report.history[0].0);
    assert_eq!(seen.len(), report.iterations);
    // The best parameters are those after the first epoch, not the last ones: rerun 1 epoch.
    let one = Trainer::adam(0.05, 1).train(&obj, &[0.2], &mut |_| Control::Continue).unwrap();
    assert_eq!(bits(&report.params), bits(&one.params));

    let c = neurohybrid_hybrid::Curriculum { horizons: vec![0.5, 1.0], epochs_per_stage: 3 };
    assert_eq!(
        (c.horizon(0), c.horizon(2), c.horizon(3), c.horizon(6)),
        (0.5, 0.5, 1.0, f64::INFINITY)
    );
    // A horizon that keeps only the first two observations changes the loss.
    let (mut g, mut g2) = (vec![0.0; 1], vec![0.0; 1]);
    let short = obj.loss_and_grad(&[0.5], &Batch { items: &[0, 1], horizon: 0.5 }, &mut g).unwrap();
    let full = obj
        .loss_and_grad(&[0.5], &Batch { items: &[0, 1], horizon: f64::INFINITY }, &mut g2)
        .unwrap();
    assert!(short != full && short > 0.0);
}

#[test]
fn reused_workspaces_leave_no_state_between_evaluations() {
    // The objective keeps its buffers across calls; results must not depend on what was
    // evaluated before (a shorter horizon, another batch, a validation pass).
    let mut data = lv_data(2, 0.05, 3);
    data.trajectories[0].mask = Some((0..24).map(|i| i % 7 != 2).collect());
    let make = || {
        lv_shooting(DiscreteAdjoint::default(), data.clone())
            .with_validation(lv_data(1, 0.05, 4))
            .unwrap()
    };
    let (fresh, reused) = (make(), make());
    let params = fresh.initial_params(&[1.2, 0.9, 2.8, 1.1], &[-1.0]).unwrap();
    let full = Batch { items: &[0, 1], horizon: f64::INFINITY };
    let (mut g_fresh, mut g) = (vec![0.0; 13], vec![0.0; 13]);
    let v_fresh = fresh.loss_and_grad(&params, &full, &mut g_fresh).unwrap();
    reused.loss_and_grad(&params, &Batch { items: &[1], horizon: 1.6 }, &mut g).unwrap();
    reused.validation_loss(&params).unwrap();
    let v = reused.loss_and_grad(&params, &full, &mut g).unwrap();
    assert_eq!(v.to_bits(), v_fresh.to_bits());
    assert_eq!(bits(&g), bits(&g_fresh));
    assert_eq!(
        reused.validation_loss(&params).unwrap().map(f64::to_bits),
        fresh.validation_loss(&params).unwrap().map(f64::to_bits)
    );
}
