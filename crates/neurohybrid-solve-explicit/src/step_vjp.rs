//! The discrete adjoint of an explicit Runge–Kutta step ([`StepVjp`] for every method here).
//!
//! For `Y_i = y_n + h Σ_{j<i} a_ij k_j`, `k_i = f(t_n + c_i h, Y_i)`,
//! `y_{n+1} = y_n + h Σ_i b_i k_i`, the reverse step with `λ = ∂L/∂y_{n+1}` runs the stages
//! backwards (Hager 2000, "Runge–Kutta methods in optimal control and the transformed adjoint
//! system", Numer. Math. 87; Sandu 2006, "On the properties of Runge–Kutta discrete adjoints",
//! LNCS 3994):
//!
//! ```text
//! u_i = h (b_i λ + Σ_{j>i} a_ji g_j)      (∂L/∂k_i)
//! g_i = ∂f/∂y(Y_i)ᵀ u_i,  ∂L/∂p += ∂f/∂p(Y_i)ᵀ u_i
//! ∂L/∂y_n = λ + Σ_i g_i
//! ```
//!
//! one VJP per stage with a nonzero `u_i` (the FSAL stage of Dopri5/Tsit5 has `b_s = 0` and no
//! later stage uses it: it costs nothing). The stage inputs `Y_i` are rebuilt from the stage
//! derivatives the forward step left in [`RkState::stages`] (`step` was just called, `accept`
//! not yet, so no FSAL rotation has happened). The error estimate and the step-size choice are
//! not differentiated: step sizes are constants of the discrete map.

use crate::methods::{Bosh3, Dopri5, Euler, ExplicitRk, Heun, Rk4, Tsit5};
use crate::rk::{Base, RkState, combination};
use crate::tableau::ButcherTableau;
use neurohybrid_solve::sensitivity::StepVjp;
use neurohybrid_solve::{Stats, Step, StepState};
use neurohybrid_system::Vjp;

/// Scratch of the explicit RK reverse step, allocated once per gradient.
#[derive(Debug, Clone)]
pub struct RkVjpWork {
    /// Stage inputs `Y_i` of the step being reversed.
    y_stage: Vec<Vec<f64>>,
    /// `g_i = ∂f/∂y(Y_i)ᵀ u_i`.
    g: Vec<Vec<f64>>,
    /// `u_i`.
    u: Vec<f64>,
    /// `∂f/∂p(Y_i)ᵀ u_i`.
    gp: Vec<f64>,
}

fn work(tab: &ButcherTableau, n: usize, m: usize) -> RkVjpWork {
    let s = tab.stages();
    RkVjpWork {
        y_stage: vec![vec![0.0; n]; s],
        g: vec![vec![0.0; n]; s],
        u: vec![0.0; n],
        gp: vec![0.0; m],
    }
}

/// Whether stage `i` influences `y_{n+1}` at all (directly or through later stages).
fn stage_used(tab: &ButcherTableau, i: usize) -> bool {
    tab.b[i] != 0.0 || (i + 1..tab.stages()).any(|j| tab.a[j][i] != 0.0 && stage_used(tab, j))
}

#[allow(clippy::too_many_arguments)]
fn rk_step_vjp<S: Vjp + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &RkState,
    step: Step,
    w: &mut [f64],
    w_p: &mut [f64],
    wk: &mut RkVjpWork,
    stats: &mut Stats,
) {
    let Step { t, h } = step;
    let s = tab.stages();
    let k = st.stages();
    let y = st.y();
    let n = y.len();
    let want_p = !w_p.is_empty();
    // Stage inputs Y_i = y + h Σ_{j<i} a_ij k_j (stage 0 is y itself), one fused pass each
    // with the forward step's accumulation order.
    for i in 0..s {
        let terms = tab.a[i].iter().zip(k).map(|(&a, kj)| (h * a, kj.as_slice()));
        combination(&mut wk.y_stage[i], Base::From(y), terms);
    }
    for i in (0..s).rev() {
        if !stage_used(tab, i) {
            wk.g[i].fill(0.0);
            continue;
        }
        // u_i = h (b_i λ + Σ_{j>i} a_ji g_j)
        let u = &mut wk.u;
        let later = (i + 1..s).map(|j| (h * tab.a[j][i], wk.g[j].as_slice()));
        combination(u, Base::Zero, std::iter::once((h * tab.b[i], &w[..])).chain(later));
        let (g, gp) = (&mut wk.g[i], &mut wk.gp);
        system.vjp(t + tab.c[i] * h, &wk.y_stage[i], p, u, g, if want_p { gp } else { &mut [] });
        stats.vjp_evals += 1;
        if want_p {
            w_p.iter_mut().zip(gp.iter()).for_each(|(a, b)| *a += b);
        }
    }
    let used = (0..s).filter(|&i| stage_used(tab, i)).map(|i| (1.0, wk.g[i].as_slice()));
    combination(&mut w[..n], Base::InPlace, used);
}

macro_rules! rk_step_vjp {
    ($ty:ty, $tab:expr) => {
        impl<S: Vjp + ?Sized> StepVjp<S> for $ty {
            type VjpWork = RkVjpWork;
            fn vjp_work(&self, system: &S, _state: &RkState) -> RkVjpWork {
                work($tab(self), system.n_states(), system.n_params())
            }
            fn step_vjp(
                &self,
                system: &S,
                p: &[f64],
                state: &mut RkState,
                step: Step,
                w: &mut [f64],
                w_p: &mut [f64],
                work: &mut RkVjpWork,
                stats: &mut Stats,
            ) {
                rk_step_vjp($tab(self), system, p, state, step, w, w_p, work, stats)
            }
        }
    };
}

rk_step_vjp!(ExplicitRk, |s: &ExplicitRk| s.tableau());
rk_step_vjp!(Euler, |s: &Euler| s.tableau());
rk_step_vjp!(Heun, |s: &Heun| s.tableau());
rk_step_vjp!(Rk4, |s: &Rk4| s.tableau());
rk_step_vjp!(Bosh3, |s: &Bosh3| s.tableau());
rk_step_vjp!(Dopri5, |s: &Dopri5| s.tableau());
rk_step_vjp!(Tsit5, |s: &Tsit5| s.tableau());
