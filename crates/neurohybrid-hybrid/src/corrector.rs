//! [`StencilCorrector`]: a translation-invariant correction for grid states, the corrector of
//! [`SolverInTheLoop`](crate::SolverInTheLoop) on PDE problems.
//!
//! The error of a coarse step of a diffusion–reaction solver is a smooth function of each
//! cell's *neighbourhood* (the Laplacian's truncation error couples neighbours), the same at
//! every cell. A pointwise network of the local value cannot represent that coupling, and a
//! dense network of the whole state has `O(n²)` weights that one training field cannot pin
//! down. A stencil (convolution) corrector has both properties by construction: the correction
//! at cell `i` is one small function of the values in the `k×k(×k)` box around `i`, weights
//! shared over cells (Um et al. 2020 use convolutional correctors for the same reason).
//!
//! The cell's input channels are the powers `z, z², …, z^degree` of the coarse state. With no
//! bias the correction vanishes at `z ≡ 0` exactly; a correction that did not would seed
//! spurious growth wherever the dynamics are unstable at zero (the logistic front of
//! Fisher–KPP multiplies an offset by `e^{ρt}`).
//!
//! Boundaries: [`StencilBoundary::Replicate`] reads a neighbour outside the grid as the
//! nearest boundary cell's value, which is the ghost cell of a cell-centred no-flux boundary,
//! so the same stencil is consistent at the boundary. [`StencilBoundary::Zero`] is a plain
//! zero-padded convolution (Dirichlet-like ghost cells).
//!
//! Built from existing differentiable ops only (a `gather` for the padding, nn's [`Conv`] for
//! the stencil, an activation, a `gather` back to the interior), so its VJP and JVP are those
//! ops' exact ones.

use std::sync::Arc;

use neurohybrid_autodiff::{Graph, Var};
use neurohybrid_nn::{Activation, Conv, Layer, NnError, ParamBlock};
use serde::{Deserialize, Serialize};

/// How a stencil reads neighbours outside the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum StencilBoundary {
    /// The nearest boundary cell's value (a no-flux ghost cell).
    #[default]
    Replicate,
    /// Zero.
    Zero,
}

/// A translation-invariant grid corrector `c(z)`: a `k×k(×k)` stencil over the channels
/// `z, …, z^degree`, either linear (`hidden == 0`) or followed by an activation and a 1×1
/// mixing layer (`hidden` channels), times `scale`.
///
/// An [`nn::Layer`](Layer) from `[cells]` to `[cells]` (row-major over `dims`, last axis
/// fastest), so [`TapeMap::new`](crate::TapeMap::new) compiles it; parameter blocks
/// `"stencil.weight"` `[out, degree, k, k(, k)]`, `"stencil.bias"` (if `bias`), and with hidden
/// channels `"mix.weight"` `[1, hidden, 1, 1(, 1)]`, `"mix.bias"` (if `bias`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StencilCorrector {
    /// Grid extents, 2 or 3 of them.
    pub dims: Vec<usize>,
    /// Stencil width (odd).
    pub kernel: usize,
    /// Input channels `z, z², …, z^degree` (≥ 1).
    pub degree: usize,
    /// Hidden channels; 0 = a linear stencil.
    pub hidden: usize,
    /// The hidden activation.
    pub activation: Activation,
    /// Whether the stencil (and mixing) layers have biases.
    pub bias: bool,
    /// Output scale (sets the correction's magnitude at unit weights, so first-order
    /// optimizers take steps on the correction's own scale).
    pub scale: f64,
    /// Ghost-cell rule.
    pub boundary: StencilBoundary,
}

impl StencilCorrector {
    /// A linear 3×3 (3×3×3) stencil on `z`, no bias, replicate boundary, scale 1.
    pub fn linear(dims: &[usize]) -> Self {
        Self {
            dims: dims.to_vec(),
            kernel: 3,
            degree: 1,
            hidden: 0,
            activation: Activation::Tanh,
            bias: false,
            scale: 1.0,
            boundary: StencilBoundary::Replicate,
        }
    }

    /// Sets the stencil width.
    pub fn with_kernel(mut self, kernel: usize) -> Self {
        self.kernel = kernel;
        self
    }

    /// Sets the polynomial degree of the input channels.
    pub fn with_degree(mut self, degree: usize) -> Self {
        self.degree = degree;
        self
    }

    /// A nonlinear corrector: `hidden` channels after the stencil, then `activation` and a
    /// 1×1 layer back to one channel.
    pub fn with_hidden(mut self, hidden: usize, activation: Activation) -> Self {
        self.hidden = hidden;
        self.activation = activation;
        self
    }

    /// Enables or disables biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the output scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Sets the ghost-cell rule.
    pub fn with_boundary(mut self, boundary: StencilBoundary) -> Self {
        self.boundary = boundary;
        self
    }

    /// Number of grid cells.
    pub fn cells(&self) -> usize {
        self.dims.iter().product()
    }

    fn pad(&self) -> usize {
        match self.boundary {
            StencilBoundary::Replicate => self.kernel / 2,
            StencilBoundary::Zero => 0,
        }
    }

    fn padded_dims(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d + 2 * self.pad()).collect()
    }

    /// The stencil layer and, with hidden channels, the mixing layer, on the padded grid.
    fn convs(&self) -> neurohybrid_nn::Result<(Conv, Option<Conv>)> {
        if self.degree == 0 {
            return Err(NnError::InvalidConfig {
                what: "StencilCorrector degree",
                message: "need degree >= 1".into(),
            });
        }
        if !self.scale.is_finite() {
            return Err(NnError::InvalidConfig {
                what: "StencilCorrector scale",
                message: format!("{} is not finite", self.scale),
            });
        }
        let pd = self.padded_dims();
        let out = if self.hidden == 0 { 1 } else { self.hidden };
        let stencil =
            Conv::new(&pd, self.degree, out)?.with_kernel(self.kernel)?.with_bias(self.bias);
        let mix = if self.hidden == 0 {
            None
        } else {
            Some(Conv::new(&pd, self.hidden, 1)?.with_kernel(1)?.with_bias(self.bias))
        };
        Ok((stencil, mix))
    }

    /// `padded[j] = z[idx[j]]`: each padded cell reads its clamped interior cell.
    fn pad_index(&self) -> Vec<usize> {
        let r = self.pad() as isize;
        let pd = self.padded_dims();
        let n: usize = pd.iter().product();
        let mut idx = Vec::with_capacity(n);
        for j in 0..n {
            // Unravel j over pd (row-major), clamp each coordinate into the grid, ravel over dims.
            let mut rem = j;
            let mut coords = [0usize; 3];
            for a in (0..pd.len()).rev() {
                coords[a] = rem % pd[a];
                rem /= pd[a];
            }
            let mut flat = 0;
            for (a, &d) in self.dims.iter().enumerate() {
                let c = (coords[a] as isize - r).clamp(0, d as isize - 1) as usize;
                flat = flat * d + c;
            }
            idx.push(flat);
        }
        idx
    }

    /// `interior[i]` = index in the padded grid of grid cell `i`.
    fn interior_index(&self) -> Vec<usize> {
        let r = self.pad();
        let pd = self.padded_dims();
        (0..self.cells())
            .map(|i| {
                let mut rem = i;
                let mut coords = [0usize; 3];
                for a in (0..self.dims.len()).rev() {
                    coords[a] = rem % self.dims[a];
                    rem /= self.dims[a];
                }
                let mut flat = 0;
                for (a, &p) in pd.iter().enumerate() {
                    flat = flat * p + coords[a] + r;
                }
                flat
            })
            .collect()
    }
}

impl Layer for StencilCorrector {
    fn kind(&self) -> &'static str {
        "StencilCorrector"
    }

    fn n_params(&self) -> usize {
        self.convs().map_or(0, |(s, m)| s.n_params() + m.map_or(0, |m| m.n_params()))
    }

    fn param_blocks(&self) -> Vec<ParamBlock> {
        let Ok((stencil, mix)) = self.convs() else {
            return Vec::new();
        };
        let mut blocks: Vec<ParamBlock> =
            stencil.param_blocks().into_iter().map(|b| b.nested("stencil", 0)).collect();
        if let Some(m) = mix {
            let off = stencil.n_params();
            blocks.extend(m.param_blocks().into_iter().map(|b| b.nested("mix", off)));
        }
        blocks
    }

    fn output_shape(&self, input: &[usize]) -> neurohybrid_nn::Result<Vec<usize>> {
        self.convs()?;
        let cells = self.cells();
        if input != [cells] {
            return Err(NnError::InputShape {
                layer: "StencilCorrector",
                expected: format!("[{cells}]"),
                got: input.to_vec(),
            });
        }
        Ok(vec![cells])
    }

    fn forward(&self, g: &mut Graph, x: Var, p: Var) -> neurohybrid_nn::Result<Var> {
        let shape = self.output_shape(g.shape(x)?)?;
        let (stencil, mix) = self.convs()?;
        let got: usize = g.shape(p)?.iter().product();
        if got != self.n_params() {
            return Err(NnError::LengthMismatch {
                what: "layer parameters",
                expected: self.n_params(),
                got,
            });
        }
        let pd = self.padded_dims();
        let pad: Arc<[usize]> = self.pad_index().into();
        // Channels z, z², …: each padded, stacked channel-major [degree, padded cells].
        let mut chans = Vec::with_capacity(self.degree);
        let mut power = x;
        for d in 1..=self.degree {
            if d > 1 {
                power = g.mul(power, x)?;
            }
            chans.push(g.gather(power, pad.clone())?);
        }
        let stacked = if chans.len() == 1 { chans[0] } else { g.concat(&chans)? };
        let mut full = vec![self.degree];
        full.extend(&pd);
        let input = g.reshape(stacked, &full)?;
        let mut h = stencil.forward_at(g, input, p, 0)?;
        if let Some(m) = mix {
            h = self.activation.record(g, h)?;
            h = m.forward_at(g, h, p, stencil.n_params())?;
        }
        let n_pad: usize = pd.iter().product();
        let flat = g.reshape(h, &[n_pad])?;
        let interior = g.gather(flat, self.interior_index().into())?;
        let y = if self.scale == 1.0 { interior } else { g.scale(interior, self.scale)? };
        Ok(g.reshape(y, &shape)?)
    }
}
