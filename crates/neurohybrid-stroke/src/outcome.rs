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
//!
//! **Reference.** When `cargo xtask fetch-data` has fetched the package's
//! `mrs_dist_probs_cumsum.csv` (`data/stroke-outcome/`), [`MrsReference`] reads it and gives
//! the package's mRS distribution by treatment time for a large-vessel occlusion treated by
//! thrombectomy: log-odds of `P(mRS ≤ k)` linear in the onset-to-treatment time from
//! `t0_treatment_lvo_mt` (treated at onset) to `no_effect_lvo_mt_deaths` at the no-effect time
//! of 8 h, constant after (`stroke_outcome.outcome_utilities._calculate_probs_at_treatment_time`).
//! [`OutcomeModel::calibrated`] fits this module's intercepts and slope to it through a timing
//! curve; without the file the embedded defaults ([`OutcomeModel::default`]) are used.
//!
//! **Slope of the timing curve.** [`timing_slope`] gives `d(final infarct)/dT` exactly (the
//! derivative of the switch time, [`crate::sim::treatment_time_gradient`]), not by
//! differencing the curve.

use std::path::Path;

use neurohybrid_system::Vjp;
use serde::{Deserialize, Serialize};

use crate::anatomy::{ADULT_BRAIN_ML, StrokeAnatomy};
use crate::error::{Result, StrokeError};
use crate::fate::FateSystem;
use crate::patient::dead;
use crate::sim::{Phased, controller, simulate, treatment_time_gradient};

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

/// The outcome distribution for a final infarct of `infarct_ml` (brain-equivalent ml), with
/// the embedded default model.
pub fn outcome(infarct_ml: f64) -> Outcome {
    OutcomeModel::default().outcome(infarct_ml)
}

/// A proportional-odds outcome model `P(mRS ≤ k) = σ(α_k − b V)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutcomeModel {
    /// Intercepts `α_0 … α_5`.
    pub alpha: [f64; 6],
    /// Slope `b` (per ml).
    pub slope: f64,
}

impl Default for OutcomeModel {
    /// The embedded assumption (module docs).
    fn default() -> Self {
        OutcomeModel { alpha: MRS_ALPHA, slope: MRS_SLOPE }
    }
}

fn logit(p: f64) -> f64 {
    // The package's own guard against p = 1 (`1 − 1e-10`), and the same at 0.
    let p = p.clamp(1e-10, 1.0 - 1e-10);
    (p / (1.0 - p)).ln()
}

fn sigma(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl OutcomeModel {
    /// Fitted to `reference` through a timing curve `(treatment time h, infarct ml)`: the
    /// slope `b` by least squares of `α_k − b V(t) = logit P_ref,k(t)` over every `k` and time,
    /// then `α_k` as the mean residual per `k` (the exact least-squares solution of the
    /// separable problem).
    ///
    /// # Errors
    /// Fewer than two distinct volumes; from [`MrsReference::lvo_mt_at`].
    pub fn calibrated(reference: &MrsReference, curve: &[(f64, f64)]) -> Result<Self> {
        let m = curve.len() as f64;
        let v_mean = curve.iter().map(|c| c.1).sum::<f64>() / m.max(1.0);
        let svv: f64 = curve.iter().map(|c| (c.1 - v_mean).powi(2)).sum();
        if curve.len() < 2 || svv <= 0.0 {
            return Err(StrokeError::InvalidParameter {
                name: "timing_curve",
                value: svv,
                reason: "needs at least two distinct infarct volumes",
            });
        }
        let refs: Vec<[f64; 7]> =
            curve.iter().map(|c| reference.lvo_mt_at(c.0)).collect::<Result<_>>()?;
        let mut alpha = [0.0; 6];
        let mut num = 0.0;
        for k in 0..6 {
            let l: Vec<f64> = refs.iter().map(|r| logit(r[k])).collect();
            let l_mean = l.iter().sum::<f64>() / m;
            // logit = α − b V  ⇒  b = −cov(V, logit) / var(V), shared over k.
            num -= curve.iter().zip(&l).map(|(c, l)| (c.1 - v_mean) * (l - l_mean)).sum::<f64>();
            alpha[k] = l_mean;
        }
        let slope = num / (6.0 * svv);
        for a in &mut alpha {
            *a += slope * v_mean;
        }
        Ok(OutcomeModel { alpha, slope })
    }

    /// Cumulative `P(mRS ≤ k)`, `k = 0…6`.
    pub fn cumulative(&self, infarct_ml: f64) -> [f64; 7] {
        let mut cum = [1.0; 7];
        for (c, a) in cum.iter_mut().zip(&self.alpha) {
            *c = sigma(a - self.slope * infarct_ml);
        }
        cum
    }

    /// The outcome distribution for a final infarct of `infarct_ml`.
    pub fn outcome(&self, infarct_ml: f64) -> Outcome {
        let cum = self.cumulative(infarct_ml);
        let mut distribution = [0.0; 7];
        let mut prev = 0.0;
        for k in 0..7 {
            distribution[k] = cum[k] - prev;
            prev = cum[k];
        }
        let expected = distribution.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        Outcome { distribution, expected, independent: cum[2], infarct_ml }
    }
}

/// Onset-to-treatment time after which thrombectomy has no effect in the reference (h; the
/// package's `MT: 480mins`).
pub const MT_NO_EFFECT_H: f64 = 8.0;

/// The `stroke-outcome` package's cumulative mRS distributions
/// (`mrs_dist_probs_cumsum.csv`: `#` comment lines, a header, one row per stroke type with
/// `P(mRS ≤ 0) … P(mRS ≤ 6)`).
#[derive(Debug, Clone, PartialEq)]
pub struct MrsReference {
    rows: Vec<(String, [f64; 7])>,
}

impl MrsReference {
    /// Parses the CSV text (`path` names it in errors).
    ///
    /// # Errors
    /// [`StrokeError::BadDataFile`]: a row without 7 numbers, a non-number, a distribution that
    /// is not non-decreasing in `[0, 1]` ending at 1, a missing row the readout needs.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let bad = |line: usize, reason: String| StrokeError::BadDataFile {
            path: path.to_string(),
            line,
            reason,
        };
        let mut rows = Vec::new();
        let mut header = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !header {
                header = true;
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != 8 {
                return Err(bad(i + 1, format!("{} fields, expected 8", fields.len())));
            }
            let mut p = [0.0f64; 7];
            for (k, f) in fields[1..].iter().enumerate() {
                p[k] = f.parse().map_err(|_| bad(i + 1, format!("`{f}` is not a number")))?;
            }
            let ok = p.iter().all(|x| (0.0..=1.0).contains(x))
                && p.windows(2).all(|w| w[1] >= w[0])
                && (p[6] - 1.0).abs() < 1e-9;
            if !ok {
                return Err(bad(i + 1, "not a cumulative distribution".into()));
            }
            rows.push((fields[0].to_string(), p));
        }
        let r = MrsReference { rows };
        for need in ["t0_treatment_lvo_mt", "no_effect_lvo_mt_deaths"] {
            if r.row(need).is_none() {
                return Err(bad(0, format!("no row `{need}`")));
            }
        }
        Ok(r)
    }

    /// Reads `path`.
    ///
    /// # Errors
    /// [`StrokeError::DataMissing`] when it is not there; as [`MrsReference::parse`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|_| StrokeError::DataMissing { path: path.display().to_string() })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The cumulative distribution of the row `name`.
    pub fn row(&self, name: &str) -> Option<[f64; 7]> {
        self.rows.iter().find(|r| r.0 == name).map(|r| r.1)
    }

    /// The reference `P(mRS ≤ k)` for a large-vessel occlusion treated by thrombectomy at
    /// `t_h` hours from onset (module docs).
    ///
    /// # Errors
    /// A negative or non-finite time.
    pub fn lvo_mt_at(&self, t_h: f64) -> Result<[f64; 7]> {
        if !(t_h.is_finite() && t_h >= 0.0) {
            return Err(StrokeError::InvalidParameter {
                name: "treatment_time",
                value: t_h,
                reason: "must be finite and ≥ 0",
            });
        }
        let t0 = self.row("t0_treatment_lvo_mt").expect("checked by parse");
        let ne = self.row("no_effect_lvo_mt_deaths").expect("checked by parse");
        let s = (t_h / MT_NO_EFFECT_H).min(1.0);
        let mut out = [1.0; 7];
        for k in 0..6 {
            out[k] = sigma(logit(t0[k]) + s * (logit(ne[k]) - logit(t0[k])));
        }
        Ok(out)
    }
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

/// Final infarct volume (ml of the anatomy) and its exact derivative w.r.t. the
/// onset-to-reperfusion time (ml/h) at each of `treat_times` (all before `t_final`).
///
/// # Errors
/// From the solves and the adjoints.
pub fn timing_slope<M>(
    anatomy: &StrokeAnatomy,
    model: &M,
    params: &[f64],
    treat_times: &[f64],
    t_final: f64,
) -> Result<Vec<(f64, f64)>>
where
    M: Phased,
    M::System: Vjp,
{
    let n = anatomy.n_voxels();
    let w: Vec<f64> =
        anatomy.fraction().iter().map(|f| f * anatomy.voxel_volume() / 1000.0).collect();
    // V = Σ_j (V_vox f_j / 1000) D_j(t_final): linear in the final state.
    let loss = |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
        cot[..n].fill(0.0);
        cot[n..].copy_from_slice(&w);
        ys[n..].iter().zip(&w).map(|(d, w)| d * w).sum::<f64>()
    };
    let y0 = vec![0.0; 2 * n];
    treat_times
        .iter()
        .map(|&t| {
            let g = treatment_time_gradient(
                model,
                params,
                &y0,
                t,
                &[t_final],
                &loss,
                &controller(),
                false,
            )?;
            Ok((g.value, g.dl_dt))
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
