//! # neurohybrid-stroke
//!
//! Ischemic stroke on brain anatomy: perfusion, tissue fate and the timing of reperfusion.
//!
//! - [`darcy`]: the Darcy perfusion problem `−∇·(K∇p) + β(p − p_v) = f` on a masked voxel
//!   grid, assembled from `neurohybrid-mesh`'s finite-volume operator, factorized with
//!   `neurohybrid-linalg`'s sparse Cholesky, with its adjoint (one transpose solve) for
//!   gradients w.r.t. K, β and source parameters; the three-compartment form
//!   ([`darcy::Darcy3`]).
//! - [`perfusion`]: tissue-dependent fields, six arterial territories, an occlusion with
//!   collateral strength; `CBF = β (p − p_v)`.
//! - [`fate`]: alive → injured → dead per voxel, driven by the perfusion deficit, as an
//!   `OdeSystem + Vjp + Jvp`; reperfusion switches the right-hand side at the treatment time.
//!
//! - [`sim`]: integration through the reperfusion switch and the exact derivative w.r.t. the
//!   treatment time ([`sim::treatment_time_gradient`]); [`patient`]: synthetic patients
//!   whose truth has failing collaterals, and their imaging; [`fit`]: the mechanistic
//!   calibration with Laplace intervals, the neural-only model, the parallel hybrid and the
//!   series hybrid (on [`collateral`]'s per-voxel collateral trajectories);
//!   [`outcome`]: volumes, Dice, timing curves and a modified-Rankin-like readout;
//!   [`evaluate`] and [`demo`]: the benchmark protocol and the CLI demo's computation.
//!
//! Time is in hours from symptom onset, lengths in mm, perfusion in ml/100 g/min. Design
//! decisions and measured numbers: `docs/decisions/0015-stroke.md`, the hybrids in
//! `docs/decisions/0023-stroke-hybrids.md`, the treatment-time derivative, the MNI152 data
//! protocol and the outcome reference in
//! `docs/decisions/0024-stroke-treatment-time-derivative-and-data.md`.
//!
//! ```
//! use neurohybrid_mesh::Phantom;
//! use neurohybrid_stroke::perfusion::{Occlusion, Perfusion, PerfusionParams, Territory};
//!
//! let phantom = Phantom::new_2d(40, 48, 4.0)?;
//! let mut perf = Perfusion::new(phantom.grid(), phantom.tissue(), PerfusionParams::default())?;
//! let occlusion = Occlusion { territory: Territory::LeftMca, severity: 1.0, collateral: 0.3 };
//! let f = perf.source(Some(&occlusion))?;
//! let map = perf.solve(Some(&occlusion))?;
//! // Inflow equals total perfusion (no flux leaves the brain).
//! assert!(map.flux_imbalance(&f) < 1e-10);
//! # Ok::<(), neurohybrid_stroke::StrokeError>(())
//! ```
#![warn(missing_docs)]

pub mod anatomy;
pub mod collateral;
pub mod darcy;
pub mod demo;
mod error;
pub mod evaluate;
pub mod fate;
pub mod fit;
pub mod outcome;
pub mod patient;
pub mod perfusion;
pub mod sim;

pub use error::{Result, StrokeError};
