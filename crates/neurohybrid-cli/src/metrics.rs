//! `metrics.json`: the schema every demo writes (issue 9), checked before writing.
//!
//! ```json
//! {
//!   "demo": "glioma",
//!   "seed": 7,
//!   "models": {
//!     "mechanistic": {
//!       "heldout_rmse": 0.041, "heldout_dice": 0.83,
//!       "parameters": {
//!         "D_w": { "estimate": 0.11, "lower": 0.09, "upper": 0.13, "truth": 0.12,
//!                  "unit": "mm^2/day", "level": 0.95 }
//!       },
//!       "volume_error": 0.08
//!     },
//!     "neural": { "heldout_rmse": 0.09, "heldout_dice": 0.61 },
//!     "hybrid": { "heldout_rmse": 0.02, "heldout_dice": 0.9 }
//!   },
//!   "parameters": {
//!     "D_w": { "estimate": 0.11, "lower": 0.09, "upper": 0.13, "truth": 0.12,
//!              "unit": "mm^2/day", "level": 0.95 }
//!   },
//!   "wall_time_s": 21.3
//! }
//! ```
//!
//! `"models"` always has the three keys; each model has `"heldout_rmse"` (density or
//! concentration RMSE on the held-out times) and `"heldout_dice"` (`null` where a disease has
//! no segmentation), `"parameters"` (recovered parameters with their interval; absent for
//! models without mechanistic parameters), and any further numbers flattened next to them.
//! The top-level `"parameters"` holds the recovered mechanistic parameters with intervals
//! (the issue's "recovered parameters with intervals under `parameters`"); a model's own
//! `"parameters"` is for a second set (e.g. the hybrid's mechanistic part, when it has
//! intervals). Demos add their own top-level entries in `extra` (flattened too).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The three models every protocol compares, in table order.
pub const MODEL_NAMES: [&str; 3] = ["mechanistic", "neural", "hybrid"];

/// A recovered parameter with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// Point estimate (MAP / least squares).
    pub estimate: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
    /// The true value, when the patient is synthetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<f64>,
    /// Unit, e.g. `"mm^2/day"`.
    pub unit: String,
    /// Coverage of the interval (0.95 for a 95 % Laplace interval).
    pub level: f64,
}

/// Metrics of one model on the held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// RMSE of the predicted density / concentration on the held-out times.
    pub heldout_rmse: f64,
    /// Dice overlap of the predicted and true segmentations on the held-out times; `None`
    /// (JSON `null`) where the disease has no segmentation.
    pub heldout_dice: Option<f64>,
    /// Recovered parameters by name (`"D_w"`, `"rho"`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Parameter>,
    /// Further numbers (`"volume_error"`, `"train_rmse"`, `"fit_seconds"`, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, f64>,
}

impl ModelMetrics {
    /// Metrics with the two required numbers.
    pub fn new(heldout_rmse: f64, heldout_dice: Option<f64>) -> Self {
        Self { heldout_rmse, heldout_dice, parameters: BTreeMap::new(), extra: BTreeMap::new() }
    }

    /// Adds a recovered parameter.
    pub fn parameter(mut self, name: impl Into<String>, p: Parameter) -> Self {
        self.parameters.insert(name.into(), p);
        self
    }

    /// Adds a further number.
    pub fn extra(mut self, name: impl Into<String>, v: f64) -> Self {
        self.extra.insert(name.into(), v);
        self
    }
}

/// The three models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    /// The mechanistic model alone.
    pub mechanistic: ModelMetrics,
    /// The neural model alone.
    pub neural: ModelMetrics,
    /// The hybrid.
    pub hybrid: ModelMetrics,
}

impl Models {
    /// `(name, metrics)` in [`MODEL_NAMES`] order.
    pub fn iter(&self) -> [(&'static str, &ModelMetrics); 3] {
        [("mechanistic", &self.mechanistic), ("neural", &self.neural), ("hybrid", &self.hybrid)]
    }
}

/// The content of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Which demo or scenario (`"glioma"`, `"alzheimer"`, `"stroke"`, a scenario file).
    pub demo: String,
    /// The `--seed`.
    pub seed: u64,
    /// The three models.
    pub models: Models,
    /// The recovered mechanistic parameters with their intervals, by name.
    pub parameters: BTreeMap<String, Parameter>,
    /// Wall time of the whole command in seconds.
    pub wall_time_s: f64,
    /// Demo-specific top-level entries (flattened).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Metrics {
    /// Metrics without recovered parameters or extra entries (add them with
    /// [`Metrics::parameter`] and [`Metrics::extra`]).
    pub fn new(demo: impl Into<String>, seed: u64, models: Models, wall_time_s: f64) -> Self {
        Self {
            demo: demo.into(),
            seed,
            models,
            parameters: BTreeMap::new(),
            wall_time_s,
            extra: serde_json::Map::new(),
        }
    }

    /// Adds a recovered parameter at the top level.
    pub fn parameter(mut self, name: impl Into<String>, p: Parameter) -> Self {
        self.parameters.insert(name.into(), p);
        self
    }

    /// Adds a demo-specific top-level entry.
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// Checks the schema: finite non-negative RMSEs, Dice in [0, 1], finite parameters with
    /// `lower ≤ estimate ≤ upper` and `0 < level < 1`, finite extra numbers, and no extra key
    /// that shadows a schema key.
    pub fn validate(&self) -> Result<(), String> {
        for (name, m) in self.models.iter() {
            if !(m.heldout_rmse.is_finite() && m.heldout_rmse >= 0.0) {
                return Err(format!("models.{name}.heldout_rmse = {}", m.heldout_rmse));
            }
            if let Some(d) = m.heldout_dice
                && !(0.0..=1.0).contains(&d)
            {
                return Err(format!("models.{name}.heldout_dice = {d} (must be in [0, 1])"));
            }
            check_parameters(&format!("models.{name}.parameters"), &m.parameters)?;
            for (k, v) in &m.extra {
                if ["heldout_rmse", "heldout_dice", "parameters"].contains(&k.as_str()) {
                    return Err(format!("models.{name}.{k} shadows a schema key"));
                }
                if !v.is_finite() {
                    return Err(format!("models.{name}.{k} = {v}"));
                }
            }
        }
        check_parameters("parameters", &self.parameters)?;
        for k in self.extra.keys() {
            if ["demo", "seed", "models", "parameters", "wall_time_s"].contains(&k.as_str()) {
                return Err(format!("top-level `{k}` in extra shadows a schema key"));
            }
        }
        if !self.wall_time_s.is_finite() {
            return Err(format!("wall_time_s = {}", self.wall_time_s));
        }
        Ok(())
    }

    /// Column names of the metrics table: the two required numbers, then the other
    /// `heldout_*` numbers, then every further number that some model has (each group sorted).
    pub fn table_columns(&self) -> Vec<String> {
        let mut cols = vec!["heldout_rmse".to_owned(), "heldout_dice".to_owned()];
        let mut extra: Vec<&String> =
            self.models.iter().iter().flat_map(|(_, m)| m.extra.keys()).collect();
        extra.sort_by_key(|k| (!k.starts_with("heldout_"), k.as_str()));
        extra.dedup();
        cols.extend(extra.into_iter().cloned());
        cols
    }

    /// Rows of the metrics table for `cols` (formatted numbers, `-` where missing).
    pub fn table_rows(&self, cols: &[String]) -> Vec<(&'static str, Vec<String>)> {
        self.models
            .iter()
            .iter()
            .map(|(name, m)| {
                let cells = cols
                    .iter()
                    .map(|c| {
                        let v = match c.as_str() {
                            "heldout_rmse" => Some(m.heldout_rmse),
                            "heldout_dice" => m.heldout_dice,
                            other => m.extra.get(other).copied(),
                        };
                        v.map_or_else(|| "-".to_owned(), fmt_cell)
                    })
                    .collect();
                (*name, cells)
            })
            .collect()
    }

    /// The metrics table as aligned text (what the demos print).
    pub fn table(&self) -> String {
        let cols = self.table_columns();
        let rows = self.table_rows(&cols);
        let mut widths: Vec<usize> = cols.iter().map(|c| c.len().max(8)).collect();
        for (_, cells) in &rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = format!("{:<12}", "model");
        for (c, w) in cols.iter().zip(&widths) {
            out.push_str(&format!(" {c:>w$}"));
        }
        out.push('\n');
        for (name, cells) in rows {
            out.push_str(&format!("{name:<12}"));
            for (c, w) in cells.iter().zip(&widths) {
                out.push_str(&format!(" {c:>w$}"));
            }
            out.push('\n');
        }
        for l in self.parameter_lines() {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    /// One line per recovered parameter, the top-level ones first:
    /// `D_w = 0.11 [0.09, 0.13] mm^2/day (95 % interval, truth 0.12)`, then
    /// `hybrid D_w = …` for the models' own.
    pub fn parameter_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.parameters.iter().map(|(p, v)| parameter_line(p, v)).collect();
        for (name, m) in self.models.iter() {
            for (p, v) in &m.parameters {
                // A model that reports the shared estimate (the hybrids built on the calibrated
                // mechanistic parameters) would only repeat the line above.
                if self.parameters.get(p) == Some(v) {
                    continue;
                }
                lines.push(format!("{name} {}", parameter_line(p, v)));
            }
        }
        lines
    }
}

/// Integers (counts) without decimals, everything else with four.
fn fmt_cell(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 { format!("{v:.0}") } else { format!("{v:.4}") }
}

fn parameter_line(p: &str, v: &Parameter) -> String {
    let truth = v.truth.map(|t| format!(", truth {}", sig(t))).unwrap_or_default();
    format!(
        "{p} = {} [{}, {}] {} ({:.0} % interval{truth})",
        sig(v.estimate),
        sig(v.lower),
        sig(v.upper),
        v.unit,
        100.0 * v.level
    )
}

/// Four significant digits (parameters span mm²/day to mm).
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 10) as usize;
    format!("{v:.digits$}")
}

fn check_parameters(at: &str, params: &BTreeMap<String, Parameter>) -> Result<(), String> {
    for (p, v) in params {
        let ok = [v.estimate, v.lower, v.upper].iter().all(|x| x.is_finite())
            && v.lower <= v.estimate
            && v.estimate <= v.upper
            && v.level > 0.0
            && v.level < 1.0
            && v.truth.is_none_or(f64::is_finite);
        if !ok {
            return Err(format!("{at}.{p} = {v:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metrics {
        let dw = Parameter {
            estimate: 0.11,
            lower: 0.09,
            upper: 0.13,
            truth: Some(0.12),
            unit: "mm^2/day".into(),
            level: 0.95,
        };
        let models = Models {
            mechanistic: ModelMetrics::new(0.04, Some(0.8))
                .parameter("D_w", dw.clone())
                .extra("volume_error", 0.1),
            neural: ModelMetrics::new(0.09, Some(0.6)),
            hybrid: ModelMetrics::new(0.02, Some(0.9)),
        };
        Metrics::new("glioma", 7, models, 12.5).parameter("D_w", dw).extra("hybrid_wins", true)
    }

    #[test]
    fn json_has_the_issue_schema() {
        let v = serde_json::to_value(sample()).unwrap();
        for m in MODEL_NAMES {
            assert!(v["models"][m]["heldout_rmse"].is_f64(), "{m}");
            assert!(v["models"][m]["heldout_dice"].is_f64(), "{m}");
        }
        let p = &v["models"]["mechanistic"]["parameters"]["D_w"];
        assert_eq!(p["lower"], 0.09);
        assert_eq!(p["upper"], 0.13);
        assert_eq!(v["models"]["mechanistic"]["volume_error"], 0.1);
        assert!(v["models"]["neural"].get("parameters").is_none());
        assert_eq!(v["parameters"]["D_w"]["estimate"], 0.11);
        assert_eq!(v["hybrid_wins"], true);
        // Round trip.
        let back: Metrics = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn dice_null_where_there_is_no_segmentation() {
        let mut m = sample();
        m.models.neural.heldout_dice = None;
        let v = serde_json::to_value(&m).unwrap();
        assert!(v["models"]["neural"].get("heldout_dice").is_some_and(|d| d.is_null()));
        assert!(m.validate().is_ok());
    }

    #[test]
    fn validate_rejects_broken_numbers() {
        let mut m = sample();
        m.models.hybrid.heldout_rmse = f64::NAN;
        assert!(m.validate().unwrap_err().contains("hybrid.heldout_rmse"));
        let mut m = sample();
        m.models.neural.heldout_dice = Some(1.5);
        assert!(m.validate().is_err());
        let mut m = sample();
        m.models.mechanistic.parameters.get_mut("D_w").unwrap().lower = 0.2;
        assert!(m.validate().unwrap_err().contains("parameters.D_w"));
        let mut m = sample();
        m.models.neural.extra.insert("parameters".into(), 1.0);
        assert!(m.validate().is_err());
        let mut m = sample();
        m.extra.insert("models".into(), serde_json::json!(1));
        assert!(m.validate().is_err());
        let mut m = sample();
        m.parameters.get_mut("D_w").unwrap().upper = f64::INFINITY;
        assert!(m.validate().unwrap_err().starts_with("parameters.D_w"));
        assert!(sample().validate().is_ok());
    }

    #[test]
    fn table_lists_models_and_parameters() {
        let t = sample().table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("model") && lines[0].contains("volume_error"));
        assert!(lines[1].starts_with("mechanistic") && lines[1].contains("0.0400"));
        assert!(lines[2].starts_with("neural") && lines[2].trim_end().ends_with('-'));
        assert!(
            t.contains("\nD_w = 0.1100 [0.09000, 0.1300] mm^2/day (95 % interval, truth 0.1200)")
        );
        // The mechanistic model reports the shared estimate: not repeated.
        assert!(!t.contains("mechanistic D_w"), "{t}");
        let mut m = sample();
        m.models.mechanistic.parameters.get_mut("D_w").unwrap().estimate = 0.105;
        assert!(m.table().contains("mechanistic D_w = 0.1050"));
    }
}
