//! Simulates a scenario file and prints per-scan volumes and the solver's work:
//! `cargo run --release -p neurohybrid-glioma --example simulate -- examples/glioma-mni152.toml`.

use neurohybrid_glioma::{Scenario, simulate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: simulate SCENARIO.toml")?;
    let scenario = Scenario::from_path(&path)?;
    let sim = simulate(&scenario, &mut |p| eprintln!("{} {}/{}", p.stage, p.done, p.total))?;
    println!(
        "{} cells, {} steps of {}, {:.2} s",
        sim.n_cells, sim.steps, sim.method, sim.wall_time_s
    );
    for (k, d) in sim.days.iter().enumerate() {
        println!(
            "day {d}: tumour {:.2} mL, core {:.2} mL",
            sim.tumor_volume_ml[k], sim.core_volume_ml[k]
        );
    }
    Ok(())
}
