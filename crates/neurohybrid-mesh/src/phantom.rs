//! A procedural brain phantom: the embedded default anatomy when no atlas has been fetched.
//!
//! The anatomy is a continuous field, sampled at voxel centres, so any resolution and
//! spacing give the same brain (and the 2D phantom is exactly the central axial slice of the
//! 3D one). It scales with the field of view: the brain's semi-axes are 40 % of the field of
//! view along each axis, so `Phantom::new_2d(64, 64, 1.0)` is a whole (small) brain, and
//! `Phantom::new_3d(90, 110, 90, 2.0)` an adult-sized one (semi-axes 72 × 88 × 72 mm).
//!
//! In normalized coordinates `ξ = (x/a, y/b, z/c)` with radius `ρ = |ξ|`:
//! - intracranial volume `ρ < 1.08` (brain plus a subarachnoid CSF layer) — the mask;
//! - brain `ρ < 1`: a gray-matter cortex shell over a white-matter core whose boundary
//!   `ρ = 0.80 + 0.05·cos(9ξ̂_x) cos(11ξ̂_y) cos(7ξ̂_z)` undulates like gyri (`ξ̂ = ξ/ρ`);
//! - two lateral ventricles (ellipsoids at `x = ±0.16a`) filled with CSF.
//!
//! Every boundary is a `tanh` ramp of width `ε = 0.02` (≈ 1.5 mm on an adult brain), which
//! gives smooth partial-volume fractions, `p_wm + p_gm + p_csf ≤ 1` by construction (the
//! sum is the intracranial indicator).

use crate::error::Result;
use crate::grid::Grid;
use crate::tissue::TissueMaps;

/// Semi-axis of the brain as a fraction of the field of view.
const BRAIN_FRACTION: f64 = 0.40;
/// Outer radius of the subarachnoid CSF layer (normalized).
const INTRACRANIAL: f64 = 1.08;
/// Width of the partial-volume ramps (normalized radius units).
const RAMP: f64 = 0.02;

/// Smooth indicator of `t > 0` with ramp width `eps`.
fn step(t: f64, eps: f64) -> f64 {
    0.5 * (1.0 + (t / eps).tanh())
}

/// Tissue fractions `(wm, gm, csf)` at normalized position `xi`.
fn fractions(xi: [f64; 3]) -> (f64, f64, f64) {
    let rho = xi.iter().map(|x| x * x).sum::<f64>().sqrt();
    let intracranial = step(INTRACRANIAL - rho, RAMP);
    let brain = step(1.0 - rho, RAMP);
    let n = if rho > 1e-12 { xi.map(|x| x / rho) } else { [0.0; 3] };
    let core_radius = 0.80 + 0.05 * (9.0 * n[0]).cos() * (11.0 * n[1]).cos() * (7.0 * n[2]).cos();
    let core = step(core_radius - rho, RAMP);
    let ventricle = [-0.16, 0.16]
        .iter()
        .map(|&cx| {
            let q = [(xi[0] - cx) / 0.08, (xi[1] - 0.05) / 0.30, xi[2] / 0.15];
            let r = q.iter().map(|x| x * x).sum::<f64>().sqrt();
            // Ramp width in ventricle-normalized units, ≈ the brain's RAMP in mm.
            step(1.0 - r, 0.15)
        })
        .fold(0.0, f64::max);
    let wm = brain * core * (1.0 - ventricle);
    let gm = brain * (1.0 - core) * (1.0 - ventricle);
    let csf = (intracranial - brain) + brain * ventricle;
    (wm, gm, csf)
}

/// A grid and its tissue maps, the default anatomy for demos, tests and benches.
#[derive(Debug, Clone)]
pub struct Phantom {
    grid: Grid,
    tissue: TissueMaps,
}

impl Phantom {
    fn build(shape: [usize; 3], spacing: [f64; 3], dim: usize) -> Result<Self> {
        // Validate shape and spacing before sampling (a full grid of that shape).
        let full = if dim == 2 {
            Grid::full_2d([shape[0], shape[1]], [spacing[0], spacing[1]])?
        } else {
            Grid::full_3d(shape, spacing)?
        };
        // World origin at the centre of the field of view.
        let origin: [f64; 3] = std::array::from_fn(|ax| {
            if ax < dim { -(shape[ax] as f64 - 1.0) / 2.0 * spacing[ax] } else { 0.0 }
        });
        let full = full.with_origin(origin)?;
        let semi: [f64; 3] =
            std::array::from_fn(|ax| BRAIN_FRACTION * shape[ax] as f64 * spacing[ax]);
        let n = full.n_voxels();
        let (mut wm, mut gm, mut csf) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for v in 0..n {
            let x = full.world(v);
            let xi = std::array::from_fn(|ax| if ax < dim { x[ax] / semi[ax] } else { 0.0 });
            (wm[v], gm[v], csf[v]) = fractions(xi);
        }
        let tissue = TissueMaps::new(wm, gm, csf)?;
        let grid = full.with_mask(tissue.mask(0.5))?;
        Ok(Phantom { grid, tissue })
    }

    /// A 2D axial phantom of `nx × ny` voxels with isotropic `spacing` (mm).
    pub fn new_2d(nx: usize, ny: usize, spacing: f64) -> Result<Self> {
        Self::build([nx, ny, 1], [spacing, spacing, 1.0], 2)
    }

    /// A 3D phantom of `nx × ny × nz` voxels with isotropic `spacing` (mm).
    pub fn new_3d(nx: usize, ny: usize, nz: usize, spacing: f64) -> Result<Self> {
        Self::build([nx, ny, nz], [spacing; 3], 3)
    }

    /// The masked grid (active cells = intracranial voxels, tissue sum ≥ 0.5).
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The tissue maps (full box).
    pub fn tissue(&self) -> &TissueMaps {
        &self.tissue
    }

    /// Splits into grid and tissue maps.
    pub fn into_parts(self) -> (Grid, TissueMaps) {
        (self.grid, self.tissue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Plane;

    #[test]
    fn anatomy_has_all_tissues_and_is_symmetric() {
        let p = Phantom::new_2d(64, 72, 2.0).unwrap();
        let t = p.tissue();
        let g = p.grid();
        let count = |x: &[f64]| x.iter().filter(|&&f| f > 0.9).count();
        assert!(count(t.wm()) > 500 && count(t.gm()) > 200 && count(t.csf()) > 50);
        // Centre of the left ventricle is CSF; the centre of the brain is white matter.
        let at = |x: f64, y: f64| {
            let i = ((x / 2.0) + 31.5).round() as usize;
            let j = ((y / 2.0) + 35.5).round() as usize;
            g.linear([i, j, 0]).unwrap()
        };
        let semi_x = 0.4 * 128.0;
        let v = at(-0.16 * semi_x, 0.05 * 0.4 * 144.0);
        assert!(t.csf()[v] > 0.9, "ventricle csf {}", t.csf()[v]);
        assert!(t.wm()[at(0.0, -20.0)] > 0.9);
        // Left-right mirror symmetry (nx even, centred grid).
        for j in 0..72 {
            for i in 0..32 {
                let a = g.linear([i, j, 0]).unwrap();
                let b = g.linear([63 - i, j, 0]).unwrap();
                assert!((t.gm()[a] - t.gm()[b]).abs() < 1e-12);
            }
        }
        // Deterministic.
        assert_eq!(Phantom::new_2d(64, 72, 2.0).unwrap().tissue(), t);
    }

    #[test]
    fn two_d_is_the_central_axial_slice_of_three_d() {
        let p3 = Phantom::new_3d(24, 28, 21, 3.0).unwrap();
        let p2 = Phantom::new_2d(24, 28, 3.0).unwrap();
        let s = p3.tissue().slice(p3.grid(), Plane::Axial, 10).unwrap();
        for v in 0..s.len() {
            assert!((s.wm()[v] - p2.tissue().wm()[v]).abs() < 1e-12);
            assert!((s.csf()[v] - p2.tissue().csf()[v]).abs() < 1e-12);
        }
        let gs = p3.grid().slice(Plane::Axial, 10).unwrap();
        assert_eq!(gs.mask(), p2.grid().mask());
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(Phantom::new_2d(0, 10, 1.0).is_err());
        assert!(Phantom::new_3d(10, 10, 10, f64::NAN).is_err());
        // A single voxel sits at the brain's centre: active white matter.
        let one = Phantom::new_2d(1, 1, 1.0).unwrap();
        assert_eq!(one.grid().n_active(), 1);
        assert!(one.tissue().wm()[0] > 0.99);
    }
}
