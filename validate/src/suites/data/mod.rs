//! Suite `data`: the disease models on real anatomy (MNI152 tissue maps) and the real
//! Desikan–Killiany 68-region connectome, fetched by `cargo xtask fetch-data` into `data/`.
//! When the data are missing a case says so in its JSON line; it counts as passed only under
//! `--fast` (CI without downloads), and as failed in a full run. One module per disease.

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
