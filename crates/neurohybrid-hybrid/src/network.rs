//! [`NetworkRhs`]: a network used as (part of) a right-hand side, and [`Parameterized`], the
//! trait through which compositions name their parameter blocks.

use crate::error::{HybridError, Result};
use crate::map::layer_layout;
use neurohybrid_autodiff::{Graph, Var};
use neurohybrid_nn::{Layer, Mlp, Pointwise};
use neurohybrid_system::{
    CsrMatrix, Jacobian, Jvp, OdeSystem, ParamLayout, SparsityPattern, TapeSystem, Vjp,
    dense_pattern, pattern_from_rows,
};
use std::sync::Arc;

/// A component that names the blocks of its parameter vector.
///
/// Implemented by every network component and composition of this crate; compositions use it
/// to build their [`ParamLayout`] with `"mech."` / `"nn."` prefixes. `Err` when the component
/// is not fully configured (a pointwise network whose input width is not yet matched).
pub trait Parameterized {
    /// The named blocks, tiling `0..n_params`.
    fn param_layout(&self) -> Result<ParamLayout>;
}

#[derive(Clone)]
enum Kind {
    Dense(Arc<dyn Layer + Send + Sync>),
    Pointwise { n_points: usize, channels: usize, features: Arc<[f64]>, n_feat: usize },
}

/// A network as an [`OdeSystem`] + [`Vjp`] + [`Jvp`] + [`Jacobian`]: `dy/dt = net(y (, t); w)`.
///
/// - [`NetworkRhs::dense`]: one layer (an MLP, a `Sequential`, …) on the whole state.
/// - [`NetworkRhs::pointwise`]: the same MLP with shared weights on every point (voxel, graph
///   node), the fused parallel kernel of `neurohybrid_nn::Pointwise`. The state is
///   **channel-major**: `y[c·n_points + i]` is channel `c` at point `i` (a list of fields, as
///   multi-species PDE and network models store them). The MLP's input per point is
///   `[its channels' values, then its static features, then t]`; its output per point is the
///   `channels` derivatives. The Jacobian pattern is block-diagonal (point `i` couples only its
///   own channels), so an implicit solver colors it with `channels` JVPs.
///
/// The parameters are the layer's own flat block with its names (`"layer0.weight"`, …). The
/// network is recorded once into a `neurohybrid_system::TapeSystem`, so every call replays a
/// compiled tape without allocating. `Send`, not `Sync`: clone per thread.
#[derive(Clone)]
pub struct NetworkRhs {
    n: usize,
    m: usize,
    time: bool,
    kind: Kind,
    /// The pointwise network (`None` for dense).
    mlp: Option<Mlp>,
    layout: ParamLayout,
    /// `None` while a pointwise network's input width is not matched yet (features or the
    /// time input still to be added by the builder).
    system: Option<TapeSystem>,
}

impl NetworkRhs {
    /// `f(y; w) = layer(y)` on a state of length `n_states` (the layer maps `[n_states]` to
    /// `[n_states]`; with [`NetworkRhs::with_time_input`] it takes `[y, t]`, `[n_states + 1]`).
    /// The layer is cloned and kept, so the builder can record it again.
    pub fn dense<L: Layer + Clone + Send + Sync + 'static>(
        layer: &L,
        n_states: usize,
    ) -> Result<Self> {
        let layout = layer_layout(layer)?;
        let mut s = Self {
            n: n_states,
            m: layer.n_params(),
            time: false,
            kind: Kind::Dense(Arc::new(layer.clone())),
            mlp: None,
            layout,
            system: None,
        };
        s.rebuild()?;
        Ok(s)
    }

    /// The same `mlp` on each of `n_points` points with `channels` state values each
    /// (`mlp.outputs()` must be `channels`; `mlp.inputs()` is `channels` plus the feature
    /// count of [`NetworkRhs::with_features`] plus one with [`NetworkRhs::with_time_input`]).
    pub fn pointwise(mlp: &Mlp, n_points: usize, channels: usize) -> Result<Self> {
        mlp.validate()?;
        if mlp.outputs() != channels {
            return Err(HybridError::InvalidConfig {
                what: "pointwise network".into(),
                message: format!("{} outputs per point for {channels} channels", mlp.outputs()),
            });
        }
        if n_points == 0 || channels == 0 {
            return Err(HybridError::InvalidConfig {
                what: "pointwise network".into(),
                message: format!("{n_points} points with {channels} channels"),
            });
        }
        let mut s = Self {
            n: n_points * channels,
            m: mlp.n_params(),
            time: false,
            kind: Kind::Pointwise { n_points, channels, features: Arc::from(vec![]), n_feat: 0 },
            mlp: Some(mlp.clone()),
            layout: layer_layout(mlp)?,
            system: None,
        };
        s.rebuild()?;
        Ok(s)
    }

    /// Static per-point features (`[n_points × n_feat]`, row-major) appended to every point's
    /// input after its channels (tissue type, a covariate, node degree). Pointwise only.
    pub fn with_features(mut self, features: Vec<f64>) -> Result<Self> {
        match &mut self.kind {
            Kind::Dense(_) => {
                return Err(HybridError::InvalidConfig {
                    what: "features".into(),
                    message: "per-point features need a pointwise network".into(),
                });
            }
            Kind::Pointwise { n_points, features: f, n_feat, .. } => {
                if !features.len().is_multiple_of(*n_points) {
                    return Err(HybridError::LengthMismatch {
                        what: "pointwise features (n_points × n_feat)".into(),
                        expected: *n_points * (features.len() / *n_points).max(1),
                        got: features.len(),
                    });
                }
                if let Some(i) = features.iter().position(|v| !v.is_finite()) {
                    return Err(HybridError::NonFinite { what: "features".into(), index: i });
                }
                *n_feat = features.len() / *n_points;
                *f = Arc::from(features);
            }
        }
        self.rebuild()?;
        Ok(self)
    }

    /// Append `t` to the network's input (every point's input for a pointwise network).
    pub fn with_time_input(mut self) -> Result<Self> {
        self.time = true;
        self.rebuild()?;
        Ok(self)
    }

    /// Whether the network's input width matches its configuration (a pointwise network that
    /// still waits for its features is not usable yet).
    pub fn is_complete(&self) -> bool {
        self.system.is_some()
    }

    /// The parameter names (the layer's).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    fn rebuild(&mut self) -> Result<()> {
        self.system = match &self.kind {
            // A layer taking [y, t] waits for `with_time_input`.
            Kind::Dense(layer)
                if !self.time
                    && layer.output_shape(&[self.n]).is_err()
                    && layer.output_shape(&[self.n + 1]).is_ok() =>
            {
                None
            }
            Kind::Dense(layer) => {
                Some(TapeSystem::new(record_dense(&**layer, self.n, self.m, self.time)?)?)
            }
            Kind::Pointwise { n_points, channels, features, n_feat } => {
                let mlp = self.mlp.as_ref().expect("pointwise networks keep their MLP");
                let width = channels + n_feat + usize::from(self.time);
                if width > mlp.inputs() {
                    return Err(HybridError::InvalidConfig {
                        what: "pointwise network".into(),
                        message: format!(
                            "the MLP takes {} inputs per point, configured {channels} channels + \
                             {n_feat} features{}",
                            mlp.inputs(),
                            if self.time { " + t" } else { "" }
                        ),
                    });
                }
                if width < mlp.inputs() {
                    None
                } else {
                    let tape = record_pointwise(
                        mlp, *n_points, *channels, features, *n_feat, self.time, self.m,
                    )?;
                    let pattern = block_pattern(*n_points, *channels)?;
                    Some(TapeSystem::new(tape)?.with_sparsity(pattern)?)
                }
            }
        };
        Ok(())
    }

    fn sys(&self) -> &TapeSystem {
        self.system.as_ref().expect(
            "NetworkRhs used before its input width was matched (add the features or the time \
             input the MLP expects; compositions check this with param_layout)",
        )
    }
}

fn record_dense(
    layer: &(impl Layer + ?Sized),
    n: usize,
    m: usize,
    time: bool,
) -> Result<neurohybrid_autodiff::Tape> {
    let mut g = Graph::new();
    let y = g.input("y", &[n])?;
    let p = g.input("p", &[m])?;
    let x = if time {
        let t = g.input("t", &[])?;
        let t1 = g.reshape(t, &[1])?;
        g.concat(&[y, t1])?
    } else {
        y
    };
    let out = layer.forward(&mut g, x, p)?;
    let len: usize = g.shape(out)?.iter().product();
    if len != n {
        return Err(HybridError::LengthMismatch {
            what: "network output (one derivative per state)".into(),
            expected: n,
            got: len,
        });
    }
    let out = g.reshape(out, &[n])?;
    Ok(g.compile(&[out])?)
}

#[allow(clippy::too_many_arguments)]
fn record_pointwise(
    mlp: &Mlp,
    n_points: usize,
    channels: usize,
    features: &[f64],
    n_feat: usize,
    time: bool,
    m: usize,
) -> Result<neurohybrid_autodiff::Tape> {
    let n = n_points * channels;
    let mut g = Graph::new();
    let y = g.input("y", &[n])?;
    let p = g.input("p", &[m])?;
    let width = channels + n_feat + usize::from(time);
    let x: Var = if width == 1 {
        g.reshape(y, &[n_points, 1])?
    } else {
        // Gather the per-point rows [channels..., features..., t] from one flat vector
        // [y | features | t]; the gather's VJP is a scatter-add, so t and y get their
        // cotangents summed over points.
        let mut parts = vec![y];
        if n_feat > 0 {
            parts.push(g.constant(&[features.len()], features.to_vec())?);
        }
        let t_at = n + features.len();
        if time {
            let t = g.input("t", &[])?;
            parts.push(g.reshape(t, &[1])?);
        }
        let all = g.concat(&parts)?;
        let mut idx = Vec::with_capacity(n_points * width);
        for i in 0..n_points {
            idx.extend((0..channels).map(|c| c * n_points + i));
            idx.extend((0..n_feat).map(|f| n + i * n_feat + f));
            if time {
                idx.push(t_at);
            }
        }
        let rows = g.gather(all, Arc::from(idx))?;
        g.reshape(rows, &[n_points, width])?
    };
    let out = Pointwise::new(mlp.clone()).forward(&mut g, x, p)?; // [n_points, channels]
    let out = if channels == 1 {
        g.reshape(out, &[n])?
    } else {
        // point-major network output → channel-major state derivative
        let idx: Vec<usize> =
            (0..channels).flat_map(|c| (0..n_points).map(move |i| i * channels + c)).collect();
        let flat = g.reshape(out, &[n])?;
        g.gather(flat, Arc::from(idx))?
    };
    Ok(g.compile(&[out])?)
}

/// Point `i` couples its own channels only: rows and columns `c·n_points + i`.
fn block_pattern(n_points: usize, channels: usize) -> Result<SparsityPattern> {
    let n = n_points * channels;
    if channels == n {
        return Ok(dense_pattern(n));
    }
    let rows: Vec<Vec<usize>> = (0..n)
        .map(|r| {
            let i = r % n_points;
            (0..channels).map(|c| c * n_points + i).collect()
        })
        .collect();
    Ok(pattern_from_rows(n, &rows)?)
}

impl std::fmt::Debug for NetworkRhs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Dense(_) => "dense",
            Kind::Pointwise { .. } => "pointwise",
        };
        f.debug_struct("NetworkRhs")
            .field("kind", &kind)
            .field("n_states", &self.n)
            .field("n_params", &self.m)
            .field("time_input", &self.time)
            .finish()
    }
}

impl Parameterized for NetworkRhs {
    fn param_layout(&self) -> Result<ParamLayout> {
        if self.system.is_none() {
            return Err(HybridError::InvalidConfig {
                what: "pointwise network".into(),
                message: "its network takes more inputs than configured (per-point features or \
                          the time input missing)"
                    .into(),
            });
        }
        Ok(self.layout.clone())
    }
}

impl OdeSystem for NetworkRhs {
    fn n_states(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        self.m
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.sys().rhs(t, y, p, dy)
    }
}

impl Vjp for NetworkRhs {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.sys().vjp(t, y, p, w, w_y, w_p)
    }
}

impl Jvp for NetworkRhs {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.sys().jvp(t, y, p, v_y, v_p, out)
    }
}

impl Jacobian for NetworkRhs {
    fn sparsity(&self) -> &SparsityPattern {
        self.sys().sparsity()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        self.sys().jacobian(t, y, p, out)
    }
}
