//! The catalogue: each reference problem with its initial value, parameters, span, reference
//! values and where they come from.

use crate::problems::{
    ExactSolution, ExponentialDecay, FisherWave, HarmonicOscillator, Logistic, LotkaVolterra,
    Robertson, VanDerPol,
};
use neurohybrid_system::OdeSystem;

/// A reference value `y(t)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefPoint {
    /// Time.
    pub t: f64,
    /// State at `t`.
    pub y: Vec<f64>,
}

/// A reference problem: everything needed to set up a solve and judge its result.
#[derive(Debug, Clone)]
pub struct RefProblem<S> {
    /// Short identifier used in test and benchmark names.
    pub name: &'static str,
    /// The right-hand side.
    pub system: S,
    /// Initial state at `t_span.0`.
    pub y0: Vec<f64>,
    /// Parameters.
    pub p: Vec<f64>,
    /// `(t0, t1)`.
    pub t_span: (f64, f64),
    /// Reference values (at least `t1`), exact where the problem has a closed form.
    pub reference: Vec<RefPoint>,
    /// Where the reference values come from.
    pub source: &'static str,
}

impl<S: OdeSystem> RefProblem<S> {
    /// The reference value at `t`, if one is tabulated.
    pub fn reference_at(&self, t: f64) -> Option<&[f64]> {
        self.reference.iter().find(|r| r.t == t).map(|r| &r.y[..])
    }

    /// The reference value at the end of the span.
    pub fn final_reference(&self) -> &[f64] {
        self.reference_at(self.t_span.1).expect("every catalogue problem tabulates y(t1)")
    }
}

impl<S: ExactSolution> RefProblem<S> {
    /// The exact solution at any `t`.
    pub fn exact(&self, t: f64, out: &mut [f64]) {
        self.system.exact(self.t_span.0, &self.y0, &self.p, t, out);
    }
}

fn with_exact<S: ExactSolution>(mut rp: RefProblem<S>) -> RefProblem<S> {
    let mut y = vec![0.0; rp.system.n_states()];
    rp.exact(rp.t_span.1, &mut y);
    rp.reference = vec![RefPoint { t: rp.t_span.1, y }];
    rp
}

/// `y' = −y`, `y(0) = 1` on `[0, 2]`.
pub fn exponential_decay() -> RefProblem<ExponentialDecay> {
    with_exact(RefProblem {
        name: "exponential_decay",
        system: ExponentialDecay::default(),
        y0: vec![1.0],
        p: vec![1.0],
        t_span: (0.0, 2.0),
        reference: Vec::new(),
        source: "exact: y0·exp(−λt)",
    })
}

/// `x'' = −x`, `(x, v)(0) = (1, 0)` on `[0, 10]` (about 1.6 periods).
pub fn harmonic_oscillator() -> RefProblem<HarmonicOscillator> {
    with_exact(RefProblem {
        name: "harmonic_oscillator",
        system: HarmonicOscillator::default(),
        y0: vec![1.0, 0.0],
        p: vec![1.0],
        t_span: (0.0, 10.0),
        reference: Vec::new(),
        source: "exact: rotation by ωt",
    })
}

/// `u' = u(1 − u)`, `u(0) = 0.1` on `[0, 2.5]` (just past the inflection point at ln 9, so
/// errors are not yet damped by the approach to u = 1).
pub fn logistic() -> RefProblem<Logistic> {
    with_exact(RefProblem {
        name: "logistic",
        system: Logistic::default(),
        y0: vec![0.1],
        p: vec![1.0],
        t_span: (0.0, 2.5),
        reference: Vec::new(),
        source: "exact: u0·e^{rt}/(1 − u0 + u0·e^{rt}) (REFERENCES.md)",
    })
}

/// Lotka–Volterra with `α = 1.5, β = 1, γ = 3, δ = 1`, `y0 = (1, 1)` on `[0, 10]`.
pub fn lotka_volterra() -> RefProblem<LotkaVolterra> {
    RefProblem {
        name: "lotka_volterra",
        system: LotkaVolterra::default(),
        y0: vec![1.0, 1.0],
        p: vec![1.5, 1.0, 3.0, 1.0],
        t_span: (0.0, 10.0),
        // scipy 1.17.1 DOP853 at rtol = atol = 1e-13 gives (1.0263447675750297,
        // 0.9096910781362731), at 1e-14 (1.0263447675750823, 0.909691078136073); our Dopri5 at
        // 1e-13 agrees to ~1e-12 (tested in the solve-explicit crate). Trust ~1e-12.
        reference: vec![RefPoint { t: 10.0, y: vec![1.02634476757505, 0.909691078136073] }],
        source: "tight solve: scipy DOP853 rtol=atol=1e-14, cross-checked with Dopri5 at 1e-13",
    }
}

/// Robertson's stiff kinetics, `y0 = (1, 0, 0)` on `[0, 40]`, with the reference at `1e11` too.
#[allow(clippy::excessive_precision)] // reference values are quoted digit for digit
pub fn robertson() -> RefProblem<Robertson> {
    RefProblem {
        name: "robertson",
        system: Robertson::default(),
        y0: vec![1.0, 0.0, 0.0],
        p: vec![0.04, 3e7, 1e4],
        t_span: (0.0, 40.0),
        reference: vec![
            RefPoint {
                t: 40.0,
                y: vec![7.158270687194050e-01, 9.185534764557780e-06, 2.841637457458298e-01],
            },
            RefPoint {
                t: 1e11,
                y: vec![2.083340149701255e-08, 8.333360770334713e-14, 9.999999791665050e-01],
            },
        ],
        source: "Hairer & Wanner II; Mazzia & Magherini, Test Set for IVP Solvers",
    }
}

/// Van der Pol with `μ = 1000`, `y0 = (2, 0)` on `[0, 2000]` (stiff).
#[allow(clippy::excessive_precision)] // reference values are quoted digit for digit
pub fn van_der_pol_stiff() -> RefProblem<VanDerPol> {
    RefProblem {
        name: "van_der_pol_mu1000",
        system: VanDerPol::default(),
        y0: vec![2.0, 0.0],
        p: vec![1000.0],
        t_span: (0.0, 2000.0),
        reference: vec![RefPoint {
            t: 2000.0,
            y: vec![1.706167732170469e+00, -8.928097010248125e-04],
        }],
        source: "Mazzia & Magherini, Test Set for IVP Solvers (REFERENCES.md)",
    }
}

/// The Fisher traveling wave with `D = 1, r = 1` on `x ∈ [−20, 40]` with `n` interior nodes,
/// `t ∈ [0, 5]`. The reference is the exact PDE wave at the nodes; the semi-discrete solution
/// matches it up to `O(dx²)` (second-order central differences).
pub fn fisher_wave(n: usize) -> RefProblem<FisherWave> {
    let system = FisherWave::new(n, -20.0, 40.0);
    let p = vec![1.0, 1.0];
    let mut y0 = vec![0.0; n];
    system.wave_on_grid(&p, 0.0, &mut y0);
    let mut y1 = vec![0.0; n];
    system.wave_on_grid(&p, 5.0, &mut y1);
    RefProblem {
        name: "fisher_wave",
        system,
        y0,
        p,
        t_span: (0.0, 5.0),
        reference: vec![RefPoint { t: 5.0, y: y1 }],
        source: "exact PDE wave, Ablowitz & Zeppetella, Bull. Math. Biol. 41 (1979)",
    }
}
