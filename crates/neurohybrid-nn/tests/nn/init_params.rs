//! Initializers and parameter-block naming.

use neurohybrid_nn::{Activation, BlockKind, Conv, Init, Layer, Mlp, initialize, ranges_matching};

#[test]
fn initialization_is_seeded_and_reproducible() {
    let m = Mlp::new(&[3, 40, 20, 2], Activation::Tanh).unwrap();
    for init in [Init::GlorotUniform, Init::GlorotNormal, Init::HeUniform, Init::HeNormal] {
        let a = initialize(&m, init, 7);
        assert_eq!(a, initialize(&m, init, 7), "{init:?}");
        assert_ne!(a, initialize(&m, init, 8), "{init:?}");
    }
    assert!(initialize(&m, Init::Zeros, 1).iter().all(|&v| v == 0.0));
    // Fixed stream: the first weight of a seeded model never changes between builds.
    let first =
        initialize(&Mlp::new(&[1, 1], Activation::Tanh).unwrap(), Init::GlorotUniform, 0)[0];
    let expected = {
        let mut r = neurohybrid_nn::rng::SplitMix64::new(0);
        3f64.sqrt() * (2.0 * r.uniform() - 1.0)
    };
    assert_eq!(first, expected);
}

#[test]
fn scales_follow_the_fans() {
    let m = Mlp::new(&[200, 300, 1], Activation::Relu).unwrap();
    let blocks = m.param_blocks();
    let w0 = &blocks[0];
    assert_eq!(w0.kind, BlockKind::Weight { fan_in: 200, fan_out: 300 });
    let var = |p: &[f64]| p.iter().map(|v| v * v).sum::<f64>() / p.len() as f64;
    let glorot = initialize(&m, Init::GlorotUniform, 1);
    let bound = (6.0f64 / 500.0).sqrt();
    assert!(glorot[w0.range()].iter().all(|v| v.abs() <= bound));
    assert!((var(&glorot[w0.range()]) / (2.0 / 500.0) - 1.0).abs() < 0.05);
    let he = initialize(&m, Init::HeNormal, 2);
    assert!((var(&he[w0.range()]) / (2.0 / 200.0) - 1.0).abs() < 0.05);
    let gn = initialize(&m, Init::GlorotNormal, 3);
    assert!((var(&gn[w0.range()]) / (2.0 / 500.0) - 1.0).abs() < 0.05);
    assert!(he[blocks[1].range()].iter().all(|&b| b == 0.0), "biases start at zero");
    let conv = Conv::new(&[8, 8], 2, 4).unwrap();
    assert_eq!(conv.param_blocks()[0].kind, BlockKind::Weight { fan_in: 18, fan_out: 36 });
}

#[test]
fn blocks_are_contiguous_named_and_selectable() {
    let m = Mlp::new(&[2, 5, 3, 1], Activation::Tanh).unwrap();
    let blocks = m.param_blocks();
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layer0.weight",
            "layer0.bias",
            "layer1.weight",
            "layer1.bias",
            "layer2.weight",
            "layer2.bias"
        ]
    );
    let mut at = 0;
    for b in &blocks {
        assert_eq!(b.offset, at);
        at += b.len();
    }
    assert_eq!(at, m.n_params());
    assert_eq!(ranges_matching(&blocks, "layer1"), vec![15..30, 30..33]);
}
