//! RMSprop (Tieleman & Hinton 2012, lecture 6.5), PyTorch's formulation.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Optimizer, Schedule, StepInfo, check_lr, check_nonneg, check_unit};
use crate::error::{NnError, Result};

/// RMSprop exactly as PyTorch's `torch.optim.RMSprop`:
/// `v ← αv + (1−α)g²`, `avg = √v + ε` (ε *outside* the square root, and no bias correction),
/// then `p ← p − lr·g/avg`, or with momentum `b ← μb + g/avg`, `p ← p − lr·b`. The centered
/// variant (Graves 2013) uses `avg = √(v − ḡ²) + ε` with `ḡ ← ḡ + (1−α)(g − ḡ)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsProp {
    /// Learning rate (PyTorch default 1e-2).
    pub lr: f64,
    /// Smoothing constant α (default 0.99).
    pub alpha: f64,
    /// ε (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Momentum μ (default 0).
    pub momentum: f64,
    /// Centered variant (default false).
    pub centered: bool,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Parameter ranges left untouched.
    pub frozen: Vec<Range<usize>>,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            schedule: Schedule::Constant,
            frozen: Vec::new(),
        }
    }
}

impl RmsProp {
    /// RMSprop with rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        RmsProp { lr, ..Self::default() }
    }
    /// Sets α.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    /// Sets the momentum.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// Enables the centered variant.
    pub fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
    /// Sets the L2 penalty.
    pub fn with_weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Sets the schedule.
    pub fn with_schedule(mut self, s: Schedule) -> Self {
        self.schedule = s;
        self
    }
    /// Freezes parameter ranges.
    pub fn freeze(mut self, ranges: impl IntoIterator<Item = Range<usize>>) -> Self {
        self.frozen.extend(ranges);
        self
    }
}

/// Working state of [`RmsProp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsPropState {
    /// Step count and active ranges.
    pub info: StepInfo,
    /// Running mean of g².
    pub square_avg: Vec<f64>,
    /// Running mean of g (centered variant only, else empty).
    pub grad_avg: Vec<f64>,
    /// Momentum buffer (empty without momentum).
    pub momentum: Vec<f64>,
}

impl Optimizer for RmsProp {
    type State = RmsPropState;

    fn init(&self, n: usize) -> Result<RmsPropState> {
        check_lr(self.lr)?;
        check_unit("RMSprop alpha", self.alpha)?;
        check_unit("RMSprop momentum", self.momentum)?;
        check_nonneg("RMSprop weight decay", self.weight_decay)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(NnError::config("RMSprop eps", format!("{} must be positive", self.eps)));
        }
        self.schedule.validate()?;
        Ok(RmsPropState {
            info: StepInfo::new(n, &self.frozen)?,
            square_avg: vec![0.0; n],
            grad_avg: if self.centered { vec![0.0; n] } else { Vec::new() },
            momentum: if self.momentum > 0.0 { vec![0.0; n] } else { Vec::new() },
        })
    }

    fn step(&self, s: &mut RmsPropState, params: &mut [f64], grad: &[f64]) -> Result<()> {
        s.info.check(params, grad)?;
        let lr = self.schedule.lr(self.lr, s.info.step);
        let a = self.alpha;
        for i in s.info.indices() {
            let mut g = grad[i];
            if self.weight_decay != 0.0 {
                g += self.weight_decay * params[i];
            }
            let v = &mut s.square_avg[i];
            *v = a * *v + (1.0 - a) * g * g;
            let avg = if self.centered {
                let ga = &mut s.grad_avg[i];
                *ga += (1.0 - a) * (g - *ga);
                (*v - *ga * *ga).sqrt() + self.eps
            } else {
                v.sqrt() + self.eps
            };
            if self.momentum > 0.0 {
                let b = &mut s.momentum[i];
                *b = self.momentum * *b + g / avg;
                params[i] += -lr * *b;
            } else {
                params[i] += -lr * (g / avg);
            }
        }
        s.info.step += 1;
        Ok(())
    }
}
