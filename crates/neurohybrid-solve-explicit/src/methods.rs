//! The method structs. Each holds no configuration and forwards to the generic RK stepper with
//! its tableau; [`ExplicitRk`] does the same for a user-supplied tableau.

use crate::rk::{self, RkState};
use crate::tableau::{self, ButcherTableau};
use neurohybrid_solve::{Stats, Step, StepOutcome, Stepper};
use neurohybrid_system::OdeSystem;

/// An explicit RK method from any `'static` tableau.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExplicitRk {
    tableau: &'static ButcherTableau,
}

impl ExplicitRk {
    /// A stepper for `tableau`.
    pub fn new(tableau: &'static ButcherTableau) -> Self {
        Self { tableau }
    }
    /// Its tableau.
    pub fn tableau(&self) -> &'static ButcherTableau {
        self.tableau
    }
}

macro_rules! rk_stepper {
    ($ty:ty, $tab:expr) => {
        impl<S: OdeSystem + ?Sized> Stepper<S> for $ty {
            type State = RkState;
            fn name(&self) -> &str {
                $tab(self).name
            }
            fn order(&self) -> usize {
                $tab(self).order
            }
            fn error_order(&self) -> Option<usize> {
                $tab(self).error_order
            }
            fn dense_degree(&self) -> usize {
                $tab(self).dense_degree()
            }
            fn init(
                &self,
                system: &S,
                p: &[f64],
                t0: f64,
                y0: &[f64],
                stats: &mut Stats,
            ) -> RkState {
                rk::init($tab(self), system, p, t0, y0, stats)
            }
            fn step(
                &self,
                system: &S,
                p: &[f64],
                state: &mut RkState,
                step: Step,
                stats: &mut Stats,
            ) -> StepOutcome {
                rk::step($tab(self), system, p, state, step, stats)
            }
            fn dense(
                &self,
                system: &S,
                p: &[f64],
                state: &mut RkState,
                step: Step,
                coeffs: &mut [f64],
                stats: &mut Stats,
            ) {
                rk::dense($tab(self), system, p, state, step, coeffs, stats)
            }
            fn accept(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut RkState,
                _t_new: f64,
                h_next: f64,
                _stats: &mut Stats,
            ) -> f64 {
                rk::accept($tab(self), state);
                h_next
            }
            fn restart(
                &self,
                _system: &S,
                _p: &[f64],
                state: &mut RkState,
                _t: f64,
                _stats: &mut Stats,
            ) {
                rk::restart(state)
            }
        }
    };
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $tab:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;
        impl $name {
            /// The method's tableau.
            pub fn tableau(&self) -> &'static ButcherTableau {
                &$tab
            }
        }
        rk_stepper!($name, |_: &$name| -> &'static ButcherTableau { &$tab });
    };
}

rk_stepper!(ExplicitRk, |s: &ExplicitRk| s.tableau);

method!(
    /// Explicit Euler, order 1, fixed step only.
    Euler,
    tableau::EULER
);
method!(
    /// Heun's method (explicit trapezoidal rule), order 2, fixed step only.
    Heun,
    tableau::HEUN
);
method!(
    /// The classical fourth-order Runge–Kutta method, fixed step only.
    Rk4,
    tableau::RK4
);
method!(
    /// Bogacki–Shampine 3(2), FSAL, adaptive, cubic Hermite dense output.
    Bosh3,
    tableau::BOSH3
);
method!(
    /// Dormand–Prince 5(4), FSAL, adaptive, Shampine's order-4 dense output.
    Dopri5,
    tableau::DOPRI5
);
method!(
    /// Tsitouras 5(4), FSAL, adaptive, its own order-4 dense output.
    Tsit5,
    tableau::TSIT5
);
