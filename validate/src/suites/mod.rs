//! The registry of suites. A suite is `fn(fast: bool) -> Vec<Case>`; register it in [`SUITES`].

use crate::Case;

pub mod convergence;
pub mod data;
pub mod gradients;
pub mod hybrid;
pub mod models;
pub mod stiff;

/// A suite's entry point: runs every case (or the cheap subset when `fast`).
pub type SuiteFn = fn(fast: bool) -> Vec<Case>;

/// Every suite, by name, in the order `--suite all` runs them.
pub const SUITES: &[(&str, SuiteFn)] = &[
    // Suites register here, one line each: ("name", module::run),
    ("convergence", convergence::run),
    ("gradients", gradients::run),
    ("stiff", stiff::run),
    ("hybrid", hybrid::run),
    ("models", models::run),
    ("data", data::run),
];

/// Looks a suite up by name.
pub fn find(name: &str) -> Option<SuiteFn> {
    SUITES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
