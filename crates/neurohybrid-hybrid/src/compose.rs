//! The hybrid architectures: [`Parallel`] (residual / UDE), [`Series`] (network → mechanistic
//! parameters), [`Readout`] (mechanistic state → observation). Each is exact in its VJP and
//! JVP, so every solver and every sensitivity method works on it unchanged, and they nest.

use crate::error::{HybridError, Result};
use crate::map::DiffMap;
use crate::network::Parameterized;
use neurohybrid_system::SparsityPattern;
use neurohybrid_system::{CsrMatrix, Jacobian, Jvp, OdeSystem, ParamLayout, Sum, Vjp};
use std::cell::RefCell;

/// A layout with one block `name` of length `len` (or empty).
fn single_block(name: &str, len: usize) -> Result<ParamLayout> {
    let mut l = ParamLayout::new();
    if len > 0 {
        l.push(name, &[len])?;
    }
    Ok(l)
}

fn check_layout(what: &str, layout: &ParamLayout, n: usize) -> Result<()> {
    if layout.len() == n {
        Ok(())
    } else {
        Err(HybridError::LengthMismatch { what: what.into(), expected: n, got: layout.len() })
    }
}

/// `f = f_mech(y; θ) + g(y; w)`: residual modeling, the universal differential equation of
/// Rackauckas et al. (2020, arXiv:2001.04385). Parameters are `[θ | w]`, named `"mech.*"` and
/// `"nn.*"` in [`Parallel::layout`].
///
/// Both parts see the same state and time; VJP, JVP and the Jacobian are the sums of the
/// parts' (through `neurohybrid_system::Sum`), so the composition costs one call of each part.
#[derive(Debug, Clone)]
pub struct Parallel<M, N> {
    sum: Sum<M, N>,
    layout: ParamLayout,
}

impl<M: OdeSystem, N: OdeSystem + Parameterized> Parallel<M, N> {
    /// Compose a mechanistic system and a network component with the same state dimension.
    /// The mechanistic block is named `"mech.p"` until [`Parallel::with_mech_layout`] names it.
    pub fn new(mech: M, nn: N) -> Result<Self> {
        let nn_layout = nn.param_layout()?;
        let n_mech = mech.n_params();
        let mut layout = ParamLayout::new();
        layout.append("mech", &single_block("p", n_mech)?)?;
        layout.append("nn", &nn_layout)?;
        let sum = Sum::new(mech, nn)?;
        Ok(Self { sum, layout })
    }
}

impl<M: OdeSystem + Parameterized, N: OdeSystem + Parameterized> Parallel<M, N> {
    /// Like [`Parallel::new`] for a mechanistic part that names its own parameters (a
    /// [`Series`], another [`Parallel`]): its blocks keep their names under `"mech."`
    /// (`"mech.nn.w"`, `"mech.mech.D"`).
    pub fn nested(mech: M, nn: N) -> Result<Self> {
        let mech_layout = mech.param_layout()?;
        Self::new(mech, nn)?.with_mech_layout(mech_layout)
    }
}

impl<M: OdeSystem, N: OdeSystem> Parallel<M, N> {
    /// Name the mechanistic parameters (`"D", "rho"` become `"mech.D"`, `"mech.rho"`); the
    /// layout must cover `mech.n_params()` entries. A nested composition passes its own
    /// `layout()` here.
    pub fn with_mech_layout(mut self, mech: ParamLayout) -> Result<Self> {
        check_layout("mechanistic parameter layout", &mech, self.sum.first().n_params())?;
        let mut layout = ParamLayout::new();
        layout.append("mech", &mech)?;
        let nn: Vec<_> =
            self.layout.blocks().iter().filter(|b| b.name().starts_with("nn.")).cloned().collect();
        for b in nn {
            layout.push(b.name(), b.shape())?;
        }
        self.layout = layout;
        Ok(self)
    }

    /// The parameter layout `["mech.*" | "nn.*"]`.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The mechanistic part.
    pub fn mech(&self) -> &M {
        self.sum.first()
    }

    /// The network part.
    pub fn nn(&self) -> &N {
        self.sum.second()
    }

    /// Split `p` into `(θ, w)`.
    pub fn split_params<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64]) {
        self.sum.split_params(p)
    }
}

impl<M, N> Parameterized for Parallel<M, N> {
    fn param_layout(&self) -> Result<ParamLayout> {
        Ok(self.layout.clone())
    }
}

impl<M: OdeSystem, N: OdeSystem> OdeSystem for Parallel<M, N> {
    fn n_states(&self) -> usize {
        self.sum.n_states()
    }
    fn n_params(&self) -> usize {
        self.sum.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.sum.rhs(t, y, p, dy)
    }
}

impl<M: Vjp, N: Vjp> Vjp for Parallel<M, N> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.sum.vjp(t, y, p, w, w_y, w_p)
    }
}

impl<M: Jvp, N: Jvp> Jvp for Parallel<M, N> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.sum.jvp(t, y, p, v_y, v_p, out)
    }
}

impl<M: Jacobian, N: Jacobian> Jacobian for Parallel<M, N> {
    fn sparsity(&self) -> &SparsityPattern {
        self.sum.sparsity()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        self.sum.jacobian(t, y, p, out)
    }
}

/// `θ_mech = g(features; w)`: a [`DiffMap`] feeds the first `g.n_outputs()` mechanistic
/// parameters (a per-voxel diffusivity map from tissue features, per-region production rates
/// from covariates). Parameters are `[w | rest of θ]`, named `"nn.*"` then `"mech.*"`.
///
/// `g` depends on `w` only (the features are fixed), so it is re-evaluated only when `w`
/// changes: the composition keeps the last `w` and `θ` (compared bit for bit), and a solve —
/// thousands of right-hand sides at one parameter vector — costs one network evaluation. The
/// VJP chains the mechanistic parameter cotangent through `gᵀ`; the JVP pushes `v_w` through
/// `g` (cached per tangent as well, since forward sensitivities reuse one tangent per column).
pub struct Series<G, M> {
    map: G,
    features: Vec<f64>,
    mech: M,
    n_w: usize,
    n_out: usize,
    layout: ParamLayout,
    cache: RefCell<SeriesCache>,
}

struct SeriesCache {
    /// Last `w` whose `θ` is in `theta`.
    w: Vec<f64>,
    valid: bool,
    /// `[g(features; w) | rest]`.
    theta: Vec<f64>,
    /// Mechanistic parameter cotangent / tangent.
    theta_bar: Vec<f64>,
    theta_dot: Vec<f64>,
}

impl<G: Clone, M: Clone> Clone for Series<G, M> {
    fn clone(&self) -> Self {
        let c = self.cache.borrow();
        Self {
            map: self.map.clone(),
            features: self.features.clone(),
            mech: self.mech.clone(),
            n_w: self.n_w,
            n_out: self.n_out,
            layout: self.layout.clone(),
            cache: RefCell::new(SeriesCache {
                w: c.w.clone(),
                valid: false,
                theta: c.theta.clone(),
                theta_bar: c.theta_bar.clone(),
                theta_dot: c.theta_dot.clone(),
            }),
        }
    }
}

impl<G, M: OdeSystem> std::fmt::Debug for Series<G, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("map_params", &self.n_w)
            .field("map_outputs", &self.n_out)
            .field("n_states", &self.mech.n_states())
            .field("n_params", &(self.n_w + self.mech.n_params() - self.n_out))
            .finish()
    }
}

impl<G: DiffMap, M: OdeSystem> Series<G, M> {
    /// `map(features; w)` becomes the first `map.n_outputs()` parameters of `mech`
    /// (`features.len() == map.n_inputs()`, `map.n_outputs() <= mech.n_params()`).
    pub fn new(map: G, features: Vec<f64>, mech: M) -> Result<Self> {
        if features.len() != map.n_inputs() {
            return Err(HybridError::LengthMismatch {
                what: "series features".into(),
                expected: map.n_inputs(),
                got: features.len(),
            });
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(HybridError::NonFinite { what: "series features".into(), index: i });
        }
        let (n_w, n_out, n_mech) = (map.n_params(), map.n_outputs(), mech.n_params());
        if n_out > n_mech {
            return Err(HybridError::InvalidConfig {
                what: "series composition".into(),
                message: format!(
                    "the map has {n_out} outputs, the mechanistic system only {n_mech} parameters"
                ),
            });
        }
        let mut layout = ParamLayout::new();
        layout.append("nn", &single_block("w", n_w)?)?;
        layout.append("mech", &single_block("p", n_mech - n_out)?)?;
        let cache = RefCell::new(SeriesCache {
            w: vec![0.0; n_w],
            valid: false,
            theta: vec![0.0; n_mech],
            theta_bar: vec![0.0; n_mech],
            theta_dot: vec![0.0; n_mech],
        });
        Ok(Self { map, features, mech, n_w, n_out, layout, cache })
    }

    /// Name the blocks: `nn` covers `w` (e.g. a `TapeMap`'s layout), `mech` the remaining
    /// mechanistic parameters.
    pub fn with_layouts(mut self, nn: &ParamLayout, mech: &ParamLayout) -> Result<Self> {
        check_layout("series network layout", nn, self.n_w)?;
        check_layout("series mechanistic layout", mech, self.mech.n_params() - self.n_out)?;
        let mut layout = ParamLayout::new();
        layout.append("nn", nn)?;
        layout.append("mech", mech)?;
        self.layout = layout;
        Ok(self)
    }

    /// The parameter layout `["nn.*" | "mech.*"]`.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The mechanistic parameters `θ = [g(features; w) | rest]` for `p = [w | rest]`, for
    /// inspection (a learned diffusivity map).
    pub fn mech_params(&self, p: &[f64]) -> Vec<f64> {
        let mut c = self.cache.borrow_mut();
        self.ensure_theta(&mut c, p);
        c.theta.clone()
    }

    /// The map.
    pub fn map(&self) -> &G {
        &self.map
    }

    /// The mechanistic system.
    pub fn mech(&self) -> &M {
        &self.mech
    }

    /// The features the map reads.
    pub fn features(&self) -> &[f64] {
        &self.features
    }

    fn ensure_theta(&self, c: &mut SeriesCache, p: &[f64]) {
        let (w, rest) = p.split_at(self.n_w);
        let same = c.valid && c.w.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            self.map.eval(&self.features, w, &mut c.theta[..self.n_out]);
            c.w.copy_from_slice(w);
            c.valid = true;
        }
        // The rest is copied every call: it is short, and comparing would cost the same.
        c.theta[self.n_out..].copy_from_slice(rest);
    }
}

impl<G, M> Parameterized for Series<G, M> {
    fn param_layout(&self) -> Result<ParamLayout> {
        Ok(self.layout.clone())
    }
}

impl<G: DiffMap, M: OdeSystem> OdeSystem for Series<G, M> {
    fn n_states(&self) -> usize {
        self.mech.n_states()
    }
    fn n_params(&self) -> usize {
        self.n_w + self.mech.n_params() - self.n_out
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        let mut c = self.cache.borrow_mut();
        self.ensure_theta(&mut c, p);
        self.mech.rhs(t, y, &c.theta, dy);
    }
}

impl<G: DiffMap, M: Vjp> Vjp for Series<G, M> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        let mut c = self.cache.borrow_mut();
        self.ensure_theta(&mut c, p);
        let c = &mut *c;
        if w_p.is_empty() {
            self.mech.vjp(t, y, &c.theta, w, w_y, &mut []);
            return;
        }
        self.mech.vjp(t, y, &c.theta, w, w_y, &mut c.theta_bar);
        let (wb, rest) = w_p.split_at_mut(self.n_w);
        // θ_bar's first block pulled back through g (the features' cotangent is not needed).
        self.map.vjp(&self.features, &c.w, &c.theta_bar[..self.n_out], &mut [], wb);
        rest.copy_from_slice(&c.theta_bar[self.n_out..]);
    }
}

impl<G: DiffMap, M: Jvp> Jvp for Series<G, M> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        let mut c = self.cache.borrow_mut();
        self.ensure_theta(&mut c, p);
        let c = &mut *c;
        if v_p.is_empty() {
            self.mech.jvp(t, y, &c.theta, v_y, &[], out);
            return;
        }
        let (vw, vrest) = v_p.split_at(self.n_w);
        self.map.jvp(&self.features, &c.w, &[], vw, &mut c.theta_dot[..self.n_out]);
        c.theta_dot[self.n_out..].copy_from_slice(vrest);
        self.mech.jvp(t, y, &c.theta, v_y, &c.theta_dot, out);
    }
}

impl<G: DiffMap, M: Jacobian> Jacobian for Series<G, M> {
    fn sparsity(&self) -> &SparsityPattern {
        self.mech.sparsity()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let mut c = self.cache.borrow_mut();
        self.ensure_theta(&mut c, p);
        self.mech.jacobian(t, y, &c.theta, out);
    }
}

/// Observation model, mechanistic → network: `obs = g(y; w)`. Not an ODE; losses compare
/// `observe(y(t_k), w)` with data and pull their cotangents back with [`Readout::vjp`]
/// (whose `y_bar` is the cotangent a sensitivity method takes at the save time).
#[derive(Debug, Clone)]
pub struct Readout<G> {
    map: G,
}

impl<G: DiffMap> Readout<G> {
    /// Wrap a map from states (`map.n_inputs()` = state length) to observations.
    pub fn new(map: G) -> Self {
        Self { map }
    }

    /// `out = g(y; w)`.
    pub fn observe(&self, y: &[f64], w: &[f64], out: &mut [f64]) {
        self.map.eval(y, w, out)
    }

    /// `y_bar = (∂g/∂y)ᵀ cot`, `w_bar = (∂g/∂w)ᵀ cot` (overwritten; empty = not needed).
    pub fn vjp(&self, y: &[f64], w: &[f64], cot: &[f64], y_bar: &mut [f64], w_bar: &mut [f64]) {
        self.map.vjp(y, w, cot, y_bar, w_bar)
    }

    /// The map.
    pub fn map(&self) -> &G {
        &self.map
    }
}

impl<G: DiffMap> DiffMap for Readout<G> {
    fn n_inputs(&self) -> usize {
        self.map.n_inputs()
    }
    fn n_outputs(&self) -> usize {
        self.map.n_outputs()
    }
    fn n_params(&self) -> usize {
        self.map.n_params()
    }
    fn eval(&self, x: &[f64], w: &[f64], out: &mut [f64]) {
        self.map.eval(x, w, out)
    }
    fn vjp(&self, x: &[f64], w: &[f64], cot: &[f64], x_bar: &mut [f64], w_bar: &mut [f64]) {
        self.map.vjp(x, w, cot, x_bar, w_bar)
    }
    fn jvp(&self, x: &[f64], w: &[f64], v_x: &[f64], v_w: &[f64], out: &mut [f64]) {
        self.map.jvp(x, w, v_x, v_w, out)
    }
}
