//! Butcher tableaus. Adding a method is adding a tableau (and, optionally, an interpolant).
//!
//! Conventions: `a` is strictly lower triangular, stored row by row (`a[i]` has `i` entries);
//! `b_err = b − b̂`, so the error estimate is `h Σ b_err_i k_i`; a dense-output interpolant is
//! given in power basis per stage, `b_i(θ) = Σ_j interp[i][j] θ^{j+1}`, so that
//! `y(t + θh) = y_n + h Σ_i b_i(θ) k_i`.

/// The coefficients of an explicit Runge–Kutta method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ButcherTableau {
    /// Method name.
    pub name: &'static str,
    /// Order of the propagated solution.
    pub order: usize,
    /// Order of the embedded solution, if there is one.
    pub error_order: Option<usize>,
    /// Nodes `c_i`.
    pub c: &'static [f64],
    /// Strictly lower-triangular stage coefficients, row `i` has `i` entries.
    pub a: &'static [&'static [f64]],
    /// Weights `b_i`.
    pub b: &'static [f64],
    /// `b − b̂` (embedded error weights), if adaptive.
    pub b_err: Option<&'static [f64]>,
    /// First same as last: the last stage is `f(t + h, y_{n+1})` (`c_s = 1`, `a_s = b`), reused
    /// as the next step's first stage.
    pub fsal: bool,
    /// The method's own continuous extension, if it has one (otherwise cubic Hermite is used).
    pub interpolant: Option<&'static [&'static [f64]]>,
}

impl ButcherTableau {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// Degree of the dense output polynomial.
    pub fn dense_degree(&self) -> usize {
        match self.interpolant {
            Some(rows) => rows[0].len(),
            None => 3,
        }
    }
}

/// Explicit Euler (order 1).
pub const EULER: ButcherTableau = ButcherTableau {
    name: "Euler",
    order: 1,
    error_order: None,
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    b_err: None,
    fsal: false,
    interpolant: None,
};

/// Heun's method, the explicit trapezoidal rule (order 2; HNW I, II.1, Table 1.1).
pub const HEUN: ButcherTableau = ButcherTableau {
    name: "Heun",
    order: 2,
    error_order: None,
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    b_err: None,
    fsal: false,
    interpolant: None,
};

/// The classical Runge–Kutta method (order 4; Kutta 1901, HNW I, II.1, Table 1.2).
pub const RK4: ButcherTableau = ButcherTableau {
    name: "RK4",
    order: 4,
    error_order: None,
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    b_err: None,
    fsal: false,
    interpolant: None,
};

/// Bogacki–Shampine 3(2), FSAL (Bogacki & Shampine, "A 3(2) pair of Runge–Kutta formulas",
/// Appl. Math. Lett. 2, 1989). `b̂ = (7/24, 1/4, 1/3, 1/8)`. No own interpolant: the FSAL
/// stage makes cubic Hermite free.
pub const BOSH3: ButcherTableau = ButcherTableau {
    name: "Bosh3",
    order: 3,
    error_order: Some(2),
    c: &[0.0, 0.5, 0.75, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.75], &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0]],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    b_err: Some(&[2.0 / 9.0 - 7.0 / 24.0, 1.0 / 3.0 - 0.25, 4.0 / 9.0 - 1.0 / 3.0, -0.125]),
    fsal: true,
    interpolant: None,
};

/// Dormand–Prince 5(4), FSAL (Dormand & Prince, "A family of embedded Runge–Kutta formulae",
/// J. Comput. Appl. Math. 6, 1980; coefficients as in HNW I, II.5, Table 5.2 and `dopri5.f`).
pub const DOPRI5: ButcherTableau = ButcherTableau {
    name: "Dopri5",
    order: 5,
    error_order: Some(4),
    c: &[0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[0.2],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
        &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
    ],
    b: &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0],
    // b − b̂ with b̂ = (5179/57600, 0, 7571/16695, 393/640, −92097/339200, 187/2100, 1/40).
    b_err: Some(&[
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ]),
    fsal: true,
    interpolant: Some(DOPRI5_INTERP),
};

/// Dopri5's continuous extension of order 4 (Shampine, "Some practical Runge–Kutta formulas",
/// Math. Comp. 46, 1986; the form used by Hairer's `CONTD5` with coefficients
/// d₁ = −12715105075/11282082432, d₃ = 87487479700/32700410799, d₄ = −10690763975/1880347072,
/// d₅ = 701980252875/199316789632, d₆ = −1453857185/822651844, d₇ = 69997945/29380423),
/// expanded to power basis in exact rational arithmetic. A unit test re-derives it from the
/// `CONTD5` form.
pub const DOPRI5_INTERP: &[&[f64]] = &[
    &[1.0, -2.8535800653862835, 3.0717434641059005, -1.1270175653862835],
    &[0.0, 0.0, 0.0, 0.0],
    &[0.0, 4.023133379230305, -6.249321565289, 2.675424484351598],
    &[0.0, -3.7324019615885042, 10.068970589843675, -5.685526961588504],
    &[0.0, 2.5548038301849423, -6.399112377351017, 3.5219323679207912],
    &[0.0, -1.3744241142186024, 3.272657752246729, -1.7672812570757455],
    &[0.0, 1.3824689317781436, -3.764937863556287, 2.382468931778144],
];

/// Tsitouras 5(4), FSAL (Ch. Tsitouras, "Runge–Kutta pairs of order 5(4) satisfying only the
/// first column simplifying assumption", Comput. Math. Appl. 62, 2011; double-precision values
/// as tabulated in OrdinaryDiffEq.jl's `tsit_tableaus.jl`).
pub const TSIT5: ButcherTableau = ButcherTableau {
    name: "Tsit5",
    order: 5,
    error_order: Some(4),
    c: &[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    a: &[
        &[],
        &[0.161],
        &[-0.008480655492356989, 0.335480655492357],
        &[2.8971530571054935, -6.359448489975075, 4.3622954328695815],
        &[5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        &[
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ],
        &[
            0.09646076681806523,
            0.01,
            0.4798896504144996,
            1.379008574103742,
            -3.290069515436081,
            2.324710524099774,
        ],
    ],
    b: &[
        0.09646076681806523,
        0.01,
        0.4798896504144996,
        1.379008574103742,
        -3.290069515436081,
        2.324710524099774,
        0.0,
    ],
    // Tsitouras' b − b̂ (his b̂₇ = 1/66 ≈ 0.0151515; sign convention irrelevant for the norm).
    b_err: Some(&[
        -0.001780011052225777,
        -0.0008164344596567469,
        0.007880878010261995,
        -0.1447110071732629,
        0.5823571654525552,
        -0.45808210592918697,
        0.015151515151515152,
    ]),
    fsal: true,
    interpolant: Some(TSIT5_INTERP),
};

/// Tsit5's order-4 continuous extension in power basis (Tsitouras 2011, expanded; values as in
/// OrdinaryDiffEq.jl's `Tsit5Interp`).
pub const TSIT5_INTERP: &[&[f64]] = &[
    &[1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216],
    &[0.0, 0.13169999999999998, -0.2234, 0.1017],
    &[0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253],
    &[0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902],
    &[0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
    &[0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661],
    &[0.0, 1.5, -4.0, 2.5],
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&ButcherTableau; 6] = [&EULER, &HEUN, &RK4, &BOSH3, &DOPRI5, &TSIT5];

    #[test]
    fn row_sums_match_nodes_and_weights_sum_to_one() {
        for tab in ALL {
            assert_eq!(tab.a.len(), tab.stages(), "{}", tab.name);
            for (i, row) in tab.a.iter().enumerate() {
                assert_eq!(row.len(), i, "{} row {i}", tab.name);
                let s: f64 = row.iter().sum();
                assert!((s - tab.c[i]).abs() < 1e-14, "{} row {i}: {s} vs {}", tab.name, tab.c[i]);
            }
            assert!((tab.b.iter().sum::<f64>() - 1.0).abs() < 1e-14, "{}", tab.name);
            if let Some(e) = tab.b_err {
                assert!(e.iter().sum::<f64>().abs() < 1e-14, "{}: Σ(b − b̂) = 0", tab.name);
            }
        }
    }

    #[test]
    fn fsal_last_row_is_b() {
        for tab in ALL.iter().filter(|t| t.fsal) {
            let last = tab.a[tab.stages() - 1];
            assert_eq!(tab.c[tab.stages() - 1], 1.0);
            for (a, b) in last.iter().zip(tab.b) {
                assert!((a - b).abs() < 1e-16, "{}", tab.name);
            }
        }
    }

    #[test]
    fn order_conditions_up_to_four() {
        // Σb c = 1/2, Σb c² = 1/3, Σ b a c = 1/6, Σ b c³ = 1/4 (HNW I, II.2, Table 2.2).
        for tab in ALL.iter().filter(|t| t.order >= 4) {
            let s = tab.stages();
            let ac: Vec<f64> =
                (0..s).map(|i| (0..i).map(|j| tab.a[i][j] * tab.c[j]).sum()).collect();
            let dot = |f: &dyn Fn(usize) -> f64| (0..s).map(|i| tab.b[i] * f(i)).sum::<f64>();
            assert!((dot(&|i| tab.c[i]) - 0.5).abs() < 1e-13, "{}", tab.name);
            assert!((dot(&|i| tab.c[i].powi(2)) - 1.0 / 3.0).abs() < 1e-13, "{}", tab.name);
            assert!((dot(&|i| ac[i]) - 1.0 / 6.0).abs() < 1e-13, "{}", tab.name);
            assert!((dot(&|i| tab.c[i].powi(3)) - 0.25).abs() < 1e-13, "{}", tab.name);
        }
    }

    #[test]
    fn interpolants_end_at_b() {
        for tab in ALL {
            if let Some(rows) = tab.interpolant {
                for (i, row) in rows.iter().enumerate() {
                    let at_one: f64 = row.iter().sum();
                    assert!((at_one - tab.b[i]).abs() < 1e-12, "{} stage {i}", tab.name);
                }
            }
        }
    }

    #[test]
    fn dopri5_interpolant_matches_hairer_contd5_form() {
        // y(θ) = r1 + θ(r2 + (1−θ)(r3 + θ(r4 + (1−θ) r5))) with r2 = Σ b k, r3 = k1 − r2,
        // r4 = r2 − k7 − r3, r5 = Σ d k, applied to unit stage vectors.
        let d = [
            -12715105075.0 / 11282082432.0,
            0.0,
            87487479700.0 / 32700410799.0,
            -10690763975.0 / 1880347072.0,
            701980252875.0 / 199316789632.0,
            -1453857185.0 / 822651844.0,
            69997945.0 / 29380423.0,
        ];
        for i in 0..7 {
            let e1 = if i == 0 { 1.0 } else { 0.0 };
            let e7 = if i == 6 { 1.0 } else { 0.0 };
            let r2 = DOPRI5.b[i];
            let r3 = e1 - r2;
            let r4 = r2 - e7 - r3;
            for &th in &[0.1, 0.37, 0.5, 0.93] {
                let hairer = th * (r2 + (1.0 - th) * (r3 + th * (r4 + (1.0 - th) * d[i])));
                let ours: f64 = DOPRI5_INTERP[i]
                    .iter()
                    .enumerate()
                    .map(|(j, c)| c * th.powi(j as i32 + 1))
                    .sum();
                assert!((hairer - ours).abs() < 1e-13, "stage {i} θ={th}: {hairer} vs {ours}");
            }
        }
    }
}
