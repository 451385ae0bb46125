//! The glioma commands (wired to `neurohybrid-glioma` once its API lands).

use std::path::Path;

use super::{Case, Ctx};
use crate::error::{CliError, Result};

fn pending() -> CliError {
    CliError::Unsupported("the glioma commands are not in this build yet (issue 9)".into())
}

/// `neurohybrid demo glioma`.
pub fn demo(_ctx: &Ctx) -> Result<()> {
    Err(pending())
}

/// `neurohybrid simulate SCENARIO.toml`.
pub fn simulate(_ctx: &Ctx, path: &Path) -> Result<()> {
    super::read_scenario(path)?;
    Err(pending())
}

/// `neurohybrid fit SCENARIO.toml`.
pub fn fit(_ctx: &Ctx, path: &Path) -> Result<()> {
    super::read_scenario(path)?;
    Err(pending())
}

/// `neurohybrid validate` for glioma.
pub fn validate(_ctx: &Ctx, _fast: bool) -> Result<Vec<Case>> {
    Err(pending())
}
