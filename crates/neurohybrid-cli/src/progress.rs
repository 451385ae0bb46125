//! Progress bars for training and solving, fed by the libraries' progress callbacks.
//!
//! Libraries never print (DESIGN.md §4); they call back with `(done, total)`-like progress and
//! the CLI turns that into an indicatif bar on stderr. `--quiet` (or a stderr that is not a
//! terminal, which indicatif detects) hides the bars; results still go to stdout.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar factory of one command run.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
}

impl Progress {
    /// Bars on stderr, or none when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        Self { multi: MultiProgress::with_draw_target(target), quiet }
    }

    /// Whether bars are hidden.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// A bar of `total` steps labelled `label` (e.g. "fit hybrid", "solve truth").
    pub fn bar(&self, label: &str, total: u64) -> Bar {
        if self.quiet {
            return Bar(ProgressBar::hidden());
        }
        let style = ProgressStyle::with_template(
            "{prefix:>18.bold} [{bar:30.cyan/blue}] {pos:>5}/{len:5} {elapsed:>4} {msg}",
        )
        .expect("the template is a valid indicatif template")
        .progress_chars("=> ");
        let pb =
            self.multi.add(ProgressBar::new(total).with_style(style).with_prefix(label.to_owned()));
        pb.enable_steady_tick(Duration::from_millis(200));
        Bar(pb)
    }

    /// Prints a line to stdout without tearing the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| println!("{line}"));
    }
}

/// One progress bar (hidden when quiet). Cheap to clone; safe to update from rayon workers.
#[derive(Debug, Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    /// Sets the position.
    pub fn set(&self, pos: u64) {
        self.0.set_position(pos);
    }

    /// Advances by `n`.
    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Changes the length (a trainer that learns its iteration count late).
    pub fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }

    /// Sets the message after the counter (e.g. the current loss).
    pub fn message(&self, msg: impl Into<String>) {
        self.0.set_message(msg.into());
    }

    /// A callback `(done, total)` that moves this bar: hand it to a library's `on_progress`.
    pub fn callback(&self) -> impl FnMut(u64, u64) + Send + 'static {
        let pb = self.0.clone();
        move |done, total| {
            if pb.length() != Some(total) {
                pb.set_length(total);
            }
            pb.set_position(done);
        }
    }

    /// Finishes the bar, leaving it on screen at its final position.
    pub fn finish(&self) {
        self.0.finish();
    }

    /// Current position (for tests and summaries).
    pub fn position(&self) -> u64 {
        self.0.position()
    }
}

/// One bar per named stage, created on the stage's first report: the adaptor for library
/// callbacks of the form `(stage, done, total, loss)` (glioma's `Progress`, trainers).
#[derive(Debug)]
pub struct StageBars {
    progress: Progress,
    bars: Vec<(String, Bar)>,
}

impl StageBars {
    /// No bars yet.
    pub fn new(progress: &Progress) -> Self {
        Self { progress: progress.clone(), bars: Vec::new() }
    }

    /// Moves the bar of `stage` to `done / total` (creating it), shows the loss if any, and
    /// finishes it when `done >= total`.
    pub fn update(&mut self, stage: &str, done: u64, total: u64, loss: Option<f64>) {
        let idx = match self.bars.iter().position(|(s, _)| s == stage) {
            Some(i) => i,
            None => {
                self.bars.push((stage.to_owned(), self.progress.bar(stage, total)));
                self.bars.len() - 1
            }
        };
        let bar = &self.bars[idx].1;
        bar.set_total(total);
        bar.set(done);
        if let Some(l) = loss {
            bar.message(format!("loss {l:.3e}"));
        }
        if done >= total {
            bar.finish();
        }
    }

    /// Finishes every bar (call when the work is over, also after an error).
    pub fn finish_all(&self) {
        for (_, b) in &self.bars {
            b.finish();
        }
    }

    /// The stages seen so far, in order.
    pub fn stages(&self) -> Vec<&str> {
        self.bars.iter().map(|(s, _)| s.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_bars_still_count() {
        let p = Progress::new(true);
        let b = p.bar("fit", 10);
        let mut cb = b.callback();
        cb(3, 12);
        b.inc(2);
        assert_eq!(b.position(), 5);
        assert!(p.is_quiet());
        b.finish();
    }

    #[test]
    fn stage_bars_one_per_stage() {
        let p = Progress::new(true);
        let mut s = StageBars::new(&p);
        s.update("simulate", 1, 3, None);
        s.update("train hybrid", 5, 100, Some(0.1));
        s.update("simulate", 3, 3, None);
        assert_eq!(s.stages(), ["simulate", "train hybrid"]);
        assert_eq!(s.bars[0].1.position(), 3);
        s.finish_all();
    }
}
