//! The stroke model's view of an anatomy: the brain-tissue voxels the fate model acts on and
//! their healthy and occluded perfusion.

use std::path::Path;

use neurohybrid_mesh::io::{read_nifti, read_tissue_maps};
use neurohybrid_mesh::{Grid, MaskRule, Phantom, Plane, TissueMaps};

use crate::error::{Result, StrokeError};
use crate::perfusion::{Occlusion, Perfusion, PerfusionParams, Territory};

/// Cells with a brain-tissue fraction `p_wm + p_gm` at least this are tissue voxels (the rest of
/// the intracranial mask is CSF, which has no fate).
pub const TISSUE_THRESHOLD: f64 = 0.5;

/// Adult brain volume (ml) used to turn the infarcted *fraction* of a 2D slice into an
/// equivalent volume for the outcome readout (assumption: a slice is representative).
pub const ADULT_BRAIN_ML: f64 = 1200.0;

/// An anatomy prepared for the stroke model.
#[derive(Debug)]
pub struct StrokeAnatomy {
    grid: Grid,
    perfusion: Perfusion,
    /// Active-cell index of every tissue voxel.
    cells: Vec<usize>,
    /// Tissue fraction of every tissue voxel.
    fraction: Vec<f64>,
    /// Healthy perfusion of every tissue voxel.
    p_normal: Vec<f64>,
}

/// Perfusion of one occlusion on the tissue voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct OccludedPerfusion {
    /// The occluded territory.
    pub territory: Territory,
    /// Healthy perfusion `P_n` per tissue voxel (ml/100 g/min).
    pub p_normal: Vec<f64>,
    /// Perfusion with the territory's artery fully occluded and no collaterals, `P_0`.
    pub p_zero: Vec<f64>,
    /// Weight of the territory per tissue voxel.
    pub weight: Vec<f64>,
}

impl StrokeAnatomy {
    /// Prepares `grid` with `tissue`: builds and factorizes the perfusion model and solves the
    /// healthy state.
    ///
    /// # Errors
    /// As [`Perfusion::new`]; no tissue voxel.
    pub fn new(grid: Grid, tissue: &TissueMaps, params: PerfusionParams) -> Result<Self> {
        let mut perfusion = Perfusion::new(&grid, tissue, params)?;
        let cells: Vec<usize> =
            (0..grid.n_active()).filter(|&a| perfusion.tissue()[a] >= TISSUE_THRESHOLD).collect();
        if cells.is_empty() {
            return Err(StrokeError::NoTissue { what: "stroke anatomy".into() });
        }
        let fraction = cells.iter().map(|&a| perfusion.tissue()[a]).collect();
        let healthy = perfusion.solve(None)?;
        let p_normal = cells.iter().map(|&a| healthy.cbf[a]).collect();
        Ok(StrokeAnatomy { grid, perfusion, cells, fraction, p_normal })
    }

    /// The embedded 2D phantom (an axial slice `nx × ny` at `spacing` mm) with default
    /// perfusion parameters.
    ///
    /// # Errors
    /// Bad geometry.
    pub fn phantom_2d(nx: usize, ny: usize, spacing: f64) -> Result<Self> {
        let (grid, tissue) = Phantom::new_2d(nx, ny, spacing)?.into_parts();
        Self::new(grid, &tissue, PerfusionParams::default())
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The perfusion model.
    pub fn perfusion(&mut self) -> &mut Perfusion {
        &mut self.perfusion
    }

    /// Number of tissue voxels.
    pub fn n_voxels(&self) -> usize {
        self.cells.len()
    }

    /// Active-cell index of each tissue voxel.
    pub fn cells(&self) -> &[usize] {
        &self.cells
    }

    /// Tissue fraction of each tissue voxel.
    pub fn fraction(&self) -> &[f64] {
        &self.fraction
    }

    /// Volume of one voxel (mm³; 2D grids have a 1 mm slab).
    pub fn voxel_volume(&self) -> f64 {
        self.grid.cell_volume()
    }

    /// Total brain-tissue volume of the tissue voxels (ml).
    pub fn tissue_ml(&self) -> f64 {
        self.fraction.iter().sum::<f64>() * self.voxel_volume() / 1000.0
    }

    /// `Σ_j V f_j x_j` in ml: the volume of a per-voxel fraction field `x`.
    pub fn volume_ml(&self, x: &[f64]) -> f64 {
        x.iter().zip(&self.fraction).map(|(x, f)| x * f).sum::<f64>() * self.voxel_volume() / 1000.0
    }

    /// A tissue-voxel field written into the grid's active cells (others `fill`).
    pub fn to_active(&self, x: &[f64], fill: f64) -> Vec<f64> {
        let mut out = vec![fill; self.grid.n_active()];
        for (&a, &v) in self.cells.iter().zip(x) {
            out[a] = v;
        }
        out
    }

    /// Active-cell field restricted to the tissue voxels.
    pub fn from_active(&self, x: &[f64]) -> Vec<f64> {
        self.cells.iter().map(|&a| x[a]).collect()
    }

    /// Healthy and fully occluded (no collateral) perfusion of `territory`.
    ///
    /// # Errors
    /// From the solve.
    pub fn occlude(&mut self, territory: Territory) -> Result<OccludedPerfusion> {
        let o = Occlusion { territory, severity: 1.0, collateral: 0.0 };
        let zero = self.perfusion.solve(Some(&o))?;
        let w = self.perfusion.territory_weight(territory);
        Ok(OccludedPerfusion {
            territory,
            p_normal: self.p_normal.clone(),
            p_zero: self.from_active(&zero.cbf),
            weight: self.from_active(&w),
        })
    }
}

/// The ICBM152 2009a tissue maps in `dir` (`mni_icbm152_{wm,gm,csf}_pbmap.nii.gz` and
/// `mni_icbm152_t1_brain_mask.nii.gz`, the layout of `cargo xtask fetch-data` under
/// `data/mni152/`), downsampled by `factor` (2: the 2 mm grid, 99 × 117 × 95).
///
/// # Errors
/// [`StrokeError::DataMissing`] naming the first missing file; read errors.
pub fn load_mni152(dir: &Path, factor: usize) -> Result<(Grid, TissueMaps)> {
    let names = [
        "mni_icbm152_wm_pbmap.nii.gz",
        "mni_icbm152_gm_pbmap.nii.gz",
        "mni_icbm152_csf_pbmap.nii.gz",
        "mni_icbm152_t1_brain_mask.nii.gz",
    ];
    let paths: Vec<_> = names.iter().map(|n| dir.join(n)).collect();
    if let Some(p) = paths.iter().find(|p| !p.is_file()) {
        return Err(StrokeError::DataMissing { path: p.display().to_string() });
    }
    let images = read_tissue_maps(&paths[0], &paths[1], &paths[2])?;
    let mask = read_nifti(&paths[3]).map_err(neurohybrid_mesh::MeshError::from)?;
    let fine = images.grid(mask.data.iter().map(|&m| m > 0.5).collect())?;
    if factor <= 1 {
        return Ok((fine, images.tissue));
    }
    let coarse = fine.downsample(factor, MaskRule::Majority)?;
    let tissue = images.tissue.downsample(&fine, factor)?;
    Ok((coarse, tissue))
}

/// An axial slice `z_index` of a 3D anatomy as a 2D one.
///
/// # Errors
/// An index outside the grid.
pub fn axial_slice(grid: &Grid, tissue: &TissueMaps, z_index: usize) -> Result<(Grid, TissueMaps)> {
    Ok((grid.slice(Plane::Axial, z_index)?, tissue.slice(grid, Plane::Axial, z_index)?))
}
