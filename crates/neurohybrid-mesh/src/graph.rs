//! Weighted undirected graphs (structural connectomes) and their Laplacians.
//!
//! A [`Graph`] holds symmetric non-negative weights `W` in CSR form (only nonzeros stored),
//! whatever the input was (dense, CSR or an edge list); a [`Connectome`] adds region labels,
//! region centres (mm) and tract lengths (mm). From a graph come
//! - the combinatorial Laplacian `L = diag(W·1) − W` (rows sum to zero, symmetric, positive
//!   semi-definite; the network-diffusion operator of Raj et al. 2012), and
//! - the normalized Laplacian `I − D^{-1/2} W D^{-1/2}` (Chung 1997; spectrum in `[0, 2]`),
//!
//! both as CSR matrices whose pattern is `W`'s plus the diagonal, and [`GraphDiffusion`], the
//! operator `dx/dt = −β L x` with `β` as its one parameter, with the same apply / JVP / VJP /
//! sparsity interface as the grid operators. Spectra come from a dense Jacobi eigen-solver
//! ([`symmetric_eigenvalues`]), fine for connectomes of up to a few hundred regions.
//!
//! Self-loops (a nonzero diagonal in `W`, as TVB connectomes have) cancel in the combinatorial
//! Laplacian but enter the degrees of the normalized one; [`Graph::without_self_loops`] drops
//! them when a model should not see them.
//!
//! ```
//! use neurohybrid_mesh::{Graph, GraphDiffusion, LaplacianKind};
//!
//! // A 3-node path with weights 2 and 1.
//! let g = Graph::from_dense(3, &[0.0, 2.0, 0.0, 2.0, 0.0, 1.0, 0.0, 1.0, 0.0])?;
//! let (l2, lmax) = g.spectral_bounds(LaplacianKind::Combinatorial)?;
//! assert!(g.is_connected() && l2 > 0.0 && lmax > l2); // eigenvalues 0, 3 ∓ √3
//! assert!((l2 - (3.0 - 3f64.sqrt())).abs() < 1e-12);
//!
//! // Network diffusion with β = 0.5 /yr on max-normalized weights conserves Σx.
//! let op = GraphDiffusion::new(&g.normalized_by_max(), LaplacianKind::Combinatorial);
//! let mut dx = [0.0; 3];
//! op.apply(0.5, &[1.0, 0.0, 0.0], &mut dx)?;
//! assert!(dx.iter().sum::<f64>().abs() < 1e-15);
//! # Ok::<(), neurohybrid_mesh::MeshError>(())
//! ```

mod connectome;
mod diffusion;
mod eigen;

pub use connectome::Connectome;
pub use diffusion::{GraphDiffusion, GraphDiffusionOp};
pub use eigen::symmetric_eigenvalues;

use nalgebra_sparse::CsrMatrix;

/// What can be wrong with a graph built from in-memory data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The graph has no node.
    #[error("the graph has no node")]
    Empty,
    /// A dense weight matrix has the wrong number of entries for `n × n`.
    #[error("weights for {n} nodes need {expected} entries, got {got}")]
    NotSquare {
        /// Nodes.
        n: usize,
        /// `n²`.
        expected: usize,
        /// Entries given.
        got: usize,
    },
    /// A weight is NaN or infinite.
    #[error("non-finite weight at ({row}, {col})")]
    NonFinite {
        /// Row (node) index.
        row: usize,
        /// Column (node) index.
        col: usize,
    },
    /// A weight is negative.
    #[error("negative weight {value} at ({row}, {col})")]
    NegativeWeight {
        /// Row (node) index.
        row: usize,
        /// Column (node) index.
        col: usize,
        /// The weight.
        value: f64,
    },
    /// `W[row, col] ≠ W[col, row]` beyond the tolerance of [`Graph::from_dense`].
    #[error("weights not symmetric: W[{row},{col}] = {w_rc} but W[{col},{row}] = {w_cr}")]
    NotSymmetric {
        /// Row index.
        row: usize,
        /// Column index.
        col: usize,
        /// `W[row, col]`.
        w_rc: f64,
        /// `W[col, row]`.
        w_cr: f64,
    },
    /// A node index (edge list, labels, region lookup) is out of range.
    #[error("node {node} out of range for a graph of {n} nodes")]
    NodeOutOfRange {
        /// The index given.
        node: usize,
        /// Number of nodes.
        n: usize,
    },
    /// A per-node or per-edge array (labels, centres, tract lengths, a state vector) has the
    /// wrong length.
    #[error("{what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was checked.
        what: &'static str,
        /// The length expected.
        expected: usize,
        /// The length found.
        got: usize,
    },
    /// A coordinate or tract length is NaN/infinite (or a tract length is negative).
    #[error("invalid {what} at index {index}: {value}")]
    InvalidValue {
        /// What holds it (`"centre"`, `"tract length"`).
        what: &'static str,
        /// Its index (node, or `row * n + col`).
        index: usize,
        /// The value.
        value: f64,
    },
    /// The Jacobi eigen-solver did not reach its tolerance (not expected for finite input).
    #[error("symmetric eigen-solver did not converge in {sweeps} sweeps")]
    EigenNoConvergence {
        /// Sweeps done.
        sweeps: usize,
    },
}

/// `Result` with [`GraphError`].
pub type Result<T> = std::result::Result<T, GraphError>;

/// Which Laplacian an operator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LaplacianKind {
    /// `L = diag(W·1) − W`: conserves `Σ x` under `dx/dt = −β L x` (`1ᵀ L = 0`).
    #[default]
    Combinatorial,
    /// `I − D^{-1/2} W D^{-1/2}`: scale-free spectrum in `[0, 2]`; an isolated node gets
    /// `L_ii = 0` (Chung's convention), so it stays a null direction.
    Normalized,
}

/// A weighted undirected graph: `n` nodes, symmetric non-negative weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    weights: CsrMatrix<f64>,
}

impl Graph {
    /// A graph from a dense row-major `n × n` weight matrix that must be symmetric up to a
    /// relative tolerance of `1e-12 · max|W|` (the stored graph is then exactly symmetric:
    /// `(W + Wᵀ)/2`). Zeros are not stored.
    ///
    /// # Errors
    /// [`GraphError::Empty`], [`GraphError::NotSquare`], [`GraphError::NonFinite`],
    /// [`GraphError::NegativeWeight`], [`GraphError::NotSymmetric`].
    pub fn from_dense(n: usize, w: &[f64]) -> Result<Self> {
        Self::dense_checked(n, w, true)
    }

    /// Like [`Graph::from_dense`] for a possibly asymmetric (directed) `W`: the graph gets
    /// `(W + Wᵀ)/2`, the usual undirected reading of a directed tractography matrix.
    ///
    /// # Errors
    /// As [`Graph::from_dense`] without [`GraphError::NotSymmetric`].
    pub fn from_dense_symmetrized(n: usize, w: &[f64]) -> Result<Self> {
        Self::dense_checked(n, w, false)
    }

    fn dense_checked(n: usize, w: &[f64], require_symmetric: bool) -> Result<Self> {
        if n == 0 {
            return Err(GraphError::Empty);
        }
        let expected = n.checked_mul(n).ok_or(GraphError::NotSquare {
            n,
            expected: usize::MAX,
            got: w.len(),
        })?;
        if w.len() != expected {
            return Err(GraphError::NotSquare { n, expected, got: w.len() });
        }
        let mut max = 0.0f64;
        for (k, &v) in w.iter().enumerate() {
            let (row, col) = (k / n, k % n);
            if !v.is_finite() {
                return Err(GraphError::NonFinite { row, col });
            }
            if v < 0.0 {
                return Err(GraphError::NegativeWeight { row, col, value: v });
            }
            max = max.max(v);
        }
        let tol = 1e-12 * max;
        let mut offsets = Vec::with_capacity(n + 1);
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        offsets.push(0);
        for r in 0..n {
            for c in 0..n {
                let (a, b) = (w[r * n + c], w[c * n + r]);
                if require_symmetric && (a - b).abs() > tol {
                    return Err(GraphError::NotSymmetric { row: r, col: c, w_rc: a, w_cr: b });
                }
                let v = 0.5 * (a + b);
                if v != 0.0 {
                    cols.push(c);
                    vals.push(v);
                }
            }
            offsets.push(cols.len());
        }
        Ok(Self::from_parts(n, offsets, cols, vals))
    }

    /// A graph from undirected edges `(i, j, w)`; repeated edges add up, `(i, j)` and `(j, i)`
    /// are the same edge, `i == j` is a self-loop.
    ///
    /// # Errors
    /// [`GraphError::Empty`], [`GraphError::NodeOutOfRange`], [`GraphError::NonFinite`],
    /// [`GraphError::NegativeWeight`].
    pub fn from_edges(n: usize, edges: &[(usize, usize, f64)]) -> Result<Self> {
        if n == 0 {
            return Err(GraphError::Empty);
        }
        let mut entries = Vec::with_capacity(2 * edges.len());
        for &(i, j, v) in edges {
            for node in [i, j] {
                if node >= n {
                    return Err(GraphError::NodeOutOfRange { node, n });
                }
            }
            if !v.is_finite() {
                return Err(GraphError::NonFinite { row: i, col: j });
            }
            if v < 0.0 {
                return Err(GraphError::NegativeWeight { row: i, col: j, value: v });
            }
            entries.push((i, j, v));
            if i != j {
                entries.push((j, i, v));
            }
        }
        entries.sort_by_key(|&(i, j, _)| (i, j));
        let mut offsets = vec![0; n + 1];
        let mut cols: Vec<usize> = Vec::with_capacity(entries.len());
        let mut vals: Vec<f64> = Vec::with_capacity(entries.len());
        let mut last = None;
        for (i, j, v) in entries {
            if last == Some((i, j)) {
                *vals.last_mut().expect("a previous entry exists") += v;
            } else {
                cols.push(j);
                vals.push(v);
                offsets[i + 1] += 1;
                last = Some((i, j));
            }
        }
        for r in 0..n {
            offsets[r + 1] += offsets[r];
        }
        // Drop explicit zeros so the pattern is the set of edges.
        let w = CsrMatrix::try_from_csr_data(n, n, offsets, cols, vals)
            .expect("entries are sorted and in range");
        Ok(Self::from_csr_unchecked(drop_zeros(&w)))
    }

    /// A graph from a CSR weight matrix, checked like [`Graph::from_dense`] (square, finite,
    /// non-negative, symmetric within `1e-12 · max|W|`); explicit zeros are dropped.
    ///
    /// # Errors
    /// As [`Graph::from_dense`].
    pub fn from_csr(w: &CsrMatrix<f64>) -> Result<Self> {
        let n = w.nrows();
        if n == 0 {
            return Err(GraphError::Empty);
        }
        if w.ncols() != n {
            return Err(GraphError::NotSquare {
                n,
                expected: n.saturating_mul(n),
                got: n.saturating_mul(w.ncols()),
            });
        }
        let mut max = 0.0f64;
        for (row, col, &v) in w.triplet_iter() {
            if !v.is_finite() {
                return Err(GraphError::NonFinite { row, col });
            }
            if v < 0.0 {
                return Err(GraphError::NegativeWeight { row, col, value: v });
            }
            max = max.max(v);
        }
        let w = drop_zeros(w);
        let tol = 1e-12 * max;
        let get = |m: &CsrMatrix<f64>, r: usize, c: usize| {
            let row = m.row(r);
            row.col_indices().binary_search(&c).map(|k| row.values()[k]).unwrap_or(0.0)
        };
        let mut vals = w.values().to_vec();
        for ((row, col, &a), v) in w.triplet_iter().zip(vals.iter_mut()) {
            let b = get(&w, col, row);
            if (a - b).abs() > tol || (b == 0.0 && a != 0.0) {
                return Err(GraphError::NotSymmetric { row, col, w_rc: a, w_cr: b });
            }
            *v = 0.5 * (a + b);
        }
        let (offsets, cols, _) = w.disassemble();
        Ok(Self::from_parts(n, offsets, cols, vals))
    }

    fn from_parts(n: usize, offsets: Vec<usize>, cols: Vec<usize>, vals: Vec<f64>) -> Self {
        let w = CsrMatrix::try_from_csr_data(n, n, offsets, cols, vals)
            .expect("rows built in order with sorted, in-range columns");
        Self::from_csr_unchecked(w)
    }

    fn from_csr_unchecked(weights: CsrMatrix<f64>) -> Self {
        Self { weights }
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.weights.nrows()
    }

    /// Number of undirected edges with nonzero weight (self-loops count once).
    pub fn n_edges(&self) -> usize {
        self.weights.triplet_iter().filter(|&(r, c, _)| r <= c).count()
    }

    /// The weight matrix (symmetric, nonzeros only).
    pub fn weights(&self) -> &CsrMatrix<f64> {
        &self.weights
    }

    /// The weights as a dense row-major `n × n` matrix.
    pub fn weights_dense(&self) -> Vec<f64> {
        let n = self.n_nodes();
        let mut out = vec![0.0; n * n];
        for (r, c, &v) in self.weights.triplet_iter() {
            out[r * n + c] = v;
        }
        out
    }

    /// The weight of edge `(i, j)` (0 without an edge), or `None` if a node is out of range.
    pub fn weight(&self, i: usize, j: usize) -> Option<f64> {
        let n = self.n_nodes();
        if i >= n || j >= n {
            return None;
        }
        let row = self.weights.row(i);
        Some(row.col_indices().binary_search(&j).map(|k| row.values()[k]).unwrap_or(0.0))
    }

    /// Weighted degrees `d_i = Σ_j W_ij` (self-loops included).
    pub fn degrees(&self) -> Vec<f64> {
        (0..self.n_nodes()).map(|i| self.weights.row(i).values().iter().sum()).collect()
    }

    /// The largest weight (0 for a graph without edges).
    pub fn max_weight(&self) -> f64 {
        self.weights.values().iter().copied().fold(0.0, f64::max)
    }

    /// The same graph with weights divided by the largest weight, so they lie in `[0, 1]`
    /// (the usual normalization of fibre counts before network diffusion). A graph without
    /// edges is returned unchanged.
    pub fn normalized_by_max(&self) -> Graph {
        let max = self.max_weight();
        let mut g = self.clone();
        if max > 0.0 {
            g.weights.values_mut().iter_mut().for_each(|v| *v /= max);
        }
        g
    }

    /// The same graph without self-loops (zero diagonal).
    pub fn without_self_loops(&self) -> Graph {
        let n = self.n_nodes();
        let mut edges = Vec::with_capacity(self.weights.nnz());
        for (r, c, &v) in self.weights.triplet_iter() {
            if r < c {
                edges.push((r, c, v));
            }
        }
        Graph::from_edges(n, &edges).expect("edges of a valid graph are valid")
    }

    /// Connected component of each node (components numbered from 0 in order of their
    /// smallest node), by breadth-first search over nonzero edges.
    pub fn components(&self) -> Vec<usize> {
        let n = self.n_nodes();
        let mut comp = vec![usize::MAX; n];
        let mut queue = std::collections::VecDeque::new();
        let mut next = 0;
        for start in 0..n {
            if comp[start] != usize::MAX {
                continue;
            }
            comp[start] = next;
            queue.push_back(start);
            while let Some(i) = queue.pop_front() {
                for &j in self.weights.row(i).col_indices() {
                    if comp[j] == usize::MAX {
                        comp[j] = next;
                        queue.push_back(j);
                    }
                }
            }
            next += 1;
        }
        comp
    }

    /// Number of connected components.
    pub fn n_components(&self) -> usize {
        self.components().into_iter().max().map_or(0, |m| m + 1)
    }

    /// Whether every node can reach every other one (then `λ₂(L) > 0`).
    pub fn is_connected(&self) -> bool {
        self.n_components() == 1
    }

    /// The Laplacian of the given kind as CSR; its pattern is `W`'s plus the full diagonal.
    pub fn laplacian(&self, kind: LaplacianKind) -> CsrMatrix<f64> {
        let n = self.n_nodes();
        let deg = self.degrees();
        let inv_sqrt: Vec<f64> =
            deg.iter().map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 }).collect();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut cols = Vec::with_capacity(self.weights.nnz() + n);
        let mut vals = Vec::with_capacity(self.weights.nnz() + n);
        offsets.push(0);
        for i in 0..n {
            let row = self.weights.row(i);
            let diag = match kind {
                LaplacianKind::Combinatorial => deg[i],
                LaplacianKind::Normalized if deg[i] > 0.0 => 1.0,
                LaplacianKind::Normalized => 0.0,
            };
            let mut diag_done = false;
            for (&j, &w) in row.col_indices().iter().zip(row.values()) {
                if j > i && !diag_done {
                    cols.push(i);
                    vals.push(diag);
                    diag_done = true;
                }
                let off = match kind {
                    LaplacianKind::Combinatorial => -w,
                    LaplacianKind::Normalized => -w * inv_sqrt[i] * inv_sqrt[j],
                };
                if j == i {
                    // The self-loop: `d_i − w_ii` (combinatorial), `1 − w_ii/d_i` (normalized).
                    cols.push(i);
                    vals.push(diag + off);
                    diag_done = true;
                } else {
                    cols.push(j);
                    vals.push(off);
                }
            }
            if !diag_done {
                cols.push(i);
                vals.push(diag);
            }
            offsets.push(cols.len());
        }
        CsrMatrix::try_from_csr_data(n, n, offsets, cols, vals)
            .expect("columns emitted in increasing order")
    }

    /// The Laplacian as a dense row-major `n × n` matrix.
    pub fn laplacian_dense(&self, kind: LaplacianKind) -> Vec<f64> {
        let n = self.n_nodes();
        let mut out = vec![0.0; n * n];
        for (r, c, &v) in self.laplacian(kind).triplet_iter() {
            out[r * n + c] = v;
        }
        out
    }

    /// All eigenvalues of the Laplacian, ascending (dense Jacobi: `O(n³)` per sweep, meant for
    /// connectomes of up to a few hundred nodes).
    ///
    /// # Errors
    /// [`GraphError::EigenNoConvergence`] (not expected: weights are finite).
    pub fn laplacian_spectrum(&self, kind: LaplacianKind) -> Result<Vec<f64>> {
        symmetric_eigenvalues(self.n_nodes(), &self.laplacian_dense(kind))
    }

    /// `(λ₂, λ_max)` of the Laplacian: the algebraic connectivity (Fiedler 1973; zero exactly
    /// when the graph is disconnected) and the largest eigenvalue (which bounds the stable
    /// explicit step of network diffusion: `h ≤ 2 / (β λ_max)`). For one node, `(0, λ₁)`.
    ///
    /// # Errors
    /// As [`Graph::laplacian_spectrum`].
    pub fn spectral_bounds(&self, kind: LaplacianKind) -> Result<(f64, f64)> {
        let ev = self.laplacian_spectrum(kind)?;
        let last = *ev.last().expect("a graph has at least one node");
        Ok((ev.get(1).copied().unwrap_or(0.0), last))
    }
}

/// Copies `w` without its explicit zeros.
fn drop_zeros(w: &CsrMatrix<f64>) -> CsrMatrix<f64> {
    let n = w.nrows();
    let mut offsets = Vec::with_capacity(n + 1);
    let mut cols = Vec::with_capacity(w.nnz());
    let mut vals = Vec::with_capacity(w.nnz());
    offsets.push(0);
    for i in 0..n {
        let row = w.row(i);
        for (&j, &v) in row.col_indices().iter().zip(row.values()) {
            if v != 0.0 {
                cols.push(j);
                vals.push(v);
            }
        }
        offsets.push(cols.len());
    }
    CsrMatrix::try_from_csr_data(n, w.ncols(), offsets, cols, vals)
        .expect("a subset of a valid pattern is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path3() -> Graph {
        Graph::from_edges(3, &[(0, 1, 1.0), (1, 2, 2.0)]).unwrap()
    }

    #[test]
    fn laplacian_of_a_path() {
        let l = path3().laplacian_dense(LaplacianKind::Combinatorial);
        assert_eq!(l, [1.0, -1.0, 0.0, -1.0, 3.0, -2.0, 0.0, -2.0, 2.0]);
        let (l2, lmax) = path3().spectral_bounds(LaplacianKind::Combinatorial).unwrap();
        // Eigenvalues of [[1,-1,0],[-1,3,-2],[0,-2,2]]: 0 and 3 ± √3.
        assert!((l2 - (3.0 - 3f64.sqrt())).abs() < 1e-12);
        assert!((lmax - (3.0 + 3f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn self_loops_cancel_in_the_combinatorial_laplacian() {
        let g = Graph::from_edges(2, &[(0, 1, 1.0), (0, 0, 5.0)]).unwrap();
        assert_eq!(g.laplacian_dense(LaplacianKind::Combinatorial), [1.0, -1.0, -1.0, 1.0]);
        assert_eq!(g.without_self_loops().weight(0, 0), Some(0.0));
        // Normalized: d0 = 6, d1 = 1 → L00 = 1 − 5/6.
        let ln = g.laplacian_dense(LaplacianKind::Normalized);
        assert!((ln[0] - 1.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn validation_names_the_offending_entry() {
        assert_eq!(Graph::from_dense(0, &[]), Err(GraphError::Empty));
        assert!(matches!(
            Graph::from_dense(2, &[0.0; 3]),
            Err(GraphError::NotSquare { got: 3, .. })
        ));
        assert!(matches!(
            Graph::from_dense(2, &[0.0, 1.0, 2.0, 0.0]),
            Err(GraphError::NotSymmetric { row: 0, col: 1, .. })
        ));
        assert!(matches!(
            Graph::from_dense(2, &[0.0, -1.0, -1.0, 0.0]),
            Err(GraphError::NegativeWeight { row: 0, col: 1, .. })
        ));
        assert!(matches!(
            Graph::from_dense(2, &[0.0, f64::NAN, 1.0, 0.0]),
            Err(GraphError::NonFinite { row: 0, col: 1 })
        ));
        let g = Graph::from_dense_symmetrized(2, &[0.0, 1.0, 3.0, 0.0]).unwrap();
        assert_eq!(g.weight(1, 0), Some(2.0));
        assert!(matches!(
            Graph::from_edges(2, &[(0, 2, 1.0)]),
            Err(GraphError::NodeOutOfRange { node: 2, n: 2 })
        ));
    }

    #[test]
    fn connectivity_and_components() {
        let g = Graph::from_edges(4, &[(0, 1, 1.0), (2, 3, 1.0)]).unwrap();
        assert_eq!(g.components(), [0, 0, 1, 1]);
        assert!(!g.is_connected());
        let (l2, _) = g.spectral_bounds(LaplacianKind::Combinatorial).unwrap();
        assert!(l2.abs() < 1e-12);
        assert!(path3().is_connected());
    }
}
