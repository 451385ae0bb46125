//! Case `train/kill_resume`: a training run killed midway and resumed from its last
//! checkpoint ends with exactly the parameters of an uninterrupted run.
//!
//! Problem: Lotka–Volterra parameters `(α, β, γ, δ)` fitted by Adam to 6 noisy trajectories
//! (one held out for validation), minibatches of 2 over a seeded shuffle, gradient clipping,
//! early-stopping bookkeeping, forward sensitivities, Tsit5 at rtol 1e-8. The "kill" is the
//! progress callback stopping the run at 60 % of its iterations, after checkpoints every 4
//! iterations (so the last one falls mid-epoch); `Trainer::resume` continues from it.
//!
//! Pass: the resumed run's final parameters and loss history are bit-identical to the
//! uninterrupted run's, and training lowered the loss (the run is a real fit, not a no-op).
//! Full: 40 epochs; fast: 12.

use crate::Case;
use neurohybrid_hybrid::{
    CheckpointConfig, Control, Dataset, EarlyStopping, Mse, OdeObjective, Trainer, Trajectory,
    read_checkpoint,
};
use neurohybrid_nn::rng::SplitMix64;
use neurohybrid_solve::sensitivity::ForwardSensitivity;
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_testkit::LotkaVolterra;

/// The case (12 epochs when `fast`, else 40).
pub fn run(fast: bool) -> Vec<Case> {
    let epochs = if fast { 12 } else { 40 };
    match check(epochs) {
        Ok(case) => vec![case],
        Err(e) => {
            vec![Case::new("hybrid", "train/kill_resume", false).with("error", e.to_string())]
        }
    }
}

fn check(epochs: usize) -> Result<Case, Box<dyn std::error::Error>> {
    let truth = [1.5, 1.0, 3.0, 1.0];
    let ctrl = PiController::new(1e-8, 1e-10);
    let times: Vec<f64> = (1..=10).map(|k| k as f64 * 0.3).collect();
    let mut rng = SplitMix64::new(8);
    let mut trajs = Vec::new();
    for j in 0..6 {
        let y0 = vec![0.8 + 0.1 * j as f64, 1.2 - 0.08 * j as f64];
        let pb = Problem::new(LotkaVolterra::default(), y0.clone(), truth, (0.0, 3.0));
        let sol = solve(&pb, &Tsit5, &ctrl, &SaveAt::Times(times.clone()))?;
        let values = sol.ys().iter().map(|v| v + 0.02 * rng.normal()).collect();
        trajs.push(Trajectory::new(0.0, y0, times.clone(), values));
    }
    let (train, val) = Dataset::new(trajs).split(1.0 / 6.0, 3);
    let start = [1.2, 0.8, 2.6, 1.2];
    let pb = Problem::new(LotkaVolterra::default(), [1.0, 1.0], start, (0.0, 3.0));
    let obj = OdeObjective::new(pb, Tsit5, ctrl, ForwardSensitivity::params(), Mse, train)?
        .with_validation(val)?;

    let mut trainer = Trainer::adam(0.02, epochs);
    trainer.batch_size = 2;
    trainer.seed = 2026;
    trainer.clip_norm = Some(5.0);
    trainer.early_stopping = Some(EarlyStopping { patience: epochs, min_delta: 0.0 });
    let full = trainer.train(&obj, &start, &mut |_| Control::Continue)?;

    let dir = std::env::temp_dir().join(format!("nh-validate-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("train.ckpt");
    trainer.checkpoint = Some(CheckpointConfig { path: path.clone(), every: 4 });
    let kill_at = full.iterations * 3 / 5;
    let killed = trainer.train(&obj, &start, &mut |p| {
        if p.iteration >= kill_at { Control::Stop } else { Control::Continue }
    })?;
    let resumed_from = read_checkpoint(&path)?.iteration;
    let resumed = trainer.resume(&obj, &path, &mut |_| Control::Continue)?;
    std::fs::remove_dir_all(&dir).ok();

    let same_params = full.params.len() == resumed.params.len()
        && full.params.iter().zip(&resumed.params).all(|(a, b)| a.to_bits() == b.to_bits());
    let same_history = full.history.len() == resumed.history.len()
        && full.history.iter().zip(&resumed.history).all(|(a, b)| {
            a.0 == b.0
                && a.1.to_bits() == b.1.to_bits()
                && a.2.map(f64::to_bits) == b.2.map(f64::to_bits)
        });
    let first = full.history.first().map_or(f64::NAN, |h| h.1);
    let last = full.history.last().map_or(f64::NAN, |h| h.1);
    let max_diff =
        full.params.iter().zip(&resumed.params).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    let passed = same_params && same_history && killed.stopped_by_callback && last < 0.5 * first;
    Ok(Case::new("hybrid", "train/kill_resume", passed)
        .with("epochs", epochs as u64)
        .with("iterations", full.iterations as u64)
        .with("killed_at", killed.iterations as u64)
        .with("resumed_from", resumed_from as u64)
        .with("bit_identical_params", same_params)
        .with("bit_identical_history", same_history)
        .with_f64("max_abs_param_diff", max_diff)
        .with_f64("train_loss_first_epoch", first)
        .with_f64("train_loss_last_epoch", last)
        .with_f64("alpha_fit", full.params[0])
        .with_f64("alpha_true", truth[0]))
}
