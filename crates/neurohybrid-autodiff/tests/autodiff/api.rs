//! The replay contract: error handling, pruning, multiple outputs, reuse across threads.

use std::sync::Arc;

use neurohybrid_autodiff::{AutodiffError, Graph, Tape};

/// f = [sum(y ∘ p), t · sum(y)] with an unused input `q`.
fn two_outputs() -> Tape {
    let mut g = Graph::new();
    let t = g.input("t", &[]).unwrap();
    let y = g.input("y", &[3]).unwrap();
    let p = g.input("p", &[3]).unwrap();
    g.input("q", &[2]).unwrap();
    let yp = g.mul(y, p).unwrap();
    let f0 = g.sum(yp).unwrap();
    let sy = g.sum(y).unwrap();
    let f1 = g.mul(t, sy).unwrap();
    // A dead branch: not reachable from the outputs, so not compiled.
    let dead = g.exp(p).unwrap();
    let _ = g.sum(dead).unwrap();
    g.compile(&[f0, f1]).unwrap()
}

const T: [f64; 1] = [2.0];
const Y: [f64; 3] = [1.0, 2.0, 3.0];
const P: [f64; 3] = [0.5, -1.0, 4.0];
const Q: [f64; 2] = [7.0, 8.0];

#[test]
fn metadata_and_forward_values() {
    let tape = two_outputs();
    assert_eq!(tape.n_inputs(), 4);
    assert_eq!(tape.input_name(2), "p");
    assert_eq!(tape.input_shape(1), &[3]);
    assert_eq!(tape.input_index("q"), Some(3));
    assert_eq!(tape.input_index("z"), None);
    assert!(!tape.input_is_used(3));
    assert_eq!(tape.n_outputs(), 2);
    assert_eq!(tape.output_shape(0), &[] as &[usize]);
    // mul, sum, sum, mul: the dead exp/sum branch is gone.
    assert_eq!(tape.n_instructions(), 4);
    let mut ws = tape.workspace();
    tape.forward(&mut ws, &[&T, &Y, &P, &Q]).unwrap();
    assert_eq!(ws.output(0), &[0.5 - 2.0 + 12.0]);
    assert_eq!(ws.output(1), &[12.0]);
}

#[test]
fn vjp_prunes_empty_slots_and_zeroes_unused_inputs() {
    let tape = two_outputs();
    let mut ws = tape.workspace();
    tape.forward(&mut ws, &[&T, &Y, &P, &Q]).unwrap();
    let (mut wt, mut wy, mut wp, mut wq) = ([9.0], [9.0; 3], [9.0; 3], [9.0; 2]);
    tape.vjp(&mut ws, &[&[1.0], &[10.0]], &mut [&mut wt, &mut wy, &mut wp, &mut wq]).unwrap();
    assert_eq!(wt, [60.0]);
    assert_eq!(wy, [20.5, 19.0, 24.0]);
    assert_eq!(wp, Y);
    assert_eq!(wq, [0.0, 0.0]);
    // Same call with p pruned: the others are unchanged (and overwritten, not accumulated).
    let mut wy2 = [0.0; 3];
    tape.vjp(&mut ws, &[&[1.0], &[10.0]], &mut [&mut wt, &mut wy2, &mut [], &mut []]).unwrap();
    assert_eq!(wy2, wy);
    assert_eq!(wt, [60.0]);
    // Only t: y's cotangent slot is not touched.
    tape.vjp(&mut ws, &[&[1.0], &[0.5]], &mut [&mut wt, &mut [], &mut [], &mut []]).unwrap();
    assert_eq!(wt, [3.0]);
}

#[test]
fn jvp_with_zero_tangent_slots() {
    let tape = two_outputs();
    let mut ws = tape.workspace();
    tape.forward(&mut ws, &[&T, &Y, &P, &Q]).unwrap();
    let (mut d0, mut d1) = ([0.0], [0.0]);
    let vy = [1.0, 0.0, -1.0];
    tape.jvp(&mut ws, &[&[], &vy, &[], &[]], &mut [&mut d0, &mut d1]).unwrap();
    assert_eq!((d0, d1), ([0.5 - 4.0], [0.0]));
    // Switch the tangent to t only: y's stale tangent must not leak in.
    tape.jvp(&mut ws, &[&[1.0], &[], &[], &[]], &mut [&mut d0, &mut d1]).unwrap();
    assert_eq!((d0, d1), ([0.0], [6.0]));
    // An empty output slot is simply not written.
    tape.jvp(&mut ws, &[&[1.0], &vy, &P, &Q], &mut [&mut [], &mut d1]).unwrap();
    assert_eq!(d1, [6.0 + 2.0 * 0.0]);
}

#[test]
fn replays_report_length_errors_instead_of_panicking() {
    let tape = two_outputs();
    let mut ws = tape.workspace();
    let err = |r: Result<(), AutodiffError>| match r {
        Err(AutodiffError::LengthMismatch { expected, got, .. }) => (expected, got),
        other => panic!("expected LengthMismatch, got {other:?}"),
    };
    assert_eq!(tape.vjp(&mut ws, &[&[1.0], &[1.0]], &mut []), Err(AutodiffError::ForwardNotRun));
    assert_eq!(err(tape.forward(&mut ws, &[&T, &Y, &P])), (4, 3));
    assert_eq!(err(tape.forward(&mut ws, &[&T, &Y, &Q, &Q])), (3, 2));
    tape.forward(&mut ws, &[&T, &Y, &P, &Q]).unwrap();
    assert_eq!(err(tape.vjp(&mut ws, &[&[1.0]], &mut [])), (2, 1));
    assert_eq!(err(tape.vjp(&mut ws, &[&[1.0], &[1.0, 2.0]], &mut [])), (1, 2));
    let mut short = [0.0; 2];
    assert_eq!(
        err(tape.vjp(&mut ws, &[&[1.0], &[1.0]], &mut [&mut [], &mut short, &mut [], &mut []])),
        (3, 2)
    );
    assert_eq!(err(tape.jvp(&mut ws, &[&[], &[1.0], &[], &[]], &mut [&mut [], &mut []])), (3, 1));
    assert_eq!(err(tape.jvp(&mut ws, &[&[], &[], &[], &[]], &mut [&mut short, &mut []])), (1, 2));
    let other = two_outputs().workspace();
    let mut other = other;
    assert_eq!(tape.forward(&mut other, &[&T, &Y, &P, &Q]), Err(AutodiffError::WorkspaceMismatch));
}

#[test]
fn build_errors_carry_structured_fields() {
    let mut g = Graph::new();
    let a = g.input("a", &[2, 3]).unwrap();
    let b = g.input("b", &[2, 2]).unwrap();
    assert_eq!(
        g.matmul(a, b),
        Err(AutodiffError::ShapeMismatch { op: "matmul", left: vec![2, 3], right: vec![2, 2] })
    );
    assert!(matches!(g.add(a, b), Err(AutodiffError::ShapeMismatch { op: "add", .. })));
    let v = g.input("v", &[3]).unwrap();
    assert!(matches!(g.matmul(v, a), Err(AutodiffError::RankMismatch { op: "matmul", .. })));
    let csr = Arc::new(neurohybrid_autodiff::Csr::identity(4));
    assert!(matches!(g.spmv(csr.clone(), v), Err(AutodiffError::ShapeMismatch { op: "spmv", .. })));
    assert!(matches!(
        g.spmv_values(csr, v, v),
        Err(AutodiffError::ShapeMismatch { op: "spmv_values", .. })
    ));
    assert_eq!(g.compile(&[]).unwrap_err(), AutodiffError::NoOutputs);
    let msg = g.matmul(a, b).unwrap_err().to_string();
    assert!(msg.contains("matmul") && msg.contains("[2, 3]"), "{msg}");
}

#[test]
fn constants_and_reshape_aliasing() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 2]).unwrap();
    let c = g.constant(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let s = g.scalar(10.0);
    let xc = g.matmul(x, c).unwrap();
    let r = g.reshape(xc, &[4]).unwrap();
    let r2 = g.reshape(x, &[4]).unwrap();
    let sum = g.add(r, r2).unwrap();
    let out = g.mul(sum, s).unwrap();
    let tape = g.compile(&[out, r]).unwrap();
    let mut ws = tape.workspace();
    let x0 = [1.0, 0.0, 0.0, 1.0];
    tape.forward(&mut ws, &[&x0]).unwrap();
    assert_eq!(ws.output(1), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ws.output(0), &[20.0, 20.0, 30.0, 50.0]);
    let mut gx = [0.0; 4];
    tape.vjp(&mut ws, &[&[1.0, 0.0, 0.0, 0.0], &[0.0; 4]], &mut [&mut gx]).unwrap();
    // ∂out0/∂x: 10·(e₀ cᵀ row) + 10·e₀ → [10·1 + 10, 10·3, 0, 0].
    assert_eq!(gx, [20.0, 30.0, 0.0, 0.0]);
}

#[test]
fn one_tape_many_threads() {
    let tape = Arc::new(two_outputs());
    std::thread::scope(|s| {
        for k in 0..4 {
            let tape = tape.clone();
            s.spawn(move || {
                let mut ws = tape.workspace();
                let y = [k as f64, 1.0, 2.0];
                for _ in 0..100 {
                    tape.forward(&mut ws, &[&T, &y, &P, &Q]).unwrap();
                    let mut wp = [0.0; 3];
                    tape.vjp(&mut ws, &[&[1.0], &[0.0]], &mut [&mut [], &mut [], &mut wp, &mut []])
                        .unwrap();
                    assert_eq!(wp, y);
                }
            });
        }
    });
}

#[test]
fn replays_are_deterministic() {
    let tape = two_outputs();
    let mut ws = tape.workspace();
    let run = |ws: &mut neurohybrid_autodiff::Workspace| {
        tape.forward(ws, &[&T, &Y, &P, &Q]).unwrap();
        let mut wy = [0.0; 3];
        tape.vjp(ws, &[&[0.3], &[0.7]], &mut [&mut [], &mut wy, &mut [], &mut []]).unwrap();
        (ws.output(0)[0], wy)
    };
    let first = run(&mut ws);
    assert_eq!(run(&mut ws), first);
    assert_eq!(run(&mut tape.workspace()), first);
}
