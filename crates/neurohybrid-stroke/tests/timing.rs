//! "Time is brain": on every synthetic patient the final infarct grows monotonically with the
//! onset-to-reperfusion time, and the timing curve flattens once the penumbra is gone.

use neurohybrid_stroke::anatomy::StrokeAnatomy;
use neurohybrid_stroke::fate::FateConstants;
use neurohybrid_stroke::outcome::{timing_curve, volumes};
use neurohybrid_stroke::patient::{cohort, truth_model};

#[test]
fn infarct_grows_with_delay_and_plateaus_when_the_penumbra_is_gone() {
    let mut anatomy = StrokeAnatomy::phantom_2d(24, 28, 6.5).unwrap();
    let constants = FateConstants::default();
    // 0.5 … 40.5 h: slowly dying penumbra at the territory's edge (CBF just under θ_I, dying at
    // ≈ k_death γ h ≈ 0.05 /h) is what the last part of the curve measures.
    let delays: Vec<f64> = (0..=16).map(|k| 0.5 + 2.5 * k as f64).collect();
    for patient in cohort(10) {
        let perf = anatomy.occlude(patient.territory).unwrap();
        let truth = truth_model(&patient, &perf, constants).unwrap();
        let p = patient.fate_params().to_vec();
        let curve = timing_curve(&anatomy, &truth, &p, &delays, 72.0).unwrap();
        for w in curve.windows(2) {
            assert!(w[1] >= w[0] - 1e-9, "{}: not monotone: {curve:?}", patient.id);
        }
        let total = curve.last().unwrap() - curve[0];
        assert!(total > 0.0, "{}: delay changed nothing", patient.id);
        // The penumbra (hypoperfused tissue not yet dead) left without treatment.
        let untreated = volumes(&anatomy, &truth, &p, f64::INFINITY, &[1.0, 40.0]).unwrap();
        let (early, late) = (untreated.penumbra_ml[0], untreated.penumbra_ml[1]);
        // Slope of the timing curve early (first 5 h) and late (after 35 h), per hour.
        let slope_early = (curve[2] - curve[0]) / (delays[2] - delays[0]);
        let n = curve.len();
        let slope_late = (curve[n - 1] - curve[n - 3]) / (delays[n - 1] - delays[n - 3]);
        eprintln!(
            "{}: infarct {:.3} → {:.3} ml, penumbra {:.3} → {:.3} ml, slope {:.4} → {:.5} ml/h",
            patient.id,
            curve[0],
            curve[n - 1],
            early,
            late,
            slope_early,
            slope_late
        );
        assert!(late < 0.05 * early, "{}: penumbra not gone by 40 h", patient.id);
        assert!(slope_late < 0.05 * slope_early, "{}: no plateau", patient.id);
    }
}
