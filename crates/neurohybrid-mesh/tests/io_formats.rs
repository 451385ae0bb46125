//! File formats: round trips (NIfTI `.nii`/`.nii.gz`, CSV/TSV, MAT v5 from a writer in this
//! file and from scipy, TVB folders and zips with bzip2 members), files from independent
//! writers (nibabel, scipy fixtures in `tests/fixtures/`, made by `make_fixtures.py`), named
//! errors for invalid content, and corrupted-input properties: random truncations and byte
//! flips of valid files never panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use neurohybrid_mesh::io::{
    self, Delimiter, DenseMatrix, IoError, NiftiDataType, NiftiImage, read_mat, read_mat_bytes,
    read_matrix_text, read_nifti, read_nifti_bytes, read_tvb, write_matrix_text, write_nifti,
    write_nifti_bytes,
};
use neurohybrid_mesh::{GraphError, LaplacianKind};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fresh scratch folder per test (tests run in parallel).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nh-mesh-io-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// NIfTI

/// A 5×4×3 volume with f32-exact values and a rotated, reflected, translated affine whose
/// entries are f32-exact (the header stores float32).
fn sample_image(datatype: NiftiDataType) -> NiftiImage {
    let dim = [5, 4, 3];
    let data: Vec<f64> = (0..60).map(|k| ((k * 37) % 61) as f64 / 8.0 - 2.0).collect();
    let mut img = NiftiImage::new(dim, [1.5, 2.0, 2.5], data).unwrap();
    let (c, s) = (0.6, 0.8); // a rotation by atan(4/3) about z, exact in f32
    img.affine = [
        [1.5 * c, -2.0 * s, 0.0, -90.25],
        [1.5 * s, 2.0 * c, 0.0, 126.5],
        [0.0, 0.0, -2.5, -72.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    for row in img.affine.iter_mut() {
        for v in row.iter_mut() {
            *v = *v as f32 as f64;
        }
    }
    img.datatype = datatype;
    img.sform_code = 4;
    img.qform_code = 1;
    img.description = "neurohybrid test volume".into();
    img
}

#[test]
fn nifti_round_trip_nii_and_nii_gz_float() {
    let dir = scratch("nifti_rt");
    for dt in [NiftiDataType::F32, NiftiDataType::F64] {
        for name in ["v.nii", "v.nii.gz"] {
            let img = sample_image(dt);
            let path = dir.join(name);
            write_nifti(&path, &img).unwrap();
            let back = read_nifti(&path).unwrap();
            assert_eq!(back, img, "{dt:?} {name}");
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), name.ends_with(".gz"));
        }
    }
}

#[test]
fn nifti_integer_types_round_trip_exactly_or_within_half_a_step() {
    // Integral data in range: slope 1, exact.
    for dt in [
        NiftiDataType::U8,
        NiftiDataType::I8,
        NiftiDataType::I16,
        NiftiDataType::U16,
        NiftiDataType::I32,
        NiftiDataType::U32,
    ] {
        let mut img = sample_image(dt);
        img.data = (0..60).map(|k| (k % 100) as f64).collect();
        let back = read_nifti_bytes(&write_nifti_bytes(&img, false, "t").unwrap(), "t").unwrap();
        assert_eq!(back, img, "{dt:?}");
    }
    // Fractional data as uint8 / int16: quantized through scl_slope/scl_inter.
    for (dt, steps) in [(NiftiDataType::U8, 255.0), (NiftiDataType::I16, 65535.0)] {
        let img = sample_image(dt);
        let back = read_nifti_bytes(&write_nifti_bytes(&img, true, "t").unwrap(), "t").unwrap();
        let (lo, hi) =
            img.data.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let step = (hi - lo) / steps;
        for (a, b) in back.data.iter().zip(&img.data) {
            assert!((a - b).abs() <= 0.5 * step * (1.0 + 1e-5), "{dt:?}: {a} vs {b}");
        }
        assert_eq!(back.datatype, dt);
        assert_eq!(back.affine, img.affine);
    }
}

#[test]
fn nifti_qform_only_and_pixdim_only_affines() {
    let mut img = sample_image(NiftiDataType::F32);
    img.sform_code = 0;
    let back = read_nifti_bytes(&write_nifti_bytes(&img, false, "t").unwrap(), "t").unwrap();
    for r in 0..4 {
        for c in 0..4 {
            assert!((back.affine[r][c] - img.affine[r][c]).abs() < 1e-5, "qform [{r}][{c}]");
        }
    }
    img.qform_code = 0;
    let back = read_nifti_bytes(&write_nifti_bytes(&img, false, "t").unwrap(), "t").unwrap();
    let diag =
        [[1.5, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.5, 0.0], [0.0, 0.0, 0.0, 1.0]];
    assert_eq!(back.affine, diag);
    assert_eq!(back.spacing, [1.5, 2.0, 2.5]);
    assert_eq!(back.voxel_to_world(1.0, 1.0, 1.0), [1.5, 2.0, 2.5]);
}

#[test]
fn nifti_from_nibabel_big_endian_int16_scaled_qform() {
    // Written by nibabel: big-endian int16, scl_slope 0.5, scl_inter 1, qform code 1 only
    // (rotation of 30° about z, pixdim 2, 3, 1.5, qfac −1). Values: 0.5·(v − 5) + 1.
    let img = read_nifti(fixture("nibabel_be_qform_i16.nii")).unwrap();
    assert_eq!(img.dim, [4, 3, 2]);
    assert_eq!(img.datatype, NiftiDataType::I16);
    assert_eq!((img.sform_code, img.qform_code), (0, 1));
    assert_eq!(img.spacing, [2.0, 3.0, 1.5]);
    assert_eq!(&img.data[..4], [-1.5, -1.0, -0.5, 0.0]);
    assert_eq!(img.get(1, 2, 1), Some(9.0));
    // nibabel's affine for this file.
    let want = [
        [1.73205081, -1.49999999, 0.0, -10.0],
        [0.99999999, 2.59807622, 0.0, 5.0],
        [0.0, 0.0, -1.5, 7.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    for (r, (got, want)) in img.affine.iter().zip(&want).enumerate() {
        for (c, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-6, "[{r}][{c}]: {g} vs {w}");
        }
    }
}

#[test]
fn nifti_from_nibabel_gz_float32_mni_sform() {
    let img = read_nifti(fixture("nibabel_f32_mni.nii.gz")).unwrap();
    assert_eq!(img.dim, [5, 4, 3]);
    assert_eq!(img.sform_code, 4);
    assert_eq!(img.get(4, 3, 2), Some(7.375));
    assert_eq!(img.affine[0], [-1.0, 0.0, 0.0, 90.0]);
    assert_eq!(img.voxel_to_world(0.0, 0.0, 0.0), [90.0, -126.0, -72.0]);
}

/// Writes 16-bit little-endian values into a header copy.
fn patch_i16(bytes: &mut [u8], at: usize, v: i16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn nifti_4d_with_one_volume_reads_and_several_are_unsupported() {
    let img = sample_image(NiftiDataType::F32);
    let mut bytes = write_nifti_bytes(&img, false, "t").unwrap();
    patch_i16(&mut bytes, 40, 4); // dim[0] = 4, dim[4] = 1 (already written as 1)
    assert_eq!(read_nifti_bytes(&bytes, "t").unwrap().data, img.data);
    patch_i16(&mut bytes, 48, 2); // dim[4] = 2
    let err = read_nifti_bytes(&bytes, "t").unwrap_err();
    assert!(matches!(err, IoError::Unsupported { .. }), "{err}");
}

#[test]
fn nifti_invalid_headers_are_named_errors() {
    let img = sample_image(NiftiDataType::F32);
    let good = write_nifti_bytes(&img, false, "t").unwrap();
    let check = |patch: &dyn Fn(&mut Vec<u8>), want: &dyn Fn(&IoError) -> bool| {
        let mut b = good.clone();
        patch(&mut b);
        let err = read_nifti_bytes(&b, "t").unwrap_err();
        assert!(want(&err), "unexpected error: {err}");
    };
    check(&|b| b[344..348].copy_from_slice(b"xxxx"), &|e| matches!(e, IoError::BadMagic { .. }));
    check(&|b| b[344..348].copy_from_slice(b"ni1\0"), &|e| {
        matches!(e, IoError::Unsupported { .. })
    });
    check(&|b| b[0..4].copy_from_slice(&540i32.to_le_bytes()), &|e| {
        matches!(e, IoError::Unsupported { .. })
    });
    check(&|b| b[0..4].copy_from_slice(&12i32.to_le_bytes()), &|e| {
        matches!(e, IoError::BadMagic { .. })
    });
    check(&|b| patch_i16(b, 42, 0), &|e| matches!(e, IoError::InvalidHeader { field: "dim", .. }));
    check(&|b| patch_i16(b, 40, 9), &|e| {
        matches!(e, IoError::InvalidHeader { field: "dim[0]", .. })
    });
    check(&|b| patch_i16(b, 70, 32), &|e| matches!(e, IoError::Unsupported { .. }));
    check(&|b| b[108..112].copy_from_slice(&(-1.0f32).to_le_bytes()), &|e| {
        matches!(e, IoError::InvalidHeader { field: "vox_offset", .. })
    });
    check(&|b| patch_i16(b, 42, 30000), &|e| {
        matches!(e, IoError::Truncated { what: "voxel data", .. })
    });
    check(&|b| b[352..356].copy_from_slice(&f32::NAN.to_le_bytes()), &|e| {
        matches!(e, IoError::NonFinite { row: 0, .. })
    });
    check(&|b| b.truncate(200), &|e| {
        matches!(e, IoError::Truncated { what: "NIfTI header", got: 200, .. })
    });
    check(&|b| b.truncate(400), &|e| {
        matches!(e, IoError::Truncated { expected: 592, got: 400, .. })
    });
}

#[test]
fn nifti_writer_rejects_unrepresentable_images() {
    let mut img = sample_image(NiftiDataType::F32);
    img.data[3] = f64::NAN;
    assert!(matches!(write_nifti_bytes(&img, false, "t"), Err(IoError::Unrepresentable { .. })));
    img.data[3] = 1e300;
    assert!(matches!(write_nifti_bytes(&img, false, "t"), Err(IoError::Unrepresentable { .. })));
    img.data.pop();
    assert!(matches!(write_nifti_bytes(&img, false, "t"), Err(IoError::DimensionMismatch { .. })));
    assert!(matches!(
        NiftiImage::new([2, 0, 1], [1.0; 3], vec![]),
        Err(IoError::InvalidHeader { field: "dim", .. })
    ));
    let missing = read_nifti("/nonexistent/neurohybrid.nii").unwrap_err();
    assert!(matches!(missing, IoError::Io { .. }), "{missing}");
}

// ---------------------------------------------------------------------------------------------
// Text matrices

#[test]
fn csv_tsv_and_whitespace_round_trip() {
    let dir = scratch("text_rt");
    let mut m = DenseMatrix::new(3, 3, vec![0.0, 0.1, 1e-300, 0.1, 0.0, 2.5e7, 1e-300, 2.5e7, 0.0])
        .unwrap();
    for (name, with_labels) in
        [("m.csv", true), ("m.tsv", true), ("m.txt", false), ("plain.csv", false)]
    {
        m.labels =
            if with_labels { vec!["lh".into(), "rh".into(), "brainstem".into()] } else { vec![] };
        let path = dir.join(name);
        write_matrix_text(&path, &m, Delimiter::Auto).unwrap();
        let back = read_matrix_text(&path, Delimiter::Auto).unwrap();
        assert_eq!(back, m, "{name}");
        back.check_weights(name).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("m.tsv")).unwrap();
    assert!(text.starts_with("lh\trh\tbrainstem\n"), "{text}");
}

#[test]
fn text_matrix_validation_errors() {
    let dir = scratch("text_err");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        read_matrix_text(&p, Delimiter::Auto)
    };
    let m = write("a.csv", "1,2,3\n4,5,6\n").unwrap();
    assert!(matches!(m.check_weights("a"), Err(IoError::NotSquare { rows: 2, cols: 3, .. })));
    let m = write("b.csv", "0,-2\n-2,0\n").unwrap();
    assert!(matches!(m.check_weights("b"), Err(IoError::NegativeWeight { row: 0, col: 1, .. })));
    assert!(matches!(
        write("c.csv", "0,inf\n1,0\n"),
        Err(IoError::NonFinite { row: 0, col: 1, .. })
    ));
    assert!(matches!(write("d.csv", "0,1\n1\n"), Err(IoError::DimensionMismatch { .. })));
    assert!(matches!(write("e.csv", ""), Err(IoError::Empty { .. })));
    assert!(matches!(write("f.tsv", "0\t1\n1\t1x\n"), Err(IoError::Parse { row: 1, col: 1, .. })));
    let bad_label =
        DenseMatrix { labels: vec!["a,b".into()], ..DenseMatrix::new(1, 1, vec![0.0]).unwrap() };
    assert!(matches!(
        write_matrix_text(dir.join("g.csv"), &bad_label, Delimiter::Auto),
        Err(IoError::Unrepresentable { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// MAT v5: a minimal writer (MathWorks "MAT-File Format", 2019, ch. 1), used to generate
// valid files of every numeric storage type, compressed and not.

/// One variable to write: name, class code, dims, real data and its miTYPE encoding.
struct MatVar<'a> {
    name: &'a str,
    class: u8,
    dims: &'a [i32],
    data: &'a [f64],
    /// Storage type: 1 int8, 2 uint8, 3 int16, 4 uint16, 5 int32, 6 uint32, 7 single, 9 double.
    mi_type: u32,
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

fn mat_element(mi_type: u32, payload: &[u8], out: &mut Vec<u8>) {
    if payload.len() <= 4 && mi_type != 14 {
        // Small data element format.
        out.extend_from_slice(&(((payload.len() as u32) << 16) | mi_type).to_le_bytes());
        let mut p = payload.to_vec();
        p.resize(4, 0);
        out.extend_from_slice(&p);
    } else {
        out.extend_from_slice(&mi_type.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        pad8(out);
    }
}

fn mat_matrix(var: &MatVar) -> Vec<u8> {
    let mut body = Vec::new();
    mat_element(
        6,
        &[[var.class as u32, 0u32]]
            .concat()
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<_>>(),
        &mut body,
    );
    mat_element(5, &var.dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>(), &mut body);
    mat_element(1, var.name.as_bytes(), &mut body);
    let raw: Vec<u8> = var
        .data
        .iter()
        .flat_map(|&v| match var.mi_type {
            1 => vec![v as i8 as u8],
            2 => vec![v as u8],
            3 => (v as i16).to_le_bytes().to_vec(),
            4 => (v as u16).to_le_bytes().to_vec(),
            5 => (v as i32).to_le_bytes().to_vec(),
            6 => (v as u32).to_le_bytes().to_vec(),
            7 => (v as f32).to_le_bytes().to_vec(),
            _ => v.to_le_bytes().to_vec(),
        })
        .collect();
    mat_element(var.mi_type, &raw, &mut body);
    let mut el = Vec::new();
    mat_element(14, &body, &mut el);
    el
}

fn mat_file(vars: &[MatVar], compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut text = b"MATLAB 5.0 MAT-file, written by neurohybrid tests".to_vec();
    text.resize(116, b' ');
    out.extend_from_slice(&text);
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&0x0100u16.to_le_bytes());
    out.extend_from_slice(b"IM");
    for v in vars {
        let el = mat_matrix(v);
        if compress {
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&el).unwrap();
            let z = enc.finish().unwrap();
            out.extend_from_slice(&15u32.to_le_bytes());
            out.extend_from_slice(&(z.len() as u32).to_le_bytes());
            out.extend_from_slice(&z);
        } else {
            out.extend_from_slice(&el);
        }
    }
    out
}

/// A symmetric 4-region connectome and three other variables of assorted storage types.
fn sample_mat(compress: bool) -> Vec<u8> {
    let w = [0.0, 1.5, 0.0, 2.0, 1.5, 0.0, 0.25, 0.0, 0.0, 0.25, 0.0, 3.0, 2.0, 0.0, 3.0, 0.0];
    let vars = [
        MatVar { name: "W", class: 6, dims: &[4, 4], data: &w, mi_type: 9 },
        MatVar {
            name: "counts",
            class: 6,
            dims: &[2, 3],
            data: &[1.0, 2.0, 3.0, 4.0, 250.0, 0.0],
            mi_type: 2,
        },
        MatVar { name: "neg", class: 10, dims: &[1, 3], data: &[-3.0, 7.0, -300.0], mi_type: 3 },
        MatVar { name: "s", class: 7, dims: &[1, 1], data: &[0.25], mi_type: 7 },
        MatVar { name: "big", class: 13, dims: &[2, 1], data: &[4e9, 1.0], mi_type: 6 },
    ];
    mat_file(&vars, compress)
}

#[test]
fn mat_round_trip_plain_and_compressed() {
    for compress in [false, true] {
        let m = read_mat_bytes(&sample_mat(compress), "t.mat").unwrap();
        assert_eq!(m.arrays.len(), 5);
        let w = m.weights(None).unwrap();
        assert_eq!((w.rows, w.cols), (4, 4));
        assert_eq!(w.get(0, 3), Some(2.0));
        assert_eq!(w.get(2, 3), Some(3.0));
        let c = m.get("counts").unwrap();
        assert_eq!(c.dims, [2, 3]);
        // Column-major in the file: counts(1, 3) = 250.
        assert_eq!(c.to_matrix("t").unwrap().get(0, 2), Some(250.0));
        assert_eq!(m.get("neg").unwrap().data, [-3.0, 7.0, -300.0]);
        assert_eq!(m.get("neg").unwrap().class, "int16");
        assert_eq!(m.get("s").unwrap().data, [0.25]);
        assert_eq!(m.get("big").unwrap().data, [4e9, 1.0]);
        assert_eq!(m.weights(Some("W")).unwrap(), w);
        assert!(matches!(m.weights(Some("nope")), Err(IoError::Missing { .. })));
        assert!(matches!(
            m.weights(Some("counts")),
            Err(IoError::NotSquare { rows: 2, cols: 3, .. })
        ));
    }
}

#[test]
fn mat_files_from_scipy() {
    for name in ["scipy_v5.mat", "scipy_v5_compressed.mat"] {
        let m = read_mat(fixture(name)).unwrap();
        let w = m.weights(None).unwrap();
        assert_eq!(
            w.data,
            [0.0, 1.5, 0.0, 2.0, 1.5, 0.0, 0.25, 0.0, 0.0, 0.25, 0.0, 3.0, 2.0, 0.0, 3.0, 0.0]
        );
        let s = m.get("S").unwrap().to_matrix(name).unwrap();
        assert_eq!((s.rows, s.cols), (2, 3));
        assert_eq!(s.data, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]);
        assert_eq!(m.get("S").unwrap().class, "single");
        assert_eq!(m.get("I").unwrap().data, [-3.0, 7.0, 300.0]);
        let skipped: Vec<&str> = m.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert!(skipped.contains(&"labels") && skipped.contains(&"c"), "{skipped:?}");
    }
}

#[test]
fn mat_invalid_content_is_named() {
    let vars =
        [MatVar { name: "W", class: 6, dims: &[2, 2], data: &[0.0, -1.0, -1.0, 0.0], mi_type: 9 }];
    let m = read_mat_bytes(&mat_file(&vars, true), "neg.mat").unwrap();
    assert!(matches!(m.weights(None), Err(IoError::NegativeWeight { .. })));
    let vars = [MatVar {
        name: "W",
        class: 6,
        dims: &[2, 2],
        data: &[0.0, f64::NAN, 1.0, 0.0],
        mi_type: 9,
    }];
    let m = read_mat_bytes(&mat_file(&vars, false), "nan.mat").unwrap();
    assert!(matches!(m.weights(None), Err(IoError::NonFinite { row: 1, col: 0, .. })));
    // dims promise more data than stored.
    let vars = [MatVar { name: "W", class: 6, dims: &[3, 3], data: &[0.0; 4], mi_type: 9 }];
    assert!(matches!(
        read_mat_bytes(&mat_file(&vars, false), "d"),
        Err(IoError::DimensionMismatch { .. })
    ));
    let mut bad = sample_mat(false);
    bad[126..128].copy_from_slice(b"XX");
    assert!(matches!(read_mat_bytes(&bad, "m"), Err(IoError::BadMagic { .. })));
    assert!(matches!(read_mat_bytes(&bad[..100], "m"), Err(IoError::Truncated { .. })));
    let header_only = &sample_mat(false)[..128];
    assert!(matches!(read_mat_bytes(header_only, "m"), Err(IoError::Empty { .. })));
}

// ---------------------------------------------------------------------------------------------
// TVB connectivity

const TVB_W: &str = "0 2 0 1\n2 0 3 0\n0 3 0 4\n1 0 4 0\n";
const TVB_T: &str = "0 10 0 20\n10 0 15 0\n0 15 0 12\n20 0 12 0\n";
const TVB_C: &str = "lh_a 1.0 2.0 3.0\nlh_b -1 2 3\nrh_a 4 5 6\nrh_b 7 8 9.5\n";

fn bz2(text: &str) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// A TVB zip with bzip2-compressed members in a subfolder, as `connectivity_68.zip` has.
fn tvb_zip(weights: &str) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in
        [("weights.txt", weights), ("tract_lengths.txt", TVB_T), ("centres.txt", TVB_C)]
    {
        zw.start_file(format!("conn/{name}.bz2"), opts).unwrap();
        zw.write_all(&bz2(text)).unwrap();
    }
    zw.start_file("conn/info.txt", opts).unwrap();
    zw.write_all(b"not read").unwrap();
    zw.finish().unwrap().into_inner()
}

fn check_tvb(c: &neurohybrid_mesh::Connectome) {
    assert_eq!(c.n_regions(), 4);
    assert_eq!(c.labels(), ["lh_a", "lh_b", "rh_a", "rh_b"]);
    assert_eq!(c.centres().unwrap()[3], [7.0, 8.0, 9.5]);
    assert_eq!(c.tract_lengths().unwrap()[1], 10.0);
    assert_eq!(c.graph().weight(2, 3), Some(4.0));
    assert!(c.graph().is_connected());
    assert_eq!(c.normalized_by_max().graph().max_weight(), 1.0);
    let (l2, lmax) = c.graph().spectral_bounds(LaplacianKind::Combinatorial).unwrap();
    assert!(l2 > 0.0 && lmax > l2);
}

#[test]
fn tvb_folder_and_zip_with_bz2_members() {
    let dir = scratch("tvb");
    let folder = dir.join("plain");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("weights.txt"), TVB_W).unwrap();
    std::fs::write(folder.join("tract_lengths.txt.bz2"), bz2(TVB_T)).unwrap();
    std::fs::write(folder.join("centres.txt"), TVB_C).unwrap();
    check_tvb(&read_tvb(&folder).unwrap());
    let zip_path = dir.join("conn.zip");
    std::fs::write(&zip_path, tvb_zip(TVB_W)).unwrap();
    check_tvb(&read_tvb(&zip_path).unwrap());
}

#[test]
fn tvb_invalid_connectomes_are_named() {
    let dir = scratch("tvb_err");
    let case = |name: &str, w: &str, c: Option<&str>| {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("weights.txt"), w).unwrap();
        if let Some(c) = c {
            std::fs::write(folder.join("centres.txt"), c).unwrap();
        }
        read_tvb(&folder).unwrap_err()
    };
    let e = case("asym", "0 1\n2 0\n", None);
    assert!(matches!(e, IoError::Graph { source: GraphError::NotSymmetric { .. }, .. }), "{e}");
    let e = case("neg", "0 -1\n-1 0\n", None);
    assert!(matches!(e, IoError::NegativeWeight { value: -1.0, .. }), "{e}");
    let e = case("rect", "0 1 2\n1 0 2\n", None);
    assert!(matches!(e, IoError::NotSquare { rows: 2, cols: 3, .. }), "{e}");
    let e = case("count", "0 1\n1 0\n", Some("a 1 2 3\n"));
    assert!(matches!(e, IoError::DimensionMismatch { expected: 2, got: 1, .. }), "{e}");
    let e = case("centre", "0 1\n1 0\n", Some("a 1 2 3\nb 1 x 3\n"));
    assert!(matches!(e, IoError::Parse { row: 1, col: 2, .. }), "{e}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(read_tvb(&empty), Err(IoError::Missing { .. })));
    let not_zip = dir.join("x.zip");
    std::fs::write(&not_zip, b"PK but not really").unwrap();
    assert!(matches!(read_tvb(&not_zip), Err(IoError::Decompress { codec: "zip", .. })));
    let mut junk_bz2 = bz2(TVB_W);
    junk_bz2.truncate(junk_bz2.len() / 2);
    let folder = dir.join("bz2");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("weights.txt.bz2"), junk_bz2).unwrap();
    assert!(matches!(read_tvb(&folder), Err(IoError::Decompress { codec: "bzip2", .. })));
}

// ---------------------------------------------------------------------------------------------
// Corrupted input: random truncations and byte flips never panic; truncations that cut into
// announced data are named errors.

fn flip(bytes: &[u8], flips: &[(usize, u8)]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for &(at, x) in flips {
        let at = at % b.len();
        b[at] ^= x.max(1);
    }
    b
}

fn is_named(e: &IoError) -> bool {
    // Every variant is named; this also makes sure the message renders without panicking.
    !e.to_string().is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nifti_truncations_are_errors(cut in 0usize..592, gz in any::<bool>()) {
        let bytes = write_nifti_bytes(&sample_image(NiftiDataType::F32), gz, "t").unwrap();
        let cut = cut.min(bytes.len() - 1);
        let err = read_nifti_bytes(&bytes[..cut], "t").unwrap_err();
        prop_assert!(
            matches!(err, IoError::Truncated { .. } | IoError::Decompress { .. }),
            "cut {}: {}", cut, err
        );
    }

    #[test]
    fn nifti_byte_flips_never_panic(
        flips in prop::collection::vec((0usize..4096, any::<u8>()), 1..8),
        gz in any::<bool>(),
        dt in prop::sample::select(vec![NiftiDataType::F32, NiftiDataType::I16, NiftiDataType::U8])
    ) {
        let bytes = write_nifti_bytes(&sample_image(dt), gz, "t").unwrap();
        match read_nifti_bytes(&flip(&bytes, &flips), "t") {
            Ok(img) => prop_assert_eq!(img.data.len(), img.dim.iter().product::<usize>()),
            Err(e) => prop_assert!(is_named(&e)),
        }
    }

    #[test]
    fn nifti_random_header_fields_never_panic_or_overallocate(
        ndim in -2i16..10, dims in prop::collection::vec(any::<i16>(), 7),
        datatype in prop::sample::select(vec![2i16, 4, 8, 16, 64, 256, 512, 768, 32, 0, -1]),
        vox in prop::sample::select(vec![352.0f32, 348.0, 0.0, -4.0, 1e30, f32::NAN, 352.5, 4e9]),
        pixdim in prop::collection::vec(prop::sample::select(vec![1.0f32, 0.0, -2.0, f32::NAN, f32::INFINITY]), 3),
        units in any::<u8>(), slope in prop::sample::select(vec![0.0f32, 1.0, f32::NAN, 1e38]),
    ) {
        let mut b = write_nifti_bytes(&sample_image(NiftiDataType::F32), false, "t").unwrap();
        patch_i16(&mut b, 40, ndim);
        for (a, d) in dims.iter().enumerate() {
            patch_i16(&mut b, 42 + 2 * a, *d);
        }
        patch_i16(&mut b, 70, datatype);
        b[108..112].copy_from_slice(&vox.to_le_bytes());
        for (a, p) in pixdim.iter().enumerate() {
            b[80 + 4 * a..84 + 4 * a].copy_from_slice(&p.to_le_bytes());
        }
        b[123] = units;
        b[112..116].copy_from_slice(&slope.to_le_bytes());
        if let Err(e) = read_nifti_bytes(&b, "t") {
            prop_assert!(is_named(&e));
        }
    }

    #[test]
    fn mat_truncations_and_flips_never_panic(
        cut in 0usize..2048, flips in prop::collection::vec((0usize..2048, any::<u8>()), 0..6),
        compress in any::<bool>()
    ) {
        let bytes = sample_mat(compress);
        let cut = cut.min(bytes.len());
        let damaged = flip(&bytes[..cut.max(1)], &flips);
        match read_mat_bytes(&damaged, "t.mat") {
            Ok(m) => {
                for a in &m.arrays {
                    prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
                    let _ = a.to_matrix("t");
                }
                let _ = m.weights(None);
            }
            Err(e) => prop_assert!(is_named(&e)),
        }
        // A pure truncation cutting into the first variable is always an error.
        if cut < 136 {
            prop_assert!(read_mat_bytes(&bytes[..cut], "t.mat").is_err());
        }
    }

    #[test]
    fn tvb_zip_truncations_and_flips_never_panic(
        cut in 0usize..4096, flips in prop::collection::vec((0usize..4096, any::<u8>()), 0..6)
    ) {
        let bytes = tvb_zip(TVB_W);
        let dir = scratch(&format!("tvb_fuzz_{}_{}", cut, flips.len()));
        let path = dir.join("c.zip");
        let damaged = flip(&bytes[..cut.clamp(1, bytes.len())], &flips);
        std::fs::write(&path, &damaged).unwrap();
        match read_tvb(&path) {
            Ok(c) => prop_assert_eq!(c.labels().len(), c.n_regions()),
            Err(e) => prop_assert!(is_named(&e)),
        }
        if cut < bytes.len() {
            // The central directory is at the end: any truncation loses it.
            std::fs::write(&path, &bytes[..cut]).unwrap();
            prop_assert!(read_tvb(&path).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn text_matrices_with_random_bytes_never_panic(
        flips in prop::collection::vec((0usize..256, any::<u8>()), 1..10), cut in 1usize..256
    ) {
        let text = "a,b,c\n0,1.5,2\n1.5,0,3e-2\n2,3e-2,0\n";
        let damaged = flip(&text.as_bytes()[..cut.min(text.len())], &flips);
        let s = String::from_utf8_lossy(&damaged);
        for d in [Delimiter::Auto, Delimiter::Comma, Delimiter::Tab, Delimiter::Whitespace] {
            match io::text::parse_matrix_text(&s, d, "t") {
                Ok(m) => {
                    prop_assert_eq!(m.data.len(), m.rows * m.cols);
                    let _ = m.check_weights("t");
                }
                Err(e) => prop_assert!(is_named(&e)),
            }
        }
    }
}
