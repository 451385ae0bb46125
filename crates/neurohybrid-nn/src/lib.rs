//! Neural layers as autodiff-graph builders over flat parameter vectors.
//!
//! A layer here does not own its weights. It knows how many parameters it needs
//! ([`Layer::n_params`]), what their named sub-blocks are ([`Layer::param_blocks`]:
//! `"layer0.weight"`, `"layer0.bias"`, …) and how to record its forward pass into a
//! [`neurohybrid_autodiff::Graph`] ([`Layer::forward`]). The parameters are one contiguous
//! block of the model's shared parameter vector, so a network and a mechanistic operator
//! recorded into the same graph compile into **one tape with one VJP and one JVP** — the
//! property every hybrid model and adjoint method above this crate relies on.
//!
//! # Map
//!
//! - Layers: [`Dense`], [`Activation`] (tanh, relu, gelu, softplus, sigmoid, swish, Gaussian
//!   RBF), [`Mlp`] (from a list of widths), [`Sequential`], [`Pointwise`] (one network applied
//!   with shared weights to every voxel or graph node, as a fused parallel kernel), [`Conv`]
//!   (masked 2D/3D stencils for solver-in-the-loop correctors). [`Architecture`] names them all
//!   and is what checkpoints store.
//! - Initialization: [`initialize`] with an [`Init`] scheme (Glorot, He, zeros) and a seed;
//!   the stream is SplitMix64 ([`rng`]), fixed by this crate.
//! - Optimizers ([`optim`]): [`Sgd`](optim::Sgd), [`Adam`](optim::Adam),
//!   [`AdamW`](optim::AdamW), [`RmsProp`](optim::RmsProp) behind [`Optimizer`](optim::Optimizer),
//!   and [`Lbfgs`](optim::Lbfgs) with a strong-Wolfe line search; schedules and gradient
//!   clipping; freezing of named blocks.
//! - Checkpoints: [`Checkpoint`] to JSON or a compact binary format, reloading bit-identically.
//! - Feature `dfdx`: `dfdx_adaptor` wraps a dfdx module as a VJP-capable component.
//!
//! # Example
//!
//! A 2→16→1 tanh network on a batch, recorded next to a parameter input, compiled, replayed,
//! differentiated and trained one Adam step:
//!
//! ```
//! use neurohybrid_autodiff::Graph;
//! use neurohybrid_nn::optim::{Adam, Optimizer};
//! use neurohybrid_nn::{initialize, Activation, Init, Layer, Mlp};
//!
//! # fn main() -> neurohybrid_nn::Result<()> {
//! let net = Mlp::new(&[2, 16, 1], Activation::Tanh)?;
//! assert_eq!(net.n_params(), 2 * 16 + 16 + 16 + 1);
//! assert_eq!(net.param_blocks()[1].name, "layer0.bias");
//!
//! let mut g = Graph::new();
//! let x = g.input("x", &[4, 2])?;
//! let p = g.input("p", &[net.n_params()])?;
//! let y = net.forward(&mut g, x, p)?; // [4, 1]
//! let loss = g.sum(y)?;
//! let tape = g.compile(&[loss])?;
//! let mut ws = tape.workspace();
//!
//! let mut params = initialize(&net, Init::GlorotUniform, 42);
//! let xs = [0.1, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7, 0.8];
//! tape.forward(&mut ws, &[&xs, &params])?;
//! let before = ws.output(0)[0];
//!
//! let mut grad = vec![0.0; net.n_params()];
//! tape.vjp(&mut ws, &[&[1.0]], &mut [&mut [], &mut grad])?; // no gradient for x
//! let adam = Adam::new(1e-2);
//! let mut state = adam.init(params.len())?;
//! adam.step(&mut state, &mut params, &grad)?; // descend on the sum
//!
//! tape.forward(&mut ws, &[&xs, &params])?;
//! assert!(ws.output(0)[0] < before);
//! # Ok(())
//! # }
//! ```
//!
//! # Layouts
//!
//! Dense weights are `[inputs, outputs]` row-major (`y = x W + b`, no transpose on the tape);
//! PyTorch and dfdx store the transpose. Convolution kernels are `[out, in, k, k(, k)]` like
//! both of them. Everything is `f64`.
#![warn(missing_docs)]

mod activation;
mod checkpoint;
mod conv;
mod dense;
mod error;
mod fused;
mod init;
mod layer;
mod mlp;
pub mod optim;
mod parallel;
mod params;
mod pointwise;
pub mod rng;
mod sequential;

#[cfg(feature = "dfdx")]
pub mod dfdx_adaptor;

pub use activation::{Activation, erf, tanh_fast};
pub use checkpoint::{Checkpoint, FORMAT_VERSION, Format, MAGIC};
pub use conv::Conv;
pub use dense::Dense;
pub use error::{NnError, Result};
pub use init::{Init, initialize, initialize_into};
pub use layer::{Architecture, Layer};
pub use mlp::Mlp;
pub use params::{BlockKind, ParamBlock, ranges_matching};
pub use pointwise::{Pointwise, PointwiseMode};
pub use sequential::Sequential;
