//! Shared helpers: deterministic data, tapes around a layer, derivative checks.

use neurohybrid_autodiff::check::{check_jvp_vjp_dot, check_vjp};
use neurohybrid_autodiff::{Graph, Tape};
use neurohybrid_nn::{Init, Layer, initialize};

/// Deterministic values in `[-scale, scale)` (SplitMix64).
pub fn uniform(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut r = neurohybrid_nn::rng::SplitMix64::new(seed);
    (0..n).map(|_| r.symmetric(scale)).collect()
}

/// A tape `(x, p) ↦ layer(x; p)` for an input of shape `x_shape`.
pub fn layer_tape(layer: &dyn Layer, x_shape: &[usize]) -> Tape {
    let mut g = Graph::new();
    let x = g.input("x", x_shape).unwrap();
    let p = g.input("p", &[layer.n_params().max(1)]).unwrap();
    // A parameter-free layer ignores `p` (a one-element placeholder input).
    let y = layer.forward(&mut g, x, p).unwrap();
    g.compile(&[y]).unwrap()
}

/// Parameters for a check: Glorot weights plus non-zero biases (so bias paths are exercised).
pub fn test_params(layer: &dyn Layer, seed: u64) -> Vec<f64> {
    let mut p = initialize(layer, Init::GlorotUniform, seed);
    let noise = uniform(seed + 1000, p.len(), 0.3);
    for b in layer.param_blocks() {
        if b.kind == neurohybrid_nn::BlockKind::Bias {
            p[b.range()].copy_from_slice(&noise[b.range()]);
        }
    }
    if p.is_empty() { vec![0.0] } else { p }
}

/// Finite-difference check (1e-6 normwise relative) and dot-product test (1e-12) of a layer
/// at input `x` (shape `x_shape`) with parameters `p`.
pub fn check_layer(name: &str, layer: &dyn Layer, x_shape: &[usize], x: &[f64], p: &[f64]) {
    let tape = layer_tape(layer, x_shape);
    let n_out = tape.output_len(0);
    let w = uniform(77, n_out, 1.0);
    let c = check_vjp(&tape, &[x, p], &[&w]).unwrap();
    assert!(c.max_rel_err < 1e-6, "{name}: VJP vs finite differences: rel err {}", c.max_rel_err);
    assert!(c.vjp.iter().flatten().any(|v| v.abs() > 1e-6), "{name}: gradient is trivially zero");
    let vx = uniform(78, x.len(), 1.0);
    let vp = uniform(79, p.len(), 1.0);
    let d = check_jvp_vjp_dot(&tape, &[x, p], &[&vx, &vp], &[&w]).unwrap();
    assert!(
        d.rel_err < 1e-12,
        "{name}: <w, Jv> = {} vs <J'w, v> = {} (rel {})",
        d.w_jv,
        d.jtw_v,
        d.rel_err
    );
}

/// Forward values of a tape.
pub fn eval(tape: &Tape, inputs: &[&[f64]]) -> Vec<f64> {
    let mut ws = tape.workspace();
    tape.forward(&mut ws, inputs).unwrap();
    ws.output(0).to_vec()
}

/// VJP of a one-output tape with two inputs `(x, p)`.
pub fn vjp2(tape: &Tape, inputs: &[&[f64]], w: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut ws = tape.workspace();
    tape.forward(&mut ws, inputs).unwrap();
    let mut gx = vec![0.0; inputs[0].len()];
    let mut gp = vec![0.0; inputs[1].len()];
    tape.vjp(&mut ws, &[w], &mut [&mut gx, &mut gp]).unwrap();
    (gx, gp)
}

/// `‖a − b‖∞ / max(‖a‖∞, ‖b‖∞)`.
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    neurohybrid_autodiff::check::rel_err_inf(a, b)
}
