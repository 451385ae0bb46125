//! Grouped bar charts: one group per category (a metric, a patient), one bar per series (a
//! model) inside each group.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{BLACK, PlotError, backend_err, fmt_num, input_err, palette, text_style};

/// A grouped bar chart panel.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// Panel title.
    pub title: String,
    /// y-axis label.
    pub y_label: String,
    /// Category names along x.
    pub groups: Vec<String>,
    /// `(series name, one value per group)`; non-finite values leave a gap.
    pub series: Vec<(String, Vec<f64>)>,
    /// Optional error bars: `(lower, upper)` per series and group, same shape as `series`.
    pub errors: Option<Vec<(Vec<f64>, Vec<f64>)>>,
}

impl BarChart {
    /// An empty chart over these groups.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            title: title.into(),
            y_label: y_label.into(),
            groups,
            series: Vec::new(),
            errors: None,
        }
    }

    /// Adds a series (one value per group).
    pub fn series(mut self, name: impl Into<String>, values: Vec<f64>) -> Self {
        self.series.push((name.into(), values));
        self
    }

    fn check(&self) -> Result<(), PlotError> {
        if self.groups.is_empty() || self.series.is_empty() {
            return Err(input_err(&self.title, "a bar chart needs groups and series"));
        }
        for (name, v) in &self.series {
            if v.len() != self.groups.len() {
                return Err(input_err(
                    &self.title,
                    format!(
                        "series `{name}` has {} values for {} groups",
                        v.len(),
                        self.groups.len()
                    ),
                ));
            }
        }
        if let Some(e) = &self.errors
            && (e.len() != self.series.len()
                || e.iter()
                    .any(|(lo, hi)| lo.len() != self.groups.len() || hi.len() != self.groups.len()))
        {
            return Err(input_err(&self.title, "error bars must have the shape of the series"));
        }
        Ok(())
    }

    pub(crate) fn draw(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, Shift>,
    ) -> Result<(), PlotError> {
        self.check()?;
        let finite = self.series.iter().flat_map(|(_, v)| v.iter()).copied();
        let errs = self.errors.iter().flatten().flat_map(|(lo, hi)| lo.iter().chain(hi)).copied();
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for v in finite.chain(errs).filter(|v| v.is_finite()) {
            (lo, hi) = (lo.min(v), hi.max(v));
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        // Headroom for the value labels and the legend above the tallest bar.
        let top = hi + 0.4 * (hi - lo);
        let bottom = if lo < 0.0 { lo - 0.05 * (hi - lo) } else { 0.0 };
        let n_groups = self.groups.len();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text_style(15))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(54)
            .build_cartesian_2d(0.0..n_groups as f64, bottom..top)
            .map_err(backend_err)?;
        let y_fmt = |v: &f64| fmt_num(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(self.y_label.as_str())
            .y_label_formatter(&y_fmt)
            .label_style(text_style(11))
            .axis_desc_style(text_style(12))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(backend_err)?;

        let n_series = self.series.len();
        let width = 0.8 / n_series as f64;
        for (s, (name, values)) in self.series.iter().enumerate() {
            let color = palette(s);
            let left = |g: usize| g as f64 + 0.1 + s as f64 * width;
            let bars = values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(g, &v)| {
                Rectangle::new([(left(g), 0.0), (left(g) + 0.92 * width, v)], color.filled())
            });
            chart.draw_series(bars).map_err(backend_err)?.label(name.clone()).legend(
                move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()),
            );
            let labels = values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(g, &v)| {
                Text::new(fmt_num(v), (left(g), v.max(0.0) + 0.02 * (top - bottom)), text_style(10))
            });
            chart.draw_series(labels).map_err(backend_err)?;
            if let Some(errors) = &self.errors {
                let (elo, ehi) = &errors[s];
                let whisker = elo
                    .iter()
                    .zip(ehi)
                    .enumerate()
                    .filter(|(_, (a, b))| a.is_finite() && b.is_finite());
                let lines = whisker.map(|(g, (&a, &b))| {
                    let x = left(g) + 0.46 * width;
                    PathElement::new(vec![(x, a), (x, b)], BLACK.stroke_width(1))
                });
                chart.draw_series(lines).map_err(backend_err)?;
            }
        }
        // Group names under the axis, in pixel coordinates of the panel.
        let (ax, ay) = area.get_base_pixel();
        for (g, name) in self.groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(g as f64 + 0.5, bottom));
            area.draw(&Text::new(
                name.clone(),
                (px - ax, py - ay + 14),
                text_style(12).pos(super::center()),
            ))
            .map_err(backend_err)?;
        }
        super::draw_legend(&mut chart, super::Legend::UpperRight)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Figure;
    use super::super::tests::decode;
    use super::*;

    #[test]
    fn grouped_bars_render_in_series_colours() {
        let chart = BarChart::new("held-out error", "RMSE", vec!["RMSE".into(), "1 - Dice".into()])
            .series("mechanistic", vec![0.12, 0.3])
            .series("neural", vec![0.2, f64::NAN])
            .series("hybrid", vec![0.05, 0.1]);
        let png = Figure::new(1).with(chart).render_png().unwrap();
        let (_, _, rgb) = decode(&png);
        for s in 0..3 {
            let c = palette(s);
            assert!(rgb.chunks(3).filter(|p| *p == [c.0, c.1, c.2]).count() > 100, "series {s}");
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let chart = BarChart::new("m", "v", vec!["a".into()]).series("x", vec![1.0, 2.0]);
        assert!(Figure::new(1).with(chart).render_png().is_err());
        assert!(Figure::new(1).with(BarChart::new("m", "v", vec![])).render_png().is_err());
    }
}
