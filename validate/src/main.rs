//! `neurohybrid-validate --suite NAME [--fast]`, `--list`: runs validation suites, printing one
//! JSON line per case and a final `N passed, N failed`. Exit status 1 when a case failed.

use neurohybrid_validate::{Summary, suites};
use std::process::ExitCode;

fn usage() -> String {
    let names: Vec<&str> = suites::SUITES.iter().map(|(n, _)| *n).collect();
    format!(
        "usage: neurohybrid-validate --suite NAME|all [--fast] | --list\nsuites: {}",
        if names.is_empty() { "(none yet)".to_string() } else { names.join(", ") }
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut suite = None;
    let mut fast = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--suite" => suite = it.next().cloned(),
            "--fast" => fast = true,
            "--list" => {
                for (n, _) in suites::SUITES {
                    println!("{n}");
                }
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("error: unknown argument `{other}`\n{}", usage());
                return ExitCode::from(2);
            }
        }
    }
    let Some(suite) = suite else {
        eprintln!("error: --suite is required\n{}", usage());
        return ExitCode::from(2);
    };
    let selected: Vec<_> = if suite == "all" {
        suites::SUITES.to_vec()
    } else {
        match suites::find(&suite) {
            Some(f) => vec![(suite.as_str(), f)],
            None => {
                eprintln!("error: unknown suite `{suite}`\n{}", usage());
                return ExitCode::from(2);
            }
        }
    };
    let mut all = Vec::new();
    for (_, run) in selected {
        for case in run(fast) {
            println!("{}", case.to_json_line());
            all.push(case);
        }
    }
    let summary = Summary::of(&all);
    println!("{summary}");
    if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
