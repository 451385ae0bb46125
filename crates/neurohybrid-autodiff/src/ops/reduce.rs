//! Reductions: `sum`, `mean`, `dot` (to a scalar) and `sum_axis`.

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var, numel};
use crate::ops::Op;

/// `y[o, i] = Σ_l a[o, l, i]` for `a` viewed as `[outer, len, inner]`.
pub(crate) fn sum_axis_fwd(a: &[f64], outer: usize, len: usize, inner: usize, y: &mut [f64]) {
    y.fill(0.0);
    if inner == 0 {
        return;
    }
    for o in 0..outer {
        let yrow = &mut y[o * inner..(o + 1) * inner];
        for arow in a[o * len * inner..(o + 1) * len * inner].chunks_exact(inner) {
            for (yv, &av) in yrow.iter_mut().zip(arow) {
                *yv += av;
            }
        }
    }
}

/// `ca[o, l, i] += w[o, i]` (the broadcast back along the summed axis).
pub(crate) fn sum_axis_vjp(w: &[f64], outer: usize, len: usize, inner: usize, ca: &mut [f64]) {
    if inner == 0 {
        return;
    }
    for o in 0..outer {
        let wrow = &w[o * inner..(o + 1) * inner];
        for crow in ca[o * len * inner..(o + 1) * len * inner].chunks_exact_mut(inner) {
            for (c, &wv) in crow.iter_mut().zip(wrow) {
                *c += wv;
            }
        }
    }
}

impl Graph {
    /// Sum of all elements → rank-0.
    pub fn sum(&mut self, a: Var) -> Result<Var> {
        let ia = self.check(a)?;
        Ok(self.push(Vec::new(), Op::Sum(ia)))
    }

    /// Mean of all elements → rank-0 (an empty operand gives NaN, like `0/0`).
    pub fn mean(&mut self, a: Var) -> Result<Var> {
        let ia = self.check(a)?;
        Ok(self.push(Vec::new(), Op::Mean(ia)))
    }

    /// `Σ a_i b_i` over operands of the same shape → rank-0.
    pub fn dot(&mut self, a: Var, b: Var) -> Result<Var> {
        let (ia, ib) = (self.check(a)?, self.check(b)?);
        let (sa, sb) = (self.shape_of(a)?, self.shape_of(b)?);
        if sa != sb {
            return Err(AutodiffError::ShapeMismatch { op: "dot", left: sa, right: sb });
        }
        Ok(self.push(Vec::new(), Op::Dot(ia, ib)))
    }

    /// Sum over `axis`; the result drops that axis (`[m,n]`, axis 0 → `[n]`, axis 1 → `[m]`).
    pub fn sum_axis(&mut self, a: Var, axis: usize) -> Result<Var> {
        let ia = self.check(a)?;
        let sa = self.shape_of(a)?;
        if axis >= sa.len() {
            return Err(AutodiffError::InvalidAxis { op: "sum_axis", axis, rank: sa.len() });
        }
        let (outer, len, inner) = (numel(&sa[..axis]), sa[axis], numel(&sa[axis + 1..]));
        let mut shape = sa;
        shape.remove(axis);
        Ok(self.push(shape, Op::SumAxis { a: ia, outer, len, inner }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_axis_of_a_3d_block() {
        // a[o, l, i] = 100 o + 10 l + i with shape [2, 3, 2].
        let a: Vec<f64> =
            (0..12).map(|n| (100 * (n / 6) + 10 * ((n / 2) % 3) + n % 2) as f64).collect();
        let mut y = vec![0.0; 4];
        sum_axis_fwd(&a, 2, 3, 2, &mut y);
        assert_eq!(y, vec![30.0, 33.0, 330.0, 333.0]);
        let mut ca = vec![0.0; 12];
        sum_axis_vjp(&[1.0, 2.0, 3.0, 4.0], 2, 3, 2, &mut ca);
        assert_eq!(&ca[..6], &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    }

    #[test]
    fn axis_and_shape_errors() {
        let mut g = Graph::new();
        let a = g.input("a", &[2, 3]).unwrap();
        let b = g.input("b", &[3, 2]).unwrap();
        assert!(matches!(g.sum_axis(a, 2), Err(AutodiffError::InvalidAxis { rank: 2, .. })));
        assert!(matches!(g.dot(a, b), Err(AutodiffError::ShapeMismatch { op: "dot", .. })));
        let s = g.sum_axis(a, 0).unwrap();
        assert_eq!(g.shape(s).unwrap(), &[3]);
    }
}
