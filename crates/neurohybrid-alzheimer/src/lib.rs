//! # neurohybrid-alzheimer
//!
//! Alzheimer's disease as misfolded-protein spreading on the structural connectome, with
//! mechanistic, neural and hybrid variants fitted to a few regional scans.
//!
//! | module | what |
//! |---|---|
//! | [`connectome`] | [`Brain`]: the embedded synthetic DK-68 graph or the real TVB DK-68 connectome, region names and centres, Braak-like stage groups, the Laplacian |
//! | [`models`] | network diffusion (`neurohybrid-mesh`'s `GraphDiffusion`), [`NetworkFkpp`] (optional regional carrying capacity), [`Heterodimer`], the truth [`ClearanceFkpp`] — all `OdeSystem + Vjp + Jvp` |
//! | [`observe`] | SUVR-like signal, abnormality and staging, atrophy from cumulative load, Dice / RMSE |
//! | [`cohort`] | synthetic subjects with different seeds, rates, amyloid status and ages |
//! | [`fit`] | per-subject `κ, α`, seed by L-BFGS on discrete-adjoint gradients; Laplace intervals |
//! | [`residual`], [`train`] | the parallel hybrid (FKPP + pointwise residual `c·g(c)`), the series hybrid (covariates → `κ, α`), a neural ODE; joint cohort fits parallel over subjects |
//! | [`protocol`], [`demo`] | mechanistic vs neural vs hybrid on early visits, scored on later ones |
//!
//! Units: time in years, rates in 1/yr, concentrations normalized (FKPP carrying capacity 1).
//! Design choices and their reasons: `docs/decisions/0014-alzheimer.md`.
//!
//! ```
//! use neurohybrid_alzheimer::fit::{FitConfig, fit_subject};
//! use neurohybrid_alzheimer::{Brain, CohortConfig, NetworkFkpp, generate};
//!
//! // One synthetic subject on the embedded connectome, seeded in the entorhinal cortex.
//! let brain = Brain::synthetic_dk68();
//! let cfg = CohortConfig { n_subjects: 1, ..CohortConfig::default() };
//! let cohort = generate(&brain, &cfg)?;
//! let subject = &cohort.subjects[0];
//! assert_eq!(subject.n_regions(), 68);
//!
//! // Fit network Fisher–KPP (κ, α, seed amount) to the first 3 visits, with 95 % intervals.
//! let seeds = brain.entorhinal()?.to_vec();
//! let fkpp = NetworkFkpp::new(brain.diffusion());
//! let fit = fit_subject(&fkpp, &[], subject, &cfg.observation, &FitConfig::new(seeds))?;
//! let [kappa, _alpha] = fit.params;
//! assert!(kappa > 0.0 && fit.intervals.is_some());
//! # Ok::<(), neurohybrid_alzheimer::AlzheimerError>(())
//! ```
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

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
