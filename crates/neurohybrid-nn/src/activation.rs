//! Activation functions: recorded into a graph with the autodiff crate's built-in ops where it
//! has them, and as scalar functions for the fused kernels ([`crate::Pointwise`]).
//!
//! Exact GELU needs `erf`, which neither `std` nor the autodiff op set provides: it is recorded
//! as a small elementwise [`CustomOp`] with an `erf` series of our own.

use std::sync::Arc;

use neurohybrid_autodiff::{CustomOp, Graph, Var};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::layer::Layer;
use crate::params::ParamBlock;

/// An elementwise nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x` (no nonlinearity).
    Identity,
    /// `tanh x`.
    Tanh,
    /// `max(x, 0)`; the derivative at 0 is taken as 0 (PyTorch's convention).
    Relu,
    /// Exact GELU `x Φ(x) = x (1 + erf(x/√2)) / 2` (Hendrycks & Gimpel 2016).
    Gelu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// Swish / SiLU `x σ(x)` (Ramachandran et al. 2017).
    Swish,
    /// Gaussian radial basis `exp(-x²)`, as in the universal differential equations paper
    /// (Rackauckas et al. 2020).
    Rbf,
}

impl Activation {
    /// Records `act(x)` into `g`.
    pub fn record(self, g: &mut Graph, x: Var) -> Result<Var> {
        Ok(match self {
            Activation::Identity => x,
            Activation::Tanh => g.tanh(x)?,
            Activation::Relu => g.relu(x)?,
            Activation::Sigmoid => g.sigmoid(x)?,
            Activation::Softplus => g.softplus(x)?,
            Activation::Swish => {
                let s = g.sigmoid(x)?;
                g.mul(x, s)?
            }
            Activation::Rbf => {
                let sq = g.square(x)?;
                let n = g.neg(sq)?;
                g.exp(n)?
            }
            Activation::Gelu => g.custom(Arc::new(Elementwise(Activation::Gelu)), &[x])?,
        })
    }

    /// The activation's value at `z`.
    #[inline]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Identity => z,
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(0.0),
            Activation::Gelu => 0.5 * z * (1.0 + erf(z * std::f64::consts::FRAC_1_SQRT_2)),
            Activation::Softplus => softplus(z),
            Activation::Sigmoid => sigmoid(z),
            Activation::Swish => z * sigmoid(z),
            Activation::Rbf => (-z * z).exp(),
        }
    }

    /// The derivative at `z`.
    #[inline]
    pub fn derivative(self, z: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Gelu => {
                let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                0.5 * (1.0 + erf(z * std::f64::consts::FRAC_1_SQRT_2)) + z * phi
            }
            Activation::Softplus => sigmoid(z),
            Activation::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
            Activation::Swish => {
                let s = sigmoid(z);
                s * (1.0 + z * (1.0 - s))
            }
            Activation::Rbf => -2.0 * z * (-z * z).exp(),
        }
    }

    /// Applies the activation in place to a slice (the fused kernels' inner loop).
    ///
    /// For `Tanh` this uses [`tanh_fast`], branch-free so the loop vectorizes; `tanh` is the
    /// dominant cost of a pointwise network, and libm's scalar call is ~3× slower.
    #[inline]
    pub fn apply_slice(self, z: &mut [f64]) {
        self.apply_slice_with::<false>(z)
    }

    /// [`apply_slice`](Self::apply_slice) with fused multiply-adds when `FMA` (for kernels
    /// compiled with the `fma` target feature).
    #[inline(always)]
    pub(crate) fn apply_slice_with<const FMA: bool>(self, z: &mut [f64]) {
        match self {
            Activation::Tanh => z.iter_mut().for_each(|v| *v = tanh_kernel::<FMA>(*v)),
            Activation::Identity => {}
            act => z.iter_mut().for_each(|v| *v = act.value(*v)),
        }
    }

    /// Whether the derivative is a function of the *output* `h = act(z)` alone
    /// ([`derivative_from_output`](Self::derivative_from_output)); fused kernels then store `h`
    /// instead of `z` and avoid re-evaluating an expensive `tanh` in the backward sweep.
    #[inline]
    pub fn derivative_from_output_only(self) -> bool {
        matches!(
            self,
            Activation::Identity | Activation::Tanh | Activation::Relu | Activation::Sigmoid
        )
    }

    /// The derivative expressed through the output `h`; meaningful only where
    /// [`derivative_from_output_only`](Self::derivative_from_output_only) holds.
    #[inline]
    pub fn derivative_from_output(self, h: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - h * h,
            Activation::Relu => {
                if h > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => h * (1.0 - h),
            _ => 1.0,
        }
    }
}

/// An activation used as a parameter-free layer (e.g. inside a [`crate::Sequential`]).
impl Layer for Activation {
    fn kind(&self) -> &'static str {
        "Activation"
    }
    fn n_params(&self) -> usize {
        0
    }
    fn param_blocks(&self) -> Vec<ParamBlock> {
        Vec::new()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn forward(&self, g: &mut Graph, x: Var, _p: Var) -> Result<Var> {
        self.record(g, x)
    }
}

/// `tanh x` to ~2 ulp relative for |x| < 0.1 and ≤ 4e-16 absolute elsewhere, branch-free.
///
/// |x| < 0.1: the odd Taylor series to x¹⁵ (next term < 1e-20). Otherwise
/// `tanh|x| = (1 − e)/(1 + e)` with `e = exp(−2|x|)` from a Cody–Waite range reduction
/// (`y = k ln 2 + r`, |r| ≤ ln2/2, ln 2 split in two parts) and a degree-13 Taylor polynomial
/// for `exp r` (truncation < 5e-18); `2ᵏ` is assembled from the bits of the rounded `k`
/// (the 1.5·2⁵² trick), so there is no float-to-int conversion to stop vectorization.
#[inline]
pub fn tanh_fast(x: f64) -> f64 {
    tanh_kernel::<false>(x)
}

#[inline(always)]
fn madd<const F: bool>(a: f64, b: f64, c: f64) -> f64 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn tanh_kernel<const F: bool>(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // fdlibm's ln2_hi
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // ln 2 − LN2_HI
    const INV_LN2: f64 = std::f64::consts::LOG2_E;
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    let a = x.abs();
    // Series branch: tanh a = a − a³/3 + 2a⁵/15 − 17a⁷/315 + …
    let a2 = a * a;
    let series = a
        * (1.0
            + a2 * (-1.0 / 3.0
                + a2 * (2.0 / 15.0
                    + a2 * (-17.0 / 315.0
                        + a2 * (62.0 / 2835.0
                            + a2 * (-1382.0 / 155_925.0
                                + a2 * (21844.0 / 6_081_075.0
                                    + a2 * (-929_569.0 / 638_512_875.0))))))));
    // Exp branch; beyond |x| = 20, tanh rounds to ±1 and the clamp keeps 2ᵏ normal.
    let y = -2.0 * if a > 20.0 { 20.0 } else { a }; // NaN propagates
    let t = y * INV_LN2 + SHIFT;
    let k = t - SHIFT;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = madd::<F>(p, r, c);
    }
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    let e = p * scale;
    let big = (1.0 - e) / (1.0 + e);
    let v = if a < 0.1 { series } else { big };
    v.copysign(x)
}

fn sigmoid(z: f64) -> f64 {
    // Two branches so neither exp overflows (the same value either way).
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softplus(z: f64) -> f64 {
    // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{-|z|}): no overflow, full precision for z ≪ 0.
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// The error function, to a few ulp (≤ 1e-15 absolute).
///
/// Series `erf x = 2/√π · e^{-x²} Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3···(2n+1))` (Abramowitz & Stegun
/// 7.1.6): all terms share one sign, so there is no cancellation; beyond |x| = 6,
/// `erfc x < 2.2e-17` and `erf x` rounds to ±1.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a >= 6.0 {
        return x.signum();
    }
    let x2 = a * a;
    let mut term = a;
    let mut sum = a;
    let mut n = 0.0;
    while n < 400.0 {
        term *= 2.0 * x2 / (2.0 * n + 3.0);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
        n += 1.0;
    }
    let r = std::f64::consts::FRAC_2_SQRT_PI * (-x2).exp() * sum;
    r.min(1.0).copysign(x)
}

/// An activation as a stand-alone elementwise custom op (output shape = input shape).
pub(crate) struct Elementwise(pub(crate) Activation);

impl CustomOp for Elementwise {
    fn name(&self) -> &str {
        "nn.activation"
    }
    fn output_shape(&self, input_shapes: &[&[usize]]) -> neurohybrid_autodiff::Result<Vec<usize>> {
        Ok(input_shapes[0].to_vec())
    }
    fn forward(&self, inputs: &[&[f64]], out: &mut [f64]) {
        for (o, &z) in out.iter_mut().zip(inputs[0]) {
            *o = self.0.value(z);
        }
    }
    fn vjp(&self, inputs: &[&[f64]], _out: &[f64], w: &[f64], in_cot: &mut [&mut [f64]]) {
        if in_cot[0].is_empty() {
            return;
        }
        for ((c, &z), &wi) in in_cot[0].iter_mut().zip(inputs[0]).zip(w) {
            *c += wi * self.0.derivative(z);
        }
    }
    fn jvp(&self, inputs: &[&[f64]], _out: &[f64], tangents: &[&[f64]], out_tan: &mut [f64]) {
        if tangents[0].is_empty() {
            out_tan.iter_mut().for_each(|t| *t = 0.0);
            return;
        }
        for ((t, &z), &v) in out_tan.iter_mut().zip(inputs[0]).zip(tangents[0]) {
            *t = self.0.derivative(z) * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_reference_values() {
        // Abramowitz & Stegun table 7.1 / high-precision references.
        let cases = [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (-1.5, -0.9661051464753108),
            (0.01, 0.011283415555849618),
            (3.5, 0.9999992569016276),
            (5.5, 0.9999999999999927),
        ];
        for (x, e) in cases {
            assert!((erf(x) - e).abs() < 1e-15, "erf({x}) = {} vs {e}", erf(x));
        }
        assert_eq!(erf(7.0), 1.0);
    }

    #[test]
    fn fast_tanh_matches_libm() {
        let mut worst_abs: f64 = 0.0;
        let mut worst_rel_small: f64 = 0.0;
        for i in -200_000..=200_000 {
            let x = i as f64 * 1.37e-4 + 1e-9;
            let (a, b) = (tanh_fast(x), x.tanh());
            worst_abs = worst_abs.max((a - b).abs());
            if x.abs() < 0.1 {
                worst_rel_small = worst_rel_small.max(((a - b) / b).abs());
            }
        }
        assert!(worst_abs <= 4e-16, "{worst_abs}");
        assert!(worst_rel_small <= 4e-16, "{worst_rel_small}");
        for x in [0.0, -0.0, 1e-300, 25.0, -800.0, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(tanh_fast(x), x.tanh(), "{x}");
        }
        assert!(tanh_fast(f64::NAN).is_nan());
    }

    #[test]
    fn derivatives_match_central_differences() {
        let all = [
            Activation::Identity,
            Activation::Tanh,
            Activation::Relu,
            Activation::Gelu,
            Activation::Softplus,
            Activation::Sigmoid,
            Activation::Swish,
            Activation::Rbf,
        ];
        for act in all {
            for &z in &[-2.3, -0.7, 0.31, 1.9] {
                let h = 1e-6;
                let fd = (act.value(z + h) - act.value(z - h)) / (2.0 * h);
                let d = act.derivative(z);
                assert!((fd - d).abs() < 1e-8 * (1.0 + d.abs()), "{act:?} at {z}: {fd} vs {d}");
                if act.derivative_from_output_only() {
                    assert!((act.derivative_from_output(act.value(z)) - d).abs() < 1e-14);
                }
            }
        }
    }
}
