//! Checkpointing for reverse passes: which states are kept, and the binomial schedule that
//! recomputes the rest.

use std::collections::BTreeMap;

/// Which forward states a reverse pass keeps (Griewank & Walther 2008, "Evaluating
/// Derivatives", 2nd ed., ch. 12).
///
/// With `N` accepted steps, the peak number of stored states and the extra forward steps are:
///
/// | strategy | stored states | recomputed steps |
/// |---|---|---|
/// | `All` | `N` (+ each computed step, `s + 2` states for an s-stage RK method) | 0, and no step recomputed for its stages |
/// | `Every(k)` | `⌈N/k⌉ + k − 1` (best `k ≈ √N`) | `≈ N` |
/// | `Revolve { slots }` | `≤ slots`, whatever `N` | `≈ (r − 1)·N`, `r` the smallest with `C(s + r, r) ≥ N`, `s ≈ slots/2` |
///
/// `Revolve` is memory-bounded without knowing `N` in advance (adaptive steps): the forward
/// pass keeps every `k`-th state and doubles `k` (dropping every other checkpoint) whenever
/// half the slots are full, so at most `slots/2` forward checkpoints remain; each segment
/// between two of them is then reversed with the binomial schedule of *revolve* (Griewank 1992,
/// "Achieving logarithmic growth of temporal and spatial complexity in reverse automatic
/// differentiation"; Griewank & Walther 2000, ACM TOMS 26, Algorithm 799) in the remaining
/// slots. Every recomputation repeats the forward step bit for bit (same `t`, `h`, inputs), so
/// the gradient does not depend on the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpointing {
    /// Keep every step's input state and, where the stepper supports it
    /// ([`super::StepVjp::save_step`]), its computed stages: fastest (the reverse pass
    /// evaluates no right-hand side), memory grows with the number of steps.
    All,
    /// Keep every `k`-th state (`k ≥ 1`); recompute each segment once, storing its states.
    Every(usize),
    /// At most `slots` (≥ 2) states at any time, binomial recomputation.
    Revolve {
        /// The memory budget, in state vectors.
        slots: usize,
    },
}

impl Default for Checkpointing {
    /// `Revolve { slots: 64 }`: memory bounded by 64 states; short solves (≤ 32 steps) keep
    /// everything and recompute nothing.
    fn default() -> Self {
        Checkpointing::Revolve { slots: 64 }
    }
}

impl Checkpointing {
    /// Stride of the forward pass's checkpoints at the start and the number of forward
    /// checkpoints after which the stride doubles (`None`: never).
    pub(crate) fn forward_plan(self) -> (usize, Option<usize>) {
        match self {
            Checkpointing::All => (1, None),
            Checkpointing::Every(k) => (k.max(1), None),
            Checkpointing::Revolve { slots } => (1, Some((slots / 2).max(1))),
        }
    }

    /// Slots a segment reversal may use, given the forward checkpoints still held (the
    /// segment's start is one of them and counts as the first slot).
    pub(crate) fn segment_slots(self, held: usize) -> usize {
        match self {
            Checkpointing::All | Checkpointing::Every(_) => usize::MAX,
            Checkpointing::Revolve { slots } => slots.max(2).saturating_sub(held) + 1,
        }
    }
}

/// Binomial coefficient `C(s + t, s)` saturating at `usize::MAX`.
fn beta(s: usize, t: usize) -> usize {
    let mut b: usize = 1;
    for i in 1..=t {
        // b = C(s + i, i) = C(s + i − 1, i − 1) · (s + i) / i, exact in integers.
        b = match b.checked_mul(s + i) {
            Some(v) => v / i,
            None => return usize::MAX,
        };
    }
    b
}

/// Where to place the next checkpoint when reversing `l ≥ 2` steps with `s ≥ 2` slots (the
/// first holding the segment's start): `m = β(s, r − 1)` steps ahead, `r` the smallest
/// repetition number with `β(s, r) ≥ l`. Then the right part (`l − m ≤ β(s − 1, r)` steps)
/// is reversible with `s − 1` slots and the left part (`m = β(s, r − 1)`) with `s` slots and
/// one repetition less, which is the recursion behind revolve's optimality (Griewank 1992,
/// Prop. 1).
pub(crate) fn binomial_split(l: usize, s: usize) -> usize {
    debug_assert!(l >= 2 && s >= 2);
    let mut r = 0;
    while beta(s, r) < l {
        r += 1;
    }
    beta(s, r - 1).clamp(1, l - 1)
}

/// State vectors held by a reverse pass, keyed by step-boundary index, with a pool so
/// recycling a slot does not allocate. Tracks the peak count for the memory report.
#[derive(Debug, Default)]
pub(crate) struct SlotStore {
    slots: BTreeMap<usize, Vec<f64>>,
    pool: Vec<Vec<f64>>,
    peak: usize,
}

impl SlotStore {
    pub(crate) fn insert(&mut self, index: usize, y: &[f64]) {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(y);
        if let Some(old) = self.slots.insert(index, v) {
            self.pool.push(old);
        }
        self.peak = self.peak.max(self.slots.len());
    }

    pub(crate) fn get(&self, index: usize) -> Option<&[f64]> {
        self.slots.get(&index).map(Vec::as_slice)
    }

    pub(crate) fn remove(&mut self, index: usize) {
        if let Some(v) = self.slots.remove(&index) {
            self.pool.push(v);
        }
    }

    /// Keep only indices that are multiples of `stride`.
    pub(crate) fn thin(&mut self, stride: usize) {
        let drop: Vec<usize> = self.slots.keys().copied().filter(|i| i % stride != 0).collect();
        for i in drop {
            self.remove(i);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn indices(&self) -> Vec<usize> {
        self.slots.keys().copied().collect()
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_is_the_binomial_coefficient() {
        assert_eq!(beta(3, 0), 1);
        assert_eq!(beta(3, 2), 10); // C(5, 2)
        assert_eq!(beta(20, 5), 53130); // C(25, 5)
        assert_eq!(beta(1, 7), 8);
        assert_eq!(beta(usize::MAX / 2, 3), usize::MAX);
    }

    /// Simulate the recursion of the reverse pass and check the slot budget holds and every
    /// step is reversed exactly once, in reverse order.
    fn simulate(
        l: usize,
        s: usize,
        reversed: &mut Vec<usize>,
        a: usize,
        peak: &mut usize,
        held: usize,
    ) {
        *peak = (*peak).max(held);
        let mut b = a + l;
        while b - a > 1 && b - a > s {
            if s == 1 {
                reversed.push(b - 1);
                b -= 1;
                continue;
            }
            let m = a + binomial_split(b - a, s);
            simulate(b - m, s - 1, reversed, m, peak, held + 1);
            b = m;
        }
        // store-all tail: b − a ≤ s states
        *peak = (*peak).max(held + (b - a).saturating_sub(1));
        reversed.extend((a..b).rev());
    }

    #[test]
    fn binomial_schedule_respects_the_budget_and_reverses_every_step_once() {
        for (l, s) in [(1, 2), (2, 2), (10, 2), (100, 3), (1000, 5), (20000, 20), (57, 1)] {
            let mut rev = Vec::new();
            let mut peak = 0;
            simulate(l, s, &mut rev, 0, &mut peak, 1);
            assert_eq!(rev, (0..l).rev().collect::<Vec<_>>(), "l={l} s={s}");
            assert!(peak <= s.max(1), "l={l} s={s} peak={peak}");
        }
    }

    #[test]
    fn slot_store_counts_its_peak_and_thins() {
        let mut st = SlotStore::default();
        for i in 0..6 {
            st.insert(i, &[i as f64]);
        }
        st.thin(2);
        assert_eq!(st.indices(), vec![0, 2, 4]);
        assert_eq!(st.peak(), 6);
        assert_eq!(st.get(4), Some(&[4.0][..]));
    }
}
