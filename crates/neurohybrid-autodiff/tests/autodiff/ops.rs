//! Property tests for every op: JVP/VJP dot-product identity (1e-12) and VJP against central
//! finite differences (1e-6), on domains where the op is smooth.

use std::sync::Arc;

use neurohybrid_autodiff::{Csr, CustomOp, Graph, Result, Var};
use proptest::prelude::*;

use crate::{Dom, POOL, check_case, values};

fn total_len(shapes: &[&[usize]]) -> usize {
    shapes.iter().map(|s| s.iter().product::<usize>()).sum()
}

/// `op_test!(name, Dom, [shapes...], |g, x| expr)` declares a 32-case property test.
macro_rules! op_test {
    ($name:ident, $dom:expr, [$($s:expr),+], |$g:ident, $x:ident| $body:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]
            #[test]
            fn $name(
                xs in values($dom, total_len(&[$($s),+])),
                pool in prop::collection::vec(-1.0..1.0f64, POOL),
            ) {
                let shapes: &[&[usize]] = &[$($s),+];
                check_case(shapes, &xs, &pool, |$g: &mut Graph, $x: &[Var]| $body)?;
            }
        }
    };
}

const M23: &[usize] = &[2, 3];
const M34: &[usize] = &[3, 4];

// Elementwise unary.
op_test!(neg, Dom::Any, [M23], |g, x| g.neg(x[0]));
op_test!(exp, Dom::Any, [M23], |g, x| g.exp(x[0]));
op_test!(ln, Dom::Pos, [M23], |g, x| g.ln(x[0]));
op_test!(sqrt, Dom::Pos, [M23], |g, x| g.sqrt(x[0]));
op_test!(square, Dom::Any, [M23], |g, x| g.square(x[0]));
op_test!(powi_3, Dom::Any, [M23], |g, x| g.powi(x[0], 3));
op_test!(powi_neg2, Dom::Pos, [M23], |g, x| g.powi(x[0], -2));
op_test!(powi_0, Dom::Any, [M23], |g, x| {
    // x⁰ = 1 has zero derivative; multiply by x so the check has something to compare.
    let p = g.powi(x[0], 0)?;
    g.mul(p, x[0])
});
op_test!(tanh, Dom::Any, [M23], |g, x| g.tanh(x[0]));
op_test!(sigmoid, Dom::Any, [M23], |g, x| g.sigmoid(x[0]));
op_test!(relu, Dom::AwayFromZero, [M23], |g, x| g.relu(x[0]));
op_test!(softplus, Dom::Any, [M23], |g, x| g.softplus(x[0]));
op_test!(sin, Dom::Any, [M23], |g, x| g.sin(x[0]));
op_test!(cos, Dom::Any, [M23], |g, x| g.cos(x[0]));
op_test!(scale, Dom::Any, [M23], |g, x| g.scale(x[0], -2.5));
op_test!(add_scalar, Dom::Any, [M23], |g, x| {
    let s = g.add_scalar(x[0], 1.5)?;
    g.square(s)
});

// Elementwise binary, all broadcasts, both orders.
op_test!(add_same, Dom::Any, [M23, M23], |g, x| g.add(x[0], x[1]));
op_test!(sub_same, Dom::Any, [M23, M23], |g, x| g.sub(x[0], x[1]));
op_test!(mul_same, Dom::Any, [M23, M23], |g, x| g.mul(x[0], x[1]));
op_test!(div_same, Dom::Pos, [M23, M23], |g, x| g.div(x[0], x[1]));
op_test!(add_row, Dom::Any, [M34, &[4]], |g, x| g.add(x[0], x[1]));
op_test!(sub_row_first, Dom::Any, [&[4], M34], |g, x| g.sub(x[0], x[1]));
op_test!(mul_col, Dom::Any, [M34, &[3, 1]], |g, x| g.mul(x[0], x[1]));
op_test!(div_col_first, Dom::Pos, [&[3, 1], M34], |g, x| g.div(x[0], x[1]));
op_test!(mul_scalar, Dom::Any, [&[], M34], |g, x| g.mul(x[0], x[1]));
op_test!(div_by_scalar, Dom::Pos, [M34, &[1]], |g, x| g.div(x[0], x[1]));
op_test!(sub_scalar_rank1, Dom::Any, [&[5], &[]], |g, x| g.sub(x[0], x[1]));
op_test!(mul_self, Dom::Any, [M23], |g, x| g.mul(x[0], x[0]));
op_test!(div_self_row, Dom::Pos, [&[3]], |g, x| {
    let r = g.reshape(x[0], &[1, 3])?;
    g.div(r, x[0])
});

// Dense and sparse products.
op_test!(matmul, Dom::Any, [M34, &[4, 2]], |g, x| g.matmul(x[0], x[1]));
op_test!(matmul_self, Dom::Any, [&[3, 3]], |g, x| g.matmul(x[0], x[0]));

/// A 4×5 CSR with an empty row and a repeated column.
fn csr() -> Arc<Csr> {
    let offsets = vec![0, 2, 2, 5, 6];
    let cols = vec![0, 3, 1, 2, 4, 3];
    let vals = vec![1.5, -2.0, 0.5, 3.0, -1.0, 2.5];
    Arc::new(Csr::try_from_csr_data(4, 5, offsets, cols, vals).unwrap())
}

op_test!(spmv_vec, Dom::Any, [&[5]], |g, x| g.spmv(csr(), x[0]));
op_test!(spmv_block, Dom::Any, [&[5, 3]], |g, x| g.spmv(csr(), x[0]));
op_test!(spmv_values_vec, Dom::Any, [&[6], &[5]], |g, x| g.spmv_values(csr(), x[0], x[1]));
op_test!(spmv_values_block, Dom::Any, [&[6], &[5, 2]], |g, x| g.spmv_values(csr(), x[0], x[1]));

// Reductions.
op_test!(sum, Dom::Any, [M34], |g, x| g.sum(x[0]));
op_test!(mean, Dom::Any, [M34], |g, x| g.mean(x[0]));
op_test!(dot, Dom::Any, [M34, M34], |g, x| g.dot(x[0], x[1]));
op_test!(dot_self, Dom::Any, [&[7]], |g, x| g.dot(x[0], x[0]));
op_test!(sum_axis0, Dom::Any, [M34], |g, x| g.sum_axis(x[0], 0));
op_test!(sum_axis1, Dom::Any, [M34], |g, x| g.sum_axis(x[0], 1));
op_test!(sum_axis_3d, Dom::Any, [&[2, 3, 2]], |g, x| g.sum_axis(x[0], 1));

// Data movement.
op_test!(slice, Dom::Any, [M34], |g, x| g.slice(x[0], 3, 5));
op_test!(concat, Dom::Any, [M23, &[4]], |g, x| g.concat(&[x[0], x[1], x[0]]));
op_test!(reshape, Dom::Any, [M23, &[2, 2]], |g, x| {
    // [2,3] → [3,2] so the matmul only type-checks through the reshape.
    let r = g.reshape(x[0], &[3, 2])?;
    g.matmul(r, x[1])
});
op_test!(gather, Dom::Any, [M23], |g, x| g.gather(x[0], Arc::from(vec![5, 0, 0, 2, 5, 1])));
op_test!(scatter_add, Dom::Any, [&[5]], |g, x| g.scatter_add(
    x[0],
    Arc::from(vec![3, 0, 3, 1, 3]),
    4
));

/// `y = a · exp(b)` elementwise, as a user op.
struct MulExp;

impl CustomOp for MulExp {
    fn name(&self) -> &str {
        "mul_exp"
    }
    fn output_shape(&self, s: &[&[usize]]) -> Result<Vec<usize>> {
        if s.len() != 2 || s[0] != s[1] {
            return Err(neurohybrid_autodiff::AutodiffError::Custom {
                op: "mul_exp".into(),
                message: "needs two operands of equal shape".into(),
            });
        }
        Ok(s[0].to_vec())
    }
    fn forward(&self, x: &[&[f64]], out: &mut [f64]) {
        for i in 0..out.len() {
            out[i] = x[0][i] * x[1][i].exp();
        }
    }
    fn vjp(&self, x: &[&[f64]], out: &[f64], w: &[f64], c: &mut [&mut [f64]]) {
        if !c[0].is_empty() {
            for i in 0..w.len() {
                c[0][i] += w[i] * x[1][i].exp();
            }
        }
        if !c[1].is_empty() {
            for i in 0..w.len() {
                c[1][i] += w[i] * out[i];
            }
        }
    }
    fn jvp(&self, x: &[&[f64]], out: &[f64], t: &[&[f64]], ot: &mut [f64]) {
        for i in 0..ot.len() {
            let a = if t[0].is_empty() { 0.0 } else { t[0][i] * x[1][i].exp() };
            let b = if t[1].is_empty() { 0.0 } else { t[1][i] * out[i] };
            ot[i] = a + b;
        }
    }
}

op_test!(custom, Dom::Any, [M23, M23], |g, x| g.custom(Arc::new(MulExp), &[x[0], x[1]]));
op_test!(custom_repeated_operand, Dom::Any, [M23], |g, x| {
    let r = g.reshape(x[0], &[3, 2])?;
    let r = g.reshape(r, &[2, 3])?;
    g.custom(Arc::new(MulExp), &[x[0], r])
});

// A composite: a small MLP layer with a residual and a loss, every op family at once.
op_test!(composite_mlp, Dom::Any, [&[4, 2], &[2, 3], &[3], &[5]], |g, x| {
    let h = g.matmul(x[0], x[1])?;
    let h = g.add(h, x[2])?;
    let h = g.tanh(h)?;
    let s = g.sum_axis(h, 1)?;
    let sp = g.spmv(csr(), x[3])?;
    let c = g.concat(&[s, sp])?;
    let q = g.softplus(c)?;
    g.mean(q)
});

/// A large matmul (faer's blocked kernels) gets the dot-product test only:
/// finite differences over 2·10⁴ inputs would take minutes.
#[test]
fn matmul_faer_path_dot_identity() {
    let (m, k, n) = (100, 96, 97);
    let mut g = Graph::new();
    let a = g.input("a", &[m, k]).unwrap();
    let b = g.input("b", &[k, n]).unwrap();
    let c = g.matmul(a, b).unwrap();
    let tape = g.compile(&[c]).unwrap();
    let f = |i: usize, s: usize| ((i * s) % 17) as f64 / 8.5 - 1.0;
    let av: Vec<f64> = (0..m * k).map(|i| f(i, 3)).collect();
    let bv: Vec<f64> = (0..k * n).map(|i| f(i, 5)).collect();
    let va: Vec<f64> = (0..m * k).map(|i| f(i, 7)).collect();
    let vb: Vec<f64> = (0..k * n).map(|i| f(i, 11)).collect();
    let w: Vec<f64> = (0..m * n).map(|i| f(i, 13)).collect();
    let d = neurohybrid_autodiff::check::check_jvp_vjp_dot(&tape, &[&av, &bv], &[&va, &vb], &[&w])
        .unwrap();
    assert!(d.rel_err < crate::DOT_TOL, "{d:?}");
}
