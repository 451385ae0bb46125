//! Tissue probability maps and the tissue → diffusivity model.
//!
//! Swanson, Alvord & Murray (2000) model glioma cells as diffusing `R` times faster in white
//! matter than in gray matter and not at all in CSF; with partial-volume fractions this is
//! `D(x) = D_w · (p_wm(x) + p_gm(x) / R)` (REFERENCES.md, "Glioma"). CSF contributes nothing,
//! so a pure-CSF voxel (ventricles, sulci) has `D = 0` and, through the harmonic face mean,
//! no flux across any of its faces.

use crate::error::{MeshError, Result};
use crate::grid::{Grid, Plane};

/// White matter, gray matter and CSF fractions, one value of each per voxel of a grid box
/// (full box, not just the active cells, so maps can be read from and written to NIfTI
/// volumes unchanged).
///
/// Invariants, checked on construction: every value is finite and in `[0, 1]`, and the three
/// fractions of a voxel sum to at most `1 + 1e-9` (the rest is "other": skull, background).
#[derive(Debug, Clone, PartialEq)]
pub struct TissueMaps {
    wm: Vec<f64>,
    gm: Vec<f64>,
    csf: Vec<f64>,
}

/// Tolerance on `p_wm + p_gm + p_csf ≤ 1`: maps read from files are rarely exact.
const SUM_TOL: f64 = 1e-9;

impl TissueMaps {
    /// Validates and wraps three equally long per-voxel fraction arrays.
    pub fn new(wm: Vec<f64>, gm: Vec<f64>, csf: Vec<f64>) -> Result<Self> {
        for (what, x) in [("gm", &gm), ("csf", &csf)] {
            if x.len() != wm.len() {
                return Err(MeshError::ShapeMismatch { what, expected: wm.len(), got: x.len() });
            }
        }
        for v in 0..wm.len() {
            let p = [wm[v], gm[v], csf[v]];
            if let Some(c) = p.iter().position(|x| !x.is_finite()) {
                return Err(MeshError::NonFinite { what: ["wm", "gm", "csf"][c], index: v });
            }
            if p.iter().any(|&x| !(0.0..=1.0).contains(&x)) {
                return Err(MeshError::InvalidTissue {
                    index: v,
                    reason: "fraction outside [0, 1]",
                });
            }
            if p.iter().sum::<f64>() > 1.0 + SUM_TOL {
                return Err(MeshError::InvalidTissue {
                    index: v,
                    reason: "fractions sum to more than 1",
                });
            }
        }
        Ok(TissueMaps { wm, gm, csf })
    }

    /// Checks that the maps have one value per voxel of `grid`.
    pub fn check_grid(&self, grid: &Grid) -> Result<()> {
        grid.check_voxels("tissue maps", self.wm.len())
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.wm.len()
    }

    /// True if the maps hold no voxel.
    pub fn is_empty(&self) -> bool {
        self.wm.is_empty()
    }

    /// White matter fraction per voxel.
    pub fn wm(&self) -> &[f64] {
        &self.wm
    }

    /// Gray matter fraction per voxel.
    pub fn gm(&self) -> &[f64] {
        &self.gm
    }

    /// CSF fraction per voxel.
    pub fn csf(&self) -> &[f64] {
        &self.csf
    }

    /// The mask of voxels whose tissue fractions (wm + gm + csf) reach `threshold`.
    pub fn mask(&self, threshold: f64) -> Vec<bool> {
        (0..self.len()).map(|v| self.wm[v] + self.gm[v] + self.csf[v] >= threshold).collect()
    }

    /// White and gray matter fractions on the active cells of `grid`.
    pub fn active_fractions(&self, grid: &Grid) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check_grid(grid)?;
        Ok((grid.gather(&self.wm)?, grid.gather(&self.gm)?))
    }

    /// Maps averaged over `factor`-blocks of `grid` (see [`Grid::downsample_voxels`]), one
    /// value per voxel of `grid.downsample(factor, _)`. Averages of valid fractions are valid
    /// fractions, and averaging keeps each tissue's total volume.
    pub fn downsample(&self, grid: &Grid, factor: usize) -> Result<Self> {
        self.check_grid(grid)?;
        TissueMaps::new(
            grid.downsample_voxels(&self.wm, factor)?,
            grid.downsample_voxels(&self.gm, factor)?,
            grid.downsample_voxels(&self.csf, factor)?,
        )
    }

    /// The maps on the section `plane` at `index` (matching [`Grid::slice`]).
    pub fn slice(&self, grid: &Grid, plane: Plane, index: usize) -> Result<Self> {
        self.check_grid(grid)?;
        Ok(TissueMaps {
            wm: grid.slice_values(&self.wm, plane, index)?,
            gm: grid.slice_values(&self.gm, plane, index)?,
            csf: grid.slice_values(&self.csf, plane, index)?,
        })
    }
}

/// The tissue → diffusivity model `D = D_w · (p_wm + p_gm / R)` (Swanson et al. 2000).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TissueModel {
    /// White matter diffusivity `D_w` in mm²/day (literature priors 0.02–1.5; must be ≥ 0).
    pub d_w: f64,
    /// White/gray diffusivity ratio `R` (dimensionless, 5–20 in the literature; must be > 0).
    pub r: f64,
}

impl Default for TissueModel {
    /// `D_w = 0.12 mm²/day`, `R = 10` (GliODIL's example D_w; R = 10 is the common default).
    fn default() -> Self {
        TissueModel { d_w: 0.12, r: 10.0 }
    }
}

impl TissueModel {
    /// Checks `D_w ≥ 0` and `R > 0`, both finite.
    pub fn validate(&self) -> Result<()> {
        if !self.d_w.is_finite() {
            return Err(MeshError::NonFinite { what: "D_w", index: 0 });
        }
        if self.d_w < 0.0 {
            return Err(MeshError::NegativeDiffusivity { value: self.d_w, index: 0 });
        }
        if !(self.r.is_finite() && self.r > 0.0) {
            return Err(MeshError::InvalidParameter {
                name: "R",
                value: self.r,
                reason: "the white/gray ratio must be positive and finite",
            });
        }
        Ok(())
    }

    /// `D` for one cell with fractions `wm`, `gm`.
    #[inline]
    pub fn diffusivity(&self, wm: f64, gm: f64) -> f64 {
        self.d_w * (wm + gm / self.r)
    }

    /// `(∂D/∂D_w, ∂D/∂R)` for one cell: `(p_wm + p_gm/R, −D_w p_gm / R²)`.
    #[inline]
    pub fn diffusivity_derivatives(&self, wm: f64, gm: f64) -> (f64, f64) {
        (wm + gm / self.r, -self.d_w * gm / (self.r * self.r))
    }

    /// `D` on the active cells of `grid` (mm²/day).
    pub fn field(&self, grid: &Grid, tissue: &TissueMaps) -> Result<Vec<f64>> {
        self.validate()?;
        let (wm, gm) = tissue.active_fractions(grid)?;
        Ok(wm.iter().zip(&gm).map(|(&w, &g)| self.diffusivity(w, g)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(TissueMaps::new(vec![0.5], vec![0.5], vec![0.0]).is_ok());
        assert!(matches!(
            TissueMaps::new(vec![0.6], vec![0.5], vec![0.0]),
            Err(MeshError::InvalidTissue { index: 0, .. })
        ));
        assert!(matches!(
            TissueMaps::new(vec![0.0, -0.1], vec![0.0; 2], vec![0.0; 2]),
            Err(MeshError::InvalidTissue { index: 1, .. })
        ));
        assert!(matches!(
            TissueMaps::new(vec![0.0], vec![f64::NAN], vec![0.0]),
            Err(MeshError::NonFinite { what: "gm", .. })
        ));
        assert!(matches!(
            TissueMaps::new(vec![0.0], vec![0.0, 0.0], vec![0.0]),
            Err(MeshError::ShapeMismatch { .. })
        ));
        assert!(TissueModel { d_w: -1.0, r: 10.0 }.validate().is_err());
        assert!(TissueModel { d_w: 1.0, r: 0.0 }.validate().is_err());
    }

    #[test]
    fn diffusivity_model_and_derivatives() {
        let m = TissueModel { d_w: 0.2, r: 4.0 };
        assert_eq!(m.diffusivity(1.0, 0.0), 0.2);
        assert_eq!(m.diffusivity(0.0, 1.0), 0.05);
        assert_eq!(m.diffusivity(0.0, 0.0), 0.0); // CSF
        let (wm, gm) = (0.3, 0.6);
        let (dd, dr) = m.diffusivity_derivatives(wm, gm);
        let h = 1e-6;
        let fd_w = (TissueModel { d_w: 0.2 + h, ..m }.diffusivity(wm, gm)
            - TissueModel { d_w: 0.2 - h, ..m }.diffusivity(wm, gm))
            / (2.0 * h);
        let fd_r = (TissueModel { r: 4.0 + h, ..m }.diffusivity(wm, gm)
            - TissueModel { r: 4.0 - h, ..m }.diffusivity(wm, gm))
            / (2.0 * h);
        assert!((dd - fd_w).abs() < 1e-8 && (dr - fd_r).abs() < 1e-8);
    }

    #[test]
    fn downsampling_keeps_tissue_volume() {
        let g = Grid::full_2d([4, 2], [1.0, 1.0]).unwrap();
        let wm: Vec<f64> = (0..8).map(|v| v as f64 / 10.0).collect();
        let t = TissueMaps::new(wm.clone(), vec![0.0; 8], vec![0.1; 8]).unwrap();
        let c = t.downsample(&g, 2).unwrap();
        assert_eq!(c.len(), 2);
        let fine: f64 = wm.iter().sum::<f64>() * g.cell_volume();
        let coarse: f64 = c.wm().iter().sum::<f64>() * 4.0 * g.cell_volume();
        assert!((fine - coarse).abs() < 1e-12);
        assert!(t.downsample(&Grid::full_2d([2, 2], [1.0, 1.0]).unwrap(), 2).is_err());
    }
}
