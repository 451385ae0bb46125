//! Forward + VJP of an MLP with tanh and an MSE loss: our compiled tape, replayed, against
//! dfdx's define-by-run tape, in the same run, at two sizes:
//!
//! - `mlp_vjp`: 2→50→50→2, batch 20 (the benchmark; arithmetic-bound at this size);
//! - `mlp_vjp_small`: 2→16→2, batch 1 — a Neural-ODE right-hand side, called once per stage,
//!   where per-call overhead dominates and the compiled tape's design shows.
//!
//! Prints one JSON line per case, `{"bench":…,"ours_ns":…,"dfdx_ns":…,"ratio":…}` (medians,
//! ratio = dfdx/ours).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use dfdx::prelude::*;
use neurohybrid_autodiff::Graph;
use neurohybrid_benches::{criterion_median_ns, report_json};

const B: usize = 20;
const H: usize = 50;

/// Deterministic values in [-scale, scale) (SplitMix64).
fn uniform(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            scale * ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    mlp_vjp(&mut c);
    mlp_vjp_small(&mut c);
}

/// `ours` and `dfdx` medians of group `name` as the JSON line.
fn report(name: &str) {
    match (criterion_median_ns(name, "ours"), criterion_median_ns(name, "dfdx")) {
        (Some(ours), Some(theirs)) => {
            report_json(name, &[("ours_ns", ours), ("dfdx_ns", theirs), ("ratio", theirs / ours)])
        }
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!(
            "{name}: no fresh criterion estimates for every function (a test or filtered run)"
        ),
    }
}

fn mlp_vjp(c: &mut Criterion) {
    let x = uniform(10, B * 2, 1.5);
    let y = uniform(11, B * 2, 1.0);
    let p = [
        uniform(1, 2 * H, 0.7),
        uniform(2, H, 0.5),
        uniform(3, H * H, 0.14),
        uniform(4, H, 0.5),
        uniform(5, H * 2, 0.14),
        uniform(6, 2, 0.5),
    ];

    // Ours: build and compile once, then replay.
    let mut g = Graph::new();
    let xv = g.input("x", &[B, 2]).unwrap();
    let yv = g.input("y", &[B, 2]).unwrap();
    let shapes: [&[usize]; 6] = [&[2, H], &[H], &[H, H], &[H], &[H, 2], &[2]];
    let pv: Vec<_> =
        shapes.iter().enumerate().map(|(i, s)| g.input(&format!("p{i}"), s).unwrap()).collect();
    let mut h = xv;
    for l in 0..3 {
        let z = g.matmul(h, pv[2 * l]).unwrap();
        let z = g.add(z, pv[2 * l + 1]).unwrap();
        h = if l < 2 { g.tanh(z).unwrap() } else { z };
    }
    let d = g.sub(h, yv).unwrap();
    let d2 = g.square(d).unwrap();
    let loss = g.mean(d2).unwrap();
    let tape = g.compile(&[loss]).unwrap();
    let mut ws = tape.workspace();
    let mut ins: Vec<&[f64]> = vec![&x, &y];
    ins.extend(p.iter().map(|v| v.as_slice()));
    let mut grads: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();

    // dfdx: tensors made once; each iteration traces, runs forward and backward.
    let dev = Cpu::default();
    let xt: Tensor<Rank2<B, 2>, f64, _> = dev.tensor_from_vec(x.clone(), (Const, Const));
    let yt: Tensor<Rank2<B, 2>, f64, _> = dev.tensor_from_vec(y.clone(), (Const, Const));
    let w1: Tensor<Rank2<2, H>, f64, _> = dev.tensor_from_vec(p[0].clone(), (Const, Const));
    let b1: Tensor<Rank1<H>, f64, _> = dev.tensor_from_vec(p[1].clone(), (Const,));
    let w2: Tensor<Rank2<H, H>, f64, _> = dev.tensor_from_vec(p[2].clone(), (Const, Const));
    let b2: Tensor<Rank1<H>, f64, _> = dev.tensor_from_vec(p[3].clone(), (Const,));
    let w3: Tensor<Rank2<H, 2>, f64, _> = dev.tensor_from_vec(p[4].clone(), (Const, Const));
    let b3: Tensor<Rank1<2>, f64, _> = dev.tensor_from_vec(p[5].clone(), (Const,));
    let dfdx_vjp = || {
        let h1 =
            (xt.leaky_trace().matmul(w1.clone()) + b1.clone().broadcast::<Rank2<B, H>, _>()).tanh();
        let h2 = (h1.matmul(w2.clone()) + b2.clone().broadcast::<Rank2<B, H>, _>()).tanh();
        let out = h2.matmul(w3.clone()) + b3.clone().broadcast::<Rank2<B, 2>, _>();
        let loss = (out - yt.clone()).square().mean();
        loss.backward()
    };

    // Same numbers from both before timing anything.
    tape.forward(&mut ws, &ins).unwrap();
    {
        let mut slots: Vec<&mut [f64]> = vec![&mut [], &mut []];
        slots.extend(grads.iter_mut().map(|v| v.as_mut_slice()));
        tape.vjp(&mut ws, &[&[1.0]], &mut slots).unwrap();
    }
    let theirs = dfdx_vjp().get(&w2).as_vec();
    let err = grads[2].iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-12, "gradients disagree: {err}");

    let mut group = c.benchmark_group("mlp_vjp");
    group.bench_function("ours", |bch| {
        bch.iter(|| {
            tape.forward(&mut ws, black_box(&ins)).unwrap();
            let [g0, g1, g2, g3, g4, g5] = &mut grads[..] else { unreachable!() };
            tape.vjp(&mut ws, &[&[1.0]], &mut [&mut [], &mut [], g0, g1, g2, g3, g4, g5]).unwrap();
            black_box(&grads);
        })
    });
    group.bench_function("dfdx", |bch| bch.iter(|| black_box(dfdx_vjp())));
    group.finish();
    report("mlp_vjp");
}

/// Widths of the small case: 2 → SH → 2, batch 1.
const SH: usize = 16;

fn mlp_vjp_small(c: &mut Criterion) {
    let x = uniform(20, 2, 1.5);
    let y = uniform(21, 2, 1.0);
    let p = [
        uniform(22, 2 * SH, 0.7),
        uniform(23, SH, 0.5),
        uniform(24, SH * 2, 0.25),
        uniform(25, 2, 0.5),
    ];

    let mut g = Graph::new();
    let xv = g.input("x", &[1, 2]).unwrap();
    let yv = g.input("y", &[1, 2]).unwrap();
    let shapes: [&[usize]; 4] = [&[2, SH], &[SH], &[SH, 2], &[2]];
    let pv: Vec<_> =
        shapes.iter().enumerate().map(|(i, s)| g.input(&format!("p{i}"), s).unwrap()).collect();
    let z = g.matmul(xv, pv[0]).unwrap();
    let z = g.add(z, pv[1]).unwrap();
    let h = g.tanh(z).unwrap();
    let o = g.matmul(h, pv[2]).unwrap();
    let o = g.add(o, pv[3]).unwrap();
    let d = g.sub(o, yv).unwrap();
    let d2 = g.square(d).unwrap();
    let loss = g.mean(d2).unwrap();
    let tape = g.compile(&[loss]).unwrap();
    let mut ws = tape.workspace();
    let mut ins: Vec<&[f64]> = vec![&x, &y];
    ins.extend(p.iter().map(|v| v.as_slice()));
    let mut grads: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();

    let dev = Cpu::default();
    let xt: Tensor<Rank2<1, 2>, f64, _> = dev.tensor_from_vec(x.clone(), (Const, Const));
    let yt: Tensor<Rank2<1, 2>, f64, _> = dev.tensor_from_vec(y.clone(), (Const, Const));
    let w1: Tensor<Rank2<2, SH>, f64, _> = dev.tensor_from_vec(p[0].clone(), (Const, Const));
    let b1: Tensor<Rank1<SH>, f64, _> = dev.tensor_from_vec(p[1].clone(), (Const,));
    let w2: Tensor<Rank2<SH, 2>, f64, _> = dev.tensor_from_vec(p[2].clone(), (Const, Const));
    let b2: Tensor<Rank1<2>, f64, _> = dev.tensor_from_vec(p[3].clone(), (Const,));
    let dfdx_vjp = || {
        let h = (xt.leaky_trace().matmul(w1.clone()) + b1.clone().broadcast::<Rank2<1, SH>, _>())
            .tanh();
        let out = h.matmul(w2.clone()) + b2.clone().broadcast::<Rank2<1, 2>, _>();
        let loss = (out - yt.clone()).square().mean();
        loss.backward()
    };

    tape.forward(&mut ws, &ins).unwrap();
    {
        let mut slots: Vec<&mut [f64]> = vec![&mut [], &mut []];
        slots.extend(grads.iter_mut().map(|v| v.as_mut_slice()));
        tape.vjp(&mut ws, &[&[1.0]], &mut slots).unwrap();
    }
    let theirs = dfdx_vjp();
    for (ours, t) in grads.iter().zip([theirs.get(&w1).as_vec(), theirs.get(&b1).as_vec()]) {
        let err = ours.iter().zip(&t).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "gradients disagree: {err}");
    }

    let mut group = c.benchmark_group("mlp_vjp_small");
    group.bench_function("ours", |bch| {
        bch.iter(|| {
            tape.forward(&mut ws, black_box(&ins)).unwrap();
            let [g0, g1, g2, g3] = &mut grads[..] else { unreachable!() };
            tape.vjp(&mut ws, &[&[1.0]], &mut [&mut [], &mut [], g0, g1, g2, g3]).unwrap();
            black_box(&grads);
        })
    });
    group.bench_function("dfdx", |bch| bch.iter(|| black_box(dfdx_vjp())));
    group.finish();
    report("mlp_vjp_small");
}
