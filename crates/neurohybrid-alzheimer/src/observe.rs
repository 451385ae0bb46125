//! Observation model: regional SUVR-like signal, abnormality and staging, atrophy, metrics.

use serde::{Deserialize, Serialize};

use crate::connectome::Brain;
use crate::error::{Result, check_finite_nonneg};

/// How concentrations are seen: `SUVR_i = baseline + gain · c_i + ε`, `ε ~ N(0, noise_sd²)`;
/// a region is abnormal when its SUVR exceeds `baseline + gain · threshold` (the usual
/// tau-PET cut-off reading); atrophy `a_i(t) = 1 − exp(−η ∫₀ᵗ c_i dτ)` (neurodegeneration
/// driven by cumulative load, as in the atrophy models of Weickenmeier et al. 2019, JMPS
/// 124:264).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObservationModel {
    /// SUVR of a region without misfolded protein (dimensionless).
    pub baseline: f64,
    /// SUVR per unit concentration.
    pub gain: f64,
    /// Standard deviation of the SUVR noise.
    pub noise_sd: f64,
    /// Concentration above which a region counts as abnormal.
    pub threshold: f64,
    /// Atrophy rate per unit cumulative load η (1/yr per concentration unit).
    pub atrophy_rate: f64,
}

impl Default for ObservationModel {
    fn default() -> Self {
        Self { baseline: 1.0, gain: 1.5, noise_sd: 0.03, threshold: 0.2, atrophy_rate: 0.05 }
    }
}

impl ObservationModel {
    /// Checks the fields (finite, gain and noise positive).
    ///
    /// # Errors
    /// [`crate::AlzheimerError::InvalidParameter`].
    pub fn validate(&self) -> Result<()> {
        check_finite_nonneg("baseline", self.baseline)?;
        check_finite_nonneg("noise_sd", self.noise_sd)?;
        check_finite_nonneg("threshold", self.threshold)?;
        check_finite_nonneg("atrophy_rate", self.atrophy_rate)?;
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(crate::AlzheimerError::InvalidParameter {
                name: "gain",
                value: self.gain,
                reason: "must be finite and > 0",
            });
        }
        Ok(())
    }

    /// Noise-free SUVR of a concentration.
    pub fn suvr(&self, c: f64) -> f64 {
        self.baseline + self.gain * c
    }

    /// The concentration read back from an SUVR (the inverse of [`ObservationModel::suvr`]).
    pub fn concentration(&self, suvr: f64) -> f64 {
        (suvr - self.baseline) / self.gain
    }

    /// Standard deviation of the concentration read back from a noisy SUVR.
    pub fn concentration_sd(&self) -> f64 {
        self.noise_sd / self.gain
    }

    /// Which regions are abnormal.
    pub fn abnormal(&self, c: &[f64]) -> Vec<bool> {
        c.iter().map(|&v| v > self.threshold).collect()
    }

    /// Atrophy of each region after the cumulative loads `∫c dt`.
    pub fn atrophy(&self, cumulative: &[f64]) -> Vec<f64> {
        cumulative.iter().map(|&l| 1.0 - (-self.atrophy_rate * l).exp()).collect()
    }
}

/// The stage of a brain state: the number of consecutive stage groups, from the first, in
/// which at least half the regions are abnormal (0 = none … 5 = Braak VI reached). Regions
/// without a stage group do not count.
pub fn stage(brain: &Brain, abnormal: &[bool]) -> usize {
    let groups = brain.stage_groups();
    let mut s = 0;
    for g in 0..crate::connectome::STAGE_NAMES.len() {
        let (mut total, mut hit) = (0, 0);
        for (r, grp) in groups.iter().enumerate() {
            if *grp == Some(g) {
                total += 1;
                hit += usize::from(abnormal[r]);
            }
        }
        if total == 0 || 2 * hit < total {
            break;
        }
        s = g + 1;
    }
    s
}

/// Dice overlap `2|A∩B| / (|A|+|B|)` of two abnormality sets (1 when both are empty).
pub fn dice(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let total = a.iter().filter(|x| **x).count() + b.iter().filter(|x| **x).count();
    if total == 0 { 1.0 } else { 2.0 * inter as f64 / total as f64 }
}

/// Root-mean-square difference of two equally long slices.
pub fn rmse(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1);
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / n as f64).sqrt()
}

/// Cumulative load `∫ c dt` per region by the trapezoid rule over sampled states
/// (`ys` row-major, one row of `n` per time).
pub fn cumulative_load(ts: &[f64], ys: &[f64], n: usize) -> Vec<Vec<f64>> {
    let mut acc = vec![0.0; n];
    let mut out = vec![acc.clone()];
    for k in 1..ts.len() {
        let h = ts[k] - ts[k - 1];
        for i in 0..n {
            acc[i] += 0.5 * h * (ys[(k - 1) * n + i] + ys[k * n + i]);
        }
        out.push(acc.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_dice_and_atrophy() {
        let b = Brain::synthetic_dk68();
        let groups = b.stage_groups();
        let upto = |s: usize| -> Vec<bool> { groups.iter().map(|g| g.unwrap() < s).collect() };
        for s in 0..=5 {
            assert_eq!(stage(&b, &upto(s)), s);
        }
        // Later groups abnormal without the first: stage 0 (staging is ordered).
        let later: Vec<bool> = groups.iter().map(|g| g.unwrap() >= 1).collect();
        assert_eq!(stage(&b, &later), 0);
        assert_eq!(dice(&[true, false, true], &[true, true, false]), 0.5);
        assert_eq!(dice(&[false; 3], &[false; 3]), 1.0);
        let obs = ObservationModel::default();
        assert!((obs.concentration(obs.suvr(0.37)) - 0.37).abs() < 1e-15);
        let a = obs.atrophy(&[0.0, 10.0]);
        assert_eq!(a[0], 0.0);
        assert!((a[1] - (1.0 - (-0.5f64).exp())).abs() < 1e-15);
        // ∫ t dt over [0, 2] by trapezoids on a linear function is exact.
        let load = cumulative_load(&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0], 1);
        assert_eq!(load[2][0], 2.0);
        assert!(ObservationModel { gain: 0.0, ..obs }.validate().is_err());
    }
}
