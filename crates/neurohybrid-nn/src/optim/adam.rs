//! Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019).

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Optimizer, Schedule, StepInfo, check_lr, check_nonneg, check_unit};
use crate::error::{NnError, Result};

/// Adam with bias-corrected moments (Kingma & Ba 2015, Algorithm 1) and an optional L2 penalty
/// folded into the gradient (`g ← g + λp`, PyTorch's `Adam(weight_decay=λ)`).
///
/// Arithmetic order is PyTorch's: `m ← m + (1−β₁)(g − m)` (its `lerp`),
/// `v ← β₂v + (1−β₂)g²`, `p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)` — note ε is added
/// *after* the bias correction of `√v`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// First-moment decay β₁ (default 0.9).
    pub beta1: f64,
    /// Second-moment decay β₂ (default 0.999).
    pub beta2: f64,
    /// Denominator offset ε (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    pub weight_decay: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Parameter ranges left untouched.
    pub frozen: Vec<Range<usize>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            frozen: Vec::new(),
        }
    }
}

impl Adam {
    /// Adam with rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        Adam { lr, ..Self::default() }
    }
    /// Sets β₁ and β₂.
    pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// Sets ε.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
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

    fn validate(&self) -> Result<()> {
        check_lr(self.lr)?;
        check_unit("Adam beta1", self.beta1)?;
        check_unit("Adam beta2", self.beta2)?;
        check_nonneg("Adam weight decay", self.weight_decay)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(NnError::config("Adam eps", format!("{} must be positive", self.eps)));
        }
        self.schedule.validate()
    }

    /// The shared Adam/AdamW update; `decoupled` applies `λ` as AdamW does.
    fn update(
        &self,
        s: &mut AdamState,
        params: &mut [f64],
        grad: &[f64],
        decoupled: bool,
    ) -> Result<()> {
        s.info.check(params, grad)?;
        let lr = self.schedule.lr(self.lr, s.info.step);
        s.info.step += 1;
        let t = s.info.step as f64;
        let bc1 = 1.0 - self.beta1.powf(t);
        let bc2 = 1.0 - self.beta2.powf(t);
        let step_size = lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        let (w1, w2) = (1.0 - self.beta1, 1.0 - self.beta2);
        for i in s.info.indices() {
            let mut g = grad[i];
            if decoupled {
                // Decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2 line 12): shrink the
                // parameter directly instead of adding λp to the gradient, so the decay is not
                // rescaled by the adaptive denominator.
                params[i] *= 1.0 - lr * self.weight_decay;
            } else if self.weight_decay != 0.0 {
                g += self.weight_decay * params[i];
            }
            let m = &mut s.m[i];
            *m += w1 * (g - *m);
            let v = &mut s.v[i];
            *v = self.beta2 * *v + w2 * g * g;
            let denom = v.sqrt() / bc2_sqrt + self.eps;
            params[i] += -step_size * (*m / denom);
        }
        Ok(())
    }
}

/// Working state of [`Adam`] and [`AdamW`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamState {
    /// Step count and active ranges.
    pub info: StepInfo,
    /// First moment.
    pub m: Vec<f64>,
    /// Second moment.
    pub v: Vec<f64>,
}

impl Optimizer for Adam {
    type State = AdamState;
    fn init(&self, n: usize) -> Result<AdamState> {
        self.validate()?;
        Ok(AdamState { info: StepInfo::new(n, &self.frozen)?, m: vec![0.0; n], v: vec![0.0; n] })
    }
    fn step(&self, s: &mut AdamState, params: &mut [f64], grad: &[f64]) -> Result<()> {
        self.update(s, params, grad, false)
    }
}

/// AdamW: Adam with decoupled weight decay `p ← p(1 − lr·λ)` before the Adam step
/// (Loshchilov & Hutter 2019; PyTorch's `AdamW`, default λ = 0.01).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    /// The Adam configuration; its `weight_decay` is the decoupled λ.
    pub adam: Adam,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW { adam: Adam { weight_decay: 1e-2, ..Adam::default() } }
    }
}

impl AdamW {
    /// AdamW with rate `lr`, decoupled decay `weight_decay`, other Adam defaults.
    pub fn new(lr: f64, weight_decay: f64) -> Self {
        AdamW { adam: Adam { lr, weight_decay, ..Adam::default() } }
    }
}

impl Optimizer for AdamW {
    type State = AdamState;
    fn init(&self, n: usize) -> Result<AdamState> {
        self.adam.init(n)
    }
    fn step(&self, s: &mut AdamState, params: &mut [f64], grad: &[f64]) -> Result<()> {
        self.adam.update(s, params, grad, true)
    }
}
