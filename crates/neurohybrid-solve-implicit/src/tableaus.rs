//! Coefficients of the diagonally implicit Runge–Kutta methods of this crate.
//!
//! Conventions (shared with `neurohybrid_solve_explicit::tableau`):
//! - `a` is lower triangular *including the diagonal*: row `i` has `i + 1` entries, the last
//!   being `a_ii` (`γ` for implicit stages, `0` for an explicit first stage);
//! - `b_err = b − b̂`, so the local error estimate is `h Σ b_err_i k_i`;
//! - a dense-output interpolant is given per stage in power basis,
//!   `b_i(θ) = Σ_j interp[i][j] θ^{j+1}`, so `y(t + θh) = y_n + h Σ_i b_i(θ) k_i`.
//!
//! Every coefficient set names its source, and the unit tests at the end check the order
//! conditions, the row sums `c_i = Σ_j a_ij`, stiff accuracy and the interpolants' end values,
//! so a mistyped digit fails a test.

use std::f64::consts::SQRT_2;

/// A singly diagonally implicit Runge–Kutta method (SDIRK, or ESDIRK with an explicit first
/// stage): `Y_i = y_n + h Σ_{j<i} a_ij k_j + hγ k_i`, `k_i = f(t_n + c_i h, Y_i)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirkTableau {
    /// Method name.
    pub name: &'static str,
    /// Order `p` of the propagated solution.
    pub order: usize,
    /// Order of the *error estimate* `h Σ b_err_i k_i` as used by the step-size controller:
    /// the estimate is `O(h^{q+1})` with `q = min(p, p̂)`.
    pub error_order: Option<usize>,
    /// The diagonal coefficient `γ` of every implicit stage.
    pub gamma: f64,
    /// Nodes `c_i`.
    pub c: &'static [f64],
    /// Lower-triangular coefficients with the diagonal; row `i` has `i + 1` entries.
    pub a: &'static [&'static [f64]],
    /// Weights `b_i`.
    pub b: &'static [f64],
    /// `b − b̂`, if the method has an embedded solution.
    pub b_err: Option<&'static [f64]>,
    /// Stage 1 is explicit (`a_11 = 0`, `c_1 = 0`): `k_1 = f(t_n, y_n)` (ESDIRK).
    pub explicit_first_stage: bool,
    /// `b_i = a_si`: the solution is the last stage, `y_{n+1} = Y_s` (L-stability for free
    /// when the method is A-stable, HW II, IV.6).
    pub stiffly_accurate: bool,
    /// The method's own continuous extension, if published (otherwise cubic Hermite).
    pub interpolant: Option<&'static [&'static [f64]]>,
}

impl DirkTableau {
    /// Number of stages (the explicit first stage included).
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// Degree of the dense-output polynomial.
    pub fn dense_degree(&self) -> usize {
        self.interpolant.map_or(3, |rows| rows[0].len())
    }

    /// Whether stage `i` is implicit.
    pub fn is_implicit(&self, i: usize) -> bool {
        !(i == 0 && self.explicit_first_stage)
    }
}

/// An additive (IMEX) Runge–Kutta pair for `y' = f_E(y) + f_I(y)`: an explicit tableau for the
/// non-stiff part and an ESDIRK tableau for the stiff part, sharing `c`, `b`, `b̂` and the
/// dense output (Kennedy & Carpenter 2003, §2):
/// `Y_i = y_n + h Σ_{j<i} (aᴱ_ij kᴱ_j + aᴵ_ij kᴵ_j) + hγ kᴵ_i`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArkTableau {
    /// Method name.
    pub name: &'static str,
    /// Order of the propagated solution.
    pub order: usize,
    /// Order of the error estimate as used by the controller (`min(p, p̂)`).
    pub error_order: usize,
    /// The diagonal `γ` of the implicit tableau.
    pub gamma: f64,
    /// Nodes, shared by both tableaus.
    pub c: &'static [f64],
    /// Explicit tableau, strictly lower triangular; row `i` has `i` entries.
    pub a_explicit: &'static [&'static [f64]],
    /// Implicit tableau with the diagonal; row `i` has `i + 1` entries (`a_11 = 0`).
    pub a_implicit: &'static [&'static [f64]],
    /// Weights, shared.
    pub b: &'static [f64],
    /// `b − b̂`, shared.
    pub b_err: &'static [f64],
    /// Dense output per stage (power basis without the constant term), shared.
    pub interpolant: &'static [&'static [f64]],
}

impl ArkTableau {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// Degree of the dense-output polynomial.
    pub fn dense_degree(&self) -> usize {
        self.interpolant[0].len()
    }

    /// The implicit tableau alone as an ESDIRK (for non-split systems and for tests).
    pub const fn implicit_part(&self) -> DirkTableau {
        DirkTableau {
            name: self.name,
            order: self.order,
            error_order: Some(self.error_order),
            gamma: self.gamma,
            c: self.c,
            a: self.a_implicit,
            b: self.b,
            b_err: Some(self.b_err),
            explicit_first_stage: true,
            stiffly_accurate: true,
            interpolant: Some(self.interpolant),
        }
    }
}

/// The implicit half of [`KENCARP4`] as a stand-alone ESDIRK4(3)6L\[2\]SA (order 4, L-stable,
/// stiffly accurate, with KenCarp4's dense output), for systems that are not split.
pub const KENCARP4_ESDIRK: DirkTableau = KENCARP4.implicit_part();

/// Implicit Euler written as a two-stage ESDIRK with an explicit first stage:
/// `c = (0, 1)`, `Y_2 = y_n + h f(t_n + h, Y_2)`, `y_{n+1} = Y_2`. The first stage
/// `k_1 = f(t_n, y_n)` costs nothing (it is the previous step's last stage) and gives the
/// embedded trapezoidal rule `b̂ = (½, ½)`, so the error estimate is
/// `h/2 (f(y_{n+1}) − f(y_n))` — the leading local error term `h²/2 y''` of implicit Euler
/// (HW I, II.4). Order 1, L-stable.
pub const IMPLICIT_EULER: DirkTableau = DirkTableau {
    name: "ImplicitEuler",
    order: 1,
    error_order: Some(1),
    gamma: 1.0,
    c: &[0.0, 1.0],
    a: &[&[0.0], &[0.0, 1.0]],
    b: &[0.0, 1.0],
    b_err: Some(&[-0.5, 0.5]),
    explicit_first_stage: true,
    stiffly_accurate: true,
    interpolant: None,
};

/// `d = 1 − √2/2`, the diagonal of TR-BDF2 (half of the trapezoidal fraction `2 − √2`).
const TRBDF2_D: f64 = 1.0 - SQRT_2 / 2.0;
/// `w = √2/4`.
const TRBDF2_W: f64 = SQRT_2 / 4.0;

/// TR-BDF2 (Bank et al. 1985; Hosea & Shampine, "Analysis and implementation of TR-BDF2",
/// Appl. Numer. Math. 20, 1996): a trapezoidal step to `t + (2 − √2) h` followed by a BDF2
/// step to `t + h`, written as a 3-stage ESDIRK with `γ = 1 − √2/2` (so that the trapezoidal
/// fraction is `2γ = 2 − √2`, the choice that makes both stages share one iteration matrix).
/// Order 2, L-stable, stiffly accurate; the embedded solution
/// `b̂ = ((1 − w)/3, (3w + 1)/3, d/3)`, `w = √2/4`, is third order (Hosea & Shampine §2), so
/// the estimate is `O(h³)` (controller order 2). Coefficients cross-checked with
/// OrdinaryDiffEq.jl's `TRBDF2Tableau` (`btilde = b̂ − b`).
pub const TRBDF2: DirkTableau = DirkTableau {
    name: "TRBDF2",
    order: 2,
    error_order: Some(2),
    gamma: TRBDF2_D,
    c: &[0.0, 2.0 * TRBDF2_D, 1.0],
    a: &[&[0.0], &[TRBDF2_D, TRBDF2_D], &[TRBDF2_W, TRBDF2_W, TRBDF2_D]],
    b: &[TRBDF2_W, TRBDF2_W, TRBDF2_D],
    b_err: Some(&[
        TRBDF2_W - (1.0 - TRBDF2_W) / 3.0,
        TRBDF2_W - (3.0 * TRBDF2_W + 1.0) / 3.0,
        TRBDF2_D - TRBDF2_D / 3.0,
    ]),
    explicit_first_stage: true,
    stiffly_accurate: true,
    interpolant: None,
};

// Kværnø's coefficients, quoted digit for digit from the sources (17 significant digits).
const KV_G: f64 = 0.26;
const KV_A61: f64 = 0.13855640231268224;
const KV_A63: f64 = -0.04245337201752043;
const KV_A64: f64 = 0.02446657898003141;
#[allow(clippy::excessive_precision)]
const KV_A65: f64 = 0.61943039072480676;
const KV_A71: f64 = 0.13659751177640291;
const KV_A73: f64 = -0.05496908796538376;
const KV_A74: f64 = -0.04118626728321046;
#[allow(clippy::excessive_precision)]
const KV_A75: f64 = 0.62993304899016403;
const KV_A76: f64 = 0.06962479448202728;

/// Kværnø's 7-stage ESDIRK 5(4) (A. Kværnø, "Singly diagonally implicit Runge–Kutta methods
/// with an explicit first stage", BIT 44, 2004), `γ = 0.26`: order 5, L-stable, stiffly
/// accurate; the embedded order-4 solution is stage 6 (itself stiffly accurate at `c_6 = 1`),
/// so `b_err = a_7 − a_6`. No published continuous extension: cubic Hermite dense output,
/// free because `k_7 = f(t + h, y_{n+1})`. Coefficients (17 digits) as tabulated in diffrax's
/// `kvaerno5.py` and OrdinaryDiffEq.jl's `Kvaerno5Tableau`; the unit tests check them against
/// the order-5 conditions.
#[allow(clippy::excessive_precision)] // quoted digit for digit from the sources
pub const KVAERNO5: DirkTableau = DirkTableau {
    name: "Kvaerno5",
    order: 5,
    error_order: Some(4),
    gamma: KV_G,
    c: &[0.0, 0.52, 1.230333209967908, 0.8957659843500759, 0.43639360985864756, 1.0, 1.0],
    a: &[
        &[0.0],
        &[KV_G, KV_G],
        &[0.13, 0.84033320996790809, KV_G],
        &[0.22371961478320505, 0.47675532319799699, -0.06470895363112615, KV_G],
        &[
            0.16648564323248321,
            0.10450018841591720,
            0.03631482272098715,
            -0.13090704451073998,
            KV_G,
        ],
        &[KV_A61, 0.0, KV_A63, KV_A64, KV_A65, KV_G],
        &[KV_A71, 0.0, KV_A73, KV_A74, KV_A75, KV_A76, KV_G],
    ],
    b: &[KV_A71, 0.0, KV_A73, KV_A74, KV_A75, KV_A76, KV_G],
    b_err: Some(&[
        KV_A71 - KV_A61,
        0.0,
        KV_A73 - KV_A63,
        KV_A74 - KV_A64,
        KV_A75 - KV_A65,
        KV_A76 - KV_G,
        KV_G,
    ]),
    explicit_first_stage: true,
    stiffly_accurate: true,
    interpolant: None,
};

// ARK4(3)6L[2]SA weights (Kennedy & Carpenter 2003, Table 5), shared by both tableaus.
const KC_B1: f64 = 82889.0 / 524892.0;
const KC_B3: f64 = 15625.0 / 83664.0;
const KC_B4: f64 = 69875.0 / 102672.0;
const KC_B5: f64 = -2260.0 / 8211.0;
const KC_B6: f64 = 0.25;

/// KenCarp4, Kennedy & Carpenter's ARK4(3)6L\[2\]SA ("Additive Runge–Kutta schemes for
/// convection–diffusion–reaction equations", Appl. Numer. Math. 44, 2003, Tables 5–6):
/// an L-stable, stiffly accurate ESDIRK (`γ = 1/4`) paired with an explicit 6-stage tableau,
/// both of order 4 with shared `c`, `b`, an order-3 embedded `b̂` and an order-3 dense
/// output. Exact rational coefficients from the paper, cross-checked against PETSc's
/// `TSARKIMEX4` and OrdinaryDiffEq.jl's `KenCarp4` tableaus; the unit tests check the order-4
/// conditions of both tableaus and the coupling conditions.
pub const KENCARP4: ArkTableau = ArkTableau {
    name: "KenCarp4",
    order: 4,
    error_order: 3,
    gamma: 0.25,
    c: &[0.0, 0.5, 83.0 / 250.0, 31.0 / 50.0, 17.0 / 20.0, 1.0],
    a_explicit: &[
        &[],
        &[0.5],
        &[13861.0 / 62500.0, 6889.0 / 62500.0],
        &[
            -116923316275.0 / 2393684061468.0,
            -2731218467317.0 / 15368042101831.0,
            9408046702089.0 / 11113171139209.0,
        ],
        &[
            -451086348788.0 / 2902428689909.0,
            -2682348792572.0 / 7519795681897.0,
            12662868775082.0 / 11960479115383.0,
            3355817975965.0 / 11060851509271.0,
        ],
        &[
            647845179188.0 / 3216320057751.0,
            73281519250.0 / 8382639484533.0,
            552539513391.0 / 3454668386233.0,
            3354512671639.0 / 8306763924573.0,
            4040.0 / 17871.0,
        ],
    ],
    a_implicit: &[
        &[0.0],
        &[0.25, 0.25],
        &[8611.0 / 62500.0, -1743.0 / 31250.0, 0.25],
        &[5012029.0 / 34652500.0, -654441.0 / 2922500.0, 174375.0 / 388108.0, 0.25],
        &[
            15267082809.0 / 155376265600.0,
            -71443401.0 / 120774400.0,
            730878875.0 / 902184768.0,
            2285395.0 / 8070912.0,
            0.25,
        ],
        &[KC_B1, 0.0, KC_B3, KC_B4, KC_B5, KC_B6],
    ],
    b: &[KC_B1, 0.0, KC_B3, KC_B4, KC_B5, KC_B6],
    b_err: &[
        KC_B1 - 4586570599.0 / 29645900160.0,
        0.0,
        KC_B3 - 178811875.0 / 945068544.0,
        KC_B4 - 814220225.0 / 1159782912.0,
        KC_B5 - -3700637.0 / 11593932.0,
        KC_B6 - 61727.0 / 225920.0,
    ],
    interpolant: &[
        &[
            6943876665148.0 / 7220017795957.0,
            -54480133.0 / 30881146.0,
            6818779379841.0 / 7100303317025.0,
        ],
        &[0.0, 0.0, 0.0],
        &[
            7640104374378.0 / 9702883013639.0,
            -11436875.0 / 14766696.0,
            2173542590792.0 / 12501825683035.0,
        ],
        &[
            -20649996744609.0 / 7521556579894.0,
            174696575.0 / 18121608.0,
            -31592104683404.0 / 5083833661969.0,
        ],
        &[
            8854892464581.0 / 2390941311638.0,
            -12120380.0 / 966161.0,
            61146701046299.0 / 7138195549469.0,
        ],
        &[-11397109935349.0 / 6675773540249.0, 3843.0 / 706.0, -17219254887155.0 / 4939391667607.0],
    ],
};

/// A stiffly accurate Rosenbrock method in the "C/h" form of OrdinaryDiffEq.jl (Hairer &
/// Wanner II, eq. (7.25)), which needs no matrix–vector products:
///
/// ```text
/// Uᵢ = yₙ + Σⱼ aᵢⱼ kⱼ                       (stages 2..=a.len()+1; U₁ = yₙ),
/// Uᵢ = Uᵢ₋₁ + kᵢ₋₁                          (the remaining stages),
/// (I − hγJ) kᵢ = hγ (f(tₙ + cᵢh, Uᵢ) + Σⱼ (Cᵢⱼ/h) kⱼ + dᵢ h ∂f/∂t),
/// yₙ₊₁ = U_s + k_s,   error estimate k_s,
/// y(tₙ + θh) = (1−θ) yₙ + θ (yₙ₊₁ + (1−θ)(K₁ + θK₂ + θ²K₃ + …)),  K_r = Σⱼ h[r][j] kⱼ.
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RosenbrockTableau {
    /// Method name.
    pub name: &'static str,
    /// Order of the propagated solution.
    pub order: usize,
    /// Order of the embedded solution `U_s` (the controller's error order).
    pub error_order: usize,
    /// The diagonal `γ`.
    pub gamma: f64,
    /// `a[i - 1]` holds `a_{i+1, 1..=i}` (stage `i + 1`, 1-based); stages after the last row
    /// add the previous stage's `k` to the previous stage value.
    pub a: &'static [&'static [f64]],
    /// `C[i - 1]` holds `C_{i+1, 1..=i}`, one row per stage 2..=s.
    pub c_mat: &'static [&'static [f64]],
    /// Stage times `cᵢ` (length `s`).
    pub c: &'static [f64],
    /// Time-derivative weights `dᵢ` (length `s`).
    pub d: &'static [f64],
    /// Dense-output combinations, one row of length `s` per `K_r`.
    pub h: &'static [&'static [f64]],
}

impl RosenbrockTableau {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// Degree of the dense-output polynomial.
    pub fn dense_degree(&self) -> usize {
        self.h.len() + 1
    }
}

/// Rodas4 (Hairer & Wanner II, §IV.7, Table 7.2, the RODAS code's `METH = 1` constants;
/// Hairer & Wanner 1996): 6 stages, order 4 with an embedded order-3 solution, stiffly
/// accurate, L-stable, with an order-3 continuous extension. Written in the C/h form with the
/// values of OrdinaryDiffEq.jl's `Rodas4Tableau`, checked against two independent public
/// copies of it (the CPU tableau file and the GPU kernel's copy); stages 5 and 6 are the
/// stiffly accurate tail (`U₆ = U₅ + k₅`, `y₁ = U₆ + k₆`). The tests of
/// `tests/bdf_rosenbrock.rs` check the order conditions through the standard form.
pub const RODAS4: RosenbrockTableau = RosenbrockTableau {
    name: "Rodas4",
    order: 4,
    error_order: 3,
    gamma: 0.25,
    a: &[
        &[1.544],
        &[0.9466785280815826, 0.2557011698983284],
        &[3.314825187068521, 2.896124015972201, 0.9986419139977817],
        &[1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895],
    ],
    c_mat: &[
        &[-5.6688],
        &[-2.430093356833875, -0.2063599157091915],
        &[-0.1073529058151375, -9.594562251023355, -20.47028614809616],
        &[7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616],
        &[
            8.083246795921522,
            -7.981132988064893,
            -31.52159432874371,
            16.31930543123136,
            -6.058818238834054,
        ],
    ],
    c: &[0.0, 0.386, 0.21, 0.63, 1.0, 1.0],
    d: &[0.25, -0.1043, 0.1035, -0.03620000000000023, 0.0, 0.0],
    h: &[
        &[
            10.12623508344586,
            -7.487995877610167,
            -34.80091861555747,
            -7.992771707568823,
            1.025137723295662,
            0.0,
        ],
        &[
            -0.6762803392801253,
            6.087714651680015,
            16.43084320892478,
            24.76722511418386,
            -6.594389125716872,
            0.0,
        ],
    ],
};

/// Rodas5P: 8 stages, order 5 with an embedded order-4 solution, stiffly accurate, L-stable,
/// with a continuous extension of order 4 (G. Steinebach, "Construction of Rosenbrock–Wanner
/// method Rodas5P and numerical benchmarks within the Julia Differential Equations package",
/// BIT Numer. Math. 63, 27 (2023)). Its coefficients improve Rodas5's (Di Marzo 1993) dense
/// output and its order for the Prothero–Robinson problem. Values as published in
/// OrdinaryDiffEq.jl's `Rodas5PTableau` (`rosenbrock_tableaus.jl`, the C/h form), compared
/// digit by digit with a second copy of that file; the unit tests below check the row sums of
/// `Γ` and the order conditions through the equivalent standard form.
pub const RODAS5P: RosenbrockTableau = RosenbrockTableau {
    name: "Rodas5P",
    order: 5,
    error_order: 4,
    gamma: 0.21193756319429014,
    a: &[
        &[3.0],
        &[2.849394379747939, 0.45842242204463923],
        &[-6.954028509809101, 2.489845061869568, -10.358996098473584],
        &[2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641],
        &[
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
        ],
    ],
    c_mat: &[
        &[-14.155112264123755],
        &[-17.97296035885952, -2.859693295451294],
        &[147.12150275711716, -1.41221402718213, 71.68940251302358],
        &[165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306],
        &[
            24.854864614690072,
            -3.0009227002832186,
            47.4931110020768,
            5.5814197821558125,
            -0.6610691825249471,
        ],
        &[
            30.91273214028599,
            -3.1208243349937974,
            77.79954646070892,
            34.28646028294783,
            -19.097331116725623,
            -28.087943162872662,
        ],
        &[
            37.80277123390563,
            -3.2571969029072276,
            112.26918849496327,
            66.9347231244047,
            -40.06618937091002,
            -54.66780262877968,
            -9.48861652309627,
        ],
    ],
    c: &[
        0.0,
        0.6358126895828704,
        0.4095798393397535,
        0.9769306725060716,
        0.4288403609558664,
        1.0,
        1.0,
        1.0,
    ],
    d: &[
        0.21193756319429014,
        -0.42387512638858027,
        -0.3384627126235924,
        1.8046452872882734,
        2.325825639765069,
        0.0,
        0.0,
        0.0,
    ],
    h: &[
        &[
            25.948786856663858,
            -2.5579724845846235,
            10.433815404888879,
            -2.3679251022685204,
            0.524948541321073,
            1.1241088310450404,
            0.4272876194431874,
            -0.17202221070155493,
        ],
        &[
            -9.91568850695171,
            -0.9689944594115154,
            3.0438037242978453,
            -24.495224566215796,
            20.176138334709044,
            15.98066361424651,
            -6.789040303419874,
            -6.710236069923372,
        ],
        &[
            11.419903575922262,
            2.8879645146136994,
            72.92137995996029,
            80.12511834622643,
            -52.072871366152654,
            -59.78993625266729,
            -0.15582684282751913,
            4.883087185713722,
        ],
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Full `s × s` matrix from ragged rows.
    fn full(rows: &[&[f64]], s: usize) -> Vec<Vec<f64>> {
        (0..s).map(|i| (0..s).map(|j| rows[i].get(j).copied().unwrap_or(0.0)).collect()).collect()
    }

    fn mv(a: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
        a.iter().map(|r| r.iter().zip(v).map(|(x, y)| x * y).sum()).collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn hadamard(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x * y).collect()
    }

    /// The order conditions up to order 5 (the 17 rooted trees; HW I, II.2, Table 2.2) for
    /// weights `b` over the stage matrix `a` with nodes `c`; returns the largest residual among
    /// the conditions of order ≤ `p`.
    fn order_residual(a: &[Vec<f64>], b: &[f64], c: &[f64], p: usize) -> f64 {
        let one = vec![1.0; c.len()];
        let c2 = hadamard(c, c);
        let c3 = hadamard(&c2, c);
        let ac = mv(a, c);
        let ac2 = mv(a, &c2);
        let aac = mv(a, &ac);
        let mut conds: Vec<(usize, f64, f64)> = vec![
            (1, dot(b, &one), 1.0),
            (2, dot(b, c), 0.5),
            (3, dot(b, &c2), 1.0 / 3.0),
            (3, dot(b, &ac), 1.0 / 6.0),
            (4, dot(b, &c3), 0.25),
            (4, dot(b, &hadamard(c, &ac)), 1.0 / 8.0),
            (4, dot(b, &ac2), 1.0 / 12.0),
            (4, dot(b, &aac), 1.0 / 24.0),
        ];
        let c4 = hadamard(&c3, c);
        conds.extend([
            (5, dot(b, &c4), 0.2),
            (5, dot(b, &hadamard(&c2, &ac)), 0.1),
            (5, dot(b, &hadamard(&ac, &ac)), 1.0 / 20.0),
            (5, dot(b, &hadamard(c, &ac2)), 1.0 / 15.0),
            (5, dot(b, &mv(a, &c3)), 1.0 / 20.0),
            (5, dot(b, &hadamard(c, &aac)), 1.0 / 30.0),
            (5, dot(b, &mv(a, &hadamard(c, &ac))), 1.0 / 40.0),
            (5, dot(b, &mv(a, &ac2)), 1.0 / 60.0),
            (5, dot(b, &mv(a, &aac)), 1.0 / 120.0),
        ]);
        conds.iter().filter(|(q, _, _)| *q <= p).map(|(_, v, e)| (v - e).abs()).fold(0.0, f64::max)
    }

    fn check_dirk(t: &DirkTableau, p_hat: usize) {
        let s = t.stages();
        assert_eq!(t.a.len(), s);
        assert_eq!(t.b.len(), s);
        for (i, row) in t.a.iter().enumerate() {
            assert_eq!(row.len(), i + 1, "{}: row {i}", t.name);
            let sum: f64 = row.iter().sum();
            assert!((sum - t.c[i]).abs() < 1e-14, "{}: c_{i} = {} vs Σa = {sum}", t.name, t.c[i]);
            let diag = if t.is_implicit(i) { t.gamma } else { 0.0 };
            assert_eq!(row[i], diag, "{}: a_{i}{i}", t.name);
        }
        if t.stiffly_accurate {
            assert_eq!(t.a[s - 1], t.b, "{}: stiffly accurate", t.name);
        }
        let a = full(t.a, s);
        assert!(order_residual(&a, t.b, t.c, t.order) < 1e-14, "{} order {}", t.name, t.order);
        if t.order < 5 {
            assert!(
                order_residual(&a, t.b, t.c, t.order + 1) > 1e-6,
                "{} satisfies order {} too",
                t.name,
                t.order + 1
            );
        }
        let b_hat: Vec<f64> = t.b.iter().zip(t.b_err.unwrap()).map(|(b, e)| b - e).collect();
        assert!(order_residual(&a, &b_hat, t.c, p_hat) < 1e-14, "{} embedded", t.name);
        assert!(
            order_residual(&a, &b_hat, t.c, p_hat + 1) > 1e-8,
            "{}: embedded has order above {p_hat}",
            t.name
        );
        let q = t.error_order.unwrap();
        assert_eq!(q, t.order.min(p_hat), "{}: controller order", t.name);
    }

    #[test]
    fn sdirk_tableaus_satisfy_their_order_conditions() {
        check_dirk(&IMPLICIT_EULER, 2);
        check_dirk(&TRBDF2, 3);
        check_dirk(&KVAERNO5, 4);
        check_dirk(&KENCARP4.implicit_part(), 3);
    }

    #[test]
    fn trbdf2_matches_hosea_shampine() {
        // Stage 2 is the trapezoidal rule over 2γh, stage 3 BDF2 over (0, 2γh, h).
        let g = 2.0 - SQRT_2;
        assert!((TRBDF2.c[1] - g).abs() < 1e-15);
        // BDF2 through t_n, t_n + gh, t_n + h: y_{n+1} = ((1/(g(2−g))) y_{n+γ} − ((1−g)²/(g(2−g))) y_n
        //   + ((1−g)/(2−g)) h f_{n+1}); its f_{n+1} weight is the diagonal.
        assert!(((1.0 - g) / (2.0 - g) - TRBDF2.gamma).abs() < 1e-15);
    }

    #[test]
    fn kencarp4_explicit_tableau_and_coupling_conditions() {
        let t = &KENCARP4;
        let s = t.stages();
        for (i, row) in t.a_explicit.iter().enumerate() {
            assert_eq!(row.len(), i);
            let sum: f64 = row.iter().sum();
            assert!((sum - t.c[i]).abs() < 1e-12, "explicit row {i}: {sum} vs {}", t.c[i]);
        }
        let ae = full(t.a_explicit, s);
        let ai = full(t.a_implicit, s);
        assert!(order_residual(&ae, t.b, t.c, 4) < 1e-12);
        // Coupling conditions of order 3 and 4 (Kennedy & Carpenter 2003, eq. (9)): mixed
        // products of the two tableaus must satisfy the same tree conditions.
        let c2 = hadamard(t.c, t.c);
        for (x, y) in [(&ae, &ai), (&ai, &ae)] {
            assert!((dot(t.b, &mv(x, t.c)) - 1.0 / 6.0).abs() < 1e-12);
            assert!((dot(t.b, &mv(x, &mv(y, t.c))) - 1.0 / 24.0).abs() < 1e-12);
            assert!((dot(t.b, &mv(x, &c2)) - 1.0 / 12.0).abs() < 1e-12);
            assert!((dot(t.b, &hadamard(t.c, &mv(x, t.c))) - 1.0 / 8.0).abs() < 1e-12);
        }
        // The embedded pair is third order for both tableaus.
        let b_hat: Vec<f64> = t.b.iter().zip(t.b_err).map(|(b, e)| b - e).collect();
        assert!(order_residual(&ae, &b_hat, t.c, 3) < 1e-12);
        assert!(order_residual(&ai, &b_hat, t.c, 3) < 1e-12);
    }

    #[test]
    fn kencarp4_interpolant_ends_at_the_solution_and_is_third_order() {
        let t = &KENCARP4;
        for (i, row) in t.interpolant.iter().enumerate() {
            let at_one: f64 = row.iter().sum();
            assert!((at_one - t.b[i]).abs() < 1e-12, "b_{i}(1) = {at_one} vs {}", t.b[i]);
        }
        // Continuous order conditions Σ b_i(θ) c_i^{k−1} = θ^k / k, k = 1..3, at a few θ.
        for &theta in &[0.2f64, 0.5, 0.9] {
            let bt: Vec<f64> = t
                .interpolant
                .iter()
                .map(|row| row.iter().enumerate().map(|(j, v)| v * theta.powi(j as i32 + 1)).sum())
                .collect();
            for k in 1..=3 {
                let lhs: f64 = bt.iter().zip(t.c).map(|(b, c)| b * c.powi(k - 1)).sum();
                assert!((lhs - theta.powi(k) / k as f64).abs() < 1e-12, "θ = {theta}, k = {k}");
            }
        }
    }
}
