//! The neurohybrid validation suites (`cargo xtask validate --suite NAME`).
//!
//! A suite is a function `fn run(fast: bool) -> Vec<Case>`: it runs every case of a benchmark
//! protocol (convergence orders, stiff references, gradient agreement, disease-model
//! comparisons) and returns one [`Case`] per case. The binary prints each case as one JSON line
//! and ends with the line `N passed, N failed`, so both people and CI can read the result.
//! `fast` selects a cheap subset that `cargo xtask ci` runs on every change.
//!
//! ```
//! use neurohybrid_validate::{Case, Summary};
//! let cases = vec![
//!     Case::new("convergence", "rk4/decay", true).with("observed_order", 4.01),
//!     Case::new("convergence", "euler/decay", false).with("observed_order", 0.5),
//! ];
//! let summary = Summary::of(&cases);
//! assert_eq!(summary.to_string(), "1 passed, 1 failed");
//! assert!(cases[0].to_json_line().starts_with("{\"suite\":\"convergence\""));
//! ```
#![warn(missing_docs)]

use serde_json::{Map, Value};
use std::fmt;

pub mod suites;

/// CPU time of the calling thread in seconds (`/proc/thread-self/schedstat`, nanoseconds on
/// the CPU), `None` where unavailable. On a machine shared with other jobs the wall time of an
/// iteration includes time spent waiting for a core; the CPU time does not.
pub fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// One case of a validation suite: its name, whether it passed and the numbers it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Suite the case belongs to (`"convergence"`, `"stiff"`, ...).
    pub suite: String,
    /// Case name, conventionally `method/problem`.
    pub name: String,
    /// Whether the case met its acceptance criterion.
    pub passed: bool,
    /// Measured values (orders, errors, step counts, wall times), printed after the name.
    pub data: Map<String, Value>,
}

impl Case {
    /// A case with no measured values yet.
    pub fn new(suite: impl Into<String>, name: impl Into<String>, passed: bool) -> Self {
        Self { suite: suite.into(), name: name.into(), passed, data: Map::new() }
    }

    /// Adds one measured value (a count, a name, a flag). For floats prefer [`Case::with_f64`].
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        self.data.insert(key.to_owned(), value);
        self
    }

    /// Adds a float. A non-finite value is recorded as `null` (JSON has no NaN) and fails the
    /// case: a suite that measured NaN has not shown what it claims.
    pub fn with_f64(mut self, key: &str, value: f64) -> Self {
        if !value.is_finite() {
            self.passed = false;
        }
        self.data.insert(
            key.to_owned(),
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
        self
    }

    /// The case as one JSON object on one line: `suite`, `case`, `passed`, then the data.
    pub fn to_json_line(&self) -> String {
        let mut obj = Map::new();
        obj.insert("suite".into(), Value::String(self.suite.clone()));
        obj.insert("case".into(), Value::String(self.name.clone()));
        obj.insert("passed".into(), Value::Bool(self.passed));
        for (k, v) in &self.data {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj).to_string()
    }
}

/// Pass/fail counts over a set of cases; displays as `N passed, N failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
}

impl Summary {
    /// Counts the cases.
    pub fn of(cases: &[Case]) -> Self {
        let passed = cases.iter().filter(|c| c.passed).count();
        Self { passed, failed: cases.len() - passed }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_fail_the_case_and_print_null() {
        let c = Case::new("s", "c", true).with_f64("err", f64::NAN);
        assert!(!c.passed);
        assert!(c.to_json_line().contains("\"err\":null"));
    }

    #[test]
    fn summary_counts() {
        let cases =
            [Case::new("s", "a", true), Case::new("s", "b", true), Case::new("s", "c", false)];
        assert_eq!(Summary::of(&cases), Summary { passed: 2, failed: 1 });
    }
}
