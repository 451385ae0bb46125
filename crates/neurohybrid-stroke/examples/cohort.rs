//! The models protocol over the 10-patient synthetic cohort (what `validate --suite models`
//! runs for stroke), printing per-model means.

use neurohybrid_stroke::anatomy::StrokeAnatomy;
use neurohybrid_stroke::evaluate::{MODEL_NAMES, run_patient};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::fit::TrainConfig;
use neurohybrid_stroke::patient::{Protocol, cohort};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut anatomy = StrokeAnatomy::phantom_2d(40, 48, 4.0)?;
    let (mut rmse, mut dice, mut wins, mut covered) = ([0.0; 4], [0.0; 4], [0; 4], 0);
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    for p in cohort(n) {
        let r = run_patient(
            &mut anatomy,
            &p,
            &Protocol::default(),
            FateConstants::default(),
            &TrainConfig::default(),
        )?;
        for m in 0..4 {
            rmse[m] += r.scores[m].heldout_rmse / n as f64;
            dice[m] += r.scores[m].heldout_dice / n as f64;
            wins[m] += r.beats_baselines(m) as usize;
        }
        let c = &r.estimates[2];
        if c.truth.is_some_and(|t| c.ci95.0 <= t && t <= c.ci95.1) {
            covered += 1;
        }
        let s = &r.scores;
        println!(
            "{}: rmse {:.4} {:.4} {:.4} {:.4}  dice {:.3} {:.3} {:.3} {:.3}",
            p.id,
            s[0].heldout_rmse,
            s[1].heldout_rmse,
            s[2].heldout_rmse,
            s[3].heldout_rmse,
            s[0].heldout_dice,
            s[1].heldout_dice,
            s[2].heldout_dice,
            s[3].heldout_dice
        );
    }
    for m in 0..4 {
        println!(
            "{}: mean rmse {:.4}, mean dice {:.3}, beats both baselines {}/{n}",
            MODEL_NAMES[m], rmse[m], dice[m], wins[m]
        );
    }
    println!("collateral covered {covered}/{n}");
    Ok(())
}
