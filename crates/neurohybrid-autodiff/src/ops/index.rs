//! Data movement: `slice`, `concat`, `reshape`, `gather`, `scatter_add`.

use std::sync::Arc;

use crate::error::{AutodiffError, Result};
use crate::graph::{Graph, Var, numel};
use crate::ops::Op;

impl Graph {
    /// The flat elements `start .. start + len` of `a` → rank-1 `[len]`.
    pub fn slice(&mut self, a: Var, start: usize, len: usize) -> Result<Var> {
        let ia = self.check(a)?;
        let n = numel(self.shape(a)?);
        let end = start.saturating_add(len);
        if end > n {
            return Err(AutodiffError::IndexOutOfBounds { op: "slice", index: end, len: n });
        }
        Ok(self.push(vec![len], Op::Slice { a: ia, start }))
    }

    /// The flat data of all `parts`, one after another → rank-1.
    pub fn concat(&mut self, parts: &[Var]) -> Result<Var> {
        if parts.is_empty() {
            return Err(AutodiffError::ArityMismatch { op: "concat", expected: "≥ 1", got: 0 });
        }
        let mut args = Vec::with_capacity(parts.len());
        let mut total = 0;
        for &p in parts {
            args.push(self.check(p)?);
            total += numel(self.shape(p)?);
        }
        Ok(self.push(vec![total], Op::Concat(args)))
    }

    /// The same data under a new `shape` with the same element count. Free at replay: the
    /// result shares its operand's value, cotangent and tangent buffers.
    pub fn reshape(&mut self, a: Var, shape: &[usize]) -> Result<Var> {
        let ia = self.check(a)?;
        let sa = self.shape_of(a)?;
        if numel(&sa) != numel(shape) {
            return Err(AutodiffError::ShapeMismatch {
                op: "reshape",
                left: sa,
                right: shape.to_vec(),
            });
        }
        Ok(self.push(shape.to_vec(), Op::Reshape(ia)))
    }

    /// `y[i] = a[idx[i]]` on the flat data → rank-1 `[idx.len()]`. Indices may repeat.
    pub fn gather(&mut self, a: Var, idx: Arc<[usize]>) -> Result<Var> {
        let ia = self.check(a)?;
        let n = numel(self.shape(a)?);
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(AutodiffError::IndexOutOfBounds { op: "gather", index: bad, len: n });
        }
        let len = idx.len();
        Ok(self.push(vec![len], Op::Gather { a: ia, idx }))
    }

    /// `y = 0; y[idx[i]] += a[i]` → rank-1 `[out_len]` (`a` has `idx.len()` elements).
    /// The adjoint of [`gather`](Graph::gather).
    pub fn scatter_add(&mut self, a: Var, idx: Arc<[usize]>, out_len: usize) -> Result<Var> {
        let ia = self.check(a)?;
        let sa = self.shape_of(a)?;
        if numel(&sa) != idx.len() {
            return Err(AutodiffError::ShapeMismatch {
                op: "scatter_add",
                left: sa,
                right: vec![idx.len()],
            });
        }
        if let Some(&bad) = idx.iter().find(|&&i| i >= out_len) {
            return Err(AutodiffError::IndexOutOfBounds {
                op: "scatter_add",
                index: bad,
                len: out_len,
            });
        }
        Ok(self.push(vec![out_len], Op::ScatterAdd { a: ia, idx }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_errors_at_build_time() {
        let mut g = Graph::new();
        let a = g.input("a", &[2, 3]).unwrap();
        assert!(matches!(g.slice(a, 4, 3), Err(AutodiffError::IndexOutOfBounds { index: 7, .. })));
        assert!(g.slice(a, 0, usize::MAX).is_err());
        assert!(g.gather(a, Arc::from(vec![0, 6])).is_err());
        assert!(g.scatter_add(a, Arc::from(vec![0; 5]), 3).is_err());
        assert!(g.scatter_add(a, Arc::from(vec![0, 1, 2, 3, 4, 5]), 3).is_err());
        assert!(matches!(g.reshape(a, &[5]), Err(AutodiffError::ShapeMismatch { .. })));
        assert!(matches!(g.concat(&[]), Err(AutodiffError::ArityMismatch { .. })));
        let r = g.reshape(a, &[3, 2]).unwrap();
        let c = g.concat(&[a, r]).unwrap();
        assert_eq!(g.shape(c).unwrap(), &[12]);
    }
}
