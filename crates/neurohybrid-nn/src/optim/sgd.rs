//! Stochastic gradient descent with momentum and the Nesterov variant.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Optimizer, Schedule, StepInfo, check_lr, check_nonneg, check_unit};
use crate::error::{NnError, Result};

/// SGD, PyTorch's formulation (Sutskever et al. 2013 for the Nesterov form):
/// `g ← g + λp`; `b ← μb + (1 − τ)g` (`b = g` on the first step); `g ← g + μb` (Nesterov) or
/// `g ← b`; `p ← p − lr·g`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum `μ` in `[0, 1)`.
    pub momentum: f64,
    /// Dampening `τ` of the momentum accumulation.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty `λ` added to the gradient.
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Parameter ranges left untouched.
    pub frozen: Vec<Range<usize>>,
}

impl Sgd {
    /// Plain SGD with rate `lr`.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            frozen: Vec::new(),
        }
    }
    /// Sets the momentum.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// Enables Nesterov momentum.
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
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

/// Working state of [`Sgd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SgdState {
    /// Step count and active ranges.
    pub info: StepInfo,
    /// Momentum buffer (empty without momentum).
    pub momentum: Vec<f64>,
}

impl Optimizer for Sgd {
    type State = SgdState;

    fn init(&self, n: usize) -> Result<SgdState> {
        check_lr(self.lr)?;
        check_unit("SGD momentum", self.momentum)?;
        check_nonneg("SGD dampening", self.dampening)?;
        check_nonneg("SGD weight decay", self.weight_decay)?;
        self.schedule.validate()?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(NnError::config("SGD nesterov", "needs momentum > 0 and zero dampening"));
        }
        let buf = if self.momentum > 0.0 { vec![0.0; n] } else { Vec::new() };
        Ok(SgdState { info: StepInfo::new(n, &self.frozen)?, momentum: buf })
    }

    fn step(&self, s: &mut SgdState, params: &mut [f64], grad: &[f64]) -> Result<()> {
        s.info.check(params, grad)?;
        let lr = self.schedule.lr(self.lr, s.info.step);
        let first = s.info.step == 0;
        let mu = self.momentum;
        for i in s.info.indices() {
            let mut g = grad[i];
            if self.weight_decay != 0.0 {
                g += self.weight_decay * params[i];
            }
            if mu != 0.0 {
                let b = &mut s.momentum[i];
                *b = if first { g } else { mu * *b + (1.0 - self.dampening) * g };
                g = if self.nesterov { g + mu * *b } else { *b };
            }
            params[i] -= lr * g;
        }
        s.info.step += 1;
        Ok(())
    }
}
