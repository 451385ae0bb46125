//! Replays allocate nothing: a counting global allocator watches forward + vjp + jvp of an
//! MLP-like graph with matmuls (MLP-sized and 100×100), sparse products, a custom op and the
//! data-movement ops.
//!
//! Its own test binary, because the allocator is process-wide.

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_autodiff::{Csr, CustomOp, Graph, Result};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Softsign `x / (1 + |x|)` as a custom op.
struct Softsign;

impl CustomOp for Softsign {
    fn name(&self) -> &str {
        "softsign"
    }
    fn output_shape(&self, s: &[&[usize]]) -> Result<Vec<usize>> {
        Ok(s[0].to_vec())
    }
    fn forward(&self, x: &[&[f64]], out: &mut [f64]) {
        for (o, &v) in out.iter_mut().zip(x[0]) {
            *o = v / (1.0 + v.abs());
        }
    }
    fn vjp(&self, x: &[&[f64]], _out: &[f64], w: &[f64], c: &mut [&mut [f64]]) {
        for ((ci, &wi), &v) in c[0].iter_mut().zip(w).zip(x[0]) {
            *ci += wi / (1.0 + v.abs()).powi(2);
        }
    }
    fn jvp(&self, x: &[&[f64]], _out: &[f64], t: &[&[f64]], ot: &mut [f64]) {
        for ((o, &ti), &v) in ot.iter_mut().zip(t[0]).zip(x[0]) {
            *o = ti / (1.0 + v.abs()).powi(2);
        }
    }
}

/// Builds the test graph (with a 100×100 faer-path matmul when `with_big`) and runs warm-up
/// plus 10 counted replays; returns the allocations of (warm-up, counted replays).
fn count_replay_allocations(with_big: bool) -> (usize, usize) {
    let (batch, width, big) = (20, 50, 100);
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 2]).unwrap();
    let w1 = g.input("w1", &[2, width]).unwrap();
    let b1 = g.input("b1", &[width]).unwrap();
    let w2 = g.input("w2", &[width, width]).unwrap();
    let lap_vals = g.input("lap_vals", &[3 * width - 2]).unwrap();
    let wb = g.input("wb", &[big, big]).unwrap();
    // MLP layers (hand-loop matmul).
    let h = g.matmul(x, w1).unwrap();
    let h = g.add(h, b1).unwrap();
    let h = g.tanh(h).unwrap();
    let h = g.matmul(h, w2).unwrap();
    let h = g.custom(Arc::new(Softsign), &[h]).unwrap();
    // Sparse: a tridiagonal operator with constant and with differentiable values.
    let n = width;
    let (mut offs, mut cols, mut vals) = (vec![0], vec![], vec![]);
    for i in 0..n {
        for j in i.saturating_sub(1)..(i + 2).min(n) {
            cols.push(j);
            vals.push(if i == j { -2.0 } else { 1.0 });
        }
        offs.push(cols.len());
    }
    let lap = Arc::new(Csr::try_from_csr_data(n, n, offs, cols, vals).unwrap());
    let ht = g.reshape(h, &[batch * width]).unwrap();
    let row0 = g.slice(ht, 0, width).unwrap();
    let s1 = g.spmv(lap.clone(), row0).unwrap();
    let s2 = g.spmv_values(lap, lap_vals, s1).unwrap();
    let gath = g.gather(s2, Arc::from(vec![0, 3, 3, 7])).unwrap();
    let scat = g.scatter_add(gath, Arc::from(vec![1, 1, 0, 2]), 3).unwrap();
    let hsum = g.sum_axis(h, 0).unwrap();
    let cat = g.concat(&[hsum, scat]).unwrap();
    let sp = g.softplus(cat).unwrap();
    let l1 = g.mean(sp).unwrap();
    let loss = if with_big {
        // A large matmul (faer path).
        let wbb = g.matmul(wb, wb).unwrap();
        let l2 = g.dot(wbb, wb).unwrap();
        g.add(l1, l2).unwrap()
    } else {
        l1
    };
    let tape = g.compile(&[loss, h]).unwrap();

    let fill =
        |n: usize, s: f64| -> Vec<f64> { (0..n).map(|i| ((i as f64) * s).sin() * 0.5).collect() };
    let inputs: Vec<Vec<f64>> =
        (0..tape.n_inputs()).map(|i| fill(tape.input_len(i), 0.37 + i as f64)).collect();
    let ins: Vec<&[f64]> = inputs.iter().map(|v| v.as_slice()).collect();
    let tangents: Vec<Vec<f64>> =
        (0..tape.n_inputs()).map(|i| fill(tape.input_len(i), 1.3 + i as f64)).collect();
    let tans: Vec<&[f64]> = tangents.iter().map(|v| v.as_slice()).collect();
    let w_h = fill(batch * width, 0.9);
    let mut cots: Vec<Vec<f64>> =
        (0..tape.n_inputs()).map(|i| vec![0.0; tape.input_len(i)]).collect();
    let (mut t_loss, mut t_h) = (vec![0.0; 1], vec![0.0; batch * width]);
    let mut ws = tape.workspace();

    let mut replay = |ws: &mut neurohybrid_autodiff::Workspace, prune: bool| {
        tape.forward(ws, &ins).unwrap();
        let mut slots: [&mut [f64]; 6] = Default::default();
        for (s, c) in slots.iter_mut().zip(cots.iter_mut()) {
            *s = c.as_mut_slice();
        }
        if prune {
            slots[0] = &mut [];
        }
        tape.vjp(ws, &[&[1.0], &w_h], &mut slots).unwrap();
        tape.jvp(ws, &tans, &mut [&mut t_loss, &mut t_h]).unwrap();
    };
    let start = allocations();
    replay(&mut ws, false);
    let before = allocations();
    for k in 0..10 {
        replay(&mut ws, k % 3 == 0);
    }
    let used = allocations() - before;
    assert!(t_loss[0].is_finite() && cots[1].iter().any(|&c| c != 0.0));
    (before - start, used)
}

/// faer's matmul initialises thread-local scratch on its first call in a thread (a one-time,
/// per-thread library cost, a few hundred small allocations), so one warm-up replay runs first;
/// every replay after it — forward, vjp (with and without pruned slots) and jvp — must allocate
/// nothing, for small (MLP) and large matmuls alike.
#[test]
fn replays_do_not_allocate_after_warm_up() {
    for with_big in [false, true] {
        let (_warm_up, rest) = count_replay_allocations(with_big);
        assert_eq!(rest, 0, "replays allocated {rest} times (with_big = {with_big})");
    }
    // The counter does see allocations (the test can fail).
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 16]);
    assert!(allocations() > before, "{v:?}");
}
