//! # neurohybrid-alzheimer
//!
//! Alzheimer's disease as protein spreading on the structural connectome.
#![warn(missing_docs)]

pub mod cohort;
pub mod connectome;
pub mod demo;
pub mod error;
pub mod fit;
pub mod models;
pub mod observe;
pub mod protocol;
pub mod residual;
pub mod simulate;
pub mod train;

pub use cohort::{Cohort, CohortConfig, Subject, SubjectTruth, generate};
pub use connectome::{Brain, BrainSource};
pub use error::{AlzheimerError, Result};
pub use models::{ClearanceFkpp, Heterodimer, NetworkFkpp};
pub use observe::ObservationModel;
