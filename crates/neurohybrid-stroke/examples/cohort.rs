//! The models protocol over the 10-patient synthetic cohort (what `validate --suite models`
//! runs for stroke), printing per-model means.

use neurohybrid_stroke::anatomy::StrokeAnatomy;
use neurohybrid_stroke::evaluate::{MODEL_NAMES, run_patient};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::fit::TrainConfig;
use neurohybrid_stroke::patient::{Protocol, cohort};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut anatomy = StrokeAnatomy::phantom_2d(40, 48, 4.0)?;
    let (mut rmse, mut dice, mut wins, mut covered) = ([0.0; 3], [0.0; 3], 0, 0);
    let n = 10;
    for p in cohort(n) {
        let r = run_patient(
            &mut anatomy,
            &p,
            &Protocol::default(),
            FateConstants::default(),
            &TrainConfig::default(),
        )?;
        for m in 0..3 {
            rmse[m] += r.scores[m].heldout_rmse / n as f64;
            dice[m] += r.scores[m].heldout_dice / n as f64;
        }
        if r.scores[2].heldout_rmse < r.scores[0].heldout_rmse.min(r.scores[1].heldout_rmse) {
            wins += 1;
        }
        let c = &r.estimates[2];
        if c.truth.is_some_and(|t| c.ci95.0 <= t && t <= c.ci95.1) {
            covered += 1;
        }
        println!(
            "{}: dice {:.3} {:.3} {:.3}",
            p.id, r.scores[0].heldout_dice, r.scores[1].heldout_dice, r.scores[2].heldout_dice
        );
    }
    for m in 0..3 {
        println!("{}: mean rmse {:.3}, mean dice {:.3}", MODEL_NAMES[m], rmse[m], dice[m]);
    }
    println!("hybrid wins {wins}/{n}, collateral covered {covered}/{n}");
    Ok(())
}
