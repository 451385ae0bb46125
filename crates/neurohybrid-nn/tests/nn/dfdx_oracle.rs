//! Independent implementations as oracles: dfdx for the Mlp, a gather-based graph for Conv.

use dfdx::prelude::*;
use neurohybrid_autodiff::Graph;
use neurohybrid_nn::{Activation, Conv, Layer, Mlp};

use crate::common::{layer_tape, rel, test_params, uniform, vjp2};

const B: usize = 20;
const H: usize = 50;

/// Our weight block `[in, out]` row-major as dfdx's `[out, in]`.
fn transpose(w: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| w[i * cols + j])).collect()
}

#[test]
fn mlp_gradients_match_dfdx() {
    let net = Mlp::new(&[2, H, 2], Activation::Tanh).unwrap();
    let p = test_params(&net, 1);
    let x = uniform(2, B * 2, 1.5);
    let w = uniform(3, B * 2, 1.0);
    let tape = layer_tape(&net, &[B, 2]);
    let (gx, gp) = vjp2(&tape, &[&x, &p], &w);

    let dev = Cpu::default();
    let mut m = dev.build_module::<(Linear<2, H>, Tanh, Linear<H, 2>), f64>();
    let (w0, b0, w1, b1) = (&p[..2 * H], &p[2 * H..3 * H], &p[3 * H..3 * H + 2 * H], &p[5 * H..]);
    m.0.weight.copy_from(&transpose(w0, 2, H));
    m.0.bias.copy_from(b0);
    m.2.weight.copy_from(&transpose(w1, H, 2));
    m.2.bias.copy_from(b1);
    let xt: Tensor<(usize, Const<2>), f64, _> = dev.tensor_from_vec(x.clone(), (B, Const));
    let wt: Tensor<(usize, Const<2>), f64, _> = dev.tensor_from_vec(w.clone(), (B, Const));
    // Leaky: keep every gradient, the input's included (alloc_grads would drop it).
    let y = m.forward(xt.leaky_trace());
    let grads = (y * wt).sum().backward();
    let dx = grads.get(&xt).as_vec();
    let dw0 = transpose(&grads.get(&m.0.weight).as_vec(), H, 2);
    let dw1 = transpose(&grads.get(&m.2.weight).as_vec(), 2, H);
    let theirs: Vec<f64> = dw0
        .into_iter()
        .chain(grads.get(&m.0.bias).as_vec())
        .chain(dw1)
        .chain(grads.get(&m.2.bias).as_vec())
        .collect();
    assert!(rel(&gx, &dx) < 1e-12, "input gradient {}", rel(&gx, &dx));
    assert!(rel(&gp, &theirs) < 1e-12, "parameter gradient {}", rel(&gp, &theirs));
}

/// The masked convolution rebuilt from generic graph ops (gather, scalar multiply, add), so
/// its gradients come from the autodiff crate's own rules — an implementation independent of
/// `ConvOp`. (dfdx's `conv2d` exists only with its `nightly` feature, so it cannot serve as the
/// oracle on a stable toolchain.)
fn gather_conv_tape(
    dims: &[usize],
    ci: usize,
    co: usize,
    mask: &[bool],
) -> neurohybrid_autodiff::Tape {
    use std::sync::Arc;
    let cells: usize = dims.iter().product();
    let d3 = [dims[0], dims[1], *dims.get(2).unwrap_or(&1)];
    let taps: Vec<[isize; 3]> = (-1..=1)
        .flat_map(|a| (-1..=1).flat_map(move |b| (-1..=1).map(move |c| [a, b, c])))
        .filter(|t| dims.len() == 3 || t[2] == 0)
        .collect();
    let nk = taps.len();
    let mut g = Graph::new();
    let x = g.input("x", &[ci * cells]).unwrap();
    let p = g.input("p", &[co * ci * nk + co]).unwrap();
    let zero = g.constant(&[1], vec![0.0]).unwrap();
    let xpad = g.concat(&[x, zero]).unwrap();
    let mask_c =
        g.constant(&[cells], mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect()).unwrap();
    let mut outs = Vec::new();
    for o in 0..co {
        let b = g.slice(p, co * ci * nk + o, 1).unwrap();
        let b = g.reshape(b, &[]).unwrap();
        let mut acc = g.mul(mask_c, b).unwrap();
        for i in 0..ci {
            for (k, t) in taps.iter().enumerate() {
                let idx: Vec<usize> = (0..cells)
                    .map(|c| {
                        let (x0, x1, x2) = (c / (d3[1] * d3[2]), (c / d3[2]) % d3[1], c % d3[2]);
                        let q = [x0 as isize + t[0], x1 as isize + t[1], x2 as isize + t[2]];
                        let inside = (0..3).all(|a| q[a] >= 0 && q[a] < d3[a] as isize);
                        if !mask[c] || !inside {
                            return ci * cells;
                        }
                        let qi = (q[0] as usize * d3[1] + q[1] as usize) * d3[2] + q[2] as usize;
                        if mask[qi] { i * cells + qi } else { ci * cells }
                    })
                    .collect();
                let gathered = g.gather(xpad, Arc::from(idx)).unwrap();
                let kv = g.slice(p, (o * ci + i) * nk + k, 1).unwrap();
                let kv = g.reshape(kv, &[]).unwrap();
                let term = g.mul(gathered, kv).unwrap();
                acc = g.add(acc, term).unwrap();
            }
        }
        outs.push(acc);
    }
    let y = g.concat(&outs).unwrap();
    g.compile(&[y]).unwrap()
}

#[test]
fn masked_conv_matches_an_independent_gather_implementation() {
    for dims in [vec![7, 5], vec![4, 3, 5]] {
        let (ci, co) = (2, 3);
        let cells: usize = dims.iter().product();
        let mask: Vec<bool> = (0..cells).map(|c| (c * 5) % 7 != 2).collect();
        let conv = Conv::new(&dims, ci, co).unwrap().with_mask(mask.clone()).unwrap();
        let p = test_params(&conv, 4);
        let x = uniform(5, ci * cells, 1.0);
        let w = uniform(6, co * cells, 1.0);
        let mut shape = vec![ci];
        shape.extend(&dims);
        let ours = layer_tape(&conv, &shape);
        let oracle = gather_conv_tape(&dims, ci, co, &mask);
        let (y1, y2) =
            (crate::common::eval(&ours, &[&x, &p]), crate::common::eval(&oracle, &[&x, &p]));
        assert!(rel(&y1, &y2) < 1e-13, "{dims:?} forward {}", rel(&y1, &y2));
        let (gx1, gp1) = vjp2(&ours, &[&x, &p], &w);
        let (gx2, gp2) = vjp2(&oracle, &[&x, &p], &w);
        assert!(rel(&gx1, &gx2) < 1e-12, "{dims:?} input gradient {}", rel(&gx1, &gx2));
        assert!(rel(&gp1, &gp2) < 1e-12, "{dims:?} kernel gradient {}", rel(&gp1, &gp2));
    }
}

#[test]
fn shared_tape_with_a_mechanistic_term() {
    // dy/dt = -k y + g_nn(y): one tape, one VJP for the mechanistic k and the network weights.
    let net = Mlp::new(&[3, 8, 3], Activation::Rbf).unwrap();
    let mut g = Graph::new();
    let y = g.input("y", &[3]).unwrap();
    let p = g.input("p", &[1 + net.n_params()]).unwrap();
    let k = g.slice(p, 0, 1).unwrap();
    let k = g.reshape(k, &[]).unwrap();
    let ky = g.mul(y, k).unwrap();
    let mech = g.neg(ky).unwrap();
    let nn = net.forward_at(&mut g, y, p, 1).unwrap();
    let f = g.add(mech, nn).unwrap();
    let tape = g.compile(&[f]).unwrap();
    let mut params = vec![0.7];
    params.extend(test_params(&net, 7));
    let c = neurohybrid_autodiff::check::check_vjp(
        &tape,
        &[&[0.3, -0.2, 0.9], &params],
        &[&[1.0, -0.5, 0.25]],
    )
    .unwrap();
    assert!(c.max_rel_err < 1e-6, "{}", c.max_rel_err);
    assert!(c.vjp[1][0].abs() > 1e-3, "mechanistic parameter gets its gradient");
}
