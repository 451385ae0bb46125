//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// neurohybrid: differentiable hybrid models of neurological disorders.
///
/// Fits mechanistic, neural and hybrid models to synthetic patients and writes figures,
/// metrics.json and index.html to the output folder.
#[derive(Debug, Parser)]
#[command(name = "neurohybrid", version, about, long_about = None)]
pub struct Cli {
    /// Output folder (created if missing; files in it are replaced atomically).
    #[arg(long, global = true, default_value = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Seed of the synthetic patients, the noise and the network initialization (default 1;
    /// for `simulate` / `fit`, the scenario's own noise seed unless given).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// Worker threads of the rayon pool (default: one per core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bars (results are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synthetic patient → mechanistic, neural and hybrid fits on the early scans → predictions
    /// of the later scans, with figures and metrics.
    Demo {
        /// Which disease.
        #[arg(value_enum, default_value_t = Disease::Glioma)]
        disease: Disease,
    },
    /// Simulate a scenario file (TOML) and write the snapshots, figures and metrics.
    Simulate {
        /// The scenario file.
        scenario: PathBuf,
        /// Which disease the scenario describes.
        #[arg(long, value_enum, default_value_t = Disease::Glioma)]
        disease: Disease,
    },
    /// Simulate the scenario's patient, then fit the models to its scans and report the
    /// recovered parameters with intervals.
    Fit {
        /// The scenario file.
        scenario: PathBuf,
        /// Which disease the scenario describes.
        #[arg(long, value_enum, default_value_t = Disease::Glioma)]
        disease: Disease,
    },
    /// Run the cohort protocols of the disease crates: one JSON line per case, then
    /// `N passed, N failed`; exits non-zero when a case fails.
    Validate {
        /// Only the cheap subset of each protocol.
        #[arg(long)]
        fast: bool,
        /// Only this disease (default: all that are built).
        #[arg(long, value_enum)]
        disease: Option<Disease>,
    },
}

/// A disease model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Disease {
    /// Glioma growth (Fisher–Kolmogorov on brain tissue, radiotherapy, chemotherapy).
    Glioma,
    /// Alzheimer's disease (protein spreading on the connectome).
    Alzheimer,
    /// Stroke (perfusion, tissue fate, reperfusion timing).
    Stroke,
}

impl Disease {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Disease::Glioma => "glioma",
            Disease::Alzheimer => "alzheimer",
            Disease::Stroke => "stroke",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_global_flags() {
        let c = Cli::try_parse_from(["neurohybrid", "demo"]).unwrap();
        assert_eq!(c.out, PathBuf::from("out"));
        assert!(matches!(c.command, Command::Demo { disease: Disease::Glioma }));
        let c = Cli::try_parse_from([
            "neurohybrid",
            "demo",
            "stroke",
            "--out",
            "x",
            "--seed",
            "3",
            "-q",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Demo { disease: Disease::Stroke }));
        assert_eq!((c.out, c.seed, c.quiet), (PathBuf::from("x"), Some(3), true));
        assert!(Cli::try_parse_from(["neurohybrid", "demo", "migraine"]).is_err());
        assert!(Cli::try_parse_from(["neurohybrid", "simulate"]).is_err());
    }
}
