//! The mechanistic model: Fisher–Kolmogorov on the masked grid,
//! `∂c/∂t = ∇·(D(x)∇c) + ρ g(x) c (1 − c) − k(t) c`, `D = D_w (p_wm + p_gm / R)`, no flux.
//!
//! It is a [`Sum`] of two `neurohybrid-system` building blocks, so the same parts also form the
//! IMEX [`Split`] (diffusion implicit, reaction explicit):
//!
//! | part | parameters | term |
//! |---|---|---|
//! | [`DiffusionPart`] | `[D_w]` | `∇·(D∇c)` (the mesh's [`TissueDiffusion`], R fixed) |
//! | [`ReactionPart`] | `[ρ, x_s, y_s(, z_s)]` | `ρ g c(1−c) − k(t) c` |
//!
//! so the model's parameter vector is [`PARAM_D_W`], [`PARAM_RHO`], then the seed centre
//! ([`PARAM_SEED`]..). The seed coordinates do not enter the right-hand side; they enter the
//! [`SeedImpulse`] that implants the tumour at onset. Making the initial tumour an impulse at
//! `t = 0` of a problem that starts at [`T_START`] (just before, with `c = 0`) turns the seed
//! location into an ordinary parameter: forward sensitivities and adjoints differentiate it
//! through [`neurohybrid_solve::Impulse::jvp`] / `vjp`, three columns instead of one per voxel.
//!
//! `g(x) = 1` in the model; synthetic truths use `g = 1 + κ p_wm` ([`crate::config::TruthPhysics`]).

use std::sync::Arc;

use neurohybrid_mesh::{Parallelism, TissueDiffusion};
use neurohybrid_solve::{Impulse, Problem, Scale};
use neurohybrid_system::pattern_from_rows;
use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, SparsityPattern, Split, Sum, Vjp};

use crate::anatomy::Anatomy;
use crate::config::{Chemotherapy, Method, Scenario};
use crate::error::Result;

/// Index of `D_w` (mm²/day) in the model's parameter vector.
pub const PARAM_D_W: usize = 0;
/// Index of `ρ` (1/day).
pub const PARAM_RHO: usize = 1;
/// Index of the seed's x coordinate (mm); y (and z in 3D) follow.
pub const PARAM_SEED: usize = 2;
/// Start of every model problem (days): the tumour is implanted by an impulse at `t = 0`.
pub const T_START: f64 = -1e-3;

/// The diffusion term `∇·(D_w (p_wm + p_gm/R) ∇c)`, parameters `[D_w]`.
#[derive(Debug, Clone)]
pub struct DiffusionPart {
    td: TissueDiffusion,
    r: f64,
}

impl DiffusionPart {
    /// The diffusion on `anatomy` with white/gray ratio `r`. Rayon-parallel rows only on grids
    /// large enough to pay for it (measured crossover ~20k cells on 2 cores).
    ///
    /// # Errors
    /// Mesh errors when the tissue maps do not fit the grid.
    pub fn new(anatomy: &Anatomy, r: f64) -> Result<Self> {
        let par = if anatomy.n() > 20_000 { Parallelism::Rayon } else { Parallelism::Sequential };
        let td = TissueDiffusion::new(&anatomy.grid, &anatomy.tissue)?.with_parallelism(par);
        Ok(DiffusionPart { td, r })
    }

    /// The mesh operator.
    pub fn operator(&self) -> &TissueDiffusion {
        &self.td
    }

    /// The white/gray ratio R.
    pub fn r(&self) -> f64 {
        self.r
    }
}

impl OdeSystem for DiffusionPart {
    fn n_states(&self) -> usize {
        self.td.n()
    }
    fn n_params(&self) -> usize {
        1
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        OdeSystem::rhs(&self.td, t, y, &[p[0], self.r], dy);
    }
}

impl Vjp for DiffusionPart {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut wp = [0.0; 2];
        let wp_slot: &mut [f64] = if w_p.is_empty() { &mut [] } else { &mut wp };
        Vjp::vjp(&self.td, t, y, &[p[0], self.r], w, w_y, wp_slot);
        if let Some(g) = w_p.first_mut() {
            *g = wp[0];
        }
    }
}

impl Jvp for DiffusionPart {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let vp = [v_p.first().copied().unwrap_or(0.0), 0.0];
        Jvp::jvp(&self.td, t, y, &[p[0], self.r], v_y, &vp, out);
    }
}

impl Jacobian for DiffusionPart {
    fn sparsity(&self) -> &SparsityPattern {
        Jacobian::sparsity(&self.td)
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        Jacobian::jacobian(&self.td, t, y, &[p[0], self.r], out);
    }
}

/// The chemotherapy kill rate `k(t) = k0 Σ_d exp(−ln 2 (t − t_d)/t½)` over doses `t_d ≤ t`
/// (first-order PK decay; a documented modeling assumption, see
/// [`crate::config::Chemotherapy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KillRate {
    doses: Vec<f64>,
    k0: f64,
    decay: f64,
}

impl KillRate {
    /// From a chemotherapy course.
    pub fn new(c: &Chemotherapy) -> Self {
        KillRate {
            doses: c.dose_days(),
            k0: c.kill_rate,
            decay: std::f64::consts::LN_2 / c.half_life_days,
        }
    }

    /// `k(t)` (1/day).
    pub fn at(&self, t: f64) -> f64 {
        self.doses
            .iter()
            .filter(|&&d| d <= t)
            .map(|&d| self.k0 * (-self.decay * (t - d)).exp())
            .sum()
    }

    /// The dose times (where `k` jumps; solves stop there).
    pub fn doses(&self) -> &[f64] {
        &self.doses
    }
}

/// The reaction and kill terms `ρ g(x) c (1 − c) − k(t) c`, parameters `[ρ, seed…]` (the
/// seed entries are carried, not used: see the module docs).
#[derive(Debug, Clone)]
pub struct ReactionPart {
    n: usize,
    n_seed: usize,
    growth: Option<Arc<[f64]>>,
    kill: Option<KillRate>,
    pattern: SparsityPattern,
}

impl ReactionPart {
    /// Logistic growth on `n` cells with `n_seed` seed coordinates in the parameter vector,
    /// spatial multiplier `g` (`None`: 1) and an optional chemotherapy kill rate.
    pub fn new(n: usize, n_seed: usize, growth: Option<Vec<f64>>, kill: Option<KillRate>) -> Self {
        let rows: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        let pattern = pattern_from_rows(n, &rows).expect("a diagonal pattern is valid");
        ReactionPart { n, n_seed, growth: growth.map(Into::into), kill, pattern }
    }

    #[inline]
    fn g(&self, i: usize) -> f64 {
        self.growth.as_ref().map_or(1.0, |g| g[i])
    }

    fn k(&self, t: f64) -> f64 {
        self.kill.as_ref().map_or(0.0, |k| k.at(t))
    }
}

impl OdeSystem for ReactionPart {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        1 + self.n_seed
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let (rho, k) = (p[0], self.k(t));
        for i in 0..self.n {
            dy[i] = rho * self.g(i) * y[i] * (1.0 - y[i]) - k * y[i];
        }
    }
}

impl Vjp for ReactionPart {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let (rho, k) = (p[0], self.k(t));
        let mut g_rho = 0.0;
        for i in 0..self.n {
            let g = self.g(i);
            if !w_y.is_empty() {
                w_y[i] = w[i] * (rho * g * (1.0 - 2.0 * y[i]) - k);
            }
            g_rho += w[i] * g * y[i] * (1.0 - y[i]);
        }
        if !w_p.is_empty() {
            w_p.fill(0.0);
            w_p[0] = g_rho;
        }
    }
}

impl Jvp for ReactionPart {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let (rho, k) = (p[0], self.k(t));
        let v_rho = v_p.first().copied().unwrap_or(0.0);
        for i in 0..self.n {
            let g = self.g(i);
            out[i] = (rho * g * (1.0 - 2.0 * y[i]) - k) * v_y[i] + v_rho * g * y[i] * (1.0 - y[i]);
        }
    }
}

impl Jacobian for ReactionPart {
    fn sparsity(&self) -> &SparsityPattern {
        &self.pattern
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let (rho, k) = (p[0], self.k(t));
        for (i, v) in out.values_mut().iter_mut().enumerate() {
            *v = rho * self.g(i) * (1.0 - 2.0 * y[i]) - k;
        }
    }
}

/// The full model as one system (any stepper; parameters `[D_w, ρ, seed…]`).
pub type FisherKolmogorov = Sum<DiffusionPart, ReactionPart>;

/// The same model split for IMEX (KenCarp4): diffusion implicit, reaction explicit.
pub type FisherKolmogorovSplit = Split<DiffusionPart, ReactionPart>;

/// The initial tumour as an impulse at `t = 0`: `c ← c + density · exp(−|x − x_s|²/(2σ²))`,
/// `x_s` read from the parameter vector at `offset..offset+dim`. Differentiable in `x_s`.
#[derive(Debug, Clone)]
pub struct SeedImpulse {
    centres: Arc<[[f64; 3]]>,
    dim: usize,
    /// z of a 2D slice (constant).
    z: f64,
    offset: usize,
    sigma: f64,
    density: f64,
}

impl SeedImpulse {
    /// A seed of width `sigma` (mm) and peak `density` on the active cells of `anatomy`, its
    /// centre at `p[offset..offset + dim]`.
    pub fn new(anatomy: &Anatomy, offset: usize, sigma: f64, density: f64) -> Self {
        let centres: Vec<[f64; 3]> = anatomy.centres();
        let z = centres.first().map_or(0.0, |c| c[2]);
        SeedImpulse { centres: centres.into(), dim: anatomy.grid.dim(), z, offset, sigma, density }
    }

    fn centre(&self, p: &[f64]) -> [f64; 3] {
        let mut x = [0.0, 0.0, self.z];
        x[..self.dim].copy_from_slice(&p[self.offset..self.offset + self.dim]);
        x
    }

    /// The seed field `φ(x; x_s)` for a centre.
    pub fn field(&self, centre: [f64; 3], out: &mut [f64]) {
        let s2 = 2.0 * self.sigma * self.sigma;
        for (o, c) in out.iter_mut().zip(self.centres.iter()) {
            let d2: f64 = (0..3).map(|k| (c[k] - centre[k]).powi(2)).sum();
            *o = self.density * (-d2 / s2).exp();
        }
    }
}

impl Impulse for SeedImpulse {
    fn apply(&self, _t: f64, y: &[f64], p: &[f64], out: &mut [f64]) {
        self.field(self.centre(p), out);
        out.iter_mut().zip(y).for_each(|(o, y)| *o += y);
    }
    fn vjp(&self, _t: f64, _y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        w_y.copy_from_slice(w);
        if w_p.is_empty() {
            return;
        }
        w_p.fill(0.0);
        let x = self.centre(p);
        let (s2, inv) = (2.0 * self.sigma * self.sigma, 1.0 / (self.sigma * self.sigma));
        for (c, wi) in self.centres.iter().zip(w) {
            let d2: f64 = (0..3).map(|k| (c[k] - x[k]).powi(2)).sum();
            let phi = self.density * (-d2 / s2).exp();
            // ∂φ/∂x_s,k = φ (x_k − x_s,k) / σ²
            for k in 0..self.dim {
                w_p[self.offset + k] += wi * phi * (c[k] - x[k]) * inv;
            }
        }
    }
    fn jvp(&self, _t: f64, _y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        out.copy_from_slice(v_y);
        if v_p.is_empty() {
            return;
        }
        let x = self.centre(p);
        let (s2, inv) = (2.0 * self.sigma * self.sigma, 1.0 / (self.sigma * self.sigma));
        let v = &v_p[self.offset..self.offset + self.dim];
        for (o, c) in out.iter_mut().zip(self.centres.iter()) {
            let d2: f64 = (0..3).map(|k| (c[k] - x[k]).powi(2)).sum();
            let phi = self.density * (-d2 / s2).exp();
            *o += (0..self.dim).map(|k| v[k] * phi * (c[k] - x[k]) * inv).sum::<f64>();
        }
    }
}

/// Builds the model parts of a scenario on an anatomy: `(diffusion, reaction)`, with the
/// growth multiplier `growth` (`None` for the plain model).
///
/// # Errors
/// Mesh errors when the tissue maps do not fit the grid.
pub fn parts(
    scenario: &Scenario,
    anatomy: &Anatomy,
    growth: Option<Vec<f64>>,
) -> Result<(DiffusionPart, ReactionPart)> {
    let diff = DiffusionPart::new(anatomy, scenario.tumor.r)?;
    let kill = scenario.chemotherapy.as_ref().map(KillRate::new);
    let react = ReactionPart::new(anatomy.n(), anatomy.grid.dim(), growth, kill);
    Ok((diff, react))
}

/// The parameter vector `[D_w, ρ, seed…]` of a scenario.
pub fn scenario_params(scenario: &Scenario) -> Vec<f64> {
    let mut p = vec![scenario.tumor.d_w, scenario.tumor.rho];
    p.extend_from_slice(&scenario.seed.location_mm);
    p
}

/// Adds the scenario's impulses to a problem: the seed at `t = 0` (centre at
/// `p[seed_offset..]`) and the [`treatment_impulses`].
pub fn add_impulses<S: OdeSystem>(
    problem: &mut Problem<S>,
    scenario: &Scenario,
    anatomy: &Anatomy,
    seed_offset: usize,
) {
    let seed =
        SeedImpulse::new(anatomy, seed_offset, scenario.seed.radius_mm, scenario.seed.density);
    problem.push_impulse(0.0, Arc::new(seed));
    for (t, map) in treatment_impulses(scenario) {
        problem.push_impulse(t, map);
    }
}

/// The treatment impulses of a scenario: each radiotherapy fraction (`c ← c·exp(−αd − βd²)`,
/// the exact linear-quadratic state map), and an identity map at each chemotherapy dose so
/// the solver stops where `k(t)` jumps instead of stepping across the discontinuity.
pub fn treatment_impulses(scenario: &Scenario) -> Vec<(f64, Arc<dyn Impulse>)> {
    let mut out: Vec<(f64, Arc<dyn Impulse>)> = Vec::new();
    if let Some(rt) = &scenario.radiotherapy {
        let s: Arc<dyn Impulse> = Arc::new(Scale::all(rt.surviving_fraction()));
        out.extend(rt.fraction_days().into_iter().map(|d| (d, s.clone())));
    }
    if let Some(ch) = &scenario.chemotherapy {
        let id: Arc<dyn Impulse> = Arc::new(Scale::all(1.0));
        out.extend(ch.dose_days().into_iter().map(|d| (d, id.clone())));
    }
    out
}

/// Largest eigenvalue magnitude of the diffusion operator, bounded by Gershgorin:
/// `4 · dim · D_max / h²` (1/day).
pub fn diffusion_spectral_bound(anatomy: &Anatomy, d_w: f64, r: f64) -> f64 {
    let d_max =
        anatomy.wm.iter().zip(&anatomy.gm).map(|(w, g)| d_w * (w + g / r)).fold(0.0, f64::max);
    let h = anatomy.grid.spacing();
    let dim = anatomy.grid.dim();
    let inv_h2: f64 = (0..dim).map(|k| 1.0 / (h[k] * h[k])).sum();
    4.0 * d_max * inv_h2
}

/// The integrator `Method::Auto` picks: explicit Tsit5 unless stability alone would force it
/// to take more than ~100 steps over `[0, t_end]` (Tsit5's stability interval on the negative
/// real axis is ≈ 3.5: `λ_max · t_end / 3.5 > 100`), then IMEX KenCarp4, which treats the
/// diffusion implicitly and is limited by accuracy only (Kennedy & Carpenter 2003).
pub fn choose_method(method: Method, anatomy: &Anatomy, d_w: f64, r: f64, t_end: f64) -> Method {
    match method {
        Method::Auto => {
            if diffusion_spectral_bound(anatomy, d_w, r) * t_end / 3.5 > 100.0 {
                Method::KenCarp4
            } else {
                Method::Tsit5
            }
        }
        m => m,
    }
}
