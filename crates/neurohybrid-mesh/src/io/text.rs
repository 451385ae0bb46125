//! Dense matrices as delimited text (CSV, TSV, whitespace-separated as TVB and numpy write).

use super::{IoError, Result, display_name, read_all, snippet, write_atomic};
use std::path::Path;

/// A dense real matrix, row-major: entry `(r, c)` is `data[r * cols + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Entries, row-major.
    pub data: Vec<f64>,
    /// Column labels when the file had a header row, else empty.
    pub labels: Vec<String>,
}

impl DenseMatrix {
    /// A matrix from row-major data.
    ///
    /// # Errors
    /// [`IoError::DimensionMismatch`] when `data.len() != rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(IoError::DimensionMismatch {
                file: "<in memory>".into(),
                what: format!("entries of a {rows} × {cols} matrix"),
                expected: rows.saturating_mul(cols),
                got: data.len(),
            });
        }
        Ok(Self { rows, cols, data, labels: Vec::new() })
    }

    /// Entry `(r, c)`, or `None` out of range.
    pub fn get(&self, r: usize, c: usize) -> Option<f64> {
        (r < self.rows && c < self.cols).then(|| self.data[r * self.cols + c])
    }

    /// Whether the matrix is square.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// Checks that the matrix is a valid connectome weight matrix: square, finite, non-negative.
    /// `file` names the source in the error.
    ///
    /// # Errors
    /// [`IoError::NotSquare`], [`IoError::NonFinite`], [`IoError::NegativeWeight`].
    pub fn check_weights(&self, file: &str) -> Result<()> {
        super::check_weights(file, self.rows, self.cols, &self.data)
    }
}

/// How fields of a text matrix are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delimiter {
    /// Decide from the file name: `.csv` → comma, `.tsv` → tab, otherwise runs of whitespace;
    /// when reading, a `.txt` file containing commas is read as CSV.
    Auto,
    /// `,`
    Comma,
    /// `\t`
    Tab,
    /// Runs of spaces and tabs (numpy `savetxt`, TVB `weights.txt`).
    Whitespace,
}

impl Delimiter {
    fn resolve(self, path: &Path, text: Option<&str>) -> Delimiter {
        if self != Delimiter::Auto {
            return self;
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Delimiter::Comma,
            Some("tsv") => Delimiter::Tab,
            _ if text.is_some_and(|t| t.contains(',')) => Delimiter::Comma,
            _ => Delimiter::Whitespace,
        }
    }
}

/// Reads a dense matrix from delimited text.
///
/// Blank lines and lines starting with `#` or `%` are skipped. If the first remaining line has
/// a field that is not a number, it is taken as a header of column labels. All rows must have
/// the same number of fields. NaN/Inf are rejected here, because no model input is meant to
/// hold them; non-negativity and squareness are the caller's (see
/// [`DenseMatrix::check_weights`]).
///
/// # Errors
/// [`IoError::Io`], [`IoError::Parse`], [`IoError::DimensionMismatch`] (ragged rows),
/// [`IoError::NonFinite`], [`IoError::Empty`].
pub fn read_matrix_text(path: impl AsRef<Path>, delimiter: Delimiter) -> Result<DenseMatrix> {
    let path = path.as_ref();
    let bytes = read_all(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let delimiter = delimiter.resolve(path, Some(&text));
    parse_matrix_text(&text, delimiter, &display_name(path))
}

/// Parses text in the format of [`read_matrix_text`]; `Auto` means whitespace unless the text
/// has commas. `name` is used in error messages.
///
/// # Errors
/// As [`read_matrix_text`], without [`IoError::Io`].
pub fn parse_matrix_text(text: &str, delimiter: Delimiter, name: &str) -> Result<DenseMatrix> {
    let delimiter = delimiter.resolve(Path::new(""), Some(text));
    let split = |line: &str| -> Vec<String> {
        match delimiter {
            Delimiter::Comma => line.split(',').map(|s| s.trim().to_string()).collect(),
            Delimiter::Tab => line.split('\t').map(|s| s.trim().to_string()).collect(),
            _ => line.split_whitespace().map(str::to_string).collect(),
        }
    };
    let mut lines = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}'))
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t.starts_with('%'))
        })
        .peekable();
    let mut labels = Vec::new();
    if let Some(first) = lines.peek() {
        let fields = split(first);
        if fields.iter().any(|f| parse_number(f).is_none()) {
            labels = fields.into_iter().map(|f| f.trim_matches('"').to_string()).collect();
            lines.next();
        }
    }
    let mut data = Vec::new();
    let mut cols = None;
    let mut rows = 0;
    for line in lines {
        let fields = split(line);
        let expected = *cols.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(IoError::DimensionMismatch {
                file: name.to_string(),
                what: format!("columns in row {rows}"),
                expected,
                got: fields.len(),
            });
        }
        for (col, field) in fields.iter().enumerate() {
            let v = parse_number(field).ok_or_else(|| IoError::Parse {
                file: name.to_string(),
                row: rows,
                col,
                text: snippet(field),
            })?;
            if !v.is_finite() {
                return Err(IoError::NonFinite { file: name.to_string(), row: rows, col });
            }
            data.push(v);
        }
        rows += 1;
    }
    let cols = cols.unwrap_or(0);
    if rows == 0 || cols == 0 {
        return Err(IoError::Empty { file: name.to_string(), what: "matrix" });
    }
    if !labels.is_empty() && labels.len() != cols {
        return Err(IoError::DimensionMismatch {
            file: name.to_string(),
            what: "labels in the header row".into(),
            expected: cols,
            got: labels.len(),
        });
    }
    Ok(DenseMatrix { rows, cols, data, labels })
}

/// Writes a matrix as delimited text (`Auto`: by extension, whitespace for unknown ones) with
/// a header row when `matrix.labels` is not empty. Numbers are written with Rust's shortest
/// round-trip formatting, so reading the file back gives the same `f64`s. Written atomically.
///
/// # Errors
/// [`IoError::DimensionMismatch`] (data or labels do not match the shape),
/// [`IoError::Unrepresentable`] (a label contains the delimiter or a newline), [`IoError::Io`].
pub fn write_matrix_text(
    path: impl AsRef<Path>,
    matrix: &DenseMatrix,
    delimiter: Delimiter,
) -> Result<()> {
    let path = path.as_ref();
    let name = display_name(path);
    let sep = match delimiter.resolve(path, None) {
        Delimiter::Comma => ",",
        Delimiter::Tab => "\t",
        _ => " ",
    };
    if matrix.rows.checked_mul(matrix.cols) != Some(matrix.data.len()) {
        return Err(IoError::DimensionMismatch {
            file: name,
            what: format!("entries of a {} × {} matrix", matrix.rows, matrix.cols),
            expected: matrix.rows.saturating_mul(matrix.cols),
            got: matrix.data.len(),
        });
    }
    if !matrix.labels.is_empty() && matrix.labels.len() != matrix.cols {
        return Err(IoError::DimensionMismatch {
            file: name,
            what: "labels".into(),
            expected: matrix.cols,
            got: matrix.labels.len(),
        });
    }
    let mut out = String::new();
    if !matrix.labels.is_empty() {
        for l in &matrix.labels {
            let bad = l.contains(sep)
                || l.contains('\n')
                || l.trim().is_empty()
                || parse_number(l).is_some()
                || (sep == " " && l.contains(char::is_whitespace));
            if bad {
                return Err(IoError::Unrepresentable {
                    file: name,
                    what: format!("label {:?} (empty, numeric, or contains the delimiter)", l),
                });
            }
        }
        out.push_str(&matrix.labels.join(sep));
        out.push('\n');
    }
    for r in 0..matrix.rows {
        let row = &matrix.data[r * matrix.cols..(r + 1) * matrix.cols];
        let fields: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&fields.join(sep));
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}

/// Parses one field; accepts surrounding quotes and `nan`/`inf` spellings (rejected later
/// as non-finite, with a better message than a parse error).
fn parse_number(field: &str) -> Option<f64> {
    let f = field.trim().trim_matches('"');
    if f.is_empty() {
        return None;
    }
    f.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_comments_and_delimiters() {
        let m = parse_matrix_text("# c\na,b\n1,2\n\n3,4e-1\n", Delimiter::Auto, "t").unwrap();
        assert_eq!((m.rows, m.cols), (2, 2));
        assert_eq!(m.labels, ["a", "b"]);
        assert_eq!(m.data, [1.0, 2.0, 3.0, 0.4]);
        let m = parse_matrix_text("  1 2\t3\n4 5 6 \n", Delimiter::Whitespace, "t").unwrap();
        assert_eq!((m.rows, m.cols), (2, 3));
    }

    #[test]
    fn ragged_rows_nan_and_garbage_are_named_errors() {
        let e = parse_matrix_text("1 2\n3\n", Delimiter::Whitespace, "t").unwrap_err();
        assert!(matches!(e, IoError::DimensionMismatch { expected: 2, got: 1, .. }), "{e}");
        let e = parse_matrix_text("1 2\n3 nan\n", Delimiter::Whitespace, "t").unwrap_err();
        assert!(matches!(e, IoError::NonFinite { row: 1, col: 1, .. }), "{e}");
        let e = parse_matrix_text("1 2\n3 x\n", Delimiter::Whitespace, "t").unwrap_err();
        assert!(matches!(e, IoError::Parse { row: 1, col: 1, .. }), "{e}");
        let e = parse_matrix_text("# only\n", Delimiter::Whitespace, "t").unwrap_err();
        assert!(matches!(e, IoError::Empty { .. }), "{e}");
    }
}
