//! Neural layers, forward + VJP, ours against dfdx in the same run. Prints JSON lines:
//! - `{"bench":"pointwise_mlp_1e6","ours_ns":…,"dfdx_ns":…,"ratio":…,"graph_ns":…,"stored_ns":…}`: a
//!   `Pointwise` MLP 1→16→16→1 (tanh) over 10⁶ voxels, our fused kernel vs dfdx's batched
//!   `Linear` stack (ratio = dfdx/ours); `graph_ns` is the same network recorded op by op as
//!   batched matmuls on our tape (the measurement behind the fused kernel, ADR 0005), and
//!   `stored_ns` the fused kernel saving its hidden activations instead of recomputing them
//!   (`PointwiseMode::FusedStored`, the recompute-vs-store measurement).
//! - `{"bench":"mlp_2_50_2_b20","ours_ns":…,"dfdx_ns":…,"ratio":…}`: an `Mlp` 2→50→2 (tanh)
//!   at batch 20.
//!
//! Medians; short measurement times so the whole file runs in about a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use dfdx::prelude::*;
use neurohybrid_autodiff::{Graph, Tape};
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_nn::{Activation, Init, Layer, Mlp, Pointwise, PointwiseMode, initialize};

/// Deterministic values in [-scale, scale).
fn uniform(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut r = neurohybrid_nn::rng::SplitMix64::new(seed);
    (0..n).map(|_| r.symmetric(scale)).collect()
}

/// `(x, p) ↦ layer(x; p)` compiled.
fn tape_of(layer: &dyn Layer, x_shape: &[usize]) -> Tape {
    let mut g = Graph::new();
    let x = g.input("x", x_shape).unwrap();
    let p = g.input("p", &[layer.n_params()]).unwrap();
    let y = layer.forward(&mut g, x, p).unwrap();
    g.compile(&[y]).unwrap()
}

/// Our `[in, out]` weight block as dfdx's `[out, in]`.
fn transpose(w: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| w[i * cols + j])).collect()
}

/// Our dense weights/biases, in `Mlp` block order, as `(weight [out, in], bias)` for dfdx.
fn dfdx_blocks(net: &Mlp, p: &[f64]) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut at = 0;
    net.layers()
        .map(|d| {
            let w = transpose(&p[at..at + d.inputs * d.outputs], d.inputs, d.outputs);
            at += d.inputs * d.outputs;
            let b = p[at..at + d.outputs].to_vec();
            at += d.outputs;
            (w, b)
        })
        .collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    neurohybrid_autodiff::check::rel_err_inf(a, b)
}

fn report(group: &str, ids: &[&str]) {
    let medians: Option<Vec<f64>> = ids.iter().map(|id| criterion_median_ns(group, id)).collect();
    match medians.as_deref() {
        Some([ours, dfdx, rest @ ..]) => {
            let mut fields = vec![("ours_ns", *ours), ("dfdx_ns", *dfdx), ("ratio", dfdx / ours)];
            for (name, v) in ["graph_ns", "stored_ns"].into_iter().zip(rest) {
                fields.push((name, *v));
            }
            report_json(group, &fields);
        }
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!(
            "{group}: no fresh criterion estimates for every function (a test or filtered run)"
        ),
    }
}

fn pointwise_1e6(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let net = Mlp::new(&[1, 16, 16, 1], Activation::Tanh).unwrap();
    let p = initialize(&net, Init::GlorotUniform, 1);
    let x = uniform(2, N, 2.0);
    let w = uniform(3, N, 1.0);
    let fused = tape_of(&Pointwise::new(net.clone()), &[N]);
    let mut ws = fused.workspace();
    let (mut gx, mut gp) = (vec![0.0; N], vec![0.0; p.len()]);

    let dev = Cpu::default();
    let mut m =
        dev.build_module::<(Linear<1, 16>, Tanh, Linear<16, 16>, Tanh, Linear<16, 1>), f64>();
    let blocks = dfdx_blocks(&net, &p);
    m.0.weight.copy_from(&blocks[0].0);
    m.0.bias.copy_from(&blocks[0].1);
    m.2.weight.copy_from(&blocks[1].0);
    m.2.bias.copy_from(&blocks[1].1);
    m.4.weight.copy_from(&blocks[2].0);
    m.4.bias.copy_from(&blocks[2].1);
    let wt: Tensor<(usize, Const<1>), f64, _> = dev.tensor_from_vec(w.clone(), (N, Const));
    // Each dfdx iteration includes making the input tensor from the voxel field, as ours
    // reads it from a slice.
    let dfdx_vjp = || {
        let xt: Tensor<(usize, Const<1>), f64, _> = dev.tensor_from_vec(x.clone(), (N, Const));
        let y = m.forward(xt.leaky_trace());
        let grads = (y * wt.clone()).sum().backward();
        (grads.get(&xt).as_vec(), grads.get(&m.2.weight).as_vec())
    };

    // Same gradients before timing anything.
    fused.forward(&mut ws, &[&x, &p]).unwrap();
    fused.vjp(&mut ws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
    let (dx, dw1) = dfdx_vjp();
    let ours_w1 = transpose(&gp[32..32 + 256], 16, 16);
    assert!(rel(&gx, &dx) < 1e-12 && rel(&ours_w1, &dw1) < 1e-10, "gradients disagree");

    let mut group = c.benchmark_group("pointwise_mlp_1e6");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3));
    group.bench_function("ours", |b| {
        b.iter(|| {
            fused.forward(&mut ws, black_box(&[&x, &p])).unwrap();
            fused.vjp(&mut ws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
            black_box(&gp);
        })
    });
    drop(ws);
    group.bench_function("dfdx", |b| b.iter(|| black_box(dfdx_vjp())));
    let stored = tape_of(&Pointwise::new(net.clone()).with_mode(PointwiseMode::FusedStored), &[N]);
    let mut sws = stored.workspace();
    group.bench_function("stored", |b| {
        b.iter(|| {
            stored.forward(&mut sws, black_box(&[&x, &p])).unwrap();
            stored.vjp(&mut sws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
            black_box(&gp);
        })
    });
    drop(sws);
    let graph = tape_of(&Pointwise::new(net.clone()).with_mode(PointwiseMode::Graph), &[N]);
    let mut gws = graph.workspace();
    group.bench_function("graph", |b| {
        b.iter(|| {
            graph.forward(&mut gws, black_box(&[&x, &p])).unwrap();
            graph.vjp(&mut gws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
            black_box(&gp);
        })
    });
    group.finish();
    report("pointwise_mlp_1e6", &["ours", "dfdx", "graph", "stored"]);
}

fn mlp_b20(c: &mut Criterion) {
    const B: usize = 20;
    let net = Mlp::new(&[2, 50, 2], Activation::Tanh).unwrap();
    let p = initialize(&net, Init::GlorotUniform, 4);
    let x = uniform(5, B * 2, 1.5);
    let w = uniform(6, B * 2, 1.0);
    let tape = tape_of(&net, &[B, 2]);
    let mut ws = tape.workspace();
    let (mut gx, mut gp) = (vec![0.0; B * 2], vec![0.0; p.len()]);

    let dev = Cpu::default();
    let mut m = dev.build_module::<(Linear<2, 50>, Tanh, Linear<50, 2>), f64>();
    let blocks = dfdx_blocks(&net, &p);
    m.0.weight.copy_from(&blocks[0].0);
    m.0.bias.copy_from(&blocks[0].1);
    m.2.weight.copy_from(&blocks[1].0);
    m.2.bias.copy_from(&blocks[1].1);
    let xt: Tensor<(usize, Const<2>), f64, _> = dev.tensor_from_vec(x.clone(), (B, Const));
    let wt: Tensor<(usize, Const<2>), f64, _> = dev.tensor_from_vec(w.clone(), (B, Const));
    let dfdx_vjp = || (m.forward(xt.leaky_trace()) * wt.clone()).sum().backward();

    tape.forward(&mut ws, &[&x, &p]).unwrap();
    tape.vjp(&mut ws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
    assert!(rel(&gx, &dfdx_vjp().get(&xt).as_vec()) < 1e-12, "gradients disagree");

    let mut group = c.benchmark_group("mlp_2_50_2_b20");
    group.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    group.bench_function("ours", |b| {
        b.iter(|| {
            tape.forward(&mut ws, black_box(&[&x, &p])).unwrap();
            tape.vjp(&mut ws, &[&w], &mut [&mut gx, &mut gp]).unwrap();
            black_box(&gp);
        })
    });
    group.bench_function("dfdx", |b| b.iter(|| black_box(dfdx_vjp())));
    group.finish();
    report("mlp_2_50_2_b20", &["ours", "dfdx"]);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    pointwise_1e6(&mut c);
    mlp_b20(&mut c);
}
