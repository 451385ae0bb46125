//! Saving and loading trained models: architecture plus flat parameters, as JSON or as a
//! compact little-endian binary file.
//!
//! Binary layout (format version 1), all integers little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 4 | magic `NHNN` |
//! | 4 | `u32` format version |
//! | 8 | `u64` length `a` of the architecture JSON |
//! | a | architecture as UTF-8 JSON |
//! | 8 | `u64` parameter count `n` |
//! | 8n | parameters, `f64` |
//! | 8 | `u64` FNV-1a hash of every preceding byte |
//!
//! Both formats reload bit-identical parameters (JSON through serde_json's `float_roundtrip`
//! parser), so a reloaded model reproduces its outputs exactly. Every malformed file maps to a
//! named [`NnError`] variant; nothing here panics or allocates more than the file's size.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::layer::{Architecture, Layer};

/// Magic bytes opening a binary checkpoint.
pub const MAGIC: [u8; 4] = *b"NHNN";
/// The checkpoint format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "neurohybrid-nn";

/// A model's architecture and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The layer structure.
    pub architecture: Architecture,
    /// The flat parameters (`architecture.n_params()` of them).
    pub params: Vec<f64>,
}

/// File format of [`Checkpoint::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable JSON.
    Json,
    /// Compact binary (see the module documentation).
    Binary,
}

#[derive(Serialize, Deserialize)]
struct JsonFile {
    format: String,
    version: u32,
    architecture: Architecture,
    params: Vec<f64>,
}

impl Checkpoint {
    /// A checkpoint; the parameter count must match the architecture.
    pub fn new(architecture: impl Into<Architecture>, params: Vec<f64>) -> Result<Self> {
        let c = Checkpoint { architecture: architecture.into(), params };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<()> {
        self.architecture.validate()?;
        let expected = self.architecture.n_params();
        if self.params.len() != expected {
            return Err(NnError::ParamCountMismatch { expected, got: self.params.len() });
        }
        Ok(())
    }

    fn check_finite(&self) -> Result<()> {
        match self.params.iter().position(|p| !p.is_finite()) {
            Some(index) => Err(NnError::NonFinite { what: "checkpoint parameter", index }),
            None => Ok(()),
        }
    }

    /// Errors with [`NnError::ArchitectureMismatch`] unless the stored architecture is
    /// `expected`.
    pub fn expect_architecture(&self, expected: &Architecture) -> Result<()> {
        if &self.architecture == expected {
            return Ok(());
        }
        let show = |a: &Architecture| serde_json::to_string(a).unwrap_or_else(|e| e.to_string());
        Err(NnError::ArchitectureMismatch {
            expected: show(expected),
            found: show(&self.architecture),
        })
    }

    /// JSON text. Parameters must be finite (JSON has no NaN).
    pub fn to_json(&self) -> Result<String> {
        self.check()?;
        self.check_finite()?;
        let file = JsonFile {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            architecture: self.architecture.clone(),
            params: self.params.clone(),
        };
        serde_json::to_string_pretty(&file).map_err(|e| NnError::Json { message: e.to_string() })
    }

    /// Parses [`to_json`](Self::to_json)'s output.
    pub fn from_json(text: &str) -> Result<Self> {
        let file: JsonFile =
            serde_json::from_str(text).map_err(|e| NnError::Json { message: e.to_string() })?;
        if file.format != FORMAT_NAME {
            return Err(NnError::BadMagic { found: file.format.into_bytes() });
        }
        if file.version != FORMAT_VERSION {
            return Err(NnError::UnsupportedVersion {
                found: file.version,
                supported: FORMAT_VERSION,
            });
        }
        let c = Checkpoint { architecture: file.architecture, params: file.params };
        c.check()?;
        Ok(c)
    }

    /// The compact binary encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let arch = serde_json::to_vec(&self.architecture)
            .map_err(|e| NnError::Json { message: e.to_string() })?;
        let mut b = Vec::with_capacity(32 + arch.len() + 8 * self.params.len());
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(arch.len() as u64).to_le_bytes());
        b.extend_from_slice(&arch);
        b.extend_from_slice(&(self.params.len() as u64).to_le_bytes());
        for p in &self.params {
            b.extend_from_slice(&p.to_le_bytes());
        }
        let h = fnv1a(&b);
        b.extend_from_slice(&h.to_le_bytes());
        Ok(b)
    }

    /// Decodes [`to_bytes`](Self::to_bytes)'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take("magic", 4)?;
        if magic != MAGIC {
            return Err(NnError::BadMagic { found: magic.to_vec() });
        }
        let version = u32::from_le_bytes(r.take("version", 4)?.try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(NnError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
        }
        let arch_len = r.u64("architecture length")?;
        let arch = r.take("architecture", arch_len)?;
        let n = r.u64("parameter count")?;
        let data = r.take("parameters", n.saturating_mul(8))?;
        let body_end = r.pos;
        let found = r.u64("checksum")?;
        if r.pos != bytes.len() {
            return Err(NnError::TrailingBytes { extra: (bytes.len() - r.pos) as u64 });
        }
        let computed = fnv1a(&bytes[..body_end]);
        if found != computed {
            return Err(NnError::ChecksumMismatch { found, computed });
        }
        let architecture: Architecture =
            serde_json::from_slice(arch).map_err(|e| NnError::Json { message: e.to_string() })?;
        let params = data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let c = Checkpoint { architecture, params };
        c.check()?;
        Ok(c)
    }

    /// Writes the checkpoint to `path` atomically (a temporary file in the same folder, then a
    /// rename), so an interrupted save never leaves a truncated checkpoint behind.
    pub fn save(&self, path: impl AsRef<Path>, format: Format) -> Result<()> {
        let path = path.as_ref();
        let bytes = match format {
            Format::Json => self.to_json()?.into_bytes(),
            Format::Binary => self.to_bytes()?,
        };
        let io = |e: std::io::Error| NnError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a checkpoint written by [`save`](Self::save) in either format (told apart by the
    /// magic bytes).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| NnError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if bytes.starts_with(&MAGIC) {
            Self::from_bytes(&bytes)
        } else {
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| NnError::Json { message: format!("not UTF-8: {e}") })?;
            Self::from_json(text)
        }
    }
}

/// FNV-1a, 64 bit: a dependency-free checksum that catches flipped and swapped bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, section: &'static str, n: u64) -> Result<&'a [u8]> {
        let available = (self.bytes.len() - self.pos) as u64;
        if n > available {
            return Err(NnError::Truncated { section, needed: n, available });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u64(&mut self, section: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(section, 8)?.try_into().expect("8 bytes")))
    }
}
