//! Layers applied one after another.

use neurohybrid_autodiff::{Graph, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::layer::{Architecture, Layer, check_params};
use crate::params::ParamBlock;

/// Layers applied in order; layer `i`'s parameters follow layer `i-1`'s and its blocks are
/// named `layer{i}.<name>` (an activation owns no block).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sequential {
    /// The layers, first applied first.
    pub layers: Vec<Architecture>,
}

impl Sequential {
    /// An empty stack (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Into<Architecture>) -> Self {
        self.layers.push(layer.into());
        self
    }
}

impl Layer for Sequential {
    fn kind(&self) -> &'static str {
        "Sequential"
    }
    fn n_params(&self) -> usize {
        self.layers.iter().map(Layer::n_params).sum()
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(
                l.param_blocks().into_iter().map(|b| b.nested(&format!("layer{i}"), offset)),
            );
            offset += l.n_params();
        }
        out
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut s = input.to_vec();
        for l in &self.layers {
            s = l.output_shape(&s)?;
        }
        Ok(s)
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        let n = self.n_params();
        if n > 0 {
            check_params(g, p, n)?;
        }
        let mut h = x;
        let mut offset = 0;
        for l in &self.layers {
            h = l.forward_at(g, h, p, offset)?;
            offset += l.n_params();
        }
        Ok(h)
    }
}
