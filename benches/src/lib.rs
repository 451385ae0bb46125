//! Shared helpers for the workspace benchmarks.
//!
//! Every bench prints one JSON line to stdout summarising its headline numbers, so scripts
//! (`cargo xtask bench`, CI) can collect results without parsing criterion's human output.

use std::path::PathBuf;

/// Directories where criterion may have written its results, in criterion's own order of
/// preference: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, then `target/criterion` in the
/// current directory and its parents (a bench runs in its package directory, below the
/// workspace's `target`).
fn criterion_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        dirs.push(PathBuf::from(h));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(t).join("criterion"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            dirs.push(dir.join("target").join("criterion"));
        }
    }
    dirs
}

/// When this process started, where the OS says so (Linux: `btime` of `/proc/stat` plus the
/// `starttime` field of `/proc/self/stat`, in the fixed 100 Hz `USER_HZ` of procfs). `btime`
/// is rounded down to whole seconds, so this is at most one second early, never late: every
/// file this process writes is newer. `None` elsewhere.
fn process_start() -> Option<std::time::SystemTime> {
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 2 (the command) is parenthesised and may hold spaces; field 22 is the start.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_comm.split_whitespace().nth(19)?.parse().ok()?;
    Some(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(btime)
            + std::time::Duration::from_millis(ticks * 10),
    )
}

/// The median (ns) of criterion benchmark `group/id` measured by *this* run
/// (`<criterion dir>/<group>/<id>/new/estimates.json`, field `median.point_estimate`).
/// Estimates written before the process started are ignored: a run filtered to some of a
/// group's functions must not report the others' old numbers as if they were fresh.
pub fn criterion_median_ns(group: &str, id: &str) -> Option<f64> {
    let start = process_start();
    criterion_dirs().into_iter().find_map(|dir| {
        let path = dir.join(group).join(id).join("new").join("estimates.json");
        if let (Some(start), Ok(written)) =
            (start, std::fs::metadata(&path).and_then(|m| m.modified()))
            && written < start
        {
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json.get("median")?.get("point_estimate")?.as_f64()
    })
}

/// The JSON line for bench `bench` with numeric `fields`, e.g.
/// `{"bench":"mlp_vjp","ours_ns":812.0,"dfdx_ns":9500.0,"ratio":11.7}`.
pub fn json_line(bench: &str, fields: &[(&str, f64)]) -> String {
    // Written by hand (not through a serde map) to keep the fields in the caller's order.
    let mut line = format!("{{\"bench\":{}", serde_json::Value::from(bench));
    for (k, v) in fields {
        // JSON has no NaN/inf: `Value::from` maps them to null.
        line.push_str(&format!(",{}:{}", serde_json::Value::from(*k), serde_json::Value::from(*v)));
    }
    line.push('}');
    line
}

/// Prints [`json_line`] to stdout (one line).
pub fn report_json(bench: &str, fields: &[(&str, f64)]) {
    println!("{}", json_line(bench, fields));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_keeps_field_order() {
        let line = json_line("mlp_vjp", &[("ours_ns", 1.5), ("dfdx_ns", 30.0), ("ratio", 20.0)]);
        assert_eq!(line, r#"{"bench":"mlp_vjp","ours_ns":1.5,"dfdx_ns":30.0,"ratio":20.0}"#);
        let parsed: serde_json::Value =
            serde_json::from_str(&json_line("x", &[("nan", f64::NAN)])).unwrap();
        assert!(parsed["nan"].is_null());
    }
}
