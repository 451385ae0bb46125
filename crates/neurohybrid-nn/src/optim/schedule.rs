//! Learning-rate schedules (PyTorch's `StepLR` and `CosineAnnealingLR`, closed forms).

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// The learning rate as a function of the number of completed steps `t`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// `base · gamma^⌊t / step_size⌋`.
    Step {
        /// Steps between decays (positive).
        step_size: u64,
        /// Decay factor per period.
        gamma: f64,
    },
    /// Cosine annealing (Loshchilov & Hutter 2017, without restarts):
    /// `lr_min + (base − lr_min)(1 + cos(π t / t_max)) / 2`, held at `lr_min` after `t_max`.
    Cosine {
        /// Steps to anneal over (positive).
        t_max: u64,
        /// Final rate.
        lr_min: f64,
    },
}

impl Schedule {
    /// The rate for step `t` (0-based) from `base`.
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => {
                base * gamma.powi(i32::try_from(t / step_size.max(1)).unwrap_or(i32::MAX))
            }
            Schedule::Cosine { t_max, lr_min } => {
                let frac = t.min(t_max) as f64 / t_max.max(1) as f64;
                lr_min + (base - lr_min) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0
            }
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma }
                if step_size > 0 && gamma.is_finite() && gamma >= 0.0 =>
            {
                Ok(())
            }
            Schedule::Cosine { t_max, lr_min }
                if t_max > 0 && lr_min.is_finite() && lr_min >= 0.0 =>
            {
                Ok(())
            }
            s => Err(NnError::config(
                "schedule",
                format!("{s:?}: periods must be positive, rates finite and non-negative"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_cosine_closed_forms() {
        let s = Schedule::Step { step_size: 10, gamma: 0.5 };
        assert_eq!((s.lr(1.0, 9), s.lr(1.0, 10), s.lr(1.0, 25)), (1.0, 0.5, 0.25));
        let c = Schedule::Cosine { t_max: 100, lr_min: 0.1 };
        assert_eq!(c.lr(1.0, 0), 1.0);
        assert!((c.lr(1.0, 50) - 0.55).abs() < 1e-15);
        assert_eq!((c.lr(1.0, 100), c.lr(1.0, 1000)), (0.1, 0.1));
        assert!(Schedule::Step { step_size: 0, gamma: 0.5 }.validate().is_err());
    }
}
