//! One generic explicit Runge–Kutta stepper driven by a [`ButcherTableau`].

use crate::tableau::ButcherTableau;
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, hermite_coefficients};
use neurohybrid_system::OdeSystem;

/// Working memory of an explicit RK solve, allocated once by `init`.
///
/// Stage values `k_i = f(t + c_i h, Y_i)` of the last computed step stay readable through
/// [`RkState::stages`] until the next step (for FSAL methods `accept` moves the last stage into
/// slot 0, where it becomes the next step's first stage).
#[derive(Debug, Clone)]
pub struct RkState {
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    tmp: Vec<f64>,
    k: Vec<Vec<f64>>,
    /// `k[0] == f(t_n, y_n)` for the current state.
    k0_valid: bool,
    /// `f(t_{n+1}, y_{n+1})`, computed for cubic Hermite output by non-FSAL methods; becomes
    /// the next step's first stage so dense output costs nothing extra in the long run.
    f_new: Vec<f64>,
    f_new_valid: bool,
}

impl RkState {
    /// Stage derivatives of the last step.
    pub fn stages(&self) -> &[Vec<f64>] {
        &self.k
    }
}

impl StepState for RkState {
    fn y(&self) -> &[f64] {
        &self.y
    }
    fn y_mut(&mut self) -> &mut [f64] {
        &mut self.y
    }
    fn y_proposed(&self) -> &[f64] {
        &self.y_new
    }
    fn error_estimate(&self) -> &[f64] {
        &self.err
    }
    fn dydt(&self) -> Option<&[f64]> {
        self.k0_valid.then_some(&self.k[0][..])
    }
}

/// `out = y + h Σ_j coeffs_j k_j`.
fn combine(out: &mut [f64], y: &[f64], h: f64, coeffs: &[f64], k: &[Vec<f64>]) {
    out.copy_from_slice(y);
    for (&a, kj) in coeffs.iter().zip(k) {
        if a != 0.0 {
            let ha = h * a;
            out.iter_mut().zip(kj).for_each(|(o, k)| *o += ha * k);
        }
    }
}

pub(crate) fn init<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    t0: f64,
    y0: &[f64],
    stats: &mut Stats,
) -> RkState {
    let n = system.n_states();
    let mut st = RkState {
        y: y0.to_vec(),
        y_new: vec![0.0; n],
        err: vec![0.0; n],
        tmp: vec![0.0; n],
        k: vec![vec![0.0; n]; tab.stages()],
        k0_valid: false,
        f_new: vec![0.0; n],
        f_new_valid: false,
    };
    // c₁ = 0 for every explicit method: f(t0, y0) is the first stage, and the initial-step
    // heuristic can reuse it.
    system.rhs(t0, y0, p, &mut st.k[0]);
    stats.rhs_evals += 1;
    st.k0_valid = true;
    st
}

pub(crate) fn step<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &mut RkState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome {
    let Step { t, h } = step;
    let s = tab.stages();
    if !st.k0_valid {
        system.rhs(t, &st.y, p, &mut st.k[0]);
        stats.rhs_evals += 1;
        st.k0_valid = true;
    }
    for i in 1..s {
        let (done, rest) = st.k.split_at_mut(i);
        if tab.fsal && i == s - 1 {
            // The last stage is evaluated at the new solution itself.
            combine(&mut st.y_new, &st.y, h, tab.b, done);
            system.rhs(t + h, &st.y_new, p, &mut rest[0]);
        } else {
            combine(&mut st.tmp, &st.y, h, tab.a[i], done);
            system.rhs(t + tab.c[i] * h, &st.tmp, p, &mut rest[0]);
        }
        stats.rhs_evals += 1;
    }
    if !tab.fsal {
        combine(&mut st.y_new, &st.y, h, tab.b, &st.k);
    }
    if let Some(e) = tab.b_err {
        st.err.fill(0.0);
        for (&w, kj) in e.iter().zip(&st.k) {
            if w != 0.0 {
                let hw = h * w;
                st.err.iter_mut().zip(kj).for_each(|(o, k)| *o += hw * k);
            }
        }
    }
    StepOutcome::Computed
}

pub(crate) fn dense<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &mut RkState,
    step: Step,
    coeffs: &mut [f64],
    stats: &mut Stats,
) {
    let n = st.y.len();
    let Step { t, h } = step;
    match tab.interpolant {
        Some(rows) => {
            coeffs[..n].copy_from_slice(&st.y);
            for j in 0..tab.dense_degree() {
                let c = &mut coeffs[(j + 1) * n..(j + 2) * n];
                c.fill(0.0);
                for (row, kj) in rows.iter().zip(&st.k) {
                    let w = h * row[j];
                    if w != 0.0 {
                        c.iter_mut().zip(kj).for_each(|(o, k)| *o += w * k);
                    }
                }
            }
        }
        None => {
            let f1: &[f64] = if tab.fsal {
                &st.k[tab.stages() - 1]
            } else {
                if !st.f_new_valid {
                    system.rhs(t + h, &st.y_new, p, &mut st.f_new);
                    stats.rhs_evals += 1;
                    st.f_new_valid = true;
                }
                &st.f_new
            };
            hermite_coefficients(&st.y, &st.k[0], &st.y_new, f1, h, coeffs);
        }
    }
}

pub(crate) fn accept(tab: &ButcherTableau, st: &mut RkState) {
    std::mem::swap(&mut st.y, &mut st.y_new);
    if tab.fsal {
        st.k.swap(0, tab.stages() - 1);
        st.k0_valid = true;
    } else if st.f_new_valid {
        std::mem::swap(&mut st.k[0], &mut st.f_new);
        st.f_new_valid = false;
        st.k0_valid = true;
    } else {
        st.k0_valid = false;
    }
}

pub(crate) fn restart(st: &mut RkState) {
    st.k0_valid = false;
    st.f_new_valid = false;
}
