//! Suite `models`: per disease, the protocol "mechanistic vs neural vs hybrid" over a synthetic
//! cohort whose truth contains physics the mechanistic model lacks: fit on early time points,
//! report the error on later ones, parameter recovery and wall time (DESIGN.md §6). One module
//! per disease; each prints one JSON line per (patient, model) and a summary line.

pub mod alzheimer;
pub mod glioma;
pub mod stroke;

use crate::Case;

/// Every case of the suite (the cheap subset when `fast`).
pub fn run(fast: bool) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(glioma::run(fast));
    cases.extend(alzheimer::run(fast));
    cases.extend(stroke::run(fast));
    cases
}
