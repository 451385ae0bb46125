//! Training checkpoints: one header line, then the state as JSON.
//!
//! ```text
//! NHTRAIN 1 <body length in bytes> <FNV-1a 64 of the body, 16 hex digits>\n
//! <body: the training state as JSON>
//! ```
//!
//! Floats are written by serde_json's shortest round-trip formatting and read back with its
//! `float_roundtrip` parser, so every `f64` (parameters, optimizer moments) reloads bit for bit.
//! The length and the hash catch truncation and corruption; a file is replaced only by
//! writing a temporary file next to it, syncing it, and renaming it over the old one (atomic on
//! POSIX file systems), so an interrupted write leaves the previous checkpoint intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainState;
use crate::error::{HybridError, Result};

/// First word of a training checkpoint.
pub const CHECKPOINT_MAGIC: &str = "NHTRAIN";
const VERSION: u32 = 1;

fn err(path: &Path, message: impl Into<String>) -> HybridError {
    HybridError::Checkpoint { path: path.display().to_string(), message: message.into() }
}

/// FNV-1a, 64 bit (Fowler, Noll, Vo): a checksum against accidental damage, not an
/// authenticator.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn write_state(path: &Path, state: &TrainState) -> Result<()> {
    let body = serde_json::to_vec(state).map_err(|e| err(path, format!("serialize: {e}")))?;
    let header = format!("{CHECKPOINT_MAGIC} {VERSION} {} {:016x}\n", body.len(), fnv1a(&body));
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(header.as_bytes())?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| err(path, format!("write via {}: {e}", tmp.display())))
}

pub(crate) fn read_state(path: &Path) -> Result<TrainState> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("read: {e}")))?;
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| err(path, "no header line"))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| err(path, "header is not UTF-8"))?;
    let fields: Vec<&str> = header.split(' ').collect();
    if fields.len() != 4 || fields[0] != CHECKPOINT_MAGIC {
        return Err(err(path, "not a neurohybrid training checkpoint"));
    }
    let version: u32 = fields[1].parse().map_err(|_| err(path, "bad version field"))?;
    if version != VERSION {
        return Err(err(path, format!("format version {version}, this build reads {VERSION}")));
    }
    let len: usize = fields[2].parse().map_err(|_| err(path, "bad length field"))?;
    let hash = u64::from_str_radix(fields[3], 16).map_err(|_| err(path, "bad hash field"))?;
    let body = &bytes[nl + 1..];
    if body.len() != len {
        return Err(err(
            path,
            format!("truncated or extended: body holds {} bytes, header says {len}", body.len()),
        ));
    }
    if fnv1a(body) != hash {
        return Err(err(path, "checksum mismatch: the file is corrupted"));
    }
    serde_json::from_slice(body).map_err(|e| err(path, format!("parse: {e}")))
}

/// Summary of a training checkpoint (for a CLI's `--resume` message, or to pick up the
/// parameters of an interrupted run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Iterations done.
    pub iteration: usize,
    /// Epochs completed.
    pub epoch: usize,
    /// The parameters at that iteration.
    pub params: Vec<f64>,
}

/// Read and verify a training checkpoint.
pub fn read_checkpoint(path: &Path) -> Result<CheckpointInfo> {
    let st = read_state(path)?;
    Ok(CheckpointInfo { iteration: st.iteration, epoch: st.epoch, params: st.params })
}
