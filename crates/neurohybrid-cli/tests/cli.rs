//! The `neurohybrid` binary end to end: help, each bad input as one line on stderr with a
//! non-zero exit and no output files, a small successful `simulate`, and that a failed run
//! leaves an existing output folder untouched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use neurohybrid_mesh::io::{NiftiImage, write_nifti};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neurohybrid"))
}

/// A fresh scratch folder per test.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nh-cli-it-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// A small valid phantom scenario; `edit` patches its text.
fn scenario(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = r#"
[anatomy]
kind = "phantom"
dim = 2
shape = [24, 24]
spacing_mm = 8.0

[tumor]
d_w = 0.15
r = 10.0
rho = 0.03

[seed]
location_mm = [-32.0, -20.0]
radius_mm = 8.0
density = 0.5

[scans]
days = [30.0, 60.0]
training = 1
"#;
    let p = dir.join(name);
    fs::write(&p, edit(text.to_owned())).unwrap();
    p
}

/// Asserts a failed run: non-zero exit, exactly one line on stderr that contains `needle`,
/// and no output folder.
fn assert_one_line_error(out: &Output, needle: &str, out_dir: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected, got: {stderr}");
    assert!(stderr.starts_with("neurohybrid: error: "), "{stderr}");
    assert!(stderr.to_lowercase().contains(&needle.to_lowercase()), "`{needle}` not in: {stderr}");
    assert!(!out_dir.exists(), "a failed run created {}", out_dir.display());
}

#[test]
fn help_lists_commands_and_flags() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["demo", "simulate", "fit", "validate", "--out", "--seed", "--threads", "--quiet"] {
        assert!(text.contains(word), "`{word}` missing from --help:\n{text}");
    }
    let demo = run(&["demo", "--help"]);
    let text = String::from_utf8_lossy(&demo.stdout);
    assert!(
        text.contains("glioma") && text.contains("alzheimer") && text.contains("stroke"),
        "{text}"
    );
}

#[test]
fn missing_scenario_file() {
    let d = scratch("missing");
    let out_dir = d.join("out");
    let missing = d.join("no-such-scenario.toml");
    let out = run(&["simulate", missing.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "no-such-scenario.toml", &out_dir);
    let out = run(&["fit", missing.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "no-such-scenario.toml", &out_dir);
}

#[test]
fn unknown_config_key() {
    let d = scratch("unknown");
    let out_dir = d.join("out");
    let p = scenario(&d, "s.toml", |t| t.replace("rho = 0.03", "rho = 0.03\nproliferation = 2.0"));
    let out = run(&["simulate", p.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "proliferation", &out_dir);
}

#[test]
fn negative_diffusivity() {
    let d = scratch("negd");
    let out_dir = d.join("out");
    let p = scenario(&d, "s.toml", |t| t.replace("d_w = 0.15", "d_w = -0.15"));
    let out = run(&["fit", p.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "diffusivity", &out_dir);
}

#[test]
fn seed_outside_the_brain() {
    let d = scratch("seed");
    let out_dir = d.join("out");
    let p = scenario(&d, "s.toml", |t| t.replace("[-32.0, -20.0]", "[900.0, 900.0]"));
    let out = run(&["simulate", p.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "outside the brain", &out_dir);
}

#[test]
fn tissue_maps_of_different_shapes() {
    let d = scratch("shapes");
    let out_dir = d.join("out");
    let map = |dim: [usize; 3], name: &str| {
        let n = dim.iter().product();
        let img = NiftiImage::new(dim, [2.0; 3], vec![0.5; n]).unwrap();
        write_nifti(d.join(name), &img).unwrap();
    };
    map([10, 10, 10], "wm.nii");
    map([10, 10, 10], "gm.nii");
    map([10, 12, 10], "csf.nii");
    let p = scenario(&d, "s.toml", |t| {
        let anatomy =
            "[anatomy]\nkind = \"nifti\"\nwm = \"wm.nii\"\ngm = \"gm.nii\"\ncsf = \"csf.nii\"\n";
        let start = t.find("[anatomy]").unwrap();
        let end = t.find("[tumor]").unwrap();
        format!("{}{anatomy}\n{}", &t[..start], &t[end..])
            .replace("[-32.0, -20.0]", "[10.0, 10.0, 10.0]")
    });
    let out = run(&["simulate", p.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_one_line_error(&out, "different shapes", &out_dir);
}

#[test]
fn bad_thread_count() {
    let d = scratch("threads");
    let out_dir = d.join("out");
    let p = scenario(&d, "s.toml", |t| t);
    let out = run(&[
        "simulate",
        p.to_str().unwrap(),
        "--threads",
        "0",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "--threads", &out_dir);
}

#[test]
fn unknown_demo_is_rejected() {
    let out = run(&["demo", "migraine"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("migraine"));
}

#[test]
fn failed_run_leaves_existing_results_untouched() {
    // A previous run's results are in the folder; a run that fails on its input must not
    // replace, truncate or add anything there (no temporary files either).
    let d = scratch("keep");
    let out_dir = d.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(out_dir.join("metrics.json"), "{\"previous\": true}\n").unwrap();
    let p = scenario(&d, "s.toml", |t| t.replace("d_w = 0.15", "d_w = -1.0"));
    let out = run(&["simulate", p.to_str().unwrap(), "-q", "--out", out_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let names: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["metrics.json"]);
    assert_eq!(fs::read_to_string(out_dir.join("metrics.json")).unwrap(), "{\"previous\": true}\n");
}

#[test]
fn simulate_writes_complete_files() {
    let d = scratch("sim");
    let out_dir = d.join("out");
    let p = scenario(&d, "s.toml", |t| t);
    let out = run(&[
        "simulate",
        p.to_str().unwrap(),
        "--quiet",
        "--seed",
        "3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "--quiet must keep stderr clean: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("wrote"), "{stdout}");
    let mut names: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["density_snapshots.png", "index.html", "simulation.json", "volumes.png"]);
    let sim: serde_json::Value =
        serde_json::from_slice(&fs::read(out_dir.join("simulation.json")).unwrap()).unwrap();
    assert_eq!(sim["days"].as_array().unwrap().len(), 2);
    // Volumes grow between the scans (no treatment in this scenario).
    let v = sim["tumor_volume_ml"].as_array().unwrap();
    assert!(v[1].as_f64().unwrap() >= v[0].as_f64().unwrap());
    for png in ["density_snapshots.png", "volumes.png"] {
        let bytes = fs::read(out_dir.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
        // IHDR: width and height (big-endian) right after the chunk header.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert!(w >= 250 && h >= 240, "{png}: {w} x {h}");
    }
    let html = fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(html.contains("density_snapshots.png") && html.contains("volumes.png"));
}
