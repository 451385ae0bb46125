//! The CLI's error type. Every failure ends as one line on stderr and a non-zero exit
//! ([`CliError::one_line`]); the messages of the model crates' errors are passed through.

use std::path::PathBuf;

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error("figure {name}: {source}")]
    Plot {
        /// The figure's file name.
        name: String,
        /// What went wrong.
        source: crate::plot::PlotError,
    },
    /// `metrics.json` would not follow the schema (a bug in a command, caught before writing).
    #[error("metrics.json: {0}")]
    Metrics(String),
    /// `--threads` could not configure the rayon pool.
    #[error("--threads {threads}: {message}")]
    Threads {
        /// The requested count.
        threads: usize,
        /// rayon's message.
        message: String,
    },
    /// A command was asked for something this build does not have.
    #[error("{0}")]
    Unsupported(String),
    /// Some validation cases failed (the cases were printed).
    #[error("validation: {failed} of {total} cases failed")]
    ValidationFailed {
        /// Failed cases.
        failed: usize,
        /// All cases.
        total: usize,
    },
    /// An error of a model crate (glioma, Alzheimer's, stroke): its message is the line shown.
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl CliError {
    /// Wraps any model-crate error (`.map_err(CliError::model)`).
    pub fn model(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        CliError::Model(Box::new(e))
    }

    /// The message and its sources on one line: `a: b: c`, skipping a source whose text the
    /// message already contains (thiserror messages often embed their source).
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = s.source();
        }
        // Parser messages (TOML) span several lines with a source excerpt: keep them on one.
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);
    #[derive(Debug, thiserror::Error)]
    #[error("inner\ndetail")]
    struct Inner;

    #[test]
    fn one_line_joins_sources_without_repeats() {
        let e = CliError::model(Outer(Inner));
        assert_eq!(e.one_line(), "outer: inner detail");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = CliError::Read { path: "a.toml".into(), source: io };
        assert_eq!(e.one_line(), "cannot read a.toml: No such file");
    }
}
