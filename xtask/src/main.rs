//! Project automation (`cargo xtask <command>`, matklad's cargo-xtask pattern): CI runs nothing
//! but `cargo xtask ci`, so a local run and CI are the same thing.
//!
//! Commands:
//! - `ci`: fmt check, clippy `-D warnings`, `layers`, all tests (doctests included), and the
//!   fast case of every validation suite;
//! - `layers`: the crate-layer rules of DESIGN.md section 2 (see `layers.rs`);
//! - `validate [--suite NAME|all] [--fast]`: runs validation suites (release build);
//! - `bench [AREA]`: runs the criterion benches of the `benches` crate (one bench file per area);
//! - `doc`: builds the API docs with warnings denied;
//! - `fetch-data [SET...]`: real anatomy and connectomes into the ignored `data/` (see
//!   `fetch_data.rs`).

mod fetch_data;
mod layers;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <ci | layers | validate [--suite NAME|all] [--fast] | bench [AREA] | doc \
                     | fetch-data [mni152|tvb68|stroke-outcome|nilearn|all]...>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("layers") => layers_cmd(),
        Some("validate") => validate(&args[1..], true),
        Some("bench") => bench(&args[1..]),
        Some("doc") => doc(),
        Some("fetch-data") => fetch_data::run(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR at run time too; prefer it, because cargo reuses a
    // compiled xtask across checkouts that share a target directory (its fingerprint does not
    // include the source path), and the compile-time path would then name the other checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    Path::new(&manifest_dir).parent().expect("xtask lives in the workspace root").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    let start = Instant::now();
    eprintln!("xtask: == {step}");
    let status = cmd.status().map_err(|e| format!("{step}: cannot start: {e}"))?;
    eprintln!("xtask: == {step} took {:.1} s", start.elapsed().as_secs_f64());
    if status.success() { Ok(()) } else { Err(format!("{step} failed ({status})")) }
}

fn ci() -> Result<(), String> {
    let start = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run("fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run("clippy", clippy)?;

    layers_cmd()?;

    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run("test", test)?;

    // The fast case of every suite, in the test profile's artifacts (no extra release build).
    validate(&["--suite".into(), "all".into(), "--fast".into()], false)?;
    eprintln!("xtask: ci passed in {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

/// This workspace's members and its `[workspace.dependencies]` table.
pub(crate) fn workspace_members() -> Result<(Vec<layers::Member>, toml::Table), String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let members = layers::members_from_metadata(&meta)?;
    let root_manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|e| format!("root Cargo.toml: {e}"))?;
    let ws_deps = root_manifest
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    Ok((members, ws_deps))
}

/// Runs the layer check on this workspace.
pub(crate) fn run_layers_check() -> Result<Vec<layers::Violation>, String> {
    let (members, ws_deps) = workspace_members()?;
    Ok(layers::check(&members, &ws_deps))
}

fn layers_cmd() -> Result<(), String> {
    let v = run_layers_check()?;
    if v.is_empty() {
        eprintln!("xtask: layers: ok ({} crates in the table)", layers::TABLE.len());
        Ok(())
    } else {
        for x in &v {
            eprintln!("xtask: layers: {x}");
        }
        Err(format!("layers: {} violation(s)", v.len()))
    }
}

fn validate(args: &[String], release: bool) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "-p", "neurohybrid-validate"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--");
    if args.is_empty() {
        cmd.args(["--suite", "all"]);
    } else {
        cmd.args(args);
    }
    run(&format!("validate {}", args.join(" ")), cmd)
}

/// Bench areas named in the issues, each mapped to the bench targets of `benches/` it runs.
/// An area that is not listed runs the target of the same name.
const BENCH_AREAS: &[(&str, &[&str])] = &[
    ("solve", &["solve", "stiff", "fisher_kpp"]),
    ("models", &["models"]),
    ("hybrid", &["hybrid"]),
];

fn bench(args: &[String]) -> Result<(), String> {
    let targets: Vec<&str> = match args.first().map(String::as_str) {
        None => Vec::new(),
        Some(area) => BENCH_AREAS
            .iter()
            .find(|(a, _)| *a == area)
            .map_or_else(|| vec![area], |(_, ts)| ts.to_vec()),
    };
    // Areas list targets that arrive with later issues; run those that exist.
    let benches_dir = root().join("benches/benches");
    let existing: Vec<&str> =
        targets.iter().copied().filter(|t| benches_dir.join(format!("{t}.rs")).exists()).collect();
    if !targets.is_empty() && existing.is_empty() {
        return Err(format!("no bench target for `{}` in benches/benches/", targets.join(", ")));
    }
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "neurohybrid-benches"]);
    for t in &existing {
        cmd.args(["--bench", t]);
    }
    run("bench", cmd)
}

fn doc() -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings");
    run("doc", cmd)
}
