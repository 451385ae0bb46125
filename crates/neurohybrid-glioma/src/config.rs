//! The scenario: everything a glioma simulation or fit needs, as a serde/TOML config with
//! units in the field docs, validated on load ([`Scenario::from_toml_str`],
//! [`Scenario::from_path`]).
//!
//! Units: lengths in mm, times in days since tumour onset, doses in Gy. Unknown keys are
//! rejected (`deny_unknown_fields`), so a misspelt key is an error naming it, not a silently
//! ignored default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::anatomy::Anatomy;
use crate::error::{GliomaError, Result};

/// A complete glioma scenario. See the module docs for units; `examples/glioma-*.toml` at the
/// repository root are annotated examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Where the tumour grows.
    pub anatomy: AnatomyConfig,
    /// Growth parameters of the Fisher–Kolmogorov model.
    pub tumor: TumorParams,
    /// The initial tumour at onset (`t = 0`).
    pub seed: Seed,
    /// Imaging time points.
    pub scans: Scans,
    /// Radiotherapy course (none if absent).
    #[serde(default)]
    pub radiotherapy: Option<Radiotherapy>,
    /// Chemotherapy course (none if absent).
    #[serde(default)]
    pub chemotherapy: Option<Chemotherapy>,
    /// Observation model: segmentation thresholds and noise.
    #[serde(default)]
    pub imaging: Imaging,
    /// Solver choice and tolerances.
    #[serde(default)]
    pub solver: SolverConfig,
    /// Extra physics of a *synthetic patient's* truth that the plain model lacks (absent:
    /// the truth is the plain model). Used by `fit` to generate the observed scans.
    #[serde(default)]
    pub truth: Option<TruthPhysics>,
}

/// The anatomy: the embedded phantom or NIfTI tissue probability maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnatomyConfig {
    /// The procedural phantom of `neurohybrid-mesh` (brain semi-axes 40 % of the field of
    /// view).
    Phantom {
        /// 2 (axial slice) or 3.
        dim: usize,
        /// Voxels per axis (`dim` values).
        shape: Vec<usize>,
        /// Isotropic voxel size (mm).
        spacing_mm: f64,
    },
    /// White matter, gray matter and CSF probability maps (NIfTI-1, one geometry), e.g. the
    /// MNI152 maps fetched by `cargo xtask fetch-data` into `data/mni152/`. Relative paths are
    /// relative to the scenario file's folder (or the working directory for a string).
    Nifti {
        /// White-matter map.
        wm: PathBuf,
        /// Gray-matter map.
        gm: PathBuf,
        /// CSF map.
        csf: PathBuf,
        /// Optional brain mask (nonzero = inside); without it, voxels with
        /// `p_wm + p_gm + p_csf ≥ 0.5` are active.
        #[serde(default)]
        mask: Option<PathBuf>,
        /// Block-averaging factor (1 mm maps with 2 → a 2 mm grid).
        #[serde(default = "one")]
        downsample: usize,
        /// 2D instead of 3D: the axial slice with this z index (after downsampling).
        #[serde(default)]
        axial_slice: Option<usize>,
    },
}

fn one() -> usize {
    1
}

/// Growth parameters: `∂c/∂t = ∇·(D(x)∇c) + ρ c (1 − c)`, `D = D_w (p_wm + p_gm / R)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TumorParams {
    /// White-matter diffusivity `D_w` (mm²/day; literature prior 0.02–1.5).
    pub d_w: f64,
    /// White/gray diffusivity ratio `R` (dimensionless, 5–20 in the literature).
    #[serde(default = "default_r")]
    pub r: f64,
    /// Proliferation rate `ρ` (1/day; prior 0.002–0.2).
    pub rho: f64,
}

fn default_r() -> f64 {
    10.0
}

/// The tumour at onset: a Gaussian bump `c0 = density · exp(−|x − x_s|² / (2 radius²))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Centre in world coordinates (mm; 2 values on a 2D grid, 3 on a 3D one). The phantom's
    /// origin is the centre of the field of view.
    pub location_mm: Vec<f64>,
    /// Gaussian width σ (mm).
    #[serde(default = "default_radius")]
    pub radius_mm: f64,
    /// Peak cell density (fraction of carrying capacity, in (0, 1]).
    #[serde(default = "default_density")]
    pub density: f64,
}

fn default_radius() -> f64 {
    5.0
}
fn default_density() -> f64 {
    0.5
}

/// Imaging time points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scans {
    /// Scan times (days since onset, strictly increasing, > 0).
    pub days: Vec<f64>,
    /// How many of the first scans a fit may use (the rest are held out).
    #[serde(default = "default_training")]
    pub training: usize,
}

fn default_training() -> usize {
    2
}

/// Radiotherapy by the linear-quadratic model: each fraction of dose `d` multiplies the cell
/// density by the surviving fraction `exp(−α d − β d²)` (Rockne et al. 2010).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Radiotherapy {
    /// Day of the first fraction (days since onset).
    pub start_day: f64,
    /// Number of fractions (standard course: 30).
    #[serde(default = "default_fractions")]
    pub fractions: usize,
    /// Dose per fraction (Gy; standard 2).
    #[serde(default = "default_dose")]
    pub dose_gy: f64,
    /// Linear coefficient α (1/Gy; glioblastoma estimate 0.12, Pedicini et al.).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Quadratic coefficient β (1/Gy²; 0.015, α/β = 8 Gy).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Fractions on weekdays only (5 per week, starting on a Monday), else daily.
    #[serde(default = "default_true")]
    pub weekdays_only: bool,
}

fn default_fractions() -> usize {
    30
}
fn default_dose() -> f64 {
    2.0
}
fn default_alpha() -> f64 {
    0.12
}
fn default_beta() -> f64 {
    0.015
}
fn default_true() -> bool {
    true
}

impl Radiotherapy {
    /// The fraction times (days since onset).
    pub fn fraction_days(&self) -> Vec<f64> {
        let mut days = Vec::with_capacity(self.fractions);
        let mut k = 0usize;
        while days.len() < self.fractions {
            if !self.weekdays_only || k % 7 < 5 {
                days.push(self.start_day + k as f64);
            }
            k += 1;
        }
        days
    }

    /// Surviving fraction of one fraction, `exp(−α d − β d²)`.
    pub fn surviving_fraction(&self) -> f64 {
        (-self.alpha * self.dose_gy - self.beta * self.dose_gy * self.dose_gy).exp()
    }
}

/// Chemotherapy as a kill term `−k(t) c` with `k(t) = kill_rate · Σ_doses exp(−ln2 (t − t_d) /
/// half_life)` for `t ≥ t_d`: each dose raises the drug effect, which decays with first-order
/// pharmacokinetics. **A modeling assumption** (no sourced standard term exists for
/// temozolomide; REFERENCES.md), not a fitted pharmacology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chemotherapy {
    /// Day of the first dose (days since onset).
    pub start_day: f64,
    /// Number of doses.
    pub doses: usize,
    /// Days between doses.
    #[serde(default = "default_interval")]
    pub interval_days: f64,
    /// Kill rate right after one dose (1/day).
    pub kill_rate: f64,
    /// Half-life of the drug effect (days).
    #[serde(default = "default_half_life")]
    pub half_life_days: f64,
}

fn default_interval() -> f64 {
    1.0
}
fn default_half_life() -> f64 {
    0.5
}

impl Chemotherapy {
    /// Dose times (days since onset).
    pub fn dose_days(&self) -> Vec<f64> {
        (0..self.doses).map(|i| self.start_day + i as f64 * self.interval_days).collect()
    }
}

/// Observation model: density thresholds giving segmentations, and noise of the density
/// (PET-like) signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imaging {
    /// Enhancing core (T1-Gd): `c ≥ t1_threshold` (0.6–0.8 in the literature).
    #[serde(default = "default_t1")]
    pub t1_threshold: f64,
    /// Edema (FLAIR): `flair_threshold ≤ c < t1_threshold` (0.16–0.25).
    #[serde(default = "default_flair")]
    pub flair_threshold: f64,
    /// Standard deviation of Gaussian noise on observed densities (fraction of capacity).
    #[serde(default = "default_noise")]
    pub noise_std: f64,
    /// Random seed of the observation noise.
    #[serde(default)]
    pub noise_seed: u64,
}

fn default_t1() -> f64 {
    0.7
}
fn default_flair() -> f64 {
    0.2
}
fn default_noise() -> f64 {
    0.02
}

impl Default for Imaging {
    fn default() -> Self {
        Imaging {
            t1_threshold: default_t1(),
            flair_threshold: default_flair(),
            noise_std: default_noise(),
            noise_seed: 0,
        }
    }
}

/// Which time integrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Tsit5 when the diffusion is not stiff on this grid over the scan interval, KenCarp4
    /// IMEX (diffusion implicit, reaction explicit) otherwise (see [`crate::model::choose_method`]).
    #[default]
    Auto,
    /// Explicit Tsit5 (coarse grids).
    Tsit5,
    /// IMEX KenCarp4 on `Split { stiff: diffusion, nonstiff: reaction + chemotherapy }`, with the
    /// mesh's Jacobian sparsity.
    KenCarp4,
}

/// Solver choice and tolerances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverConfig {
    /// The integrator.
    #[serde(default)]
    pub method: Method,
    /// Relative tolerance.
    #[serde(default = "default_rtol")]
    pub rtol: f64,
    /// Absolute tolerance (density units).
    #[serde(default = "default_atol")]
    pub atol: f64,
}

fn default_rtol() -> f64 {
    1e-4
}
fn default_atol() -> f64 {
    1e-6
}

impl Default for SolverConfig {
    fn default() -> Self {
        SolverConfig { method: Method::Auto, rtol: default_rtol(), atol: default_atol() }
    }
}

/// Physics of a synthetic patient's truth that the plain Fisher–Kolmogorov model lacks.
///
/// The truth's reaction term is `ρ (1 + wm_proliferation_gain · p_wm(x)) c (1 − c)`: cells
/// proliferate faster in white matter (a spatially varying ρ tied to tissue). The plain model
/// has one ρ, so it cannot match the fronts in white and gray matter at once; a pointwise
/// network that sees `(c, p_wm, p_gm)` can learn the missing term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthPhysics {
    /// Relative extra proliferation in white matter (dimensionless, ≥ 0).
    pub wm_proliferation_gain: f64,
}

impl Scenario {
    /// Parses and validates a scenario from TOML text. Relative anatomy paths are taken
    /// relative to the working directory.
    ///
    /// # Errors
    /// [`GliomaError::Parse`] (bad TOML, unknown key, wrong type), and everything
    /// [`Scenario::validate`] reports.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let s: Scenario = toml::from_str(text)
            .map_err(|e| GliomaError::Parse { path: None, message: e.to_string() })?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a scenario file; relative anatomy paths are resolved
    /// against the file's folder.
    ///
    /// # Errors
    /// [`GliomaError::MissingFile`] / [`GliomaError::Read`] for the file, then as
    /// [`Scenario::from_toml_str`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(GliomaError::MissingFile { path: path.to_path_buf(), what: "scenario" });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| GliomaError::Read { path: path.to_path_buf(), source })?;
        let mut s: Scenario = toml::from_str(&text).map_err(|e| GliomaError::Parse {
            path: Some(path.to_path_buf()),
            message: e.to_string(),
        })?;
        if let AnatomyConfig::Nifti { wm, gm, csf, mask, .. } = &mut s.anatomy {
            let base = path.parent().unwrap_or(Path::new("."));
            for p in [Some(wm), Some(gm), Some(csf), mask.as_mut()].into_iter().flatten() {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// Serializes to TOML (round-trips through [`Scenario::from_toml_str`]).
    ///
    /// # Errors
    /// [`GliomaError::Invalid`] if serialization fails (it does not for valid scenarios).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| GliomaError::Invalid(e.to_string()))
    }

    /// Checks every number and, by building it, the anatomy (files exist, maps share one
    /// shape, the seed lies in brain tissue).
    ///
    /// # Errors
    /// [`GliomaError::NegativeDiffusivity`], [`GliomaError::InvalidValue`],
    /// [`GliomaError::Invalid`], [`GliomaError::MissingFile`],
    /// [`GliomaError::TissueShapeMismatch`], [`GliomaError::SeedOutsideBrain`].
    pub fn validate(&self) -> Result<()> {
        self.validate_numbers()?;
        let anatomy = Anatomy::build(&self.anatomy)?;
        anatomy.check_seed(&self.seed)?;
        Ok(())
    }

    /// The checks of [`Scenario::validate`] that do not need the anatomy.
    ///
    /// # Errors
    /// As [`Scenario::validate`], without the anatomy ones.
    pub fn validate_numbers(&self) -> Result<()> {
        let t = &self.tumor;
        if !(t.d_w.is_finite() && t.d_w > 0.0) {
            return Err(GliomaError::NegativeDiffusivity { name: "tumor.d_w", value: t.d_w });
        }
        if !(t.r.is_finite() && t.r > 0.0) {
            return Err(GliomaError::NegativeDiffusivity { name: "tumor.r", value: t.r });
        }
        positive("tumor.rho", t.rho)?;
        positive("seed.radius_mm", self.seed.radius_mm)?;
        in_range("seed.density", self.seed.density, 0.0, 1.0, false)?;
        if let AnatomyConfig::Phantom { dim, shape, spacing_mm } = &self.anatomy {
            if *dim != 2 && *dim != 3 {
                return Err(GliomaError::Invalid(format!("anatomy.dim must be 2 or 3, got {dim}")));
            }
            if shape.len() != *dim {
                return Err(GliomaError::Invalid(format!(
                    "anatomy.shape needs {dim} values, got {}",
                    shape.len()
                )));
            }
            if shape.iter().any(|&s| s < 8) {
                return Err(GliomaError::Invalid(format!(
                    "anatomy.shape {shape:?}: at least 8 voxels per axis"
                )));
            }
            positive("anatomy.spacing_mm", *spacing_mm)?;
        }
        if let AnatomyConfig::Nifti { downsample, .. } = &self.anatomy
            && *downsample == 0
        {
            return Err(GliomaError::Invalid("anatomy.downsample must be ≥ 1".into()));
        }
        let days = &self.scans.days;
        if days.is_empty() {
            return Err(GliomaError::Invalid("scans.days is empty".into()));
        }
        for (i, &d) in days.iter().enumerate() {
            positive(&format!("scans.days[{i}]"), d)?;
            if i > 0 && d <= days[i - 1] {
                return Err(GliomaError::Invalid(format!(
                    "scans.days must increase strictly ({} then {d})",
                    days[i - 1]
                )));
            }
        }
        if self.scans.training == 0 || self.scans.training > days.len() {
            return Err(GliomaError::Invalid(format!(
                "scans.training = {} must be in 1..={}",
                self.scans.training,
                days.len()
            )));
        }
        if let Some(rt) = &self.radiotherapy {
            non_negative("radiotherapy.start_day", rt.start_day)?;
            non_negative("radiotherapy.dose_gy", rt.dose_gy)?;
            non_negative("radiotherapy.alpha", rt.alpha)?;
            non_negative("radiotherapy.beta", rt.beta)?;
        }
        if let Some(ch) = &self.chemotherapy {
            non_negative("chemotherapy.start_day", ch.start_day)?;
            non_negative("chemotherapy.kill_rate", ch.kill_rate)?;
            positive("chemotherapy.half_life_days", ch.half_life_days)?;
            positive("chemotherapy.interval_days", ch.interval_days)?;
        }
        let im = &self.imaging;
        in_range("imaging.flair_threshold", im.flair_threshold, 0.0, 1.0, false)?;
        in_range("imaging.t1_threshold", im.t1_threshold, im.flair_threshold, 1.0, false)?;
        non_negative("imaging.noise_std", im.noise_std)?;
        positive("solver.rtol", self.solver.rtol)?;
        positive("solver.atol", self.solver.atol)?;
        if let Some(tr) = &self.truth {
            non_negative("truth.wm_proliferation_gain", tr.wm_proliferation_gain)?;
        }
        Ok(())
    }
}

fn positive(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(GliomaError::InvalidValue {
            name: name.to_string(),
            value,
            expected: "must be finite and > 0".into(),
        })
    }
}

fn non_negative(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(GliomaError::InvalidValue {
            name: name.to_string(),
            value,
            expected: "must be finite and ≥ 0".into(),
        })
    }
}

/// `lo < value ≤ hi` (or `lo ≤ value` when `closed_lo`).
fn in_range(name: &str, value: f64, lo: f64, hi: f64, closed_lo: bool) -> Result<()> {
    let ok = value.is_finite() && value <= hi && (value > lo || (closed_lo && value == lo));
    if ok {
        Ok(())
    } else {
        Err(GliomaError::InvalidValue {
            name: name.to_string(),
            value,
            expected: format!("must be in ({lo}, {hi}]"),
        })
    }
}
