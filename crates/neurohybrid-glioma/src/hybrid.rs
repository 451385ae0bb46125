//! The neural-only baseline and the hybrid models, and their training through the solver.
//!
//! | model | right-hand side | parameters |
//! |---|---|---|
//! | hybrid (parallel) | `FK(c; D_w, ρ) + c(1−c)·g(c, p_wm, p_gm; w)` — [`Parallel`] of the mechanistic model and a pointwise [`NetworkRhs`] residual in the reaction term ([`LogisticGate`]) | `[D_w, ρ, seed… │ w]` |
//! | hybrid (series) | `FK(c; D(x), ρ)` with `D(x) = D₀(x)·softplus(g(p_wm, p_gm; w))/ln 2` — [`Series`] of a [`TapeMap`] (pointwise MLP over tissue features) feeding the diffusivity field of [`FieldFisherKolmogorov`] | `[w │ ρ, seed…]` |
//! | neural | `g(c, Σ_j(c_j − c_i), p_wm, p_gm; w)` — a pointwise network that also sees the 5-point (7-point) neighbour difference, i.e. a neural ODE with one fixed convolution channel | `w` |
//!
//! Both are trained by Adam on the mean squared density misfit at the training scans, with
//! gradients from the discrete adjoint of Tsit5 (exact gradients of the computed solution;
//! `neurohybrid_solve::sensitivity::DiscreteAdjoint`). The hybrid starts from the mechanistic
//! fit with a zero last layer, so its first iterate *is* the mechanistic model and training can
//! only add what the data ask for; `D_w` and `ρ` train in log space alongside the weights. The
//! neural model has no notion of onset: it starts from the first observed scan.

use std::cell::RefCell;
use std::time::Instant;

use neurohybrid_autodiff::Graph;
use neurohybrid_hybrid::{DiffMap, NetworkRhs, Parallel, Parameterized, Series, TapeMap};
use neurohybrid_mesh::{DiffusionOperator, FieldDiffusion, Parallelism};
use neurohybrid_nn::optim::{Adam, Optimizer};
use neurohybrid_nn::{Activation, Init, Layer, Mlp, Pointwise, initialize};
use neurohybrid_solve::sensitivity::{DiscreteAdjoint, SquaredMisfit, StepVjp, gradient};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jvp, OdeSystem, ParamLayout, Sum, TapeSystem, Vjp};

use crate::anatomy::Anatomy;
use crate::config::Scenario;
use crate::error::{GliomaError, Result};
use crate::model::{
    FisherKolmogorov, PARAM_SEED, ReactionPart, T_START, add_impulses, parts, treatment_impulses,
};
use crate::progress::Progress;

/// The hybrid model's system.
pub type HybridParallel = Parallel<FisherKolmogorov, LogisticGate<NetworkRhs>>;

/// A network residual placed *in the reaction term*: `f(c) = c (1 − c) · g(c, …; w)`, so the
/// network learns a correction to the per-capita logistic growth rate (`ρ(x, c)` beyond the
/// model's constant ρ). Why gate it: an additive residual `g` that is not exactly 0 at `c = 0`
/// is a source of tumour cells in healthy tissue, which the logistic growth then amplifies by
/// `e^{ρt}` — one optimizer step on an output bias turned the whole brain into tumour in the
/// first measurement. Gating keeps `c = 0` and `c = 1` fixed points, as in the physics.
#[derive(Debug, Clone)]
pub struct LogisticGate<N> {
    inner: N,
    /// The network's output `g` and a cotangent buffer (allocated once).
    scratch: RefCell<(Vec<f64>, Vec<f64>)>,
}

impl<N: OdeSystem> LogisticGate<N> {
    /// Gates `inner` (a pointwise network on the density).
    pub fn new(inner: N) -> Self {
        let n = inner.n_states();
        LogisticGate { inner, scratch: RefCell::new((vec![0.0; n], vec![0.0; n])) }
    }

    /// The gated network.
    pub fn inner(&self) -> &N {
        &self.inner
    }
}

impl<N: Parameterized> Parameterized for LogisticGate<N> {
    fn param_layout(&self) -> neurohybrid_hybrid::Result<ParamLayout> {
        self.inner.param_layout()
    }
}

impl<N: OdeSystem> OdeSystem for LogisticGate<N> {
    fn n_states(&self) -> usize {
        self.inner.n_states()
    }
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.inner.rhs(t, y, p, dy);
        dy.iter_mut().zip(y).for_each(|(d, &c)| *d *= c * (1.0 - c));
    }
}

impl<N: Vjp> Vjp for LogisticGate<N> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut s = self.scratch.borrow_mut();
        let (g, wg) = &mut *s;
        self.inner.rhs(t, y, p, g);
        for ((o, &wi), &c) in wg.iter_mut().zip(w).zip(y) {
            *o = wi * c * (1.0 - c);
        }
        self.inner.vjp(t, y, p, wg, w_y, w_p);
        if !w_y.is_empty() {
            for i in 0..y.len() {
                w_y[i] += w[i] * (1.0 - 2.0 * y[i]) * g[i];
            }
        }
    }
}

impl<N: Jvp> Jvp for LogisticGate<N> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let mut s = self.scratch.borrow_mut();
        let (g, _) = &mut *s;
        self.inner.rhs(t, y, p, g);
        self.inner.jvp(t, y, p, v_y, v_p, out);
        for i in 0..y.len() {
            out[i] = y[i] * (1.0 - y[i]) * out[i] + (1.0 - 2.0 * y[i]) * g[i] * v_y[i];
        }
    }
}

/// Training settings (configuration only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// Adam iterations.
    pub iterations: usize,
    /// Hidden width of the two hidden layers.
    pub hidden: usize,
    /// Adam learning rate (in the transformed parameter space).
    pub learning_rate: f64,
    /// Seed of the weight initialization.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { iterations: 150, hidden: 12, learning_rate: 5e-3, seed: 7 }
    }
}

/// A trained model: its parameters, loss per iteration and training time.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// The parameters at the lowest training loss seen.
    pub params: Vec<f64>,
    /// Mean squared density misfit on the training scans, per iteration.
    pub loss_curve: Vec<f64>,
    /// Training wall time (s).
    pub wall_time_s: f64,
}

fn mlp(inputs: usize, hidden: usize) -> Result<Mlp> {
    Ok(Mlp::new(&[inputs, hidden, hidden, 1], Activation::Tanh)?)
}

/// Glorot weights with the last layer (weights and bias) set to zero: the network starts as
/// the zero function.
fn zero_last_init(net: &Mlp, seed: u64) -> Vec<f64> {
    let mut w = initialize(net, Init::GlorotUniform, seed);
    let blocks = net.param_blocks();
    let last = blocks.len().saturating_sub(2);
    for b in &blocks[last..] {
        w[b.range()].fill(0.0);
    }
    w
}

/// The parallel hybrid: the plain model plus a pointwise residual `g(c, p_wm, p_gm; w)`.
///
/// # Errors
/// Mesh and hybrid construction errors.
pub fn hybrid_parallel(
    scenario: &Scenario,
    anatomy: &Anatomy,
    hidden: usize,
) -> Result<HybridParallel> {
    let (diff, react) = parts(scenario, anatomy, None)?;
    let mech = Sum::new(diff, react)?;
    let features: Vec<f64> =
        anatomy.wm.iter().zip(&anatomy.gm).flat_map(|(&w, &g)| [w, g]).collect();
    let net = NetworkRhs::pointwise(&mlp(3, hidden)?, anatomy.n(), 1)?.with_features(features)?;
    Ok(Parallel::new(mech, LogisticGate::new(net))?)
}

/// The residual network of [`hybrid_parallel`] (for initialization).
///
/// # Errors
/// Never for valid widths.
pub fn residual_mlp(hidden: usize) -> Result<Mlp> {
    mlp(3, hidden)
}

/// The neural-only model: a pointwise network on `(c, Σ_j (c_j − c_i), p_wm, p_gm)` over the
/// active cells (the neighbour sum is the finite-volume Laplacian with `D = h²`, a fixed
/// convolution that lets the network move a front), recorded once into a [`TapeSystem`].
///
/// # Errors
/// Graph construction errors.
pub fn neural_ode(anatomy: &Anatomy, hidden: usize) -> Result<(TapeSystem, Mlp)> {
    let n = anatomy.n();
    let net = mlp(4, hidden)?;
    let h = anatomy.grid.spacing()[0];
    let lap = DiffusionOperator::new(&anatomy.grid, vec![h * h; n])?
        .with_parallelism(Parallelism::Sequential);
    let mut g = Graph::new();
    let y = g.input("y", &[n])?;
    let p = g.input("p", &[net.n_params()])?;
    let ly = lap.record(&mut g, y)?;
    let wm = g.constant(&[n], anatomy.wm.clone())?;
    let gm = g.constant(&[n], anatomy.gm.clone())?;
    let cat = g.concat(&[y, ly, wm, gm])?;
    // Channel-major [4·n] → point-major [n, 4].
    let idx: Vec<usize> = (0..n).flat_map(|i| (0..4).map(move |f| f * n + i)).collect();
    let x = g.gather(cat, idx.into())?;
    let x = g.reshape(x, &[n, 4])?;
    let out = Pointwise::new(net.clone()).forward(&mut g, x, p)?;
    let out = g.reshape(out, &[n])?;
    let tape = g.compile(&[out])?;
    Ok((TapeSystem::new(tape)?, net))
}

/// How the optimizer's coordinate `z` maps to a parameter `p`. Adam takes steps of about its
/// learning rate in every coordinate whatever the gradient's size, so the scale sets how far
/// a parameter moves per step: a network output that enters `dc/dt` directly (per day) must
/// move ~100× slower than a hidden weight, and the calibrated `D_w`, `ρ` only by a few percent
/// over a whole training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coord {
    /// `p = exp(scale · z)` (positive parameters).
    Log(f64),
    /// `p = scale · z`.
    Linear(f64),
}

impl Coord {
    fn to_param(self, z: f64) -> f64 {
        match self {
            Coord::Log(s) => (s * z).exp(),
            Coord::Linear(s) => s * z,
        }
    }
    fn to_free(self, p: f64) -> Result<f64> {
        match self {
            Coord::Log(s) if p > 0.0 => Ok(p.ln() / s),
            Coord::Log(_) => {
                Err(GliomaError::Invalid(format!("log-parameter {p} must be positive")))
            }
            Coord::Linear(s) => Ok(p / s),
        }
    }
    fn derivative(self, z: f64) -> f64 {
        match self {
            Coord::Log(s) => s * (s * z).exp(),
            Coord::Linear(s) => s,
        }
    }
}

/// Scale of the network's output-layer coordinates (see [`Coord`]).
const OUTPUT_SCALE: f64 = 0.01;
/// Scale of the calibrated mechanistic parameters in the hybrid (log space for `D_w`, `ρ`).
const MECH_SCALE: f64 = 0.1;

/// Coordinates of a network's parameters: hidden layers as they are, the output layer scaled
/// by [`OUTPUT_SCALE`].
fn network_coords(net: &Mlp) -> Vec<Coord> {
    let mut c = vec![Coord::Linear(1.0); net.n_params()];
    let blocks = net.param_blocks();
    for b in &blocks[blocks.len().saturating_sub(2)..] {
        c[b.range()].fill(Coord::Linear(OUTPUT_SCALE));
    }
    c
}

/// Trains `problem`'s parameters (`transforms[i]` maps the optimizer's coordinate to
/// parameter `i`) by Adam on the mean squared misfit to `targets` (one active-cell vector
/// per day of `days`), gradients by the discrete adjoint of Tsit5. A failed solve (a trial
/// network that blows up) restores the best parameters and halves the learning rate.
#[allow(clippy::too_many_arguments)]
fn adam_train<S>(
    problem: &mut Problem<S>,
    transforms: &[Coord],
    days: &[f64],
    targets: &[Vec<f64>],
    opts: &TrainOptions,
    ctrl: &PiController,
    stage: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> Result<Trained>
where
    S: OdeSystem + Vjp,
    Tsit5: StepVjp<S>,
{
    let start = Instant::now();
    let n = targets[0].len();
    let flat: Vec<f64> = targets.iter().flatten().copied().collect();
    let loss = SquaredMisfit::new(flat).with_weight(1.0 / (targets.len() * n) as f64);
    let save = SaveAt::Times(days.to_vec());
    let m = problem.params().len();
    let mut z: Vec<f64> = problem
        .params()
        .iter()
        .zip(transforms)
        .map(|(&p, t)| t.to_free(p))
        .collect::<Result<_>>()?;
    let mut lr = opts.learning_rate;
    let mut adam = Adam::new(lr);
    let mut state = adam.init(m)?;
    let mut best = (f64::INFINITY, problem.params().to_vec());
    let mut curve = Vec::with_capacity(opts.iterations);
    let mut dz = vec![0.0; m];
    for it in 0..opts.iterations {
        for ((p, t), &zi) in problem.params_mut().iter_mut().zip(transforms).zip(&z) {
            *p = t.to_param(zi);
        }
        let g = match gradient(&*problem, &Tsit5, ctrl, &save, &loss, &DiscreteAdjoint::default()) {
            Ok(g) if g.value.is_finite() && g.dl_dp.iter().all(|v| v.is_finite()) => g,
            _ => {
                // Back off: restore the best point, smaller steps, fresh moments.
                lr *= 0.5;
                adam = Adam::new(lr);
                state = adam.init(m)?;
                for ((zi, t), &p) in z.iter_mut().zip(transforms).zip(&best.1) {
                    *zi = t.to_free(p)?;
                }
                curve.push(*curve.last().unwrap_or(&f64::NAN));
                continue;
            }
        };
        curve.push(g.value);
        if g.value < best.0 {
            best = (g.value, problem.params().to_vec());
        }
        for (((d, &gp), t), &zi) in dz.iter_mut().zip(&g.dl_dp).zip(transforms).zip(&z) {
            *d = gp * t.derivative(zi);
        }
        adam.step(&mut state, &mut z, &dz)?;
        progress(Progress::new(stage, it + 1, opts.iterations).with_loss(g.value));
    }
    problem.params_mut().copy_from_slice(&best.1);
    Ok(Trained { params: best.1, loss_curve: curve, wall_time_s: start.elapsed().as_secs_f64() })
}

fn controller(scenario: &Scenario) -> PiController {
    PiController::new(scenario.solver.rtol, scenario.solver.atol).with_max_steps(20_000)
}

/// Trains the parallel hybrid from the mechanistic estimate `theta_mech = [D_w, ρ, seed…]`
/// on the training scans (`days`, observed `data`).
///
/// # Errors
/// Construction errors, or a first solve that fails.
#[allow(clippy::too_many_arguments)]
pub fn train_hybrid(
    scenario: &Scenario,
    anatomy: &Anatomy,
    theta_mech: &[f64],
    days: &[f64],
    data: &[Vec<f64>],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(HybridParallel, Trained)> {
    let sys = hybrid_parallel(scenario, anatomy, opts.hidden)?;
    let net = residual_mlp(opts.hidden)?;
    let mut p = theta_mech.to_vec();
    p.extend(zero_last_init(&net, opts.seed));
    let mut transforms = vec![Coord::Log(MECH_SCALE), Coord::Log(MECH_SCALE)];
    transforms.resize(theta_mech.len(), Coord::Linear(MECH_SCALE));
    transforms.extend(network_coords(&net));
    let mut problem = Problem::new(sys, vec![0.0; anatomy.n()], p, (T_START, days[days.len() - 1]));
    add_impulses(&mut problem, scenario, anatomy, PARAM_SEED);
    let trained = adam_train(
        &mut problem,
        &transforms,
        days,
        data,
        opts,
        &controller(scenario),
        "train hybrid",
        progress,
    )?;
    Ok((problem.system().clone(), trained))
}

/// Predicts the hybrid at `days` from onset.
///
/// # Errors
/// [`GliomaError::SolveFailed`].
pub fn predict_hybrid(
    scenario: &Scenario,
    anatomy: &Anatomy,
    sys: HybridParallel,
    params: &[f64],
    days: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let mut problem =
        Problem::new(sys, vec![0.0; anatomy.n()], params.to_vec(), (T_START, days[days.len() - 1]));
    add_impulses(&mut problem, scenario, anatomy, PARAM_SEED);
    run(&problem, days, &controller(scenario), "hybrid")
}

/// Trains the neural-only model from the first observed scan (`data[0]` at `days[0]`) on the
/// remaining training scans.
///
/// # Errors
/// Fewer than two training scans, construction errors.
pub fn train_neural(
    scenario: &Scenario,
    anatomy: &Anatomy,
    days: &[f64],
    data: &[Vec<f64>],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(TapeSystem, Trained)> {
    if days.len() < 2 {
        return Err(GliomaError::Invalid(
            "the neural model needs at least two training scans".into(),
        ));
    }
    let (sys, net) = neural_ode(anatomy, opts.hidden)?;
    let p = zero_last_init(&net, opts.seed);
    let transforms = network_coords(&net);
    let mut problem = Problem::new(sys, data[0].clone(), p, (days[0], days[days.len() - 1]));
    treatments(&mut problem, scenario);
    let trained = adam_train(
        &mut problem,
        &transforms,
        &days[1..],
        &data[1..],
        opts,
        &controller(scenario),
        "train neural",
        progress,
    )?;
    Ok((problem.system().clone(), trained))
}

/// Radiotherapy / chemotherapy impulses without the seed (the neural model starts from a scan).
fn treatments<S: OdeSystem>(problem: &mut Problem<S>, scenario: &Scenario) {
    for (t, map) in treatment_impulses(scenario) {
        problem.push_impulse(t, map);
    }
}

/// Predicts the neural model at `days` (each ≥ `t0`) from state `y0` at `t0`.
///
/// # Errors
/// [`GliomaError::SolveFailed`].
pub fn predict_neural(
    scenario: &Scenario,
    sys: TapeSystem,
    params: &[f64],
    t0: f64,
    y0: &[f64],
    days: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let mut problem = Problem::new(sys, y0.to_vec(), params.to_vec(), (t0, days[days.len() - 1]));
    treatments(&mut problem, scenario);
    // A scan at t0 itself is the initial state.
    let later: Vec<f64> = days.iter().copied().filter(|&d| d > t0).collect();
    let mut out: Vec<Vec<f64>> = days.iter().filter(|&&d| d <= t0).map(|_| y0.to_vec()).collect();
    out.extend(run(&problem, &later, &controller(scenario), "neural")?);
    Ok(out)
}

fn run<S: OdeSystem>(
    problem: &Problem<S>,
    days: &[f64],
    ctrl: &PiController,
    what: &str,
) -> Result<Vec<Vec<f64>>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let sol = solve(problem, &Tsit5, ctrl, &SaveAt::Times(days.to_vec()))?;
    if !sol.is_success() {
        return Err(GliomaError::SolveFailed {
            what: format!("{what} prediction"),
            status: format!("{:?}", sol.status()),
        });
    }
    Ok((0..sol.len()).map(|k| sol.y(k).to_vec()).collect())
}

/// The series hybrid's mechanistic part: Fisher–Kolmogorov with a free per-voxel diffusivity
/// field, parameters `[D(x_1..x_n) │ ρ, seed…]` (the mesh's [`FieldDiffusion`] plus the plain
/// reaction).
pub type FieldFisherKolmogorov = Sum<FieldDiffusion, ReactionPart>;

/// The series hybrid: `D(x) = D₀(x) · softplus(g(p_wm, p_gm; w)) / ln 2` feeds the diffusivity
/// field of [`FieldFisherKolmogorov`] — a [`Series`] of a [`TapeMap`] (a pointwise MLP over
/// the tissue features) and the mechanistic model. Parameters `[w │ ρ, seed…]`.
pub type HybridSeries = Series<TapeMap, FieldFisherKolmogorov>;

/// Index of the seed's x coordinate in a series hybrid's parameter vector `[w │ ρ, seed…]`.
pub fn series_seed_offset(sys: &HybridSeries) -> usize {
    sys.map().n_params() + 1
}

/// The series hybrid: a pointwise network maps each voxel's tissue features `(p_wm, p_gm)` to
/// its diffusivity, `D(x) = D₀(x) · softplus(g(p_wm, p_gm; w)) / ln 2` with the plain model's
/// field `D₀ = D_w (p_wm + p_gm / R)`. Why a multiplicative correction on `D₀`, positive by a
/// softplus: with a zero output layer `softplus(0)/ln 2 = 1`, so the first iterate *is* the
/// calibrated mechanistic model (as for the parallel hybrid), and no weight can make `D`
/// negative (the harmonic face means need `D ≥ 0`). `D_w` is folded into `D₀`; the network
/// learns the tissue dependence the fixed ratio `R` gets wrong.
///
/// # Errors
/// Mesh and hybrid construction errors; `d_w ≤ 0`.
pub fn hybrid_series(
    scenario: &Scenario,
    anatomy: &Anatomy,
    d_w: f64,
    hidden: usize,
) -> Result<HybridSeries> {
    if d_w.is_nan() || d_w <= 0.0 {
        return Err(GliomaError::Invalid(format!("base diffusivity D_w = {d_w} must be positive")));
    }
    let n = anatomy.n();
    let r = scenario.tumor.r;
    let d0: Vec<f64> = anatomy
        .wm
        .iter()
        .zip(&anatomy.gm)
        .map(|(&w, &g)| d_w * (w + g / r) / std::f64::consts::LN_2)
        .collect();
    let net = series_mlp(hidden)?;
    let map = TapeMap::from_graph(&[n, 2], net.n_params(), |g, x, w| {
        let s = Pointwise::new(net.clone()).forward(g, x, w)?;
        let s = g.reshape(s, &[n])?;
        let d0 = g.constant(&[n], d0)?;
        Ok(g.mul(s, d0)?)
    })?;
    let features: Vec<f64> =
        anatomy.wm.iter().zip(&anatomy.gm).flat_map(|(&w, &g)| [w, g]).collect();
    let par = if n > 20_000 { Parallelism::Rayon } else { Parallelism::Sequential };
    let diff = FieldDiffusion::new(&anatomy.grid).with_parallelism(par);
    let (_, react) = parts(scenario, anatomy, None)?;
    let mech = Sum::new(diff, react)?;
    Ok(Series::new(map, features, mech)?)
}

/// The diffusivity network of [`hybrid_series`]: `(p_wm, p_gm) → softplus(·)`.
///
/// # Errors
/// Never for valid widths.
pub fn series_mlp(hidden: usize) -> Result<Mlp> {
    Ok(mlp(2, hidden)?.with_output_activation(Activation::Softplus))
}

/// The series hybrid's parameters at its starting point: a zero-output-layer network (so
/// `D = D₀`) and the mechanistic `ρ`, seed of `theta_mech = [D_w, ρ, seed…]`.
///
/// # Errors
/// Never for valid widths.
pub fn series_initial_params(theta_mech: &[f64], hidden: usize, seed: u64) -> Result<Vec<f64>> {
    let mut p = zero_last_init(&series_mlp(hidden)?, seed);
    p.extend_from_slice(&theta_mech[1..]);
    Ok(p)
}

/// Trains the series hybrid from the mechanistic estimate `theta_mech = [D_w, ρ, seed…]`:
/// the network (all layers at unit scale: its output multiplies `D`, a dimensionless factor,
/// unlike the parallel residual, which enters `dc/dt` directly), `ρ` in log space and the seed.
///
/// # Errors
/// Construction errors, or a first solve that fails.
#[allow(clippy::too_many_arguments)]
pub fn train_series(
    scenario: &Scenario,
    anatomy: &Anatomy,
    theta_mech: &[f64],
    days: &[f64],
    data: &[Vec<f64>],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(HybridSeries, Trained)> {
    let sys = hybrid_series(scenario, anatomy, theta_mech[0], opts.hidden)?;
    let p = series_initial_params(theta_mech, opts.hidden, opts.seed)?;
    let n_w = sys.map().n_params();
    let mut transforms = vec![Coord::Linear(1.0); n_w];
    transforms.push(Coord::Log(MECH_SCALE));
    transforms.resize(p.len(), Coord::Linear(MECH_SCALE));
    let offset = series_seed_offset(&sys);
    let mut problem = Problem::new(sys, vec![0.0; anatomy.n()], p, (T_START, days[days.len() - 1]));
    add_impulses(&mut problem, scenario, anatomy, offset);
    let trained = adam_train(
        &mut problem,
        &transforms,
        days,
        data,
        opts,
        &controller(scenario),
        "train series hybrid",
        progress,
    )?;
    Ok((problem.system().clone(), trained))
}

/// Predicts the series hybrid at `days` from onset.
///
/// # Errors
/// [`GliomaError::SolveFailed`].
pub fn predict_series(
    scenario: &Scenario,
    anatomy: &Anatomy,
    sys: HybridSeries,
    params: &[f64],
    days: &[f64],
) -> Result<Vec<Vec<f64>>> {
    let offset = series_seed_offset(&sys);
    let mut problem =
        Problem::new(sys, vec![0.0; anatomy.n()], params.to_vec(), (T_START, days[days.len() - 1]));
    add_impulses(&mut problem, scenario, anatomy, offset);
    run(&problem, days, &controller(scenario), "series hybrid")
}
