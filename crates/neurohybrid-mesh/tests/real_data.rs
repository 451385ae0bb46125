//! Real anatomy and a real connectome, fetched by `cargo xtask fetch-data` into the
//! git-ignored `data/` folder (never committed: the MNI152 maps carry the McGill notice, the
//! TVB connectome is GPL-3.0). Each test prints what it measured and skips, with a message,
//! when its files have not been fetched.

use std::path::PathBuf;

use neurohybrid_mesh::io::{NiftiImage, read_nifti, read_tissue_maps, read_tvb, write_nifti};
use neurohybrid_mesh::{LaplacianKind, MaskRule};

/// `<workspace>/data/<rel>` (or `$NEUROHYBRID_DATA/<rel>` when that is set, e.g. to share
/// one fetched copy between checkouts), or `None`, with the skip message printed, if the
/// file is missing.
fn data_file(rel: &str) -> Option<PathBuf> {
    let data = match std::env::var_os("NEUROHYBRID_DATA") {
        Some(dir) => PathBuf::from(dir),
        // crates/neurohybrid-mesh → workspace root.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    };
    let path = data.join(rel);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: data/{rel} not fetched; run cargo xtask fetch-data");
        None
    }
}

fn ml(voxel_sum: f64, voxel_mm3: f64) -> f64 {
    voxel_sum * voxel_mm3 / 1000.0
}

#[test]
fn mni152_tissue_maps_at_2mm() {
    let files = [
        "mni152/mni_icbm152_wm_pbmap.nii.gz",
        "mni152/mni_icbm152_gm_pbmap.nii.gz",
        "mni152/mni_icbm152_csf_pbmap.nii.gz",
        "mni152/mni_icbm152_t1_brain_mask.nii.gz",
    ];
    let Some(paths) = files.iter().map(|f| data_file(f)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let images = read_tissue_maps(&paths[0], &paths[1], &paths[2]).unwrap();
    let mask = read_nifti(&paths[3]).unwrap();
    assert_eq!(images.dim, [197, 233, 189], "ICBM152 2009a is 197×233×189 at 1 mm");
    assert_eq!(images.spacing, [1.0, 1.0, 1.0]);
    assert_eq!((mask.dim, mask.affine), (images.dim, images.affine), "one voxel → MNI map");
    assert_eq!(mask.sform_code, 4, "MNI152 space");
    // The maps are int16-coded with scl_slope: their sum exceeds 1 by up to ~3e-5 in a
    // quarter of a million voxels, which read_tissue_maps rescales (and counts).
    assert!(images.renormalized < images.tissue.len() / 10);
    let tissue = &images.tissue;
    let vox1 = 1.0; // mm³
    let total = |x: &[f64]| x.iter().sum::<f64>();
    let (gm1, wm1, csf1) =
        (ml(total(tissue.gm()), vox1), ml(total(tissue.wm()), vox1), ml(total(tissue.csf()), vox1));
    let brain: Vec<bool> = mask.data.iter().map(|&m| m > 0.5).collect();
    let fine = images.grid(brain).unwrap();

    let coarse = fine.downsample(2, MaskRule::Majority).unwrap();
    let tissue2 = tissue.downsample(&fine, 2).unwrap();
    let vox2 = coarse.cell_volume();
    let gm2 = ml(tissue2.gm().iter().sum(), vox2);
    let wm2 = ml(tissue2.wm().iter().sum(), vox2);
    let csf2 = ml(tissue2.csf().iter().sum(), vox2);
    let (wm_a, gm_a) = tissue2.active_fractions(&coarse).unwrap();
    let gm_in = ml(gm_a.iter().sum(), vox2);
    let wm_in = ml(wm_a.iter().sum(), vox2);
    eprintln!(
        "MNI152 1 mm: {} voxels, brain mask {} voxels ({:.0} ml); GM {gm1:.1} ml, WM {wm1:.1} ml, \
         CSF {csf1:.1} ml; {} voxels renormalized (sum > 1 by quantization)",
        fine.n_voxels(),
        fine.n_active(),
        ml(fine.n_active() as f64, vox1),
        images.renormalized
    );
    eprintln!(
        "MNI152 2 mm: shape {:?}, {} active cells ({:.0} ml); GM {gm2:.1} ml, WM {wm2:.1} ml, \
         CSF {csf2:.1} ml; inside the mask GM {gm_in:.1} ml, WM {wm_in:.1} ml",
        coarse.shape(),
        coarse.n_active(),
        ml(coarse.n_active() as f64, vox2)
    );
    assert_eq!(coarse.shape(), [99, 117, 95]);
    assert_eq!(coarse.spacing(), [2.0, 2.0, 2.0]);
    // Sanity ranges. These maps hold GM 1012.23 ml, WM 673.94 ml, CSF 197.81 ml by an
    // independent reader (nibabel 5.4, sum of probabilities × 1 mm³). GM is above the
    // 500–900 ml of a single adult brain because the atlas's GM class includes cerebellar and
    // deep gray matter and MNI space is larger than an average brain (the 152 brains were
    // scaled up to the MNI305 target): so the bounds here are for this atlas, not for a
    // patient.
    assert!((800.0..1200.0).contains(&gm2), "GM {gm2} ml");
    assert!((500.0..800.0).contains(&wm2), "WM {wm2} ml");
    assert!((150.0..300.0).contains(&csf2), "CSF {csf2} ml");
    // Block averaging keeps totals (partial edge blocks aside: the box edges are background).
    assert!((gm2 - gm1).abs() < 1e-6 * gm1, "GM volume kept by averaging: {gm1} vs {gm2}");
    assert!((wm2 - wm1).abs() < 1e-6 * wm1, "WM volume kept by averaging: {wm1} vs {wm2}");
    // The T1 brain mask covers brain and ventricles (≈ 1.89 l here, in MNI space), and holds
    // nearly all the GM and WM.
    let brain_ml = ml(coarse.n_active() as f64, vox2);
    assert!((1500.0..2100.0).contains(&brain_ml), "brain mask {brain_ml} ml");
    assert!(gm_in > 0.9 * gm2 && wm_in > 0.97 * wm2, "tissue outside the mask");

    // The 2 mm gray-matter field written as NIfTI and read back keeps values and geometry;
    // voxel (0,0,0) of the coarse grid sits at the centre of its 2×2×2 fine block.
    let path = std::env::temp_dir().join(format!("nh-real-gm2-{}.nii.gz", std::process::id()));
    let img = NiftiImage::from_grid_field(&coarse, &gm_a, 0.0).unwrap();
    write_nifti(&path, &img).unwrap();
    let back = read_nifti(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((back.dim, back.spacing, back.affine), (coarse.shape(), [2.0; 3], coarse.affine()));
    let fine_centre = mask.voxel_to_world(0.5, 0.5, 0.5);
    assert_eq!(back.voxel_to_world(0.0, 0.0, 0.0), fine_centre);
    let err = back.data.iter().zip(&img.data).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-7, "float32 round trip error {err}");
}

#[test]
fn tvb_desikan_killiany_68_connectome() {
    let Some(path) = data_file("tvb/connectivity_68.zip") else { return };
    let c = read_tvb(&path).unwrap();
    assert_eq!(c.n_regions(), 68);
    let g = c.graph();
    let n = g.n_nodes();
    let w = g.weights_dense();
    for i in 0..n {
        for j in 0..n {
            assert_eq!(w[i * n + j], w[j * n + i], "symmetric");
        }
    }
    assert!(g.is_connected(), "components: {:?}", g.components());
    assert_eq!(c.labels().iter().filter(|l| l.starts_with("r_")).count(), 34);
    assert!(c.region("l_entorhinal").is_some(), "labels: {:?}", c.labels());
    let centres = c.centres().expect("centres.txt");
    assert!(centres.iter().all(|p| p.iter().all(|x| x.abs() < 200.0)), "centres in mm");
    let tracts = c.tract_lengths().expect("tract_lengths.txt");
    let max_tract = tracts.iter().copied().fold(0.0, f64::max);

    let normalized = c.normalized_by_max();
    let gn = normalized.graph();
    let (l2, lmax) = gn.spectral_bounds(LaplacianKind::Combinatorial).unwrap();
    let (n2, nmax) = gn.spectral_bounds(LaplacianKind::Normalized).unwrap();
    let self_loops = (0..n).filter(|&i| w[i * n + i] != 0.0).count();
    eprintln!(
        "TVB DK-68: {n} regions, {} edges ({self_loops} self-loops), max weight {:.6}, max tract \
         {max_tract:.1} mm; Laplacian of max-normalized weights: λ2 = {l2:.6}, λmax = {lmax:.6}; \
         normalized Laplacian: λ2 = {n2:.6}, λmax = {nmax:.6}",
        g.n_edges(),
        g.max_weight(),
    );
    assert!(l2 > 0.0 && lmax > l2, "connected: λ2 > 0");
    assert!(n2 > 0.0 && nmax <= 2.0 + 1e-12);
    // λmax ≤ 2 · max degree (Anderson & Morley 1985).
    let max_deg = gn.degrees().into_iter().fold(0.0, f64::max);
    assert!(lmax <= 2.0 * max_deg + 1e-12);
}
