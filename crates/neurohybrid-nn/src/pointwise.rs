//! One small network applied with shared weights to every voxel or graph node.

use std::sync::Arc;

use neurohybrid_autodiff::{Graph, Var};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::fused::{Columns, FusedMlp};
use crate::layer::{Layer, check_params};
use crate::mlp::Mlp;
use crate::params::ParamBlock;

/// How a [`Pointwise`] network is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointwiseMode {
    /// One fused custom op, parallel over chunks of points (the default; see `fused.rs`). The
    /// VJP and JVP recompute the hidden activations per block of points: memory O(n · outputs).
    #[default]
    Fused,
    /// The fused op saving every hidden activation for the VJP instead of recomputing it
    /// (memory O(n · Σ widths); kept for measuring that trade-off, ADR 0005).
    FusedStored,
    /// The network's dense layers recorded op by op as batched matmuls (a reference, and the
    /// path for graphs that want every intermediate visible).
    Graph,
}

/// `net` applied to every row of `[n_points, features]`, giving `[n_points, outputs]`.
///
/// A rank-1 input `[n_points]` is read as one feature per point (needs `net.inputs() == 1`),
/// and then a one-output network returns rank-1 `[n_points]` too — the natural shape of a scalar
/// field on a grid or a connectome. Parameters and their names are the network's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointwise {
    /// The shared network.
    pub net: Mlp,
    /// How it is recorded.
    pub mode: PointwiseMode,
}

impl Pointwise {
    /// The fused pointwise application of `net`.
    pub fn new(net: Mlp) -> Self {
        Pointwise { net, mode: PointwiseMode::Fused }
    }

    /// Chooses how the network is recorded.
    pub fn with_mode(mut self, mode: PointwiseMode) -> Self {
        self.mode = mode;
        self
    }

    /// `(n_points, rank1)` for an input shape.
    fn points(&self, input: &[usize]) -> Result<(usize, bool)> {
        match input {
            [n] if self.net.inputs() == 1 => Ok((*n, true)),
            [n, f] if *f == self.net.inputs() => Ok((*n, false)),
            _ => Err(NnError::InputShape {
                layer: "Pointwise",
                expected: format!("[n_points, {}]", self.net.inputs()),
                got: input.to_vec(),
            }),
        }
    }
}

impl Layer for Pointwise {
    fn kind(&self) -> &'static str {
        "Pointwise"
    }
    fn n_params(&self) -> usize {
        self.net.n_params()
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        self.net.param_blocks()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.net.validate()?;
        let (n, rank1) = self.points(input)?;
        let o = self.net.outputs();
        Ok(if rank1 && o == 1 { vec![n] } else { vec![n, o] })
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        check_params(g, p, self.n_params())?;
        let out_shape = self.output_shape(g.shape(x)?)?;
        let (n, rank1) = self.points(g.shape(x)?)?;
        let x2 = if rank1 { g.reshape(x, &[n, 1])? } else { x };
        let y = match self.mode {
            PointwiseMode::Graph => self.net.forward(g, x2, p)?,
            PointwiseMode::Fused | PointwiseMode::FusedStored => {
                let op = FusedMlp::new(&self.net, n, self.mode == PointwiseMode::FusedStored);
                let stride = op.stride();
                let packed = g.custom(Arc::new(op), &[x2, p])?;
                let outputs = self.net.outputs();
                if stride == outputs {
                    packed
                } else {
                    g.custom(Arc::new(Columns { n, stride, start: 0, len: outputs }), &[packed])?
                }
            }
        };
        if out_shape.len() == 1 { Ok(g.reshape(y, &out_shape)?) } else { Ok(y) }
    }
}
