//! neurohybrid-linalg: sparse LU symbolic analysis vs numeric refactorization on a 100×100
//! 2D Laplacian (10 000 unknowns), the split that implicit solvers rely on (the symbolic part is
//! paid once per pattern, the numeric part at every Jacobian refresh), plus solves and GMRES.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use neurohybrid_linalg::{
    Gmres, Ilu0, KrylovConfig, LinearSolver, SparseLu, SparseMatrix, SparsePattern,
};

/// `I + h·(−Δ)` on a `k × k` grid (5-point, Dirichlet): the implicit-Euler matrix of diffusion.
fn w_matrix(k: usize, h: f64) -> SparseMatrix {
    let idx = |i: usize, j: usize| i * k + j;
    let mut t = Vec::with_capacity(5 * k * k);
    for i in 0..k {
        for j in 0..k {
            let p = idx(i, j);
            t.push((p, p, 1.0 + 4.0 * h));
            for (di, dj) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (ni, nj) = (i as i64 + di, j as i64 + dj);
                if (0..k as i64).contains(&ni) && (0..k as i64).contains(&nj) {
                    t.push((p, idx(ni as usize, nj as usize), -h));
                }
            }
        }
    }
    SparseMatrix::from_triplets(k * k, k * k, &t).expect("valid grid")
}

fn sparse_lu(c: &mut Criterion) {
    let w = w_matrix(100, 0.1);
    let n = w.nrows();
    let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.01).sin()).collect();
    let mut group = c.benchmark_group("linalg/sparse_lu_laplacian_100x100");
    group.sample_size(20);

    group.bench_function("symbolic_only", |bench| {
        bench.iter(|| SparseLu::with_pattern(black_box(w.pattern())).expect("analysis"))
    });
    group.bench_function("symbolic_plus_numeric", |bench| {
        bench.iter(|| {
            // A fresh pattern object defeats reuse: what a solver without it pays per refresh.
            let p = SparsePattern::new(
                n,
                n,
                w.pattern().row_ptr().to_vec(),
                w.pattern().col_idx().to_vec(),
            )
            .expect("valid");
            let m = SparseMatrix::new(p, w.values().to_vec()).expect("valid");
            let mut lu = SparseLu::new();
            lu.factorize(black_box(&m)).expect("factorization");
            lu
        })
    });
    let mut lu = SparseLu::new();
    lu.factorize(&w).expect("factorization");
    group.bench_function("numeric_refactorization", |bench| {
        bench.iter(|| lu.factorize(black_box(&w)).expect("refactorization"))
    });
    let mut x = b.clone();
    group.bench_function("solve", |bench| {
        bench.iter(|| {
            x.copy_from_slice(&b);
            lu.solve_in_place(black_box(&mut x)).expect("solve");
        })
    });
    group.bench_function("solve_transpose", |bench| {
        bench.iter(|| {
            x.copy_from_slice(&b);
            lu.solve_transpose_in_place(black_box(&mut x)).expect("solve");
        })
    });
    group.finish();

    let mut group = c.benchmark_group("linalg/gmres_ilu0_laplacian_100x100");
    group.sample_size(20);
    let mut ilu = Ilu0::new(&w).expect("ilu0");
    let mut gmres = Gmres::new(KrylovConfig::default().rtol(1e-8));
    let mut op = w.clone();
    group.bench_function("ilu0_refresh", |bench| {
        bench.iter(|| ilu.update(black_box(&w)).expect("ilu0"))
    });
    group.bench_function("solve_rtol_1e-8", |bench| {
        bench.iter(|| {
            x.fill(0.0);
            gmres.solve(&mut op, &mut ilu, black_box(&b), &mut x).expect("gmres")
        })
    });
    group.finish();
}

criterion_group!(benches, sparse_lu);
criterion_main!(benches);
