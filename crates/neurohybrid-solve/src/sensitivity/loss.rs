//! Losses: scalar functions of the solution at the save times, with their cotangents.

/// A scalar loss `L(y(t_0), …, y(t_{K−1}))` of the solution at the save times.
///
/// `ts` are the `K` save times and `ys` the saved states, flat and row-major (`ys[k*n..(k+1)*n]`
/// is `y(t_k)`). Implementations return `L` and write `cot[k*n + i] = ∂L/∂y_i(t_k)`
/// (overwritten, same layout as `ys`). Every sensitivity method calls this once per gradient,
/// after its forward solve, and feeds the cotangents in as jumps at the save times.
pub trait Loss {
    /// `L` and its cotangents at the save times.
    fn value_and_cotangents(&self, ts: &[f64], ys: &[f64], cot: &mut [f64]) -> f64;
}

/// Closures `|ts, ys, cot| -> L` are losses.
impl<F: Fn(&[f64], &[f64], &mut [f64]) -> f64> Loss for F {
    fn value_and_cotangents(&self, ts: &[f64], ys: &[f64], cot: &mut [f64]) -> f64 {
        self(ts, ys, cot)
    }
}

/// `L = weight · Σ_k Σ_{i ∈ observed} (y_i(t_k) − target_{k,i})²`: the squared misfit to
/// targets at the save times (the W2 loss with `weight = 1`).
///
/// `targets` has the layout of the saved states (`K·n` values); with
/// [`SquaredMisfit::observed`] only some components enter the sum (the others' targets are
/// ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct SquaredMisfit {
    targets: Vec<f64>,
    weight: f64,
    observed: Option<Vec<usize>>,
}

impl SquaredMisfit {
    /// Misfit to `targets` (flat, `K·n`), weight 1, all components observed.
    pub fn new(targets: impl Into<Vec<f64>>) -> Self {
        Self { targets: targets.into(), weight: 1.0, observed: None }
    }

    /// Scale the sum by `weight` (e.g. `0.5`, or `1/K` for a mean).
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Only components `observed` (indices into the state) enter the sum.
    pub fn observed(mut self, observed: Vec<usize>) -> Self {
        self.observed = Some(observed);
        self
    }

    /// The targets.
    pub fn targets(&self) -> &[f64] {
        &self.targets
    }
}

impl Loss for SquaredMisfit {
    /// # Panics
    /// If `targets` does not have the length of `ys` (a caller bug: the targets were built for
    /// other save times or another state size).
    fn value_and_cotangents(&self, ts: &[f64], ys: &[f64], cot: &mut [f64]) -> f64 {
        assert_eq!(
            self.targets.len(),
            ys.len(),
            "SquaredMisfit: targets hold {} values, the solution at the save times {}",
            self.targets.len(),
            ys.len()
        );
        let mut value = 0.0;
        match &self.observed {
            None => {
                for ((c, y), t) in cot.iter_mut().zip(ys).zip(&self.targets) {
                    let r = y - t;
                    value += r * r;
                    *c = 2.0 * self.weight * r;
                }
            }
            Some(obs) => {
                cot.fill(0.0);
                let n = if ts.is_empty() { 0 } else { ys.len() / ts.len() };
                for k in 0..ts.len() {
                    for &i in obs {
                        let j = k * n + i;
                        let r = ys[j] - self.targets[j];
                        value += r * r;
                        cot[j] = 2.0 * self.weight * r;
                    }
                }
            }
        }
        self.weight * value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_misfit_value_and_cotangents() {
        let l = SquaredMisfit::new([1.0, 2.0, 3.0, 4.0]).with_weight(0.5);
        let mut cot = [0.0; 4];
        let v = l.value_and_cotangents(&[0.0, 1.0], &[2.0, 2.0, 3.0, 1.0], &mut cot);
        assert_eq!(v, 0.5 * (1.0 + 9.0));
        assert_eq!(cot, [1.0, 0.0, 0.0, -3.0]);
        let l = SquaredMisfit::new([1.0, 2.0, 3.0, 4.0]).observed(vec![1]);
        let v = l.value_and_cotangents(&[0.0, 1.0], &[2.0, 2.0, 3.0, 1.0], &mut cot);
        assert_eq!(v, 9.0);
        assert_eq!(cot, [0.0, 0.0, 0.0, -6.0]);
    }

    #[test]
    fn closures_are_losses() {
        let l = |_ts: &[f64], ys: &[f64], cot: &mut [f64]| {
            cot.copy_from_slice(ys);
            ys.iter().map(|y| 0.5 * y * y).sum()
        };
        let mut cot = [0.0; 2];
        assert_eq!(l.value_and_cotangents(&[1.0], &[3.0, 4.0], &mut cot), 12.5);
        assert_eq!(cot, [3.0, 4.0]);
    }
}
