//! The dfdx adaptor: a dfdx module as a VJP component, checked against our own Mlp.

use dfdx::prelude::*;
use neurohybrid_nn::dfdx_adaptor::DfdxComponent;
use neurohybrid_nn::{Activation, Mlp, NnError};

use crate::common::{eval, layer_tape, rel, test_params, uniform, vjp2};

#[test]
fn adaptor_forward_and_vjp_match_our_mlp() {
    let dev = Cpu::default();
    let model = dev.build_module::<(Linear<3, 7>, Tanh, Linear<7, 2>), f64>();
    let mut comp: DfdxComponent<_, 3, 2> = DfdxComponent::new(dev, model);
    let net = Mlp::new(&[3, 7, 2], Activation::Tanh).unwrap();
    assert_eq!(comp.n_params(), 3 * 7 + 7 + 7 * 2 + 2);
    let ours = test_params(&net, 1);
    // dfdx order per Linear: weight [out, in], then bias.
    let t = |w: &[f64], r: usize, c: usize| -> Vec<f64> {
        (0..c).flat_map(|j| (0..r).map(move |i| w[i * c + j])).collect()
    };
    let mut flat = t(&ours[..21], 3, 7);
    flat.extend(&ours[21..28]);
    flat.extend(t(&ours[28..42], 7, 2));
    flat.extend(&ours[42..]);
    comp.set_params(&flat).unwrap();
    assert_eq!(comp.params(), flat);

    let batch = 5;
    let x = uniform(2, batch * 3, 1.0);
    let mut y = vec![0.0; batch * 2];
    comp.forward(&x, batch, &mut y).unwrap();
    let tape = layer_tape(&net, &[batch, 3]);
    assert!(rel(&y, &eval(&tape, &[&x, &ours])) < 1e-14);

    let w = uniform(3, batch * 2, 1.0);
    let (mut wx, mut wp) = (vec![0.0; batch * 3], vec![0.0; comp.n_params()]);
    comp.vjp(&x, batch, &w, &mut wx, &mut wp).unwrap();
    let (gx, gp) = vjp2(&tape, &[&x, &ours], &w);
    assert!(rel(&wx, &gx) < 1e-12);
    let mut gp_dfdx = t(&gp[..21], 3, 7);
    gp_dfdx.extend(&gp[21..28]);
    gp_dfdx.extend(t(&gp[28..42], 7, 2));
    gp_dfdx.extend(&gp[42..]);
    assert!(rel(&wp, &gp_dfdx) < 1e-12);

    // Misuse is an error, never a dfdx panic; the JVP is refused explicitly.
    assert!(matches!(comp.forward(&x[1..], batch, &mut y), Err(NnError::LengthMismatch { .. })));
    assert!(comp.set_params(&flat[1..]).is_err());
    assert!(matches!(comp.jvp(&x, batch, &x, &[], &mut y), Err(NnError::Dfdx { .. })));
}
