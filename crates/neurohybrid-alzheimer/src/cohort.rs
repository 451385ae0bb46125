//! Synthetic cohorts with known ground truth.
//!
//! Each subject is seeded at `t = 0` (years) in one region with an amount `s`, spreads by the
//! truth model [`ClearanceFkpp`] (network Fisher–KPP **plus a load-activated clearance** that the
//! plain models lack) with its own `κ` and `α`, and is scanned at visits `T0 + offsets`, where
//! `T0` (years since seeding at the first visit) varies between subjects. Amyloid-positive
//! subjects have higher production `α` (Schäfer et al. 2021 report 0.019 vs −0.143 /yr net
//! regional production for Aβ+ vs Aβ−); transport `κ` grows with age. Visit times since
//! seeding are known to the fits — a simplification real data do not offer, stated in
//! ADR 0014.

use serde::{Deserialize, Serialize};

use neurohybrid_nn::rng::SplitMix64;

use crate::connectome::Brain;
use crate::error::{Result, check_finite_nonneg};
use crate::models::ClearanceFkpp;
use crate::observe::{ObservationModel, cumulative_load};
use crate::simulate::trajectory;

/// How a cohort is drawn. All rates in 1/yr, times in years.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortConfig {
    /// Number of subjects.
    pub n_subjects: usize,
    /// Seed of the random draws (subjects, noise).
    pub seed: u64,
    /// Visit times relative to the first visit (years); the first is 0.
    pub visit_offsets: Vec<f64>,
    /// How many of the first visits are used for fitting (the rest are held out).
    pub n_early: usize,
    /// Range of `T0`, years since seeding at the first visit.
    pub onset_range: (f64, f64),
    /// Range of `α` for amyloid-positive subjects.
    pub alpha_positive: (f64, f64),
    /// Range of `α` for amyloid-negative subjects.
    pub alpha_negative: (f64, f64),
    /// `κ = kappa_base + kappa_age · (age − 70)/10`, times a factor in `[0.8, 1.2]`.
    pub kappa_base: f64,
    /// Age dependence of `κ` per decade.
    pub kappa_age: f64,
    /// Fraction of amyloid-positive subjects.
    pub amyloid_fraction: f64,
    /// Range of the seeded amount.
    pub seed_amount: (f64, f64),
    /// Candidate seed regions (labels) and their probabilities.
    pub seeds: Vec<(String, f64)>,
    /// Truth clearance rate γ at high load.
    pub gamma: f64,
    /// Truth clearance half-activation load `c_s`.
    pub c_half: f64,
    /// The observation model.
    pub observation: ObservationModel,
}

impl Default for CohortConfig {
    fn default() -> Self {
        Self {
            n_subjects: 20,
            seed: 2026,
            visit_offsets: vec![0.0, 1.5, 3.0, 5.0, 7.0],
            n_early: 3,
            onset_range: (4.0, 8.0),
            alpha_positive: (0.6, 1.0),
            alpha_negative: (0.35, 0.5),
            kappa_base: 0.1,
            kappa_age: 0.03,
            amyloid_fraction: 0.6,
            seed_amount: (0.1, 0.3),
            seeds: vec![
                ("l_entorhinal".into(), 0.45),
                ("r_entorhinal".into(), 0.35),
                ("l_parahippocampal".into(), 0.1),
                ("r_parahippocampal".into(), 0.1),
            ],
            gamma: 0.4,
            c_half: 0.2,
            observation: ObservationModel::default(),
        }
    }
}

/// The hidden truth of one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTruth {
    /// Transport rate κ (1/yr).
    pub kappa: f64,
    /// Production rate α (1/yr).
    pub alpha: f64,
    /// Seed region index.
    pub seed_region: usize,
    /// Seeded amount.
    pub seed_amount: f64,
    /// Years since seeding at the first visit.
    pub onset: f64,
}

/// One synthetic subject: covariates, visits, observations and the truth behind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Subject number in the cohort.
    pub id: usize,
    /// Amyloid status.
    pub amyloid_positive: bool,
    /// Age at the first visit (years).
    pub age: f64,
    /// Visit times in years since seeding.
    pub times: Vec<f64>,
    /// Observed SUVR, `times.len() × n_regions`, row-major.
    pub suvr: Vec<f64>,
    /// True concentrations at the visits (same layout).
    pub true_concentration: Vec<f64>,
    /// True atrophy at the visits (same layout).
    pub atrophy: Vec<f64>,
    /// How many of the first visits are for fitting.
    pub n_early: usize,
    /// The hidden truth.
    pub truth: SubjectTruth,
}

impl Subject {
    /// Covariates seen by a series model: `[amyloid status (0/1), (age − 70)/10]`.
    pub fn covariates(&self) -> [f64; 2] {
        [f64::from(u8::from(self.amyloid_positive)), (self.age - 70.0) / 10.0]
    }

    /// Observed concentrations (SUVR read back through `obs`), same layout as `suvr`.
    pub fn observed_concentration(&self, obs: &ObservationModel) -> Vec<f64> {
        self.suvr.iter().map(|&s| obs.concentration(s)).collect()
    }

    /// Number of regions.
    pub fn n_regions(&self) -> usize {
        self.suvr.len() / self.times.len().max(1)
    }
}

/// A cohort: its brain, its configuration and its subjects.
#[derive(Debug, Clone)]
pub struct Cohort {
    /// The connectome the cohort lives on.
    pub brain: Brain,
    /// How it was drawn.
    pub config: CohortConfig,
    /// The subjects.
    pub subjects: Vec<Subject>,
}

fn uniform(rng: &mut SplitMix64, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

impl CohortConfig {
    fn validate(&self, brain: &Brain) -> Result<Vec<(usize, f64)>> {
        self.observation.validate()?;
        for (name, v) in [
            ("gamma", self.gamma),
            ("kappa_base", self.kappa_base),
            ("amyloid_fraction", self.amyloid_fraction),
        ] {
            check_finite_nonneg(name, v)?;
        }
        if self.visit_offsets.is_empty()
            || self.n_early == 0
            || self.n_early > self.visit_offsets.len()
        {
            return Err(crate::AlzheimerError::InvalidParameter {
                name: "n_early",
                value: self.n_early as f64,
                reason: "must be in 1..=number of visits",
            });
        }
        self.seeds.iter().map(|(l, p)| Ok((brain.region(l)?, *p))).collect()
    }
}

/// Draws a cohort on `brain` (deterministic in `config.seed`).
///
/// # Errors
/// Invalid configuration (unknown seed labels, bad rates), or a failed truth solve.
pub fn generate(brain: &Brain, config: &CohortConfig) -> Result<Cohort> {
    let seeds = config.validate(brain)?;
    let n = brain.n_regions();
    let obs = config.observation;
    let truth_model = ClearanceFkpp::new(brain.diffusion(), config.gamma, config.c_half)?;
    let mut rng = SplitMix64::new(config.seed);
    let mut subjects = Vec::with_capacity(config.n_subjects);
    let total_p: f64 = seeds.iter().map(|s| s.1).sum();
    for id in 0..config.n_subjects {
        let amyloid_positive = rng.uniform() < config.amyloid_fraction;
        let age = uniform(&mut rng, (60.0, 85.0));
        let alpha = uniform(
            &mut rng,
            if amyloid_positive { config.alpha_positive } else { config.alpha_negative },
        );
        let kappa = (config.kappa_base + config.kappa_age * (age - 70.0) / 10.0).max(0.01)
            * uniform(&mut rng, (0.8, 1.2));
        let mut pick = rng.uniform() * total_p;
        let mut seed_region = seeds[0].0;
        for &(r, p) in &seeds {
            if pick < p {
                seed_region = r;
                break;
            }
            pick -= p;
        }
        let seed_amount = uniform(&mut rng, config.seed_amount);
        let onset = uniform(&mut rng, config.onset_range);
        let times: Vec<f64> = config.visit_offsets.iter().map(|o| onset + o).collect();
        // A fine grid (≈ 0.1 yr) merged with the visits, for the atrophy integral.
        let t_end = *times.last().expect("validated non-empty");
        let steps = (t_end / 0.1).ceil() as usize;
        let mut grid: Vec<f64> = (1..=steps).map(|k| t_end * k as f64 / steps as f64).collect();
        grid.extend(&times);
        grid.sort_by(f64::total_cmp);
        grid.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        let mut y0 = vec![0.0; n];
        y0[seed_region] = seed_amount;
        let ys = trajectory(&truth_model, &y0, &[kappa, alpha], 0.0, &grid)?;
        let mut ts = vec![0.0];
        ts.extend(&grid);
        let mut all = y0.clone();
        all.extend(&ys);
        let load = cumulative_load(&ts, &all, n);
        let mut true_concentration = Vec::with_capacity(times.len() * n);
        let mut atrophy = Vec::with_capacity(times.len() * n);
        for &t in &times {
            let k = ts.iter().position(|&s| (s - t).abs() < 1e-12).expect("visit is on the grid");
            true_concentration.extend_from_slice(&all[k * n..(k + 1) * n]);
            atrophy.extend(obs.atrophy(&load[k]));
        }
        let suvr =
            true_concentration.iter().map(|&c| obs.suvr(c) + obs.noise_sd * rng.normal()).collect();
        subjects.push(Subject {
            id,
            amyloid_positive,
            age,
            times,
            suvr,
            true_concentration,
            atrophy,
            n_early: config.n_early,
            truth: SubjectTruth { kappa, alpha, seed_region, seed_amount, onset },
        });
    }
    Ok(Cohort { brain: brain.clone(), config: config.clone(), subjects })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohorts_are_deterministic_and_spread_from_the_seed() {
        let brain = Brain::synthetic_dk68();
        let cfg = CohortConfig { n_subjects: 3, ..CohortConfig::default() };
        let a = generate(&brain, &cfg).unwrap();
        let b = generate(&brain, &cfg).unwrap();
        assert_eq!(a.subjects, b.subjects);
        let n = brain.n_regions();
        for s in &a.subjects {
            let first = &s.true_concentration[..n];
            let last = &s.true_concentration[(s.times.len() - 1) * n..];
            let seed = s.truth.seed_region;
            assert!(first[seed] >= first.iter().copied().fold(0.0, f64::max) - 1e-12);
            assert!(last.iter().sum::<f64>() > first.iter().sum::<f64>());
            assert!(s.atrophy.iter().all(|a| (0.0..1.0).contains(a)));
        }
        let bad = CohortConfig { seeds: vec![("nowhere".into(), 1.0)], ..cfg };
        assert!(generate(&brain, &bad).is_err());
    }
}
