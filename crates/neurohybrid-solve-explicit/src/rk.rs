//! One generic explicit Runge–Kutta stepper driven by a [`ButcherTableau`].

use crate::tableau::ButcherTableau;
use neurohybrid_solve::{Stats, Step, StepOutcome, StepState, hermite_coefficients};
use neurohybrid_system::OdeSystem;

/// Working memory of an explicit RK solve, allocated once by `init`.
///
/// Stage values `k_i = f(t + c_i h, Y_i)` of the last computed step stay readable through
/// [`RkState::stages`] until the next step (for FSAL methods `accept` moves the last stage into
/// slot 0, where it becomes the next step's first stage).
#[derive(Debug, Clone)]
pub struct RkState {
    y: Vec<f64>,
    y_new: Vec<f64>,
    err: Vec<f64>,
    tmp: Vec<f64>,
    k: Vec<Vec<f64>>,
    /// `k[0] == f(t_n, y_n)` for the current state.
    k0_valid: bool,
    /// `f(t_{n+1}, y_{n+1})`, computed for cubic Hermite output by non-FSAL methods; becomes
    /// the next step's first stage so dense output costs nothing extra in the long run.
    f_new: Vec<f64>,
    f_new_valid: bool,
}

impl RkState {
    /// Stage derivatives of the last step.
    pub fn stages(&self) -> &[Vec<f64>] {
        &self.k
    }

    /// `[y | y_new | k_1 … k_s]`: what restores a computed step.
    pub(crate) fn cache_len(&self) -> usize {
        (self.k.len() + 2) * self.y.len()
    }

    pub(crate) fn save_step(&self, out: &mut [f64]) {
        let n = self.y.len();
        let mut chunks = out.chunks_exact_mut(n);
        for src in [&self.y, &self.y_new].into_iter().chain(&self.k) {
            chunks.next().expect("cache_len values").copy_from_slice(src);
        }
    }

    pub(crate) fn load_step(&mut self, saved: &[f64]) {
        let n = self.y.len();
        let mut chunks = saved.chunks_exact(n);
        for dst in [&mut self.y, &mut self.y_new].into_iter().chain(&mut self.k) {
            dst.copy_from_slice(chunks.next().expect("cache_len values"));
        }
        self.k0_valid = true;
        self.f_new_valid = false;
    }
}

impl StepState for RkState {
    fn y(&self) -> &[f64] {
        &self.y
    }
    fn y_mut(&mut self) -> &mut [f64] {
        &mut self.y
    }
    fn y_proposed(&self) -> &[f64] {
        &self.y_new
    }
    fn error_estimate(&self) -> &[f64] {
        &self.err
    }
    fn dydt(&self) -> Option<&[f64]> {
        self.k0_valid.then_some(&self.k[0][..])
    }
}

/// Most terms one fused pass takes (more are folded in one pass each).
const MAX_TERMS: usize = 16;

/// What a fused combination starts from.
#[derive(Clone, Copy)]
pub(crate) enum Base<'a> {
    /// `out = Σ cⱼ xⱼ`.
    Zero,
    /// `out = y + Σ cⱼ xⱼ`.
    From(&'a [f64]),
    /// `out += Σ cⱼ xⱼ`.
    InPlace,
}

/// `out = base + Σ_j c_j x_j` in one pass over the state, terms with `c_j = 0` skipped.
///
/// One fused pass instead of a copy and one axpy per term: a Tsit5 step makes 7 combinations
/// with 28 terms, which as separate passes read and write the state ~35 times (memory-bound on
/// PDE-sized states). The accumulation order per component is unchanged
/// (`((y + c₀x₀) + c₁x₁) + …`, no fused multiply-adds), so results are bit-identical to the
/// pass-per-term form.
pub(crate) fn combination<'a>(
    out: &mut [f64],
    base: Base<'_>,
    terms: impl IntoIterator<Item = (f64, &'a [f64])>,
) {
    let mut c = [0.0; MAX_TERMS];
    let mut xs: [&[f64]; MAX_TERMS] = [&[]; MAX_TERMS];
    let mut m = 0;
    let mut spilled = false;
    for (cj, xj) in terms {
        if cj == 0.0 {
            continue;
        }
        if spilled {
            out.iter_mut().zip(xj).for_each(|(o, x)| *o += cj * x);
            continue;
        }
        c[m] = cj;
        xs[m] = xj;
        m += 1;
        if m == MAX_TERMS {
            combine_fixed(out, base, &c, &xs, m);
            spilled = true;
        }
    }
    if !spilled {
        combine_fixed(out, base, &c, &xs, m);
    }
}

/// Dispatch on the number of terms to a kernel with that many streams.
fn combine_fixed(
    out: &mut [f64],
    base: Base<'_>,
    c: &[f64; MAX_TERMS],
    xs: &[&[f64]; MAX_TERMS],
    m: usize,
) {
    macro_rules! arms {
        ($($m:literal)*) => {
            match m {
                0 => match base {
                    Base::From(y) => out.copy_from_slice(y),
                    Base::Zero => out.fill(0.0),
                    Base::InPlace => {}
                },
                $($m => fused::<$m>(out, base, c, xs),)*
                _ => unreachable!("at most MAX_TERMS terms"),
            }
        };
    }
    arms!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// Components per block of the fused kernel: the inner loops over a block have a constant
/// trip count, so they vectorize (AVX2: two 4-wide registers) with the bounds checks hoisted
/// to one per block and stream.
const BLOCK: usize = 8;

// Index loops keep every stream's access visible to the vectorizer.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn fused<const N: usize>(
    out: &mut [f64],
    base: Base<'_>,
    c: &[f64; MAX_TERMS],
    xs: &[&[f64]; MAX_TERMS],
) {
    let n = out.len();
    let c: [f64; N] = std::array::from_fn(|j| c[j]);
    let xs: [&[f64]; N] = std::array::from_fn(|j| &xs[j][..n]);
    let y = match base {
        Base::From(y) => Some(&y[..n]),
        _ => None,
    };
    let in_place = matches!(base, Base::InPlace);
    let full = n - n % BLOCK;
    for (b, ob) in out[..full].chunks_exact_mut(BLOCK).enumerate() {
        let i0 = b * BLOCK;
        let mut acc = [0.0; BLOCK];
        if let Some(y) = y {
            acc.copy_from_slice(&y[i0..i0 + BLOCK]);
        } else if in_place {
            acc.copy_from_slice(ob);
        }
        for j in 0..N {
            let x: &[f64; BLOCK] = xs[j][i0..i0 + BLOCK].try_into().expect("a full block");
            let cj = c[j];
            for l in 0..BLOCK {
                acc[l] += cj * x[l];
            }
        }
        ob.copy_from_slice(&acc);
    }
    for i in full..n {
        let mut acc = match y {
            Some(y) => y[i],
            None if in_place => out[i],
            None => 0.0,
        };
        for j in 0..N {
            acc += c[j] * xs[j][i];
        }
        out[i] = acc;
    }
}

/// `out = y + h Σ_j coeffs_j k_j`.
fn combine(out: &mut [f64], y: &[f64], h: f64, coeffs: &[f64], k: &[Vec<f64>]) {
    let terms = coeffs.iter().zip(k).map(|(&a, kj)| (h * a, kj.as_slice()));
    combination(out, Base::From(y), terms);
}

pub(crate) fn init<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    t0: f64,
    y0: &[f64],
    stats: &mut Stats,
) -> RkState {
    let n = system.n_states();
    let mut st = RkState {
        y: y0.to_vec(),
        y_new: vec![0.0; n],
        err: vec![0.0; n],
        tmp: vec![0.0; n],
        k: vec![vec![0.0; n]; tab.stages()],
        k0_valid: false,
        f_new: vec![0.0; n],
        f_new_valid: false,
    };
    // c₁ = 0 for every explicit method: f(t0, y0) is the first stage, and the initial-step
    // heuristic can reuse it.
    system.rhs(t0, y0, p, &mut st.k[0]);
    stats.rhs_evals += 1;
    st.k0_valid = true;
    st
}

pub(crate) fn step<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &mut RkState,
    step: Step,
    stats: &mut Stats,
) -> StepOutcome {
    let Step { t, h } = step;
    let s = tab.stages();
    if !st.k0_valid {
        system.rhs(t, &st.y, p, &mut st.k[0]);
        stats.rhs_evals += 1;
        st.k0_valid = true;
    }
    for i in 1..s {
        let (done, rest) = st.k.split_at_mut(i);
        if tab.fsal && i == s - 1 {
            // The last stage is evaluated at the new solution itself.
            combine(&mut st.y_new, &st.y, h, tab.b, done);
            system.rhs(t + h, &st.y_new, p, &mut rest[0]);
        } else {
            combine(&mut st.tmp, &st.y, h, tab.a[i], done);
            system.rhs(t + tab.c[i] * h, &st.tmp, p, &mut rest[0]);
        }
        stats.rhs_evals += 1;
    }
    if !tab.fsal {
        combine(&mut st.y_new, &st.y, h, tab.b, &st.k);
    }
    if let Some(e) = tab.b_err {
        let terms = e.iter().zip(&st.k).map(|(&w, kj)| (h * w, kj.as_slice()));
        combination(&mut st.err, Base::Zero, terms);
    }
    StepOutcome::Computed
}

pub(crate) fn dense<S: OdeSystem + ?Sized>(
    tab: &ButcherTableau,
    system: &S,
    p: &[f64],
    st: &mut RkState,
    step: Step,
    coeffs: &mut [f64],
    stats: &mut Stats,
) {
    let n = st.y.len();
    let Step { t, h } = step;
    match tab.interpolant {
        Some(rows) => {
            coeffs[..n].copy_from_slice(&st.y);
            for j in 0..tab.dense_degree() {
                let c = &mut coeffs[(j + 1) * n..(j + 2) * n];
                c.fill(0.0);
                for (row, kj) in rows.iter().zip(&st.k) {
                    let w = h * row[j];
                    if w != 0.0 {
                        c.iter_mut().zip(kj).for_each(|(o, k)| *o += w * k);
                    }
                }
            }
        }
        None => {
            let f1: &[f64] = if tab.fsal {
                &st.k[tab.stages() - 1]
            } else {
                if !st.f_new_valid {
                    system.rhs(t + h, &st.y_new, p, &mut st.f_new);
                    stats.rhs_evals += 1;
                    st.f_new_valid = true;
                }
                &st.f_new
            };
            hermite_coefficients(&st.y, &st.k[0], &st.y_new, f1, h, coeffs);
        }
    }
}

pub(crate) fn accept(tab: &ButcherTableau, st: &mut RkState) {
    std::mem::swap(&mut st.y, &mut st.y_new);
    if tab.fsal {
        st.k.swap(0, tab.stages() - 1);
        st.k0_valid = true;
    } else if st.f_new_valid {
        std::mem::swap(&mut st.k[0], &mut st.f_new);
        st.f_new_valid = false;
        st.k0_valid = true;
    } else {
        st.k0_valid = false;
    }
}

pub(crate) fn restart(st: &mut RkState) {
    st.k0_valid = false;
    st.f_new_valid = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused combination equals the pass-per-term form bit for bit, for every term count
    /// (including the spill past `MAX_TERMS`) and every base.
    #[test]
    fn fused_combination_is_bit_identical_to_one_pass_per_term() {
        let n = 37;
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let xs: Vec<Vec<f64>> = (0..20).map(|_| (0..n).map(|_| rnd()).collect()).collect();
        let y: Vec<f64> = (0..n).map(|_| rnd()).collect();
        for m in 0..20 {
            let cs: Vec<f64> = (0..m).map(|j| if j % 3 == 1 { 0.0 } else { rnd() }).collect();
            let terms = || cs.iter().zip(&xs).map(|(&c, x)| (c, x.as_slice()));
            for base in 0..3 {
                let start: Vec<f64> = (0..n).map(|_| rnd()).collect();
                let mut reference = match base {
                    0 => vec![0.0; n],
                    1 => y.clone(),
                    _ => start.clone(),
                };
                for (c, x) in terms() {
                    if c != 0.0 {
                        reference.iter_mut().zip(x).for_each(|(o, x)| *o += c * x);
                    }
                }
                let mut out = start.clone();
                let b = match base {
                    0 => Base::Zero,
                    1 => Base::From(&y),
                    _ => Base::InPlace,
                };
                combination(&mut out, b, terms());
                let same = out.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "m = {m}, base {base}");
            }
        }
    }
}
