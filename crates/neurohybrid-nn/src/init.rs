//! Seeded, reproducible parameter initialization.
//!
//! Weights are scaled by their fans so activations and gradients keep their variance from layer
//! to layer: Glorot & Bengio (2010) balance forward and backward variance with
//! `Var(w) = 2 / (fan_in + fan_out)` (good for tanh/sigmoid); He et al. (2015) keep the forward
//! variance of ReLU networks with `Var(w) = 2 / fan_in`. Biases start at zero (both papers).
//! The random stream is [`SplitMix64`], fixed by this crate (see [`crate::rng`]).

use serde::{Deserialize, Serialize};

use crate::error::{Result, check_len};
use crate::layer::Layer;
use crate::params::BlockKind;
use crate::rng::SplitMix64;

/// A weight initialization scheme.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum Init {
    /// `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))` (Glorot & Bengio 2010, eq. 16).
    #[default]
    GlorotUniform,
    /// `N(0, 2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// `U(-a, a)` with `a = sqrt(6 / fan_in)` (He et al. 2015).
    HeUniform,
    /// `N(0, 2 / fan_in)` (He et al. 2015, eq. 10).
    HeNormal,
    /// All zeros (e.g. a residual network that must start as the identity correction).
    Zeros,
}

impl Init {
    /// One weight draw for a block with these fans.
    fn draw(self, rng: &mut SplitMix64, fan_in: usize, fan_out: usize) -> f64 {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        match self {
            Init::GlorotUniform => rng.symmetric((6.0 / (fi + fo)).sqrt()),
            Init::GlorotNormal => (2.0 / (fi + fo)).sqrt() * rng.normal(),
            Init::HeUniform => rng.symmetric((6.0 / fi).sqrt()),
            Init::HeNormal => (2.0 / fi).sqrt() * rng.normal(),
            Init::Zeros => 0.0,
        }
    }
}

/// Fills `params` (the layer's block, length `layer.n_params()`) by `init`, drawing the weight
/// blocks in order from one SplitMix64 stream seeded with `seed`; biases are zero.
///
/// The same `(layer, init, seed)` gives bit-identical parameters for a given crate version
/// (uniform schemes on every platform, normal ones on a given platform's libm).
pub fn initialize_into(layer: &dyn Layer, init: Init, seed: u64, params: &mut [f64]) -> Result<()> {
    check_len("parameters", layer.n_params(), params.len())?;
    let mut rng = SplitMix64::new(seed);
    params.iter_mut().for_each(|x| *x = 0.0);
    for block in layer.param_blocks() {
        if let BlockKind::Weight { fan_in, fan_out } = block.kind {
            for x in &mut params[block.range()] {
                *x = init.draw(&mut rng, fan_in, fan_out);
            }
        }
    }
    Ok(())
}

/// [`initialize_into`] into a fresh vector of length `layer.n_params()`.
pub fn initialize(layer: &dyn Layer, init: Init, seed: u64) -> Vec<f64> {
    let mut p = vec![0.0; layer.n_params()];
    initialize_into(layer, init, seed, &mut p).expect("length is n_params by construction");
    p
}
