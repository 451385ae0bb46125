//! Figures as PNG files, hermetic: plotters' bitmap backend draws into an RGB buffer, text is
//! rasterized by ab_glyph from the DejaVu Sans file shipped in `assets/` (no system font, no
//! fontconfig), and the `png` crate encodes the buffer. Nothing here touches the file system:
//! [`Figure::render_png`] returns bytes, and `output::OutputDir::write_figure` writes them
//! atomically.
//!
//! A [`Figure`] is a grid of [`Panel`]s, filled row by row:
//!
//! | panel | for |
//! |---|---|
//! | [`Heatmap`] | a 2D field with a mask, a colour bar and iso-contours (segmentations) |
//! | [`LinePlot`] | several [`Series`] with optional uncertainty bands, markers, log-y |
//! | [`BarChart`] | grouped bars (a metric per model) |
//! | [`GraphPlot`] | nodes at 2D positions coloured by value, edges shaded by weight |
//!
//! ```
//! use neurohybrid_cli::plot::{Field2d, Figure, Heatmap, LinePlot, Series};
//!
//! let field = Field2d::from_fn(16, 12, |x, y| (x as f64 - 8.0).hypot(y as f64 - 6.0));
//! let mut fig = Figure::new(2).title("example");
//! fig.push(Heatmap::new("distance", field).contour(4.0, neurohybrid_cli::plot::WHITE));
//! fig.push(LinePlot::new("loss", "iteration", "loss").log_y().series(
//!     Series::new("train", vec![0.0, 1.0, 2.0], vec![1.0, 0.1, 0.01]),
//! ));
//! let png = fig.render_png().unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```

mod bars;
mod colormap;
mod graph;
mod heatmap;
mod lines;

pub use bars::BarChart;
pub use colormap::Colormap;
pub use graph::GraphPlot;
pub use heatmap::{Contour, Field2d, Heatmap, iso_segments};
pub use lines::{LinePlot, LineStyle, Series};
// `Legend` is defined below (shared by line and bar charts).
pub use plotters::style::RGBColor;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::sync::Once;

/// Black.
pub const BLACK: RGBColor = RGBColor(0, 0, 0);
/// White.
pub const WHITE: RGBColor = RGBColor(255, 255, 255);
/// Red (the "truth" contour colour in the demos).
pub const RED: RGBColor = RGBColor(214, 39, 40);
/// Series colours (matplotlib's tab10 order): blue, orange, green, red, purple, brown, pink,
/// gray. [`Series`] and [`BarChart`] take them in order when no colour is given.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The font, compiled into the binary so a fresh machine needs no system fonts.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();
/// The family name every text style in this module uses.
pub(crate) const FAMILY: &str = "sans-serif";

fn register_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TrueType file checked into the repository; the unit test
        // `font_parses` fails if it is ever replaced by something else.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The data handed to a panel are inconsistent (lengths, empty series, bad range).
    #[error("panel `{panel}`: {message}")]
    Input {
        /// The panel's title.
        panel: String,
        /// What is wrong.
        message: String,
    },
    /// The figure would be empty or absurdly large.
    #[error("figure layout: {0}")]
    Layout(String),
    /// plotters or the PNG encoder failed.
    #[error("drawing failed: {0}")]
    Backend(String),
}

pub(crate) fn input_err(panel: &str, message: impl Into<String>) -> PlotError {
    PlotError::Input { panel: panel.to_owned(), message: message.into() }
}

pub(crate) fn backend_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Backend(e.to_string())
}

/// One cell of a [`Figure`].
#[derive(Debug, Clone)]
pub enum Panel {
    /// A 2D field.
    Heatmap(Heatmap),
    /// Curves.
    Lines(LinePlot),
    /// Grouped bars.
    Bars(BarChart),
    /// A graph (connectome).
    Graph(GraphPlot),
    /// An empty cell (keeps a grid aligned).
    Empty,
}

impl Panel {
    fn draw(&self, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), PlotError> {
        match self {
            Panel::Heatmap(h) => h.draw(area),
            Panel::Lines(l) => l.draw(area),
            Panel::Bars(b) => b.draw(area),
            Panel::Graph(g) => g.draw(area),
            Panel::Empty => Ok(()),
        }
    }
}

impl From<Heatmap> for Panel {
    fn from(h: Heatmap) -> Self {
        Panel::Heatmap(h)
    }
}
impl From<LinePlot> for Panel {
    fn from(l: LinePlot) -> Self {
        Panel::Lines(l)
    }
}
impl From<BarChart> for Panel {
    fn from(b: BarChart) -> Self {
        Panel::Bars(b)
    }
}
impl From<GraphPlot> for Panel {
    fn from(g: GraphPlot) -> Self {
        Panel::Graph(g)
    }
}

/// Largest figure side in pixels (a guard against a mistaken layout eating memory).
const MAX_SIDE: u32 = 8192;

/// A grid of panels with an optional title, rendered to PNG bytes.
#[derive(Debug, Clone)]
pub struct Figure {
    title: Option<String>,
    cols: usize,
    panel_size: (u32, u32),
    panels: Vec<Panel>,
}

impl Figure {
    /// A figure with `cols` panels per row (at least 1); panels are 360 × 320 px by default.
    pub fn new(cols: usize) -> Self {
        Self { title: None, cols: cols.max(1), panel_size: (360, 320), panels: Vec::new() }
    }

    /// Sets the figure title (drawn above the grid).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the size of every panel in pixels.
    pub fn panel_size(mut self, width: u32, height: u32) -> Self {
        self.panel_size = (width, height);
        self
    }

    /// Appends a panel (row by row).
    pub fn push(&mut self, panel: impl Into<Panel>) -> &mut Self {
        self.panels.push(panel.into());
        self
    }

    /// Appends a panel, builder style.
    pub fn with(mut self, panel: impl Into<Panel>) -> Self {
        self.panels.push(panel.into());
        self
    }

    /// Number of panels.
    pub fn len(&self) -> usize {
        self.panels.len()
    }

    /// Whether the figure has no panels.
    pub fn is_empty(&self) -> bool {
        self.panels.is_empty()
    }

    /// Pixel size of the whole figure.
    pub fn size(&self) -> (u32, u32) {
        let cols = self.cols.min(self.panels.len().max(1)) as u32;
        let rows = self.panels.len().div_ceil(self.cols).max(1) as u32;
        let title_h = if self.title.is_some() { 36 } else { 0 };
        (cols * self.panel_size.0, rows * self.panel_size.1 + title_h)
    }

    /// Draws the figure and encodes it as an 8-bit RGB PNG.
    pub fn render_png(&self) -> Result<Vec<u8>, PlotError> {
        let (rgb, w, h) = self.render_rgb()?;
        encode_png(&rgb, w, h)
    }

    /// Draws the figure into a row-major RGB buffer; returns it with its width and height.
    pub fn render_rgb(&self) -> Result<(Vec<u8>, u32, u32), PlotError> {
        if self.panels.is_empty() {
            return Err(PlotError::Layout("a figure needs at least one panel".into()));
        }
        let (w, h) = self.size();
        if w > MAX_SIDE || h > MAX_SIDE || self.panel_size.0 < 80 || self.panel_size.1 < 80 {
            return Err(PlotError::Layout(format!(
                "{w} x {h} px with {} x {} px panels (panels must be >= 80 px, the figure <= {MAX_SIDE} px)",
                self.panel_size.0, self.panel_size.1
            )));
        }
        register_font();
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(backend_err)?;
            let body = match &self.title {
                Some(t) => {
                    let (top, body) = root.split_vertically(36);
                    top.draw(&Text::new(
                        t.clone(),
                        (w as i32 / 2, 18),
                        text_style(20).pos(center()),
                    ))
                    .map_err(backend_err)?;
                    body
                }
                None => root.clone(),
            };
            let rows = self.panels.len().div_ceil(self.cols);
            let cols = self.cols.min(self.panels.len());
            let cells = body.split_evenly((rows, cols));
            for (panel, cell) in self.panels.iter().zip(cells.iter()) {
                panel.draw(cell)?;
            }
            root.present().map_err(backend_err)?;
        }
        Ok((buf, w, h))
    }
}

/// Encodes a row-major 8-bit RGB buffer as PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    if rgb.len() != (width as usize) * (height as usize) * 3 {
        return Err(PlotError::Layout(format!(
            "RGB buffer of {} bytes for {width} x {height} px",
            rgb.len()
        )));
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(backend_err)?;
        writer.write_image_data(rgb).map_err(backend_err)?;
        writer.finish().map_err(backend_err)?;
    }
    Ok(out)
}

pub(crate) fn center() -> plotters::style::text_anchor::Pos {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    Pos::new(HPos::Center, VPos::Center)
}

pub(crate) fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size as f64).into_font()).color(&BLACK)
}

/// Short number formatting for labels: 3 significant digits, scientific outside 1e-3..1e4.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        format!("{v:.2e}")
    } else {
        let digits = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
    }
}

/// Draws a panel title centred at the top of `area`; returns the height it took.
pub(crate) fn draw_title(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
) -> Result<u32, PlotError> {
    if title.is_empty() {
        return Ok(4);
    }
    let (w, _) = area.dim_in_pixel();
    area.draw(&Text::new(title.to_owned(), (w as i32 / 2, 12), text_style(15).pos(center())))
        .map_err(backend_err)?;
    Ok(26)
}

/// Where a chart's series legend goes (pick the corner the data leave empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Legend {
    /// Upper right (the default).
    #[default]
    UpperRight,
    /// Upper left (curves that grow to the right).
    UpperLeft,
    /// Lower right.
    LowerRight,
    /// Lower left (curves that fall to the right, Dice near 1).
    LowerLeft,
}

/// The series legend in a corner of a chart.
pub(crate) fn draw_legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    corner: Legend,
) -> Result<(), PlotError> {
    let position = match corner {
        Legend::UpperRight => SeriesLabelPosition::UpperRight,
        Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        Legend::LowerRight => SeriesLabelPosition::LowerRight,
        Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
    };
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(text_style(11))
        .draw()
        .map_err(backend_err)
}

/// The `i`-th palette colour, cycling.
pub fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes PNG bytes fully (header, every chunk's CRC, the deflate stream and the scanline
    /// filters) and returns width, height and the RGB pixels.
    pub(crate) fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(png_bytes);
        let mut reader = decoder.read_info().expect("valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn font_parses() {
        assert!(ab_glyph_check(FONT));
    }

    fn ab_glyph_check(bytes: &'static [u8]) -> bool {
        plotters::style::register_font("font-check", FontStyle::Normal, bytes).is_ok()
    }

    #[test]
    fn encode_round_trips_pixels() {
        let (w, h) = (7u32, 5u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let png = encode_png(&rgb, w, h).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (dw, dh, pixels) = decode(&png);
        assert_eq!((dw, dh), (w, h));
        assert_eq!(pixels, rgb);
        assert!(encode_png(&rgb[1..], w, h).is_err());
    }

    #[test]
    fn text_is_drawn_with_the_shipped_font() {
        // A figure whose only content is its title: the title row must contain dark pixels
        // (glyphs rasterized from the embedded font), the rest stays white.
        let fig = Figure::new(1).title("Tumour density").with(Panel::Empty);
        let (rgb, w, h) = fig.render_rgb().unwrap();
        let dark = |y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (0..w).map(move |x| ((y * w + x) * 3) as usize))
                .filter(|&i| rgb[i] < 128)
                .count()
        };
        assert!(dark(0, 36) > 50, "title glyphs missing");
        assert_eq!(dark(36, h), 0);
    }

    #[test]
    fn figure_size_follows_the_grid() {
        let mut fig = Figure::new(3).panel_size(100, 90);
        for _ in 0..4 {
            fig.push(Panel::Empty);
        }
        assert_eq!(fig.size(), (300, 180));
        let (w, h, _) = decode(&fig.render_png().unwrap());
        assert_eq!((w, h), (300, 180));
        assert!(Figure::new(2).render_png().is_err());
        assert!(Figure::new(1).panel_size(10, 10).with(Panel::Empty).render_png().is_err());
    }

    #[test]
    fn numbers_format_short() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.12345), "0.123");
        assert_eq!(fmt_num(12.0), "12");
        assert_eq!(fmt_num(1234.4), "1234");
        assert_eq!(fmt_num(2.5e-5), "2.50e-5");
        assert_eq!(fmt_num(-3.0), "-3");
    }
}
