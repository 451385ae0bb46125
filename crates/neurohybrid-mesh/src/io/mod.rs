//! Reading and writing the files brain models start from: NIfTI-1 volumes (tissue maps,
//! segmentations) and connectomes (TVB folders and zips, CSV/TSV matrices, MATLAB v5 `.mat`).
//!
//! Every loader treats its input as untrusted: sizes are checked before anything is allocated
//! from them, arithmetic on header fields is checked, and each way a file can be wrong has a
//! named [`IoError`] variant that says which file, and where. No input makes a loader panic
//! (the `io_corrupt` tests feed random truncations and byte flips of valid files to every
//! reader).
//!
//! | format | read | write | module |
//! |---|---|---|---|
//! | NIfTI-1 `.nii`, `.nii.gz` (u8, i8, i16, u16, i32, u32, f32, f64; 3D or 4D with one volume) | [`read_nifti`] | [`write_nifti`] | [`nifti`] |
//! | three tissue probability maps → [`TissueMaps`](crate::TissueMaps) on a [`Grid`](crate::Grid) box | [`read_tissue_maps`] | [`NiftiImage::from_grid_field`] | [`nifti`] |
//! | dense text matrices (CSV, TSV, whitespace) | [`read_matrix_text`] | [`write_matrix_text`] | [`text`] |
//! | MATLAB v5 `.mat` (numeric arrays, optionally zlib-compressed) | [`read_mat`] | — | [`mat`] |
//! | TVB connectivity folder or `.zip` (`weights.txt`, `tract_lengths.txt`, `centres.txt`, optionally `.bz2`) | [`read_tvb`] | — | [`tvb`] |
//!
//! ```
//! use neurohybrid_mesh::io::{NiftiDataType, NiftiImage, read_nifti, write_nifti};
//!
//! let dir = std::env::temp_dir().join(format!("nh-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("gm.nii.gz"); // .gz: gzip-compressed
//! let mut img = NiftiImage::new([4, 3, 2], [2.0, 2.0, 2.0], vec![0.25; 24])?;
//! img.datatype = NiftiDataType::U8; // stored as uint8 with scl_slope
//! write_nifti(&path, &img)?;
//! let back = read_nifti(&path)?;
//! assert_eq!((back.dim, back.spacing, back.affine), (img.dim, img.spacing, img.affine));
//! assert!(back.data.iter().all(|&v| (v - 0.25).abs() < 1e-6));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), neurohybrid_mesh::io::IoError>(())
//! ```

pub mod mat;
pub mod nifti;
pub mod text;
pub mod tvb;

pub use mat::{MatArray, MatFile, read_mat, read_mat_bytes};
pub use nifti::{
    NiftiDataType, NiftiImage, TISSUE_SUM_TOLERANCE, TissueImages, read_nifti, read_nifti_bytes,
    read_tissue_maps, write_nifti, write_nifti_bytes,
};
pub use text::{Delimiter, DenseMatrix, read_matrix_text, write_matrix_text};
pub use tvb::read_tvb;

use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or writing a file.
///
/// `file` / `path` fields name the file (for a member of a zip archive: `archive.zip:member`);
/// `row` / `col` are zero-based.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system could not read or write a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file ended before a structure it announces was complete.
    #[error("{file}: truncated {what}: expected {expected} bytes, got {got}")]
    Truncated {
        /// The file.
        file: String,
        /// What was being read (e.g. `"NIfTI header"`, `"voxel data"`).
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes available.
        got: usize,
    },
    /// The file does not start with the signature of its format.
    #[error("{file}: not a {format} file ({reason})")]
    BadMagic {
        /// The file.
        file: String,
        /// The expected format (e.g. `"NIfTI-1"`).
        format: &'static str,
        /// What was found instead.
        reason: String,
    },
    /// A header field holds a value the format does not allow.
    #[error("{file}: invalid {field}: {reason}")]
    InvalidHeader {
        /// The file.
        file: String,
        /// The field (e.g. `"dim[2]"`, `"vox_offset"`).
        field: &'static str,
        /// Why it was rejected, with the value found.
        reason: String,
    },
    /// A valid file uses a feature this reader does not implement.
    #[error("{file}: unsupported {what}")]
    Unsupported {
        /// The file.
        file: String,
        /// The feature (e.g. `"NIfTI datatype 32 (complex64)"`).
        what: String,
    },
    /// A compressed stream (gzip, zlib, bzip2, zip) could not be decoded.
    #[error("{file}: corrupt {codec} stream: {reason}")]
    Decompress {
        /// The file.
        file: String,
        /// The codec (`"gzip"`, `"zlib"`, `"bzip2"`, `"zip"`).
        codec: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A text field is not a number.
    #[error("{file}: row {row}, column {col}: cannot parse {text:?} as a number")]
    Parse {
        /// The file.
        file: String,
        /// Zero-based row (data rows, after skipped comments and header).
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The offending text (shortened to 40 characters).
        text: String,
    },
    /// A value that must be finite is NaN or infinite.
    #[error("{file}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// The file.
        file: String,
        /// Zero-based row (for volumes: the linear voxel index, with `col` 0).
        row: usize,
        /// Zero-based column.
        col: usize,
    },
    /// A connectome weight is negative.
    #[error("{file}: negative weight {value} at row {row}, column {col}")]
    NegativeWeight {
        /// The file.
        file: String,
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The weight found.
        value: f64,
    },
    /// A matrix that must be square is not.
    #[error("{file}: matrix is not square ({rows} × {cols})")]
    NotSquare {
        /// The file.
        file: String,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// Rows of a text matrix have different lengths, or two files of one connectome disagree.
    #[error("{file}: {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// The file.
        file: String,
        /// What was compared (e.g. `"columns in row 3"`, `"regions in centres.txt"`).
        what: String,
        /// The count expected.
        expected: usize,
        /// The count found.
        got: usize,
    },
    /// A file holds no data (no rows, no variables, zero voxels).
    #[error("{file}: empty {what}")]
    Empty {
        /// The file.
        file: String,
        /// What is empty.
        what: &'static str,
    },
    /// A file or archive member the format needs is absent.
    #[error("{file}: missing {what}")]
    Missing {
        /// The folder, archive or file searched.
        file: String,
        /// What was looked for (e.g. `"weights.txt"`, `"variable \"W\""`).
        what: String,
    },
    /// The matrices of a connectome are valid alone but do not form a valid graph.
    #[error("{file}: {source}")]
    Graph {
        /// The file the weights came from.
        file: String,
        /// Why the graph was rejected.
        #[source]
        source: crate::graph::GraphError,
    },
    /// A value cannot be represented in the requested on-disk type.
    #[error("{file}: cannot write {what}")]
    Unrepresentable {
        /// The file.
        file: String,
        /// What does not fit (with the value).
        what: String,
    },
}

/// `Result` with [`IoError`].
pub type Result<T> = std::result::Result<T, IoError>;

/// A display name for a path, used in error messages.
pub(crate) fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Reads a whole file, mapping the OS error to [`IoError::Io`].
pub(crate) fn read_all(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| IoError::Io { path: path.to_path_buf(), source })
}

/// Writes a whole file atomically: to a temporary sibling first, then renamed over the target,
/// so an interrupted write never leaves a half-written file under the final name (DESIGN.md §4).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |source| IoError::Io { path: path.to_path_buf(), source };
    let file_name = path.file_name().ok_or_else(|| {
        io_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))
    })?;
    // Process id + a counter: unique among concurrent writers of this process and others.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{}-{k}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(e)
    })
}

/// A bounds-checked little/big-endian cursor over a byte slice.
///
/// Every read returns `Option`, so parsers turn "ran off the end" into a
/// [`IoError::Truncated`] instead of an index panic.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) big_endian: bool,
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8], big_endian: bool) -> Self {
        Self { data, big_endian }
    }

    pub(crate) fn slice(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        self.data.get(at..at.checked_add(len)?)
    }

    pub(crate) fn array<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.slice(at, N)?.try_into().ok()
    }

    pub(crate) fn u16(&self, at: usize) -> Option<u16> {
        let b = self.array::<2>(at)?;
        Some(if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    pub(crate) fn i16(&self, at: usize) -> Option<i16> {
        self.u16(at).map(|v| v as i16)
    }

    pub(crate) fn u32(&self, at: usize) -> Option<u32> {
        let b = self.array::<4>(at)?;
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    pub(crate) fn i32(&self, at: usize) -> Option<i32> {
        self.u32(at).map(|v| v as i32)
    }

    pub(crate) fn u64(&self, at: usize) -> Option<u64> {
        let b = self.array::<8>(at)?;
        Some(if self.big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
    }

    pub(crate) fn f32(&self, at: usize) -> Option<f32> {
        self.u32(at).map(f32::from_bits)
    }

    pub(crate) fn f64(&self, at: usize) -> Option<f64> {
        self.u64(at).map(f64::from_bits)
    }
}

/// Reads at most `limit` bytes from a decoder, growing the buffer only as data arrives.
///
/// Why: a header can claim gigabytes; pre-allocating from it would let a 300-byte file exhaust
/// memory. Reading through `take` also stops a decompression bomb at the size the header
/// promised.
pub(crate) fn read_limited(
    reader: impl std::io::Read,
    limit: u64,
    file: &str,
    codec: &'static str,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    reader.take(limit).read_to_end(&mut out).map_err(|e| IoError::Decompress {
        file: file.to_string(),
        codec,
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// Reads what is left of a compressed stream, discarding it (at most `limit` bytes), so the
/// decoder reaches the end and verifies the stream's checksum (gzip CRC-32, zlib Adler-32).
///
/// Why: readers stop decoding at the size the header announced; without this, a file whose
/// trailer is cut off or whose data were altered in a way deflate still accepts would be read
/// without the checksum ever being compared.
pub(crate) fn drain_verify(
    reader: impl std::io::Read,
    limit: u64,
    file: &str,
    codec: &'static str,
) -> Result<()> {
    std::io::copy(&mut reader.take(limit), &mut std::io::sink()).map_err(|e| {
        IoError::Decompress { file: file.to_string(), codec, reason: e.to_string() }
    })?;
    Ok(())
}

/// Validates connectome weights: finite and non-negative (row-major `rows × cols`).
pub(crate) fn check_weights(file: &str, rows: usize, cols: usize, data: &[f64]) -> Result<()> {
    if rows != cols {
        return Err(IoError::NotSquare { file: file.to_string(), rows, cols });
    }
    for (k, &v) in data.iter().enumerate() {
        let (row, col) = (k / cols.max(1), k % cols.max(1));
        if !v.is_finite() {
            return Err(IoError::NonFinite { file: file.to_string(), row, col });
        }
        if v < 0.0 {
            return Err(IoError::NegativeWeight { file: file.to_string(), row, col, value: v });
        }
    }
    Ok(())
}

/// Shortens untrusted text for an error message (at most 40 characters).
pub(crate) fn snippet(s: &str) -> String {
    s.chars().take(40).collect()
}
