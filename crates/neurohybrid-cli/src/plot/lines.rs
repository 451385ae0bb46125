//! Line plots: several series, optional uncertainty bands and markers, optional log-y axis,
//! vertical marker lines (e.g. the end of the training window).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Legend, PlotError, backend_err, fmt_num, input_err, palette, text_style};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// A solid line.
    #[default]
    Solid,
    /// A dashed line (predictions, extrapolations).
    Dashed,
    /// Markers only (observations).
    Markers,
    /// A line with markers.
    LineMarkers,
}

/// One curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Abscissae.
    pub xs: Vec<f64>,
    /// Ordinates (same length as `xs`; non-finite points are skipped, as are non-positive
    /// ones on a log axis).
    pub ys: Vec<f64>,
    /// Lower and upper band edges (same length as `xs`), drawn as a translucent area.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    /// Colour; `None` takes the palette colour of the series' index.
    pub color: Option<RGBColor>,
    /// Line style.
    pub style: LineStyle,
}

impl Series {
    /// A solid series.
    pub fn new(name: impl Into<String>, xs: Vec<f64>, ys: Vec<f64>) -> Self {
        Self { name: name.into(), xs, ys, band: None, color: None, style: LineStyle::Solid }
    }

    /// Adds an uncertainty band `[lower, upper]`.
    pub fn band(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.band = Some((lower, upper));
        self
    }

    /// Sets the colour.
    pub fn color(mut self, color: RGBColor) -> Self {
        self.color = Some(color);
        self
    }

    /// Sets the line style.
    pub fn style(mut self, style: LineStyle) -> Self {
        self.style = style;
        self
    }
}

/// A line-plot panel.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// Panel title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The curves, drawn in order.
    pub series: Vec<Series>,
    /// Vertical lines at these x with a label (e.g. "last training scan").
    pub vlines: Vec<(f64, String)>,
    /// Fixed y range (in data units, also on a log axis); `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// Legend corner.
    pub legend: Legend,
}

impl LinePlot {
    /// An empty plot.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            series: Vec::new(),
            vlines: Vec::new(),
            y_range: None,
            legend: Legend::default(),
        }
    }

    /// Logarithmic y axis (loss curves).
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Adds a series.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Adds a labelled vertical line at `x`.
    pub fn vline(mut self, x: f64, label: impl Into<String>) -> Self {
        self.vlines.push((x, label.into()));
        self
    }

    /// Puts the legend in another corner.
    pub fn legend(mut self, corner: Legend) -> Self {
        self.legend = corner;
        self
    }

    /// Fixes the y range.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    fn check(&self) -> Result<(), PlotError> {
        if self.series.is_empty() {
            return Err(input_err(&self.title, "no series"));
        }
        for s in &self.series {
            if s.xs.len() != s.ys.len() {
                return Err(input_err(
                    &self.title,
                    format!(
                        "series `{}`: {} x values, {} y values",
                        s.name,
                        s.xs.len(),
                        s.ys.len()
                    ),
                ));
            }
            if let Some((lo, hi)) = &s.band
                && (lo.len() != s.xs.len() || hi.len() != s.xs.len())
            {
                return Err(input_err(
                    &self.title,
                    format!(
                        "series `{}`: band of {} / {} for {} points",
                        s.name,
                        lo.len(),
                        hi.len(),
                        s.xs.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// y in plot coordinates (log10 on a log axis), `None` for points that cannot be drawn.
    fn ty(&self, y: f64) -> Option<f64> {
        if !y.is_finite() {
            None
        } else if self.log_y {
            (y > 0.0).then(|| y.log10())
        } else {
            Some(y)
        }
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let (mut x0, mut x1, mut y0, mut y1) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            let bands =
                s.band.iter().flat_map(|(lo, hi)| lo.iter().zip(&s.xs).chain(hi.iter().zip(&s.xs)));
            for (&y, &x) in s.ys.iter().zip(&s.xs).chain(bands) {
                if let (true, Some(y)) = (x.is_finite(), self.ty(y)) {
                    (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
                }
            }
        }
        for (x, _) in &self.vlines {
            if x.is_finite() {
                (x0, x1) = (x0.min(*x), x1.max(*x));
            }
        }
        if let Some((lo, hi)) = self.y_range
            && let (Some(lo), Some(hi)) = (self.ty(lo), self.ty(hi))
            && lo < hi
        {
            (y0, y1) = (lo, hi);
        } else {
            let pad = if y1 > y0 { 0.05 * (y1 - y0) } else { 0.5 };
            (y0, y1) = (y0 - pad, y1 + pad);
        }
        if x0 > x1 {
            (x0, x1) = (0.0, 1.0);
        } else if x0 == x1 {
            (x0, x1) = (x0 - 0.5, x1 + 0.5);
        }
        if y0 > y1 || !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        ((x0, x1), (y0, y1))
    }

    pub(crate) fn draw(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, Shift>,
    ) -> Result<(), PlotError> {
        self.check()?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text_style(15))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(54)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(backend_err)?;
        let log = self.log_y;
        let y_fmt = move |v: &f64| if log { fmt_num(10f64.powf(*v)) } else { fmt_num(*v) };
        let x_fmt = |v: &f64| fmt_num(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(text_style(11))
            .axis_desc_style(text_style(12))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .x_labels(6)
            .y_labels(6)
            .draw()
            .map_err(backend_err)?;

        for (idx, s) in self.series.iter().enumerate() {
            let color = s.color.unwrap_or_else(|| palette(idx));
            if let Some((lo, hi)) = &s.band {
                let upper = s.xs.iter().zip(hi).filter_map(|(&x, &y)| Some((x, self.ty(y)?)));
                let lower = s.xs.iter().zip(lo).filter_map(|(&x, &y)| Some((x, self.ty(y)?)));
                let mut poly: Vec<(f64, f64)> = upper.collect();
                let mut lower: Vec<(f64, f64)> = lower.collect();
                lower.reverse();
                poly.extend(lower);
                if poly.len() >= 3 {
                    chart
                        .draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2).filled())))
                        .map_err(backend_err)?;
                }
            }
            let pts: Vec<(f64, f64)> = s
                .xs
                .iter()
                .zip(&s.ys)
                .filter_map(|(&x, &y)| if x.is_finite() { Some((x, self.ty(y)?)) } else { None })
                .collect();
            let line_style = ShapeStyle::from(&color).stroke_width(2);
            let anno = match s.style {
                LineStyle::Solid => chart.draw_series(LineSeries::new(pts.clone(), line_style)),
                LineStyle::Dashed => {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), 7, 5, line_style))
                }
                LineStyle::Markers => {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                }
                LineStyle::LineMarkers => {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), line_style))
                        .map_err(backend_err)?;
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                }
            }
            .map_err(backend_err)?;
            if !s.name.is_empty() {
                let style = s.style;
                anno.label(s.name.clone()).legend(move |(x, y)| match style {
                    LineStyle::Markers => Circle::new((x + 8, y), 4, color.filled()).into_dyn(),
                    _ => PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                        .into_dyn(),
                });
            }
        }
        for (x, label) in &self.vlines {
            let style = ShapeStyle::from(&RGBColor(90, 90, 90)).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, y0), (*x, y1)], 4, 4, style))
                .map_err(backend_err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    // Just right of the line, just below the top edge.
                    (*x + 0.01 * (x1 - x0), y1 - 0.02 * (y1 - y0)),
                    text_style(11).color(&RGBColor(70, 70, 70)),
                )))
                .map_err(backend_err)?;
        }
        if self.series.iter().any(|s| !s.name.is_empty()) {
            super::draw_legend(&mut chart, self.legend)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Figure;
    use super::super::tests::decode;
    use super::*;

    #[test]
    fn loss_curve_on_log_axis_renders() {
        let xs: Vec<f64> = (0..50).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| (-x / 10.0).exp()).collect();
        let lo: Vec<f64> = ys.iter().map(|y| 0.5 * y).collect();
        let hi: Vec<f64> = ys.iter().map(|y| 2.0 * y).collect();
        let p = LinePlot::new("loss", "iteration", "loss")
            .log_y()
            .series(Series::new("train", xs.clone(), ys.clone()).band(lo, hi))
            .series(Series::new("obs", xs.clone(), ys).style(LineStyle::Markers))
            .series(Series::new("zero", xs, vec![0.0; 50]).style(LineStyle::Dashed))
            .vline(20.0, "held out");
        // ln y = -x/10 spans 10^0 .. 10^-2.1 (and the band a factor 2 either side).
        let ((_, _), (y0, y1)) = p.ranges();
        assert!(y1 > 2f64.log10() && y0 < (0.5 * (-4.9f64).exp()).log10());
        let png = Figure::new(1).with(p).render_png().unwrap();
        assert_eq!(decode(&png).0, 360);
    }

    #[test]
    fn bad_series_is_an_error() {
        let p = LinePlot::new("traj", "t", "c").series(Series::new("a", vec![0.0, 1.0], vec![0.0]));
        assert!(Figure::new(1).with(p).render_png().unwrap_err().to_string().contains("traj"));
        let empty = LinePlot::new("empty", "t", "c");
        assert!(Figure::new(1).with(empty).render_png().is_err());
    }
}
