//! The Virtual Brain (TVB) connectivity format: a folder or a `.zip` holding whitespace-separated
//! `weights.txt` (n × n), `tract_lengths.txt` (n × n, mm) and `centres.txt` (one line per region:
//! `label x y z`, mm). Members may be bzip2-compressed (`weights.txt.bz2`), as in
//! `tvb_data/connectivity/connectivity_68.zip`, and may sit in a subfolder of the archive.
//!
//! `weights.txt` is required; the other two are read when present. The zip archive is read
//! with the `zip` crate (deflate only) and bzip2 with the pure-Rust `libbz2-rs-sys` backend of
//! the `bzip2` crate, so no C library is needed. Every decompressed member is capped at
//! [`MAX_MEMBER_BYTES`]: a 68-region `weights.txt` is ~5 kB, so the cap only stops bombs.

use super::text::parse_matrix_text;
use super::{
    Delimiter, DenseMatrix, IoError, Result, display_name, read_all, read_limited, snippet,
};
use crate::graph::{Connectome, Graph};
use std::io::Read;
use std::path::Path;

/// Largest decompressed size accepted for one member (64 MiB: a dense 2000-region matrix in
/// text is ~60 MB).
pub const MAX_MEMBER_BYTES: u64 = 64 << 20;

/// Reads a TVB connectivity folder or `.zip` archive into a [`Connectome`].
///
/// Weights are checked square, finite and non-negative, and must be symmetric (TVB's
/// connectomes are); tract lengths must match the weights' size and be finite and
/// non-negative; centres must have one line `label x y z` per region. Region labels come from
/// `centres.txt` (or are `region_i` without it).
///
/// # Errors
/// [`IoError::Io`], [`IoError::Missing`] (no `weights.txt`), [`IoError::Decompress`] (bad zip
/// or bzip2), [`IoError::Parse`], [`IoError::NotSquare`], [`IoError::NonFinite`],
/// [`IoError::NegativeWeight`], [`IoError::DimensionMismatch`] (files disagree on the number
/// of regions), [`IoError::Graph`] (asymmetric weights).
pub fn read_tvb(path: impl AsRef<Path>) -> Result<Connectome> {
    let path = path.as_ref();
    let name = display_name(path);
    let members = if path.is_dir() { Source::Dir } else { Source::Zip(read_all(path)?) };
    let find = |base: &str| members.read(path, &name, base);

    let (weights_file, weights_text) = find("weights.txt")?
        .ok_or_else(|| IoError::Missing { file: name.clone(), what: "weights.txt".into() })?;
    let weights = parse_matrix_text(&weights_text, Delimiter::Whitespace, &weights_file)?;
    weights.check_weights(&weights_file)?;
    let n = weights.rows;
    let graph = Graph::from_dense(n, &weights.data)
        .map_err(|source| IoError::Graph { file: weights_file.clone(), source })?;

    let mut labels = None;
    let mut centres = None;
    if let Some((file, text)) = find("centres.txt")? {
        let (l, c) = parse_centres(&text, &file)?;
        if l.len() != n {
            return Err(IoError::DimensionMismatch {
                file,
                what: "regions (weights.txt has one per row)".into(),
                expected: n,
                got: l.len(),
            });
        }
        labels = Some(l);
        centres = Some(c);
    }
    let mut connectome = match labels {
        Some(l) => Connectome::new(graph, l),
        None => Ok(Connectome::unlabelled(graph)),
    }
    .map_err(|source| IoError::Graph { file: name.clone(), source })?;
    if let Some(c) = centres {
        connectome = connectome
            .with_centres(c)
            .map_err(|source| IoError::Graph { file: name.clone(), source })?;
    }

    if let Some((file, text)) = find("tract_lengths.txt")? {
        let t = parse_matrix_text(&text, Delimiter::Whitespace, &file)?;
        check_same_shape(&t, n, &file)?;
        connectome = connectome
            .with_tract_lengths(t.data)
            .map_err(|source| IoError::Graph { file: file.clone(), source })?;
    }
    Ok(connectome)
}

fn check_same_shape(m: &DenseMatrix, n: usize, file: &str) -> Result<()> {
    if m.rows != m.cols {
        return Err(IoError::NotSquare { file: file.into(), rows: m.rows, cols: m.cols });
    }
    if m.rows != n {
        return Err(IoError::DimensionMismatch {
            file: file.into(),
            what: "regions (weights.txt has one per row)".into(),
            expected: n,
            got: m.rows,
        });
    }
    Ok(())
}

/// `label x y z` per line → labels and centres.
fn parse_centres(text: &str, file: &str) -> Result<(Vec<String>, Vec<[f64; 3]>)> {
    let mut labels = Vec::new();
    let mut centres = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
        let row = labels.len();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 4 {
            return Err(IoError::DimensionMismatch {
                file: file.into(),
                what: format!("fields in line {row} (label x y z)"),
                expected: 4,
                got: fields.len(),
            });
        }
        let mut xyz = [0.0; 3];
        for (k, v) in xyz.iter_mut().enumerate() {
            let f = fields[k + 1];
            *v = f.parse::<f64>().map_err(|_| IoError::Parse {
                file: file.into(),
                row,
                col: k + 1,
                text: snippet(f),
            })?;
            if !v.is_finite() {
                return Err(IoError::NonFinite { file: file.into(), row, col: k + 1 });
            }
        }
        labels.push(fields[0].to_string());
        centres.push(xyz);
    }
    if labels.is_empty() {
        return Err(IoError::Empty { file: file.into(), what: "centres" });
    }
    Ok((labels, centres))
}

/// Where members come from.
enum Source {
    Dir,
    Zip(Vec<u8>),
}

impl Source {
    /// The member `base` (or `base.bz2`) as text, with the name to use in errors; `None` if
    /// absent. In a zip, members are matched by file name in any subfolder.
    fn read(&self, path: &Path, name: &str, base: &str) -> Result<Option<(String, String)>> {
        let bz2 = format!("{base}.bz2");
        let raw = match self {
            Source::Dir => {
                let mut found = None;
                for candidate in [base, bz2.as_str()] {
                    let p = path.join(candidate);
                    if p.is_file() {
                        found = Some((display_name(&p), read_all(&p)?, candidate == bz2));
                        break;
                    }
                }
                found
            }
            Source::Zip(bytes) => read_zip_member(bytes, name, base, &bz2)?,
        };
        let Some((file, bytes, is_bz2)) = raw else { return Ok(None) };
        let bytes = if is_bz2 {
            read_limited(
                bzip2::read::BzDecoder::new(bytes.as_slice()),
                MAX_MEMBER_BYTES,
                &file,
                "bzip2",
            )?
        } else {
            bytes
        };
        Ok(Some((file, String::from_utf8_lossy(&bytes).into_owned())))
    }
}

/// Finds `base` or `bz2` (file name in any folder) in a zip archive and returns its
/// decompressed bytes, capped at [`MAX_MEMBER_BYTES`].
fn read_zip_member(
    bytes: &[u8],
    name: &str,
    base: &str,
    bz2: &str,
) -> Result<Option<(String, Vec<u8>, bool)>> {
    let zip_err = |e: zip::result::ZipError| IoError::Decompress {
        file: name.into(),
        codec: "zip",
        reason: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let mut hit = None;
    for i in 0..archive.len() {
        let Some(entry_name) = archive.name_for_index(i) else { continue };
        let entry_name = entry_name.map_err(zip_err)?.into_owned();
        let file_name = entry_name.rsplit('/').next().unwrap_or("");
        if file_name == base || file_name == bz2 {
            // Prefer the plain member if an archive has both.
            if hit.as_ref().is_none_or(|(_, _, b)| *b) {
                hit = Some((i, entry_name.clone(), file_name == bz2));
            }
        }
    }
    let Some((index, entry_name, is_bz2)) = hit else { return Ok(None) };
    let file = format!("{name}:{entry_name}");
    let entry = archive.by_index(index).map_err(zip_err)?;
    let mut data = Vec::new();
    entry.take(MAX_MEMBER_BYTES).read_to_end(&mut data).map_err(|e| IoError::Decompress {
        file: file.clone(),
        codec: "zip",
        reason: e.to_string(),
    })?;
    Ok(Some((file, data, is_bz2)))
}
