//! The compile-time fusion of `matmul → bias add → activation` into one dense instruction:
//! derivative properties of every fused form, agreement with the unfused tape, the cases the
//! pass must leave alone, and the no-zero-fill reverse sweep (first writers overwrite).

use std::sync::Arc;

use neurohybrid_autodiff::{Graph, Result, Tape, Var};
use proptest::prelude::*;

use crate::{Dom, POOL, check_case, values};

/// Builds one graph, compiles it fused and unfused, and returns both (fused first).
fn both(build: impl Fn(&mut Graph) -> Result<Var>) -> (Tape, Tape) {
    let mut g = Graph::new();
    let out = build(&mut g).unwrap();
    (g.compile(&[out]).unwrap(), g.compile_unfused(&[out]).unwrap())
}

fn instr_names(t: &Tape) -> String {
    format!("{t:?}")
}

/// The dense forms the pass recognises, as property cases: (x [3,k], W [k,4], b [4]).
fn dense(g: &mut Graph, x: &[Var], form: usize) -> Result<Var> {
    let z = g.matmul(x[0], x[1])?;
    match form {
        0 => {
            let z = g.add(z, x[2])?;
            g.tanh(z)
        }
        1 => {
            // Bias on the left.
            let z = g.add(x[2], z)?;
            g.sigmoid(z)
        }
        2 => g.add(z, x[2]),
        // Without bias (x and W away from zero, k = 1: |z| ≥ 0.01, away from relu's kink).
        3 => g.relu(z),
        _ => {
            let t = g.tanh(z)?;
            // Use the bias so every input matters.
            g.mul(t, x[2])
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// `⟨w, J v⟩ = ⟨Jᵀ w, v⟩` and VJP vs central differences, for every fused form.
    #[test]
    fn fused_dense_forms(
        form in 0usize..5,
        xs in values(Dom::AwayFromZero, 3 + 4 + 4 + 2 * 3 + 2 * 4),
        pool in prop::collection::vec(-1.0..1.0f64, POOL),
    ) {
        let k = if form == 3 { 1 } else { 2 };
        let shapes: [&[usize]; 3] = [&[3, k], &[k, 4], &[4]];
        let n = 3 * k + k * 4 + 4;
        check_case(&shapes, &xs[..n], &pool, |g, x| dense(g, x, form))?;
    }

    /// A two-layer MLP with a loss: the fused tape's value equals the unfused one bit for bit,
    /// and its VJP and JVP agree to rounding, with every pruning pattern of the parameters.
    #[test]
    fn fused_mlp_matches_unfused(
        xs in values(Dom::Any, 6 * 3 + 3 * 5 + 5 + 5 * 2 + 2 + 6 * 2),
        pool in prop::collection::vec(-1.0..1.0f64, POOL),
        mask in 0u32..64,
    ) {
        let shapes: [&[usize]; 6] = [&[6, 3], &[3, 5], &[5], &[5, 2], &[2], &[6, 2]];
        let (fused, plain) = both(|g| {
            let v: Vec<Var> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| g.input(&format!("x{i}"), s))
                .collect::<Result<_>>()?;
            let h = g.matmul(v[0], v[1])?;
            let h = g.add(h, v[2])?;
            let h = g.tanh(h)?;
            let o = g.matmul(h, v[3])?;
            let o = g.add(o, v[4])?;
            let d = g.sub(o, v[5])?;
            let d = g.square(d)?;
            g.mean(d)
        });
        prop_assert!(fused.n_instructions() < plain.n_instructions());
        prop_assert!(instr_names(&fused).contains("dense_tanh"), "{fused:?}");
        let mut parts = Vec::new();
        let mut off = 0;
        for s in shapes {
            let n: usize = s.iter().product();
            parts.push(&xs[off..off + n]);
            off += n;
        }
        let (mut wf, mut wp) = (fused.workspace(), plain.workspace());
        fused.forward(&mut wf, &parts).unwrap();
        plain.forward(&mut wp, &parts).unwrap();
        prop_assert_eq!(wf.output(0)[0].to_bits(), wp.output(0)[0].to_bits());

        let lens: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        let mut gf: Vec<Vec<f64>> =
            lens.iter().enumerate().map(|(i, &n)| vec![0.0; if mask >> i & 1 == 1 { n } else { 0 }]).collect();
        let mut gp = gf.clone();
        // Twice on the same workspace with different seeds: nothing stale survives.
        for seed in [pool[0], 1.0] {
            let mut sf: Vec<&mut [f64]> = gf.iter_mut().map(|v| v.as_mut_slice()).collect();
            fused.vjp(&mut wf, &[&[seed]], &mut sf).unwrap();
            let mut sp: Vec<&mut [f64]> = gp.iter_mut().map(|v| v.as_mut_slice()).collect();
            plain.vjp(&mut wp, &[&[seed]], &mut sp).unwrap();
            for (a, b) in gf.iter().zip(&gp) {
                for (p, q) in a.iter().zip(b) {
                    prop_assert!((p - q).abs() <= 1e-14 * (1.0 + q.abs()), "{p} vs {q}");
                }
            }
        }
        let tans: Vec<&[f64]> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| if mask >> i & 1 == 0 { &pool[i * 40..i * 40 + n] } else { &[][..] })
            .collect();
        let (mut tf, mut tp) = ([0.0], [0.0]);
        fused.jvp(&mut wf, &tans, &mut [&mut tf]).unwrap();
        plain.jvp(&mut wp, &tans, &mut [&mut tp]).unwrap();
        prop_assert!((tf[0] - tp[0]).abs() <= 1e-14 * (1.0 + tp[0].abs()), "{} vs {}", tf[0], tp[0]);
    }
}

/// Intermediates that are shared, or are outputs, stay separate instructions.
#[test]
fn shared_or_output_intermediates_are_not_fused() {
    let mk = |g: &mut Graph| -> Result<(Var, Var, Var)> {
        let x = g.input("x", &[2, 3])?;
        let w = g.input("w", &[3, 4])?;
        let b = g.input("b", &[4])?;
        Ok((x, w, b))
    };
    // The matmul feeds the add and a sum: only the add + tanh could fuse, and they don't
    // (no matmul under them), so nothing changes.
    let (f, p) = both(|g| {
        let (x, w, b) = mk(g)?;
        let z = g.matmul(x, w)?;
        let s = g.sum(z)?;
        let zb = g.add(z, b)?;
        let t = g.tanh(zb)?;
        let ts = g.sum(t)?;
        g.add(ts, s)
    });
    assert_eq!(f.n_instructions(), p.n_instructions(), "{f:?}");
    // The pre-activation is also used: matmul + bias fuse, the tanh stays.
    let (f, _) = both(|g| {
        let (x, w, b) = mk(g)?;
        let z = g.matmul(x, w)?;
        let zb = g.add(z, b)?;
        let t = g.tanh(zb)?;
        g.mul(t, zb)
    });
    let names = instr_names(&f);
    assert!(names.contains("\"dense\"") && names.contains("tanh"), "{names}");
    // The pre-activation is an output: same.
    let mut g = Graph::new();
    let (x, w, b) = mk(&mut g).unwrap();
    let z = g.matmul(x, w).unwrap();
    let zb = g.add(z, b).unwrap();
    let t = g.tanh(zb).unwrap();
    let tape = g.compile(&[t, zb]).unwrap();
    assert_eq!(tape.n_instructions(), 2, "{tape:?}");
    // A column-broadcast add is not a bias.
    let (f, p) = both(|g| {
        let x = g.input("x", &[2, 3])?;
        let w = g.input("w", &[3, 4])?;
        let c = g.input("c", &[2, 1])?;
        let z = g.matmul(x, w)?;
        let z = g.add(z, c)?;
        g.tanh(z)
    });
    assert_eq!(f.n_instructions(), p.n_instructions(), "{f:?}");
}

/// The reverse sweep never zero-fills: first writers overwrite, partial writers (slice,
/// gather) clear their region first, outputs are seeded by copy (or added when one node is
/// an output twice). Repeated VJPs with changing seeds and pruning must each be exact.
#[test]
fn reverse_sweep_without_zero_fill_is_exact_on_reuse() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3]).unwrap();
    let y = g.input("y", &[6]).unwrap();
    let xs = g.reshape(x, &[6]).unwrap();
    let s = g.slice(xs, 1, 3).unwrap(); // partial writer of x's region
    let gth = g.gather(y, Arc::from(vec![5, 5, 0])).unwrap(); // partial, repeated
    let m = g.mul(s, gth).unwrap();
    let c = g.concat(&[m, s, m]).unwrap(); // repeated operand
    let sq = g.mul(c, c).unwrap();
    let o1 = g.sum(sq).unwrap();
    let o2 = g.mul(xs, y).unwrap(); // also consumes x's region through the reshape
    let tape = g.compile(&[o1, o2, o1]).unwrap(); // o1 listed twice
    let xv = [0.3, -1.2, 0.7, 2.0, -0.4, 1.1];
    let yv = [1.5, -0.5, 0.25, 0.8, -2.0, 0.6];
    let mut ws = tape.workspace();
    tape.forward(&mut ws, &[&xv, &yv]).unwrap();
    let seeds: [([f64; 1], [f64; 6], [f64; 1]); 3] = [
        ([1.0], [0.5, -1.0, 2.0, 0.0, 1.0, -0.5], [0.25]),
        ([-2.0], [0.0; 6], [0.0]),
        ([0.5], [1.0; 6], [3.0]),
    ];
    for (i, (a, b, c)) in seeds.iter().enumerate() {
        // Fresh workspace: the reference.
        let mut fresh = tape.workspace();
        tape.forward(&mut fresh, &[&xv, &yv]).unwrap();
        let (mut rx, mut ry) = ([0.0; 6], [0.0; 6]);
        tape.vjp(&mut fresh, &[a, b, c], &mut [&mut rx, &mut ry]).unwrap();
        // Reused workspace, alternating pruning patterns.
        let (mut gx, mut gy) = ([9.0; 6], [9.0; 6]);
        if i % 2 == 0 {
            tape.vjp(&mut ws, &[a, b, c], &mut [&mut gx, &mut []]).unwrap();
            tape.vjp(&mut ws, &[a, b, c], &mut [&mut gx, &mut gy]).unwrap();
        } else {
            tape.vjp(&mut ws, &[a, b, c], &mut [&mut [], &mut gy]).unwrap();
            tape.vjp(&mut ws, &[a, b, c], &mut [&mut gx, &mut gy]).unwrap();
        }
        assert_eq!((gx, gy), (rx, ry), "seed set {i}");
        // And against the hand derivative of x: o1 = Σ c², c = [s∘g, s, s∘g].
        let gv = [yv[5], yv[5], yv[0]];
        let mut ex = [0.0; 6];
        for j in 0..3 {
            let sj = xv[1 + j];
            ex[1 + j] = (a[0] + c[0]) * (4.0 * sj * gv[j] * gv[j] + 2.0 * sj);
        }
        for j in 0..6 {
            ex[j] += b[j] * yv[j];
        }
        for j in 0..6 {
            assert!((gx[j] - ex[j]).abs() < 1e-13, "x[{j}]: {} vs {}", gx[j], ex[j]);
        }
    }
}
