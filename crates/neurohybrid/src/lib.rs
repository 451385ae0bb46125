#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Alzheimer's disease: protein spreading on the connectome (`neurohybrid-alzheimer`, L5).
pub use neurohybrid_alzheimer as alzheimer;
/// Autodiff graphs compiled into allocation-free tapes (`neurohybrid-autodiff`, L0).
pub use neurohybrid_autodiff as autodiff;
/// Glioma growth: scenarios, Fisher–Kolmogorov with treatments, synthetic patients,
/// mechanistic / neural / hybrid fits (`neurohybrid-glioma`, L5).
pub use neurohybrid_glioma as glioma;
/// Hybrid compositions, the trainer, calibration with uncertainty (`neurohybrid-hybrid`, L4).
pub use neurohybrid_hybrid as hybrid;
/// Dense and sparse factorizations, Krylov solvers, Newton (`neurohybrid-linalg`, L0).
pub use neurohybrid_linalg as linalg;
/// Masked voxel grids, tissue maps, finite-volume diffusion, graphs, I/O, the phantom
/// (`neurohybrid-mesh`, L2).
pub use neurohybrid_mesh as mesh;
/// Neural layers as graph builders, optimizers, checkpoints (`neurohybrid-nn`, L2).
pub use neurohybrid_nn as nn;
/// The solve loop, controllers, `SaveAt`, impulses, sensitivities (`neurohybrid-solve`, L2).
pub use neurohybrid_solve as solve;
/// Explicit Runge–Kutta methods (`neurohybrid-solve-explicit`, L3).
pub use neurohybrid_solve_explicit as explicit;
/// Stiff methods: BDF, Rosenbrock, SDIRK/ESDIRK, IMEX (`neurohybrid-solve-implicit`, L3).
pub use neurohybrid_solve_implicit as implicit;
/// Stroke: perfusion, tissue fate and treatment timing (`neurohybrid-stroke`, L5).
pub use neurohybrid_stroke as stroke;
/// `OdeSystem` and its capability traits, `ParamLayout`, `TapeSystem` (`neurohybrid-system`, L1).
pub use neurohybrid_system as system;

/// The names most programs need, in one import: `use neurohybrid::prelude::*;`.
///
/// Only types and traits whose names are unambiguous across the layers are here; error types
/// keep their crate prefix (`SolveError`, `MeshError`, …) so `?` conversions read clearly.
pub mod prelude {
    pub use neurohybrid_autodiff::{Graph, Tape, Var};
    pub use neurohybrid_glioma::{DemoConfig, GliomaError, Scenario};
    pub use neurohybrid_hybrid::{
        Calibrator, Dataset, HybridError, NetworkRhs, NeuralOde, Parallel, Series, SolverInTheLoop,
        Trainer, Trajectory,
    };
    pub use neurohybrid_mesh::{
        Connectome, DiffusionOperator, Grid, MeshError, Phantom, TissueDiffusion, TissueMaps,
        TissueModel,
    };
    pub use neurohybrid_nn::{Activation, Dense, Init, Layer, Mlp, NnError, Pointwise};
    pub use neurohybrid_solve::{
        PiController, Problem, SaveAt, Solution, SolveError, Status, Stepper, solve,
    };
    pub use neurohybrid_solve_explicit::{Dopri5, Rk4, Tsit5};
    pub use neurohybrid_solve_implicit::{Bdf, KenCarp4, Rodas4, TrBdf2};
    pub use neurohybrid_system::{
        Jacobian, Jvp, OdeSystem, ParamLayout, Split, Sum, TapeSystem, Vjp,
    };
}

/// The repository's README, compiled as a doctest so its library example stays correct.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RootReadme;
