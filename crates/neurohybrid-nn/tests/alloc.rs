//! Replays through this crate's layers allocate nothing after warm-up: a counting global
//! allocator watches forward + VJP + JVP of an MLP, the fused pointwise kernel and the masked
//! convolution, on sizes below and above the parallel threshold.
//!
//! Its own test binary, because the allocator is process-wide.

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_autodiff::{Graph, Tape};
use neurohybrid_nn::{Activation, Conv, Init, Layer, Mlp, Pointwise, Sequential, initialize};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn tape(layer: &dyn Layer, x_shape: &[usize]) -> Tape {
    let mut g = Graph::new();
    let x = g.input("x", x_shape).unwrap();
    let p = g.input("p", &[layer.n_params()]).unwrap();
    let y = layer.forward(&mut g, x, p).unwrap();
    let l = g.sum(y).unwrap();
    g.compile(&[l]).unwrap()
}

fn replays_allocate_nothing(name: &str, layer: &dyn Layer, x_shape: &[usize]) {
    let t = tape(layer, x_shape);
    let mut ws = t.workspace();
    let nx: usize = x_shape.iter().product();
    let x: Vec<f64> = (0..nx).map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0).collect();
    let p = initialize(layer, Init::GlorotUniform, 3);
    let (mut gx, mut gp) = (vec![0.0; nx], vec![0.0; p.len()]);
    let (vx, vp) = (vec![0.5; nx], vec![0.25; p.len()]);
    let mut out = [0.0];
    let mut run = |ws: &mut neurohybrid_autodiff::Workspace| {
        t.forward(ws, &[&x, &p]).unwrap();
        t.vjp(ws, &[&[1.0]], &mut [&mut gx, &mut gp]).unwrap();
        t.jvp(ws, &[&vx, &vp], &mut [&mut out]).unwrap();
    };
    run(&mut ws); // warm-up: thread-local scratch grows once
    let before = allocations();
    for _ in 0..3 {
        run(&mut ws);
    }
    assert_eq!(allocations() - before, 0, "{name}: replays allocated");
}

#[test]
fn layers_replay_without_allocating() {
    let mlp = Mlp::new(&[3, 16, 16, 2], Activation::Gelu).unwrap();
    replays_allocate_nothing("mlp", &mlp, &[20, 3]);
    let seq = Sequential::new().push(mlp.clone()).push(Activation::Swish);
    replays_allocate_nothing("sequential", &seq, &[20, 3]);
    let pw = Pointwise::new(Mlp::new(&[1, 16, 16, 1], Activation::Tanh).unwrap());
    replays_allocate_nothing("pointwise small", &pw, &[500]);
    replays_allocate_nothing("pointwise parallel", &pw, &[50_000]);
    let mask: Vec<bool> = (0..64 * 64).map(|c| c % 9 != 0).collect();
    let conv = Conv::new(&[64, 64], 1, 2).unwrap().with_mask(mask).unwrap();
    replays_allocate_nothing("conv parallel", &conv, &[4096]);
    let conv3 = Conv::new(&[6, 5, 4], 2, 1).unwrap();
    replays_allocate_nothing("conv3d small", &conv3, &[2, 6, 5, 4]);
}
