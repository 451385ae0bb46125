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
//!
//! # Interpolated save times
//!
//! A save time `s = t_n + θ (t_{n+1} − t_n)` inside the step reads the dense output, a
//! polynomial in the same stage values (`StepVjp::step_vjp_dense`). With the method's own
//! continuous extension (Dopri5, Tsit5) `y(θ) = y_n + h Σ_i b_i(θ) k_i`, so its cotangent `c`
//! adds `c` to `∂L/∂y_n` and `h b_i(θ) c` to every `u_i` — including the FSAL stage, which
//! `b_7(θ) ≠ 0` makes used. Cubic Hermite
//! `y(θ) = h₀₀ y_n + h₀₁ y_{n+1} + h (h₁₀ f_n + h₁₁ f_{n+1})` (HNW I, II.6, eq. (6.7)) adds
//! `h₀₀ c` to `∂L/∂y_n`, `h₀₁ c` to `λ`, `h h₁₀ c` to `u_1`, and `h h₁₁ c` to the FSAL stage
//! `u_s` (Bosh3) or, without FSAL, through one extra VJP at `(t_n + h, y_{n+1})` to `λ`.

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
    /// Whether stage `i` influences `y_{n+1}` (precomputed from the tableau).
    used: Vec<bool>,
    /// Dense-output cotangents: on stage `i` directly (`∂L/∂k_i` through the interpolant).
    dk: Vec<Vec<f64>>,
    /// ... and on `y_n` directly.
    dy0: Vec<f64>,
    /// Whether `dk[i]` is nonzero for the step being reversed; stages used by the step or the
    /// interpolant.
    dk_set: Vec<bool>,
    used_dense: Vec<bool>,
}

fn work(tab: &ButcherTableau, n: usize, m: usize) -> RkVjpWork {
    let s = tab.stages();
    RkVjpWork {
        y_stage: vec![vec![0.0; n]; s],
        g: vec![vec![0.0; n]; s],
        u: vec![0.0; n],
        gp: vec![0.0; m],
        used: (0..s).map(|i| stage_used(tab, i, &[])).collect(),
        dk: vec![vec![0.0; n]; s],
        dy0: vec![0.0; n],
        dk_set: vec![false; s],
        used_dense: vec![false; s],
    }
}

/// Whether stage `i` influences `y_{n+1}` (or, with `direct[j]` set, the interpolant through
/// stage `j`) at all, directly or through later stages.
fn stage_used(tab: &ButcherTableau, i: usize, direct: &[bool]) -> bool {
    tab.b[i] != 0.0
        || direct.get(i).copied().unwrap_or(false)
        || (i + 1..tab.stages()).any(|j| tab.a[j][i] != 0.0 && stage_used(tab, j, direct))
}

/// Powers `θ, θ², …` weights: `Σ_j row[j] θ^{j+1}` (the stage weight `b_i(θ)`).
fn poly_weight(row: &[f64], theta: f64) -> f64 {
    let mut acc = 0.0;
    let mut pw = theta;
    for &r in row {
        acc += r * pw;
        pw *= theta;
    }
    acc
}

/// Fill `wk.dk`, `wk.dy0`, `wk.dk_set` from the dense cotangents and add the parts that enter
/// through `y_{n+1}` to `w` (Hermite), including the extra VJP of a non-FSAL Hermite step.
#[allow(clippy::too_many_arguments)]
fn dense_cotangents<S: Vjp + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &RkState,
    step: Step,
    thetas: &[f64],
    cot: &[f64],
    w: &mut [f64],
    w_p: &mut [f64],
    wk: &mut RkVjpWork,
    stats: &mut Stats,
) {
    let Step { t, h } = step;
    let s = tab.stages();
    let n = st.y().len();
    let cs = || thetas.iter().zip(cot.chunks_exact(n));
    wk.dk_set.fill(false);
    match tab.interpolant {
        Some(rows) => {
            combination(&mut wk.dy0, Base::Zero, cs().map(|(_, c)| (1.0, c)));
            for (i, row) in rows.iter().enumerate() {
                let terms = cs().map(|(&th, c)| (h * poly_weight(row, th), c));
                combination(&mut wk.dk[i], Base::Zero, terms);
                wk.dk_set[i] = row.iter().any(|&r| r != 0.0);
            }
        }
        None => {
            // Hermite basis functions of θ.
            let h00 = |th: f64| 1.0 - 3.0 * th * th + 2.0 * th * th * th;
            let h01 = |th: f64| 3.0 * th * th - 2.0 * th * th * th;
            let h10 = |th: f64| th - 2.0 * th * th + th * th * th;
            let h11 = |th: f64| th * th * th - th * th;
            combination(&mut wk.dy0, Base::Zero, cs().map(|(&th, c)| (h00(th), c)));
            combination(&mut w[..n], Base::InPlace, cs().map(|(&th, c)| (h01(th), c)));
            combination(&mut wk.dk[0], Base::Zero, cs().map(|(&th, c)| (h * h10(th), c)));
            wk.dk_set[0] = true;
            let f1 = cs().map(|(&th, c)| (h * h11(th), c));
            if tab.fsal {
                combination(&mut wk.dk[s - 1], Base::Zero, f1);
                wk.dk_set[s - 1] = true;
            } else {
                // f_{n+1} = f(t + h, y_{n+1}): its cotangent reaches λ through Jᵀ.
                combination(&mut wk.u, Base::Zero, f1);
                let want_p = !w_p.is_empty();
                let (g, gp) = (&mut wk.g[0], &mut wk.gp);
                system.vjp(t + h, st.y_proposed(), p, &wk.u, g, if want_p { gp } else { &mut [] });
                stats.vjp_evals += 1;
                w[..n].iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b);
                if want_p {
                    w_p.iter_mut().zip(gp.iter()).for_each(|(a, b)| *a += b);
                }
            }
        }
    }
    for i in 0..s {
        wk.used_dense[i] = stage_used(tab, i, &wk.dk_set);
    }
}

#[allow(clippy::too_many_arguments)]
fn rk_step_vjp<S: Vjp + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &RkState,
    step: Step,
    dense: Option<(&[f64], &[f64])>,
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
    let dense = dense.filter(|(th, _)| !th.is_empty());
    if let Some((thetas, cot)) = dense {
        dense_cotangents(tab, system, p, st, step, thetas, cot, w, w_p, wk, stats);
    }
    let used = |wk: &RkVjpWork, i: usize| {
        if dense.is_some() { wk.used_dense[i] } else { wk.used[i] }
    };
    for i in 0..s {
        if !used(wk, i) {
            continue;
        }
        let terms = tab.a[i].iter().zip(k).map(|(&a, kj)| (h * a, kj.as_slice()));
        combination(&mut wk.y_stage[i], Base::From(y), terms);
    }
    for i in (0..s).rev() {
        if !used(wk, i) {
            wk.g[i].fill(0.0);
            continue;
        }
        // u_i = h (b_i λ + Σ_{j>i} a_ji g_j) (+ ∂L/∂k_i through the interpolant)
        let u = &mut wk.u;
        let later = (i + 1..s).map(|j| (h * tab.a[j][i], wk.g[j].as_slice()));
        combination(u, Base::Zero, std::iter::once((h * tab.b[i], &w[..])).chain(later));
        if dense.is_some() && wk.dk_set[i] {
            u.iter_mut().zip(&wk.dk[i]).for_each(|(a, b)| *a += b);
        }
        let (g, gp) = (&mut wk.g[i], &mut wk.gp);
        system.vjp(t + tab.c[i] * h, &wk.y_stage[i], p, u, g, if want_p { gp } else { &mut [] });
        stats.vjp_evals += 1;
        if want_p {
            w_p.iter_mut().zip(gp.iter()).for_each(|(a, b)| *a += b);
        }
    }
    let gs = (0..s).filter(|&i| used(wk, i)).map(|i| (1.0, wk.g[i].as_slice()));
    if dense.is_some() {
        let terms = gs.chain(std::iter::once((1.0, wk.dy0.as_slice())));
        combination(&mut w[..n], Base::InPlace, terms);
    } else {
        combination(&mut w[..n], Base::InPlace, gs);
    }
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
                rk_step_vjp($tab(self), system, p, state, step, None, w, w_p, work, stats)
            }
            fn dense_vjp_supported(&self) -> bool {
                true
            }
            fn step_cache_len(&self, _system: &S, state: &RkState) -> usize {
                state.cache_len()
            }
            fn save_step(&self, state: &RkState, out: &mut [f64]) {
                state.save_step(out)
            }
            fn load_step(&self, state: &mut RkState, saved: &[f64]) {
                state.load_step(saved)
            }
            fn step_vjp_dense(
                &self,
                system: &S,
                p: &[f64],
                state: &mut RkState,
                step: Step,
                thetas: &[f64],
                cot: &[f64],
                w: &mut [f64],
                w_p: &mut [f64],
                work: &mut RkVjpWork,
                stats: &mut Stats,
            ) {
                let dense = Some((thetas, cot));
                rk_step_vjp($tab(self), system, p, state, step, dense, w, w_p, work, stats)
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
