//! The outcome readout against the `stroke-outcome` package's mRS distributions (MIT;
//! `data/stroke-outcome/mrs_dist_probs_cumsum.csv` from `cargo xtask fetch-data`): the shape of
//! the distribution by treatment time. Skips with a message when the file is absent (the
//! embedded default model is what the crate uses then).

use std::path::PathBuf;

use neurohybrid_stroke::StrokeError;
use neurohybrid_stroke::anatomy::StrokeAnatomy;
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::outcome::{
    MT_NO_EFFECT_H, MrsReference, OutcomeModel, equivalent_ml, final_dead,
};
use neurohybrid_stroke::patient::{cohort, truth_model};

fn reference_path() -> PathBuf {
    match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    }
    .join("stroke-outcome/mrs_dist_probs_cumsum.csv")
}

const SNIPPET: &str = "# comment\n\
Stroke type,mRS<=0,mRS<=1,mRS<=2,mRS<=3,mRS<=4,mRS<=5,mRS<=6\n\
t0_treatment_lvo_mt,0.3,0.4,0.5,0.7,0.85,0.9,1\n\
no_effect_lvo_mt_deaths,0.05,0.1,0.25,0.4,0.65,0.78,1\n";

#[test]
fn parser_reads_the_layout_and_names_bad_rows() {
    let r = MrsReference::parse(SNIPPET, "snippet").unwrap();
    let close = |a: [f64; 7], b: [f64; 7]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-9);
    assert!(close(r.lvo_mt_at(0.0).unwrap(), r.row("t0_treatment_lvo_mt").unwrap()));
    let ne = r.row("no_effect_lvo_mt_deaths").unwrap();
    assert!(close(r.lvo_mt_at(MT_NO_EFFECT_H).unwrap(), ne));
    assert_eq!(r.lvo_mt_at(20.0).unwrap(), r.lvo_mt_at(MT_NO_EFFECT_H).unwrap());
    let bad = SNIPPET.replace("0.85", "0.6"); // not non-decreasing
    assert!(matches!(
        MrsReference::parse(&bad, "x"),
        Err(StrokeError::BadDataFile { line: 3, .. })
    ));
    assert!(MrsReference::parse(&SNIPPET.replace("0.05", "a"), "x").is_err());
    assert!(MrsReference::parse(&SNIPPET.replace("no_effect", "other"), "x").is_err());
}

#[test]
fn outcome_by_treatment_time_has_the_reference_shape() {
    let path = reference_path();
    let reference = match MrsReference::load(&path) {
        Ok(r) => r,
        Err(StrokeError::DataMissing { .. }) => {
            eprintln!("skipped: {} not fetched (cargo xtask fetch-data)", path.display());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut anatomy = StrokeAnatomy::phantom_2d(24, 28, 6.5).unwrap();
    let patient = &cohort(1)[0];
    let perf = anatomy.occlude(patient.territory).unwrap();
    let truth = truth_model(patient, &perf, FateConstants::default()).unwrap();
    let p = patient.fate_params().to_vec();
    let times: Vec<f64> = (0..=12).map(|k| 0.5 + k as f64).collect();
    let curve: Vec<(f64, f64)> = times
        .iter()
        .map(|&t| {
            let d = final_dead(&truth, &p, anatomy.n_voxels(), t, 24.0).unwrap();
            (t, equivalent_ml(&anatomy, &d))
        })
        .collect();
    let model = OutcomeModel::calibrated(&reference, &curve).unwrap();
    let default = OutcomeModel::default();
    let (mut max_dev_default, mut max_dev, mut prev_ours, mut prev_ref) =
        (0.0f64, 0.0f64, [1.0; 7], [1.0; 7]);
    for &(t, v) in &curve {
        let (ours, refd) = (model.cumulative(v), reference.lvo_mt_at(t).unwrap());
        let mean = |c: &[f64; 7]| 6.0 - c[..6].iter().sum::<f64>();
        eprintln!(
            "T = {t:4.1} h: infarct {v:6.1} ml, P(mRS ≤ 2) ours {:.3} reference {:.3}, mean mRS {:.2} / {:.2}",
            ours[2],
            refd[2],
            mean(&ours),
            mean(&refd)
        );
        let def = default.cumulative(v);
        for k in 0..7 {
            max_dev = max_dev.max((ours[k] - refd[k]).abs());
            max_dev_default = max_dev_default.max((def[k] - refd[k]).abs());
            // Both worsen (stochastically) with delay.
            assert!(ours[k] <= prev_ours[k] + 1e-12 && refd[k] <= prev_ref[k] + 1e-12);
        }
        (prev_ours, prev_ref) = (ours, refd);
    }
    eprintln!(
        "calibrated α {:.3?}, b {:.4} /ml; max |ΔP(mRS ≤ k)| {max_dev:.3} (embedded default: {max_dev_default:.3})",
        model.alpha, model.slope
    );
    assert!(model.slope > 0.0);
    assert!(max_dev < 0.1, "max deviation {max_dev}");
}
