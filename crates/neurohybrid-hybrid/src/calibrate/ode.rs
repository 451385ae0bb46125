//! [`OdeResiduals`]: an ODE problem observed at fixed times, with forward-sensitivity
//! Jacobians.

use std::cell::RefCell;
use std::sync::Arc;

use neurohybrid_solve::sensitivity::{Column, SensitivitySystem};
use neurohybrid_solve::{Impulse, Problem, SaveAt, StepSizeController, Stepper, solve};
use neurohybrid_system::{Jvp, OdeSystem};

use super::{ResidualModel, check_len};
use crate::error::{HybridError, Result};

/// The augmented system `[y; v_1; …; v_c]` that [`OdeResiduals`] integrates for its Jacobian:
/// `neurohybrid_solve::sensitivity::SensitivitySystem` itself (the one implementation of the
/// forward-sensitivity equations, with its block lower-triangular Jacobian for implicit
/// steppers). The alias keeps the name this crate exported before it reused solve's type.
pub type TangentSystem<'a, S> = SensitivitySystem<'a, S>;

/// Residuals of an ODE [`Problem`] observed at fixed times:
/// `r_{k,i} = (y_{obs_i}(t_k; θ) − data_{k,i}) / σ_i` over the unmasked observations, where `θ`
/// collects selected parameters and, optionally, selected initial-state components.
///
/// The Jacobian comes from forward sensitivities: the state is augmented with one tangent
/// column per calibrated quantity and the augmented system is solved by the same stepper and
/// controller (so the sensitivities are error-controlled like the state), impulses included
/// through [`Impulse::jvp`]. That costs a solve of `n·(1 + c)` states for `c` quantities — the
/// right method for the handful of parameters calibration is about. Use a scalar `atol` in the
/// controller (the augmented state is longer than `n`).
///
/// The augmented system is solve's [`SensitivitySystem`]; when the model has a
/// [`neurohybrid_system::Jacobian`], so does the augmented system, and implicit steppers
/// (BDF, ESDIRK, Rodas4) calibrate stiff models.
pub struct OdeResiduals<S, St, C> {
    problem: RefCell<Problem<S>>,
    stepper: St,
    controller: C,
    times: Vec<f64>,
    observed: Vec<usize>,
    data: Vec<f64>,
    inv_sigma: Vec<f64>,
    /// `times` as the save schedule (built once, not per solve).
    save_at: SaveAt,
    /// Flat indices `k·n_obs + i` of the observations that are present.
    present: Vec<usize>,
    targets: Vec<Column>,
    /// Per target, the parameter tangent `e_j` (empty for an initial-state column), shared by
    /// the impulse maps of the augmented problem.
    v_p: Arc<Vec<Vec<f64>>>,
}

impl<S, St, C> std::fmt::Debug for OdeResiduals<S, St, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdeResiduals")
            .field("times", &self.times)
            .field("observed", &self.observed)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl<S: OdeSystem, St, C> OdeResiduals<S, St, C> {
    /// Observe every state component of `problem` at `times` (sorted, inside the span) with
    /// data `data` (`times.len() × n_states`, row-major) and σ = 1, calibrating all
    /// parameters. Refine with the builder methods.
    pub fn new(
        problem: Problem<S>,
        stepper: St,
        controller: C,
        times: Vec<f64>,
        data: Vec<f64>,
    ) -> Result<Self> {
        let n = problem.system().n_states();
        let m = problem.system().n_params();
        check_len("initial state", n, problem.y0().len())?;
        check_len("parameters", m, problem.params().len())?;
        let save_at = SaveAt::Times(times.clone());
        let mut me = OdeResiduals {
            problem: RefCell::new(problem),
            stepper,
            controller,
            times,
            observed: (0..n).collect(),
            data,
            inv_sigma: vec![1.0; n],
            save_at,
            present: Vec::new(),
            targets: Vec::new(),
            v_p: Arc::default(),
        };
        me.set_targets((0..m).map(Column::Param).collect());
        me.refresh(None)?;
        Ok(me)
    }

    /// Observe only these state components (the data then hold `times.len() × observed.len()`).
    pub fn observed(mut self, observed: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        let n = self.problem.borrow().system().n_states();
        if let Some(&bad) = observed.iter().find(|&&i| i >= n) {
            return Err(HybridError::InvalidConfig {
                what: "observed state index".into(),
                message: format!("{bad} is not below n_states = {n}"),
            });
        }
        self.inv_sigma = vec![1.0; observed.len()];
        self.observed = observed;
        self.data = data;
        self.refresh(None)?;
        Ok(self)
    }

    /// One noise level for every observation.
    pub fn sigma(mut self, sigma: f64) -> Result<Self> {
        let k = self.observed.len();
        self.set_sigma(vec![sigma; k])?;
        Ok(self)
    }

    /// One noise level per observed component.
    pub fn sigma_per_component(mut self, sigma: Vec<f64>) -> Result<Self> {
        self.set_sigma(sigma)?;
        Ok(self)
    }

    fn set_sigma(&mut self, sigma: Vec<f64>) -> Result<()> {
        check_len("sigma", self.observed.len(), sigma.len())?;
        if let Some(bad) = sigma.iter().position(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(HybridError::InvalidConfig {
                what: format!("sigma[{bad}]"),
                message: format!("{} must be positive and finite", sigma[bad]),
            });
        }
        self.inv_sigma = sigma.iter().map(|s| 1.0 / s).collect();
        Ok(())
    }

    /// Missing observations: `mask[k·n_obs + i]` is `true` where the value is present.
    pub fn mask(mut self, mask: Vec<bool>) -> Result<Self> {
        self.refresh(Some(mask))?;
        Ok(self)
    }

    /// Calibrate these parameters (indices into the problem's parameter vector) and these
    /// initial-state components, in that order: `θ = [p_{params…}, y0_{y0…}]`. The others keep
    /// the problem's values.
    pub fn calibrate(mut self, params: Vec<usize>, y0: Vec<usize>) -> Result<Self> {
        let (n, m) = {
            let pb = self.problem.borrow();
            (pb.system().n_states(), pb.system().n_params())
        };
        if let Some(&bad) = params.iter().find(|&&j| j >= m) {
            return Err(HybridError::InvalidConfig {
                what: "calibrated parameter index".into(),
                message: format!("{bad} is not below n_params = {m}"),
            });
        }
        if let Some(&bad) = y0.iter().find(|&&i| i >= n) {
            return Err(HybridError::InvalidConfig {
                what: "calibrated initial-state index".into(),
                message: format!("{bad} is not below n_states = {n}"),
            });
        }
        self.set_targets(
            params
                .into_iter()
                .map(Column::Param)
                .chain(y0.into_iter().map(Column::InitialState))
                .collect(),
        );
        Ok(self)
    }

    fn set_targets(&mut self, targets: Vec<Column>) {
        let m = self.problem.borrow().system().n_params();
        let v_p = targets
            .iter()
            .map(|t| match *t {
                Column::Param(j) => {
                    let mut e = vec![0.0; m];
                    e[j] = 1.0;
                    e
                }
                Column::InitialState(_) => Vec::new(),
            })
            .collect();
        self.v_p = Arc::new(v_p);
        self.targets = targets;
    }

    /// The current value of `θ` in the problem (a natural starting point, or the truth of a
    /// synthetic problem).
    pub fn theta(&self) -> Vec<f64> {
        let pb = self.problem.borrow();
        self.targets
            .iter()
            .map(|t| match *t {
                Column::Param(j) => pb.params()[j],
                Column::InitialState(i) => pb.y0()[i],
            })
            .collect()
    }

    fn refresh(&mut self, mask: Option<Vec<bool>>) -> Result<()> {
        let total = self.times.len() * self.observed.len();
        check_len("observations (times × observed)", total, self.data.len())?;
        let mask = match mask {
            Some(m) => {
                check_len("mask", total, m.len())?;
                m
            }
            None => vec![true; total],
        };
        self.present = (0..total).filter(|&i| mask[i]).collect();
        if let Some(&index) = self.present.iter().find(|&&i| !self.data[i].is_finite()) {
            return Err(HybridError::NonFinite { what: "observations".into(), index });
        }
        Ok(())
    }

    fn set_theta(&self, theta: &[f64]) -> Result<()> {
        check_len("theta", self.targets.len(), theta.len())?;
        let mut pb = self.problem.borrow_mut();
        for (t, &v) in self.targets.iter().zip(theta) {
            match *t {
                Column::Param(j) => pb.params_mut()[j] = v,
                Column::InitialState(i) => pb.y0_mut()[i] = v,
            }
        }
        Ok(())
    }

    /// Residuals from states saved at the observation times (`ys` of stride `stride`, state in
    /// the first `n` components of each row).
    fn fill_residuals(&self, ys: &[f64], stride: usize, r: &mut [f64]) {
        let no = self.observed.len();
        for (ri, &flat) in r.iter_mut().zip(&self.present) {
            let (k, i) = (flat / no, flat % no);
            let y = ys[k * stride + self.observed[i]];
            *ri = (y - self.data[flat]) * self.inv_sigma[i];
        }
    }
}

fn solve_failed(status: neurohybrid_solve::Status) -> HybridError {
    HybridError::Solve(neurohybrid_solve::SolveError::ForwardSolveFailed { status })
}

impl<S, St, C> ResidualModel for OdeResiduals<S, St, C>
where
    S: Jvp,
    St: Stepper<S> + for<'a> Stepper<SensitivitySystem<'a, S>>,
    C: StepSizeController,
{
    fn n_params(&self) -> usize {
        self.targets.len()
    }

    fn n_residuals(&self) -> usize {
        self.present.len()
    }

    fn residuals(&self, theta: &[f64], r: &mut [f64]) -> Result<()> {
        check_len("residuals", self.present.len(), r.len())?;
        self.set_theta(theta)?;
        let pb = self.problem.borrow();
        let sol = solve(&*pb, &self.stepper, &self.controller, &self.save_at)?;
        if !sol.is_success() {
            return Err(solve_failed(sol.status()));
        }
        self.fill_residuals(sol.ys(), pb.system().n_states(), r);
        Ok(())
    }

    fn jacobian(&self, theta: &[f64], r: &mut [f64], jac: &mut [f64]) -> Result<()> {
        let c = self.targets.len();
        check_len("residuals", self.present.len(), r.len())?;
        check_len("Jacobian", self.present.len() * c, jac.len())?;
        self.set_theta(theta)?;
        let pb = self.problem.borrow();
        let sys = pb.system();
        let n = sys.n_states();
        let tangent = SensitivitySystem::new(sys, self.targets.clone());
        let z0 = tangent.initial_state(pb.y0());
        let mut aug = Problem::new(tangent, z0, pb.params().to_vec(), pb.t_span());
        for imp in pb.impulses() {
            aug.push_impulse(
                imp.t,
                Arc::new(TangentImpulse {
                    map: Arc::clone(&imp.map),
                    n,
                    v_p: Arc::clone(&self.v_p),
                }),
            );
        }
        let sol = solve(&aug, &self.stepper, &self.controller, &self.save_at)?;
        if !sol.is_success() {
            return Err(solve_failed(sol.status()));
        }
        let stride = n * (1 + c);
        let ys = sol.ys();
        self.fill_residuals(ys, stride, r);
        let no = self.observed.len();
        for (row, &flat) in jac.chunks_exact_mut(c).zip(&self.present) {
            let (k, i) = (flat / no, flat % no);
            let zk = &ys[k * stride..(k + 1) * stride];
            for (col, jv) in row.iter_mut().enumerate() {
                *jv = zk[n * (1 + col) + self.observed[i]] * self.inv_sigma[i];
            }
        }
        Ok(())
    }
}

/// An impulse of the original problem acting on `[y; v_1; …]`: `y ← M(y)`,
/// `v_j ← ∂M/∂y v_j + ∂M/∂p e_j`.
struct TangentImpulse {
    map: Arc<dyn Impulse>,
    n: usize,
    v_p: Arc<Vec<Vec<f64>>>,
}

impl Impulse for TangentImpulse {
    fn apply(&self, t: f64, z: &[f64], p: &[f64], out: &mut [f64]) {
        let n = self.n;
        let (y, s) = z.split_at(n);
        let (yo, so) = out.split_at_mut(n);
        self.map.apply(t, y, p, yo);
        for ((sc, dsc), vp) in s.chunks_exact(n).zip(so.chunks_exact_mut(n)).zip(self.v_p.iter()) {
            self.map.jvp(t, y, p, sc, vp, dsc);
        }
    }
    /// Never called: the tangent problem is only integrated forward. A reverse pass through it
    /// would need second derivatives of `M`, which the `Impulse` contract does not provide, so
    /// this writes NaN rather than a wrong number.
    fn vjp(&self, _t: f64, _z: &[f64], _p: &[f64], _w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        w_y.fill(f64::NAN);
        w_p.fill(f64::NAN);
    }
    /// Never called, for the same reason as [`TangentImpulse::vjp`].
    fn jvp(&self, _t: f64, _z: &[f64], _p: &[f64], _v: &[f64], _vp: &[f64], out: &mut [f64]) {
        out.fill(f64::NAN);
    }
}
