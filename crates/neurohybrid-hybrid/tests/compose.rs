//! Every composition's VJP and JVP against finite differences and against each other
//! (`<w, J v> = <Jᵀ w, v>`), its Jacobian against its JVP, and solves + sensitivities through
//! a composition against finite differences of the solve.

use neurohybrid_hybrid::{
    DiffMap, NetworkRhs, NeuralOde, Parallel, Parameterized, Readout, Series, TapeMap,
};
use neurohybrid_nn::{Activation, Init, Mlp, initialize};
use neurohybrid_solve::sensitivity::{
    DiscreteAdjoint, ForwardSensitivity, SquaredMisfit, gradient,
};
use neurohybrid_solve::{PiController, Problem, SaveAt, solve};
use neurohybrid_solve_explicit::Tsit5;
use neurohybrid_system::{Jacobian, Jvp, OdeSystem, Vjp};
use neurohybrid_testkit::{FisherKpp, LotkaVolterra};
use proptest::prelude::*;

/// A deterministic pseudo-random vector in `[-scale, scale]` (SplitMix64).
fn vec_of(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            scale * (2.0 * (z >> 11) as f64 / (1u64 << 53) as f64 - 1.0)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `<w, Jv> = <Jᵀw, v>` to 1e-12 (relative), and both equal the central finite difference of
/// `<w, f(y + εv_y, p + εv_p)>` to 1e-6 (relative).
fn check_system<S: Vjp + Jvp>(sys: &S, t: f64, y: &[f64], p: &[f64], seed: u64) {
    let (n, m) = (sys.n_states(), sys.n_params());
    let v_y = vec_of(n, seed + 1, 1.0);
    let v_p = vec_of(m, seed + 2, 1.0);
    let w = vec_of(n, seed + 3, 1.0);
    let mut jv = vec![0.0; n];
    sys.jvp(t, y, p, &v_y, &v_p, &mut jv);
    let (mut w_y, mut w_p) = (vec![0.0; n], vec![0.0; m]);
    sys.vjp(t, y, p, &w, &mut w_y, &mut w_p);
    let lhs = dot(&w, &jv);
    let rhs = dot(&w_y, &v_y) + dot(&w_p, &v_p);
    let scale = lhs.abs().max(rhs.abs()).max(1.0);
    assert!((lhs - rhs).abs() <= 1e-12 * scale, "dot identity: {lhs} vs {rhs}");

    let h = 1e-6;
    let eval = |e: f64| {
        let yy: Vec<f64> = y.iter().zip(&v_y).map(|(a, b)| a + e * b).collect();
        let pp: Vec<f64> = p.iter().zip(&v_p).map(|(a, b)| a + e * b).collect();
        let mut f = vec![0.0; n];
        sys.rhs(t, &yy, &pp, &mut f);
        dot(&w, &f)
    };
    let fd = (eval(h) - eval(-h)) / (2.0 * h);
    assert!((fd - lhs).abs() <= 1e-6 * scale, "finite difference: {fd} vs {lhs}");

    // A not-needed parameter cotangent and a zero parameter tangent are honoured.
    let mut w_y2 = vec![0.0; n];
    sys.vjp(t, y, p, &w, &mut w_y2, &mut []);
    assert!(w_y.iter().zip(&w_y2).all(|(a, b)| (a - b).abs() <= 1e-14 * a.abs().max(1.0)));
    let mut jv_y = vec![0.0; n];
    sys.jvp(t, y, p, &v_y, &[], &mut jv_y);
    let zero = vec![0.0; m];
    sys.jvp(t, y, p, &v_y, &zero, &mut jv);
    assert!(jv.iter().zip(&jv_y).all(|(a, b)| (a - b).abs() <= 1e-14 * a.abs().max(1.0)));
}

/// The sparse Jacobian equals the JVPs with unit vectors (and has its pattern).
fn check_jacobian<S: Jacobian + Jvp>(sys: &S, t: f64, y: &[f64], p: &[f64]) {
    let n = sys.n_states();
    let mut jac = sys.jacobian_matrix();
    sys.jacobian(t, y, p, &mut jac);
    let mut e = vec![0.0; n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        e[j] = 1.0;
        sys.jvp(t, y, p, &e, &[], &mut col);
        e[j] = 0.0;
        for (i, &c) in col.iter().enumerate() {
            let entry = jac.get_entry(i, j).map(|v| v.into_value());
            match entry {
                Some(v) => assert!((v - c).abs() <= 1e-12 * c.abs().max(1.0), "J[{i},{j}]"),
                None => assert_eq!(c, 0.0, "J[{i},{j}] outside the pattern"),
            }
        }
    }
}

fn mlp(widths: &[usize]) -> Mlp {
    Mlp::new(widths, Activation::Tanh).unwrap()
}

/// The UDE of the Lotka–Volterra case: the mechanistic linear terms + a network for the rest.
fn lv_ude() -> (Parallel<LotkaVolterra, NetworkRhs>, Vec<f64>) {
    let net = mlp(&[2, 8, 2]);
    let nn = NetworkRhs::dense(&net, 2).unwrap();
    let par = Parallel::new(LotkaVolterra::default(), nn).unwrap();
    let mut p = vec![1.3, 0.9, 0.8, 1.8];
    p.extend(initialize(&net, Init::GlorotUniform, 7));
    (par, p)
}

/// `Series`: a map from 3 features to Fisher–KPP's `(D, ρ)` through a softplus, so both stay
/// positive.
fn fisher_series(side: usize) -> (Series<TapeMap, FisherKpp>, Vec<f64>) {
    let net = mlp(&[3, 4, 2]).with_output_activation(Activation::Softplus);
    let map = TapeMap::new(&net, &[3]).unwrap();
    let w = initialize(&net, Init::GlorotUniform, 11);
    (Series::new(map, vec![0.2, -0.5, 1.0], FisherKpp::new(side)).unwrap(), w)
}

#[test]
fn tape_map_vjp_jvp_and_readout() {
    let net = mlp(&[4, 6, 3]);
    let map = TapeMap::new(&net, &[4]).unwrap();
    let w = initialize(&net, Init::GlorotUniform, 1);
    let x = vec_of(4, 2, 1.0);
    let (vx, vw, cot) = (vec_of(4, 3, 1.0), vec_of(w.len(), 4, 1.0), vec_of(3, 5, 1.0));
    let mut jv = [0.0; 3];
    map.jvp(&x, &w, &vx, &vw, &mut jv);
    let (mut xb, mut wb) = (vec![0.0; 4], vec![0.0; w.len()]);
    map.vjp(&x, &w, &cot, &mut xb, &mut wb);
    let (l, r) = (dot(&cot, &jv), dot(&xb, &vx) + dot(&wb, &vw));
    assert!((l - r).abs() < 1e-12 * l.abs().max(1.0));
    // A readout is its map.
    let ro = Readout::new(map.clone());
    let (mut o1, mut o2) = ([0.0; 3], [0.0; 3]);
    ro.observe(&x, &w, &mut o1);
    map.eval(&x, &w, &mut o2);
    assert_eq!(o1, o2);
    let mut yb = vec![0.0; 4];
    ro.vjp(&x, &w, &cot, &mut yb, &mut []);
    assert_eq!(yb, xb);
}

#[test]
fn network_rhs_dense_and_with_time() {
    let net = mlp(&[3, 5, 3]);
    let f = NetworkRhs::dense(&net, 3).unwrap();
    let p = initialize(&net, Init::GlorotUniform, 3);
    check_system(&f, 0.4, &vec_of(3, 9, 1.0), &p, 10);
    check_jacobian(&f, 0.4, &vec_of(3, 9, 1.0), &p);
    assert_eq!(f.layout().range("layer1.bias").unwrap(), 35..38);

    let net_t = mlp(&[4, 5, 3]);
    let ft = NetworkRhs::dense(&net_t, 3).unwrap().with_time_input().unwrap();
    let pt = initialize(&net_t, Init::GlorotUniform, 4);
    check_system(&ft, 0.7, &vec_of(3, 9, 1.0), &pt, 20);
    // The time really enters.
    let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
    ft.rhs(0.0, &[0.1, 0.2, 0.3], &pt, &mut a);
    ft.rhs(1.0, &[0.1, 0.2, 0.3], &pt, &mut b);
    assert_ne!(a, b);
    assert!(NetworkRhs::dense(&net, 4).is_err());
}

#[test]
fn network_rhs_pointwise_with_features_and_time() {
    // 5 points, 2 channels, 1 feature, time: MLP 4 → 6 → 2.
    let net = mlp(&[4, 6, 2]);
    let n_points = 5;
    let partial = NetworkRhs::pointwise(&net, n_points, 2).unwrap();
    assert!(!partial.is_complete());
    assert!(Parallel::new(LotkaVolterra::default(), partial.clone()).is_err());
    let f = partial.with_features(vec_of(n_points, 30, 1.0)).unwrap().with_time_input().unwrap();
    assert!(f.is_complete());
    let p = initialize(&net, Init::GlorotUniform, 5);
    let y = vec_of(10, 31, 1.0);
    check_system(&f, 0.3, &y, &p, 40);
    check_jacobian(&f, 0.3, &y, &p);
    // Block-diagonal: each row couples its point's two channels only.
    assert_eq!(f.sparsity().nnz(), 2 * 10);

    // Channel-major layout: point i's derivative equals the MLP on [y_i, y_{n+i}, feat_i, t].
    let feats = vec_of(n_points, 30, 1.0);
    let map = TapeMap::new(&net, &[4]).unwrap();
    let mut dy = vec![0.0; 10];
    f.rhs(0.3, &y, &p, &mut dy);
    for i in 0..n_points {
        let mut o = [0.0; 2];
        map.eval(&[y[i], y[n_points + i], feats[i], 0.3], &p, &mut o);
        assert!((o[0] - dy[i]).abs() < 1e-14 && (o[1] - dy[n_points + i]).abs() < 1e-14);
    }
    assert!(NetworkRhs::pointwise(&net, n_points, 3).is_err());
    assert!(f.clone().with_features(vec![0.0; 7]).is_err());
}

#[test]
fn parallel_ude_is_exact() {
    let (par, p) = lv_ude();
    assert_eq!(par.n_params(), 4 + 2 * 8 + 8 + 8 * 2 + 2);
    let layout = par.layout();
    assert_eq!(layout.range("mech.p").unwrap(), 0..4);
    assert_eq!(layout.range("nn.layer0.weight").unwrap(), 4..20);
    let y = [0.44249296, 4.6280594];
    check_system(&par, 0.0, &y, &p, 50);
    check_jacobian(&par, 0.0, &y, &p);
    let named = par
        .with_mech_layout(
            neurohybrid_system::ParamLayout::new()
                .with("alpha", &[])
                .unwrap()
                .with("beta", &[])
                .unwrap()
                .with("gamma", &[])
                .unwrap()
                .with("delta", &[])
                .unwrap(),
        )
        .unwrap();
    assert_eq!(named.layout().range("mech.gamma").unwrap(), 2..3);
    assert_eq!(named.layout().len(), named.n_params());
}

#[test]
fn series_parameter_map_is_exact_and_cached() {
    let side = 4;
    let (ser, w) = fisher_series(side);
    assert_eq!(ser.n_params(), w.len()); // (D, ρ) both come from the map
    let theta = ser.mech_params(&w);
    assert!(theta.iter().all(|&v| v > 0.0));
    let y: Vec<f64> = FisherKpp::seed(side);
    check_system(&ser, 0.0, &y, &w, 60);
    check_jacobian(&ser, 0.0, &y, &w);
    // θ follows w.
    let mut w2 = w.clone();
    w2[0] += 0.1;
    assert_ne!(ser.mech_params(&w2), theta);
    assert_eq!(ser.mech_params(&w), theta);
    assert!(Series::new(ser.map().clone(), vec![0.0; 2], FisherKpp::new(side)).is_err());
}

#[test]
fn series_keeps_the_remaining_mechanistic_parameters() {
    // The map predicts the first mechanistic parameter (D); ρ stays a free parameter.
    let net = mlp(&[2, 3, 1]).with_output_activation(Activation::Softplus);
    let map = TapeMap::new(&net, &[2]).unwrap();
    let ser = Series::new(map, vec![0.5, 1.5], FisherKpp::new(3)).unwrap();
    let mut p = initialize(&net, Init::GlorotUniform, 8);
    p.push(0.3); // ρ
    assert_eq!(ser.n_params(), p.len());
    assert_eq!(ser.layout().range("mech.p").unwrap(), p.len() - 1..p.len());
    assert_eq!(ser.mech_params(&p)[1], 0.3);
    check_system(&ser, 0.0, &FisherKpp::seed(3), &p, 70);
}

#[test]
fn nested_parallel_of_series_and_network() {
    let side = 3;
    let (ser, w) = fisher_series(side);
    let net = mlp(&[1, 4, 1]);
    let nn = NetworkRhs::pointwise(&net, side * side, 1).unwrap();
    let nested = Parallel::nested(ser, nn).unwrap();
    let mut p = w.clone();
    p.extend(initialize(&net, Init::GlorotUniform, 9));
    assert_eq!(nested.n_params(), p.len());
    assert_eq!(nested.layout().range("mech.nn.w").unwrap(), 0..w.len());
    assert!(nested.layout().get("nn.layer0.weight").is_some());
    let y = FisherKpp::seed(side);
    check_system(&nested, 0.0, &y, &p, 80);
    check_jacobian(&nested, 0.0, &y, &p);
}

#[test]
fn neural_ode_with_and_without_time() {
    let net = mlp(&[2, 7, 2]);
    let node = NeuralOde::from_tape_map(TapeMap::new(&net, &[2]).unwrap()).unwrap();
    let p = initialize(&net, Init::GlorotUniform, 12);
    check_system(&node, 0.0, &[0.3, -0.8], &p, 90);
    check_jacobian(&node, 0.0, &[0.3, -0.8], &p);
    assert_eq!(node.param_layout().unwrap().range("layer0.weight").unwrap(), 0..14);

    let net_t = mlp(&[3, 7, 2]);
    let node_t = NeuralOde::new(TapeMap::new(&net_t, &[3]).unwrap()).unwrap();
    assert!(node_t.has_time_input());
    let pt = initialize(&net_t, Init::GlorotUniform, 13);
    check_system(&node_t, 0.9, &[0.3, -0.8], &pt, 100);
    check_jacobian(&node_t, 0.9, &[0.3, -0.8], &pt);
    assert!(NeuralOde::new(TapeMap::new(&mlp(&[4, 3, 2]), &[4]).unwrap()).is_err());
}

#[test]
fn neural_ode_from_a_custom_graph() {
    // The torchdiffeq spiral model: an MLP applied to y³.
    let net = mlp(&[2, 5, 2]);
    let n_w = neurohybrid_nn::Layer::n_params(&net);
    let map = TapeMap::from_graph(&[2], n_w, |g, x, w| {
        let x3 = g.powi(x, 3)?;
        Ok(neurohybrid_nn::Layer::forward(&net, g, x3, w)?)
    })
    .unwrap();
    let node = NeuralOde::new(map).unwrap();
    let p = initialize(&net, Init::GlorotUniform, 14);
    check_system(&node, 0.0, &[0.9, -0.4], &p, 110);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn dot_identities_hold_for_every_composition(seed in 0u64..1_000_000, t in -1.0f64..1.0) {
        let (par, p) = lv_ude();
        check_system(&par, t, &vec_of(2, seed, 2.0), &p, seed);

        let (ser, w) = fisher_series(3);
        let y: Vec<f64> = vec_of(9, seed + 5, 1.0).iter().map(|v| 0.5 + 0.4 * v).collect();
        check_system(&ser, t, &y, &w, seed + 7);

        let (ser2, w2) = fisher_series(3);
        let net = mlp(&[2, 3, 1]);
        let nn = NetworkRhs::pointwise(&net, 9, 1).unwrap().with_time_input().unwrap();
        let nested = Parallel::nested(ser2, nn).unwrap();
        let mut pn = w2;
        pn.extend(vec_of(neurohybrid_nn::Layer::n_params(&net), seed + 9, 0.5));
        check_system(&nested, t, &y, &pn, seed + 11);

        let net2 = mlp(&[3, 4, 2]);
        let pw = NetworkRhs::pointwise(&net2, 4, 2).unwrap().with_features(vec_of(4, seed, 1.0)).unwrap();
        check_system(&pw, t, &vec_of(8, seed + 13, 1.0), &vec_of(neurohybrid_nn::Layer::n_params(&net2), seed + 17, 0.7), seed + 19);
    }
}

/// Central finite difference of `L(p)` along every parameter of a solve.
fn fd_gradient<S: OdeSystem + Clone>(
    problem: &Problem<S>,
    save: &SaveAt,
    loss: &SquaredMisfit,
    ctrl: &PiController,
    which: &[usize],
) -> Vec<f64> {
    use neurohybrid_solve::sensitivity::Loss;
    let value = |pr: &Problem<S>| {
        let sol = solve(pr, &Tsit5, ctrl, save).unwrap();
        let mut cot = vec![0.0; sol.ys().len()];
        loss.value_and_cotangents(sol.ts(), sol.ys(), &mut cot)
    };
    which
        .iter()
        .map(|&j| {
            let h = 1e-6 * problem.params()[j].abs().max(1.0);
            let mut a = problem.clone();
            a.params_mut()[j] += h;
            let mut b = problem.clone();
            b.params_mut()[j] -= h;
            (value(&a) - value(&b)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn sensitivities_through_a_ude_agree_with_finite_differences() {
    let (par, p) = lv_ude();
    let problem = Problem::new(par, [0.44249296, 4.6280594], p.clone(), (0.0, 1.5));
    let ts: Vec<f64> = (1..=5).map(|k| 0.3 * k as f64).collect();
    let save = SaveAt::Times(ts);
    let targets = vec_of(10, 123, 1.0).iter().map(|v| 2.0 + v).collect::<Vec<_>>();
    let loss = SquaredMisfit::new(targets);
    let ctrl = PiController::new(1e-10, 1e-10);
    let adj = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    let fwd = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::all()).unwrap();
    let which = [0, 1, 2, 3, 4, 9, 21, p.len() - 1];
    let fd = fd_gradient(&problem, &save, &loss, &ctrl, &which);
    for (k, &j) in which.iter().enumerate() {
        let scale = fd[k].abs().max(1.0);
        assert!((adj.dl_dp[j] - fd[k]).abs() < 1e-5 * scale, "adjoint dL/dp[{j}]");
        assert!((fwd.dl_dp[j] - fd[k]).abs() < 1e-5 * scale, "forward dL/dp[{j}]");
    }
    for j in 0..2 {
        assert!((adj.dl_dy0[j] - fwd.dl_dy0[j]).abs() < 1e-6 * fwd.dl_dy0[j].abs().max(1.0));
    }
}

#[test]
fn sensitivities_through_a_series_map_agree_with_finite_differences() {
    let side = 4;
    let (ser, w) = fisher_series(side);
    let problem = Problem::new(ser, FisherKpp::seed(side), w.clone(), (0.0, 2.0));
    let save = SaveAt::Times(vec![1.0, 2.0]);
    let loss = SquaredMisfit::new(vec![0.3; 2 * side * side]);
    let ctrl = PiController::new(1e-10, 1e-10);
    let adj = gradient(&problem, &Tsit5, &ctrl, &save, &loss, &DiscreteAdjoint::default()).unwrap();
    let fwd =
        gradient(&problem, &Tsit5, &ctrl, &save, &loss, &ForwardSensitivity::params()).unwrap();
    let which: Vec<usize> = (0..w.len()).step_by(3).collect();
    let fd = fd_gradient(&problem, &save, &loss, &ctrl, &which);
    for (k, &j) in which.iter().enumerate() {
        let scale = fd[k].abs().max(1.0);
        assert!((adj.dl_dp[j] - fd[k]).abs() < 1e-5 * scale, "adjoint dL/dp[{j}]");
        assert!((fwd.dl_dp[j] - fd[k]).abs() < 1e-5 * scale, "forward dL/dp[{j}]");
    }
}
