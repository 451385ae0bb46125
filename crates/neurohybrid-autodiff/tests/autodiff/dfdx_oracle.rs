//! dfdx 0.13 as an independent oracle: the gradient of an MLP (2→50→50→2, tanh, batch 20, MSE
//! loss) from our tape equals dfdx's to 1e-12 (normwise relative, every weight and bias).

use dfdx::prelude::*;
use neurohybrid_autodiff::Graph;
use neurohybrid_autodiff::check::rel_err_inf;

const B: usize = 20;
const H: usize = 50;

/// Deterministic uniform numbers in [-1, 1) (SplitMix64), so both libraries see the same data.
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

/// Parameters in the order W1 [2,50], b1, W2 [50,50], b2, W3 [50,2], b3 (row-major, `x·W`).
fn params() -> Vec<Vec<f64>> {
    vec![
        uniform(1, 2 * H, 1.0 / 2f64.sqrt()),
        uniform(2, H, 0.5),
        uniform(3, H * H, 1.0 / (H as f64).sqrt()),
        uniform(4, H, 0.5),
        uniform(5, H * 2, 1.0 / (H as f64).sqrt()),
        uniform(6, 2, 0.5),
    ]
}

fn ours(x: &[f64], y: &[f64], p: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
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
    let mut ins: Vec<&[f64]> = vec![x, y];
    ins.extend(p.iter().map(|v| v.as_slice()));
    tape.forward(&mut ws, &ins).unwrap();
    let l = ws.output(0)[0];
    let mut grads: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut slots: Vec<&mut [f64]> = vec![&mut [], &mut []];
    slots.extend(grads.iter_mut().map(|v| v.as_mut_slice()));
    tape.vjp(&mut ws, &[&[1.0]], &mut slots).unwrap();
    (l, grads)
}

fn theirs(x: &[f64], y: &[f64], p: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
    let dev = Cpu::default();
    let xt: Tensor<Rank2<B, 2>, f64, _> = dev.tensor_from_vec(x.to_vec(), (Const, Const));
    let yt: Tensor<Rank2<B, 2>, f64, _> = dev.tensor_from_vec(y.to_vec(), (Const, Const));
    let w1: Tensor<Rank2<2, H>, f64, _> = dev.tensor_from_vec(p[0].clone(), (Const, Const));
    let b1: Tensor<Rank1<H>, f64, _> = dev.tensor_from_vec(p[1].clone(), (Const,));
    let w2: Tensor<Rank2<H, H>, f64, _> = dev.tensor_from_vec(p[2].clone(), (Const, Const));
    let b2: Tensor<Rank1<H>, f64, _> = dev.tensor_from_vec(p[3].clone(), (Const,));
    let w3: Tensor<Rank2<H, 2>, f64, _> = dev.tensor_from_vec(p[4].clone(), (Const, Const));
    let b3: Tensor<Rank1<2>, f64, _> = dev.tensor_from_vec(p[5].clone(), (Const,));
    // A leaky tape on the input records every op; its gradients cover all operands.
    let h1 =
        (xt.leaky_trace().matmul(w1.clone()) + b1.clone().broadcast::<Rank2<B, H>, _>()).tanh();
    let h2 = (h1.matmul(w2.clone()) + b2.clone().broadcast::<Rank2<B, H>, _>()).tanh();
    let out = h2.matmul(w3.clone()) + b3.clone().broadcast::<Rank2<B, 2>, _>();
    let loss = (out - yt).square().mean();
    let l = loss.array();
    let grads = loss.backward();
    let g = vec![
        grads.get(&w1).as_vec(),
        grads.get(&b1).as_vec(),
        grads.get(&w2).as_vec(),
        grads.get(&b2).as_vec(),
        grads.get(&w3).as_vec(),
        grads.get(&b3).as_vec(),
    ];
    (l, g)
}

#[test]
fn mlp_gradient_matches_dfdx() {
    let x = uniform(10, B * 2, 1.5);
    let y = uniform(11, B * 2, 1.0);
    let p = params();
    let (l_ours, g_ours) = ours(&x, &y, &p);
    let (l_dfdx, g_dfdx) = theirs(&x, &y, &p);
    assert!((l_ours - l_dfdx).abs() <= 1e-12 * l_dfdx.abs(), "loss {l_ours} vs {l_dfdx}");
    let names = ["W1", "b1", "W2", "b2", "W3", "b3"];
    for ((a, b), name) in g_ours.iter().zip(&g_dfdx).zip(names) {
        assert_eq!(a.len(), b.len());
        let e = rel_err_inf(a, b);
        assert!(e < 1e-12, "{name}: rel err {e}");
        assert!(a.iter().any(|v| v.abs() > 1e-8), "{name}: gradient is trivially zero");
    }
}
