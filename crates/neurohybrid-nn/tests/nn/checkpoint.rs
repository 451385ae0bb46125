//! Save, reload, and get bit-identical outputs; malformed files give named errors.

use neurohybrid_nn::{
    Activation, Architecture, Checkpoint, Conv, Dense, Format, Init, Layer, Mlp, NnError,
    Pointwise, Sequential, initialize,
};

use crate::common::{eval, layer_tape, uniform};

fn model() -> (Architecture, Vec<f64>) {
    let mask: Vec<bool> = (0..36).map(|c| c % 5 != 0).collect();
    let arch: Architecture = Sequential::new()
        .push(Conv::new(&[6, 6], 1, 2).unwrap().with_mask(mask).unwrap())
        .push(Activation::Gelu)
        .push(Conv::new(&[6, 6], 2, 1).unwrap())
        .into();
    let params: Vec<f64> = initialize(&arch, Init::HeNormal, 3)
        .iter()
        .zip(uniform(4, arch.n_params(), 1e-3))
        .map(|(a, b)| a + b)
        .collect();
    (arch, params)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn reload_gives_bit_identical_outputs_json_and_binary() {
    let dir = std::env::temp_dir().join(format!("nh-nn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(Architecture, Vec<f64>, Vec<usize>)> = vec![
        {
            let (a, p) = model();
            (a, p, vec![36])
        },
        {
            let m = Mlp::new(&[2, 16, 16, 1], Activation::Tanh)
                .unwrap()
                .with_output_activation(Activation::Softplus);
            let p = initialize(&m, Init::GlorotNormal, 9)
                .iter()
                .map(|v| v * std::f64::consts::PI)
                .collect();
            (Pointwise::new(m).into(), p, vec![50, 2])
        },
        (Dense::new(3, 2, false).unwrap().into(), uniform(5, 6, 1.0 / 3.0), vec![3]),
    ];
    for (arch, params, x_shape) in cases {
        let ck = Checkpoint::new(arch.clone(), params.clone()).unwrap();
        let x = uniform(6, x_shape.iter().product(), 1.0);
        let y0 = eval(&layer_tape(&arch, &x_shape), &[&x, &params]);
        for format in [Format::Json, Format::Binary] {
            let path = dir.join(format!("m-{format:?}"));
            ck.save(&path, format).unwrap();
            let back = Checkpoint::load(&path).unwrap();
            back.expect_architecture(&arch).unwrap();
            assert_eq!(bits(&back.params), bits(&params), "{format:?}: parameters");
            let y1 = eval(&layer_tape(&back.architecture, &x_shape), &[&x, &back.params]);
            assert_eq!(bits(&y1), bits(&y0), "{format:?}: outputs");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_truncation_of_a_binary_file_is_a_named_error() {
    let (arch, params) = model();
    let bytes = Checkpoint::new(arch, params).unwrap().to_bytes().unwrap();
    for len in 0..bytes.len() {
        match Checkpoint::from_bytes(&bytes[..len]) {
            Err(NnError::Truncated { .. }) => {}
            Err(NnError::BadMagic { .. }) if len < 4 => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn corrupt_files_are_named_errors() {
    let (arch, params) = model();
    let ck = Checkpoint::new(arch.clone(), params.clone()).unwrap();
    let bytes = ck.to_bytes().unwrap();

    let mut bad = bytes.clone();
    bad[..4].copy_from_slice(b"PNG\0");
    assert!(matches!(Checkpoint::from_bytes(&bad), Err(NnError::BadMagic { .. })));

    let mut bad = bytes.clone();
    bad[4] = 9;
    assert!(matches!(
        Checkpoint::from_bytes(&bad),
        Err(NnError::UnsupportedVersion { found: 9, .. })
    ));

    let mut bad = bytes.clone();
    let k = bytes.len() - 20;
    bad[k] ^= 0x10;
    assert!(matches!(Checkpoint::from_bytes(&bad), Err(NnError::ChecksumMismatch { .. })));

    let mut bad = bytes.clone();
    bad.push(0);
    assert!(matches!(Checkpoint::from_bytes(&bad), Err(NnError::TrailingBytes { extra: 1 })));

    // A consistent file whose parameter count disagrees with its architecture.
    let short = Checkpoint { architecture: arch.clone(), params: params[1..].to_vec() };
    assert!(matches!(short.to_bytes(), Err(NnError::ParamCountMismatch { .. })));
    let json = ck.to_json().unwrap().replacen("\"params\": [", "\"params\": [0.5,", 1);
    assert!(
        matches!(Checkpoint::from_json(&json), Err(NnError::ParamCountMismatch { got, expected }) if got == expected + 1)
    );

    let other: Architecture = Mlp::new(&[1, 2, 1], Activation::Tanh).unwrap().into();
    assert!(matches!(ck.expect_architecture(&other), Err(NnError::ArchitectureMismatch { .. })));
    assert!(matches!(
        Checkpoint::new(other, params.clone()),
        Err(NnError::ParamCountMismatch { .. })
    ));

    assert!(matches!(Checkpoint::from_json("{\"format\": 1"), Err(NnError::Json { .. })));
    let wrong_kind = ck.to_json().unwrap().replace("neurohybrid-nn", "something-else");
    assert!(matches!(Checkpoint::from_json(&wrong_kind), Err(NnError::BadMagic { .. })));
    // An invalid architecture inside an otherwise well-formed file.
    let bad_conv = ck.to_json().unwrap().replacen("\"kernel\": 3", "\"kernel\": 4", 1);
    assert!(matches!(Checkpoint::from_json(&bad_conv), Err(NnError::InvalidConfig { .. })));

    let mut nan = params.clone();
    nan[2] = f64::NAN;
    let ck_nan = Checkpoint::new(arch, nan).unwrap();
    assert!(matches!(ck_nan.to_json(), Err(NnError::NonFinite { index: 2, .. })));
    let back = Checkpoint::from_bytes(&ck_nan.to_bytes().unwrap()).unwrap();
    assert!(back.params[2].is_nan(), "binary keeps NaN bit patterns");

    assert!(matches!(Checkpoint::load("/nonexistent/dir/model.nhnn"), Err(NnError::Io { .. })));
}
