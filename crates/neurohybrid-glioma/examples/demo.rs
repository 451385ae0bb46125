//! Runs the demo protocol and prints its summary as JSON (the library side of
//! `neurohybrid demo`): `cargo run --release -p neurohybrid-glioma --example demo [fast]`.

use neurohybrid_glioma::demo::{DemoConfig, run};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fast = std::env::args().any(|a| a == "fast");
    let config = if fast { DemoConfig::fast() } else { DemoConfig::default() };
    let mut last = ("", 0usize);
    let report = run(&config, &mut |p| {
        if p.stage != last.0 || p.done == p.total || std::env::var("VERBOSE").is_ok() {
            eprintln!("{} {}/{} loss {:?}", p.stage, p.done, p.total, p.loss);
            last = (p.stage, p.done);
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&report.summary())?);
    Ok(())
}
