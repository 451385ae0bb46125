//! Multilayer perceptrons from a list of widths.

use neurohybrid_autodiff::{Graph, Var};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::dense::Dense;
use crate::error::{NnError, Result};
use crate::layer::{Layer, check_params};
use crate::params::ParamBlock;

/// A multilayer perceptron `widths[0] → widths[1] → … → widths[L]`: dense layers named
/// `layer0`, `layer1`, …, with `activation` after every hidden layer and `output_activation`
/// (default: none) after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mlp {
    /// Layer widths, input first; at least two, all positive.
    pub widths: Vec<usize>,
    /// Nonlinearity after each hidden layer.
    pub activation: Activation,
    /// Nonlinearity after the output layer.
    pub output_activation: Activation,
    /// Whether the dense layers carry biases.
    pub bias: bool,
}

impl Mlp {
    /// An MLP with biases and a linear output layer.
    pub fn new(widths: &[usize], activation: Activation) -> Result<Self> {
        let m = Mlp {
            widths: widths.to_vec(),
            activation,
            output_activation: Activation::Identity,
            bias: true,
        };
        m.validate()?;
        Ok(m)
    }

    /// Sets the output nonlinearity (e.g. `Softplus` for a positive parameter field).
    pub fn with_output_activation(mut self, act: Activation) -> Self {
        self.output_activation = act;
        self
    }

    /// Enables or disables the biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Checks the widths.
    pub fn validate(&self) -> Result<()> {
        if self.widths.len() < 2 || self.widths.contains(&0) {
            return Err(NnError::config(
                "Mlp widths",
                format!("need at least two positive widths, got {:?}", self.widths),
            ));
        }
        Ok(())
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.widths[0]
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        *self.widths.last().expect("validated: at least two widths")
    }

    /// The dense layers in order.
    pub fn layers(&self) -> impl Iterator<Item = Dense> + '_ {
        self.widths.windows(2).map(|w| Dense { inputs: w[0], outputs: w[1], bias: self.bias })
    }

    /// The activation after dense layer `i`.
    pub fn activation_after(&self, i: usize) -> Activation {
        if i + 2 == self.widths.len() { self.output_activation } else { self.activation }
    }
}

impl Layer for Mlp {
    fn kind(&self) -> &'static str {
        "Mlp"
    }
    fn n_params(&self) -> usize {
        self.layers().map(|d| d.n_params()).sum()
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (i, d) in self.layers().enumerate() {
            out.extend(
                d.param_blocks().into_iter().map(|b| b.nested(&format!("layer{i}"), offset)),
            );
            offset += d.n_params();
        }
        out
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        match input {
            [n] if *n == self.inputs() => Ok(vec![self.outputs()]),
            [b, n] if *n == self.inputs() => Ok(vec![*b, self.outputs()]),
            _ => Err(NnError::InputShape {
                layer: "Mlp",
                expected: format!("[{0}] or [batch, {0}]", self.inputs()),
                got: input.to_vec(),
            }),
        }
    }
    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> Result<Var> {
        check_params(g, p, self.n_params())?;
        self.output_shape(g.shape(x)?)?;
        let mut h = x;
        let mut offset = 0;
        for (i, d) in self.layers().enumerate() {
            h = d.forward_at(g, h, p, offset)?;
            h = self.activation_after(i).record(g, h)?;
            offset += d.n_params();
        }
        Ok(h)
    }
}
