//! Masked voxel grids in 2D and 3D.
//!
//! A [`Grid`] is a box of `nx × ny × nz` voxels (`nz = 1` in 2D) with a spacing in mm, an
//! affine map from voxel indices to world coordinates (the NIfTI `sform` convention:
//! `world = A · (i, j, k, 1)ᵀ`), and a mask of *active* cells. State vectors hold only the
//! active cells, in increasing voxel order; the grid keeps the two index maps
//! (active ↔ voxel) so fields can be scattered back to the full box for I/O and figures.
//!
//! Voxels are numbered `v = i + nx·(j + ny·k)` (x fastest), the NIfTI/Fortran order, so a
//! volume read from disk can be used without transposition.

use crate::error::{MeshError, Result};

/// Marker in the voxel → active map for voxels outside the mask.
const INACTIVE: usize = usize::MAX;

/// How a coarse cell's activity is decided from the fine cells it covers when downsampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskRule {
    /// Active if at least half of the fine voxels in the block are active. The coarse brain
    /// then keeps the fine brain's volume to within one coarse cell layer, without the
    /// systematic outward growth of [`MaskRule::Any`]. The default.
    #[default]
    Majority,
    /// Active if any fine voxel in the block is active (the coarse mask covers the fine one;
    /// useful when no active tissue may be lost, e.g. a tumour seed near the boundary).
    Any,
}

/// A 2D section plane of a 3D grid (radiological names for RAS-oriented volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Fix `k` (z); the slice keeps axes (x, y).
    Axial,
    /// Fix `j` (y); the slice keeps axes (x, z).
    Coronal,
    /// Fix `i` (x); the slice keeps axes (y, z).
    Sagittal,
}

impl Plane {
    /// The fixed axis and the two kept axes (in order) of this plane.
    fn axes(self) -> (usize, [usize; 2]) {
        match self {
            Plane::Axial => (2, [0, 1]),
            Plane::Coronal => (1, [0, 2]),
            Plane::Sagittal => (0, [1, 2]),
        }
    }
}

/// A masked voxel grid in 2D or 3D.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    dim: usize,
    shape: [usize; 3],
    spacing: [f64; 3],
    affine: [[f64; 4]; 4],
    mask: Vec<bool>,
    active: Vec<usize>,
    index: Vec<usize>,
}

fn diagonal_affine(spacing: [f64; 3]) -> [[f64; 4]; 4] {
    let mut a = [[0.0; 4]; 4];
    for (ax, &h) in spacing.iter().enumerate() {
        a[ax][ax] = h;
    }
    a[3][3] = 1.0;
    a
}

impl Grid {
    fn build(dim: usize, shape: [usize; 3], spacing: [f64; 3], mask: Vec<bool>) -> Result<Self> {
        if shape.contains(&0) {
            return Err(MeshError::InvalidShape {
                shape: shape[..dim].to_vec(),
                reason: "every dimension must be at least 1",
            });
        }
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
            .filter(|&n| n < u32::MAX as usize)
            .ok_or_else(|| MeshError::InvalidShape {
                shape: shape[..dim].to_vec(),
                reason: "too many voxels (at most 2^32 - 1)",
            })?;
        for (axis, &h) in spacing.iter().enumerate() {
            if !(h.is_finite() && h > 0.0) {
                return Err(MeshError::InvalidSpacing { axis, value: h });
            }
        }
        if mask.len() != n {
            return Err(MeshError::ShapeMismatch { what: "mask", expected: n, got: mask.len() });
        }
        let mut index = vec![INACTIVE; n];
        let mut active = Vec::new();
        for (v, &m) in mask.iter().enumerate() {
            if m {
                index[v] = active.len();
                active.push(v);
            }
        }
        if active.is_empty() {
            return Err(MeshError::EmptyMask);
        }
        Ok(Grid { dim, shape, spacing, affine: diagonal_affine(spacing), mask, active, index })
    }

    /// A 2D grid of `shape = [nx, ny]` voxels with `spacing = [dx, dy]` (mm) and a mask of
    /// `nx·ny` entries. The slab thickness (`spacing()[2]`) is 1 mm, so cell volumes are
    /// areas in mm² × 1 mm.
    pub fn new_2d(shape: [usize; 2], spacing: [f64; 2], mask: Vec<bool>) -> Result<Self> {
        Self::build(2, [shape[0], shape[1], 1], [spacing[0], spacing[1], 1.0], mask)
    }

    /// A 3D grid of `shape = [nx, ny, nz]` voxels with `spacing` in mm and a mask of
    /// `nx·ny·nz` entries.
    pub fn new_3d(shape: [usize; 3], spacing: [f64; 3], mask: Vec<bool>) -> Result<Self> {
        Self::build(3, shape, spacing, mask)
    }

    /// A 2D grid with every voxel active.
    pub fn full_2d(shape: [usize; 2], spacing: [f64; 2]) -> Result<Self> {
        let n = shape[0].saturating_mul(shape[1]);
        Self::new_2d(shape, spacing, vec![true; n])
    }

    /// A 3D grid with every voxel active.
    pub fn full_3d(shape: [usize; 3], spacing: [f64; 3]) -> Result<Self> {
        let n = shape[0].saturating_mul(shape[1]).saturating_mul(shape[2]);
        Self::new_3d(shape, spacing, vec![true; n])
    }

    /// Replaces the voxel → world affine (row-major 4×4, last row `[0, 0, 0, 1]`).
    ///
    /// The spacing used by the operators stays `spacing()`; the affine only places the grid
    /// in world coordinates (it may rotate or flip axes).
    pub fn with_affine(mut self, affine: [[f64; 4]; 4]) -> Result<Self> {
        for (r, row) in affine.iter().enumerate() {
            for (c, &x) in row.iter().enumerate() {
                if !x.is_finite() {
                    return Err(MeshError::NonFinite { what: "affine", index: 4 * r + c });
                }
            }
        }
        self.affine = affine;
        Ok(self)
    }

    /// Sets the world position (mm) of voxel `(0, 0, 0)`'s centre, keeping the linear part.
    pub fn with_origin(mut self, origin: [f64; 3]) -> Result<Self> {
        if let Some(ax) = origin.iter().position(|x| !x.is_finite()) {
            return Err(MeshError::NonFinite { what: "origin", index: ax });
        }
        for (ax, &o) in origin.iter().enumerate() {
            self.affine[ax][3] = o;
        }
        Ok(self)
    }

    /// The same geometry (shape, spacing, affine) with another mask.
    pub fn with_mask(&self, mask: Vec<bool>) -> Result<Self> {
        let g = Self::build(self.dim, self.shape, self.spacing, mask)?;
        Ok(Grid { affine: self.affine, ..g })
    }

    /// 2 or 3.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `[nx, ny, nz]` (`nz = 1` in 2D).
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Voxel spacing `[dx, dy, dz]` in mm (`dz` is the slab thickness in 2D).
    pub fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    /// The voxel → world affine (mm).
    pub fn affine(&self) -> [[f64; 4]; 4] {
        self.affine
    }

    /// Volume of one cell in mm³ (`dx·dy·dz`; uniform on a voxel grid).
    pub fn cell_volume(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// Number of voxels in the box, active or not.
    pub fn n_voxels(&self) -> usize {
        self.mask.len()
    }

    /// Number of active cells: the length of state vectors on this grid.
    pub fn n_active(&self) -> usize {
        self.active.len()
    }

    /// The mask, one entry per voxel.
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }

    /// Voxel indices of the active cells, increasing.
    pub fn active_voxels(&self) -> &[usize] {
        &self.active
    }

    /// The voxel of active cell `a`.
    pub fn voxel_of(&self, a: usize) -> Result<usize> {
        self.active.get(a).copied().ok_or(MeshError::OutOfRange {
            what: "active cell",
            index: a,
            len: self.active.len(),
        })
    }

    /// The active-cell index of voxel `v`, or `None` if it is outside the mask or the box.
    pub fn active_of(&self, v: usize) -> Option<usize> {
        self.index.get(v).copied().filter(|&a| a != INACTIVE)
    }

    /// Voxel coordinates `[i, j, k]` of voxel `v` (no bounds check on `v`).
    pub fn coords(&self, v: usize) -> [usize; 3] {
        let [nx, ny, _] = self.shape;
        [v % nx, (v / nx) % ny, v / (nx * ny)]
    }

    /// Linear voxel index of `[i, j, k]`, or `None` outside the box.
    pub fn linear(&self, ijk: [usize; 3]) -> Option<usize> {
        let [nx, ny, nz] = self.shape;
        (ijk[0] < nx && ijk[1] < ny && ijk[2] < nz).then(|| ijk[0] + nx * (ijk[1] + ny * ijk[2]))
    }

    /// World coordinates (mm) of the centre of voxel `v`.
    pub fn world(&self, v: usize) -> [f64; 3] {
        let c = self.coords(v).map(|x| x as f64);
        let a = &self.affine;
        std::array::from_fn(|r| a[r][0] * c[0] + a[r][1] * c[1] + a[r][2] * c[2] + a[r][3])
    }

    /// Active-cell values of a full voxel array (`n_voxels` entries).
    pub fn gather(&self, full: &[f64]) -> Result<Vec<f64>> {
        self.check_voxels("voxel field", full.len())?;
        Ok(self.active.iter().map(|&v| full[v]).collect())
    }

    /// A full voxel array from active-cell values, `fill` outside the mask.
    pub fn scatter(&self, active: &[f64], fill: f64) -> Result<Vec<f64>> {
        if active.len() != self.n_active() {
            return Err(MeshError::ShapeMismatch {
                what: "active field",
                expected: self.n_active(),
                got: active.len(),
            });
        }
        let mut full = vec![fill; self.n_voxels()];
        for (&v, &x) in self.active.iter().zip(active) {
            full[v] = x;
        }
        Ok(full)
    }

    pub(crate) fn check_voxels(&self, what: &'static str, got: usize) -> Result<()> {
        if got == self.n_voxels() {
            Ok(())
        } else {
            Err(MeshError::ShapeMismatch { what, expected: self.n_voxels(), got })
        }
    }

    fn check_factor(&self, factor: usize) -> Result<()> {
        if factor == 0 {
            return Err(MeshError::InvalidParameter {
                name: "factor",
                value: 0.0,
                reason: "downsampling factor must be at least 1",
            });
        }
        Ok(())
    }

    /// Shape of the grid downsampled by `factor` (`ceil(n / factor)` per in-plane axis).
    fn coarse_shape(&self, factor: usize) -> [usize; 3] {
        let mut s = self.shape.map(|n| n.div_ceil(factor));
        if self.dim == 2 {
            s[2] = 1;
        }
        s
    }

    /// For each coarse voxel, the fine voxels of its block (blocks at the far edges may be
    /// partial when a dimension is not a multiple of `factor`).
    fn for_each_block(
        &self,
        factor: usize,
        mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>),
    ) {
        let cs = self.coarse_shape(factor);
        let fz = if self.dim == 2 { 1 } else { factor };
        let [nx, ny, nz] = self.shape;
        for ck in 0..cs[2] {
            for cj in 0..cs[1] {
                for ci in 0..cs[0] {
                    let cv = ci + cs[0] * (cj + cs[1] * ck);
                    let mut it = (ck * fz..((ck + 1) * fz).min(nz)).flat_map(move |k| {
                        (cj * factor..((cj + 1) * factor).min(ny)).flat_map(move |j| {
                            (ci * factor..((ci + 1) * factor).min(nx))
                                .map(move |i| i + nx * (j + ny * k))
                        })
                    });
                    f(cv, &mut it);
                }
            }
        }
    }

    /// The grid coarsened by an integer `factor` in every axis (not z in 2D): 1 mm → 2 mm
    /// with `factor = 2`. Spacing is multiplied by `factor` and the affine is updated so each
    /// coarse voxel's centre is the centre of its fine block; `rule` decides which coarse
    /// cells are active.
    pub fn downsample(&self, factor: usize, rule: MaskRule) -> Result<Self> {
        self.check_factor(factor)?;
        let cs = self.coarse_shape(factor);
        let mut mask = vec![false; cs.iter().product()];
        self.for_each_block(factor, |cv, block| {
            let (mut n, mut on) = (0usize, 0usize);
            for v in block {
                n += 1;
                on += usize::from(self.mask[v]);
            }
            mask[cv] = match rule {
                MaskRule::Any => on > 0,
                MaskRule::Majority => 2 * on >= n,
            };
        });
        let f = factor as f64;
        let mut spacing = self.spacing.map(|h| h * f);
        let mut scale = [f, f, f];
        if self.dim == 2 {
            spacing[2] = self.spacing[2];
            scale[2] = 1.0;
        }
        let coarse = Self::build(self.dim, cs, spacing, mask)?;
        // Coarse index c maps to fine index f·c + (f − 1)/2 (the block centre).
        let a = &self.affine;
        let mut affine = [[0.0; 4]; 4];
        for r in 0..4 {
            for c in 0..3 {
                affine[r][c] = a[r][c] * scale[c];
            }
            affine[r][3] = a[r][3] + (0..3).map(|c| a[r][c] * (scale[c] - 1.0) / 2.0).sum::<f64>();
        }
        coarse.with_affine(affine)
    }

    /// Averages a full voxel array over the blocks of [`Grid::downsample`] (same `factor`);
    /// the result has one entry per coarse voxel. Partial edge blocks average over the fine
    /// voxels they hold. Averaging (rather than sampling) keeps the total amount of each
    /// tissue class: Σ fine · vol_fine = Σ coarse · vol_coarse for full blocks.
    pub fn downsample_voxels(&self, values: &[f64], factor: usize) -> Result<Vec<f64>> {
        self.check_factor(factor)?;
        self.check_voxels("voxel field", values.len())?;
        let mut out = vec![0.0; self.coarse_shape(factor).iter().product()];
        self.for_each_block(factor, |cv, block| {
            let (mut n, mut s) = (0usize, 0.0);
            for v in block {
                n += 1;
                s += values[v];
            }
            out[cv] = s / n as f64;
        });
        Ok(out)
    }

    /// The fine voxels of the 2D section `plane` at `index` along the fixed axis, in the
    /// slice's own voxel order (first kept axis fastest).
    pub fn slice_voxels(&self, plane: Plane, index: usize) -> Result<Vec<usize>> {
        if self.dim != 3 {
            return Err(MeshError::InvalidShape {
                shape: self.shape[..self.dim].to_vec(),
                reason: "slices are taken from 3D grids",
            });
        }
        let (fixed, [a, b]) = plane.axes();
        if index >= self.shape[fixed] {
            return Err(MeshError::OutOfRange { what: "slice", index, len: self.shape[fixed] });
        }
        let mut out = Vec::with_capacity(self.shape[a] * self.shape[b]);
        for jb in 0..self.shape[b] {
            for ia in 0..self.shape[a] {
                let mut ijk = [0; 3];
                ijk[fixed] = index;
                ijk[a] = ia;
                ijk[b] = jb;
                out.push(self.linear(ijk).expect("indices are within the shape"));
            }
        }
        Ok(out)
    }

    /// The 2D grid of section `plane` at `index` along the fixed axis. Its affine maps slice
    /// voxel `(i, j, 0)` to the same world point as the 3D voxel it came from, and its slab
    /// thickness is the fixed axis' spacing. Fails with [`MeshError::EmptyMask`] if the
    /// section misses the mask.
    pub fn slice(&self, plane: Plane, index: usize) -> Result<Self> {
        let vox = self.slice_voxels(plane, index)?;
        let (fixed, [a, b]) = plane.axes();
        let mask = vox.iter().map(|&v| self.mask[v]).collect();
        let g = Self::build(
            2,
            [self.shape[a], self.shape[b], 1],
            [self.spacing[a], self.spacing[b], self.spacing[fixed]],
            mask,
        )?;
        let m = &self.affine;
        let mut affine = [[0.0; 4]; 4];
        for r in 0..4 {
            affine[r][0] = m[r][a];
            affine[r][1] = m[r][b];
            affine[r][2] = m[r][fixed];
            affine[r][3] = m[r][3] + m[r][fixed] * index as f64;
        }
        g.with_affine(affine)
    }

    /// Values of a full voxel array on the section `plane` at `index`.
    pub fn slice_values(&self, values: &[f64], plane: Plane, index: usize) -> Result<Vec<f64>> {
        self.check_voxels("voxel field", values.len())?;
        Ok(self.slice_voxels(plane, index)?.into_iter().map(|v| values[v]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_maps_round_trip() {
        let mask: Vec<bool> = (0..24).map(|v| v % 3 != 0).collect();
        let g = Grid::new_3d([2, 3, 4], [1.0, 2.0, 3.0], mask).unwrap();
        assert_eq!(g.n_active(), 16);
        for a in 0..g.n_active() {
            let v = g.voxel_of(a).unwrap();
            assert_eq!(g.active_of(v), Some(a));
            assert_eq!(g.linear(g.coords(v)), Some(v));
        }
        assert_eq!(g.active_of(0), None);
        assert!(g.voxel_of(16).is_err());
        assert_eq!(g.cell_volume(), 6.0);
        let full = g.scatter(&[1.0; 16], -1.0).unwrap();
        assert_eq!(g.gather(&full).unwrap(), vec![1.0; 16]);
        assert_eq!(full.iter().filter(|&&x| x < 0.0).count(), 8);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(Grid::full_2d([0, 3], [1.0, 1.0]), Err(MeshError::InvalidShape { .. })));
        assert!(matches!(
            Grid::full_2d([2, 3], [1.0, -1.0]),
            Err(MeshError::InvalidSpacing { axis: 1, .. })
        ));
        assert!(matches!(
            Grid::new_2d([2, 2], [1.0, 1.0], vec![false; 4]),
            Err(MeshError::EmptyMask)
        ));
        assert!(matches!(
            Grid::new_2d([2, 2], [1.0, 1.0], vec![true; 3]),
            Err(MeshError::ShapeMismatch { .. })
        ));
        let g = Grid::full_2d([2, 2], [1.0, 1.0]).unwrap();
        assert!(g.clone().with_origin([0.0, f64::NAN, 0.0]).is_err());
        assert!(g.downsample(0, MaskRule::Any).is_err());
        assert!(g.slice(Plane::Axial, 0).is_err());
    }

    #[test]
    fn downsample_geometry_and_rules() {
        // 5×4×2 grid, only voxel (0,0,0) active.
        let mut mask = vec![false; 40];
        mask[0] = true;
        let g = Grid::new_3d([5, 4, 2], [1.0, 1.0, 1.0], mask)
            .unwrap()
            .with_origin([-10.0, 0.0, 5.0])
            .unwrap();
        let any = g.downsample(2, MaskRule::Any).unwrap();
        assert_eq!(any.shape(), [3, 2, 1]);
        assert_eq!(any.spacing(), [2.0, 2.0, 2.0]);
        assert_eq!(any.n_active(), 1);
        // Coarse (0,0,0) is the centre of fine voxels 0..2 in each axis.
        assert_eq!(any.world(0), [-9.5, 0.5, 5.5]);
        assert!(matches!(g.downsample(2, MaskRule::Majority), Err(MeshError::EmptyMask)));
        let vals: Vec<f64> = (0..40).map(|v| v as f64).collect();
        let c = g.downsample_voxels(&vals, 2).unwrap();
        // Block (0,0,0) = fine voxels {0,1,5,6,20,21,25,26}.
        assert_eq!(c[0], (1 + 5 + 6 + 20 + 21 + 25 + 26) as f64 / 8.0);
        // Partial block in x (i = 4 only): {4, 9, 24, 29}.
        assert_eq!(c[2], (4 + 9 + 24 + 29) as f64 / 4.0);
    }

    #[test]
    fn slices_keep_world_positions() {
        let g = Grid::full_3d([3, 4, 5], [1.0, 2.0, 3.0])
            .unwrap()
            .with_origin([1.0, 2.0, 3.0])
            .unwrap();
        for (plane, fixed) in [(Plane::Axial, 2), (Plane::Coronal, 1), (Plane::Sagittal, 0)] {
            let idx = 1;
            let s = g.slice(plane, idx).unwrap();
            let vox = g.slice_voxels(plane, idx).unwrap();
            assert_eq!(vox.len(), s.n_voxels());
            assert_eq!(s.spacing()[2], g.spacing()[fixed]);
            for (sv, &v) in vox.iter().enumerate() {
                assert_eq!(s.world(sv), g.world(v));
                assert_eq!(g.coords(v)[fixed], idx);
            }
        }
        assert!(g.slice(Plane::Sagittal, 3).is_err());
    }
}
