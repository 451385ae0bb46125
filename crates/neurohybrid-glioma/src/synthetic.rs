//! Synthetic patients with known ground truth.
//!
//! A patient is a scenario whose `truth` physics the plain model lacks: proliferation is
//! faster in white matter, `ρ(x) = ρ (1 + κ p_wm(x))` with `κ = truth.wm_proliferation_gain`.
//! The truth is solved at every scan; the training scans are observed as densities with
//! Gaussian noise ([`crate::observe::noisy_density`]). The plain Fisher–Kolmogorov model has
//! one ρ, so its best fit is a compromise between the white- and gray-matter fronts; a
//! pointwise network that sees `(c, p_wm, p_gm)` can learn the difference.

use neurohybrid_nn::rng::SplitMix64;

use crate::anatomy::Anatomy;
use crate::config::{Scenario, TruthPhysics};
use crate::error::Result;
use crate::model::scenario_params;
use crate::observe::noisy_density;
use crate::progress::Progress;
use crate::simulate::{solve_at, truth_growth};

/// A synthetic patient: scenario (with the true parameters), anatomy, true and observed scans.
#[derive(Debug, Clone)]
pub struct SyntheticPatient {
    /// The scenario, whose `tumor`, `seed` and `truth` are the ground truth.
    pub scenario: Scenario,
    /// The anatomy.
    pub anatomy: Anatomy,
    /// True density at every scan (active cells).
    pub truth: Vec<Vec<f64>>,
    /// Observed (noisy) density at the training scans (active cells).
    pub observed: Vec<Vec<f64>>,
}

impl SyntheticPatient {
    /// Solves the truth of `scenario` at every scan and observes the training scans.
    ///
    /// # Errors
    /// Invalid scenarios and failed solves.
    pub fn generate(scenario: &Scenario, progress: &mut dyn FnMut(Progress)) -> Result<Self> {
        scenario.validate_numbers()?;
        let anatomy = Anatomy::build(&scenario.anatomy)?;
        anatomy.check_seed(&scenario.seed)?;
        Self::on(scenario, anatomy, progress)
    }

    /// As [`SyntheticPatient::generate`] on an already built anatomy.
    ///
    /// # Errors
    /// Failed solves.
    pub fn on(
        scenario: &Scenario,
        anatomy: Anatomy,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Self> {
        let growth = truth_growth(scenario, &anatomy);
        let params = scenario_params(scenario);
        let mut tick = |p: Progress| progress(Progress { stage: "synthetic patient", ..p });
        let (truth, _, _) =
            solve_at(scenario, &anatomy, growth, &params, &scenario.scans.days, &mut tick)?;
        let observed = truth[..scenario.scans.training]
            .iter()
            .enumerate()
            .map(|(k, c)| noisy_density(c, &scenario.imaging, k as u64))
            .collect();
        Ok(SyntheticPatient { scenario: scenario.clone(), anatomy, truth, observed })
    }

    /// The true parameter vector `[D_w, ρ, seed…]` (of the plain part).
    pub fn true_params(&self) -> Vec<f64> {
        scenario_params(&self.scenario)
    }
}

/// `n` patients around `base` on its anatomy: `D_w` and `ρ` log-uniform within ×/÷ 1.5 of
/// the base values, `κ` uniform in `[0.5, 1.5] × base κ` (κ = 1 if the base has no truth),
/// the seed at a random white-matter cell (`p_wm ≥ 0.9`) at least 12 mm from the brain edge
/// region (`p_wm + p_gm ≥ 0.99` within the seed width), noise seeds distinct. Deterministic in
/// `seed`.
pub fn cohort(base: &Scenario, anatomy: &Anatomy, n: usize, seed: u64) -> Vec<Scenario> {
    let mut rng = SplitMix64::new(seed);
    let centres = anatomy.centres();
    let candidates: Vec<usize> = (0..anatomy.n()).filter(|&a| anatomy.wm[a] >= 0.9).collect();
    let kappa = base.truth.map_or(1.0, |t| t.wm_proliferation_gain);
    let dim = anatomy.grid.dim();
    (0..n)
        .map(|i| {
            let mut s = base.clone();
            let f = |rng: &mut SplitMix64| 1.5f64.powf(2.0 * rng.uniform() - 1.0);
            s.tumor.d_w *= f(&mut rng);
            s.tumor.rho *= f(&mut rng);
            s.truth = Some(TruthPhysics { wm_proliferation_gain: kappa * (0.5 + rng.uniform()) });
            if !candidates.is_empty() {
                let a = candidates
                    [(rng.uniform() * candidates.len() as f64) as usize % candidates.len()];
                s.seed.location_mm = centres[a][..dim].to_vec();
            }
            s.imaging.noise_seed = seed.wrapping_add(1000 + i as u64);
            s
        })
        .collect()
}
