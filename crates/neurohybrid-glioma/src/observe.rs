//! The imaging observation model: density → segmentations (enhancing core, edema), a
//! PET-like signal, and noisy observed densities.
//!
//! Thresholds follow the common glioma imaging model (REFERENCES.md, "Glioma"): T1-Gd shows
//! the enhancing core where `c ≥ c_T1` (≈ 0.6–0.8), FLAIR shows edema where
//! `c_FLAIR ≤ c < c_T1` (≈ 0.16–0.25); PET signal is proportional to `c` inside the
//! visible tumour.

use neurohybrid_nn::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::config::Imaging;

/// The label of one voxel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Segmentation {
    /// No visible tumour (`c < c_FLAIR`).
    None = 0,
    /// Edema (FLAIR hyperintensity): `c_FLAIR ≤ c < c_T1`.
    Edema = 1,
    /// Enhancing core (T1-Gd): `c ≥ c_T1`.
    Core = 2,
}

/// Labels each cell of a density field.
pub fn segment(c: &[f64], imaging: &Imaging) -> Vec<Segmentation> {
    c.iter()
        .map(|&c| {
            if c >= imaging.t1_threshold {
                Segmentation::Core
            } else if c >= imaging.flair_threshold {
                Segmentation::Edema
            } else {
                Segmentation::None
            }
        })
        .collect()
}

/// Whole tumour (edema or core): `c ≥ c_FLAIR`.
pub fn tumor_mask(c: &[f64], imaging: &Imaging) -> Vec<bool> {
    c.iter().map(|&c| c >= imaging.flair_threshold).collect()
}

/// Enhancing core: `c ≥ c_T1`.
pub fn core_mask(c: &[f64], imaging: &Imaging) -> Vec<bool> {
    c.iter().map(|&c| c >= imaging.t1_threshold).collect()
}

/// PET-like signal: `c` inside the visible tumour, 0 outside (uptake ∝ cell density where
/// there are enough cells to see).
pub fn pet_signal(c: &[f64], imaging: &Imaging) -> Vec<f64> {
    c.iter().map(|&c| if c >= imaging.flair_threshold { c } else { 0.0 }).collect()
}

/// The observed density: `c + ε`, `ε ~ N(0, noise_std²)` i.i.d. per cell, clamped to
/// `[0, 1]`, from the seeded SplitMix64 stream (`stream` separates scans of one patient).
pub fn noisy_density(c: &[f64], imaging: &Imaging, stream: u64) -> Vec<f64> {
    let mut rng =
        SplitMix64::new(imaging.noise_seed.wrapping_mul(0x9E37_79B9).wrapping_add(stream));
    c.iter().map(|&c| (c + imaging.noise_std * rng.normal()).clamp(0.0, 1.0)).collect()
}
