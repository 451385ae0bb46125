//! The benchmark protocol for one patient: fit the mechanistic, neural, parallel-hybrid and
//! series-hybrid models on the early imaging, predict the final infarct, score against the
//! held-out truth.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::anatomy::{OccludedPerfusion, StrokeAnatomy};
use crate::error::Result;
use crate::fate::{FateConstants, FateParams};
use crate::fit::{
    Estimate, HybridModel, MechanisticFit, NeuralModel, SeriesModel, TrainConfig, Trained,
    fit_hybrid, fit_mechanistic, fit_neural, fit_series,
};
use crate::outcome::{dice, equivalent_ml, final_dead, rmse};
use crate::patient::{MechanisticModel, Observation, Patient, Protocol, lesion_mask, observe};
use crate::sim::Phased;

/// Scores of one model on one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    /// RMSE of the predicted dead fraction at follow-up (held out).
    pub heldout_rmse: f64,
    /// Dice of the predicted final infarct mask (held out).
    pub heldout_dice: f64,
    /// Predicted final infarct volume (ml of the anatomy).
    pub final_ml: f64,
    /// True final infarct volume (ml of the anatomy).
    pub true_final_ml: f64,
    /// Dice on the early (training) masks, averaged.
    pub train_dice: f64,
    /// Brain-equivalent predicted infarct (ml) for the outcome readout.
    pub equivalent_ml: f64,
    /// Wall time of the fit (s).
    pub fit_s: f64,
}

/// The four fits and their scores for one patient.
#[derive(Debug)]
pub struct PatientRun {
    /// The patient.
    pub patient: Patient,
    /// Perfusion of the occlusion on the tissue voxels.
    pub perfusion: OccludedPerfusion,
    /// The imaging.
    pub observation: Observation,
    /// Mechanistic calibration.
    pub mechanistic: MechanisticFit,
    /// Neural-only model.
    pub neural: Trained<NeuralModel>,
    /// Parallel hybrid.
    pub hybrid: Trained<HybridModel>,
    /// Series hybrid (network → collateral trajectory).
    pub series: Trained<SeriesModel>,
    /// Scores in [`MODEL_NAMES`] order: mechanistic, neural, hybrid, series.
    pub scores: [ModelScore; 4],
    /// Parameter estimates with intervals (truth attached).
    pub estimates: Vec<Estimate>,
}

/// Model names in score order.
pub const MODEL_NAMES: [&str; 4] = ["mechanistic", "neural", "hybrid", "series"];

impl PatientRun {
    /// Whether model `m` has a lower held-out RMSE than the mechanistic and neural baselines.
    pub fn beats_baselines(&self, m: usize) -> bool {
        self.scores[m].heldout_rmse < self.scores[0].heldout_rmse.min(self.scores[1].heldout_rmse)
    }
}

fn score<M: Phased>(
    anatomy: &StrokeAnatomy,
    model: &M,
    params: &[f64],
    patient: &Patient,
    obs: &Observation,
    protocol: &Protocol,
    fit_s: f64,
) -> Result<ModelScore> {
    let n = anatomy.n_voxels();
    let pred = final_dead(model, params, n, patient.t_treat, protocol.t_final)?;
    let mut train_dice = 0.0;
    for (k, &t) in protocol.t_scans.iter().enumerate() {
        let d = final_dead(model, params, n, f64::INFINITY, t)?;
        train_dice += dice(&lesion_mask(&d), &obs.masks[k]) / protocol.t_scans.len() as f64;
    }
    Ok(ModelScore {
        heldout_rmse: rmse(&pred, &obs.dead_final),
        heldout_dice: dice(&lesion_mask(&pred), &obs.mask_final),
        final_ml: anatomy.volume_ml(&pred),
        true_final_ml: anatomy.volume_ml(&obs.dead_final),
        train_dice,
        equivalent_ml: equivalent_ml(anatomy, &pred),
        fit_s,
    })
}

/// Runs the protocol on `patient`.
///
/// # Errors
/// From the solves, the calibration or the training.
pub fn run_patient(
    anatomy: &mut StrokeAnatomy,
    patient: &Patient,
    protocol: &Protocol,
    constants: FateConstants,
    train: &TrainConfig,
) -> Result<PatientRun> {
    let (perf, obs) = observe(anatomy, patient, protocol, constants)?;
    let t0 = Instant::now();
    let start = FateParams { k_inj: 1.0, k_death: 0.5, collateral: 0.5 };
    let mech = fit_mechanistic(&perf, &obs, protocol, constants, start)?;
    let mech_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let neural = fit_neural(&perf, &obs, protocol, train)?;
    let neural_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let hybrid = fit_hybrid(&perf, &obs, protocol, constants, &mech.params(), train)?;
    let hybrid_s = t2.elapsed().as_secs_f64() + mech_s;
    let t3 = Instant::now();
    let series = fit_series(&perf, &obs, constants, &mech.params(), protocol, train)?;
    let series_s = t3.elapsed().as_secs_f64() + mech_s;
    let plain = MechanisticModel::new(&perf, constants, 0.0)?;
    let scores = [
        score(anatomy, &plain, &mech.calibration.theta, patient, &obs, protocol, mech_s)?,
        score(anatomy, &neural.model, &neural.params, patient, &obs, protocol, neural_s)?,
        score(anatomy, &hybrid.model, &hybrid.params, patient, &obs, protocol, hybrid_s)?,
        score(anatomy, &series.model, &series.params, patient, &obs, protocol, series_s)?,
    ];
    let c_adm = patient.collateral * (-patient.collateral_decay * protocol.t_admission).exp();
    let truth = [patient.k_inj, patient.k_death, c_adm];
    let estimates = mech.estimates(Some(&truth));
    Ok(PatientRun {
        patient: patient.clone(),
        perfusion: perf,
        observation: obs,
        mechanistic: mech,
        neural,
        hybrid,
        series,
        scores,
        estimates,
    })
}
