//! Runs the demo computation and prints its headline numbers.

use neurohybrid_stroke::demo::{DemoConfig, run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let r = run(&DemoConfig::default(), &mut |_, _, _| {})?;
    for m in &r.models {
        println!("{}: {:?} mRS {:.2}", m.name, m.score, m.outcome.expected);
    }
    for p in &r.parameters {
        println!("{p:?}");
    }
    println!(
        "timing truth {:?}",
        r.timing.truth_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!(
        "timing mech  {:?}",
        r.timing.mechanistic_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!(
        "timing lo    {:?}",
        r.timing.lower_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!(
        "timing hi    {:?}",
        r.timing.upper_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!(
        "timing hyb   {:?}",
        r.timing.hybrid_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!(
        "timing ser   {:?}",
        r.timing.series_ml.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    println!("wall {:.2} s", r.wall_s);
    Ok(())
}
