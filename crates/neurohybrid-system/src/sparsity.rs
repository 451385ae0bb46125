//! Fixed sparsity patterns, CSR matrices and Jacobians by column coloring.
//!
//! Storage is nalgebra-sparse's CSR (`row_offsets`, `col_indices`, `values`): a plain layout that
//! `neurohybrid-linalg`'s sparse LU reads without conversion. The pattern is fixed for a whole
//! solve; only `values_mut()` is refilled.

use crate::error::{Result, SystemError};
use crate::traits::{Jacobian, Jvp, OdeSystem, Vjp};
use nalgebra_sparse::pattern::SparsityPattern;
use std::cell::RefCell;

/// The sparse matrix type used for Jacobians (`f64` CSR).
pub type CsrMatrix = nalgebra_sparse::CsrMatrix<f64>;

/// Build a pattern from per-row column lists. Columns are sorted and deduplicated here, so
/// callers can list them in any order.
pub fn pattern_from_rows(n_cols: usize, rows: &[Vec<usize>]) -> Result<SparsityPattern> {
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut indices = Vec::new();
    offsets.push(0);
    for (i, row) in rows.iter().enumerate() {
        let mut r = row.clone();
        r.sort_unstable();
        r.dedup();
        if let Some(&c) = r.last()
            && c >= n_cols
        {
            return Err(SystemError::InvalidPattern {
                reason: format!("row {i} has column {c} >= {n_cols}"),
            });
        }
        indices.extend_from_slice(&r);
        offsets.push(indices.len());
    }
    SparsityPattern::try_from_offsets_and_indices(rows.len(), n_cols, offsets, indices)
        .map_err(|e| SystemError::InvalidPattern { reason: e.to_string() })
}

/// The dense `n × n` pattern (every entry structurally nonzero).
pub fn dense_pattern(n: usize) -> SparsityPattern {
    let rows: Vec<Vec<usize>> = (0..n).map(|_| (0..n).collect()).collect();
    pattern_from_rows(n, &rows).expect("a dense pattern is always valid")
}

/// The tridiagonal `n × n` pattern (1D three-point stencils).
pub fn tridiagonal_pattern(n: usize) -> SparsityPattern {
    let rows: Vec<Vec<usize>> =
        (0..n).map(|i| (i.saturating_sub(1)..(i + 2).min(n)).collect()).collect();
    pattern_from_rows(n, &rows).expect("a tridiagonal pattern is always valid")
}

/// The union of two patterns of the same shape.
pub fn pattern_union(a: &SparsityPattern, b: &SparsityPattern) -> Result<SparsityPattern> {
    if a.major_dim() != b.major_dim() || a.minor_dim() != b.minor_dim() {
        return Err(SystemError::InvalidPattern {
            reason: format!(
                "union of {}x{} and {}x{} patterns",
                a.major_dim(),
                a.minor_dim(),
                b.major_dim(),
                b.minor_dim()
            ),
        });
    }
    let rows: Vec<Vec<usize>> =
        (0..a.major_dim()).map(|i| a.lane(i).iter().chain(b.lane(i)).copied().collect()).collect();
    pattern_from_rows(a.minor_dim(), &rows)
}

/// A CSR matrix with the given pattern and zero values.
pub fn zeros_with_pattern(pattern: &SparsityPattern) -> CsrMatrix {
    CsrMatrix::try_from_pattern_and_values(pattern.clone(), vec![0.0; pattern.nnz()])
        .expect("values have exactly nnz entries")
}

/// Position of `(row, col)` in the value array of a CSR pattern, if it is a structural nonzero.
pub fn entry_index(pattern: &SparsityPattern, row: usize, col: usize) -> Option<usize> {
    let lane = pattern.get_lane(row)?;
    lane.binary_search(&col).ok().map(|k| pattern.major_offsets()[row] + k)
}

/// A coloring of the columns of a pattern such that no two columns of one color share a row:
/// one JVP with the sum of a color's unit vectors then recovers all of that color's entries.
///
/// This is a distance-2 coloring of the bipartite row/column graph (Curtis–Powell–Reid 1974;
/// Gebremedhin, Manne & Pothen, SIAM Review 47, 2005), computed greedily in natural column
/// order: each column takes the smallest color not used by a column it shares a row with. For
/// banded patterns this gives the optimal `bandwidth` colors.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnColoring {
    colors: Vec<usize>,
    n_colors: usize,
}

impl ColumnColoring {
    /// Color the columns of `pattern` greedily (distance-2).
    pub fn greedy(pattern: &SparsityPattern) -> Self {
        let n_cols = pattern.minor_dim();
        let col_rows = pattern.transpose(); // column -> rows
        let mut colors = vec![usize::MAX; n_cols];
        // `forbidden[c] == j` marks color c as taken for column j; avoids clearing per column.
        let mut forbidden: Vec<usize> = Vec::new();
        let mut n_colors = 0;
        for j in 0..n_cols {
            for &i in col_rows.lane(j) {
                for &k in pattern.lane(i) {
                    let c = colors[k];
                    if c != usize::MAX {
                        forbidden[c] = j;
                    }
                }
            }
            let c = (0..n_colors).find(|&c| forbidden[c] != j).unwrap_or(n_colors);
            if c == n_colors {
                n_colors += 1;
                forbidden.push(usize::MAX);
            }
            colors[j] = c;
        }
        Self { colors, n_colors }
    }

    /// The color of each column.
    pub fn colors(&self) -> &[usize] {
        &self.colors
    }

    /// The number of colors (= JVPs per Jacobian).
    pub fn n_colors(&self) -> usize {
        self.n_colors
    }
}

/// Everything needed to assemble a sparse Jacobian from JVPs: the pattern, its coloring and, per
/// color, which value slots (and rows) one JVP fills. Built once; [`JacobianColoring::fill`]
/// then allocates nothing.
#[derive(Debug, Clone)]
pub struct JacobianColoring {
    pattern: SparsityPattern,
    coloring: ColumnColoring,
    /// `slots[color_offsets[c]..color_offsets[c + 1]]` are `(value index, row)` pairs of color c.
    color_offsets: Vec<usize>,
    slots: Vec<(usize, usize)>,
}

impl JacobianColoring {
    /// Analyse a square pattern.
    pub fn new(pattern: SparsityPattern) -> Result<Self> {
        if pattern.major_dim() != pattern.minor_dim() {
            return Err(SystemError::InvalidPattern {
                reason: format!(
                    "a Jacobian pattern must be square, got {}x{}",
                    pattern.major_dim(),
                    pattern.minor_dim()
                ),
            });
        }
        let coloring = ColumnColoring::greedy(&pattern);
        let mut per_color: Vec<Vec<(usize, usize)>> = vec![Vec::new(); coloring.n_colors()];
        for i in 0..pattern.major_dim() {
            let start = pattern.major_offsets()[i];
            for (k, &j) in pattern.lane(i).iter().enumerate() {
                per_color[coloring.colors()[j]].push((start + k, i));
            }
        }
        let mut color_offsets = vec![0];
        let mut slots = Vec::with_capacity(pattern.nnz());
        for list in per_color {
            slots.extend(list);
            color_offsets.push(slots.len());
        }
        Ok(Self { pattern, coloring, color_offsets, slots })
    }

    /// The analysed pattern.
    pub fn pattern(&self) -> &SparsityPattern {
        &self.pattern
    }

    /// The column coloring.
    pub fn coloring(&self) -> &ColumnColoring {
        &self.coloring
    }

    /// Fill `out`'s values with `∂f/∂y` using one JVP per color. `seed` and `tangent` are
    /// caller-owned scratch of length `n` (so this stays allocation-free).
    #[allow(clippy::too_many_arguments)] // the scratch buffers are the point: no allocation here
    pub fn fill<S: Jvp + ?Sized>(
        &self,
        system: &S,
        t: f64,
        y: &[f64],
        p: &[f64],
        seed: &mut [f64],
        tangent: &mut [f64],
        out: &mut CsrMatrix,
    ) {
        let colors = self.coloring.colors();
        let values = out.values_mut();
        for c in 0..self.coloring.n_colors() {
            for (s, &col_color) in seed.iter_mut().zip(colors) {
                *s = if col_color == c { 1.0 } else { 0.0 };
            }
            system.jvp(t, y, p, seed, &[], tangent);
            for &(slot, row) in &self.slots[self.color_offsets[c]..self.color_offsets[c + 1]] {
                values[slot] = tangent[row];
            }
        }
    }
}

/// Gives any [`Jvp`] system a [`Jacobian`] with a pattern the caller hands over — the default
/// way to get a sparse Jacobian (coloring + JVPs). Scratch lives in a `RefCell`, so a
/// `ColoredJacobian` is `Send` but not `Sync`; clone it per thread.
#[derive(Debug, Clone)]
pub struct ColoredJacobian<S> {
    system: S,
    coloring: JacobianColoring,
    scratch: RefCell<(Vec<f64>, Vec<f64>)>,
}

impl<S: Jvp> ColoredJacobian<S> {
    /// Wrap `system`; `pattern` must be `n × n` and contain every structural nonzero of `∂f/∂y`
    /// (entries outside it are silently dropped — sparsity is handed over, never guessed).
    pub fn new(system: S, pattern: SparsityPattern) -> Result<Self> {
        let n = system.n_states();
        if pattern.major_dim() != n {
            return Err(SystemError::LengthMismatch {
                what: "Jacobian pattern rows",
                expected: n,
                found: pattern.major_dim(),
            });
        }
        let coloring = JacobianColoring::new(pattern)?;
        Ok(Self { system, coloring, scratch: RefCell::new((vec![0.0; n], vec![0.0; n])) })
    }

    /// Wrap `system` with a dense pattern (`n` JVPs per Jacobian).
    pub fn dense(system: S) -> Self {
        let n = system.n_states();
        Self::new(system, dense_pattern(n)).expect("a dense pattern matches the system")
    }

    /// The wrapped system.
    pub fn inner(&self) -> &S {
        &self.system
    }

    /// Number of JVPs one Jacobian costs.
    pub fn n_colors(&self) -> usize {
        self.coloring.coloring().n_colors()
    }
}

impl<S: OdeSystem> OdeSystem for ColoredJacobian<S> {
    fn n_states(&self) -> usize {
        self.system.n_states()
    }
    fn n_params(&self) -> usize {
        self.system.n_params()
    }
    fn rhs(&self, t: f64, y: &[f64], p: &[f64], dy: &mut [f64]) {
        self.system.rhs(t, y, p, dy)
    }
}

impl<S: Vjp> Vjp for ColoredJacobian<S> {
    fn vjp(&self, t: f64, y: &[f64], p: &[f64], w: &[f64], w_y: &mut [f64], w_p: &mut [f64]) {
        self.system.vjp(t, y, p, w, w_y, w_p)
    }
}

impl<S: Jvp> Jvp for ColoredJacobian<S> {
    fn jvp(&self, t: f64, y: &[f64], p: &[f64], v_y: &[f64], v_p: &[f64], out: &mut [f64]) {
        self.system.jvp(t, y, p, v_y, v_p, out)
    }
}

impl<S: Jvp> Jacobian for ColoredJacobian<S> {
    fn sparsity(&self) -> &SparsityPattern {
        self.coloring.pattern()
    }
    fn jacobian(&self, t: f64, y: &[f64], p: &[f64], out: &mut CsrMatrix) {
        let mut scratch = self.scratch.borrow_mut();
        let (seed, tangent) = &mut *scratch;
        self.coloring.fill(&self.system, t, y, p, seed, tangent, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tridiagonal_coloring_uses_three_colors() {
        let c = ColumnColoring::greedy(&tridiagonal_pattern(10));
        assert_eq!(c.n_colors(), 3);
        assert_eq!(&c.colors()[..4], &[0, 1, 2, 0]);
    }

    #[test]
    fn dense_coloring_uses_n_colors() {
        assert_eq!(ColumnColoring::greedy(&dense_pattern(5)).n_colors(), 5);
    }

    #[test]
    fn coloring_is_valid_on_an_irregular_pattern() {
        let rows = vec![vec![0, 3], vec![1, 2], vec![0, 1, 4], vec![3], vec![2, 4]];
        let p = pattern_from_rows(5, &rows).unwrap();
        let c = ColumnColoring::greedy(&p);
        for i in 0..5 {
            let lane = p.lane(i);
            for (a, &ja) in lane.iter().enumerate() {
                for &jb in &lane[a + 1..] {
                    assert_ne!(c.colors()[ja], c.colors()[jb], "row {i} cols {ja},{jb}");
                }
            }
        }
    }

    #[test]
    fn pattern_from_rows_rejects_out_of_range() {
        let err = pattern_from_rows(2, &[vec![0, 2]]).unwrap_err();
        assert!(matches!(err, SystemError::InvalidPattern { .. }));
    }

    #[test]
    fn union_and_entry_index() {
        let a = pattern_from_rows(3, &[vec![0], vec![1], vec![2]]).unwrap();
        let b = pattern_from_rows(3, &[vec![2], vec![], vec![0]]).unwrap();
        let u = pattern_union(&a, &b).unwrap();
        assert_eq!(u.nnz(), 5);
        assert_eq!(entry_index(&u, 0, 2), Some(1));
        assert_eq!(entry_index(&u, 1, 0), None);
    }
}
