//! The discrete adjoint of a Rosenbrock step ([`Rodas4`], [`Rodas5P`]): one reverse pass over
//! the engine's [`RosenbrockTableau`], so both methods get it.
//!
//! # The step and its derivative
//!
//! In the C/h form (see [`crate::rosenbrock`]) a step from `(t, y)` is, with
//! `W = I − hγJ`, `J = ∂f/∂y(t, y)`:
//!
//! ```text
//! U₁ = y,  Uᵢ = y + Σ_{j<i} aᵢⱼ kⱼ (rows of a),  later stages: Uᵢ = U_{i−1} + k_{i−1}
//! Fᵢ = f(t + cᵢh, Uᵢ)
//! W kᵢ = rᵢ = hγ (Fᵢ + dᵢ h fₜ + Σ_{j<i} (Cᵢⱼ/h) kⱼ)
//! y₁ = U_s + k_s
//! ```
//!
//! Unlike an SDIRK stage, `W` contains the Jacobian *explicitly*, so the derivative of
//! `kᵢ = W⁻¹rᵢ` has a second-order term: `dkᵢ = W⁻¹(drᵢ + hγ (dJ) kᵢ)`. With
//! `r̄ᵢ = W⁻ᵀ k̄ᵢ` the cotangent of `J` is `hγ Σᵢ r̄ᵢ kᵢᵀ`, and pulling it back to `y` and `p`
//! needs `∇_{y,p} (r̄ᵢᵀ J(y, p) kᵢ)`. By the symmetry of second derivatives
//! (`∂ₗ∂ⱼfᵢ = ∂ⱼ∂ₗfᵢ`) that is the directional derivative of a VJP:
//!
//! ```text
//! ∇_y (r̄ᵀ J(y) k) = d/dε [J(y + εk)ᵀ r̄] at ε = 0      (and likewise (∂f/∂p)ᵀ r̄ for ∇_p)
//! ```
//!
//! # Choice: central differences of VJPs
//!
//! The system traits offer first derivatives only (`Vjp`, `Jvp`, `Jacobian`); an exact
//! second-order product ("VJP of a JVP") would need a new capability on every system. The
//! directional derivative above is a derivative of a smooth function along one direction, so a
//! central difference `(vjp(y + εk, r̄) − vjp(y − εk, r̄))/(2ε)` has truncation error
//! `O(ε²‖f'''‖)` and rounding error `O(ε_mach/ε)`; with `ε‖k‖∞ = ε_mach^{1/3}(1 + ‖y‖∞)` both are
//! `≈ 1e-11` relative, far below what a gradient check resolves, and it is exact (to rounding)
//! for systems at most quadratic in `y` (mass-action kinetics such as Robertson). Cost per step:
//! one Jacobian and one factorization of `Wᵀ`, `s` transpose solves, `s` VJPs for the stages
//! and `2s` for the second-order terms (`+2` for a finite-difference `fₜ`). This is
//! the "second-order adjoint" structure of Rosenbrock methods described by Sandu 2006
//! (Daescu, Sandu & Carmichael 2003, "Direct and adjoint sensitivity analysis of chemical
//! kinetic systems with KPP: II", Atmos. Environ. 37).
//!
//! The finite-difference `fₜ = (f(t+δ, y) − f(t, y))/δ` of the forward step is itself
//! differentiated exactly: its VJP is `(vjp(t+δ, y, f̄ₜ) − vjp(t, y, f̄ₜ))/δ`.

use super::Transposed;
use crate::rodas5p::Rodas5P;
use crate::rosenbrock::{Rodas4, RosenbrockState, TimeDerivative, time_step};
use crate::tableaus::RosenbrockTableau;
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::sensitivity::StepVjp;
use neurohybrid_solve::{Stats, Step, StepState};
use neurohybrid_system::{Jacobian, Vjp};

/// Scratch of the Rosenbrock reverse step.
pub struct RosenbrockVjpWork {
    /// `I − hγJᵀ` (built on first use).
    w: Option<WMatrix>,
    config: WConfig,
    /// Cotangents of the stage increments, then (in place) `r̄ᵢ = W⁻ᵀ k̄ᵢ`; row-major `s × n`.
    kbar: Vec<f64>,
    ubar: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    ftbar: Vec<f64>,
    yplus: Vec<f64>,
    gy: Vec<f64>,
    gy2: Vec<f64>,
    gp: Vec<f64>,
    gp2: Vec<f64>,
}

impl std::fmt::Debug for RosenbrockVjpWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosenbrockVjpWork").field("n", &self.u.len()).finish_non_exhaustive()
    }
}

fn work(stages: usize, config: WConfig, n: usize, m: usize) -> RosenbrockVjpWork {
    RosenbrockVjpWork {
        w: None,
        config,
        kbar: vec![0.0; stages * n],
        ubar: vec![0.0; n],
        u: vec![0.0; n],
        v: vec![0.0; n],
        ftbar: vec![0.0; n],
        yplus: vec![0.0; n],
        gy: vec![0.0; n],
        gy2: vec![0.0; n],
        gp: vec![0.0; m],
        gp2: vec![0.0; m],
    }
}

/// Stage value `Uᵢ` (0-based `i`) from `y` and the increments `k`.
fn stage_value(tab: &RosenbrockTableau, y: &[f64], k: &[f64], i: usize, out: &mut [f64]) {
    let n = y.len();
    out.copy_from_slice(y);
    if i == 0 {
        return;
    }
    let last_row = tab.a.len(); // stages 1..=last_row (0-based) have rows
    let row_stage = i.min(last_row);
    for (j, &a) in tab.a[row_stage - 1].iter().enumerate().take(row_stage) {
        if a != 0.0 {
            out.iter_mut().zip(&k[j * n..(j + 1) * n]).for_each(|(u, k)| *u += a * k);
        }
    }
    for j in row_stage..i {
        out.iter_mut().zip(&k[j * n..(j + 1) * n]).for_each(|(u, k)| *u += k);
    }
}

/// Add `(vjp(t, y + εd, r) − vjp(t, y − εd, r))/(2ε)` (`∇(rᵀ J(y) d)`) times `scale` to
/// `(w_y, w_p)`.
#[allow(clippy::too_many_arguments)]
fn second_order<S: Vjp + ?Sized>(
    system: &S,
    t: f64,
    y: &[f64],
    p: &[f64],
    r: &[f64],
    d: &[f64],
    scale: f64,
    wk: &mut RosenbrockVjpWork,
    w_y: &mut [f64],
    w_p: &mut [f64],
    stats: &mut Stats,
) {
    let dmax = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if dmax == 0.0 || r.iter().all(|&x| x == 0.0) {
        return;
    }
    let ymax = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let eps = f64::EPSILON.cbrt() * (1.0 + ymax) / dmax;
    let want_p = !w_p.is_empty();
    wk.yplus.iter_mut().zip(y.iter().zip(d)).for_each(|(z, (y, d))| *z = y + eps * d);
    system.vjp(t, &wk.yplus, p, r, &mut wk.gy, if want_p { &mut wk.gp } else { &mut [] });
    wk.yplus.iter_mut().zip(y.iter().zip(d)).for_each(|(z, (y, d))| *z = y - eps * d);
    system.vjp(t, &wk.yplus, p, r, &mut wk.gy2, if want_p { &mut wk.gp2 } else { &mut [] });
    stats.vjp_evals += 2;
    let s = scale / (2.0 * eps);
    w_y.iter_mut().zip(wk.gy.iter().zip(&wk.gy2)).for_each(|(w, (a, b))| *w += s * (a - b));
    if want_p {
        w_p.iter_mut().zip(wk.gp.iter().zip(&wk.gp2)).for_each(|(w, (a, b))| *w += s * (a - b));
    }
}

/// Reverse one Rosenbrock step: on entry `w = ∂L/∂y₁`, on return `∂L/∂y₀`; `w_p` incremented.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rosenbrock_step_vjp<S: Vjp + Jacobian + ?Sized>(
    tab: &RosenbrockTableau,
    time_derivative: TimeDerivative,
    system: &S,
    p: &[f64],
    y: &[f64],
    k: &[f64],
    step: Step,
    w: &mut [f64],
    w_p: &mut [f64],
    wk: &mut RosenbrockVjpWork,
    stats: &mut Stats,
) {
    let Step { t, h } = step;
    let n = y.len();
    let s = tab.c.len();
    let hg = h * tab.gamma;
    let want_p = !w_p.is_empty();
    let tsys = Transposed::new(system);
    if wk.w.is_none() {
        wk.w = Some(
            WMatrix::new(&tsys, wk.config)
                .expect("a Jacobian pattern that worked forward works transposed"),
        );
    }
    let wm = wk.w.as_mut().expect("just built");
    wm.refresh_jacobian(&tsys, t, y, p, stats);
    wm.factorize(hg, stats).expect("W was regular in the forward step at the same (t, y, h)");
    // y₁ = U_s + k_s.
    wk.kbar.fill(0.0);
    wk.kbar[(s - 1) * n..].copy_from_slice(w);
    wk.ubar.copy_from_slice(w);
    wk.ftbar.fill(0.0);
    // `w` now accumulates ∂L/∂y₀.
    w.fill(0.0);
    let n_rows = tab.a.len();
    for i in (0..s).rev() {
        // r̄ᵢ = W⁻ᵀ k̄ᵢ (kept in kbar's row i for the second-order term).
        let (before, rest) = wk.kbar.split_at_mut(i * n);
        let rbar = &mut rest[..n];
        if rbar.iter().any(|&x| x != 0.0) {
            wm.solve_in_place(rbar, stats).expect("factorized just above");
            // rᵢ = hγ (Fᵢ + dᵢ h fₜ + Σⱼ (Cᵢⱼ/h) kⱼ).
            if i > 0 {
                for (j, &cij) in tab.c_mat[i - 1].iter().enumerate().take(i) {
                    let c = hg * cij / h;
                    if c != 0.0 {
                        before[j * n..(j + 1) * n]
                            .iter_mut()
                            .zip(rbar.iter())
                            .for_each(|(a, r)| *a += c * r);
                    }
                }
            }
            let dh = hg * tab.d[i] * h;
            if dh != 0.0 {
                wk.ftbar.iter_mut().zip(rbar.iter()).for_each(|(a, r)| *a += dh * r);
            }
            // Fᵢ = f(t + cᵢh, Uᵢ): Ūᵢ += Jᵀ(hγ r̄ᵢ).
            stage_value(tab, y, k, i, &mut wk.u);
            wk.v.iter_mut().zip(rbar.iter()).for_each(|(v, r)| *v = hg * r);
            system.vjp(
                t + tab.c[i] * h,
                &wk.u,
                p,
                &wk.v,
                &mut wk.gy,
                if want_p { &mut wk.gp } else { &mut [] },
            );
            stats.vjp_evals += 1;
            wk.ubar.iter_mut().zip(&wk.gy).for_each(|(a, b)| *a += b);
            if want_p {
                w_p.iter_mut().zip(&wk.gp).for_each(|(a, b)| *a += b);
            }
        }
        // Ūᵢ to y and to the increments it was built from.
        if i == 0 {
            w.iter_mut().zip(&wk.ubar).for_each(|(a, b)| *a += b);
        } else if i > n_rows {
            // Uᵢ = U_{i−1} + k_{i−1}: Ū_{i−1} = Ūᵢ (+ its own Fᵢ₋₁ part next round).
            let kb = &mut wk.kbar[(i - 1) * n..i * n];
            kb.iter_mut().zip(&wk.ubar).for_each(|(a, b)| *a += b);
        } else {
            w.iter_mut().zip(&wk.ubar).for_each(|(a, b)| *a += b);
            for (j, &a) in tab.a[i - 1].iter().enumerate().take(i) {
                if a != 0.0 {
                    let kb = &mut wk.kbar[j * n..(j + 1) * n];
                    kb.iter_mut().zip(&wk.ubar).for_each(|(x, u)| *x += a * u);
                }
            }
            wk.ubar.fill(0.0);
        }
    }
    // Second-order terms: W = I − hγJ(y, p) ⇒ ∂L/∂(y, p) += hγ Σᵢ ∇(r̄ᵢᵀ J kᵢ).
    let mut kbar = std::mem::take(&mut wk.kbar);
    for i in 0..s {
        let (r, d) = (&kbar[i * n..(i + 1) * n], &k[i * n..(i + 1) * n]);
        second_order(system, t, y, p, r, d, hg, wk, w, w_p, stats);
    }
    // fₜ = (f(t + δ, y) − f(t, y))/δ, exactly as the forward step formed it.
    if time_derivative == TimeDerivative::FiniteDifference && wk.ftbar.iter().any(|&x| x != 0.0) {
        let delta = time_step(t, h);
        let dt = (t + delta) - t;
        system.vjp(
            t + delta,
            y,
            p,
            &wk.ftbar,
            &mut wk.gy,
            if want_p { &mut wk.gp } else { &mut [] },
        );
        system.vjp(t, y, p, &wk.ftbar, &mut wk.gy2, if want_p { &mut wk.gp2 } else { &mut [] });
        stats.vjp_evals += 2;
        w.iter_mut().zip(wk.gy.iter().zip(&wk.gy2)).for_each(|(a, (b, c))| *a += (b - c) / dt);
        if want_p {
            let (gp, gp2) = (&wk.gp, &wk.gp2);
            w_p.iter_mut().zip(gp.iter().zip(gp2)).for_each(|(a, (b, c))| *a += (b - c) / dt);
        }
    }
    kbar.fill(0.0);
    wk.kbar = kbar;
}

macro_rules! rosenbrock_step_vjp {
    ($($ty:ty),*) => {$(
        impl<S: Vjp + Jacobian + ?Sized> StepVjp<S> for $ty {
            type VjpWork = RosenbrockVjpWork;

            fn vjp_work(&self, system: &S, _state: &RosenbrockState) -> RosenbrockVjpWork {
                work(self.tableau().stages(), self.w, system.n_states(), system.n_params())
            }

            fn step_vjp(
                &self,
                system: &S,
                p: &[f64],
                state: &mut RosenbrockState,
                step: Step,
                w: &mut [f64],
                w_p: &mut [f64],
                work: &mut RosenbrockVjpWork,
                stats: &mut Stats,
            ) {
                let (y, k) = (state.y(), state.stages());
                let (tab, td) = (self.tableau(), self.time_derivative);
                rosenbrock_step_vjp(tab, td, system, p, y, k, step, w, w_p, work, stats);
            }
        }
    )*};
}

rosenbrock_step_vjp!(Rodas4, Rodas5P);
