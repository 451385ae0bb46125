//! NIfTI-1 single-file volumes (`.nii`, and `.nii.gz` detected by the gzip signature).
//!
//! Why our own reader instead of the `nifti` crate (0.18): the format needs ~350 lines (a fixed
//! 348-byte header, a handful of data types), while the crate brings ndarray, nalgebra and a
//! derive-builder stack into the lowest mesh layer, and its reader allocates from header
//! fields before checking them against the file, so a corrupted header can abort on a huge
//! allocation. Here every header field is validated and checked arithmetic bounds what is
//! allocated by what the file actually holds; gzip decoding (`flate2`, pure Rust) stops at the
//! size the header announces, so a decompression bomb cannot grow past it.
//!
//! Layout reference: the NIfTI-1 header `nifti1.h` (NIfTI DFWG, 2004): `sizeof_hdr` 348 at
//! byte 0, `dim` at 40, `datatype` at 70, `pixdim` at 76, `vox_offset` at 108, `scl_slope` /
//! `scl_inter` at 112/116, `xyzt_units` at 123, `descrip` at 148, `qform_code` / `sform_code` at
//! 252/254, the quaternion at 256–279, `srow_{x,y,z}` at 280–327, `magic` at 344.

use super::{
    Bytes, IoError, Result, display_name, drain_verify, read_all, read_limited, write_atomic,
};
use std::io::Write;
use std::path::Path;

mod anatomy;
mod qform;

pub use anatomy::{TISSUE_SUM_TOLERANCE, TissueImages, read_tissue_maps};

use qform::{quaternion_to_rotation, rotation_to_quaternion};

const HEADER_LEN: usize = 348;
/// Header + the 4-byte extension flag: where voxel data start in files we write.
const WRITE_VOX_OFFSET: usize = 352;

/// An on-disk NIfTI voxel type (the header's `datatype` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NiftiDataType {
    /// `DT_UINT8` (2).
    U8,
    /// `DT_INT8` (256).
    I8,
    /// `DT_INT16` (4).
    I16,
    /// `DT_UINT16` (512).
    U16,
    /// `DT_INT32` (8).
    I32,
    /// `DT_UINT32` (768).
    U32,
    /// `DT_FLOAT32` (16).
    F32,
    /// `DT_FLOAT64` (64).
    F64,
}

impl NiftiDataType {
    /// The header's `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            Self::U8 => 2,
            Self::I8 => 256,
            Self::I16 => 4,
            Self::U16 => 512,
            Self::I32 => 8,
            Self::U32 => 768,
            Self::F32 => 16,
            Self::F64 => 64,
        }
    }

    /// The type for a header code, if supported.
    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => Self::U8,
            256 => Self::I8,
            4 => Self::I16,
            512 => Self::U16,
            8 => Self::I32,
            768 => Self::U32,
            16 => Self::F32,
            64 => Self::F64,
            _ => return None,
        })
    }

    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// `(min, max)` representable stored values for integer types; `None` for floats.
    fn int_range(self) -> Option<(f64, f64)> {
        Some(match self {
            Self::U8 => (0.0, u8::MAX as f64),
            Self::I8 => (i8::MIN as f64, i8::MAX as f64),
            Self::I16 => (i16::MIN as f64, i16::MAX as f64),
            Self::U16 => (0.0, u16::MAX as f64),
            Self::I32 => (i32::MIN as f64, i32::MAX as f64),
            Self::U32 => (0.0, u32::MAX as f64),
            Self::F32 | Self::F64 => return None,
        })
    }

    fn decode(self, b: &Bytes<'_>, at: usize) -> Option<f64> {
        Some(match self {
            Self::U8 => *b.data.get(at)? as f64,
            Self::I8 => *b.data.get(at)? as i8 as f64,
            Self::I16 => b.i16(at)? as f64,
            Self::U16 => b.u16(at)? as f64,
            Self::I32 => b.i32(at)? as f64,
            Self::U32 => b.u32(at)? as f64,
            Self::F32 => b.f32(at)? as f64,
            Self::F64 => b.f64(at)?,
        })
    }

    /// Appends `stored` (already scaled, rounded and range-checked) in little-endian order.
    fn encode(self, stored: f64, out: &mut Vec<u8>) {
        match self {
            Self::U8 => out.push(stored as u8),
            Self::I8 => out.push(stored as i8 as u8),
            Self::I16 => out.extend_from_slice(&(stored as i16).to_le_bytes()),
            Self::U16 => out.extend_from_slice(&(stored as u16).to_le_bytes()),
            Self::I32 => out.extend_from_slice(&(stored as i32).to_le_bytes()),
            Self::U32 => out.extend_from_slice(&(stored as u32).to_le_bytes()),
            Self::F32 => out.extend_from_slice(&(stored as f32).to_le_bytes()),
            Self::F64 => out.extend_from_slice(&stored.to_le_bytes()),
        }
    }
}

/// A 3D volume with its voxel-to-world map.
///
/// `data` is in NIfTI order (x fastest, then y, then z): voxel `(i, j, k)` is
/// `data[i + dim[0] * (j + dim[1] * k)]`. Values are the *scaled* values
/// (`scl_slope · stored + scl_inter`), so an integer-coded probability map reads as 0–1.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiImage {
    /// Voxels along x, y, z.
    pub dim: [usize; 3],
    /// Voxel size along x, y, z (mm; files in m or µm are converted on reading).
    pub spacing: [f64; 3],
    /// Voxel index `(i, j, k, 1)` → world coordinates (mm), row-major; the last row is
    /// `[0, 0, 0, 1]`. From the sform when `sform_code > 0`, else from the qform when
    /// `qform_code > 0`, else `diag(spacing)` (NIfTI "method 1").
    pub affine: [[f64; 4]; 4],
    /// Voxel values, scaled, x fastest.
    pub data: Vec<f64>,
    /// The on-disk voxel type read, and the type [`write_nifti`] writes.
    pub datatype: NiftiDataType,
    /// The sform code (0: no sform; 1 scanner, 2 aligned, 3 Talairach, 4 MNI152).
    pub sform_code: i16,
    /// The qform code (same meanings as `sform_code`).
    pub qform_code: i16,
    /// The header's free-text description (at most 79 bytes are written).
    pub description: String,
}

impl NiftiImage {
    /// A float32 volume with an axis-aligned affine `diag(spacing)` (origin at voxel 0) and
    /// `sform_code = qform_code = 2` (aligned).
    ///
    /// # Errors
    /// [`IoError::DimensionMismatch`] if `data.len()` is not the product of `dim`, and
    /// [`IoError::InvalidHeader`] for a zero dimension or a spacing that is not positive.
    pub fn new(dim: [usize; 3], spacing: [f64; 3], data: Vec<f64>) -> Result<Self> {
        let file = "<in memory>".to_string();
        if let Some(axis) = dim.iter().position(|&d| d == 0) {
            return Err(IoError::InvalidHeader {
                file,
                field: "dim",
                reason: format!("axis {axis} has zero voxels"),
            });
        }
        if let Some(axis) = spacing.iter().position(|&s| !(s.is_finite() && s > 0.0)) {
            return Err(IoError::InvalidHeader {
                file,
                field: "pixdim",
                reason: format!("spacing {} on axis {axis} is not positive", spacing[axis]),
            });
        }
        let n = dim.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(IoError::DimensionMismatch {
                file,
                what: format!("voxels for dim {dim:?}"),
                expected: n.unwrap_or(usize::MAX),
                got: data.len(),
            });
        }
        let mut affine = [[0.0; 4]; 4];
        for a in 0..3 {
            affine[a][a] = spacing[a];
        }
        affine[3][3] = 1.0;
        Ok(Self {
            dim,
            spacing,
            affine,
            data,
            datatype: NiftiDataType::F32,
            sform_code: 2,
            qform_code: 2,
            description: String::new(),
        })
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the volume has no voxels (never true for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The value at voxel `(i, j, k)`, or `None` outside the volume.
    pub fn get(&self, i: usize, j: usize, k: usize) -> Option<f64> {
        let [nx, ny, nz] = self.dim;
        (i < nx && j < ny && k < nz).then(|| self.data[i + nx * (j + ny * k)])
    }

    /// World coordinates (mm) of the centre of voxel `(i, j, k)`.
    pub fn voxel_to_world(&self, i: f64, j: f64, k: f64) -> [f64; 3] {
        let a = &self.affine;
        [0, 1, 2].map(|r| a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3])
    }
}

/// Reads a `.nii` or `.nii.gz` file (gzip is recognized by its signature, not the name).
///
/// # Errors
/// [`IoError::Io`] if the file cannot be read; otherwise as [`read_nifti_bytes`].
pub fn read_nifti(path: impl AsRef<Path>) -> Result<NiftiImage> {
    let path = path.as_ref();
    read_nifti_bytes(&read_all(path)?, &display_name(path))
}

/// Parses NIfTI-1 bytes (plain or gzip-compressed); `name` is used in error messages.
///
/// Accepts 1–3D volumes and 4D/5D ones whose extra dimensions are all 1; either byte order.
///
/// # Errors
/// [`IoError::BadMagic`] (not NIfTI-1, or the two-file `.hdr`/`.img` variant),
/// [`IoError::Truncated`], [`IoError::InvalidHeader`] (bad dims, offset, spacing),
/// [`IoError::Unsupported`] (data type, several volumes, NIfTI-2), [`IoError::Decompress`],
/// [`IoError::NonFinite`] (a NaN/Inf voxel, `row` = linear voxel index).
pub fn read_nifti_bytes(bytes: &[u8], name: &str) -> Result<NiftiImage> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // Decode the header first: it says how many bytes the volume has, and nothing past
        // that is decompressed.
        let mut dec = flate2::read::MultiGzDecoder::new(bytes);
        let mut buf = read_limited(&mut dec, HEADER_LEN as u64, name, "gzip")?;
        let header = parse_header(&buf, name)?;
        let rest = (header.data_end - HEADER_LEN) as u64;
        buf.extend(read_limited(&mut dec, rest, name, "gzip")?);
        // Files may pad after the data; 16 MiB of padding is far more than any writer adds.
        drain_verify(&mut dec, 16 << 20, name, "gzip")?;
        decode_volume(&buf, &header, name)
    } else {
        let header = parse_header(bytes, name)?;
        decode_volume(bytes, &header, name)
    }
}

/// Writes a volume as `.nii`, or gzip-compressed when the path ends in `.gz`. The file is
/// written atomically (temporary file + rename).
///
/// Floating types store values as they are. Integer types store `(v − inter) / slope`
/// rounded: when every value is an integer in the type's range, `slope = 1, inter = 0`
/// (exact round trip); otherwise the range of the data is mapped onto the type's range
/// (quantization, as FSL and nibabel do).
///
/// # Errors
/// [`IoError::Unrepresentable`] for NaN/Inf values or values beyond `f32` for float32,
/// [`IoError::DimensionMismatch`] if `data` does not match `dim`, [`IoError::Io`].
pub fn write_nifti(path: impl AsRef<Path>, image: &NiftiImage) -> Result<()> {
    let path = path.as_ref();
    let name = display_name(path);
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = write_nifti_bytes(image, gz, &name)?;
    write_atomic(path, &bytes)
}

/// Encodes a volume as NIfTI-1 bytes (gzip-compressed when `gz`); see [`write_nifti`].
///
/// # Errors
/// As [`write_nifti`], without [`IoError::Io`].
pub fn write_nifti_bytes(image: &NiftiImage, gz: bool, name: &str) -> Result<Vec<u8>> {
    let n = image.dim.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(image.data.len()) || image.data.is_empty() {
        return Err(IoError::DimensionMismatch {
            file: name.to_string(),
            what: format!("voxels for dim {:?}", image.dim),
            expected: n.unwrap_or(usize::MAX),
            got: image.data.len(),
        });
    }
    if let Some(axis) = image.dim.iter().position(|&d| d > i16::MAX as usize) {
        return Err(IoError::Unrepresentable {
            file: name.to_string(),
            what: format!("dim[{axis}] = {} (NIfTI-1 allows at most 32767)", image.dim[axis]),
        });
    }
    if let Some(k) = image.data.iter().position(|v| !v.is_finite()) {
        return Err(IoError::Unrepresentable {
            file: name.to_string(),
            what: format!("non-finite value at voxel {k}"),
        });
    }
    let (slope, inter) = scaling_for(image.datatype, &image.data);
    let mut out = encode_header(image, slope, inter);
    out.reserve(image.data.len() * image.datatype.size());
    for (k, &v) in image.data.iter().enumerate() {
        let stored = match image.datatype.int_range() {
            Some((lo, hi)) => ((v - inter) / slope).round().clamp(lo, hi),
            None => v,
        };
        if image.datatype == NiftiDataType::F32 && (stored as f32).is_infinite() {
            return Err(IoError::Unrepresentable {
                file: name.to_string(),
                what: format!("value {v} at voxel {k} as float32"),
            });
        }
        image.datatype.encode(stored, &mut out);
    }
    if !gz {
        return Ok(out);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail; map anyway rather than unwrap.
    let compress_err = |e: std::io::Error| IoError::Decompress {
        file: name.to_string(),
        codec: "gzip",
        reason: e.to_string(),
    };
    enc.write_all(&out).map_err(compress_err)?;
    enc.finish().map_err(compress_err)
}

/// The parts of a header needed to decode the voxels.
struct Header {
    big_endian: bool,
    dim: [usize; 3],
    n_voxels: usize,
    datatype: NiftiDataType,
    vox_offset: usize,
    /// `vox_offset + n_voxels · size`: bytes the file must have.
    data_end: usize,
    spacing: [f64; 3],
    /// Length unit → mm.
    unit_to_mm: f64,
    qfac: f64,
    slope: f64,
    inter: f64,
    qform_code: i16,
    sform_code: i16,
    quatern: [f64; 3],
    qoffset: [f64; 3],
    srow: [[f64; 4]; 3],
    description: String,
}

fn invalid(file: &str, field: &'static str, reason: String) -> IoError {
    IoError::InvalidHeader { file: file.to_string(), field, reason }
}

fn parse_header(bytes: &[u8], file: &str) -> Result<Header> {
    let truncated =
        |what, expected, got| IoError::Truncated { file: file.to_string(), what, expected, got };
    if bytes.len() < 4 {
        return Err(truncated("NIfTI header", HEADER_LEN, bytes.len()));
    }
    let first = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let big_endian = match (i32::from_le_bytes(first), i32::from_be_bytes(first)) {
        (348, _) => false,
        (_, 348) => true,
        (540, _) | (_, 540) => {
            return Err(IoError::Unsupported {
                file: file.to_string(),
                what: "NIfTI-2 (only NIfTI-1 is read)".into(),
            });
        }
        (le, _) => {
            return Err(IoError::BadMagic {
                file: file.to_string(),
                format: "NIfTI-1",
                reason: format!("sizeof_hdr is {le}, not 348"),
            });
        }
    };
    if bytes.len() < HEADER_LEN {
        return Err(truncated("NIfTI header", HEADER_LEN, bytes.len()));
    }
    let b = Bytes::new(bytes, big_endian);
    // Unwraps below cannot fail: all offsets are < HEADER_LEN, checked above.
    let f = |at| b.f32(at).expect("offset inside the checked header") as f64;
    let i16_at = |at| b.i16(at).expect("offset inside the checked header");

    let magic = &bytes[344..348];
    match magic {
        b"n+1\0" => {}
        b"ni1\0" => {
            return Err(IoError::Unsupported {
                file: file.to_string(),
                what: "two-file NIfTI (.hdr/.img); convert to a single .nii".into(),
            });
        }
        _ => {
            return Err(IoError::BadMagic {
                file: file.to_string(),
                format: "NIfTI-1",
                reason: format!("magic is {magic:?}, not \"n+1\\0\""),
            });
        }
    }

    let ndim = i16_at(40);
    if !(1..=7).contains(&ndim) {
        return Err(invalid(file, "dim[0]", format!("{ndim} dimensions (must be 1–7)")));
    }
    let ndim = ndim as usize;
    let mut dims = [1usize; 7];
    for (a, d) in dims.iter_mut().enumerate().take(ndim) {
        let v = i16_at(42 + 2 * a);
        if v < 1 {
            return Err(invalid(file, "dim", format!("dim[{}] = {v} (must be ≥ 1)", a + 1)));
        }
        *d = v as usize;
    }
    let extra: usize = dims[3..].iter().product();
    if extra != 1 {
        return Err(IoError::Unsupported {
            file: file.to_string(),
            what: format!("{extra} volumes (dims {:?}); only one volume is read", &dims[..ndim]),
        });
    }
    let dim = [dims[0], dims[1], dims[2]];

    let code = i16_at(70);
    let datatype = NiftiDataType::from_code(code).ok_or_else(|| IoError::Unsupported {
        file: file.to_string(),
        what: format!("NIfTI datatype {code}"),
    })?;

    // Products of i16 values fit in u64; the usize conversions are checked for 32-bit hosts.
    let n_voxels = dim.iter().map(|&d| d as u64).product::<u64>();
    let n_bytes = n_voxels * datatype.size() as u64;
    let vox = f(108);
    if !(vox.is_finite() && (HEADER_LEN as f64..=u32::MAX as f64).contains(&vox))
        || vox.fract() != 0.0
    {
        return Err(invalid(file, "vox_offset", format!("{vox} (must be an integer ≥ 348)")));
    }
    let vox_offset = vox as u64;
    let too_big = || invalid(file, "dim", "volume too large for this platform".into());
    let data_end = usize::try_from(vox_offset + n_bytes).map_err(|_| too_big())?;
    let n_voxels = usize::try_from(n_voxels).map_err(|_| too_big())?;

    let unit_to_mm = match bytes[123] & 0x07 {
        1 => 1000.0, // metres
        3 => 1e-3,   // micrometres
        _ => 1.0,    // mm, or unknown (0): mm is the universal convention for brain images
    };
    let mut spacing = [0.0; 3];
    for (a, s) in spacing.iter_mut().enumerate() {
        let v = f(80 + 4 * a);
        // Axes beyond ndim may carry pixdim 0; they have one voxel, so 1 mm is harmless.
        let v = if a >= ndim && (v == 0.0 || !v.is_finite()) { 1.0 } else { v.abs() };
        if !(v.is_finite() && v > 0.0) {
            return Err(invalid(file, "pixdim", format!("pixdim[{}] = {v}", a + 1)));
        }
        *s = v * unit_to_mm;
    }
    let qfac = if f(76) < 0.0 { -1.0 } else { 1.0 };

    // nifti1.h: scl_slope 0 (or not finite) means "no scaling".
    let slope = f(112);
    let inter = f(116);
    let (slope, inter) = if slope != 0.0 && slope.is_finite() {
        (slope, if inter.is_finite() { inter } else { 0.0 })
    } else {
        (1.0, 0.0)
    };

    let desc = &bytes[148..228];
    let desc = &desc[..desc.iter().position(|&c| c == 0).unwrap_or(desc.len())];
    let mut srow = [[0.0; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f(280 + 16 * r + 4 * c);
        }
    }
    Ok(Header {
        big_endian,
        dim,
        n_voxels,
        datatype,
        vox_offset: vox_offset as usize,
        data_end,
        spacing,
        unit_to_mm,
        qfac,
        slope,
        inter,
        qform_code: i16_at(252),
        sform_code: i16_at(254),
        quatern: [f(256), f(260), f(264)],
        qoffset: [f(268), f(272), f(276)],
        srow,
        description: String::from_utf8_lossy(desc).into_owned(),
    })
}

fn decode_volume(bytes: &[u8], h: &Header, file: &str) -> Result<NiftiImage> {
    if bytes.len() < h.data_end {
        return Err(IoError::Truncated {
            file: file.to_string(),
            what: "voxel data",
            expected: h.data_end,
            got: bytes.len(),
        });
    }
    let b = Bytes::new(bytes, h.big_endian);
    let size = h.datatype.size();
    let mut data = Vec::with_capacity(h.n_voxels);
    for k in 0..h.n_voxels {
        let v = h.datatype.decode(&b, h.vox_offset + k * size).expect("length checked above");
        let v = h.slope * v + h.inter;
        if !v.is_finite() {
            return Err(IoError::NonFinite { file: file.to_string(), row: k, col: 0 });
        }
        data.push(v);
    }
    let affine = affine_of(h, file)?;
    Ok(NiftiImage {
        dim: h.dim,
        spacing: h.spacing,
        affine,
        data,
        datatype: h.datatype,
        sform_code: h.sform_code.max(0),
        qform_code: h.qform_code.max(0),
        description: h.description.clone(),
    })
}

/// The voxel → world map by the precedence of nifti1.h: sform, then qform, then pixdim.
fn affine_of(h: &Header, file: &str) -> Result<[[f64; 4]; 4]> {
    let mut a = [[0.0; 4]; 4];
    a[3][3] = 1.0;
    let u = h.unit_to_mm;
    if h.sform_code > 0 {
        for (row, srow) in a.iter_mut().zip(&h.srow) {
            for (v, s) in row.iter_mut().zip(srow) {
                *v = s * u;
            }
        }
        if a.iter().flatten().any(|v| !v.is_finite()) {
            return Err(invalid(file, "srow", "non-finite sform".into()));
        }
        return Ok(a);
    }
    if h.qform_code > 0 {
        let [qb, qc, qd] = h.quatern;
        if !(qb.is_finite() && qc.is_finite() && qd.is_finite())
            || h.qoffset.iter().any(|v| !v.is_finite())
        {
            return Err(invalid(file, "quatern", "non-finite qform".into()));
        }
        let r = quaternion_to_rotation(qb, qc, qd);
        let s = [h.spacing[0], h.spacing[1], h.qfac * h.spacing[2]];
        for row in 0..3 {
            for col in 0..3 {
                a[row][col] = r[row][col] * s[col];
            }
            a[row][3] = h.qoffset[row] * u;
        }
        return Ok(a);
    }
    for (i, s) in h.spacing.iter().enumerate() {
        a[i][i] = *s;
    }
    Ok(a)
}

/// `(scl_slope, scl_inter)` for writing `data` as `dt` (see [`write_nifti`]). Both are
/// rounded to f32 first, because that is what the header stores and what readers will use.
fn scaling_for(dt: NiftiDataType, data: &[f64]) -> (f64, f64) {
    let Some((lo, hi)) = dt.int_range() else { return (1.0, 0.0) };
    let (min, max) =
        data.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if data.iter().all(|v| v.fract() == 0.0) && min >= lo && max <= hi {
        return (1.0, 0.0);
    }
    if max == min {
        return (1.0, (min as f32) as f64);
    }
    let slope = ((max - min) / (hi - lo)) as f32 as f64;
    let inter = (min - lo * slope) as f32 as f64;
    (slope, inter)
}

fn encode_header(img: &NiftiImage, slope: f64, inter: f64) -> Vec<u8> {
    let mut h = vec![0u8; WRITE_VOX_OFFSET];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut Vec<u8>, at: usize, v: f64| {
        h[at..at + 4].copy_from_slice(&(v as f32).to_le_bytes())
    };
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    put_i16(&mut h, 40, 3);
    for a in 0..3 {
        // Checked by the caller: every dim fits in i16.
        put_i16(&mut h, 42 + 2 * a, img.dim[a] as i16);
    }
    for a in 3..7 {
        put_i16(&mut h, 42 + 2 * a, 1);
    }
    put_i16(&mut h, 70, img.datatype.code());
    put_i16(&mut h, 72, (8 * img.datatype.size()) as i16);
    let (qb, qc, qd, qfac) = rotation_to_quaternion(&img.affine);
    put_f32(&mut h, 76, qfac);
    for a in 0..3 {
        put_f32(&mut h, 80 + 4 * a, img.spacing[a]);
    }
    for a in 3..7 {
        put_f32(&mut h, 80 + 4 * a, 1.0);
    }
    put_f32(&mut h, 108, WRITE_VOX_OFFSET as f64);
    put_f32(&mut h, 112, slope);
    put_f32(&mut h, 116, inter);
    h[123] = 2 | 8; // mm, seconds
    let desc = img.description.as_bytes();
    let n = desc.len().min(79);
    h[148..148 + n].copy_from_slice(&desc[..n]);
    put_i16(&mut h, 252, img.qform_code);
    put_i16(&mut h, 254, img.sform_code);
    put_f32(&mut h, 256, qb);
    put_f32(&mut h, 260, qc);
    put_f32(&mut h, 264, qd);
    for r in 0..3 {
        put_f32(&mut h, 268 + 4 * r, img.affine[r][3]);
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, img.affine[r][c]);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scaling_is_identity_for_integral_data_and_maps_the_range_otherwise() {
        assert_eq!(scaling_for(NiftiDataType::U8, &[0.0, 3.0, 255.0]), (1.0, 0.0));
        let (slope, inter) = scaling_for(NiftiDataType::U8, &[0.0, 0.5, 1.0]);
        assert!((slope - 1.0 / 255.0).abs() < 1e-9 && inter == 0.0);
    }
}
