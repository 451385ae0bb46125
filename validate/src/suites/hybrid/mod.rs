//! Suite `hybrid`: compositions, training and calibration of `neurohybrid-hybrid` on the
//! problems of issue 8 (UDE Lotka–Volterra, the torchdiffeq spiral, a Fisher–KPP UDE,
//! solver-in-the-loop, calibration with Laplace intervals, kill-and-resume).
//!
//! Each case lives in its own module; `run` concatenates them in a fixed order.

pub mod calibration;
pub mod fkpp_ude;
pub mod resume;
pub mod sitl;
pub mod spiral;
pub mod ude_lv;

use crate::Case;

/// Every case of the suite (the cheap subset when `fast`).
pub fn run(fast: bool) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    cases.extend(ude_lv::run(fast));
    cases.extend(spiral::run(fast));
    cases.extend(fkpp_ude::run(fast));
    cases.extend(sitl::run(fast));
    cases.extend(calibration::run(fast));
    cases.extend(resume::run(fast));
    cases
}
