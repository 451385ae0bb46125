//! Runs the mechanistic / neural / hybrid protocol on a synthetic cohort and prints the
//! summary: `cargo run --release -p neurohybrid-alzheimer --example protocol -- [N] [ITERS] [TVB.zip]`
//! (the third argument runs it on a TVB connectome instead of the embedded one).

use neurohybrid_alzheimer::protocol::{ProtocolConfig, run};
use neurohybrid_alzheimer::{Brain, CohortConfig, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(12), |s| s.parse())?;
    let iters: usize = args.get(2).map_or(Ok(150), |s| s.parse())?;
    let brain = match args.get(3) {
        Some(path) => Brain::from_tvb(path)?,
        None => Brain::synthetic_dk68(),
    };
    let cohort = generate(&brain, &CohortConfig { n_subjects: n, ..CohortConfig::default() })?;
    let mut config = ProtocolConfig::for_cohort(&cohort);
    config.train.max_iterations = iters;
    let t = std::time::Instant::now();
    let report = run(&cohort, &config, &mut |p, done, _| {
        if done == 0 {
            eprintln!("phase {p:?} at {:.2} s", t.elapsed().as_secs_f64());
        }
    })?;
    for s in &report.subjects {
        let r: Vec<String> = s
            .scores
            .iter()
            .map(|(m, x)| format!("{m} {:.4}/{:.3}", x.heldout_rmse, x.heldout_dice))
            .collect();
        println!("subject {:2} stages {:?}: {}", s.id, s.true_stages, r.join("  "));
    }
    for m in ["mechanistic", "neural", "hybrid", "series"] {
        println!(
            "{m:12} mean heldout rmse {:.4} dice {:.3}",
            report.mean_heldout_rmse(m),
            report.mean_heldout_dice(m)
        );
    }
    println!(
        "hybrid wins {:.2}; hybrid iters {} history {:?}",
        report.hybrid_win_fraction(),
        report.hybrid.iterations,
        report
            .hybrid
            .history
            .iter()
            .step_by(20)
            .map(|v| (v * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!("timings {:?}", report.timings);
    Ok(())
}
