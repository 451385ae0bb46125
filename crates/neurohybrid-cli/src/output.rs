//! Writing results: atomic file writes, the output folder with its figure list, and
//! `index.html`.
//!
//! Every file goes through [`atomic_write`]: the bytes are written to a temporary file in the
//! destination's folder, flushed to disk, then renamed over the destination. A rename within
//! one file system is atomic (POSIX `rename(2)`), so a reader — or a run that is interrupted —
//! sees either the old complete file or the new complete file, never a prefix. The temporary
//! name starts with `.` and ends with `.tmp` (ignored by git) and is removed when writing fails.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::{CliError, Result};
use crate::metrics::Metrics;
use crate::plot::Figure;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (temporary file in the same folder, `fsync`, rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_err = |source| CliError::Write { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| write_err(std::io::Error::other("not a file name")))?
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

/// A figure written to the output folder, listed in `index.html`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureEntry {
    /// File name inside the folder.
    pub file: String,
    /// One-sentence caption.
    pub caption: String,
}

/// The output folder of a command (`--out`, default `out/`), and what was written to it.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    figures: Vec<FigureEntry>,
    files: Vec<String>,
}

impl OutputDir {
    /// Creates the folder (and its parents) if needed. Commands call this only after their
    /// inputs have been validated, so a bad input leaves no folder behind.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|source| CliError::Write { path: root.clone(), source })?;
        Ok(Self { root, figures: Vec::new(), files: Vec::new() })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `name` inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Figures written so far, in order.
    pub fn figures(&self) -> &[FigureEntry] {
        &self.figures
    }

    /// Every file written so far (figures included), in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Writes raw bytes atomically.
    pub fn write_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(name);
        atomic_write(&path, bytes)?;
        if !self.files.iter().any(|f| f == name) {
            self.files.push(name.to_owned());
        }
        Ok(path)
    }

    /// Writes a value as pretty JSON (with a final newline).
    pub fn write_json(&mut self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Metrics(format!("{name}: {e}")))?;
        text.push('\n');
        self.write_bytes(name, text.as_bytes())
    }

    /// Renders a figure to PNG and writes it; it is listed in `index.html` with `caption`.
    pub fn write_figure(&mut self, name: &str, caption: &str, figure: &Figure) -> Result<PathBuf> {
        let png = figure
            .render_png()
            .map_err(|source| CliError::Plot { name: name.to_owned(), source })?;
        let path = self.write_bytes(name, &png)?;
        self.figures.retain(|f| f.file != name);
        self.figures.push(FigureEntry { file: name.to_owned(), caption: caption.to_owned() });
        Ok(path)
    }

    /// Checks `metrics` against the schema and writes `metrics.json`.
    pub fn write_metrics(&mut self, metrics: &Metrics) -> Result<PathBuf> {
        metrics.validate().map_err(CliError::Metrics)?;
        self.write_json("metrics.json", metrics)
    }

    /// Writes `index.html`: `title`, the paragraphs of `intro`, the metrics table when given,
    /// every figure written so far with its caption, and links to the other files.
    pub fn write_index(
        &mut self,
        title: &str,
        intro: &[&str],
        metrics: Option<&Metrics>,
    ) -> Result<PathBuf> {
        let html = index_html(title, intro, metrics, &self.figures, &self.files);
        self.write_bytes("index.html", html.as_bytes())
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn index_html(
    title: &str,
    intro: &[&str],
    metrics: Option<&Metrics>,
    figures: &[FigureEntry],
    files: &[String],
) -> String {
    let t = html_escape(title);
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}}\
         figure{{margin:1.5em 0}}img{{max-width:100%;border:1px solid #ddd}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}</style>\n</head>\n<body>\n<h1>{t}</h1>\n"
    );
    for p in intro {
        h.push_str(&format!("<p>{}</p>\n", html_escape(p)));
    }
    if let Some(m) = metrics {
        h.push_str("<h2>Metrics on the held-out data</h2>\n<table>\n<tr><th>model</th>");
        let cols = m.table_columns();
        for c in &cols {
            h.push_str(&format!("<th>{}</th>", html_escape(c)));
        }
        h.push_str("</tr>\n");
        for (name, row) in m.table_rows(&cols) {
            h.push_str(&format!("<tr><td>{}</td>", html_escape(name)));
            for cell in row {
                h.push_str(&format!("<td>{}</td>", html_escape(&cell)));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
        let params = m.parameter_lines();
        if !params.is_empty() {
            h.push_str("<h2>Recovered parameters</h2>\n<ul>\n");
            for l in params {
                h.push_str(&format!("<li>{}</li>\n", html_escape(&l)));
            }
            h.push_str("</ul>\n");
        }
    }
    for f in figures {
        let (file, cap) = (html_escape(&f.file), html_escape(&f.caption));
        h.push_str(&format!(
            "<figure>\n<img src=\"{file}\" alt=\"{cap}\">\n<figcaption>{cap} (<code>{file}</code>)</figcaption>\n</figure>\n"
        ));
    }
    let others: Vec<_> = files
        .iter()
        .filter(|f| f.as_str() != "index.html" && !figures.iter().any(|g| &g.file == *f))
        .collect();
    if !others.is_empty() {
        h.push_str("<h2>Files</h2>\n<ul>\n");
        for f in others {
            let f = html_escape(f);
            h.push_str(&format!("<li><a href=\"{f}\">{f}</a></li>\n"));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Field2d, Heatmap};

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nh-cli-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let d = tmpdir("atomic");
        fs::create_dir_all(&d).unwrap();
        let p = d.join("a.json");
        atomic_write(&p, b"first version, long text").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert!(leftovers(&d).is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_write_keeps_old_file_and_removes_temp() {
        let d = tmpdir("fail");
        fs::create_dir_all(&d).unwrap();
        // Renaming a file over a non-empty directory fails after the temporary file was
        // written: the error names the destination and nothing is left behind.
        let target = d.join("result.png");
        fs::create_dir_all(target.join("inner")).unwrap();
        let err = atomic_write(&target, b"data").unwrap_err();
        assert!(err.to_string().contains("result.png"), "{err}");
        assert!(leftovers(&d).is_empty());
        assert!(target.join("inner").is_dir());
        // A folder that does not exist: creating the temporary file fails, nothing appears.
        let missing = d.join("no-such-dir").join("x.json");
        assert!(atomic_write(&missing, b"x").is_err());
        assert!(!d.join("no-such-dir").exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn output_dir_lists_figures_in_index() {
        let d = tmpdir("index");
        let mut out = OutputDir::create(&d).unwrap();
        let fig =
            Figure::new(1).with(Heatmap::new("u", Field2d::from_fn(4, 4, |x, y| (x + y) as f64)));
        out.write_figure("density.png", "Density <truth>", &fig).unwrap();
        out.write_json("extra.json", &serde_json::json!({"a": 1})).unwrap();
        out.write_index("Demo & test", &["intro"], None).unwrap();
        let html = fs::read_to_string(d.join("index.html")).unwrap();
        assert!(html.contains("<img src=\"density.png\""));
        assert!(html.contains("Density &lt;truth&gt;"));
        assert!(html.contains("Demo &amp; test"));
        assert!(html.contains("<a href=\"extra.json\">"));
        assert_eq!(out.files(), ["density.png", "extra.json", "index.html"]);
        let png = fs::read(d.join("density.png")).unwrap();
        assert_eq!(crate::plot::tests::decode(&png).0, 360);
        fs::remove_dir_all(&d).unwrap();
    }
}
