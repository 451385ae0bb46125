//! The finite-volume stencil of `∇·(D∇u)` on a masked grid, and its row kernels.
//!
//! Cell-centred finite volumes (LeVeque, *Finite Volume Methods for Hyperbolic Problems*,
//! 2002, ch. 4; the same flux form applies to diffusion): the rate of change of the
//! concentration in cell `i` is the net flux through its faces divided by its volume,
//!
//! ```text
//! (A u)_i = (1 / V) Σ_faces F_ij,   F_ij = D_ij · (V / h_a) · (u_j − u_i) / h_a,
//! ```
//!
//! so `(A u)_i = Σ_j D_ij (u_j − u_i) / h_a²` with `h_a` the spacing along the face normal
//! and `V / h_a` the face area. Faces to inactive cells or out of the box carry no flux: that
//! is the no-flux condition `n·D∇u = 0` at the mask boundary, exact in this form (no ghost
//! cells needed).
//!
//! The face diffusivity is the harmonic mean `D_ij = 2 D_i D_j / (D_i + D_j)` (0 if either
//! is 0). Patankar (*Numerical Heat Transfer and Fluid Flow*, 1980, §4.2-3) shows it is the
//! mean that gives the exact flux through two half-cells in series, so a face next to a
//! zero-diffusivity (CSF) cell is correctly impermeable, where the arithmetic mean would leak.
//!
//! Because `D_ij = D_ji`, the coefficient matrix `K = V·A` is symmetric; with uniform cell
//! volume `V`, `A` is self-adjoint in the volume-weighted inner product
//! `⟨u, v⟩_V = Σ_i V u_i v_i` (and, `V` being constant, in the Euclidean one too), and
//! `⟨u, A u⟩_V = −½ Σ_faces (V/h²) D_ij (u_j − u_i)² ≤ 0` (negative semidefinite).
//! Each face flux appears once with each sign, so `Σ_i V (A u)_i = 0`: mass is conserved.

use std::sync::{Arc, OnceLock};

use nalgebra_sparse::pattern::SparsityPattern;
use rayon::prelude::*;

use crate::error::{MeshError, Result};
use crate::grid::Grid;

/// "No neighbour" in a stencil slot.
pub(crate) const NONE: u32 = u32::MAX;

/// Axis of each neighbour slot. Slots are ordered `−z, −y, −x, +x, +y, +z`, which is also
/// increasing active-cell index (active cells are numbered in voxel order, x fastest), so a
/// CSR row is `slots 0..3, diagonal, slots 3..6` with sorted columns.
pub(crate) const SLOT_AXIS: [usize; 6] = [2, 1, 0, 0, 1, 2];

/// Rows per rayon task. Large enough that scheduling costs nothing next to the row work,
/// small enough to balance two to a few dozen threads on a brain-sized grid.
pub(crate) const CHUNK: usize = 4096;

/// How the row loops of an operator run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// One thread, rows in order.
    Sequential,
    /// Rows in chunks on the rayon pool (the default). Each row is computed by the same
    /// code in the same order as [`Parallelism::Sequential`], so `apply`, `vjp` and `jvp`
    /// outputs are bit-identical between the two; only parameter-gradient sums (a
    /// reduction over rows) may differ in the last bits.
    #[default]
    Rayon,
}

/// The geometry of the diffusion operator on a masked grid: up to six neighbours per active
/// cell and `1/h²` per neighbour slot. Shared (`Arc`) by every operator built on one grid.
#[derive(Debug)]
pub struct Stencil {
    neighbors: Vec<[u32; 6]>,
    inv_h2: [f64; 6],
    volume: f64,
    pattern: OnceLock<SparsityPattern>,
}

impl Stencil {
    /// The stencil of `grid`'s active cells.
    pub fn new(grid: &Grid) -> Arc<Self> {
        let [nx, ny, _] = grid.shape();
        let h = grid.spacing();
        let step = [1usize, nx, nx * ny];
        let shape = grid.shape();
        let neighbors = grid
            .active_voxels()
            .iter()
            .map(|&v| {
                let c = grid.coords(v);
                let mut nb = [NONE; 6];
                for (slot, &ax) in SLOT_AXIS.iter().enumerate() {
                    let up = slot >= 3;
                    let inside = if up { c[ax] + 1 < shape[ax] } else { c[ax] > 0 };
                    if inside {
                        let w = if up { v + step[ax] } else { v - step[ax] };
                        if let Some(a) = grid.active_of(w) {
                            // Grid::build caps voxel counts below u32::MAX.
                            nb[slot] = a as u32;
                        }
                    }
                }
                nb
            })
            .collect();
        Arc::new(Stencil {
            neighbors,
            inv_h2: SLOT_AXIS.map(|ax| 1.0 / (h[ax] * h[ax])),
            volume: grid.cell_volume(),
            pattern: OnceLock::new(),
        })
    }

    /// Number of active cells (rows).
    pub fn n(&self) -> usize {
        self.neighbors.len()
    }

    /// Cell volume in mm³.
    pub fn volume(&self) -> f64 {
        self.volume
    }

    /// Active-cell neighbours of cell `i` (slots `−z, −y, −x, +x, +y, +z`; absent ones are
    /// skipped).
    pub fn neighbors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.neighbors[i].iter().filter(|&&j| j != NONE).map(|&j| j as usize)
    }

    /// Number of faces between two active cells.
    pub fn n_faces(&self) -> usize {
        self.neighbors.iter().map(|nb| nb[3..].iter().filter(|&&j| j != NONE).count()).sum()
    }

    pub(crate) fn slots(&self, i: usize) -> &[u32; 6] {
        &self.neighbors[i]
    }

    pub(crate) fn inv_h2(&self) -> &[f64; 6] {
        &self.inv_h2
    }

    /// The Jacobian sparsity pattern: the diagonal plus every active neighbour, whatever the
    /// diffusivity (a zero face coefficient stays a structural entry, so the pattern does not
    /// change when D is recalibrated). Built once, on first request.
    pub fn sparsity(&self) -> &SparsityPattern {
        self.pattern.get_or_init(|| {
            let n = self.n();
            let mut offsets = Vec::with_capacity(n + 1);
            let mut cols = Vec::with_capacity(n * 7);
            offsets.push(0);
            for (i, nb) in self.neighbors.iter().enumerate() {
                cols.extend(nb[..3].iter().filter(|&&j| j != NONE).map(|&j| j as usize));
                cols.push(i);
                cols.extend(nb[3..].iter().filter(|&&j| j != NONE).map(|&j| j as usize));
                offsets.push(cols.len());
            }
            SparsityPattern::try_from_offsets_and_indices(n, n, offsets, cols)
                .expect("stencil rows have sorted, unique, in-range columns")
        })
    }

    pub(crate) fn check(&self, what: &'static str, got: usize) -> Result<()> {
        if got == self.n() {
            Ok(())
        } else {
            Err(MeshError::ShapeMismatch { what, expected: self.n(), got })
        }
    }
}

/// Harmonic-mean face diffusivity `2ab/(a+b)`, 0 when `a + b = 0`.
#[inline]
pub(crate) fn face(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s > 0.0 { 2.0 * a * b / s } else { 0.0 }
}

/// `∂ face(a, b) / ∂a = 2b² / (a+b)²`.
///
/// At `a = 0 < b` this is the one-sided derivative (2), the right one since D ≥ 0. At
/// `a = b = 0` the mean is not differentiable (its directional derivatives are not linear);
/// we return 0 there — deliberately stopping the derivative, so a pure-CSF pair never
/// receives a gradient.
#[inline]
pub(crate) fn dface(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s > 0.0 { 2.0 * b * b / (s * s) } else { 0.0 }
}

/// `(A(D) u)_i`.
#[inline]
pub(crate) fn row_apply<F: Fn(usize) -> f64>(s: &Stencil, d: &F, u: &[f64], i: usize) -> f64 {
    let (di, ui) = (d(i), u[i]);
    let ih2 = s.inv_h2();
    let mut acc = 0.0;
    for (slot, &j) in s.slots(i).iter().enumerate() {
        if j != NONE {
            let j = j as usize;
            acc += ih2[slot] * face(di, d(j)) * (u[j] - ui);
        }
    }
    acc
}

/// Coefficients `D_ij / h²` of each cell's three upward faces (`+x, +y, +z`; 0 where there
/// is no active neighbour). Every face belongs to exactly one cell this way, so a fixed-D
/// operator evaluates each harmonic mean once, when D is set, instead of twice per apply.
pub(crate) fn up_faces<F: Fn(usize) -> f64>(s: &Stencil, d: &F) -> Vec<[f64; 3]> {
    let ih2 = s.inv_h2();
    (0..s.n())
        .map(|i| {
            let nb = s.slots(i);
            std::array::from_fn(|k| {
                let j = nb[3 + k];
                if j == NONE { 0.0 } else { ih2[3 + k] * face(d(i), d(j as usize)) }
            })
        })
        .collect()
}

/// `(A u)_i` from cached upward-face coefficients: the cell's own `+` faces and, for its `−`
/// neighbours, theirs. Bit-identical to [`row_apply`] (the same products in the same order:
/// `face` is exactly symmetric in floating point).
#[inline]
pub(crate) fn row_apply_faces(s: &Stencil, faces: &[[f64; 3]], u: &[f64], i: usize) -> f64 {
    let ui = u[i];
    let nb = s.slots(i);
    let own = &faces[i];
    let mut acc = 0.0;
    for (slot, &j) in nb.iter().enumerate() {
        if j != NONE {
            let j = j as usize;
            // Slots 0, 1, 2 are −z, −y, −x: the neighbour's +z, +y, +x face.
            let c = if slot < 3 { faces[j][2 - slot] } else { own[slot - 3] };
            acc += c * (u[j] - ui);
        }
    }
    acc
}

/// `(wᵀ ∂(A(D) u)/∂D)_k = Σ_j ∂₁face(D_k, D_j) (w_k − w_j)(u_j − u_k) / h²`.
///
/// Derivation: `D_k` enters row `k` (as `D_i`) and each neighbour row `j` (as `D_j`); by the
/// symmetry of `face` both contributions have the same partial derivative, and the two
/// flux terms combine into the product of differences.
#[inline]
pub(crate) fn row_vjp_d<F: Fn(usize) -> f64>(
    s: &Stencil,
    d: &F,
    u: &[f64],
    w: &[f64],
    k: usize,
) -> f64 {
    let (dk, uk, wk) = (d(k), u[k], w[k]);
    let ih2 = s.inv_h2();
    let mut acc = 0.0;
    for (slot, &j) in s.slots(k).iter().enumerate() {
        if j != NONE {
            let j = j as usize;
            acc += ih2[slot] * dface(dk, d(j)) * (wk - w[j]) * (u[j] - uk);
        }
    }
    acc
}

/// `(∂(A(D) u)/∂D · v_D)_i = Σ_j [∂₁face(D_i,D_j) v_i + ∂₁face(D_j,D_i) v_j](u_j − u_i) / h²`.
#[inline]
pub(crate) fn row_jvp_d<F: Fn(usize) -> f64, G: Fn(usize) -> f64>(
    s: &Stencil,
    d: &F,
    vd: &G,
    u: &[f64],
    i: usize,
) -> f64 {
    let (di, ui, vi) = (d(i), u[i], vd(i));
    let ih2 = s.inv_h2();
    let mut acc = 0.0;
    for (slot, &j) in s.slots(i).iter().enumerate() {
        if j != NONE {
            let j = j as usize;
            let dj = d(j);
            acc += ih2[slot] * (dface(di, dj) * vi + dface(dj, di) * vd(j)) * (u[j] - ui);
        }
    }
    acc
}

/// `out[i] = f(i)` for every row, sequentially or in rayon chunks.
#[inline]
pub(crate) fn for_rows<F: Fn(usize) -> f64 + Sync>(par: Parallelism, out: &mut [f64], f: F) {
    match par {
        Parallelism::Sequential => out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i)),
        Parallelism::Rayon => {
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
                let base = c * CHUNK;
                chunk.iter_mut().enumerate().for_each(|(k, o)| *o = f(base + k));
            });
        }
    }
}

/// `out[i] += f(i)` for every row (the accumulating form autodiff cotangents need).
#[inline]
pub(crate) fn add_rows<F: Fn(usize) -> f64 + Sync>(par: Parallelism, out: &mut [f64], f: F) {
    match par {
        Parallelism::Sequential => out.iter_mut().enumerate().for_each(|(i, o)| *o += f(i)),
        Parallelism::Rayon => {
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
                let base = c * CHUNK;
                chunk.iter_mut().enumerate().for_each(|(k, o)| *o += f(base + k));
            });
        }
    }
}

/// `Σ_i f(i)` over `n` rows for a pair of sums, sequentially or in rayon chunks.
#[inline]
pub(crate) fn sum_rows<F: Fn(usize) -> [f64; 2] + Sync>(
    par: Parallelism,
    n: usize,
    f: F,
) -> [f64; 2] {
    let add = |a: [f64; 2], b: [f64; 2]| [a[0] + b[0], a[1] + b[1]];
    match par {
        Parallelism::Sequential => (0..n).map(f).fold([0.0; 2], add),
        Parallelism::Rayon => (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| (c * CHUNK..((c + 1) * CHUNK).min(n)).map(&f).fold([0.0; 2], add))
            .reduce(|| [0.0; 2], add),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harmonic_mean_and_derivative() {
        assert_eq!(face(2.0, 2.0), 2.0);
        assert_eq!(face(0.0, 3.0), 0.0);
        assert_eq!(face(0.0, 0.0), 0.0);
        assert!((face(1.0, 3.0) - 1.5).abs() < 1e-15);
        let (a, b, h) = (0.7, 1.9, 1e-6);
        let fd = (face(a + h, b) - face(a - h, b)) / (2.0 * h);
        assert!((dface(a, b) - fd).abs() < 1e-9);
        assert_eq!(dface(0.0, 0.0), 0.0);
        assert_eq!(dface(0.0, 5.0), 2.0);
    }

    #[test]
    fn stencil_and_pattern_of_a_masked_grid() {
        // 3×2 grid, voxel (1,0) inactive:
        //   3 4 5
        //   0 . 2
        let mask = vec![true, false, true, true, true, true];
        let g = Grid::new_2d([3, 2], [1.0, 2.0], mask).unwrap();
        let s = Stencil::new(&g);
        assert_eq!(s.n(), 5);
        // Active: 0→v0, 1→v2, 2→v3, 3→v4, 4→v5.
        assert_eq!(s.neighbors(0).collect::<Vec<_>>(), vec![2]);
        assert_eq!(s.neighbors(3).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(s.n_faces(), 4);
        let p = s.sparsity();
        assert_eq!(p.nnz(), 5 + 2 * 4);
        assert_eq!(p.lane(3), &[2, 3, 4]);
        assert_eq!(p.lane(4), &[1, 3, 4]);
        assert_eq!(s.inv_h2()[1], 0.25);
    }
}
