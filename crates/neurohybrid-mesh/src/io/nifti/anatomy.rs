//! NIfTI volumes ↔ the crate's grids and tissue maps: read three tissue probability maps onto
//! one [`Grid`] box, and write a field on a grid back as a volume.

use std::path::Path;

use super::{NiftiImage, read_nifti};
use crate::error::{MeshError, Result};
use crate::grid::Grid;
use crate::io::IoError;
use crate::tissue::TissueMaps;

/// Largest excess of `p_wm + p_gm + p_csf` over 1 that is treated as quantization and
/// rescaled away: three int16-coded maps (step 1/32767 each, as the ICBM152 maps are stored)
/// can exceed 1 by ~1e-4; a larger excess means the maps disagree, and is an error.
pub const TISSUE_SUM_TOLERANCE: f64 = 1e-3;

/// White matter, gray matter and CSF maps read from NIfTI files, with the volume geometry.
#[derive(Debug, Clone)]
pub struct TissueImages {
    /// The validated fractions, one value of each per voxel of the box.
    pub tissue: TissueMaps,
    /// Voxels along x, y, z.
    pub dim: [usize; 3],
    /// Voxel size (mm).
    pub spacing: [f64; 3],
    /// Voxel → world (mm), shared by the three files.
    pub affine: [[f64; 4]; 4],
    /// Voxels whose fractions summed to more than 1 (by at most [`TISSUE_SUM_TOLERANCE`]) and
    /// were rescaled to sum to 1.
    pub renormalized: usize,
}

impl TissueImages {
    /// The grid of these maps with the given per-voxel mask (e.g. read from a brain-mask
    /// volume), carrying the files' affine.
    ///
    /// # Errors
    /// As [`Grid::new_3d`] (wrong mask length, empty mask).
    pub fn grid(&self, mask: Vec<bool>) -> Result<Grid> {
        Grid::new_3d(self.dim, self.spacing, mask)?.with_affine(self.affine)
    }

    /// The grid whose active cells are the voxels with `p_wm + p_gm + p_csf ≥ threshold`
    /// (see [`TissueMaps::mask`]).
    ///
    /// # Errors
    /// As [`TissueImages::grid`].
    pub fn grid_from_threshold(&self, threshold: f64) -> Result<Grid> {
        self.grid(self.tissue.mask(threshold))
    }
}

/// Reads three tissue probability maps (values 0–1, any supported data type) that share one
/// geometry, e.g. `data/mni152/mni_icbm152_{wm,gm,csf}_pbmap.nii.gz`.
///
/// Values within `1e-6` below 0 are set to 0, and voxels whose fractions sum to at most
/// `1 + TISSUE_SUM_TOLERANCE` are rescaled to sum to at most 1 (quantization of stored maps);
/// everything else is validated by [`TissueMaps::new`].
///
/// # Errors
/// [`MeshError::Io`] for unreadable files and for files whose dimensions or affines differ
/// ([`IoError::DimensionMismatch`] / [`IoError::InvalidHeader`]); [`MeshError::InvalidTissue`]
/// for fractions outside `[0, 1]` or sums beyond the tolerance.
pub fn read_tissue_maps(
    wm: impl AsRef<Path>,
    gm: impl AsRef<Path>,
    csf: impl AsRef<Path>,
) -> Result<TissueImages> {
    let [w, g, c] = [wm.as_ref(), gm.as_ref(), csf.as_ref()].map(read_nifti);
    let (w, g, c) = (w?, g?, c?);
    for (img, path) in [(&g, gm.as_ref()), (&c, csf.as_ref())] {
        let file = path.display().to_string();
        if img.dim != w.dim {
            return Err(IoError::DimensionMismatch {
                file,
                what: format!("voxels per axis ({:?} in the white-matter map)", w.dim),
                expected: w.len(),
                got: img.len(),
            }
            .into());
        }
        let close = img.affine.iter().flatten().zip(w.affine.iter().flatten());
        if close.into_iter().any(|(a, b)| (a - b).abs() > 1e-4 * (1.0 + b.abs())) {
            return Err(IoError::InvalidHeader {
                file,
                field: "affine",
                reason: "differs from the white-matter map's".into(),
            }
            .into());
        }
    }
    let clean = |mut v: Vec<f64>| {
        v.iter_mut().filter(|x| (-1e-6..0.0).contains(*x)).for_each(|x| *x = 0.0);
        v
    };
    let (mut pw, mut pg, mut pc) = (clean(w.data), clean(g.data), clean(c.data));
    let mut renormalized = 0;
    for v in 0..pw.len() {
        let s = pw[v] + pg[v] + pc[v];
        if s > 1.0 && s <= 1.0 + TISSUE_SUM_TOLERANCE {
            pw[v] /= s;
            pg[v] /= s;
            pc[v] /= s;
            renormalized += 1;
        }
    }
    Ok(TissueImages {
        tissue: TissueMaps::new(pw, pg, pc)?,
        dim: w.dim,
        spacing: w.spacing,
        affine: w.affine,
        renormalized,
    })
}

impl NiftiImage {
    /// A float32 volume of a field on `grid`'s active cells (`fill` elsewhere), with the
    /// grid's spacing and affine, ready for [`super::write_nifti`]. 2D grids become volumes
    /// one voxel thick.
    ///
    /// # Errors
    /// [`MeshError::ShapeMismatch`] if `active.len() != grid.n_active()`.
    pub fn from_grid_field(grid: &Grid, active: &[f64], fill: f64) -> Result<NiftiImage> {
        let data = grid.scatter(active, fill)?;
        let mut img =
            NiftiImage::new(grid.shape(), grid.spacing(), data).map_err(MeshError::from)?;
        img.affine = grid.affine();
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::write_nifti;

    #[test]
    fn tissue_maps_from_files_with_quantization_excess() {
        let dir = std::env::temp_dir().join(format!("nh-anatomy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let put = |name: &str, v: Vec<f64>| {
            let p = dir.join(name);
            write_nifti(&p, &NiftiImage::new([2, 2, 1], [1.0, 1.0, 1.0], v).unwrap()).unwrap();
            p
        };
        let wm = put("wm.nii", vec![0.5, 0.0, 0.0, 0.9]);
        let gm = put("gm.nii", vec![0.5, 1.0, 0.0, 0.1]);
        let csf = put("csf.nii", vec![0.00005, 0.0, 0.0, 0.5]);
        // Voxel 0 exceeds 1 by 5e-5 (rescaled); voxel 3 by 0.5 (an error).
        let err = read_tissue_maps(&wm, &gm, &csf).unwrap_err();
        assert!(matches!(err, MeshError::InvalidTissue { index: 3, .. }), "{err}");
        let csf = put("csf.nii", vec![0.00005, 0.0, 0.0, 0.0]);
        let t = read_tissue_maps(&wm, &gm, &csf).unwrap();
        assert_eq!(t.renormalized, 1);
        let grid = t.grid_from_threshold(0.5).unwrap();
        assert_eq!(grid.n_active(), 3);
        let img = NiftiImage::from_grid_field(&grid, &[1.0, 2.0, 3.0], -1.0).unwrap();
        assert_eq!(img.data, [1.0, 2.0, -1.0, 3.0]);
        let other = put("other.nii", vec![0.0; 2 * 2]);
        let bad = dir.join("bad.nii");
        write_nifti(&bad, &NiftiImage::new([4, 1, 1], [1.0; 3], vec![0.0; 4]).unwrap()).unwrap();
        let err = read_tissue_maps(&other, &bad, &csf).unwrap_err();
        assert!(matches!(err, MeshError::Io(IoError::DimensionMismatch { .. })), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
