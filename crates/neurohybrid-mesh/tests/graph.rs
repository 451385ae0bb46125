//! Graph Laplacians, the Jacobi eigen-solver and network diffusion: algebraic invariants on
//! random graphs (proptest), and the diffusion operator through the system traits and the
//! autodiff tape.

use std::sync::Arc;

use approx::assert_relative_eq;
use nalgebra_sparse::CsrMatrix;
use neurohybrid_autodiff::{Graph as Tape, check};
use neurohybrid_mesh::graph::symmetric_eigenvalues;
use neurohybrid_mesh::{
    Connectome, Graph, GraphDiffusion, GraphDiffusionOp, GraphError, LaplacianKind,
};
use neurohybrid_system::{Jacobian, Jvp, OdeSystem, Vjp};
use proptest::prelude::*;

/// Random undirected graphs: up to 24 nodes, each pair an edge with probability ~1/3,
/// weights spanning four orders of magnitude, occasional self-loops.
fn graphs() -> impl Strategy<Value = Graph> {
    (1usize..24).prop_flat_map(|n| {
        let pairs = n * (n + 1) / 2;
        prop::collection::vec((0u8..3, -2.0f64..2.0), pairs).prop_map(move |cells| {
            let mut edges = Vec::new();
            let mut k = 0;
            for i in 0..n {
                for j in i..n {
                    let (keep, logw) = cells[k];
                    k += 1;
                    // Self-loops rarer than edges.
                    if keep == 0 && (i != j || logw > 1.5) {
                        edges.push((i, j, 10f64.powf(logw)));
                    }
                }
            }
            Graph::from_edges(n, &edges).expect("valid random edges")
        })
    })
}

fn dense(n: usize, m: &CsrMatrix<f64>) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for (r, c, &v) in m.triplet_iter() {
        out[r * n + c] = v;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn combinatorial_laplacian_rows_sum_to_zero_symmetric_psd(g in graphs()) {
        let n = g.n_nodes();
        let l = g.laplacian_dense(LaplacianKind::Combinatorial);
        let scale = g.degrees().iter().copied().fold(1.0, f64::max);
        for i in 0..n {
            let row: f64 = l[i * n..(i + 1) * n].iter().sum();
            prop_assert!(row.abs() <= 1e-12 * scale, "row {} sums to {}", i, row);
            for j in 0..n {
                prop_assert_eq!(l[i * n + j], l[j * n + i]);
            }
        }
        let ev = symmetric_eigenvalues(n, &l).unwrap();
        prop_assert!(ev[0] >= -1e-10 * scale, "smallest eigenvalue {}", ev[0]);
        prop_assert!(ev[0].abs() <= 1e-10 * scale, "L·1 = 0, so 0 is an eigenvalue");
        // The multiplicity of 0 is the number of components (Fiedler).
        let zeros = ev.iter().filter(|e| e.abs() <= 1e-9 * scale).count();
        prop_assert_eq!(zeros, g.n_components());
        prop_assert_eq!(ev[1.min(n - 1)] > 1e-9 * scale || n == 1, g.is_connected());
        // Trace = Σ eigenvalues.
        let trace: f64 = (0..n).map(|i| l[i * n + i]).sum();
        prop_assert!((trace - ev.iter().sum::<f64>()).abs() <= 1e-9 * scale * n as f64);
    }

    #[test]
    fn normalized_laplacian_spectrum_lies_in_0_2(g in graphs()) {
        let n = g.n_nodes();
        let ln = g.laplacian_dense(LaplacianKind::Normalized);
        for i in 0..n {
            for j in 0..n {
                prop_assert!((ln[i * n + j] - ln[j * n + i]).abs() <= 1e-15);
            }
        }
        let ev = g.laplacian_spectrum(LaplacianKind::Normalized).unwrap();
        prop_assert!(ev[0] >= -1e-12 && *ev.last().unwrap() <= 2.0 + 1e-12, "{:?}", ev);
    }

    #[test]
    fn max_normalization_is_a_pure_rescaling(g in graphs()) {
        let h = g.normalized_by_max();
        let max = g.max_weight();
        if max > 0.0 {
            prop_assert!((h.max_weight() - 1.0).abs() < 1e-15);
            let (lg, lh) = (g.spectral_bounds(LaplacianKind::Combinatorial).unwrap(),
                            h.spectral_bounds(LaplacianKind::Combinatorial).unwrap());
            prop_assert!((lh.1 * max - lg.1).abs() <= 1e-9 * lg.1.max(1.0));
        }
        prop_assert_eq!(h.components(), g.components());
    }

    #[test]
    fn dense_and_csr_constructors_agree(g in graphs()) {
        let n = g.n_nodes();
        let from_dense = Graph::from_dense(n, &g.weights_dense()).unwrap();
        prop_assert_eq!(&from_dense, &g);
        let from_csr = Graph::from_csr(g.weights()).unwrap();
        prop_assert_eq!(&from_csr, &g);
    }

    #[test]
    fn diffusion_conserves_mass_and_vjp_is_adjoint_of_jvp(
        g in graphs(), beta in 0.0f64..3.0, seed in prop::collection::vec(-1.0f64..1.0, 72)
    ) {
        let n = g.n_nodes();
        let op = GraphDiffusion::new(&g, LaplacianKind::Combinatorial);
        let (y, rest) = seed.split_at(n);
        let (v, rest) = rest.split_at(n);
        let w = &rest[..n];
        let mut dy = vec![0.0; n];
        op.rhs(0.0, y, &[beta], &mut dy);
        let scale = g.degrees().iter().copied().fold(1.0, f64::max);
        prop_assert!(dy.iter().sum::<f64>().abs() <= 1e-11 * scale * beta.max(1.0) * n as f64);
        let vb = 0.3;
        let mut jv = vec![0.0; n];
        Jvp::jvp(&op, 0.0, y, &[beta], v, &[vb], &mut jv);
        let (mut wy, mut wp) = (vec![0.0; n], [0.0]);
        Vjp::vjp(&op, 0.0, y, &[beta], w, &mut wy, &mut wp);
        let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = wy.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() + wp[0] * vb;
        prop_assert!((lhs - rhs).abs() <= 1e-10 * scale * n as f64, "{} vs {}", lhs, rhs);
    }
}

#[test]
fn jacobian_is_minus_beta_laplacian_on_the_handed_over_pattern() {
    let g = Graph::from_edges(4, &[(0, 1, 1.0), (1, 2, 0.5), (2, 3, 2.0), (3, 3, 1.0)]).unwrap();
    let op = GraphDiffusion::new(&g, LaplacianKind::Combinatorial);
    let mut j = op.jacobian_matrix();
    // Pattern: 3 edges × 2 + 4 diagonal entries (the self-loop shares the diagonal slot).
    assert_eq!(Jacobian::sparsity(&op).nnz(), 10);
    op.jacobian(0.0, &[0.0; 4], &[2.0], &mut j);
    let want: Vec<f64> =
        g.laplacian_dense(LaplacianKind::Combinatorial).iter().map(|v| -2.0 * v).collect();
    assert_eq!(dense(4, &j), want);
    assert_eq!(dense(4, &op.matrix(2.0)), want);
}

#[test]
fn diffusion_relaxes_to_the_mean_on_a_connected_graph() {
    // Explicit Euler with h < 2 / (β λ_max): x → mean(x0) (REFERENCES.md: Σx is conserved).
    let g =
        Graph::from_edges(5, &[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 4, 1.0), (4, 0, 0.5)])
            .unwrap();
    let (l2, lmax) = g.spectral_bounds(LaplacianKind::Combinatorial).unwrap();
    assert!(l2 > 0.0);
    let op = GraphDiffusion::new(&g, LaplacianKind::Combinatorial);
    let beta = 1.0;
    let h = 1.0 / (beta * lmax);
    let mut x = vec![1.0, 0.0, 0.0, 0.0, 0.0];
    let mut dx = vec![0.0; 5];
    for _ in 0..2000 {
        op.apply(beta, &x, &mut dx).unwrap();
        x.iter_mut().zip(&dx).for_each(|(x, d)| *x += h * d);
    }
    for xi in &x {
        assert_relative_eq!(*xi, 0.2, epsilon = 1e-12);
    }
}

#[test]
fn tape_op_matches_the_direct_operator_and_finite_differences() {
    let g = Graph::from_edges(3, &[(0, 1, 1.0), (1, 2, 2.0), (0, 2, 0.5)]).unwrap();
    let op = GraphDiffusion::new(&g, LaplacianKind::Combinatorial);
    let mut tape = Tape::new();
    let u = tape.input("u", &[3]).unwrap();
    let p = tape.input("p", &[1]).unwrap();
    let y = tape.custom(Arc::new(GraphDiffusionOp::new(op.clone())), &[u, p]).unwrap();
    let compiled = tape.compile(&[y]).unwrap();
    let (u0, beta) = ([0.5, -1.0, 2.0], [0.8]);
    let mut ws = compiled.workspace();
    compiled.forward(&mut ws, &[&u0, &beta]).unwrap();
    let mut direct = [0.0; 3];
    op.apply(beta[0], &u0, &mut direct).unwrap();
    assert_eq!(ws.output(0), direct);
    let w = [1.0, 0.5, -2.0];
    let fd = check::check_vjp(&compiled, &[&u0, &beta], &[&w]).unwrap();
    assert!(fd.max_rel_err < 1e-8, "{fd:?}");
    let dot =
        check::check_jvp_vjp_dot(&compiled, &[&u0, &beta], &[&[0.1, 0.2, 0.3], &[0.7]], &[&w])
            .unwrap();
    assert!(dot.rel_err < 1e-14, "{dot:?}");
    // Operands of the wrong shape are rejected when the graph is built.
    let err = tape.custom(Arc::new(GraphDiffusionOp::new(op)), &[u]).unwrap_err();
    assert!(err.to_string().contains("mesh.graph_diffusion"), "{err}");
}

#[test]
fn connectome_metadata_is_validated() {
    let g = Graph::from_edges(2, &[(0, 1, 1.0)]).unwrap();
    assert!(matches!(
        Connectome::new(g.clone(), vec!["a".into()]),
        Err(GraphError::LengthMismatch { what: "labels", expected: 2, got: 1 })
    ));
    let c = Connectome::new(g.clone(), vec!["a".into(), "b".into()]).unwrap();
    assert_eq!(c.region("b"), Some(1));
    assert!(matches!(
        c.clone().with_centres(vec![[0.0; 3], [f64::NAN, 0.0, 0.0]]),
        Err(GraphError::InvalidValue { what: "centre", index: 1, .. })
    ));
    assert!(matches!(
        c.clone().with_tract_lengths(vec![0.0, -1.0, 1.0, 0.0]),
        Err(GraphError::InvalidValue { what: "tract length", index: 1, .. })
    ));
    let c = c.with_tract_lengths(vec![0.0, 12.5, 12.5, 0.0]).unwrap();
    assert_eq!(c.tract_lengths().unwrap()[1], 12.5);
    assert_eq!(Connectome::unlabelled(g).labels(), ["region_0", "region_1"]);
}
