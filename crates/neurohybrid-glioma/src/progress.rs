//! Progress reports: long work (solves, fits, training) calls a `&mut dyn FnMut(Progress)`
//! which the CLI turns into a progress bar. Libraries never print.

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// What is running: `"simulate"`, `"fit mechanistic"`, `"train neural"`, `"train hybrid"`,
    /// `"predict"`, `"synthetic patient"`.
    pub stage: &'static str,
    /// Units of work done in this stage (iterations, scans).
    pub done: usize,
    /// Units of work in this stage.
    pub total: usize,
    /// The current training loss, when the stage is an optimization.
    pub loss: Option<f64>,
}

impl Progress {
    /// A report without a loss.
    pub fn new(stage: &'static str, done: usize, total: usize) -> Self {
        Progress { stage, done, total, loss: None }
    }

    /// With the current loss.
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = Some(loss);
        self
    }
}
