//! The affine layer `y = x W + b`.

use neurohybrid_autodiff::{Graph, Var};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::layer::{Layer, check_params};
use crate::params::{BlockKind, ParamBlock};

/// Affine layer `y = x W + b` on `[batch, inputs]` (or a single row `[inputs]`).
///
/// Parameters: `weight` of shape `[inputs, outputs]` (row-major, so the product needs no
/// transpose; PyTorch and dfdx store the transpose `[outputs, inputs]`), then `bias` of shape
/// `[outputs]` if enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dense {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// Whether the layer adds a bias.
    pub bias: bool,
}

impl Dense {
    /// A dense layer; both widths must be positive.
    pub fn new(inputs: usize, outputs: usize, bias: bool) -> Result<Self> {
        if inputs == 0 || outputs == 0 {
            return Err(NnError::config(
                "Dense widths",
                format!("inputs ({inputs}) and outputs ({outputs}) must be positive"),
            ));
        }
        Ok(Dense { inputs, outputs, bias })
    }
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "Dense"
    }
    fn n_params(&self) -> usize {
        self.inputs * self.outputs + if self.bias { self.outputs } else { 0 }
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        let mut blocks = vec![ParamBlock {
            name: "weight".into(),
            offset: 0,
            shape: vec![self.inputs, self.outputs],
            kind: BlockKind::Weight { fan_in: self.inputs, fan_out: self.outputs },
        }];
        if self.bias {
            blocks.push(ParamBlock {
                name: "bias".into(),
                offset: self.inputs * self.outputs,
                shape: vec![self.outputs],
                kind: BlockKind::Bias,
            });
        }
        blocks
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [n] if *n == self.inputs => Ok(vec![self.outputs]),
            [b, n] if *n == self.inputs => Ok(vec![*b, self.outputs]),
            _ => Err(NnError::InputShape {
                layer: "Dense",
                expected: format!("[{0}] or [batch, {0}]", self.inputs),
                got: input.to_vec(),
            }),
        }
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        check_params(g, p, self.n_params())?;
        let out_shape = self.output_shape(g.shape(x)?)?;
        let x2 = if out_shape.len() == 1 { g.reshape(x, &[1, self.inputs])? } else { x };
        let nw = self.inputs * self.outputs;
        let w = g.slice(p, 0, nw)?;
        let w = g.reshape(w, &[self.inputs, self.outputs])?;
        let mut y = g.matmul(x2, w)?;
        if self.bias {
            let b = g.slice(p, nw, self.outputs)?;
            y = g.add(y, b)?;
        }
        if out_shape.len() == 1 { Ok(g.reshape(y, &out_shape)?) } else { Ok(y) }
    }
}
