//! Training: an [`Objective`] minimized by a first-order optimizer over minibatches, with
//! gradient clipping, early stopping, a curriculum over the horizon, atomic checkpoints and
//! bit-identical resume.
//!
//! Determinism: the only randomness is the order of items, a Fisher–Yates shuffle per epoch
//! from `SplitMix64(seed ⊕ epoch·φ)`. The generator's state is therefore a function of
//! `(seed, epoch)` and is saved as such; a checkpoint holds everything else the rest of a run
//! depends on (parameters, optimizer moments and step count, position in the epoch, early
//! stopping bookkeeping, history), so a resumed run performs the same floating-point
//! operations in the same order as an uninterrupted one.

mod checkpoint;
mod objective;

use std::path::{Path, PathBuf};

use neurohybrid_nn::optim::{
    Adam, AdamState, AdamW, Optimizer, RmsProp, RmsPropState, Sgd, SgdState, clip_grad_norm,
};
use neurohybrid_nn::rng::SplitMix64;
use serde::{Deserialize, Serialize};

pub use checkpoint::{CHECKPOINT_MAGIC, CheckpointInfo, read_checkpoint};
pub use objective::{OdeObjective, Shooting};

use crate::data::shuffled;
use crate::error::{HybridError, Result};

/// What the [`Trainer`] minimizes.
pub trait Objective {
    /// Length of the parameter vector.
    fn n_params(&self) -> usize;
    /// Number of items (trajectories) minibatches draw from.
    fn n_items(&self) -> usize;
    /// Loss over `batch.items` up to `batch.horizon`; `grad` is OVERWRITTEN with its gradient.
    fn loss_and_grad(&self, params: &[f64], batch: &Batch, grad: &mut [f64]) -> Result<f64>;
    /// Loss on held-out data, if the objective has any (early stopping watches it).
    fn validation_loss(&self, _params: &[f64]) -> Result<Option<f64>> {
        Ok(None)
    }
}

/// A minibatch: item indices and the time horizon (from each item's start) of the
/// observations that count. `f64::INFINITY` = all.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Items (indices below [`Objective::n_items`]).
    pub items: &'a [usize],
    /// Observations later than `t0 + horizon` are ignored (curriculum learning).
    pub horizon: f64,
}

/// The first-order optimizer of a [`Trainer`] (configurations from `neurohybrid_nn::optim`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TrainOptimizer {
    /// Stochastic gradient descent (with momentum / Nesterov as configured).
    Sgd(Sgd),
    /// Adam.
    Adam(Adam),
    /// AdamW (decoupled weight decay).
    AdamW(AdamW),
    /// RMSprop.
    RmsProp(RmsProp),
}

/// Working state of a [`TrainOptimizer`], saved in checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OptimizerState {
    /// Of [`TrainOptimizer::Sgd`].
    Sgd(SgdState),
    /// Of [`TrainOptimizer::Adam`] and [`TrainOptimizer::AdamW`].
    Adam(AdamState),
    /// Of [`TrainOptimizer::RmsProp`].
    RmsProp(RmsPropState),
}

impl TrainOptimizer {
    fn init(&self, n: usize) -> Result<OptimizerState> {
        Ok(match self {
            TrainOptimizer::Sgd(o) => OptimizerState::Sgd(o.init(n)?),
            TrainOptimizer::Adam(o) => OptimizerState::Adam(o.init(n)?),
            TrainOptimizer::AdamW(o) => OptimizerState::Adam(o.init(n)?),
            TrainOptimizer::RmsProp(o) => OptimizerState::RmsProp(o.init(n)?),
        })
    }

    fn step(&self, st: &mut OptimizerState, params: &mut [f64], grad: &[f64]) -> Result<()> {
        match (self, st) {
            (TrainOptimizer::Sgd(o), OptimizerState::Sgd(s)) => o.step(s, params, grad)?,
            (TrainOptimizer::Adam(o), OptimizerState::Adam(s)) => o.step(s, params, grad)?,
            (TrainOptimizer::AdamW(o), OptimizerState::Adam(s)) => o.step(s, params, grad)?,
            (TrainOptimizer::RmsProp(o), OptimizerState::RmsProp(s)) => o.step(s, params, grad)?,
            _ => {
                return Err(HybridError::InvalidConfig {
                    what: "optimizer state".into(),
                    message: "belongs to a different optimizer".into(),
                });
            }
        }
        Ok(())
    }
}

/// Stop when the validation loss has not improved by `min_delta` for `patience` epochs; the
/// report then returns the best parameters seen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Smallest decrease that counts as an improvement.
    pub min_delta: f64,
}

/// Curriculum over the horizon: epoch `e` uses `horizons[e / epochs_per_stage]`, the full
/// horizon after the last stage. Fitting the early part of trajectories first avoids the bad
/// local minima of long rollouts (a standard trick for neural ODEs; e.g. Rackauckas et al.
/// 2020, "Universal differential equations", §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curriculum {
    /// Horizons of the stages, increasing.
    pub horizons: Vec<f64>,
    /// Epochs per stage (≥ 1).
    pub epochs_per_stage: usize,
}

impl Curriculum {
    /// The horizon of `epoch`.
    pub fn horizon(&self, epoch: usize) -> f64 {
        self.horizons.get(epoch / self.epochs_per_stage.max(1)).copied().unwrap_or(f64::INFINITY)
    }
}

/// Where and how often to checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// The checkpoint file (rewritten atomically: temp file + rename).
    pub path: PathBuf,
    /// Write after every `every` iterations (≥ 1).
    pub every: usize,
}

/// Minibatch training. Configuration only; see the module documentation for determinism.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trainer {
    /// The optimizer.
    pub optimizer: TrainOptimizer,
    /// Passes over the items.
    pub epochs: usize,
    /// Items per minibatch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Clip the gradient's Euclidean norm to this (PyTorch's `clip_grad_norm_`).
    pub clip_norm: Option<f64>,
    /// Early stopping on the objective's validation loss.
    pub early_stopping: Option<EarlyStopping>,
    /// Horizon curriculum.
    pub curriculum: Option<Curriculum>,
    /// Periodic checkpoints.
    pub checkpoint: Option<CheckpointConfig>,
}

impl Trainer {
    /// `epochs` of Adam with learning rate `lr`, full batches, seed 0, nothing else.
    pub fn adam(lr: f64, epochs: usize) -> Self {
        Trainer {
            optimizer: TrainOptimizer::Adam(Adam { lr, ..Adam::default() }),
            epochs,
            batch_size: usize::MAX,
            seed: 0,
            clip_norm: None,
            early_stopping: None,
            curriculum: None,
            checkpoint: None,
        }
    }
}

/// Reported after every iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Iterations done (optimizer steps).
    pub iteration: usize,
    /// Iterations of the whole run.
    pub total_iterations: usize,
    /// Loss of the batch just used.
    pub train_loss: f64,
    /// Latest validation loss.
    pub validation_loss: Option<f64>,
}

/// What the progress callback wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this iteration (the last checkpoint stays resumable).
    Stop,
}

/// The result of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Final parameters (the best by validation loss when early stopping is on).
    pub params: Vec<f64>,
    /// Per epoch: `(iteration at its end, mean train batch loss, validation loss)`.
    pub history: Vec<(usize, f64, Option<f64>)>,
    /// Iteration of the best validation loss (the last iteration without validation).
    pub best_iteration: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Whether the progress callback ended the run.
    pub stopped_by_callback: bool,
    /// Iterations done in total (across resumes).
    pub iterations: usize,
}

/// Everything a run depends on, in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainState {
    pub(crate) n_params: usize,
    pub(crate) n_items: usize,
    pub(crate) seed: u64,
    pub(crate) batch_size: usize,
    pub(crate) params: Vec<f64>,
    pub(crate) optimizer: OptimizerState,
    pub(crate) epoch: usize,
    pub(crate) batch_in_epoch: usize,
    pub(crate) iteration: usize,
    pub(crate) epoch_loss_sum: f64,
    pub(crate) epoch_batches: usize,
    pub(crate) last_validation: Option<f64>,
    pub(crate) best_validation: Option<f64>,
    pub(crate) best_params: Vec<f64>,
    pub(crate) best_iteration: usize,
    pub(crate) bad_epochs: usize,
    pub(crate) history: Vec<(usize, f64, Option<f64>)>,
}

/// The epoch's item order: a pure function of `(seed, epoch)`.
fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    // Golden-ratio increment decorrelates the streams of consecutive epochs.
    let s = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    shuffled(n, &mut SplitMix64::new(s))
}

impl Trainer {
    fn validate(&self, obj: &dyn Objective) -> Result<()> {
        let bad = |what: &str, message: &str| HybridError::InvalidConfig {
            what: what.into(),
            message: message.into(),
        };
        if self.batch_size == 0 {
            return Err(bad("batch_size", "must be at least 1"));
        }
        if obj.n_items() == 0 {
            return Err(bad("objective", "has no items"));
        }
        if let Some(c) = &self.checkpoint
            && c.every == 0
        {
            return Err(bad("checkpoint.every", "must be at least 1"));
        }
        if let Some(c) = &self.curriculum
            && c.epochs_per_stage == 0
        {
            return Err(bad("curriculum.epochs_per_stage", "must be at least 1"));
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(bad("clip_norm", "must be positive and finite"));
        }
        Ok(())
    }

    fn batches_per_epoch(&self, n_items: usize) -> usize {
        n_items.div_ceil(self.batch_size.min(n_items))
    }

    /// Train from `params0`. The callback sees every iteration and may stop the run.
    pub fn train(
        &self,
        obj: &dyn Objective,
        params0: &[f64],
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<TrainReport> {
        self.validate(obj)?;
        let n = obj.n_params();
        if params0.len() != n {
            return Err(HybridError::LengthMismatch {
                what: "initial parameters".into(),
                expected: n,
                got: params0.len(),
            });
        }
        if let Some(index) = params0.iter().position(|v| !v.is_finite()) {
            return Err(HybridError::NonFinite { what: "initial parameters".into(), index });
        }
        let state = TrainState {
            n_params: n,
            n_items: obj.n_items(),
            seed: self.seed,
            batch_size: self.batch_size,
            params: params0.to_vec(),
            optimizer: self.optimizer.init(n)?,
            epoch: 0,
            batch_in_epoch: 0,
            iteration: 0,
            epoch_loss_sum: 0.0,
            epoch_batches: 0,
            last_validation: None,
            best_validation: None,
            best_params: params0.to_vec(),
            best_iteration: 0,
            bad_epochs: 0,
            history: Vec::new(),
        };
        self.run(obj, state, on_progress)
    }

    /// Continue the run saved in `checkpoint_path` exactly as it would have gone on: the
    /// same trainer configuration and objective give bit-identical parameters to an
    /// uninterrupted run. `Err(Checkpoint)` for a missing, truncated, corrupted or
    /// mismatched file (nothing is written then).
    pub fn resume(
        &self,
        obj: &dyn Objective,
        checkpoint_path: &Path,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<TrainReport> {
        self.validate(obj)?;
        let state = read_state(checkpoint_path)?;
        let mismatch = |message: String| HybridError::Checkpoint {
            path: checkpoint_path.display().to_string(),
            message,
        };
        if state.n_params != obj.n_params() || state.n_items != obj.n_items() {
            return Err(mismatch(format!(
                "written for {} parameters and {} items, the objective has {} and {}",
                state.n_params,
                state.n_items,
                obj.n_params(),
                obj.n_items()
            )));
        }
        if state.seed != self.seed || state.batch_size != self.batch_size {
            return Err(mismatch(format!(
                "written with seed {} and batch size {}, the trainer has {} and {}",
                state.seed, state.batch_size, self.seed, self.batch_size
            )));
        }
        self.run(obj, state, on_progress)
    }

    fn run(
        &self,
        obj: &dyn Objective,
        mut st: TrainState,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<TrainReport> {
        let n_items = obj.n_items();
        let bs = self.batch_size.min(n_items);
        let per_epoch = self.batches_per_epoch(n_items);
        let total_iterations = per_epoch * self.epochs;
        let mut grad = vec![0.0; st.n_params];
        let mut stopped_early = false;
        let mut stopped_by_callback = false;
        'epochs: while st.epoch < self.epochs {
            let order = epoch_order(st.seed, st.epoch, n_items);
            let horizon = self.curriculum.as_ref().map_or(f64::INFINITY, |c| c.horizon(st.epoch));
            while st.batch_in_epoch < per_epoch {
                let b = st.batch_in_epoch;
                let items = &order[b * bs..((b + 1) * bs).min(n_items)];
                let loss = obj.loss_and_grad(&st.params, &Batch { items, horizon }, &mut grad)?;
                if !loss.is_finite() {
                    return Err(HybridError::NonFinite {
                        what: format!("training loss at iteration {}", st.iteration),
                        index: 0,
                    });
                }
                if let Some(c) = self.clip_norm {
                    clip_grad_norm(&mut grad, c)?;
                }
                self.optimizer.step(&mut st.optimizer, &mut st.params, &grad)?;
                st.iteration += 1;
                st.batch_in_epoch += 1;
                st.epoch_loss_sum += loss;
                st.epoch_batches += 1;
                let epoch_done = st.batch_in_epoch == per_epoch;
                let epoch = st.epoch;
                if epoch_done {
                    stopped_early = self.end_epoch(obj, &mut st)?;
                }
                if let Some(c) = &self.checkpoint
                    && st.iteration.is_multiple_of(c.every)
                {
                    checkpoint::write_state(&c.path, &st)?;
                }
                let progress = Progress {
                    epoch,
                    iteration: st.iteration,
                    total_iterations,
                    train_loss: loss,
                    validation_loss: st.last_validation,
                };
                if on_progress(&progress) == Control::Stop {
                    stopped_by_callback = true;
                    break 'epochs;
                }
                if stopped_early {
                    break 'epochs;
                }
                if epoch_done {
                    // `end_epoch` advanced the epoch: draw the next epoch's order.
                    break;
                }
            }
        }
        let use_best = self.early_stopping.is_some() && st.best_validation.is_some();
        Ok(TrainReport {
            params: if use_best { st.best_params } else { st.params },
            history: st.history,
            best_iteration: if use_best { st.best_iteration } else { st.iteration },
            stopped_early,
            stopped_by_callback,
            iterations: st.iteration,
        })
    }

    /// Validation, history and early stopping at the end of an epoch; `true` = stop.
    fn end_epoch(&self, obj: &dyn Objective, st: &mut TrainState) -> Result<bool> {
        let mean = st.epoch_loss_sum / st.epoch_batches.max(1) as f64;
        let val = obj.validation_loss(&st.params)?;
        st.history.push((st.iteration, mean, val));
        st.last_validation = val;
        st.epoch += 1;
        st.batch_in_epoch = 0;
        st.epoch_loss_sum = 0.0;
        st.epoch_batches = 0;
        let Some(v) = val else { return Ok(false) };
        let delta = self.early_stopping.map_or(0.0, |e| e.min_delta);
        if st.best_validation.is_none_or(|b| v < b - delta) {
            st.best_validation = Some(v);
            st.best_params.copy_from_slice(&st.params);
            st.best_iteration = st.iteration;
            st.bad_epochs = 0;
        } else {
            st.bad_epochs += 1;
        }
        Ok(self.early_stopping.is_some_and(|e| st.bad_epochs > e.patience))
    }
}

fn read_state(path: &Path) -> Result<TrainState> {
    checkpoint::read_state(path)
}
