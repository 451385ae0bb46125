//! Forward + VJP of an MLP (2→50→50→2, tanh, batch 20, MSE loss): our compiled tape, replayed,
//! against dfdx's define-by-run tape, in the same run. Prints one JSON line
//! `{"bench":"mlp_vjp","ours_ns":…,"dfdx_ns":…,"ratio":…}` (medians, ratio = dfdx/ours).

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

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
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

    match (criterion_median_ns("mlp_vjp", "ours"), criterion_median_ns("mlp_vjp", "dfdx")) {
        (Some(ours), Some(theirs)) => report_json(
            "mlp_vjp",
            &[("ours_ns", ours), ("dfdx_ns", theirs), ("ratio", theirs / ours)],
        ),
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!("mlp_vjp: no criterion estimates found (not a measuring run)"),
    }
}
