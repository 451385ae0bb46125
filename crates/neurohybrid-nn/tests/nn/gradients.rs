//! Every layer: VJP against finite differences (1e-6) and the JVP/VJP dot-product identity
//! (1e-12).

use neurohybrid_nn::{Activation, Conv, Dense, Layer, Mlp, Pointwise, PointwiseMode, Sequential};

use crate::common::{check_layer, test_params, uniform};

const ALL: [Activation; 8] = [
    Activation::Identity,
    Activation::Tanh,
    Activation::Relu,
    Activation::Gelu,
    Activation::Softplus,
    Activation::Sigmoid,
    Activation::Swish,
    Activation::Rbf,
];

#[test]
fn dense_with_and_without_bias_batched_and_single_row() {
    for bias in [true, false] {
        let d = Dense::new(3, 4, bias).unwrap();
        let p = test_params(&d, 1);
        check_layer("dense batch", &d, &[5, 3], &uniform(2, 15, 1.0), &p);
        check_layer("dense row", &d, &[3], &uniform(3, 3, 1.0), &p);
    }
}

#[test]
fn every_activation_as_a_layer() {
    for act in ALL {
        let x = uniform(4, 12, 2.0);
        check_layer(&format!("{act:?}"), &act, &[3, 4], &x, &[0.0]);
    }
}

#[test]
fn mlp_with_every_hidden_activation() {
    for act in ALL {
        let m = Mlp::new(&[2, 6, 5, 3], act).unwrap();
        let p = test_params(&m, 5);
        check_layer(&format!("mlp {act:?}"), &m, &[4, 2], &uniform(6, 8, 1.5), &p);
    }
    let m = Mlp::new(&[3, 4, 1], Activation::Tanh)
        .unwrap()
        .with_output_activation(Activation::Softplus)
        .with_bias(false);
    check_layer("mlp softplus out, no bias", &m, &[3], &uniform(7, 3, 1.0), &test_params(&m, 8));
}

#[test]
fn sequential_of_dense_and_activations() {
    let s = Sequential::new()
        .push(Dense::new(2, 5, true).unwrap())
        .push(Activation::Gelu)
        .push(Mlp::new(&[5, 4, 2], Activation::Swish).unwrap())
        .push(Activation::Rbf);
    let names: Vec<String> = s.param_blocks().into_iter().map(|b| b.name).collect();
    assert_eq!(
        names,
        [
            "layer0.weight",
            "layer0.bias",
            "layer2.layer0.weight",
            "layer2.layer0.bias",
            "layer2.layer1.weight",
            "layer2.layer1.bias"
        ]
    );
    check_layer("sequential", &s, &[3, 2], &uniform(9, 6, 1.0), &test_params(&s, 10));
}

#[test]
fn pointwise_fused_and_graph_modes() {
    let nets = [
        Mlp::new(&[1, 16, 16, 1], Activation::Tanh).unwrap(),
        Mlp::new(&[3, 8, 2], Activation::Softplus)
            .unwrap()
            .with_output_activation(Activation::Softplus),
        Mlp::new(&[2, 5, 4, 2], Activation::Relu)
            .unwrap()
            .with_output_activation(Activation::Sigmoid),
        Mlp::new(&[2, 6, 1], Activation::Gelu).unwrap().with_bias(false),
    ];
    for net in nets {
        let (n, f) = (7, net.inputs());
        let x = uniform(11, n * f, 1.5);
        let p = test_params(&net, 12);
        for mode in [PointwiseMode::Fused, PointwiseMode::Graph] {
            let pw = Pointwise::new(net.clone()).with_mode(mode);
            check_layer(&format!("pointwise {mode:?} {:?}", net.widths), &pw, &[n, f], &x, &p);
            if f == 1 {
                check_layer("pointwise rank-1", &pw, &[n], &x, &p);
            }
        }
    }
}

#[test]
fn conv2d_masked_multichannel() {
    let mask: Vec<bool> = (0..5 * 6).map(|c| c % 7 != 3 && c != 0).collect();
    let conv = Conv::new(&[5, 6], 2, 3).unwrap().with_mask(mask).unwrap();
    let x = uniform(13, 2 * 30, 1.0);
    check_layer("conv2d masked", &conv, &[2, 5, 6], &x, &test_params(&conv, 14));
    let plain = Conv::new(&[4, 3], 1, 1).unwrap().with_bias(false).with_kernel(5).unwrap();
    check_layer(
        "conv2d 5x5 rank-1",
        &plain,
        &[12],
        &uniform(15, 12, 1.0),
        &test_params(&plain, 16),
    );
}

#[test]
fn conv3d_masked() {
    let dims = [3, 4, 5];
    let mask: Vec<bool> = (0..60).map(|c| (c * 7) % 5 != 0).collect();
    let conv = Conv::new(&dims, 2, 2).unwrap().with_mask(mask).unwrap();
    check_layer(
        "conv3d masked",
        &conv,
        &[2, 3, 4, 5],
        &uniform(17, 120, 1.0),
        &test_params(&conv, 18),
    );
}

#[test]
fn masked_conv_inactive_cells_read_and_produce_zero() {
    use crate::common::{eval, layer_tape};
    let mask: Vec<bool> = (0..16).map(|c| c != 5 && c != 10).collect();
    let conv = Conv::new(&[4, 4], 1, 1).unwrap().with_mask(mask.clone()).unwrap();
    let p = test_params(&conv, 19);
    let tape = layer_tape(&conv, &[16]);
    let x = uniform(20, 16, 1.0);
    let y = eval(&tape, &[&x, &p]);
    assert_eq!((y[5], y[10]), (0.0, 0.0));
    // Changing an inactive cell's input changes nothing.
    let mut x2 = x.clone();
    x2[5] += 10.0;
    assert_eq!(eval(&tape, &[&x2, &p]), y);
    // An active cell's value is bias + stencil over active neighbours only.
    let c = 6; // (1, 2): neighbours include 5 (inactive) and 10 (inactive)
    let mut expect = p[9];
    for (k, (di, dj)) in (-1i32..=1).flat_map(|a| (-1i32..=1).map(move |b| (a, b))).enumerate() {
        let q = ((1 + di) * 4 + (2 + dj)) as usize;
        if mask[q] {
            expect += p[k] * x[q];
        }
    }
    assert!((y[c] - expect).abs() < 1e-14, "{} vs {expect}", y[c]);
}

#[test]
fn bad_shapes_and_parameter_lengths_are_errors() {
    use neurohybrid_autodiff::Graph;
    use neurohybrid_nn::NnError;
    let m = Mlp::new(&[2, 3, 1], Activation::Tanh).unwrap();
    let mut g = Graph::new();
    let x = g.input("x", &[4, 3]).unwrap();
    let p = g.input("p", &[m.n_params()]).unwrap();
    assert!(matches!(m.forward(&mut g, x, p), Err(NnError::InputShape { layer: "Mlp", .. })));
    let x2 = g.input("x2", &[4, 2]).unwrap();
    let short = g.input("short", &[3]).unwrap();
    assert!(matches!(m.forward(&mut g, x2, short), Err(NnError::LengthMismatch { .. })));
    assert!(Mlp::new(&[2], Activation::Tanh).is_err());
    assert!(Conv::new(&[4, 4], 1, 1).unwrap().with_kernel(2).is_err());
    assert!(Conv::new(&[4, 4], 1, 1).unwrap().with_mask(vec![true; 3]).is_err());
    assert!(Conv::new(&[4], 1, 1).is_err());
    let conv = Conv::new(&[4, 4], 2, 1).unwrap();
    let xc = g.input("xc", &[16]).unwrap();
    let pc = g.input("pc", &[conv.n_params()]).unwrap();
    assert!(matches!(conv.forward(&mut g, xc, pc), Err(NnError::InputShape { layer: "Conv", .. })));
}
