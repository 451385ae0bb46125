//! MATLAB level-5 MAT-files (`.mat` written by MATLAB `save` up to `-v7`, and by
//! `scipy.io.savemat`): real numeric arrays, optionally zlib-compressed.
//!
//! Why our own reader: the format is documented (MathWorks, "MAT-File Format", 2019) and the
//! part connectome files use is small — a 128-byte header, then tagged data elements; an
//! `miMATRIX` element holds array flags, dimensions, a name and the real part; `-v7` wraps each
//! variable in an `miCOMPRESSED` element (a zlib stream of one complete element). The crates
//! on crates.io either read only a subset we need anyway or are unmaintained; ~250 lines here
//! with `flate2` keep every length checked against the bytes actually present.
//!
//! Cell arrays, structs, sparse, character, logical-as-object and complex arrays are skipped
//! (listed in [`MatFile::skipped`] with the reason) rather than failing the whole file, since
//! connectome files often carry labels or metadata next to the matrix. `-v7.3` files are HDF5
//! and rejected as [`IoError::Unsupported`].

use super::{
    Bytes, DenseMatrix, IoError, Result, display_name, drain_verify, read_all, read_limited,
};
use std::path::Path;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

/// Numeric array classes (`mxDOUBLE_CLASS` = 6 … `mxUINT64_CLASS` = 15).
const NUMERIC_CLASSES: std::ops::RangeInclusive<u8> = 6..=15;
const FLAG_COMPLEX: u32 = 0x0800;

/// One real numeric variable of a MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// The variable's name.
    pub name: String,
    /// Dimensions (at least two, as MATLAB stores them).
    pub dims: Vec<usize>,
    /// Values in MATLAB's column-major order, converted to `f64`.
    pub data: Vec<f64>,
    /// The MATLAB class (`"double"`, `"single"`, `"int32"`, …).
    pub class: &'static str,
}

impl MatArray {
    /// The array as a row-major [`DenseMatrix`] (2D arrays only); NaN/Inf are rejected.
    ///
    /// # Errors
    /// [`IoError::Unsupported`] for arrays with more than two non-singleton dimensions,
    /// [`IoError::NonFinite`] (`file` names the source in errors).
    pub fn to_matrix(&self, file: &str) -> Result<DenseMatrix> {
        if self.dims.len() > 2 && self.dims[2..].iter().any(|&d| d != 1) {
            return Err(IoError::Unsupported {
                file: file.to_string(),
                what: format!("variable {:?} has dims {:?}, not a matrix", self.name, self.dims),
            });
        }
        let (rows, cols) = (self.dims[0], self.dims[1]);
        let mut data = vec![0.0; rows * cols];
        for c in 0..cols {
            for r in 0..rows {
                let v = self.data[c * rows + r];
                if !v.is_finite() {
                    return Err(IoError::NonFinite { file: file.to_string(), row: r, col: c });
                }
                data[r * cols + c] = v;
            }
        }
        Ok(DenseMatrix { rows, cols, data, labels: Vec::new() })
    }
}

/// The readable content of a MAT-file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatFile {
    /// Real numeric arrays, in file order.
    pub arrays: Vec<MatArray>,
    /// Variables that were skipped: `(name, reason)`.
    pub skipped: Vec<(String, String)>,
    /// The file name used in errors.
    pub file: String,
}

impl MatFile {
    /// The numeric variable called `name`.
    pub fn get(&self, name: &str) -> Option<&MatArray> {
        self.arrays.iter().find(|a| a.name == name)
    }

    /// A connectome weight matrix: the variable `name`, or — when `name` is `None` — the only
    /// square 2D numeric variable of the file. Checked square, finite and non-negative.
    ///
    /// # Errors
    /// [`IoError::Missing`] (no such variable, or no unique square one),
    /// [`IoError::NotSquare`], [`IoError::NonFinite`], [`IoError::NegativeWeight`].
    pub fn weights(&self, name: Option<&str>) -> Result<DenseMatrix> {
        let array = match name {
            Some(n) => self.get(n).ok_or_else(|| IoError::Missing {
                file: self.file.clone(),
                what: format!("numeric variable {n:?}"),
            })?,
            None => {
                let square: Vec<_> = self
                    .arrays
                    .iter()
                    .filter(|a| a.dims.len() == 2 && a.dims[0] == a.dims[1] && a.dims[0] > 1)
                    .collect();
                match square.as_slice() {
                    [one] => *one,
                    _ => {
                        return Err(IoError::Missing {
                            file: self.file.clone(),
                            what: format!(
                                "a unique square matrix (found {}: {:?}); name the variable",
                                square.len(),
                                square.iter().map(|a| &a.name).collect::<Vec<_>>()
                            ),
                        });
                    }
                }
            }
        };
        let file = format!("{}:{}", self.file, array.name);
        let m = array.to_matrix(&file)?;
        m.check_weights(&file)?;
        Ok(m)
    }
}

/// Reads a MAT-file (level 5, compressed or not).
///
/// # Errors
/// [`IoError::Io`]; otherwise as [`read_mat_bytes`].
pub fn read_mat(path: impl AsRef<Path>) -> Result<MatFile> {
    let path = path.as_ref();
    read_mat_bytes(&read_all(path)?, &display_name(path))
}

/// Parses MAT-file bytes; `name` is used in error messages.
///
/// # Errors
/// [`IoError::BadMagic`] (not a level-5 MAT-file), [`IoError::Unsupported`] (v7.3/HDF5),
/// [`IoError::Truncated`], [`IoError::InvalidHeader`] (malformed element),
/// [`IoError::Decompress`], [`IoError::Empty`] (no numeric variable and nothing skipped).
pub fn read_mat_bytes(bytes: &[u8], name: &str) -> Result<MatFile> {
    if bytes.len() < 128 {
        return Err(IoError::Truncated {
            file: name.into(),
            what: "MAT-file header",
            expected: 128,
            got: bytes.len(),
        });
    }
    if bytes.get(512..520) == Some(b"\x89HDF\r\n\x1a\n") {
        return Err(IoError::Unsupported {
            file: name.into(),
            what: "MAT-file v7.3 (HDF5); save with -v7 or read it with an HDF5 library".into(),
        });
    }
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        other => {
            return Err(IoError::BadMagic {
                file: name.into(),
                format: "MAT-file level 5",
                reason: format!("endian indicator {other:?}, not \"IM\" or \"MI\""),
            });
        }
    };
    let mut out = MatFile { file: name.to_string(), ..MatFile::default() };
    let b = Bytes::new(bytes, big_endian);
    let mut pos = 128;
    while pos < bytes.len() {
        // Some writers pad the file end; a short tail of zeros is not an element.
        if bytes[pos..].iter().all(|&x| x == 0) && bytes.len() - pos < 8 {
            break;
        }
        let el = element(&b, pos, bytes.len(), name)?;
        pos = el.next;
        match el.dtype {
            MI_MATRIX => read_matrix(&b, el.start, el.len, name, &mut out)?,
            MI_COMPRESSED => {
                let stream = &bytes[el.start..el.start + el.len];
                let inner = inflate_element(stream, big_endian, name)?;
                let ib = Bytes::new(&inner, big_endian);
                let iel = element(&ib, 0, inner.len(), name)?;
                if iel.dtype == MI_MATRIX {
                    read_matrix(&ib, iel.start, iel.len, name, &mut out)?;
                } else {
                    out.skipped
                        .push((String::new(), format!("compressed element of type {}", iel.dtype)));
                }
            }
            other => {
                out.skipped.push((String::new(), format!("top-level element of type {other}")))
            }
        }
    }
    if out.arrays.is_empty() && out.skipped.is_empty() {
        return Err(IoError::Empty { file: name.into(), what: "MAT-file (no variables)" });
    }
    Ok(out)
}

/// A data element: its type, where its data start, their length, and where the next
/// element starts.
struct Element {
    dtype: u32,
    start: usize,
    len: usize,
    next: usize,
}

fn bad_element(file: &str, reason: String) -> IoError {
    IoError::InvalidHeader { file: file.into(), field: "data element", reason }
}

/// Reads the tag at `pos` (elements must end by `end`). Small elements (type and size packed
/// in the first word, up to 4 data bytes) and the 8-byte alignment of ordinary elements follow
/// the MAT-File Format, p. 1-10 — except `miCOMPRESSED`, which is not padded.
fn element(b: &Bytes<'_>, pos: usize, end: usize, file: &str) -> Result<Element> {
    let truncated = |expected: usize| IoError::Truncated {
        file: file.into(),
        what: "MAT data element",
        expected,
        got: end.saturating_sub(pos),
    };
    let word = b.u32(pos).filter(|_| pos + 8 <= end).ok_or_else(|| truncated(8))?;
    if word >> 16 != 0 {
        let len = (word >> 16) as usize;
        if len > 4 {
            return Err(bad_element(file, format!("small element of {len} bytes at offset {pos}")));
        }
        return Ok(Element { dtype: word & 0xffff, start: pos + 4, len, next: pos + 8 });
    }
    let len = b.u32(pos + 4).ok_or_else(|| truncated(8))? as usize;
    let start = pos + 8;
    let data_end =
        start.checked_add(len).filter(|&e| e <= end).ok_or_else(|| truncated(8 + len))?;
    let next = if word == MI_COMPRESSED { data_end } else { data_end.div_ceil(8) * 8 };
    // The last element of a file may lack its padding.
    Ok(Element { dtype: word, start, len, next: next.min(end) })
}

/// Inflates an `miCOMPRESSED` payload: just enough for the one element it holds.
fn inflate_element(stream: &[u8], big_endian: bool, file: &str) -> Result<Vec<u8>> {
    let mut dec = flate2::read::ZlibDecoder::new(stream);
    let mut head = read_limited(&mut dec, 8, file, "zlib")?;
    let tag = Bytes::new(&head, big_endian);
    let len = match (tag.u32(0), tag.u32(4)) {
        (Some(w), _) if w >> 16 != 0 => 0,
        (Some(_), Some(len)) => len as u64,
        _ => {
            return Err(IoError::Truncated {
                file: file.into(),
                what: "compressed MAT element",
                expected: 8,
                got: head.len(),
            });
        }
    };
    head.extend(read_limited(&mut dec, len, file, "zlib")?);
    // The compressed payload is in memory and bounded; reading to its end checks Adler-32.
    drain_verify(&mut dec, u64::MAX, file, "zlib")?;
    Ok(head)
}

fn class_name(class: u8) -> &'static str {
    match class {
        6 => "double",
        7 => "single",
        8 => "int8",
        9 => "uint8",
        10 => "int16",
        11 => "uint16",
        12 => "int32",
        13 => "uint32",
        14 => "int64",
        15 => "uint64",
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        _ => "unknown",
    }
}

/// Parses the subelements of one `miMATRIX` element (`start..start + len` in `b`).
fn read_matrix(
    b: &Bytes<'_>,
    start: usize,
    len: usize,
    file: &str,
    out: &mut MatFile,
) -> Result<()> {
    let end = start + len;
    if len == 0 {
        // An empty miMATRIX is how MATLAB writes an empty cell entry; nothing to read.
        return Ok(());
    }
    let flags = element(b, start, end, file)?;
    if flags.dtype != MI_UINT32 || flags.len < 8 {
        return Err(bad_element(
            file,
            format!("array flags of type {} / {} bytes", flags.dtype, flags.len),
        ));
    }
    let flag_word = b.u32(flags.start).expect("length checked");
    let class = (flag_word & 0xff) as u8;

    let dims_el = element(b, flags.next, end, file)?;
    if dims_el.dtype != MI_INT32 || dims_el.len < 8 || dims_el.len % 4 != 0 {
        return Err(bad_element(
            file,
            format!("dimensions of type {} / {} bytes", dims_el.dtype, dims_el.len),
        ));
    }
    let mut dims = Vec::with_capacity(dims_el.len / 4);
    for k in 0..dims_el.len / 4 {
        let d = b.i32(dims_el.start + 4 * k).expect("length checked");
        let d =
            usize::try_from(d).map_err(|_| bad_element(file, format!("negative dimension {d}")))?;
        dims.push(d);
    }

    let name_el = element(b, dims_el.next, end, file)?;
    if name_el.dtype != MI_INT8 && name_el.dtype != MI_UINT8 && name_el.dtype != MI_UTF8 {
        return Err(bad_element(file, format!("array name of type {}", name_el.dtype)));
    }
    let raw = b.slice(name_el.start, name_el.len).expect("length checked");
    let name = String::from_utf8_lossy(raw).trim_end_matches('\0').to_string();

    if !NUMERIC_CLASSES.contains(&class) {
        out.skipped.push((name, format!("{} array", class_name(class))));
        return Ok(());
    }
    if flag_word & FLAG_COMPLEX != 0 {
        out.skipped.push((name, "complex array".into()));
        return Ok(());
    }
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad_element(file, format!("dimensions {dims:?} overflow")))?;
    let real = element(b, name_el.next, end, file)?;
    let size = match real.dtype {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        other => {
            return Err(IoError::Unsupported {
                file: file.into(),
                what: format!("numeric data of MAT type {other} in {name:?}"),
            });
        }
    };
    // Compare with the bytes present before allocating: dims come from the file.
    if real.len != count.saturating_mul(size) {
        return Err(IoError::DimensionMismatch {
            file: file.into(),
            what: format!("bytes of {name:?} for dims {dims:?}"),
            expected: count.saturating_mul(size),
            got: real.len,
        });
    }
    let mut data = Vec::with_capacity(count);
    for k in 0..count {
        let at = real.start + k * size;
        let v = match real.dtype {
            MI_INT8 => b.data[at] as i8 as f64,
            MI_UINT8 => b.data[at] as f64,
            MI_INT16 => b.i16(at).expect("length checked") as f64,
            MI_UINT16 => b.u16(at).expect("length checked") as f64,
            MI_INT32 => b.i32(at).expect("length checked") as f64,
            MI_UINT32 => b.u32(at).expect("length checked") as f64,
            MI_SINGLE => b.f32(at).expect("length checked") as f64,
            MI_DOUBLE => b.f64(at).expect("length checked"),
            MI_INT64 => b.u64(at).expect("length checked") as i64 as f64,
            _ => b.u64(at).expect("length checked") as f64,
        };
        data.push(v);
    }
    if dims.len() < 2 {
        dims.resize(2, 1);
    }
    out.arrays.push(MatArray { name, dims, data, class: class_name(class) });
    Ok(())
}
