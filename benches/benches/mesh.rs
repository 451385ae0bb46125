//! neurohybrid-mesh: one application of the finite-volume diffusion operator `∇·(D∇u)` over a
//! whole 3D brain at 2 mm, tissue-derived D (`D_w = 0.12 mm²/day`, `R = 10`): matrix-free
//! sequential vs rayon-parallel, and the assembled CSR matvec for comparison.
//!
//! Anatomy: the real ICBM152 2009a maps when `cargo xtask fetch-data` has put them in
//! `data/mni152/` (or `$NEUROHYBRID_DATA/mni152/`) — brain mask and tissue fractions
//! averaged from 1 mm to 2 mm (99 × 117 × 95) — otherwise the procedural phantom at
//! 90 × 110 × 90 voxels (the MNI box at 2 mm). The JSON field `mni152` says which (1 / 0).
//!
//! Bandwidth model for `gb_per_s`, per active voxel of a matrix-free apply: read `u_i` (8 B),
//! the three cached upward-face coefficients (24 B) and the six `u32` neighbour indices
//! (24 B), write `out_i` (8 B) — 64 B. Neighbour values (`u_j`, the `−` neighbours' face
//! coefficients) are counted as cache hits: a row's ±z neighbours are one x–y plane away
//! (~4 000 active cells, ~130 KB of `u` and coefficients), which stays in L2.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use neurohybrid_benches::{criterion_median_ns, report_json};
use neurohybrid_mesh::io::{read_nifti, read_tissue_maps};
use neurohybrid_mesh::{
    DiffusionOperator, Grid, MaskRule, Parallelism, Phantom, TissueMaps, TissueModel,
};

const BYTES_PER_VOXEL: f64 = 64.0;

/// The real MNI152 anatomy at 2 mm, if fetched.
fn mni152_2mm() -> Option<(Grid, TissueMaps)> {
    let dir = match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
    .join("mni152");
    let f = |name: &str| dir.join(format!("mni_icbm152_{name}.nii.gz"));
    if !f("t1_brain_mask").is_file() {
        return None;
    }
    let images = read_tissue_maps(f("wm_pbmap"), f("gm_pbmap"), f("csf_pbmap")).ok()?;
    let mask = read_nifti(f("t1_brain_mask")).ok()?;
    let fine = images.grid(mask.data.iter().map(|&m| m > 0.5).collect()).ok()?;
    let grid = fine.downsample(2, MaskRule::Majority).ok()?;
    let tissue = images.tissue.downsample(&fine, 2).ok()?;
    Some((grid, tissue))
}

fn main() {
    let (mni, (grid, tissue)) = match mni152_2mm() {
        Some(anatomy) => (true, anatomy),
        None => {
            eprintln!("mesh bench: data/mni152 not fetched, using the procedural phantom");
            let phantom = Phantom::new_3d(90, 110, 90, 2.0).expect("valid phantom geometry");
            (false, phantom.into_parts())
        }
    };
    let op = DiffusionOperator::from_tissue(&grid, &tissue, TissueModel::default())
        .expect("tissue maps are valid");
    let n = op.n();
    let u: Vec<f64> = (0..n).map(|i| (i as f64 * 1e-3).sin()).collect();
    let mut out = vec![0.0; n];
    let seq = op.clone().with_parallelism(Parallelism::Sequential);
    let par = op.clone().with_parallelism(Parallelism::Rayon);
    let csr = op.assemble();

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("mesh_diffusion_apply");
    group.sample_size(30);
    group.bench_function("sequential", |b| {
        b.iter(|| seq.apply(black_box(&u), &mut out).expect("lengths match"))
    });
    group.bench_function("rayon", |b| {
        b.iter(|| par.apply(black_box(&u), &mut out).expect("lengths match"))
    });
    group.bench_function("csr", |b| {
        b.iter(|| csr.apply(black_box(&u), &mut out).expect("lengths match"))
    });
    group.finish();
    c.final_summary();

    let get = |id| criterion_median_ns("mesh_diffusion_apply", id);
    match (get("sequential"), get("rayon"), get("csr")) {
        (Some(s), Some(p), Some(m)) => report_json(
            "mesh_diffusion_apply",
            &[
                ("mni152", f64::from(u8::from(mni))),
                ("active_voxels", n as f64),
                ("seq_ns_per_voxel", s / n as f64),
                ("par_ns_per_voxel", p / n as f64),
                ("csr_ns_per_voxel", m / n as f64),
                ("threads", std::thread::available_parallelism().map_or(1, |t| t.get()) as f64),
                ("gb_per_s", BYTES_PER_VOXEL * n as f64 / p),
            ],
        ),
        // `cargo test --benches` runs each function once without writing estimates.
        _ => eprintln!(
            "mesh_diffusion_apply: no fresh criterion estimates for every function (a test or filtered run)"
        ),
    }
}
