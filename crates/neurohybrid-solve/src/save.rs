//! What is returned: [`SaveAt`].

/// Which values a solve records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SaveAt {
    /// Exactly these times, in integration order (non-decreasing for `t1 > t0`, non-increasing
    /// for `t1 < t0`), all within the span. Values between steps come from the stepper's dense
    /// output; steps are not shortened to hit them.
    Times(Vec<f64>),
    /// `t0` and the end of every accepted step.
    Steps,
    /// Like `Steps`, plus every step's interpolant: evaluate anywhere with
    /// `Solution::interpolate`.
    Dense,
    /// Only the final state (cheapest; nothing is stored per step).
    Final,
}
