//! Synthetic patients with known ground truth, and what their imaging shows.
//!
//! A patient has an occluded territory, a collateral strength at onset `c₀`, an
//! onset-to-reperfusion time `T` and injury rates. **The truth contains a mechanism the plain
//! model lacks: collateral failure.** Collateral flow decays with time since onset,
//! `c(t) = c₀ e^{−λ_c t}` with `λ_c ≈ 0.1–0.3 /h` (an assumption in the spirit of the clinical
//! observation that collaterals fail over hours and that poor collaterals predict fast
//! progression; e.g. Campbell et al. 2013, J Cereb Blood Flow Metab 33), whereas the plain
//! mechanistic model holds `c` constant. Perfusion imaging at admission sees `c(t_adm)`; the
//! penumbra then keeps losing flow, so the plain model fitted to early scans under-predicts
//! late growth.
//!
//! Imaging (the observation model):
//! - a perfusion map (CBF, ml/100 g/min) at admission with Gaussian noise;
//! - lesion masks (DWI-like): a voxel is lesioned when its dead fraction exceeds 0.5, with a
//!   fraction of boundary voxels flipped by noise (deterministic, seeded);
//! - the final infarct at the follow-up time (default 24 h), held out.

use serde::{Deserialize, Serialize};

use crate::anatomy::{OccludedPerfusion, StrokeAnatomy};
use crate::error::Result;
use crate::fate::{FateConstants, FateParams, FateSystem, Phase};
use crate::perfusion::Territory;
use crate::sim::{Phased, simulate};

/// Imaging schedule (hours from onset).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Perfusion imaging at admission.
    pub t_admission: f64,
    /// Early lesion masks (the training data), before treatment.
    pub t_scans: Vec<f64>,
    /// Follow-up of the final infarct (held out).
    pub t_final: f64,
    /// Noise of the perfusion map (ml/100 g/min).
    pub cbf_noise: f64,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol { t_admission: 1.0, t_scans: vec![1.5, 3.0], t_final: 24.0, cbf_noise: 2.0 }
    }
}

/// A synthetic patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    /// Identifier (`"p03"`).
    pub id: String,
    /// Occluded territory.
    pub territory: Territory,
    /// Collateral strength at onset `c₀`.
    pub collateral: f64,
    /// Collateral decay rate `λ_c` (1/h) — the mechanism the plain model lacks.
    pub collateral_decay: f64,
    /// Onset-to-reperfusion time `T` (h).
    pub t_treat: f64,
    /// Injury rate (1/h).
    pub k_inj: f64,
    /// Death rate (1/h).
    pub k_death: f64,
    /// Noise seed.
    pub seed: u64,
}

impl Patient {
    /// The true mechanistic parameters at onset.
    pub fn fate_params(&self) -> FateParams {
        FateParams { k_inj: self.k_inj, k_death: self.k_death, collateral: self.collateral }
    }
}

/// The synthetic cohort: `n` patients with territories, collaterals, decay rates and
/// treatment times spread deterministically over their ranges.
pub fn cohort(n: usize) -> Vec<Patient> {
    let territories = [
        Territory::LeftMca,
        Territory::RightMca,
        Territory::LeftAca,
        Territory::RightPca,
        Territory::RightMca,
        Territory::LeftMca,
        Territory::RightAca,
        Territory::LeftPca,
    ];
    (0..n)
        .map(|i| {
            // Low-discrepancy (golden-ratio) spreads over each range.
            let u = |k: f64| ((i as f64 + 1.0) * (0.618_033_988_75 * k)).fract();
            Patient {
                id: format!("p{i:02}"),
                territory: territories[i % territories.len()],
                collateral: 0.15 + 0.35 * u(1.0),
                collateral_decay: 0.1 + 0.2 * u(2.0),
                t_treat: 3.5 + 4.5 * u(3.0),
                k_inj: 1.5 + 1.0 * u(5.0),
                k_death: 0.7 + 0.6 * u(7.0),
                seed: 1000 + i as u64,
            }
        })
        .collect()
}

/// A fate model in both phases (mechanistic: [`FateSystem`] with a collateral decay rate).
#[derive(Debug, Clone)]
pub struct MechanisticModel {
    occluded: FateSystem,
    reperfused: FateSystem,
}

impl MechanisticModel {
    /// The model on `perfusion` with collateral decay `decay` (0 for the plain model).
    ///
    /// # Errors
    /// As [`FateSystem::new`].
    pub fn new(
        perfusion: &OccludedPerfusion,
        constants: FateConstants,
        decay: f64,
    ) -> Result<Self> {
        let occluded = FateSystem::new(
            perfusion.p_normal.clone(),
            perfusion.p_zero.clone(),
            constants,
            Phase::Occluded { decay },
        )?;
        let reperfused = occluded.with_phase(Phase::Reperfused);
        Ok(MechanisticModel { occluded, reperfused })
    }
}

impl Phased for MechanisticModel {
    type System = FateSystem;
    fn occluded(&self) -> &FateSystem {
        &self.occluded
    }
    fn reperfused(&self) -> &FateSystem {
        &self.reperfused
    }
}

/// The seeded stream of the imaging noise (`neurohybrid-nn`'s SplitMix64).
pub use neurohybrid_nn::rng::SplitMix64 as Rng;

/// What a patient's imaging shows, plus the truth for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Perfusion at admission per tissue voxel (noisy).
    pub cbf_admission: Vec<f64>,
    /// Lesion masks (1 = lesion) per early scan, per tissue voxel.
    pub masks: Vec<Vec<f64>>,
    /// True dead fraction at each early scan.
    pub dead_scans: Vec<Vec<f64>>,
    /// True dead fraction at the follow-up (held out).
    pub dead_final: Vec<f64>,
    /// True final infarct mask (held out).
    pub mask_final: Vec<f64>,
}

/// Lesion mask of a dead-fraction field: `D > 0.5`.
pub fn lesion_mask(dead: &[f64]) -> Vec<f64> {
    dead.iter().map(|&d| if d > 0.5 { 1.0 } else { 0.0 }).collect()
}

/// Dead-fraction channel of a channel-major `[I | D]` state.
pub fn dead(y: &[f64]) -> Vec<f64> {
    y[y.len() / 2..].to_vec()
}

/// Injured-fraction channel of a channel-major `[I | D]` state.
pub fn injured(y: &[f64]) -> Vec<f64> {
    y[..y.len() / 2].to_vec()
}

/// The truth model of `patient` on `perfusion` (collaterals decaying).
///
/// # Errors
/// As [`MechanisticModel::new`].
pub fn truth_model(
    patient: &Patient,
    perfusion: &OccludedPerfusion,
    constants: FateConstants,
) -> Result<MechanisticModel> {
    MechanisticModel::new(perfusion, constants, patient.collateral_decay)
}

/// Simulates `patient`'s truth and images it under `protocol`.
///
/// # Errors
/// From the solves.
pub fn observe(
    anatomy: &mut StrokeAnatomy,
    patient: &Patient,
    protocol: &Protocol,
    constants: FateConstants,
) -> Result<(OccludedPerfusion, Observation)> {
    let perf = anatomy.occlude(patient.territory)?;
    let model = truth_model(patient, &perf, constants)?;
    let n = anatomy.n_voxels();
    let mut times = protocol.t_scans.clone();
    times.push(protocol.t_final);
    let ys = simulate(
        &model,
        &patient.fate_params().to_vec(),
        &vec![0.0; 2 * n],
        patient.t_treat,
        &times,
    )?;
    let mut rng = Rng::new(patient.seed);
    let cbf_admission = model
        .occluded
        .cbf_map(protocol.t_admission, patient.collateral)
        .iter()
        .map(|&c| (c + protocol.cbf_noise * rng.normal()).max(0.0))
        .collect();
    let dead_scans: Vec<Vec<f64>> = ys[..protocol.t_scans.len()].iter().map(|y| dead(y)).collect();
    // Segmentation noise: voxels near the threshold flip with probability 1/4.
    let masks = dead_scans
        .iter()
        .map(|d| {
            d.iter()
                .map(|&x| {
                    let m = if x > 0.5 { 1.0 } else { 0.0 };
                    if (x - 0.5).abs() < 0.15 && rng.uniform() < 0.25 { 1.0 - m } else { m }
                })
                .collect()
        })
        .collect();
    let dead_final = dead(ys.last().expect("t_final is saved"));
    let mask_final = lesion_mask(&dead_final);
    Ok((perf, Observation { cbf_admission, masks, dead_scans, dead_final, mask_final }))
}
