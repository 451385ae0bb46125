//! The subcommands, one module per disease.
//!
//! Each disease module offers the same four entry points, all taking the run's [`Ctx`]:
//!
//! | function | command |
//! |---|---|
//! | `demo(ctx) -> Result<()>` | `neurohybrid demo <disease>` |
//! | `simulate(ctx, path) -> Result<()>` | `neurohybrid simulate SCENARIO.toml --disease <disease>` |
//! | `fit(ctx, path) -> Result<()>` | `neurohybrid fit SCENARIO.toml --disease <disease>` |
//! | `validate(ctx, fast) -> Result<Vec<Case>>` | `neurohybrid validate` |
//!
//! Contract for every entry point (see `API.md`): validate all inputs *before* creating the
//! output folder ([`crate::output::OutputDir::create`]), write files only through
//! [`crate::output::OutputDir`], report long work through [`Ctx::progress`] bars, print
//! results with [`Ctx::println`], and turn model-crate errors into [`CliError::model`].
//!
//! `glioma.rs` is the CLI helper's; `alzheimer.rs` and `stroke.rs` belong to the Alzheimer's
//! and stroke helpers, who enable them in the two marked places below.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cli::{Command, Disease};
use crate::error::{CliError, Result};
use crate::progress::Progress;

pub mod glioma;
// ALZHEIMER (1/2): `pub mod alzheimer;`
pub mod alzheimer;
// STROKE (1/2): `pub mod stroke;`
pub mod stroke;

/// What every command gets: the global flags and the progress bars.
#[derive(Debug)]
pub struct Ctx {
    /// `--out`.
    pub out: PathBuf,
    /// `--seed` (1 when not given).
    pub seed: u64,
    /// Whether `--seed` was given (scenario files keep their own noise seed otherwise).
    pub seed_given: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// The bar factory.
    pub progress: Progress,
    /// When the command started (for `wall_time_s`).
    pub started: Instant,
}

impl Ctx {
    /// A context with bars unless `quiet`; `seed` is `--seed` if given.
    pub fn new(out: impl Into<PathBuf>, seed: Option<u64>, quiet: bool) -> Self {
        Self {
            out: out.into(),
            seed: seed.unwrap_or(1),
            seed_given: seed.is_some(),
            quiet,
            progress: Progress::new(quiet),
            started: Instant::now(),
        }
    }

    /// Prints a result line to stdout (between progress-bar redraws).
    pub fn println(&self, line: &str) {
        self.progress.println(line);
    }

    /// Seconds since the command started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// One validation case: printed as one JSON line by `neurohybrid validate`.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `"glioma"`, `"alzheimer"`, `"stroke"`.
    pub disease: String,
    /// Case name, e.g. `"patient_03/hybrid"` or `"summary"`.
    pub case: String,
    /// Whether the case met its criterion.
    pub passed: bool,
    /// The measured numbers (flattened into the line).
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// Runs one command.
pub fn run(command: &Command, ctx: &Ctx) -> Result<()> {
    match command {
        Command::Demo { disease } => match disease {
            Disease::Glioma => glioma::demo(ctx),
            // ALZHEIMER (2/2): `Disease::Alzheimer => alzheimer::demo(ctx),` and likewise below.
            Disease::Alzheimer => alzheimer::demo(ctx),
            // STROKE (2/2): `Disease::Stroke => stroke::demo(ctx),` and likewise below.
            Disease::Stroke => stroke::demo(ctx),
            // Reachable while a disease is not wired in.
            #[allow(unreachable_patterns)]
            other => Err(not_built(*other)),
        },
        Command::Simulate { scenario, disease } => match disease {
            Disease::Glioma => glioma::simulate(ctx, scenario),
            other => Err(not_built(*other)),
        },
        Command::Fit { scenario, disease } => match disease {
            Disease::Glioma => glioma::fit(ctx, scenario),
            other => Err(not_built(*other)),
        },
        Command::Validate { fast, disease } => {
            let diseases: Vec<Disease> = match disease {
                Some(d) => vec![*d],
                None => built().to_vec(),
            };
            let mut cases = Vec::new();
            for d in diseases {
                let mut c = match d {
                    Disease::Glioma => glioma::validate(ctx, *fast)?,
                    Disease::Alzheimer => alzheimer::validate(ctx, *fast)?,
                    Disease::Stroke => stroke::validate(ctx, *fast)?,
                    #[allow(unreachable_patterns)]
                    other => return Err(not_built(other)),
                };
                for case in &c {
                    let line = serde_json::to_string(case)
                        .map_err(|e| CliError::Metrics(format!("validation case: {e}")))?;
                    ctx.println(&line);
                }
                cases.append(&mut c);
            }
            let failed = cases.iter().filter(|c| !c.passed).count();
            ctx.println(&format!("{} passed, {failed} failed", cases.len() - failed));
            if failed > 0 {
                return Err(CliError::ValidationFailed { failed, total: cases.len() });
            }
            Ok(())
        }
    }
}

/// The diseases this binary has commands for.
pub fn built() -> &'static [Disease] {
    &[Disease::Glioma, Disease::Alzheimer, Disease::Stroke]
}

fn not_built(d: Disease) -> CliError {
    let issue = match d {
        Disease::Glioma => 9,
        Disease::Alzheimer => 10,
        Disease::Stroke => 11,
    };
    CliError::Unsupported(format!(
        "the {} commands are not in this build yet (issue {issue})",
        d.name()
    ))
}

/// Reads a scenario file to a string, with the path in the error.
pub fn read_scenario(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_owned(), source })
}
