//! The `neurohybrid demo stroke` computation: one synthetic patient on the embedded phantom,
//! the four models (mechanistic, neural, parallel and series hybrids) fitted on the early
//! imaging, the final infarct predicted, and
//! the treatment-timing curve of the fitted patient with a Laplace uncertainty band. Returns a
//! serde-serializable [`DemoReport`]; the CLI only renders it.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::anatomy::StrokeAnatomy;
use crate::error::Result;
use crate::evaluate::{MODEL_NAMES, ModelScore, run_patient};
use crate::fate::FateConstants;
use crate::fit::{Estimate, TrainConfig};
use crate::outcome::{
    Outcome, VolumeSeries, equivalent_ml, final_dead, outcome, timing_curve, timing_slope, volumes,
};
use crate::patient::{MechanisticModel, Patient, Protocol, dead, truth_model};
use crate::perfusion::Territory;
use crate::sim::simulate;

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// Phantom voxels along x.
    pub nx: usize,
    /// Phantom voxels along y.
    pub ny: usize,
    /// Voxel size (mm).
    pub spacing: f64,
    /// Imaging schedule.
    pub protocol: Protocol,
    /// Network training.
    pub train: TrainConfig,
    /// Onset-to-reperfusion times of the timing curve (h).
    pub treat_times: Vec<f64>,
    /// Laplace samples for the uncertainty band.
    pub band_samples: usize,
    /// Seed (patient noise and band samples).
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            nx: 40,
            ny: 48,
            spacing: 4.0,
            protocol: Protocol::default(),
            train: TrainConfig::default(),
            treat_times: (0..=23).map(|k| 0.5 + 0.5 * k as f64).collect(),
            band_samples: 16,
            seed: 42,
        }
    }
}

/// A 2D image (x fastest, `NaN` outside the tissue voxels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Width.
    pub nx: usize,
    /// Height.
    pub ny: usize,
    /// Values.
    pub values: Vec<f64>,
}

/// One model's results in the demo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoModel {
    /// Name (`"mechanistic"`, `"neural"`, `"hybrid"`, `"series"`).
    pub name: String,
    /// Scores on the held-out final infarct.
    pub score: ModelScore,
    /// Predicted final dead fraction.
    pub final_dead: Image,
    /// Outcome readout of the predicted infarct.
    pub outcome: Outcome,
    /// Training loss per iteration (empty for the calibrated mechanistic model).
    pub loss_history: Vec<f64>,
}

/// The treatment-timing curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingCurve {
    /// Onset-to-reperfusion times (h).
    pub treat_times: Vec<f64>,
    /// True final infarct (ml of the anatomy).
    pub truth_ml: Vec<f64>,
    /// Fitted mechanistic model, point estimate.
    pub mechanistic_ml: Vec<f64>,
    /// 2.5 % quantile over Laplace samples.
    pub lower_ml: Vec<f64>,
    /// 97.5 % quantile over Laplace samples.
    pub upper_ml: Vec<f64>,
    /// Parallel hybrid.
    pub hybrid_ml: Vec<f64>,
    /// Series hybrid.
    pub series_ml: Vec<f64>,
    /// Exact slope `d(final infarct)/d(treatment time)` of the fitted mechanistic curve (ml/h),
    /// from the switch-time adjoint ([`timing_slope`]): how much tissue each hour of delay
    /// costs this patient at each point of the curve.
    pub mechanistic_slope_ml_per_h: Vec<f64>,
    /// Expected outcome score of the fitted model per treatment time.
    pub expected_mrs: Vec<f64>,
}

/// Everything the demo computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    /// The configuration.
    pub config: DemoConfig,
    /// The patient (the truth).
    pub patient: Patient,
    /// Tissue voxels.
    pub n_voxels: usize,
    /// Healthy perfusion.
    pub cbf_normal: Image,
    /// Admission perfusion (observed, noisy).
    pub cbf_admission: Image,
    /// Weight of the occluded territory.
    pub territory: Image,
    /// True dead fraction at the snapshot times.
    pub snapshots: Vec<(f64, Image)>,
    /// Observed early lesion masks.
    pub masks: Vec<(f64, Image)>,
    /// True final dead fraction.
    pub truth_final: Image,
    /// The four models, in [`MODEL_NAMES`] order.
    pub models: Vec<DemoModel>,
    /// Mechanistic parameters with 95 % Laplace intervals (truth attached).
    pub parameters: Vec<Estimate>,
    /// True core and penumbra volumes over time.
    pub volumes_truth: VolumeSeries,
    /// Fitted mechanistic core and penumbra volumes over time.
    pub volumes_fitted: VolumeSeries,
    /// The timing curve.
    pub timing: TimingCurve,
    /// True outcome.
    pub outcome_truth: Outcome,
    /// Wall time of the computation (s).
    pub wall_s: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let x = q * (sorted.len() - 1) as f64;
    let (i, f) = (x.floor() as usize, x.fract());
    if i + 1 < sorted.len() { sorted[i] * (1.0 - f) + sorted[i + 1] * f } else { sorted[i] }
}

/// The demo patient: a left-MCA occlusion with moderate, failing collaterals.
pub fn demo_patient(seed: u64) -> Patient {
    Patient {
        id: "demo".into(),
        territory: Territory::LeftMca,
        collateral: 0.35,
        collateral_decay: 0.2,
        t_treat: 4.5,
        k_inj: 2.0,
        k_death: 1.0,
        seed,
    }
}

/// Runs the demo. `progress(stage, done, total)` is called as stages complete.
///
/// # Errors
/// From the anatomy, the fits or the solves.
pub fn run(
    config: &DemoConfig,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<DemoReport> {
    let start = Instant::now();
    let constants = FateConstants::default();
    let mut anatomy = StrokeAnatomy::phantom_2d(config.nx, config.ny, config.spacing)?;
    let patient = demo_patient(config.seed);
    let protocol = &config.protocol;
    progress("fit models", 0, 4);
    let run = run_patient(&mut anatomy, &patient, protocol, constants, &config.train)?;
    progress("fit models", 4, 4);
    let image = |x: &[f64]| {
        let full = anatomy
            .grid()
            .scatter(&anatomy.to_active(x, f64::NAN), f64::NAN)
            .expect("active-cell field");
        let [nx, ny, _] = anatomy.grid().shape();
        Image { nx, ny, values: full }
    };
    let n = anatomy.n_voxels();
    let truth = truth_model(&patient, &run.perfusion, constants)?;
    let snap_t = [1.0, 2.0, 3.0, patient.t_treat, 12.0, protocol.t_final];
    let snaps = simulate(
        &truth,
        &patient.fate_params().to_vec(),
        &vec![0.0; 2 * n],
        patient.t_treat,
        &snap_t,
    )?;
    let snapshots = snap_t.iter().zip(&snaps).map(|(&t, y)| (t, image(&dead(y)))).collect();
    let plain = MechanisticModel::new(&run.perfusion, constants, 0.0)?;
    let theta = run.mechanistic.calibration.theta.clone();
    let vol_t: Vec<f64> = (0..=48).map(|k| 0.5 * k as f64).collect();
    let volumes_truth =
        volumes(&anatomy, &truth, &patient.fate_params().to_vec(), patient.t_treat, &vol_t)?;
    let volumes_fitted = volumes(&anatomy, &plain, &theta, patient.t_treat, &vol_t)?;

    // Timing curve: truth, point estimate, Laplace band, hybrids.
    let tt = &config.treat_times;
    progress("timing curve", 0, config.band_samples + 4);
    let truth_ml =
        timing_curve(&anatomy, &truth, &patient.fate_params().to_vec(), tt, protocol.t_final)?;
    let mechanistic_ml = timing_curve(&anatomy, &plain, &theta, tt, protocol.t_final)?;
    let mechanistic_slope_ml_per_h = timing_slope(&anatomy, &plain, &theta, tt, protocol.t_final)?
        .into_iter()
        .map(|(_, slope)| slope)
        .collect();
    let hybrid_ml =
        timing_curve(&anatomy, &run.hybrid.model, &run.hybrid.params, tt, protocol.t_final)?;
    let series_ml =
        timing_curve(&anatomy, &run.series.model, &run.series.params, tt, protocol.t_final)?;
    let mut samples: Vec<Vec<f64>> = Vec::new();
    for (k, th) in
        run.mechanistic.sample(config.band_samples, config.seed ^ 0x5eed).iter().enumerate()
    {
        samples.push(timing_curve(&anatomy, &plain, th, tt, protocol.t_final)?);
        progress("timing curve", k + 1, config.band_samples + 4);
    }
    let (mut lower_ml, mut upper_ml) = (vec![], vec![]);
    for i in 0..tt.len() {
        let mut col: Vec<f64> = samples.iter().map(|s| s[i]).collect();
        col.sort_by(f64::total_cmp);
        lower_ml.push(if col.is_empty() { mechanistic_ml[i] } else { quantile(&col, 0.025) });
        upper_ml.push(if col.is_empty() { mechanistic_ml[i] } else { quantile(&col, 0.975) });
    }
    let scale = if anatomy.grid().dim() == 3 {
        1.0
    } else {
        crate::anatomy::ADULT_BRAIN_ML / anatomy.tissue_ml()
    };
    let expected_mrs = mechanistic_ml.iter().map(|v| outcome(v * scale).expected).collect();
    progress("timing curve", config.band_samples + 4, config.band_samples + 4);

    let preds = [
        final_dead(&plain, &theta, n, patient.t_treat, protocol.t_final)?,
        final_dead(&run.neural.model, &run.neural.params, n, patient.t_treat, protocol.t_final)?,
        final_dead(&run.hybrid.model, &run.hybrid.params, n, patient.t_treat, protocol.t_final)?,
        final_dead(&run.series.model, &run.series.params, n, patient.t_treat, protocol.t_final)?,
    ];
    let histories = [
        Vec::new(),
        run.neural.history.clone(),
        run.hybrid.history.clone(),
        run.series.history.clone(),
    ];
    let models = MODEL_NAMES
        .iter()
        .zip(&run.scores)
        .zip(preds.iter().zip(histories))
        .map(|((name, score), (pred, loss_history))| DemoModel {
            name: (*name).to_owned(),
            score: score.clone(),
            final_dead: image(pred),
            outcome: outcome(equivalent_ml(&anatomy, pred)),
            loss_history,
        })
        .collect();
    let obs = &run.observation;
    Ok(DemoReport {
        config: config.clone(),
        n_voxels: n,
        cbf_normal: image(&run.perfusion.p_normal),
        cbf_admission: image(&obs.cbf_admission),
        territory: image(&run.perfusion.weight),
        snapshots,
        masks: protocol.t_scans.iter().zip(&obs.masks).map(|(&t, m)| (t, image(m))).collect(),
        truth_final: image(&obs.dead_final),
        outcome_truth: outcome(equivalent_ml(&anatomy, &obs.dead_final)),
        models,
        parameters: run.estimates.clone(),
        volumes_truth,
        volumes_fitted,
        timing: TimingCurve {
            treat_times: tt.clone(),
            truth_ml,
            mechanistic_ml,
            lower_ml,
            upper_ml,
            hybrid_ml,
            series_ml,
            mechanistic_slope_ml_per_h,
            expected_mrs,
        },
        patient,
        wall_s: start.elapsed().as_secs_f64(),
    })
}
