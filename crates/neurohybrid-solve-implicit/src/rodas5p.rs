//! Rodas5P on the Rosenbrock engine of [`crate::rosenbrock`].
//!
//! The step is the C/h form documented on [`RosenbrockTableau`](crate::tableaus::RosenbrockTableau) (Hairer & Wanner II,
//! eq. (7.25), as in OrdinaryDiffEq.jl): one `W = I − hγJ` with the exact `J` at `(tₙ, yₙ)`,
//! one linear solve per stage, no Newton iteration. `J` is re-evaluated every step (reused by
//! the retries of a rejected step) and `∂f/∂t` is a forward difference unless the system is
//! declared autonomous — the same loop as [`crate::Rodas4`], over Rodas5P's 8 stages and 3
//! dense-output combinations.

use crate::rosenbrock::{RosenbrockState, TimeDerivative, rosenbrock_stepper};
use crate::tableaus::RODAS5P;
use crate::wmatrix::WConfig;

/// Rodas5P (Steinebach 2023): order 5, embedded order 4, stiffly accurate, L-stable, dense
/// output of order 4. Configuration only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rodas5P {
    /// How `∂f/∂t` is obtained.
    pub time_derivative: TimeDerivative,
    /// Linear backend (only `backend`/`dense_max`/`krylov` matter: `W` is refactored every
    /// step). A Krylov backend solves each stage to `krylov.direct_rtol`.
    pub w: WConfig,
}

/// Working state of a [`Rodas5P`] solve: the engine's [`RosenbrockState`].
pub type Rodas5PState = RosenbrockState;

rosenbrock_stepper!(Rodas5P, RODAS5P);
