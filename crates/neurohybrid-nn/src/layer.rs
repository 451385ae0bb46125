//! The [`Layer`] trait and the serializable [`Architecture`] that names every layer of this
//! crate.

use neurohybrid_autodiff::{Graph, Var};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::conv::Conv;
use crate::dense::Dense;
use crate::error::{NnError, Result};
use crate::mlp::Mlp;
use crate::params::ParamBlock;
use crate::pointwise::Pointwise;
use crate::sequential::Sequential;

/// A neural layer: a graph builder over one contiguous block of a flat parameter vector.
///
/// [`forward`](Layer::forward) records the layer's computation on `x` into `g`; `p` is the
/// layer's own parameters (a rank-1 `Var` of length [`n_params`](Layer::n_params), typically
/// `g.slice(params, offset, n)` of the model's parameter input, see
/// [`forward_at`](Layer::forward_at)). Recording happens once; the compiled tape then replays
/// forward, VJP and JVP sweeps through the layer together with whatever mechanistic operator
/// shares the graph.
pub trait Layer {
    /// A short type name for error messages (`"Dense"`, `"Mlp"`, ...).
    fn kind(&self) -> &'static str;
    /// Number of parameters.
    fn n_params(&self) -> usize;
    /// Named sub-blocks of the parameter block, offsets relative to its start, in order.
    fn param_blocks(&self) -> Vec<ParamBlock>;
    /// The output shape for an input of shape `input`, or why that input does not fit.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;
    /// Records the layer on `x` with parameters `p` (ignored when `n_params() == 0`).
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var>;

    /// Records the layer with its parameters at `offset..offset + n_params()` of the flat
    /// vector `params`.
    fn forward_at(&self, g: &mut Graph, x: Var, params: Var, offset: usize) -> Result<Var> {
        let n = self.n_params();
        if n == 0 {
            return self.forward(g, x, params);
        }
        let total: usize = g.shape(params)?.iter().product();
        let p = if offset == 0 && total == n && g.shape(params)?.len() == 1 {
            params
        } else {
            g.slice(params, offset, n)?
        };
        self.forward(g, x, p)
    }
}

/// Checks that `p` holds `layer.n_params()` values.
pub(crate) fn check_params(g: &Graph, p: Var, n: usize) -> Result<()> {
    let got: usize = g.shape(p)?.iter().product();
    if got != n {
        return Err(NnError::LengthMismatch { what: "layer parameters", expected: n, got });
    }
    Ok(())
}

/// Every layer of this crate, as one serializable value: what a checkpoint stores next to the
/// parameters so a trained model can be rebuilt and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// An affine layer.
    Dense(Dense),
    /// A parameter-free nonlinearity.
    Activation(Activation),
    /// A multilayer perceptron.
    Mlp(Mlp),
    /// Layers applied in order.
    Sequential(Sequential),
    /// One network applied to every point (voxel, graph node) with shared weights.
    Pointwise(Pointwise),
    /// A masked grid convolution.
    Conv(Conv),
}

impl Architecture {
    fn inner(&self) -> &dyn Layer {
        match self {
            Architecture::Dense(l) => l,
            Architecture::Activation(l) => l,
            Architecture::Mlp(l) => l,
            Architecture::Sequential(l) => l,
            Architecture::Pointwise(l) => l,
            Architecture::Conv(l) => l,
        }
    }

    /// Re-checks the invariants the constructors enforce (a deserialized value bypasses them).
    pub fn validate(&self) -> Result<()> {
        match self {
            Architecture::Dense(l) => Dense::new(l.inputs, l.outputs, l.bias).map(|_| ()),
            Architecture::Activation(_) => Ok(()),
            Architecture::Mlp(l) => l.validate(),
            Architecture::Sequential(s) => s.layers.iter().try_for_each(Architecture::validate),
            Architecture::Pointwise(p) => p.net.validate(),
            Architecture::Conv(c) => c.validate(),
        }
    }
}

impl Layer for Architecture {
    fn kind(&self) -> &'static str {
        self.inner().kind()
    }
    fn n_params(&self) -> usize {
        self.inner().n_params()
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        self.inner().param_blocks()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.inner().output_shape(input)
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        self.inner().forward(g, x, p)
    }
}

macro_rules! into_architecture {
    ($($t:ident),*) => {$(
        impl From<$t> for Architecture {
            fn from(l: $t) -> Self {
                Architecture::$t(l)
            }
        }
    )*};
}
into_architecture!(Dense, Activation, Mlp, Sequential, Pointwise, Conv);
