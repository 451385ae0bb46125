//! Readouts: core and penumbra volumes, lesion overlap, treatment-timing curves and a
//! modified-Rankin-like outcome.
//!
//! **Outcome model (assumption).** A proportional-odds (ordinal logistic) model of the
//! modified Rankin Scale at 90 days on the final infarct volume `V` (ml):
//! `P(mRS ≤ k) = σ(α_k − b V)`, `k = 0…5` (`P(mRS ≤ 6) = 1`), with `α` set so that a patient
//! without infarct has `P(mRS ≤ 0, 1, 2, 3, 4, 5) = 0.50, 0.80, 0.90, 0.95, 0.98, 0.99` and
//! `b = 0.04 /ml` (each 25 ml of infarct shifts the odds by e). Its shape — a distribution
//! that shifts towards dependency and death as tissue is lost — follows the distributions of
//! the `stroke-outcome` package (MIT; McMeekin et al.), whose numbers are not reproduced here.
//! For a 2D slice the infarcted *fraction* of the slice's tissue is scaled to an adult brain
//! ([`crate::anatomy::ADULT_BRAIN_ML`]).

use serde::{Deserialize, Serialize};

use crate::anatomy::{ADULT_BRAIN_ML, StrokeAnatomy};
use crate::error::Result;
use crate::fate::FateSystem;
use crate::patient::dead;
use crate::sim::{Phased, simulate};

/// Intercepts `α_k` of the outcome model (logits of the no-infarct cumulative probabilities).
const MRS_ALPHA: [f64; 6] =
    [0.0, 1.386_294_361, 2.197_224_577, 2.944_438_979, 3.891_820_298, 4.595_119_85];
/// Slope `b` (per ml of final infarct).
const MRS_SLOPE: f64 = 0.04;

/// Distribution of the outcome score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `P(mRS = k)`, `k = 0…6`.
    pub distribution: [f64; 7],
    /// Expected score.
    pub expected: f64,
    /// `P(mRS ≤ 2)` (functional independence).
    pub independent: f64,
    /// The infarct volume it was computed from (ml, brain-equivalent).
    pub infarct_ml: f64,
}

/// The outcome distribution for a final infarct of `infarct_ml` (brain-equivalent ml).
pub fn outcome(infarct_ml: f64) -> Outcome {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut cum = [1.0; 7];
    for k in 0..6 {
        cum[k] = sig(MRS_ALPHA[k] - MRS_SLOPE * infarct_ml);
    }
    let mut distribution = [0.0; 7];
    let mut prev = 0.0;
    for k in 0..7 {
        distribution[k] = cum[k] - prev;
        prev = cum[k];
    }
    let expected = distribution.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
    Outcome { distribution, expected, independent: cum[2], infarct_ml }
}

/// Brain-equivalent volume of a dead-fraction field: the true volume for 3D anatomy, the
/// infarcted fraction of the slice times an adult brain for 2D.
pub fn equivalent_ml(anatomy: &StrokeAnatomy, dead: &[f64]) -> f64 {
    let v = anatomy.volume_ml(dead);
    if anatomy.grid().dim() == 3 { v } else { v / anatomy.tissue_ml() * ADULT_BRAIN_ML }
}

/// Dice overlap of two binary masks (1 when both are empty).
pub fn dice(a: &[f64], b: &[f64]) -> f64 {
    let (mut inter, mut sa, mut sb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = ((x > 0.5) as u8 as f64, (y > 0.5) as u8 as f64);
        inter += x * y;
        sa += x;
        sb += y;
    }
    if sa + sb == 0.0 { 1.0 } else { 2.0 * inter / (sa + sb) }
}

/// Root-mean-square difference.
pub fn rmse(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len().max(1) as f64).sqrt()
}

/// Core and penumbra volumes (ml of the anatomy) over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSeries {
    /// Times (h from onset).
    pub t: Vec<f64>,
    /// Core: dead tissue volume `Σ V f D`.
    pub core_ml: Vec<f64>,
    /// Penumbra: tissue still alive or injured that is hypoperfused (`CBF < θ_I`).
    pub penumbra_ml: Vec<f64>,
}

/// Core and penumbra of a mechanistic fate model over `times` with reperfusion at `t_treat`.
///
/// # Errors
/// From the solve.
pub fn volumes<M: Phased<System = FateSystem>>(
    anatomy: &StrokeAnatomy,
    model: &M,
    params: &[f64],
    t_treat: f64,
    times: &[f64],
) -> Result<VolumeSeries> {
    let n = anatomy.n_voxels();
    let ys = simulate(model, params, &vec![0.0; 2 * n], t_treat, times)?;
    let (mut core_ml, mut penumbra_ml) = (vec![], vec![]);
    for (&t, y) in times.iter().zip(&ys) {
        let d = dead(y);
        core_ml.push(anatomy.volume_ml(&d));
        let sys = if t < t_treat { model.occluded() } else { model.reperfused() };
        let theta = sys.constants().cbf_injury;
        let at_risk: Vec<f64> = (0..n)
            .map(|j| if sys.cbf(j, t, params[2]).0 < theta { 1.0 - d[j] } else { 0.0 })
            .collect();
        penumbra_ml.push(anatomy.volume_ml(&at_risk));
    }
    Ok(VolumeSeries { t: times.to_vec(), core_ml, penumbra_ml })
}

/// Final dead-fraction field at `t_final` with reperfusion at `t_treat`, clipped to `[0, 1]`
/// (a readout: a network model may leave the simplex; the mechanistic one never does).
///
/// # Errors
/// From the solve.
pub fn final_dead<M: Phased>(
    model: &M,
    params: &[f64],
    n_voxels: usize,
    t_treat: f64,
    t_final: f64,
) -> Result<Vec<f64>> {
    let ys = simulate(model, params, &vec![0.0; 2 * n_voxels], t_treat, &[t_final])?;
    Ok(dead(&ys[0]).into_iter().map(|d| if d.is_nan() { 1.0 } else { d.clamp(0.0, 1.0) }).collect())
}

/// Final infarct volume (ml of the anatomy) against onset-to-reperfusion time.
///
/// # Errors
/// From the solves.
pub fn timing_curve<M: Phased>(
    anatomy: &StrokeAnatomy,
    model: &M,
    params: &[f64],
    treat_times: &[f64],
    t_final: f64,
) -> Result<Vec<f64>> {
    treat_times
        .iter()
        .map(|&t| {
            Ok(anatomy.volume_ml(&final_dead(model, params, anatomy.n_voxels(), t, t_final)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_is_a_distribution_that_worsens_with_volume() {
        let (a, b) = (outcome(0.0), outcome(100.0));
        for o in [&a, &b] {
            assert!((o.distribution.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(o.distribution.iter().all(|&p| p >= 0.0));
        }
        assert!((a.independent - 0.9).abs() < 1e-6);
        assert!(b.expected > a.expected + 2.0 && b.independent < 0.2);
    }

    #[test]
    fn dice_and_rmse() {
        assert_eq!(dice(&[1.0, 1.0, 0.0], &[1.0, 0.0, 0.0]), 2.0 / 3.0);
        assert_eq!(dice(&[0.0], &[0.0]), 1.0);
        assert!((rmse(&[1.0, 0.0], &[0.0, 0.0]) - 0.5f64.sqrt()).abs() < 1e-15);
    }
}
