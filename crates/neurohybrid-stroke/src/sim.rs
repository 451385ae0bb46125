//! Time integration of a fate model through the reperfusion switch.
//!
//! Reperfusion changes the right-hand side at the treatment time `T` and leaves the state
//! unchanged, so a run is two solves: `[0, T]` with the occluded system and `[T, t_end]` from
//! `y(T)` with the reperfused one. Any model that has the two phases (mechanistic, neural,
//! hybrid) is simulated by the same code ([`Phased`]).
//!
//! # Derivative w.r.t. the treatment time
//!
//! [`treatment_time_gradient`] differentiates a loss of the states after reperfusion w.r.t.
//! `T`. Moving a switch time is the classical switched-system sensitivity (the "impulse" of
//! the issue, but the jump is in the right-hand side, not the state): with `y⁻ = y(T⁻)`, a jump
//! map `y(T⁺) = M(y⁻)` and the adjoint `λ⁺ = ∂L/∂y(T⁺)`,
//!
//! ```text
//! dL/dT = λ⁺ᵀ [ ∂M/∂y · f_before(T, y⁻) − f_after(T, M(y⁻)) ]
//! ```
//!
//! (delaying the switch by `δ` runs the occluded system instead of the reperfused one on
//! `[T, T + δ]`, which moves `y(T + δ)` by `δ (f_before − f_after)` to first order; Bryson &
//! Ho 1975, *Applied Optimal Control*, §3.7, interior-point constraints). Reperfusion leaves the
//! state unchanged (`M = id`), so the bracket is the jump of the right-hand side. `λ⁺` is the
//! `∂L/∂y0` of the post-treatment solve from `y(T)` by the discrete adjoint
//! (`neurohybrid-solve`'s `DiscreteAdjoint`, one reverse pass); [`switch_time_derivative`] is
//! the bracket with an optional jump map ([`neurohybrid_solve::Impulse`], whose `vjp` gives
//! `λ⁺ᵀ ∂M/∂y` — maps with an explicit time dependence would add `λ⁺ᵀ ∂M/∂t`, which that
//! contract does not carry). Losses of states before `T` do not depend on `T` (the fit
//! losses of the calibration window: their derivative is exactly 0).

use neurohybrid_solve::sensitivity::{DiscreteAdjoint, Loss, gradient};
use neurohybrid_solve::{Impulse, PiController, Problem, SaveAt, StepSizeController, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{OdeSystem, Vjp};

use crate::error::{Result, StrokeError};

/// Relative tolerance of the fate integrations (the fractions are O(1)).
pub const RTOL: f64 = 1e-6;
/// Absolute tolerance of the fate integrations.
pub const ATOL: f64 = 1e-8;

/// A model with an occluded and a reperfused right-hand side sharing one parameter vector.
pub trait Phased {
    /// The system type of both phases.
    type System: OdeSystem + Clone;
    /// The system before reperfusion.
    fn occluded(&self) -> &Self::System;
    /// The system after reperfusion.
    fn reperfused(&self) -> &Self::System;
}

/// The controller used for every fate solve.
pub fn controller() -> PiController {
    PiController::new(RTOL, ATOL).with_max_steps(200_000)
}

/// Solves `system` from `y0` at `t0` and returns the states at `times` (all in `[t0, t1]`,
/// ascending) and at `t1`.
fn segment<S: OdeSystem + Clone, C: StepSizeController>(
    system: &S,
    params: &[f64],
    y0: &[f64],
    (t0, t1): (f64, f64),
    times: &[f64],
    ctrl: &C,
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    if t1 <= t0 {
        return Ok((times.iter().map(|_| y0.to_vec()).collect(), y0.to_vec()));
    }
    let mut save: Vec<f64> = times.iter().copied().filter(|&t| t > t0).collect();
    let n_at_start = times.len() - save.len();
    save.push(t1);
    let problem = Problem::new(system.clone(), y0.to_vec(), params.to_vec(), (t0, t1));
    let sol = solve(&problem, &Tsit5, ctrl, &SaveAt::Times(save))?;
    if !sol.is_success() {
        return Err(StrokeError::IntegrationFailed { status: format!("{:?}", sol.status()) });
    }
    let mut out: Vec<Vec<f64>> = (0..n_at_start).map(|_| y0.to_vec()).collect();
    for k in 0..sol.len() - 1 {
        out.push(sol.y(k).to_vec());
    }
    let last = sol.y(sol.len() - 1).to_vec();
    Ok((out, last))
}

/// States of `model` at `times` (ascending, `≥ 0`) from onset with healthy tissue `y0`, with
/// reperfusion at `t_treat` (`f64::INFINITY`: never).
///
/// # Errors
/// Unsorted or negative times; an integration that does not finish.
pub fn simulate<M: Phased>(
    model: &M,
    params: &[f64],
    y0: &[f64],
    t_treat: f64,
    times: &[f64],
) -> Result<Vec<Vec<f64>>> {
    check_schedule(t_treat, times)?;
    let t_end = times.last().copied().unwrap_or(0.0);
    let split = times.partition_point(|&t| t <= t_treat);
    let t_switch = t_treat.min(t_end);
    let ctrl = controller();
    let (mut out, y_t) =
        segment(model.occluded(), params, y0, (0.0, t_switch), &times[..split], &ctrl)?;
    if split < times.len() {
        let (after, _) =
            segment(model.reperfused(), params, &y_t, (t_treat, t_end), &times[split..], &ctrl)?;
        out.extend(after);
    }
    Ok(out)
}

fn check_schedule(t_treat: f64, times: &[f64]) -> Result<()> {
    if times.windows(2).any(|w| w[1] < w[0]) || times.first().is_some_and(|&t| t < 0.0) {
        return Err(StrokeError::InvalidParameter {
            name: "times",
            value: times[0],
            reason: "must be ascending and ≥ 0",
        });
    }
    if t_treat.is_nan() || t_treat < 0.0 {
        return Err(StrokeError::InvalidParameter {
            name: "t_treat",
            value: t_treat,
            reason: "must be ≥ 0",
        });
    }
    Ok(())
}

/// A loss of the states after reperfusion, its derivative w.r.t. the treatment time and the
/// adjoint at the switch ([`treatment_time_gradient`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TreatmentTimeGradient {
    /// The loss `L`.
    pub value: f64,
    /// `dL/dT` (per hour of delay; positive: later treatment increases `L`).
    pub dl_dt: f64,
    /// The adjoint at the switch, `λ⁺ = ∂L/∂y(T⁺)`.
    pub lambda: Vec<f64>,
    /// `dL/dp` through both phases (empty unless asked for).
    pub dl_dp: Vec<f64>,
}

/// `λ⁺ᵀ [∂M/∂y · f_before(t, y⁻) − f_after(t, M(y⁻))]`: the derivative of a loss w.r.t. the
/// time `t` at which `before` switches to `after`, with the state map `jump` applied at the
/// switch (`None`: the identity), given the pre-switch state `y⁻` and the adjoint
/// `λ⁺ = ∂L/∂y(t⁺)` (module docs).
pub fn switch_time_derivative<A: OdeSystem, B: OdeSystem>(
    before: &A,
    after: &B,
    jump: Option<&dyn Impulse>,
    t: f64,
    y_minus: &[f64],
    p: &[f64],
    lambda_plus: &[f64],
) -> f64 {
    let n = y_minus.len();
    let mut f_before = vec![0.0; n];
    before.rhs(t, y_minus, p, &mut f_before);
    let mut f_after = vec![0.0; n];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    match jump {
        None => {
            after.rhs(t, y_minus, p, &mut f_after);
            dot(lambda_plus, &f_before) - dot(lambda_plus, &f_after)
        }
        Some(map) => {
            let mut y_plus = vec![0.0; n];
            map.apply(t, y_minus, p, &mut y_plus);
            after.rhs(t, &y_plus, p, &mut f_after);
            // λ⁺ᵀ ∂M/∂y f_before = (∂M/∂yᵀ λ⁺)ᵀ f_before: one VJP of the map.
            let mut w_y = vec![0.0; n];
            map.vjp(t, y_minus, p, lambda_plus, &mut w_y, &mut []);
            dot(&w_y, &f_before) - dot(lambda_plus, &f_after)
        }
    }
}

/// The loss `loss` of the states of `model` at `times` (ascending, all after `t_treat`), with
/// reperfusion at `t_treat`, and its derivative w.r.t. `t_treat` (module docs): a forward solve
/// of `[0, T]`, the discrete adjoint of `[T, t_end]` for `λ⁺`, and the jump of the right-hand
/// side. With `params_too` also `dL/dp` through both phases (one more adjoint, of `[0, T]`
/// with the terminal cotangent `λ⁺`). `ctrl` controls every solve ([`controller`] is the
/// default; a constant step makes the discrete solution smooth in `T`, which is what a
/// finite-difference check needs).
///
/// # Errors
/// Unsorted times, a time not after `t_treat`, a non-finite `t_treat`; a solve that fails.
#[allow(clippy::too_many_arguments)]
pub fn treatment_time_gradient<M, C>(
    model: &M,
    params: &[f64],
    y0: &[f64],
    t_treat: f64,
    times: &[f64],
    loss: &dyn Loss,
    ctrl: &C,
    params_too: bool,
) -> Result<TreatmentTimeGradient>
where
    M: Phased,
    M::System: Vjp,
    C: StepSizeController,
{
    check_schedule(t_treat, times)?;
    if !t_treat.is_finite() || times.first().is_none_or(|&t| t <= t_treat) {
        return Err(StrokeError::InvalidParameter {
            name: "t_treat",
            value: t_treat,
            reason: "must be finite and before every loss time",
        });
    }
    let (_, y_t) = segment(model.occluded(), params, y0, (0.0, t_treat), &[], ctrl)?;
    let t_end = times[times.len() - 1];
    let after =
        Problem::new(model.reperfused().clone(), y_t.clone(), params.to_vec(), (t_treat, t_end));
    let adjoint = DiscreteAdjoint::default();
    let g = gradient(&after, &Tsit5, ctrl, &SaveAt::Times(times.to_vec()), loss, &adjoint)?;
    let dl_dt = switch_time_derivative(
        model.occluded(),
        model.reperfused(),
        None,
        t_treat,
        &y_t,
        params,
        &g.dl_dy0,
    );
    let mut dl_dp = Vec::new();
    if params_too {
        // The pre-treatment phase sees L only through y(T): L' = λ⁺ᵀ y(T) has the same
        // parameter gradient there.
        let lam = g.dl_dy0.clone();
        let terminal = move |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
            cot.copy_from_slice(&lam);
            lam.iter().zip(ys).map(|(a, b)| a * b).sum::<f64>()
        };
        let before =
            Problem::new(model.occluded().clone(), y0.to_vec(), params.to_vec(), (0.0, t_treat));
        let g0 =
            gradient(&before, &Tsit5, ctrl, &SaveAt::Times(vec![t_treat]), &terminal, &adjoint)?;
        dl_dp = g.dl_dp.iter().zip(&g0.dl_dp).map(|(a, b)| a + b).collect();
    }
    Ok(TreatmentTimeGradient { value: g.value, dl_dt, lambda: g.dl_dy0, dl_dp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurohybrid_solve::Scale;
    use neurohybrid_system::Jvp;

    /// `y' = −a y` (before) or `−b y` (after), one state, no parameters.
    #[derive(Clone)]
    struct Decay(f64);
    impl OdeSystem for Decay {
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs(&self, _t: f64, y: &[f64], _p: &[f64], dy: &mut [f64]) {
            dy[0] = -self.0 * y[0];
        }
    }
    impl Vjp for Decay {
        fn vjp(&self, _t: f64, _y: &[f64], _p: &[f64], w: &[f64], w_y: &mut [f64], _: &mut [f64]) {
            w_y[0] = -self.0 * w[0];
        }
    }
    impl Jvp for Decay {
        fn jvp(&self, _t: f64, _y: &[f64], _p: &[f64], v: &[f64], _: &[f64], out: &mut [f64]) {
            out[0] = -self.0 * v[0];
        }
    }

    #[test]
    fn switch_derivative_with_a_state_map_matches_the_closed_form() {
        // y(t_f) = s y0 e^{−aT} e^{−b(t_f − T)}  ⇒  dy(t_f)/dT = (b − a) y(t_f).
        let (a, b, s, y0, t, tf) = (0.7f64, 0.2f64, 0.4, 2.0, 1.5f64, 4.0f64);
        let y_minus = y0 * (-a * t).exp();
        let lam = (-b * (tf - t)).exp(); // ∂y(t_f)/∂y(T⁺)
        let yf = s * y_minus * (-b * (tf - t)).exp();
        let map = Scale::all(s);
        let d =
            switch_time_derivative(&Decay(a), &Decay(b), Some(&map), t, &[y_minus], &[], &[lam]);
        assert!((d - (b - a) * yf).abs() < 1e-14, "{d} vs {}", (b - a) * yf);
        let d = switch_time_derivative(&Decay(a), &Decay(b), None, t, &[y_minus], &[], &[lam]);
        assert!((d - (b - a) * y_minus * lam).abs() < 1e-14);
    }

    struct Two(Decay, Decay);
    impl Phased for Two {
        type System = Decay;
        fn occluded(&self) -> &Decay {
            &self.0
        }
        fn reperfused(&self) -> &Decay {
            &self.1
        }
    }

    #[test]
    fn treatment_gradient_of_a_scalar_switch_is_exact() {
        let model = Two(Decay(0.7), Decay(0.2));
        let loss = |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
            cot[0] = 1.0;
            ys[0]
        };
        let g =
            treatment_time_gradient(&model, &[], &[2.0], 1.5, &[4.0], &loss, &controller(), false)
                .unwrap();
        let exact = (0.2 - 0.7) * 2.0 * (-0.7f64 * 1.5 - 0.2 * 2.5).exp();
        assert!((g.dl_dt - exact).abs() < 1e-5 * exact.abs(), "{} vs {exact}", g.dl_dt);
        assert!(
            treatment_time_gradient(&model, &[], &[2.0], 4.0, &[4.0], &loss, &controller(), false)
                .is_err()
        );
    }
}
