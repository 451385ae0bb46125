//! Integration tests of neurohybrid-autodiff (one binary; `tests/alloc.rs` is separate because
//! it installs a counting global allocator).

mod api;
mod dfdx_oracle;
mod fused;
mod ops;

use neurohybrid_autodiff::check::{check_jvp_vjp_dot, check_vjp};
use neurohybrid_autodiff::{Graph, Result, Var};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Dot-product identity tolerance (relative to Σ|products|).
pub const DOT_TOL: f64 = 1e-12;
/// VJP vs central differences tolerance (normwise relative).
pub const FD_TOL: f64 = 1e-6;

/// Input value domains that keep each op smooth.
#[derive(Clone, Copy, Debug)]
pub enum Dom {
    /// Uniform in `[-2, 2]`.
    Any,
    /// Uniform in `[0.2, 3]` (ln, sqrt, negative powers, denominators).
    Pos,
    /// `±[0.1, 2]`: away from relu's kink.
    AwayFromZero,
}

pub fn values(dom: Dom, n: usize) -> BoxedStrategy<Vec<f64>> {
    match dom {
        Dom::Any => prop::collection::vec(-2.0..2.0f64, n).boxed(),
        Dom::Pos => prop::collection::vec(0.2..3.0f64, n).boxed(),
        Dom::AwayFromZero => prop::collection::vec(
            (0.1..2.0f64, any::<bool>()).prop_map(|(m, s)| if s { m } else { -m }),
            n,
        )
        .boxed(),
    }
}

/// Random tangents / cotangents are drawn from this pool (longer than any test's need).
pub const POOL: usize = 512;

pub fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Builds `build(inputs)` on inputs of `shapes` filled from `xs`, compiles it and checks
/// (1) `⟨w, J v⟩ = ⟨Jᵀ w, v⟩` and (2) the VJP against central differences.
pub fn check_case(
    shapes: &[&[usize]],
    xs: &[f64],
    pool: &[f64],
    build: impl Fn(&mut Graph, &[Var]) -> Result<Var>,
) -> std::result::Result<(), TestCaseError> {
    let mut g = Graph::new();
    let vars: Vec<Var> =
        shapes.iter().enumerate().map(|(i, s)| g.input(&format!("x{i}"), s).unwrap()).collect();
    let out = build(&mut g, &vars).unwrap();
    let tape = g.compile(&[out]).unwrap();
    let mut parts = Vec::new();
    let mut off = 0;
    for s in shapes {
        parts.push(&xs[off..off + numel(s)]);
        off += numel(s);
    }
    let total = off;
    let n_out = tape.output_len(0);
    assert!(total + n_out <= POOL, "pool too small");
    let mut vs = Vec::new();
    let mut o = 0;
    for s in shapes {
        vs.push(&pool[o..o + numel(s)]);
        o += numel(s);
    }
    let w = &pool[o..o + n_out];
    let dot = check_jvp_vjp_dot(&tape, &parts, &vs, &[w]).unwrap();
    prop_assert!(dot.rel_err < DOT_TOL, "dot test: {dot:?}");
    let fd = check_vjp(&tape, &parts, &[w]).unwrap();
    prop_assert!(fd.max_rel_err < FD_TOL, "fd check: rel err {} ({:?})", fd.max_rel_err, fd);
    Ok(())
}
