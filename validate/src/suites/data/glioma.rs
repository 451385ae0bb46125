//! Glioma on the MNI152 tissue maps at 2 mm in 3D (`data/mni152/`, or `$NEUROHYBRID_DATA`,
//! from `cargo xtask fetch-data mni152`): the scenario `examples/glioma-mni152.toml` (deep
//! white-matter seed, 60 Gy in 30 fractions) with its wall time and volumes, and the
//! white- vs gray-matter spread: the same tumour seeded in deep white matter and in cortical
//! gray matter, the growth of its visible radius between days 60 and 120 — the front must
//! move faster in white matter (theory: `2√(D_w ρ)` vs `2√(D_w ρ / R)`). `fast`: 4 mm.
//! Skipped with a message when the maps are absent.

use std::path::PathBuf;
use std::time::Instant;

use neurohybrid_glioma::metrics::equivalent_radius;
use neurohybrid_glioma::observe::tumor_mask;
use neurohybrid_glioma::{Anatomy, AnatomyConfig, Scenario, simulate, solve_at};

use crate::Case;

const SUITE: &str = "data";

fn data_dir() -> PathBuf {
    match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
    .join("mni152")
}

/// Every case of the glioma part.
pub fn run(fast: bool) -> Vec<Case> {
    let dir = data_dir();
    if !dir.join("mni_icbm152_wm_pbmap.nii.gz").exists() {
        return vec![Case::new(SUITE, "glioma_mni152/skipped", fast).with(
            "message",
            format!("{} not found: run `cargo xtask fetch-data mni152`", dir.display()),
        )];
    }
    // The example names its maps relative to the checkout (`../data/mni152/…`); the fetched
    // copy may live elsewhere (`$NEUROHYBRID_DATA`), and `Scenario::from_path` checks that the
    // files exist, so point the text at `dir` before parsing.
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/glioma-mni152.toml");
    let text = match std::fs::read_to_string(&example) {
        Ok(t) => t.replace("../data/mni152", &dir.to_string_lossy()),
        Err(e) => {
            return vec![
                Case::new(SUITE, "glioma_mni152/load", false)
                    .with("error", format!("{}: {e}", example.display())),
            ];
        }
    };
    let mut scenario = match Scenario::from_toml_str(&text) {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Case::new(SUITE, "glioma_mni152/load", false).with("error", e.to_string()),
            ];
        }
    };
    if fast && let AnatomyConfig::Nifti { downsample, .. } = &mut scenario.anatomy {
        *downsample = 4;
    }
    let label = if fast { "4mm" } else { "2mm" };
    vec![treatment_case(&scenario, label), spread_case(&scenario, label)]
}

fn treatment_case(s: &Scenario, label: &str) -> Case {
    let name = format!("glioma_mni152/{label}_3d_radiotherapy");
    match simulate(s, &mut |_| {}) {
        Ok(sim) => {
            let rt_start = s.radiotherapy.as_ref().map_or(f64::INFINITY, |r| r.start_day);
            let k_pre = sim.days.iter().rposition(|&d| d < rt_start).unwrap_or(0);
            let last = sim.days.len() - 1;
            // The course must shrink the enhancing core between the last scan before and the
            // scan after it.
            let ok = sim.core_volume_ml[last] < sim.core_volume_ml[k_pre];
            Case::new(SUITE, name, ok)
                .with("cells", sim.n_cells)
                .with("method", sim.method.clone())
                .with("steps", sim.steps)
                .with_f64("wall_s", sim.wall_time_s)
                .with("days", sim.days.clone())
                .with("tumor_volume_ml", sim.tumor_volume_ml.clone())
                .with("core_volume_ml", sim.core_volume_ml.clone())
        }
        Err(e) => Case::new(SUITE, name, false).with("error", e.to_string()),
    }
}

/// The cortical gray-matter cell whose 3×3×3 neighbourhood has the highest mean `p_gm`.
fn cortical_seed(a: &Anatomy) -> Option<Vec<f64>> {
    let g = &a.grid;
    let shape = g.shape();
    let mut best: Option<(f64, usize)> = None;
    for (i, &v) in g.active_voxels().iter().enumerate() {
        if a.gm[i] < 0.8 {
            continue;
        }
        let c = g.coords(v);
        let (mut s, mut n) = (0.0, 0);
        for d in 0..27usize {
            let off = [d % 3, (d / 3) % 3, d / 9];
            let q: Option<[usize; 3]> = (0..3)
                .map(|k| (c[k] + off[k]).checked_sub(1).filter(|&x| x < shape[k]))
                .collect::<Option<Vec<_>>>()
                .map(|q| [q[0], q[1], q[2]]);
            if let Some(j) = q.and_then(|q| g.linear(q)).and_then(|w| g.active_of(w)) {
                s += a.gm[j];
                n += 1;
            }
        }
        let m = s / 27.0;
        if n == 27 && best.is_none_or(|(b, _)| m > b) {
            best = Some((m, i));
        }
    }
    best.map(|(_, i)| g.world(g.active_voxels()[i]).to_vec())
}

fn spread_case(s: &Scenario, label: &str) -> Case {
    let name = format!("glioma_mni152/{label}_wm_vs_gm_spread");
    let start = Instant::now();
    let result = (|| -> neurohybrid_glioma::Result<(f64, f64, Vec<f64>)> {
        let anatomy = Anatomy::build(&s.anatomy)?;
        let mut base = s.clone();
        base.radiotherapy = None;
        base.chemotherapy = None;
        let days = [60.0, 120.0];
        let speed = |seed: &[f64]| -> neurohybrid_glioma::Result<f64> {
            let mut p = vec![base.tumor.d_w, base.tumor.rho];
            p.extend_from_slice(seed);
            let (c, _, _) = solve_at(&base, &anatomy, None, &p, &days, &mut |_| {})?;
            let r = |c: &[f64]| equivalent_radius(&anatomy, &tumor_mask(c, &base.imaging));
            Ok((r(&c[1]) - r(&c[0])) / (days[1] - days[0]))
        };
        let gm_seed = cortical_seed(&anatomy).ok_or_else(|| {
            neurohybrid_glioma::GliomaError::Invalid("no cortical gray matter".into())
        })?;
        Ok((speed(&base.seed.location_mm)?, speed(&gm_seed)?, gm_seed))
    })();
    match result {
        Ok((v_wm, v_gm, gm_seed)) => {
            let t = &s.tumor;
            Case::new(SUITE, name, v_wm > v_gm)
                .with_f64("front_speed_wm_mm_per_day", v_wm)
                .with_f64("front_speed_gm_mm_per_day", v_gm)
                .with_f64("theory_wm_mm_per_day", 2.0 * (t.d_w * t.rho).sqrt())
                .with_f64("theory_gm_mm_per_day", 2.0 * (t.d_w * t.rho / t.r).sqrt())
                .with("wm_seed_mm", s.seed.location_mm.clone())
                .with("gm_seed_mm", gm_seed)
                .with_f64("wall_s", start.elapsed().as_secs_f64())
        }
        Err(e) => Case::new(SUITE, name, false).with("error", e.to_string()),
    }
}
