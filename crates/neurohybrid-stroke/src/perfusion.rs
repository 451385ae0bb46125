//! Brain perfusion: tissue-dependent Darcy fields, arterial territories, an occlusion.
//!
//! **Fields** (assumptions, stated): the exchange coefficient follows capillary density,
//! `β = β₀ (p_gm + r_wm p_wm) + β_floor` with `r_wm = 0.4` (white-matter CBF is ≈ 40 % of
//! gray-matter CBF, ≈ 20–25 vs 50–60 ml/100 g/min in PET studies; Leenders et al. 1990,
//! Brain 113), and a small floor so CSF cells keep `M` SPD. The conductivity `K` is uniform in
//! the intracranial mask; `√(K/β)` is the distance (mm) over which neighbouring territories
//! share supply through the tissue.
//!
//! **Territories.** Six arterial territories (anterior, middle, posterior cerebral artery per
//! hemisphere) as a smooth partition of unity in the axial angle `φ = atan2(y, x)` around the
//! brain's centroid: `w_t ∝ a_t exp(κ cos(φ − φ_t))` (a von Mises mixture; the MCA territories
//! get weight `a = 2`, they are the largest). Crude next to a vascular atlas, but
//! differentiable and resolution-independent, and enough to place an occlusion.
//!
//! **Source and occlusion.** The arterial inflow is `f = β p_a s`, with supply fraction
//! `s = 1 − σ w_occ (1 − c)`: occlusion severity `σ ∈ [0, 1]` in the occluded territory, of
//! which the fraction `c ∈ [0, 1]` (collateral strength) still arrives through collaterals.
//! Without occlusion `p ≈ p_a` and `CBF ≈ β p_a` (60 ml/100 g/min in gray matter at
//! `β₀ p_a = 60`). Because `f` is affine in `c`, so is the perfusion:
//! `CBF(c) = CBF(0) + c (CBF_normal − CBF(0))` for `σ = 1`, which the tissue-fate model uses
//! to evaluate time-varying collaterals without new solves.

use neurohybrid_mesh::{Grid, TissueMaps};
use serde::{Deserialize, Serialize};

use crate::darcy::{Darcy, DarcyGradient, DarcySolution};
use crate::error::{Result, StrokeError, check_at_least};

/// The six arterial territories of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Territory {
    /// Right middle cerebral artery (lateral right).
    RightMca,
    /// Right anterior cerebral artery.
    RightAca,
    /// Left anterior cerebral artery.
    LeftAca,
    /// Left middle cerebral artery (lateral left).
    LeftMca,
    /// Left posterior cerebral artery.
    LeftPca,
    /// Right posterior cerebral artery.
    RightPca,
}

impl Territory {
    /// All territories, in partition order.
    pub const ALL: [Territory; 6] = [
        Territory::RightMca,
        Territory::RightAca,
        Territory::LeftAca,
        Territory::LeftMca,
        Territory::LeftPca,
        Territory::RightPca,
    ];

    /// Index in [`Territory::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|&t| t == self).expect("ALL lists every territory")
    }

    /// Short name (`"left_mca"`).
    pub fn name(self) -> &'static str {
        match self {
            Territory::RightMca => "right_mca",
            Territory::RightAca => "right_aca",
            Territory::LeftAca => "left_aca",
            Territory::LeftMca => "left_mca",
            Territory::LeftPca => "left_pca",
            Territory::RightPca => "right_pca",
        }
    }

    /// Centre angle (radians, `atan2(y, x)` with x to the right, y anterior).
    fn angle(self) -> f64 {
        let deg: f64 = match self {
            Territory::RightMca => 0.0,
            Territory::RightAca => 70.0,
            Territory::LeftAca => 110.0,
            Territory::LeftMca => 180.0,
            Territory::LeftPca => -115.0,
            Territory::RightPca => -65.0,
        };
        deg.to_radians()
    }

    fn weight(self) -> f64 {
        match self {
            Territory::RightMca | Territory::LeftMca => 2.0,
            _ => 1.0,
        }
    }
}

/// Von Mises concentration of the territory partition.
const KAPPA: f64 = 6.0;

/// Perfusion parameters (units in field docs). `Default` is a healthy adult.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerfusionParams {
    /// Conductivity `K` (mm² · ml/100 g/min/mmHg), uniform in the mask.
    pub k: f64,
    /// Gray-matter exchange coefficient `β₀` (ml/100 g/min/mmHg).
    pub beta_gm: f64,
    /// White-matter exchange relative to gray matter.
    pub wm_ratio: f64,
    /// Exchange floor in every cell (ml/100 g/min/mmHg), keeps CSF cells well posed.
    pub beta_floor: f64,
    /// Arterial driving pressure above the venous pressure (mmHg).
    pub p_a: f64,
    /// Venous pressure (mmHg).
    pub p_v: f64,
}

impl Default for PerfusionParams {
    fn default() -> Self {
        // √(K/β₀) ≈ 4.5 mm; β₀ p_a = 60 ml/100 g/min in gray matter.
        PerfusionParams {
            k: 20.0,
            beta_gm: 1.0,
            wm_ratio: 0.4,
            beta_floor: 0.02,
            p_a: 60.0,
            p_v: 0.0,
        }
    }
}

impl PerfusionParams {
    /// Checks every field.
    ///
    /// # Errors
    /// [`StrokeError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_at_least("k", self.k, 0.0)?;
        check_at_least("beta_gm", self.beta_gm, 0.0)?;
        check_at_least("wm_ratio", self.wm_ratio, 0.0)?;
        if !(self.beta_floor.is_finite() && self.beta_floor > 0.0) {
            return Err(StrokeError::InvalidParameter {
                name: "beta_floor",
                value: self.beta_floor,
                reason: "must be positive (keeps the perfusion matrix SPD)",
            });
        }
        check_at_least("p_a", self.p_a, 0.0)?;
        check_at_least("p_v", self.p_v, f64::MIN)?;
        Ok(())
    }
}

/// An occlusion of one territory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Occlusion {
    /// The occluded territory.
    pub territory: Territory,
    /// Severity `σ ∈ [0, 1]` (1 = complete occlusion of the feeding artery).
    pub severity: f64,
    /// Collateral strength `c ∈ [0, 1]`: fraction of the lost supply that still arrives.
    pub collateral: f64,
}

impl Occlusion {
    /// Checks `σ, c ∈ [0, 1]`.
    ///
    /// # Errors
    /// [`StrokeError::InvalidParameter`].
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("severity", self.severity), ("collateral", self.collateral)] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(StrokeError::InvalidParameter {
                    name,
                    value: v,
                    reason: "must lie in [0, 1]",
                });
            }
        }
        Ok(())
    }
}

/// The brain's perfusion model on one anatomy: fields, territories, factorized Darcy matrix.
#[derive(Debug)]
pub struct Perfusion {
    params: PerfusionParams,
    darcy: Darcy,
    /// Territory weights, `[n_active × 6]` row-major.
    territory: Vec<f64>,
    /// Brain-tissue fraction `p_wm + p_gm` per active cell.
    tissue: Vec<f64>,
    /// Gray-matter weight `p_gm + r_wm p_wm` per active cell (∂β/∂β₀).
    gm_weight: Vec<f64>,
}

impl Perfusion {
    /// Builds the fields on `grid` from `tissue`, assembles and factorizes.
    ///
    /// # Errors
    /// Bad parameters, tissue maps not matching the grid, a brain without tissue.
    pub fn new(grid: &Grid, tissue: &TissueMaps, params: PerfusionParams) -> Result<Self> {
        params.validate()?;
        let (wm, gm) = tissue.active_fractions(grid)?;
        let n = grid.n_active();
        let brain: Vec<f64> = wm.iter().zip(&gm).map(|(w, g)| w + g).collect();
        if !brain.iter().any(|&b| b > 0.5) {
            return Err(StrokeError::NoTissue {
                what: "no active cell with p_wm + p_gm > 0.5".into(),
            });
        }
        let gm_weight: Vec<f64> =
            wm.iter().zip(&gm).map(|(w, g)| g + params.wm_ratio * w).collect();
        let beta: Vec<f64> =
            gm_weight.iter().map(|gw| params.beta_gm * gw + params.beta_floor).collect();
        let k = vec![params.k; n];
        // Centroid of brain tissue in world coordinates (the territories' centre).
        let (mut cx, mut cy, mut mass) = (0.0, 0.0, 0.0);
        let world: Vec<[f64; 3]> = grid.active_voxels().iter().map(|&v| grid.world(v)).collect();
        for (x, b) in world.iter().zip(&brain) {
            cx += b * x[0];
            cy += b * x[1];
            mass += b;
        }
        (cx, cy) = (cx / mass, cy / mass);
        let mut territory = vec![0.0; n * 6];
        for (i, x) in world.iter().enumerate() {
            let phi = (x[1] - cy).atan2(x[0] - cx);
            let row = &mut territory[6 * i..6 * i + 6];
            // Subtracting the largest exponent keeps exp() in range (log-sum-exp).
            let logs = Territory::ALL.map(|t| t.weight().ln() + KAPPA * (phi - t.angle()).cos());
            let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for (r, l) in row.iter_mut().zip(logs) {
                *r = (l - m).exp();
                z += *r;
            }
            row.iter_mut().for_each(|r| *r /= z);
        }
        let darcy = Darcy::new(grid, k, beta, params.p_v)?;
        Ok(Perfusion { params, darcy, territory, tissue: brain, gm_weight })
    }

    /// Number of active cells.
    pub fn n(&self) -> usize {
        self.darcy.n()
    }

    /// The parameters.
    pub fn params(&self) -> &PerfusionParams {
        &self.params
    }

    /// The Darcy problem (fields, matrix, factorization).
    pub fn darcy(&mut self) -> &mut Darcy {
        &mut self.darcy
    }

    /// Brain-tissue fraction `p_wm + p_gm` per active cell.
    pub fn tissue(&self) -> &[f64] {
        &self.tissue
    }

    /// Weight of `territory` in each active cell.
    pub fn territory_weight(&self, territory: Territory) -> Vec<f64> {
        let t = territory.index();
        self.territory.chunks_exact(6).map(|r| r[t]).collect()
    }

    /// The territory with the largest weight in each active cell.
    pub fn territory_labels(&self) -> Vec<Territory> {
        self.territory
            .chunks_exact(6)
            .map(|r| {
                let (best, _) = r
                    .iter()
                    .enumerate()
                    .fold((0, f64::MIN), |acc, (i, &w)| if w > acc.1 { (i, w) } else { acc });
                Territory::ALL[best]
            })
            .collect()
    }

    /// Supply fraction `s = 1 − σ w_occ (1 − c)` per active cell (1 everywhere without
    /// occlusion).
    pub fn supply(&self, occlusion: Option<&Occlusion>) -> Result<Vec<f64>> {
        let Some(o) = occlusion else { return Ok(vec![1.0; self.n()]) };
        o.validate()?;
        let t = o.territory.index();
        Ok(self
            .territory
            .chunks_exact(6)
            .map(|r| 1.0 - o.severity * r[t] * (1.0 - o.collateral))
            .collect())
    }

    /// The arterial inflow `f = β p_a s`.
    pub fn source(&self, occlusion: Option<&Occlusion>) -> Result<Vec<f64>> {
        let s = self.supply(occlusion)?;
        Ok(s.iter().zip(self.darcy.beta()).map(|(s, b)| b * self.params.p_a * s).collect())
    }

    /// Solves for pressure and perfusion with the given occlusion (none: healthy).
    ///
    /// # Errors
    /// An invalid occlusion.
    pub fn solve(&mut self, occlusion: Option<&Occlusion>) -> Result<DarcySolution> {
        let f = self.source(occlusion)?;
        self.darcy.solve(&f)
    }

    /// The gradient of `J(CBF)` (given `∂J/∂CBF`) with respect to the perfusion parameters and
    /// the occlusion, by one adjoint solve; `solution` must be this occlusion's solution.
    ///
    /// # Errors
    /// Length mismatches, an invalid occlusion.
    pub fn gradient(
        &mut self,
        occlusion: Option<&Occlusion>,
        solution: &DarcySolution,
        dj_dcbf: &[f64],
    ) -> Result<PerfusionGradient> {
        let s = self.supply(occlusion)?;
        let DarcyGradient { lambda, d_k, mut d_beta } = self.darcy.adjoint(solution, dj_dcbf)?;
        let p_a = self.params.p_a;
        // f = β p_a s depends on β too: add λ_k ∂f_k/∂β_k.
        for ((db, l), s) in d_beta.iter_mut().zip(&lambda).zip(&s) {
            *db += l * p_a * s;
        }
        let d_beta_gm = d_beta.iter().zip(&self.gm_weight).map(|(d, w)| d * w).sum();
        let d_k_scalar = d_k.iter().sum();
        let beta = self.darcy.beta();
        let mut d_p_a = 0.0;
        for ((l, b), s) in lambda.iter().zip(beta).zip(&s) {
            d_p_a += l * b * s;
        }
        let (mut d_severity, mut d_collateral) = (0.0, 0.0);
        if let Some(o) = occlusion {
            let t = o.territory.index();
            for (i, r) in self.territory.chunks_exact(6).enumerate() {
                let lf = lambda[i] * beta[i] * p_a * r[t];
                d_severity -= lf * (1.0 - o.collateral);
                d_collateral += lf * o.severity;
            }
        }
        Ok(PerfusionGradient {
            d_k_field: d_k,
            d_beta_field: d_beta,
            d_k: d_k_scalar,
            d_beta_gm,
            d_p_a,
            d_severity,
            d_collateral,
        })
    }
}

/// Gradient of an objective `J(CBF)` from [`Perfusion::gradient`].
#[derive(Debug, Clone, PartialEq)]
pub struct PerfusionGradient {
    /// `dJ/dK_i` per active cell.
    pub d_k_field: Vec<f64>,
    /// `dJ/dβ_i` per active cell (including the source's dependence on β).
    pub d_beta_field: Vec<f64>,
    /// `dJ/dK` for the uniform conductivity.
    pub d_k: f64,
    /// `dJ/dβ₀`.
    pub d_beta_gm: f64,
    /// `dJ/dp_a`.
    pub d_p_a: f64,
    /// `dJ/dσ` (occlusion severity).
    pub d_severity: f64,
    /// `dJ/dc` (collateral strength).
    pub d_collateral: f64,
}
