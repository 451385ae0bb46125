//! The discrete adjoint of a (E)SDIRK step: [`StepVjp`] for [`ImplicitEuler`], [`TrBdf2`],
//! [`Esdirk4`], [`Kvaerno5`] and any [`Sdirk`] tableau.
//!
//! A stage is `k_i = f(t_n + c_i h, Y_i)` with `Y_i = E_i + hγ k_i`,
//! `E_i = y_n + h Σ_{j<i} a_ij k_j`, and `y_{n+1} = y_n + h Σ b_i k_i` (for stiffly accurate
//! tableaus this is `Y_s`). At the converged stage the implicit function theorem gives
//! `dk_i = (I − hγJ_i)⁻¹ (J_i dE_i + ∂f/∂p dp)`, `J_i = ∂f/∂y(Y_i)`, so with
//! `u_i = ∂L/∂k_i = h (b_i λ + Σ_{j>i} a_ji g_j)`:
//!
//! ```text
//! (I − hγJ_i)ᵀ v_i = u_i              one transpose solve (explicit stage: v_i = u_i)
//! g_i = J_iᵀ v_i,  ∂L/∂p += ∂f/∂pᵀ v_i   one VJP
//! ∂L/∂y_n = λ + Σ_i g_i
//! ```
//!
//! No second derivatives are needed (unlike a Rosenbrock method's adjoint, whose stages contain
//! `J` explicitly; Sandu 2006). The Jacobian is evaluated fresh at each converged stage — the
//! forward Newton iteration's reused `J` is only an iteration matrix and would make the adjoint
//! inexact. The transpose is solved as `(I − hγJᵀ)` through the crate's [`WMatrix`] on a view
//! of the system whose Jacobian is `Jᵀ` (pattern transposed once), so dense/sparse LU and the
//! symbolic-factorization reuse come for free. The forward step's Newton tolerance bounds how
//! well `k_i = f(Y_i)` holds, and therefore how exact the adjoint is: tighten
//! [`crate::DirkConfig::tolerances`] for gradient checks.

use crate::sdirk::{Esdirk4, ImplicitEuler, Kvaerno5, Sdirk, SdirkState, TrBdf2};
use crate::tableaus::DirkTableau;
use crate::wmatrix::{WConfig, WMatrix};
use neurohybrid_solve::sensitivity::StepVjp;
use neurohybrid_solve::{Stats, Step, StepState};
use neurohybrid_system::{CsrMatrix, Jacobian, OdeSystem, SparsityPattern, Vjp};
use std::cell::RefCell;

mod bdf_vjp;
mod rosenbrock_vjp;

pub use bdf_vjp::BdfVjpWork;
pub use rosenbrock_vjp::RosenbrockVjpWork;

/// `S` seen through its transposed Jacobian (for transpose solves with [`WMatrix`]).
struct Transposed<'a, S: ?Sized> {
    system: &'a S,
    pattern: SparsityPattern,
    /// `map[k]`: position in `Jᵀ`'s values of `J`'s `k`-th stored entry.
    map: Vec<usize>,
    jac: RefCell<CsrMatrix>,
}

impl<'a, S: Jacobian + ?Sized> Transposed<'a, S> {
    fn new(system: &'a S) -> Self {
        let pat = system.sparsity();
        let n = pat.major_dim();
        let (offs, cols) = (pat.major_offsets(), pat.minor_indices());
        let mut count = vec![0usize; n + 1];
        for &c in cols {
            count[c + 1] += 1;
        }
        for i in 0..n {
            count[i + 1] += count[i];
        }
        let t_offs = count.clone();
        let mut t_cols = vec![0usize; cols.len()];
        let mut map = vec![0usize; cols.len()];
        let mut next = count;
        for r in 0..n {
            for (k, &c) in cols.iter().enumerate().take(offs[r + 1]).skip(offs[r]) {
                let pos = next[c];
                t_cols[pos] = r;
                map[k] = pos;
                next[c] += 1;
            }
        }
        let pattern = SparsityPattern::try_from_offsets_and_indices(n, n, t_offs, t_cols)
            .expect("the transpose of a valid pattern is valid (rows visited in order)");
        let jac = RefCell::new(system.jacobian_matrix());
        Self { system, pattern, map, jac }
    }
}

impl<S: OdeSystem + ?Sized> OdeSystem for Transposed<'_, S> {
    fn n_states(&self) -> usize {
        self.system.n_states()
    }
    fn n_params(&self) -> usize {
        self.system.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.system.rhs(t, y, p, dy)
    }
}

impl<S: Jacobian + ?Sized> Jacobian for Transposed<'_, S> {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let jac = &mut *self.jac.borrow_mut();
        self.system.jacobian(t, y, p, jac);
        let v = out.values_mut();
        for (&k, &x) in self.map.iter().zip(jac.values()) {
            v[k] = x;
        }
    }
}

/// Scratch of the (E)SDIRK reverse step.
pub struct DirkVjpWork {
    /// `I − hγJᵀ` (the system's pattern transposed; `None` until first use, so building the
    /// work never fails).
    w: Option<WMatrix>,
    config: WConfig,
    y_stage: Vec<Vec<f64>>,
    g: Vec<Vec<f64>>,
    u: Vec<f64>,
    gp: Vec<f64>,
}

impl std::fmt::Debug for DirkVjpWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirkVjpWork").field("stages", &self.g.len()).finish_non_exhaustive()
    }
}

fn work(tab: &DirkTableau, config: WConfig, n: usize, m: usize) -> DirkVjpWork {
    let s = tab.stages();
    DirkVjpWork {
        w: None,
        config,
        y_stage: vec![vec![0.0; n]; s],
        g: vec![vec![0.0; n]; s],
        u: vec![0.0; n],
        gp: vec![0.0; m],
    }
}

#[allow(clippy::too_many_arguments)]
fn dirk_step_vjp<S: Vjp + Jacobian + ?Sized>(
    tab: &DirkTableau,
    system: &S,
    p: &[f64],
    st: &SdirkState,
    step: Step,
    w: &mut [f64],
    w_p: &mut [f64],
    wk: &mut DirkVjpWork,
    stats: &mut Stats,
) {
    let Step { t, h } = step;
    let s = tab.stages();
    let k = st.stages();
    let y = st.y();
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
    // Converged stage values Y_i = y + h Σ_{j≤i} a_ij k_j (the explicit first stage is y).
    for i in 0..s {
        let yi = &mut wk.y_stage[i];
        yi.copy_from_slice(y);
        for (j, &a) in tab.a[i].iter().enumerate() {
            if a != 0.0 {
                yi.iter_mut().zip(&k[j]).for_each(|(z, kj)| *z += h * a * kj);
            }
        }
    }
    for i in (0..s).rev() {
        let u = &mut wk.u;
        let hb = h * tab.b[i];
        u.iter_mut().zip(w.iter()).for_each(|(u, w)| *u = hb * w);
        for j in i + 1..s {
            let a = tab.a[j][i];
            if a != 0.0 {
                u.iter_mut().zip(&wk.g[j]).for_each(|(u, g)| *u += h * a * g);
            }
        }
        if u.iter().all(|&x| x == 0.0) {
            wk.g[i].fill(0.0);
            continue;
        }
        let ti = t + tab.c[i] * h;
        let implicit = tab.a[i].get(i).is_some_and(|&a| a != 0.0);
        if implicit {
            wm.refresh_jacobian(&tsys, ti, &wk.y_stage[i], p, stats);
            // A singular I − hγJ at a stage the forward Newton converged on cannot happen for
            // the step sizes it accepted; if it does, the Jacobian is not the one Newton used.
            wm.factorize(hg, stats).expect("I − hγJ was regular at the converged stage");
            wm.solve_in_place(u, stats).expect("factorized just above");
        }
        let (g, gp) = (&mut wk.g[i], &mut wk.gp);
        system.vjp(ti, &wk.y_stage[i], p, u, g, if want_p { gp } else { &mut [] });
        stats.vjp_evals += 1;
        if want_p {
            w_p.iter_mut().zip(gp.iter()).for_each(|(a, b)| *a += b);
        }
    }
    for g in &wk.g[..s] {
        w.iter_mut().zip(g).for_each(|(w, g)| *w += g);
    }
}

macro_rules! dirk_step_vjp {
    ($($ty:ty),*) => {$(
        impl<S: Vjp + Jacobian + ?Sized> StepVjp<S> for $ty {
            type VjpWork = DirkVjpWork;
            fn vjp_work(&self, system: &S, _state: &SdirkState) -> DirkVjpWork {
                work(self.tableau(), self.config().w, system.n_states(), system.n_params())
            }
            fn step_vjp(
                &self,
                system: &S,
                p: &[f64],
                state: &mut SdirkState,
                step: Step,
                w: &mut [f64],
                w_p: &mut [f64],
                work: &mut DirkVjpWork,
                stats: &mut Stats,
            ) {
                dirk_step_vjp(self.tableau(), system, p, state, step, w, w_p, work, stats)
            }
        }
    )*};
}

dirk_step_vjp!(ImplicitEuler, TrBdf2, Esdirk4, Kvaerno5, Sdirk);
