//! `TapeSystem` against hand-written derivatives of a forced Lotka–Volterra model, signature
//! validation, and allocation-free replays (counting global allocator: this binary only).

use neurohybrid_alloc_count::{Counting, allocations};
use neurohybrid_autodiff::Graph;
use neurohybrid_system::{
    ColoredJacobian, Jacobian, Jvp, OdeSystem, SystemError, TapeSystem, Vjp, dense_pattern,
};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `x' = αx − βxy + sin t`, `y' = δxy − γy` with `p = [α, β, γ, δ]`.
fn recorded() -> TapeSystem {
    let mut g = Graph::new();
    let t = g.input("t", &[]).unwrap();
    let y = g.input("y", &[2]).unwrap();
    let p = g.input("p", &[4]).unwrap();
    let x0 = g.slice(y, 0, 1).unwrap();
    let x1 = g.slice(y, 1, 1).unwrap();
    let pk: Vec<_> = (0..4).map(|k| g.slice(p, k, 1).unwrap()).collect();
    let xy = g.mul(x0, x1).unwrap();
    let a = g.mul(pk[0], x0).unwrap();
    let b = g.mul(pk[1], xy).unwrap();
    let st = g.sin(t).unwrap();
    let f0 = g.sub(a, b).unwrap();
    let f0 = g.add(f0, st).unwrap();
    let c = g.mul(pk[3], xy).unwrap();
    let d = g.mul(pk[2], x1).unwrap();
    let f1 = g.sub(c, d).unwrap();
    let f = g.concat(&[f0, f1]).unwrap();
    TapeSystem::new(g.compile(&[f]).unwrap()).unwrap()
}

fn hand_rhs(t: f64, y: &[f64], p: &[f64]) -> [f64; 2] {
    [p[0] * y[0] - p[1] * y[0] * y[1] + t.sin(), p[3] * y[0] * y[1] - p[2] * y[1]]
}

fn hand_jy(y: &[f64], p: &[f64]) -> [[f64; 2]; 2] {
    [[p[0] - p[1] * y[1], -p[1] * y[0]], [p[3] * y[1], p[3] * y[0] - p[2]]]
}

fn hand_jp(y: &[f64]) -> [[f64; 4]; 2] {
    [[y[0], -y[0] * y[1], 0.0, 0.0], [0.0, 0.0, -y[1], y[0] * y[1]]]
}

#[test]
#[allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas
fn replays_match_hand_derivatives_without_allocating() {
    let sys = recorded();
    assert_eq!((sys.n_states(), sys.n_params()), (2, 4));
    let (t, y, p) = (0.7, [1.3, 0.6], [1.5, 1.0, 3.0, 1.0]);
    let (w, vy, vp) = ([0.4, -1.1], [0.2, 0.9], [0.1, -0.3, 0.5, 0.7]);
    let (jy, jp) = (hand_jy(&y, &p), hand_jp(&y));
    let mut dy = [0.0; 2];
    let (mut wy, mut wp, mut jv) = ([0.0; 2], [0.0; 4], [0.0; 2]);
    let mut jac = sys.jacobian_matrix();
    let before = allocations();
    for k in 0..100 {
        let yk = [y[0] + 1e-3 * k as f64, y[1]]; // a new point each time: no cached forward
        sys.rhs(t, &yk, &p, &mut dy);
        sys.vjp(t, &yk, &p, &w, &mut wy, &mut wp);
        sys.jvp(t, &yk, &p, &vy, &vp, &mut jv);
        sys.jacobian(t, &yk, &p, &mut jac);
    }
    assert_eq!(allocations() - before, 0, "replays allocate nothing");

    sys.rhs(t, &y, &p, &mut dy);
    let expect = hand_rhs(t, &y, &p);
    for i in 0..2 {
        assert!((dy[i] - expect[i]).abs() < 1e-14);
    }
    sys.vjp(t, &y, &p, &w, &mut wy, &mut wp);
    sys.jvp(t, &y, &p, &vy, &vp, &mut jv);
    sys.jacobian(t, &y, &p, &mut jac);
    for j in 0..2 {
        let e: f64 = (0..2).map(|i| w[i] * jy[i][j]).sum();
        assert!((wy[j] - e).abs() < 1e-14, "w_y[{j}]");
    }
    for k in 0..4 {
        let e: f64 = (0..2).map(|i| w[i] * jp[i][k]).sum();
        assert!((wp[k] - e).abs() < 1e-14, "w_p[{k}]");
    }
    for i in 0..2 {
        let e: f64 = (0..2).map(|j| jy[i][j] * vy[j]).sum::<f64>()
            + (0..4).map(|k| jp[i][k] * vp[k]).sum::<f64>();
        assert!((jv[i] - e).abs() < 1e-14, "jvp[{i}]");
        for j in 0..2 {
            let v = jac.get_entry(i, j).unwrap().into_value();
            assert!((v - jy[i][j]).abs() < 1e-14, "J[{i},{j}]");
        }
    }
    // Empty v_p is a zero parameter tangent; empty w_p skips the parameter cotangent.
    sys.jvp(t, &y, &p, &vy, &[], &mut jv);
    let e0: f64 = (0..2).map(|j| jy[0][j] * vy[j]).sum();
    assert!((jv[0] - e0).abs() < 1e-14);
    sys.vjp(t, &y, &p, &w, &mut wy, &mut []);

    // Same answers as the generic colored Jacobian, and from a clone (own workspace).
    let colored = ColoredJacobian::new(sys.clone(), dense_pattern(2)).unwrap();
    let mut jac2 = colored.jacobian_matrix();
    colored.jacobian(t, &y, &p, &mut jac2);
    assert_eq!(jac.values(), jac2.values());
}

#[test]
fn signature_is_checked() {
    let mut g = Graph::new();
    let y = g.input("y", &[3]).unwrap();
    let f = g.scale(y, -1.0).unwrap();
    let sys = TapeSystem::new(g.compile(&[f]).unwrap()).unwrap(); // autonomous, no parameters
    assert_eq!((sys.n_states(), sys.n_params()), (3, 0));
    let mut dy = [0.0; 3];
    sys.rhs(0.0, &[1.0, 2.0, 3.0], &[], &mut dy);
    assert_eq!(dy, [-1.0, -2.0, -3.0]);

    let mut g = Graph::new();
    let x = g.input("x", &[2]).unwrap();
    let tape = g.compile(&[x]).unwrap();
    assert!(matches!(TapeSystem::new(tape), Err(SystemError::TapeSignature { .. })));

    let mut g = Graph::new();
    let y = g.input("y", &[2]).unwrap();
    let s = g.sum(y).unwrap();
    let tape = g.compile(&[s]).unwrap();
    assert!(matches!(TapeSystem::new(tape), Err(SystemError::TapeSignature { .. })));

    let mut g = Graph::new();
    let y = g.input("y", &[2]).unwrap();
    let tape = g.compile(&[y]).unwrap();
    let err = TapeSystem::new(tape).unwrap().with_sparsity(dense_pattern(3)).unwrap_err();
    assert!(matches!(err, SystemError::LengthMismatch { .. }));
}
