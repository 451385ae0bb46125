//! Metrics comparing a predicted density with the truth: RMSE of the density, Dice of the
//! segmentations, volume error, and the front position error.

use serde::{Deserialize, Serialize};

use crate::anatomy::Anatomy;
use crate::config::Imaging;
use crate::observe::{core_mask, tumor_mask};

/// Root-mean-square difference over the active cells.
pub fn rmse(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1) as f64;
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / n).sqrt()
}

/// Dice overlap `2|A ∩ B| / (|A| + |B|)`; 1 when both are empty (perfect agreement on
/// "no tumour").
pub fn dice(a: &[bool], b: &[bool]) -> f64 {
    let (mut both, mut total) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        both += (x && y) as usize;
        total += x as usize + y as usize;
    }
    if total == 0 { 1.0 } else { 2.0 * both as f64 / total as f64 }
}

/// Relative volume error `|V_pred − V_true| / V_true` of two masks (0 when both are empty,
/// ∞ when only the truth is empty).
pub fn volume_error(pred: &[bool], truth: &[bool]) -> f64 {
    let (p, t) = (count(pred) as f64, count(truth) as f64);
    if t == 0.0 { if p == 0.0 { 0.0 } else { f64::INFINITY } } else { (p - t).abs() / t }
}

fn count(m: &[bool]) -> usize {
    m.iter().filter(|&&x| x).count()
}

/// The boundary cells of a mask on the active cells: in the mask, with a face neighbour (on
/// the grid box) that is not in it or not active.
pub fn boundary(anatomy: &Anatomy, mask: &[bool]) -> Vec<usize> {
    let g = &anatomy.grid;
    let shape = g.shape();
    let dim = g.dim();
    let mut out = Vec::new();
    for (a, &v) in g.active_voxels().iter().enumerate() {
        if !mask[a] {
            continue;
        }
        let ijk = g.coords(v);
        let mut edge = false;
        for ax in 0..dim {
            for step in [-1i64, 1] {
                let c = ijk[ax] as i64 + step;
                if c < 0 || c >= shape[ax] as i64 {
                    edge = true;
                    continue;
                }
                let mut n = ijk;
                n[ax] = c as usize;
                let inside = g.linear(n).and_then(|nv| g.active_of(nv)).is_some_and(|na| mask[na]);
                edge |= !inside;
            }
        }
        if edge {
            out.push(a);
        }
    }
    out
}

/// Front position error (mm): the average symmetric surface distance between the boundaries
/// of two masks — the mean, over the boundary cells of each, of the distance to the nearest
/// boundary cell of the other. 0 when both are empty; when one is empty, the equivalent
/// radius of the other (its front is that far from "nothing").
pub fn front_error(anatomy: &Anatomy, pred: &[bool], truth: &[bool]) -> f64 {
    let centres = anatomy.centres();
    let (bp, bt) = (boundary(anatomy, pred), boundary(anatomy, truth));
    match (bp.is_empty(), bt.is_empty()) {
        (true, true) => 0.0,
        (false, true) => equivalent_radius(anatomy, pred),
        (true, false) => equivalent_radius(anatomy, truth),
        (false, false) => {
            let mean_min = |from: &[usize], to: &[usize]| {
                from.iter()
                    .map(|&i| {
                        to.iter()
                            .map(|&j| {
                                (0..3).map(|k| (centres[i][k] - centres[j][k]).powi(2)).sum::<f64>()
                            })
                            .fold(f64::INFINITY, f64::min)
                            .sqrt()
                    })
                    .sum::<f64>()
            };
            (mean_min(&bp, &bt) + mean_min(&bt, &bp)) / (bp.len() + bt.len()) as f64
        }
    }
}

/// Radius of the disc (2D) or ball (3D) with the mask's area or volume (mm).
pub fn equivalent_radius(anatomy: &Anatomy, mask: &[bool]) -> f64 {
    let v = count(mask) as f64 * anatomy.grid.cell_volume();
    if anatomy.grid.dim() == 2 {
        let h = anatomy.grid.spacing();
        (v / (h[2].max(f64::MIN_POSITIVE)) / std::f64::consts::PI).sqrt()
    } else {
        (3.0 * v / (4.0 * std::f64::consts::PI)).cbrt()
    }
}

/// Every metric of one predicted scan against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScanMetrics {
    /// Scan time (days since onset).
    pub day: f64,
    /// Density RMSE over the active cells.
    pub rmse: f64,
    /// Dice of the whole tumour (edema + core).
    pub dice: f64,
    /// Dice of the enhancing core.
    pub dice_core: f64,
    /// Relative whole-tumour volume error.
    pub volume_error: f64,
    /// Front position error (mm, average symmetric surface distance).
    pub front_error_mm: f64,
}

impl ScanMetrics {
    /// Compares `pred` with `truth` (densities on the active cells).
    pub fn new(
        anatomy: &Anatomy,
        imaging: &Imaging,
        day: f64,
        pred: &[f64],
        truth: &[f64],
    ) -> Self {
        let (tp, tt) = (tumor_mask(pred, imaging), tumor_mask(truth, imaging));
        let (cp, ct) = (core_mask(pred, imaging), core_mask(truth, imaging));
        ScanMetrics {
            day,
            rmse: rmse(pred, truth),
            dice: dice(&tp, &tt),
            dice_core: dice(&cp, &ct),
            volume_error: volume_error(&tp, &tt),
            front_error_mm: front_error(anatomy, &tp, &tt),
        }
    }
}

/// A model's metrics over the held-out scans (means) and on the training scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Mean density RMSE over the held-out scans.
    pub heldout_rmse: f64,
    /// Mean whole-tumour Dice over the held-out scans.
    pub heldout_dice: f64,
    /// Mean enhancing-core Dice over the held-out scans.
    pub heldout_dice_core: f64,
    /// Mean relative whole-tumour volume error over the held-out scans.
    pub heldout_volume_error: f64,
    /// Mean front position error over the held-out scans (mm).
    pub heldout_front_error_mm: f64,
    /// Mean density RMSE (against the noise-free truth) over the training scans.
    pub training_rmse: f64,
    /// Every scan, training and held-out.
    pub per_scan: Vec<ScanMetrics>,
}

impl ModelMetrics {
    /// Aggregates per-scan metrics; the first `n_training` are the training scans.
    pub fn new(per_scan: Vec<ScanMetrics>, n_training: usize) -> Self {
        let held = &per_scan[n_training.min(per_scan.len())..];
        let mean = |f: &dyn Fn(&ScanMetrics) -> f64, s: &[ScanMetrics]| {
            if s.is_empty() { f64::NAN } else { s.iter().map(f).sum::<f64>() / s.len() as f64 }
        };
        ModelMetrics {
            heldout_rmse: mean(&|m| m.rmse, held),
            heldout_dice: mean(&|m| m.dice, held),
            heldout_dice_core: mean(&|m| m.dice_core, held),
            heldout_volume_error: mean(&|m| m.volume_error, held),
            heldout_front_error_mm: mean(&|m| m.front_error_mm, held),
            training_rmse: mean(&|m| m.rmse, &per_scan[..n_training.min(per_scan.len())]),
            per_scan,
        }
    }
}
