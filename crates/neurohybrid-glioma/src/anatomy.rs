//! The anatomy a tumour grows on: a masked grid with its tissue maps, from the phantom or from
//! NIfTI files, and the per-active-cell white/gray matter fractions the models use.

use std::path::Path;

use neurohybrid_mesh::io::{IoError, read_nifti, read_tissue_maps};
use neurohybrid_mesh::{Grid, MaskRule, MeshError, Phantom, Plane, TissueMaps};
use serde::{Deserialize, Serialize};

use crate::config::{AnatomyConfig, Seed};
use crate::error::{GliomaError, Result};

/// A grid, its tissue maps (full box) and the white/gray matter fractions on its active cells.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// The masked grid; state vectors hold its active cells.
    pub grid: Grid,
    /// Tissue fractions, one per voxel of the box.
    pub tissue: TissueMaps,
    /// `p_wm` per active cell.
    pub wm: Vec<f64>,
    /// `p_gm` per active cell.
    pub gm: Vec<f64>,
}

/// The geometry of a grid as the CLI renders it (serializable, full box).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridInfo {
    /// 2 or 3.
    pub dim: usize,
    /// Voxels along x, y, z (z = 1 in 2D). Fields are x-fastest over this box.
    pub shape: [usize; 3],
    /// Voxel size (mm).
    pub spacing_mm: [f64; 3],
    /// Active (intracranial) voxels, one per voxel of the box.
    pub mask: Vec<bool>,
    /// White-matter fraction per voxel of the box (a background for figures).
    pub wm: Vec<f64>,
    /// Gray-matter fraction per voxel of the box.
    pub gm: Vec<f64>,
}

impl Anatomy {
    /// Builds the anatomy a config describes.
    ///
    /// # Errors
    /// [`GliomaError::MissingFile`] for an absent map, [`GliomaError::TissueShapeMismatch`]
    /// when maps (or the mask) differ in shape, mesh errors for unreadable or invalid maps.
    pub fn build(config: &AnatomyConfig) -> Result<Self> {
        let (grid, tissue) = match config {
            AnatomyConfig::Phantom { dim, shape, spacing_mm } => {
                let ph = if *dim == 2 {
                    Phantom::new_2d(shape[0], shape[1], *spacing_mm)?
                } else {
                    Phantom::new_3d(shape[0], shape[1], shape[2], *spacing_mm)?
                };
                ph.into_parts()
            }
            AnatomyConfig::Nifti { wm, gm, csf, mask, downsample, axial_slice } => {
                for (p, what) in
                    [(wm, "white-matter map"), (gm, "gray-matter map"), (csf, "CSF map")]
                {
                    exists(p, what)?;
                }
                if let Some(m) = mask {
                    exists(m, "brain mask")?;
                }
                let images = read_tissue_maps(wm, gm, csf).map_err(|e| shape_error(e, wm))?;
                let grid = match mask {
                    Some(m) => {
                        let img = read_nifti(m).map_err(MeshError::from)?;
                        if img.dim != images.dim {
                            return Err(GliomaError::TissueShapeMismatch {
                                first: wm.display().to_string(),
                                first_shape: images.dim.to_vec(),
                                second: m.display().to_string(),
                                second_shape: img.dim.to_vec(),
                            });
                        }
                        // Active: inside the mask and with some tissue (the mask may include
                        // voxels the maps call background).
                        let t = &images.tissue;
                        let active = (0..img.data.len())
                            .map(|v| img.data[v] > 0.5 && t.wm()[v] + t.gm()[v] + t.csf()[v] > 0.05)
                            .collect();
                        images.grid(active)?
                    }
                    None => images.grid_from_threshold(0.5)?,
                };
                let (mut grid, mut tissue) = (grid, images.tissue);
                if *downsample > 1 {
                    tissue = tissue.downsample(&grid, *downsample)?;
                    grid = grid.downsample(*downsample, MaskRule::Majority)?;
                }
                if let Some(k) = axial_slice {
                    tissue = tissue.slice(&grid, Plane::Axial, *k)?;
                    grid = grid.slice(Plane::Axial, *k)?;
                }
                (grid, tissue)
            }
        };
        Self::from_parts(grid, tissue)
    }

    /// Wraps a grid and tissue maps (e.g. a phantom).
    ///
    /// # Errors
    /// Mesh errors when the maps do not fit the grid.
    pub fn from_parts(grid: Grid, tissue: TissueMaps) -> Result<Self> {
        let (wm, gm) = tissue.active_fractions(&grid)?;
        Ok(Anatomy { grid, tissue, wm, gm })
    }

    /// Number of active cells (the state size).
    pub fn n(&self) -> usize {
        self.grid.n_active()
    }

    /// World coordinates (mm) of every active cell, `[x, y, z]`.
    pub fn centres(&self) -> Vec<[f64; 3]> {
        self.grid.active_voxels().iter().map(|&v| self.grid.world(v)).collect()
    }

    /// The seed position padded to 3 coordinates.
    ///
    /// # Errors
    /// [`GliomaError::Invalid`] if the seed has not `dim` coordinates.
    pub fn seed_point(&self, location_mm: &[f64]) -> Result<[f64; 3]> {
        let dim = self.grid.dim();
        if location_mm.len() != dim {
            return Err(GliomaError::Invalid(format!(
                "seed.location_mm has {} coordinates, the grid is {dim}D",
                location_mm.len()
            )));
        }
        let mut x = [0.0; 3];
        x[..dim].copy_from_slice(location_mm);
        if dim == 2 {
            // A 2D grid lives in the plane z = its slice's world z.
            x[2] = self.grid.world(self.grid.active_voxels()[0])[2];
        }
        Ok(x)
    }

    /// The active cell nearest to `x` (world, mm) and its distance.
    pub fn nearest_cell(&self, x: [f64; 3]) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        for (a, &v) in self.grid.active_voxels().iter().enumerate() {
            let c = self.grid.world(v);
            let d2: f64 = (0..3).map(|k| (c[k] - x[k]).powi(2)).sum();
            if d2 < best.1 {
                best = (a, d2);
            }
        }
        (best.0, best.1.sqrt())
    }

    /// Refuses a seed outside the brain: its centre must be within half a voxel diagonal of
    /// an active cell that holds brain tissue (`p_wm + p_gm ≥ 0.5`), so a seed in a ventricle
    /// or outside the head is an error, not a silent zero-diffusion tumour.
    ///
    /// # Errors
    /// [`GliomaError::SeedOutsideBrain`], or [`GliomaError::Invalid`] for a wrong number of
    /// coordinates.
    pub fn check_seed(&self, seed: &Seed) -> Result<()> {
        let x = self.seed_point(&seed.location_mm)?;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(GliomaError::SeedOutsideBrain {
                location_mm: seed.location_mm.clone(),
                reason: "not a finite position",
            });
        }
        let (a, dist) = self.nearest_cell(x);
        let h = self.grid.spacing();
        let half_diag = 0.5 * (0..self.grid.dim()).map(|k| h[k] * h[k]).sum::<f64>().sqrt();
        if dist > half_diag + 1e-9 {
            return Err(GliomaError::SeedOutsideBrain {
                location_mm: seed.location_mm.clone(),
                reason: "no intracranial voxel there",
            });
        }
        if self.wm[a] + self.gm[a] < 0.5 {
            return Err(GliomaError::SeedOutsideBrain {
                location_mm: seed.location_mm.clone(),
                reason: "the voxel there is cerebrospinal fluid",
            });
        }
        Ok(())
    }

    /// The geometry for rendering.
    pub fn info(&self) -> GridInfo {
        let mut shape = self.grid.shape();
        let mut spacing_mm = self.grid.spacing();
        if self.grid.dim() == 2 {
            shape[2] = 1;
            spacing_mm[2] = spacing_mm[2].max(0.0);
        }
        GridInfo {
            dim: self.grid.dim(),
            shape,
            spacing_mm,
            mask: self.grid.mask().to_vec(),
            wm: self.tissue.wm().to_vec(),
            gm: self.tissue.gm().to_vec(),
        }
    }

    /// An active-cell field on the full box (0 outside the mask), for rendering.
    pub fn to_box(&self, active: &[f64]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.grid.n_voxels()];
        for (a, &v) in self.grid.active_voxels().iter().enumerate() {
            out[v] = active[a] as f32;
        }
        out
    }
}

fn exists(p: &Path, what: &'static str) -> Result<()> {
    if p.exists() { Ok(()) } else { Err(GliomaError::MissingFile { path: p.to_path_buf(), what }) }
}

/// Turns the mesh's "dimensions differ" into the named shape error, reading the two headers
/// again for the shapes (error path only).
fn shape_error(e: MeshError, wm: &Path) -> GliomaError {
    if let MeshError::Io(IoError::DimensionMismatch { file, .. }) = &e {
        let dims = |p: &Path| read_nifti(p).map(|i| i.dim.to_vec()).unwrap_or_default();
        return GliomaError::TissueShapeMismatch {
            first: wm.display().to_string(),
            first_shape: dims(wm),
            second: file.clone(),
            second_shape: dims(Path::new(file)),
        };
    }
    e.into()
}
