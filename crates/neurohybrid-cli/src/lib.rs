//! # neurohybrid-cli
//!
//! The `neurohybrid` binary: `demo [glioma|alzheimer|stroke]`, `simulate SCENARIO.toml`,
//! `fit SCENARIO.toml`, `validate`, with the global flags `--out DIR` (default `out/`),
//! `--seed`, `--threads` and `--quiet`. The library part holds what the commands share and
//! what the tests check:
//!
//! - [`plot`]: hermetic PNG figures (heat maps with masks and contours, panel grids, line plots
//!   with bands and log-y, grouped bars, graph drawings);
//! - [`output`]: atomic file writes, the output folder, `index.html`;
//! - [`metrics`]: the `metrics.json` schema shared by all demos;
//! - [`progress`]: indicatif bars fed by the libraries' progress callbacks;
//! - [`commands`]: one module per disease.
//!
//! The CLI is the only layer that prints, draws bars and writes files (DESIGN.md §4).
//! `API.md` in this crate documents the plotting and output API for the demo authors.
//!
//! ```
//! use neurohybrid_cli::metrics::{Metrics, ModelMetrics, Models};
//!
//! let models = Models {
//!     mechanistic: ModelMetrics::new(0.05, Some(0.8)),
//!     neural: ModelMetrics::new(0.08, Some(0.7)),
//!     hybrid: ModelMetrics::new(0.02, Some(0.9)),
//! };
//! let m = Metrics::new("example", 1, models, 1.0);
//! assert!(m.validate().is_ok());
//! assert!(m.table().lines().nth(3).unwrap().starts_with("hybrid"));
//! ```
#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod metrics;
pub mod output;
pub mod plot;
pub mod progress;

pub use error::{CliError, Result};

use clap::Parser;

/// Parses `args` and runs the command. `--help`, `--version` and argument errors are handled
/// by clap (which prints and exits).
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = cli::Cli::parse_from(args);
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(CliError::Threads { threads: 0, message: "must be at least 1".into() });
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| CliError::Threads { threads: n, message: e.to_string() })?;
    }
    let ctx = commands::Ctx::new(&cli.out, cli.seed, cli.quiet);
    commands::run(&cli.command, &ctx)
}
