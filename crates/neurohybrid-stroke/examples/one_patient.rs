//! Runs the benchmark protocol on one synthetic patient and prints the scores.

use std::time::Instant;

use neurohybrid_stroke::anatomy::StrokeAnatomy;
use neurohybrid_stroke::evaluate::{MODEL_NAMES, run_patient};
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::fit::TrainConfig;
use neurohybrid_stroke::patient::{Protocol, cohort};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut anatomy = StrokeAnatomy::phantom_2d(40, 48, 4.0)?;
    println!("tissue voxels {} ({:.2} s)", anatomy.n_voxels(), t.elapsed().as_secs_f64());
    let i: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let patient = &cohort(i + 1)[i];
    println!("{patient:?}");
    let run =
        run_patient(&mut anatomy, patient, &Protocol::default(), FateConstants::default(), &{
            // Overrides for experiments: HTIME=1, L2, LR, ITERS, SDECAY.
            let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
            let d = TrainConfig::default();
            TrainConfig {
                hybrid_time_input: std::env::var("HTIME").is_ok(),
                l2: env("L2").unwrap_or(d.l2),
                learning_rate: env("LR").unwrap_or(d.learning_rate),
                iterations: env("ITERS").map_or(d.iterations, |x| x as usize),
                series_decay_scale: env("SDECAY").unwrap_or(d.series_decay_scale),
                ..d
            }
        })?;
    for (name, s) in MODEL_NAMES.iter().zip(&run.scores) {
        println!("{name}: {s:?}");
    }
    for e in &run.estimates {
        println!("{e:?}");
    }
    println!("neural loss {:?} -> {:?}", run.neural.history.first(), run.neural.history.last());
    println!("hybrid loss {:?} -> {:?}", run.hybrid.history.first(), run.hybrid.history.last());
    println!("series loss {:?} -> {:?}", run.series.history.first(), run.series.history.last());
    println!("total {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
