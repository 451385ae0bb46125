//! [`ForwardSensitivity`]: the sensitivity equations integrated with the state.

use super::{Gradient, Loss, MemoryReport, Sensitivity, loss_cotangents, save_times};
use crate::controller::StepSizeController;
use crate::error::{Result, SolveError};
use crate::problem::Problem;
use crate::save::SaveAt;
use crate::solution::Solution;
use crate::solve::solve;
use crate::stats::Stats;
use crate::stepper::Stepper;
use neurohybrid_system::{
    ColumnColoring, CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, pattern_from_rows,
};
use std::sync::{Mutex, OnceLock};

/// Forward (tangent) sensitivities: for every requested direction `θ_j` (a parameter or an
/// initial-state component) integrate `S_j = ∂y/∂θ_j` with
/// `S_j' = ∂f/∂y · S_j + ∂f/∂θ_j` (one [`Jvp`] per column), `S_j(t0) = ∂y0/∂θ_j`, and at an
/// impulse `S_j ← ∂M/∂y · S_j + ∂M/∂θ_j` ([`crate::Impulse::jvp`]). Then
/// `∂L/∂θ_j = Σ_k (∂L/∂y(t_k)) · S_j(t_k)`.
///
/// **Augmented system, not step-synchronous.** The columns are appended to the state
/// ([`SensitivitySystem`], `n·(1 + c)` components) and the augmented system is solved by the
/// given stepper and controller. So any stepper works unchanged, dense output gives the
/// sensitivities at save times inside steps, and the controller's error norm covers the
/// sensitivities too — their local error is controlled like the state's (CVODES's
/// `errconS = true`; Hindmarsh et al. 2005, ACM TOMS 31). A step-synchronous scheme that
/// reuses the state's step sizes would be cheaper per step, but its sensitivity error is then
/// unchecked, which on a reaction–diffusion front is where it is largest. The price: the
/// augmented steps may be somewhat smaller than the state's alone, and the cost grows
/// linearly in the number of columns — the method for a few parameters.
///
/// Use a scalar `atol` (or per-component tolerances for all `n·(1 + c)` components); the
/// columns are in units of `y` per unit of `θ_j`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardSensitivity {
    /// Parameters to differentiate w.r.t.; `None` = all.
    pub params: Option<Vec<usize>>,
    /// Also compute `∂L/∂y0` (`n` more columns).
    pub wrt_y0: bool,
}

impl ForwardSensitivity {
    /// All parameters and the initial state.
    pub fn all() -> Self {
        Self { params: None, wrt_y0: true }
    }

    /// All parameters, not the initial state (`Gradient::dl_dy0` stays empty).
    pub fn params() -> Self {
        Self { params: None, wrt_y0: false }
    }

    /// Only the listed parameters (the others' entries of `dl_dp` are NaN).
    pub fn params_subset(params: Vec<usize>) -> Self {
        Self { params: Some(params), wrt_y0: false }
    }

    /// Also compute `∂L/∂y0`.
    pub fn with_y0(mut self) -> Self {
        self.wrt_y0 = true;
        self
    }

    fn columns(&self, n: usize, m: usize) -> Result<Vec<Column>> {
        let mut cols: Vec<Column> = match &self.params {
            None => (0..m).map(Column::Param).collect(),
            Some(ps) => {
                if let Some(&bad) = ps.iter().find(|&&j| j >= m) {
                    return Err(SolveError::LengthMismatch {
                        what: "sensitivity parameter index (expected < n_params)",
                        expected: m,
                        found: bad,
                    });
                }
                ps.iter().copied().map(Column::Param).collect()
            }
        };
        if self.wrt_y0 {
            cols.extend((0..n).map(Column::InitialState));
        }
        Ok(cols)
    }
}

/// What a sensitivity column differentiates w.r.t.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Parameter `p_j`.
    Param(usize),
    /// Initial-state component `y0_i`.
    InitialState(usize),
}

/// The state augmented with sensitivity columns, `[y; S_1; …; S_c]`, as an [`OdeSystem`]:
/// `f_aug = [f(t, y, p); J S_1 + ∂f/∂θ_1; …]`. Parameter tangents are unit vectors prepared at
/// construction, so `rhs` does not allocate.
///
/// # Jacobian (implicit steppers)
///
/// When the system has a [`Jacobian`], so does the augmented system, and BDF, (E)SDIRK and
/// Rosenbrock steppers can integrate it. It is block lower triangular,
///
/// ```text
/// ⎡ J            ⎤      J  = ∂f/∂y
/// ⎢ H₁  J        ⎥      Hⱼ = ∂/∂y (J Sⱼ + ∂f/∂θⱼ)
/// ⎣ H₂      J    ⎦
/// ```
///
/// with every block on `J`'s sparsity pattern (`(J Sⱼ)ᵢ` depends on `y` only through the
/// entries `fᵢ` depends on). The diagonal blocks are the system's `J`. The `Hⱼ` need second
/// derivatives, which the system traits do not offer; they are central differences of the
/// column JVPs over a coloring of `J`'s pattern (two JVPs per color and column, step
/// `ε = ε_mach^{1/3}(1 + max|y|)`, error `O(ε²)`, exact to rounding for `f` quadratic in `y`).
///
/// Why the full matrix and not only the block diagonal `I − hγJ` per column that CVODES's
/// simultaneous corrector uses (Hindmarsh et al. 2005, ACM TOMS 31, §3): a Newton corrector
/// (BDF, SDIRK) converges with either, but a Rosenbrock method's order conditions assume the
/// exact Jacobian — with the block-diagonal approximation Rodas4 would lose its order on the
/// sensitivity columns. The lower blocks cost `2·colors·c` JVPs per Jacobian evaluation,
/// which implicit steppers amortize over many steps; the factorization of the augmented `W`
/// (`c + 1` blocks, `(2c + 1)·nnz(J)` entries) is the larger price, acceptable for the few
/// columns forward sensitivities are meant for.
pub struct SensitivitySystem<'a, S: ?Sized> {
    system: &'a S,
    n: usize,
    cols: Vec<Column>,
    /// `v_p` per column: `e_j` for `Param(j)`, empty for `InitialState`.
    v_p: Vec<Vec<f64>>,
    /// The augmented Jacobian's structure (built on first use: needs `S: Jacobian`).
    jac: OnceLock<AugmentedJacobian>,
    /// Scratch of [`Jacobian::jacobian`] (a lock, so the system stays `Sync`).
    scratch: Mutex<JacobianScratch>,
}

/// Structure of the augmented Jacobian.
#[derive(Debug)]
struct AugmentedJacobian {
    pattern: SparsityPattern,
    /// Per entry `e` of `J` (CSR order): its slot in the augmented values, per block row `b`
    /// (`diag[b][e]`, `b = 0..=c`) and in the lower block `(b, 0)` (`lower[b − 1][e]`).
    diag: Vec<Vec<usize>>,
    lower: Vec<Vec<usize>>,
    /// Per color of `J`'s columns: `(entry e, row i)` of the entries it fills.
    color_entries: Vec<Vec<(usize, usize)>>,
    /// Per color: the columns that have it.
    color_cols: Vec<Vec<usize>>,
}

#[derive(Debug, Default)]
struct JacobianScratch {
    jac: Option<CsrMatrix>,
    y: Vec<f64>,
    g_plus: Vec<f64>,
    g_minus: Vec<f64>,
}

impl<S: ?Sized> std::fmt::Debug for SensitivitySystem<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensitivitySystem")
            .field("n", &self.n)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Jvp + ?Sized> SensitivitySystem<'a, S> {
    /// Augment `system` with the given columns.
    pub fn new(system: &'a S, cols: Vec<Column>) -> Self {
        let m = system.n_params();
        let v_p = cols
            .iter()
            .map(|c| match *c {
                Column::Param(j) => {
                    let mut e = vec![0.0; m];
                    e[j] = 1.0;
                    e
                }
                Column::InitialState(_) => Vec::new(),
            })
            .collect();
        Self {
            system,
            n: system.n_states(),
            cols,
            v_p,
            jac: OnceLock::new(),
            scratch: Mutex::new(JacobianScratch::default()),
        }
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        &self.cols
    }

    /// The augmented initial state `[y0; S_1(t0); …]`.
    pub fn initial_state(&self, y0: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut z = vec![0.0; n * (1 + self.cols.len())];
        z[..n].copy_from_slice(y0);
        for (c, col) in self.cols.iter().enumerate() {
            if let Column::InitialState(i) = *col {
                z[n * (1 + c) + i] = 1.0;
            }
        }
        z
    }
}

impl<S: Jvp + ?Sized> OdeSystem for SensitivitySystem<'_, S> {
    fn n_states(&self) -> usize {
        self.n * (1 + self.cols.len())
    }
    fn n_params(&self) -> usize {
        self.system.n_params()
    }
    fn rhs(&self, t: f64, z: &[f64], p: &[f64], dz: &mut [f64]) {
        let n = self.n;
        let (y, s) = z.split_at(n);
        let (dy, ds) = dz.split_at_mut(n);
        self.system.rhs(t, y, p, dy);
        for ((sc, dsc), vp) in s.chunks_exact(n).zip(ds.chunks_exact_mut(n)).zip(&self.v_p) {
            self.system.jvp(t, y, p, sc, vp, dsc);
        }
    }
}

impl<S: Jvp + Jacobian + ?Sized> SensitivitySystem<'_, S> {
    fn structure(&self) -> &AugmentedJacobian {
        self.jac.get_or_init(|| {
            let (n, c) = (self.n, self.cols.len());
            let pat = self.system.sparsity();
            let offs = pat.major_offsets();
            let mut rows = Vec::with_capacity(n * (1 + c));
            for b in 0..=c {
                for i in 0..n {
                    let lane = pat.lane(i);
                    let mut r: Vec<usize> = Vec::with_capacity(2 * lane.len());
                    if b > 0 {
                        r.extend_from_slice(lane);
                    }
                    r.extend(lane.iter().map(|&j| b * n + j));
                    rows.push(r);
                }
            }
            let pattern = pattern_from_rows(n * (1 + c), &rows)
                .expect("block rows of a valid pattern form a valid pattern");
            let aoffs = pattern.major_offsets();
            let mut diag = vec![vec![0; pat.nnz()]; c + 1];
            let mut lower = vec![vec![0; pat.nnz()]; c];
            for b in 0..=c {
                for i in 0..n {
                    let start = aoffs[b * n + i];
                    let len = offs[i + 1] - offs[i];
                    for k in 0..len {
                        let e = offs[i] + k;
                        if b == 0 {
                            diag[0][e] = start + k;
                        } else {
                            lower[b - 1][e] = start + k;
                            diag[b][e] = start + len + k;
                        }
                    }
                }
            }
            let coloring = ColumnColoring::greedy(pat);
            let mut color_entries = vec![Vec::new(); coloring.n_colors()];
            let mut color_cols = vec![Vec::new(); coloring.n_colors()];
            for (j, &col) in coloring.colors().iter().enumerate() {
                color_cols[col].push(j);
            }
            for (i, &start) in offs.iter().enumerate().take(n) {
                for (k, &j) in pat.lane(i).iter().enumerate() {
                    color_entries[coloring.colors()[j]].push((start + k, i));
                }
            }
            AugmentedJacobian { pattern, diag, lower, color_entries, color_cols }
        })
    }
}

impl<S: Jvp + Jacobian + ?Sized> Jacobian for SensitivitySystem<'_, S> {
    fn sparsity(&self) -> &SparsityPattern {
        &self.structure().pattern
    }

    fn jacobian(&self, t: f64, z: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let aug = self.structure();
        let n = self.n;
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let sc = &mut *guard;
        let jac = sc.jac.get_or_insert_with(|| self.system.jacobian_matrix());
        let (y, s) = z.split_at(n);
        self.system.jacobian(t, y, p, jac);
        let values = out.values_mut();
        for slots in &aug.diag {
            for (&slot, &v) in slots.iter().zip(jac.values()) {
                values[slot] = v;
            }
        }
        if self.cols.is_empty() {
            return;
        }
        sc.y.resize(n, 0.0);
        sc.g_plus.resize(n, 0.0);
        sc.g_minus.resize(n, 0.0);
        for (cols, entries) in aug.color_cols.iter().zip(&aug.color_entries) {
            let ymax = cols.iter().fold(0.0f64, |m, &j| m.max(y[j].abs()));
            let eps = f64::EPSILON.cbrt() * (1.0 + ymax);
            for (b, (sb, vp)) in s.chunks_exact(n).zip(&self.v_p).enumerate() {
                sc.y.copy_from_slice(y);
                cols.iter().for_each(|&j| sc.y[j] += eps);
                self.system.jvp(t, &sc.y, p, sb, vp, &mut sc.g_plus);
                sc.y.copy_from_slice(y);
                cols.iter().for_each(|&j| sc.y[j] -= eps);
                self.system.jvp(t, &sc.y, p, sb, vp, &mut sc.g_minus);
                for &(e, i) in entries {
                    values[aug.lower[b][e]] = (sc.g_plus[i] - sc.g_minus[i]) / (2.0 * eps);
                }
            }
        }
    }
}

const NAME: &str = "forward sensitivity";

impl<S, St, C> Sensitivity<S, St, C> for ForwardSensitivity
where
    S: Jvp,
    St: for<'a> Stepper<SensitivitySystem<'a, S>>,
    C: StepSizeController,
{
    fn name(&self) -> &str {
        NAME
    }

    fn gradient(
        &self,
        problem: &Problem<S>,
        stepper: &St,
        controller: &C,
        save_at: &SaveAt,
        loss: &dyn Loss,
    ) -> Result<Gradient> {
        let save_ts = save_times(NAME, problem, save_at)?;
        let sys = problem.system();
        let (n, m) = (sys.n_states(), sys.n_params());
        if problem.y0().len() != n {
            return Err(SolveError::LengthMismatch {
                what: "y0",
                expected: n,
                found: problem.y0().len(),
            });
        }
        let cols = self.columns(n, m)?;
        let aug = SensitivitySystem::new(sys, cols.clone());
        let na = aug.n_states();
        let p = problem.params();
        let v_p = aug.v_p.clone();
        let mut z = aug.initial_state(problem.y0());
        let (t0, t1) = problem.t_span();
        let mut seg = Problem::new(aug, z.clone(), p.to_vec(), (t0, t1));
        let dir = (t1 - t0).signum();

        // Solve piecewise between impulses: an impulse maps the augmented state by
        // `(M(y), ∂M/∂y S + ∂M/∂θ)`, which needs `Impulse::jvp`, not a map of the augmented
        // state with derivatives of its own.
        let impulses = problem.impulses_in_span();
        let mut ts_out = Vec::with_capacity(save_ts.len());
        let mut zs_out: Vec<f64> = Vec::with_capacity(save_ts.len() * na);
        let mut stats = Stats::default();
        let mut next_save = 0;
        let mut seg_start = t0;
        let mut k = 0;
        let mut znew = vec![0.0; na];
        loop {
            let seg_end = impulses.get(k).map_or(t1, |i| i.t);
            let last = k >= impulses.len();
            // Saves in [seg_start, seg_end) — or up to t1 inclusive on the last segment.
            let lo = next_save;
            while let Some(&s) = save_ts.get(next_save) {
                let inside = if last { dir * (s - t1) <= 0.0 } else { dir * (s - seg_end) < 0.0 };
                if !inside {
                    break;
                }
                next_save += 1;
            }
            if seg_end != seg_start {
                seg.set_t_span((seg_start, seg_end));
                seg.y0_mut().copy_from_slice(&z);
                let sol = solve(
                    &seg,
                    stepper,
                    controller,
                    &SaveAt::Times(
                        save_ts[lo..next_save].iter().copied().chain([seg_end]).collect(),
                    ),
                )?;
                stats += *sol.stats();
                if !sol.is_success() {
                    return Err(SolveError::ForwardSolveFailed { status: sol.status() });
                }
                ts_out.extend_from_slice(&sol.ts()[..next_save - lo]);
                zs_out.extend_from_slice(&sol.ys()[..(next_save - lo) * na]);
                z.copy_from_slice(sol.last().expect("the segment end is saved"));
            } else {
                for &s in &save_ts[lo..next_save] {
                    ts_out.push(s);
                    zs_out.extend_from_slice(&z);
                }
            }
            if last {
                break;
            }
            // Apply every impulse at this time, in order.
            while let Some(imp) = impulses.get(k).filter(|i| i.t == seg_end) {
                let (y, s) = z.split_at(n);
                let (ynew, snew) = znew.split_at_mut(n);
                imp.map.apply(imp.t, y, p, ynew);
                for ((sc, dsc), vp) in s.chunks_exact(n).zip(snew.chunks_exact_mut(n)).zip(&v_p) {
                    imp.map.jvp(imp.t, y, p, sc, vp, dsc);
                }
                std::mem::swap(&mut z, &mut znew);
                stats.impulses += 1;
                k += 1;
            }
            seg_start = seg_end;
        }

        // Split the augmented output into the state's solution and the sensitivities.
        let ks = ts_out.len();
        let mut ys = Vec::with_capacity(ks * n);
        for zk in zs_out.chunks_exact(na) {
            ys.extend_from_slice(&zk[..n]);
        }
        let jvps = stats.rhs_evals * cols.len();
        let solution = Solution {
            n,
            ts: ts_out,
            ys,
            status: crate::stats::Status::Success,
            stats,
            dense: None,
        };
        let (value, cot) = loss_cotangents(NAME, loss, &solution)?;
        let mut dl_dp = vec![f64::NAN; m];
        let mut dl_dy0 = if self.wrt_y0 { vec![0.0; n] } else { Vec::new() };
        for (c, col) in cols.iter().enumerate() {
            let mut g = 0.0;
            for (kk, zk) in zs_out.chunks_exact(na).enumerate() {
                let sc = &zk[n * (1 + c)..n * (2 + c)];
                let ck = &cot[kk * n..(kk + 1) * n];
                g += sc.iter().zip(ck).map(|(a, b)| a * b).sum::<f64>();
            }
            match *col {
                Column::Param(j) => dl_dp[j] = g,
                Column::InitialState(i) => dl_dy0[i] = g,
            }
        }
        let reverse_stats = Stats { jvp_evals: jvps, ..Stats::default() };
        let memory = MemoryReport {
            n_states: n,
            steps: solution.stats.accepted_steps,
            peak_stored_states: cols.len(),
            store_all_states: solution.stats.accepted_steps + 1,
            recomputed_steps: 0,
        };
        Ok(Gradient { value, dl_dy0, dl_dp, solution, reverse_stats, memory })
    }
}
