//! Alzheimer's protocol on the real TVB Desikan–Killiany 68-region connectome
//! (`data/tvb/connectivity_68.zip`, or `$NEUROHYBRID_DATA/tvb/…`, from
//! `cargo xtask fetch-data tvb68`): the same cohort, models and criteria as the `models`
//! suite's Alzheimer's part. Skipped with a message when the connectome is absent.

use std::path::PathBuf;

use neurohybrid_alzheimer::{AlzheimerError, Brain};

use crate::Case;

fn connectome_path() -> PathBuf {
    match std::env::var_os("NEUROHYBRID_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
    .join("tvb/connectivity_68.zip")
}

/// Every case of the Alzheimer's part of the suite.
pub fn run(fast: bool) -> Vec<Case> {
    let path = connectome_path();
    match Brain::from_tvb(&path) {
        Ok(brain) => {
            super::super::models::alzheimer::protocol_cases("data", "alzheimer_dk68", &brain, fast)
        }
        Err(AlzheimerError::DataMissing { path }) => vec![
            Case::new("data", "alzheimer_dk68/skipped", fast)
                .with("message", format!("{path} not found: run `cargo xtask fetch-data tvb68`")),
        ],
        Err(e) => {
            vec![Case::new("data", "alzheimer_dk68/load", false).with("error", e.to_string())]
        }
    }
}
