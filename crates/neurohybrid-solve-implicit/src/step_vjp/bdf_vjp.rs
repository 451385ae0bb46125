//! The discrete adjoint of a variable-order, variable-step BDF/NDF step ([`Bdf`]).
//!
//! # The reversed state is the difference array
//!
//! A BDF step maps the history `D = (D₀ … D_{k+2})` (scaled to the current `h`), not `yₙ`
//! alone, so the reverse pass runs on `z = D` (`ROWS·n` values, `D₀ = y`) and its cotangent
//! `D̄`. One step of order `k` with step `h` is, with every discrete decision frozen (the
//! rescaling factor `r = h/h_D`, the order `k`; see [`neurohybrid_solve::sensitivity::Replay`]):
//!
//! ```text
//! Dˢ = rescale(D)            Dˢⱼ = Σᵢ (RU)ᵢⱼ Dᵢ  (j ≤ k; rows > k unchanged)     linear
//! y⁽⁰⁾ = Σ_{j≤k} Dˢⱼ,  ψ = Σ_{1≤j≤k} (γⱼ/αₖ) Dˢⱼ                                   linear
//! y' − c f(t+h, y') = y⁽⁰⁾ − ψ,  c = h/αₖ                                        implicit
//! e = y' − y⁽⁰⁾;  D'_{k+2} = e − Dˢ_{k+1},  D'_{k+1} = e,  D'ⱼ = Dˢⱼ + D'_{j+1} (j ≤ k)
//! ```
//!
//! Only the corrector is nonlinear. Reversing the linear parts costs a few passes over `D̄`;
//! the corrector, by the implicit function theorem at the converged `y'`, one transpose solve
//! `(I − cJ(y'))ᵀ v = ē` and one VJP for `∂L/∂p += c·(∂f/∂p)ᵀ v` — the same work per step
//! as one stage of an SDIRK adjoint. `restart` (at `t0` and after impulses) builds
//! `D = (y, h_D f(y), 0, …)`; its VJP adds `h_D Jᵀ D̄₁` to `ȳ`.
//!
//! As for the SDIRK adjoint, the Jacobian is evaluated fresh at `y'` (the forward Newton's
//! reused `J` is only an iteration matrix), and the forward Newton tolerance bounds how well
//! the corrector equation holds: tighten [`Bdf::w`]'s Newton settings for gradient checks.

use super::Transposed;
use crate::bdf::{Bdf, BdfState, ROWS};
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::sensitivity::StepVjp;
use neurohybrid_solve::{Stats, Step};
use neurohybrid_system::{Jacobian, Vjp};

/// Scratch of the BDF reverse step.
pub struct BdfVjpWork {
    /// `I − cJᵀ` (built on first use).
    w: Option<WMatrix>,
    config: WConfig,
    ebar: Vec<f64>,
    u: Vec<f64>,
    gy: Vec<f64>,
    gp: Vec<f64>,
}

impl std::fmt::Debug for BdfVjpWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BdfVjpWork").field("n", &self.ebar.len()).finish_non_exhaustive()
    }
}

/// Checkpoint layout: `[order, h_D, n_equal_steps, y (n), D (ROWS·n)]`.
const META: usize = 3;

impl<S: Vjp + Jacobian + ?Sized> StepVjp<S> for Bdf {
    type VjpWork = BdfVjpWork;

    fn vjp_work(&self, system: &S, _state: &BdfState) -> BdfVjpWork {
        let (n, m) = (system.n_states(), system.n_params());
        BdfVjpWork {
            w: None,
            config: self.w,
            ebar: vec![0.0; n],
            u: vec![0.0; n],
            gy: vec![0.0; n],
            gp: vec![0.0; m],
        }
    }

    fn reversed_len(&self, system: &S, _state: &BdfState) -> usize {
        ROWS * system.n_states()
    }

    fn save_reversed(&self, st: &BdfState, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&[st.order as f64, st.h_d, st.n_equal_steps as f64]);
        out.extend_from_slice(&st.y);
        out.extend_from_slice(&st.d);
    }

    fn load_reversed(
        &self,
        _system: &S,
        _p: &[f64],
        st: &mut BdfState,
        _t: f64,
        saved: &[f64],
        _stats: &mut Stats,
    ) {
        let n = st.n;
        st.order = saved[0] as usize;
        st.h_d = saved[1];
        st.n_equal_steps = saved[2] as usize;
        st.y.copy_from_slice(&saved[META..META + n]);
        st.d.copy_from_slice(&saved[META + n..META + n + ROWS * n]);
        st.last_failed = false;
        st.wm.request_jacobian_refresh();
    }

    fn restart_vjp(
        &self,
        system: &S,
        p: &[f64],
        st: &mut BdfState,
        t: f64,
        y: &[f64],
        w: &[f64],
        w_y: &mut [f64],
        w_p: &mut [f64],
        work: &mut BdfVjpWork,
        stats: &mut Stats,
    ) {
        // D₀ = y, D₁ = h_D f(t, y): ȳ = D̄₀ + h_D Jᵀ D̄₁, p̄ += h_D (∂f/∂p)ᵀ D̄₁.
        let n = st.n;
        let hd = st.h_d;
        w_y.copy_from_slice(&w[..n]);
        let u = &mut work.u;
        u.iter_mut().zip(&w[n..2 * n]).for_each(|(u, w)| *u = hd * w);
        if u.iter().all(|&x| x == 0.0) {
            return;
        }
        let want_p = !w_p.is_empty();
        system.vjp(t, y, p, u, &mut work.gy, if want_p { &mut work.gp } else { &mut [] });
        stats.vjp_evals += 1;
        w_y.iter_mut().zip(&work.gy).for_each(|(a, b)| *a += b);
        if want_p {
            w_p.iter_mut().zip(&work.gp).for_each(|(a, b)| *a += b);
        }
    }

    fn control(&self, st: &BdfState) -> usize {
        st.order
    }

    fn impose_control(&self, st: &mut BdfState, control: usize) {
        st.order = control;
    }

    fn step_vjp(
        &self,
        system: &S,
        p: &[f64],
        st: &mut BdfState,
        step: Step,
        w: &mut [f64],
        w_p: &mut [f64],
        work: &mut BdfVjpWork,
        stats: &mut Stats,
    ) {
        let (n, k) = (st.n, st.order);
        let coef = st.coef;
        let row = |j: usize| j * n..(j + 1) * n;
        // accept: D'ⱼ = Dˢⱼ + D'_{j+1} (j ≤ k) ⇒ cumulative sums of the cotangents downwards.
        for j in 0..=k {
            let (lo, hi) = w.split_at_mut((j + 1) * n);
            hi[..n].iter_mut().zip(&lo[j * n..]).for_each(|(a, b)| *a += b);
        }
        // D'_{k+1} = e, D'_{k+2} = e − Dˢ_{k+1}; the old D_{k+2} is overwritten.
        for i in 0..n {
            let a2 = w[(k + 2) * n + i];
            work.ebar[i] = w[(k + 1) * n + i] + a2;
            w[(k + 1) * n + i] = -a2;
            w[(k + 2) * n + i] = 0.0;
        }
        // e = y' − y⁽⁰⁾ and the corrector y' − c f(y') = y⁽⁰⁾ − ψ:
        // v = (I − cJ)⁻ᵀ ē,  ȳ⁽⁰⁾ = v − ē,  ψ̄ = −v,  p̄ += c (∂f/∂p)ᵀ v.
        let c = step.h / coef.alpha[k];
        let t_new = step.t + step.h;
        let want_p = !w_p.is_empty();
        let nonzero = work.ebar.iter().any(|&x| x != 0.0);
        // y⁽⁰⁾ and ψ rows: Dˢⱼ gets ȳ⁽⁰⁾ (j ≤ k) and (γⱼ/αₖ) ψ̄ (1 ≤ j ≤ k). First the −ē part.
        for j in 0..=k {
            w[row(j)].iter_mut().zip(&work.ebar).for_each(|(a, e)| *a -= e);
        }
        if nonzero {
            let tsys = Transposed::new(system);
            if work.w.is_none() {
                work.w = Some(
                    WMatrix::new(&tsys, work.config)
                        .expect("a Jacobian pattern that worked forward works transposed"),
                );
            }
            let wm = work.w.as_mut().expect("just built");
            wm.refresh_jacobian(&tsys, t_new, &st.y_new, p, stats);
            wm.factorize(c, stats).expect("I − cJ was regular at the converged corrector");
            wm.solve_in_place(&mut work.ebar, stats).expect("factorized just above");
            let v = &work.ebar;
            for j in 0..=k {
                let g = 1.0 - if j > 0 { coef.gamma[j] / coef.alpha[k] } else { 0.0 };
                w[row(j)].iter_mut().zip(v).for_each(|(a, v)| *a += g * v);
            }
            if want_p {
                work.u.iter_mut().zip(v).for_each(|(u, v)| *u = c * v);
                system.vjp(t_new, &st.y_new, p, &work.u, &mut work.gy, &mut work.gp);
                stats.vjp_evals += 1;
                w_p.iter_mut().zip(&work.gp).for_each(|(a, b)| *a += b);
            }
        }
        // rescale: D̄ᵢ = Σⱼ (RU)ᵢⱼ D̄ˢⱼ for i, j ≤ k.
        if let Some(factor) = st.last_rescale {
            let ru = st.rescale_matrix(factor);
            let mut tmp = [0.0; ROWS];
            for i in 0..n {
                for (a, ru_a) in tmp.iter_mut().zip(&ru).take(k + 1) {
                    *a = (0..=k).map(|j| ru_a[j] * w[j * n + i]).sum();
                }
                for (j, a) in tmp.iter().enumerate().take(k + 1) {
                    w[j * n + i] = *a;
                }
            }
        }
    }
}
