//! # neurohybrid-glioma
//!
//! Glioma growth on brain anatomy, from a scenario file to predicted progression:
//!
//! - [`Scenario`] — the serde/TOML config (anatomy, growth parameters, seed, scans,
//!   radiotherapy, chemotherapy, imaging, solver), units in the field docs, validated on load
//!   with named errors ([`GliomaError`]).
//! - [`model`] — Fisher–Kolmogorov `∂c/∂t = ∇·(D(x)∇c) + ρc(1−c) − k(t)c` on the masked grid,
//!   `D = D_w (p_wm + p_gm/R)`, 0 in CSF, no flux (the mesh's finite-volume `TissueDiffusion`);
//!   radiotherapy fractions as exact linear-quadratic impulses `c ← c·exp(−αd − βd²)`,
//!   chemotherapy as a kill term with first-order PK decay (a stated modeling assumption);
//!   Tsit5 on coarse grids, IMEX KenCarp4 (diffusion implicit) when diffusion is stiff.
//! - [`observe`] / [`metrics`] — segmentations (enhancing core `c ≥ c_T1`, edema
//!   `c_FLAIR ≤ c < c_T1`), a PET-like signal, noisy observations; RMSE, Dice, volume error,
//!   front position error.
//! - [`synthetic`] — synthetic patients whose truth has physics the plain model lacks
//!   (proliferation faster in white matter: `ρ(x) = ρ (1 + κ p_wm(x))`).
//! - [`fit`] — the inverse problem for `D_w`, `ρ`, seed centre from 2–3 scans with Laplace
//!   intervals (`neurohybrid-hybrid`'s calibrator on forward-sensitivity Jacobians).
//! - [`hybrid`] — the neural-only baseline and the hybrid models built from
//!   `neurohybrid-hybrid` compositions, trained through the solver with discrete adjoints.
//! - [`demo`] — the protocol: fit mechanistic, neural and hybrid on the early scans, predict
//!   the later ones, report everything the CLI renders ([`DemoReport`]).
//!
//! Entry points for the CLI: [`simulate`], [`fit()`], [`demo::run`] (see `API.md`).
//!
//! ```
//! use neurohybrid_glioma::{Scenario, simulate};
//!
//! let scenario = Scenario::from_toml_str(r#"
//!     [anatomy]
//!     kind = "phantom"
//!     dim = 2
//!     shape = [32, 32]
//!     spacing_mm = 6.0
//!
//!     [tumor]
//!     d_w = 0.2      # mm²/day
//!     rho = 0.05     # 1/day
//!
//!     [seed]
//!     location_mm = [-20.0, -10.0]
//!
//!     [scans]
//!     days = [60.0, 120.0]
//! "#)?;
//! let sim = simulate(&scenario, &mut |_| {})?;
//! assert_eq!(sim.density.len(), 2);
//! // The tumour grows: its visible volume increases between the scans.
//! assert!(sim.tumor_volume_ml[1] > sim.tumor_volume_ml[0]);
//! # Ok::<(), neurohybrid_glioma::GliomaError>(())
//! ```
#![warn(missing_docs)]

pub mod anatomy;
pub mod config;
pub mod demo;
mod error;
pub mod fit;
pub mod hybrid;
pub mod metrics;
pub mod model;
pub mod observe;
mod progress;
mod report;
mod simulate;
pub mod synthetic;

pub use anatomy::{Anatomy, GridInfo};
pub use config::{
    AnatomyConfig, Chemotherapy, Imaging, Method, Radiotherapy, Scans, Scenario, Seed,
    SolverConfig, TruthPhysics, TumorParams,
};
pub use demo::DemoConfig;
pub use error::{GliomaError, Result};
pub use progress::Progress;
pub use report::{
    DemoReport, DemoSummary, Estimate, FitReport, ModelResult, ModelSummary, RecoveredParameters,
};
pub use simulate::{Simulation, simulate, solve_at, truth_growth};

/// Fits the mechanistic model to a scenario's synthetic scans: the scenario (with its `truth`
/// physics, if any) generates the truth and the noisy observed training scans; `D_w`, `ρ`
/// and the seed are recovered with 95 % intervals, and every scan is predicted.
///
/// # Errors
/// Invalid scenarios, failed solves, a non-identifiable fit.
pub fn fit(scenario: &Scenario, progress: &mut dyn FnMut(Progress)) -> Result<FitReport> {
    demo::fit_scenario(scenario, progress)
}
