//! Heat maps of 2D fields with a mask, a colour bar and iso-contours.
//!
//! Drawn in pixel space (no axes) so cells stay square whatever the panel's aspect ratio;
//! row `y = 0` is at the bottom, like a radiological slice with anterior up.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::colormap::{Colormap, finite_range};
use super::{BLACK, PlotError, backend_err, draw_title, fmt_num, input_err, text_style};

/// A 2D field on an `nx × ny` grid, `values[x + nx * y]` (x fastest, `y = 0` at the bottom).
#[derive(Debug, Clone, PartialEq)]
pub struct Field2d {
    nx: usize,
    ny: usize,
    values: Vec<f64>,
}

impl Field2d {
    /// Wraps `values` (length `nx * ny`, x fastest).
    pub fn new(nx: usize, ny: usize, values: Vec<f64>) -> Result<Self, PlotError> {
        if nx == 0 || ny == 0 || values.len() != nx * ny {
            return Err(input_err(
                "field",
                format!("{} values for a {nx} x {ny} field", values.len()),
            ));
        }
        Ok(Self { nx, ny, values })
    }

    /// Evaluates `f(x, y)` on every cell.
    pub fn from_fn(nx: usize, ny: usize, f: impl Fn(usize, usize) -> f64) -> Self {
        let values = (0..ny).flat_map(|y| (0..nx).map(move |x| (x, y))).map(|(x, y)| f(x, y));
        Self { nx, ny, values: values.collect() }
    }

    /// Width (cells along x).
    pub fn nx(&self) -> usize {
        self.nx
    }

    /// Height (cells along y).
    pub fn ny(&self) -> usize {
        self.ny
    }

    /// The values, x fastest.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The value at `(x, y)`.
    pub fn get(&self, x: usize, y: usize) -> f64 {
        self.values[x + self.nx * y]
    }
}

/// An iso-contour of a field at `level` (of the heat map's own field, or of another field on
/// the same grid — e.g. the true segmentation drawn over a model's prediction).
#[derive(Debug, Clone, PartialEq)]
pub struct Contour {
    /// The contoured field; `None` contours the heat map's own field.
    pub field: Option<Field2d>,
    /// The iso-level.
    pub level: f64,
    /// Line colour.
    pub color: RGBColor,
    /// Line width in pixels.
    pub width: u32,
    /// Legend text (drawn under the map); empty for none.
    pub label: String,
}

/// A heat map panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Panel title.
    pub title: String,
    /// The field.
    pub field: Field2d,
    /// Cells to draw (`true`); others are left light gray. Length `nx * ny`.
    pub mask: Option<Vec<bool>>,
    /// Colour range; `None` spans the finite values inside the mask.
    pub range: Option<(f64, f64)>,
    /// Colour map.
    pub colormap: Colormap,
    /// Iso-contours drawn on top.
    pub contours: Vec<Contour>,
    /// Whether to draw a colour bar (default `true`).
    pub colorbar: bool,
}

const OUTSIDE: RGBColor = RGBColor(225, 225, 225);

impl Heatmap {
    /// A heat map of `field` with the default colour map and a colour bar.
    pub fn new(title: impl Into<String>, field: Field2d) -> Self {
        Self {
            title: title.into(),
            field,
            mask: None,
            range: None,
            colormap: Colormap::default(),
            contours: Vec::new(),
            colorbar: true,
        }
    }

    /// Only cells with `mask[i]` are coloured.
    pub fn mask(mut self, mask: Vec<bool>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Fixes the colour range (use one range for panels that are compared).
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    /// Sets the colour map.
    pub fn colormap(mut self, colormap: Colormap) -> Self {
        self.colormap = colormap;
        self
    }

    /// Hides the colour bar.
    pub fn no_colorbar(mut self) -> Self {
        self.colorbar = false;
        self
    }

    /// Adds an iso-contour of the heat map's own field.
    pub fn contour(mut self, level: f64, color: RGBColor) -> Self {
        self.contours.push(Contour { field: None, level, color, width: 2, label: String::new() });
        self
    }

    /// Adds a labelled iso-contour of another field on the same grid.
    pub fn contour_of(
        mut self,
        field: Field2d,
        level: f64,
        color: RGBColor,
        label: impl Into<String>,
    ) -> Self {
        self.contours.push(Contour {
            field: Some(field),
            level,
            color,
            width: 2,
            label: label.into(),
        });
        self
    }

    fn check(&self) -> Result<(), PlotError> {
        let n = self.field.values.len();
        if let Some(m) = &self.mask
            && m.len() != n
        {
            return Err(input_err(
                &self.title,
                format!("mask of {} cells for {n} values", m.len()),
            ));
        }
        if let Some((lo, hi)) = self.range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(input_err(&self.title, format!("colour range [{lo}, {hi}]")));
        }
        for c in &self.contours {
            if let Some(f) = &c.field
                && (f.nx, f.ny) != (self.field.nx, self.field.ny)
            {
                return Err(input_err(
                    &self.title,
                    format!(
                        "contour field {} x {} on a {} x {} map",
                        f.nx, f.ny, self.field.nx, self.field.ny
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn draw(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, Shift>,
    ) -> Result<(), PlotError> {
        self.check()?;
        let (w, h) = area.dim_in_pixel();
        let top = draw_title(area, &self.title)? as i32;
        let legend_h = if self.contours.iter().any(|c| !c.label.is_empty()) { 18 } else { 0 };
        let bar_w = if self.colorbar { 62 } else { 0 };
        let (nx, ny) = (self.field.nx, self.field.ny);
        let avail_w = (w as i32 - bar_w - 8).max(1) as f64;
        let avail_h = (h as i32 - top - legend_h - 6).max(1) as f64;
        let cell = (avail_w / nx as f64).min(avail_h / ny as f64);
        let x0 = 4.0 + (avail_w - cell * nx as f64) / 2.0;
        let y0 = top as f64 + (avail_h - cell * ny as f64) / 2.0;
        let (lo, hi) = self
            .range
            .unwrap_or_else(|| finite_range(self.field.values.iter(), self.mask.as_deref()));

        // Cells: pixel rectangles whose edges are rounded from the exact cell boundaries, so
        // neighbours tile without gaps.
        let px = |i: usize| (x0 + i as f64 * cell).round() as i32;
        let py = |j: usize| (y0 + (ny - j) as f64 * cell).round() as i32; // top edge of row j-1
        for j in 0..ny {
            for i in 0..nx {
                let k = i + nx * j;
                let inside = self.mask.as_ref().is_none_or(|m| m[k]);
                let v = self.field.values[k];
                let color = if !inside {
                    OUTSIDE
                } else if v.is_finite() {
                    self.colormap.map(v, lo, hi)
                } else {
                    BLACK
                };
                area.draw(&Rectangle::new(
                    [(px(i), py(j + 1)), (px(i + 1), py(j))],
                    color.filled(),
                ))
                .map_err(backend_err)?;
            }
        }
        // Contours: marching squares between cell centres.
        let to_px = |x: f64, y: f64| {
            (
                (x0 + (x + 0.5) * cell).round() as i32,
                (y0 + (ny as f64 - y - 0.5) * cell).round() as i32,
            )
        };
        for c in &self.contours {
            let field = c.field.as_ref().unwrap_or(&self.field);
            let style = ShapeStyle::from(&c.color).stroke_width(c.width);
            for [(ax, ay), (bx, by)] in iso_segments(field, c.level) {
                area.draw(&PathElement::new(vec![to_px(ax, ay), to_px(bx, by)], style))
                    .map_err(backend_err)?;
            }
        }
        // Contour legend.
        let mut lx = x0 as i32;
        let ly = h as i32 - legend_h + 4;
        for c in self.contours.iter().filter(|c| !c.label.is_empty()) {
            let style = ShapeStyle::from(&c.color).stroke_width(3);
            area.draw(&PathElement::new(vec![(lx, ly + 6), (lx + 18, ly + 6)], style))
                .map_err(backend_err)?;
            area.draw(&Text::new(c.label.clone(), (lx + 22, ly), text_style(12)))
                .map_err(backend_err)?;
            lx += 30 + 7 * c.label.chars().count() as i32;
        }
        if self.colorbar {
            let bx = (x0 + cell * nx as f64).round() as i32 + 10;
            let (by0, by1) = (y0.round() as i32, (y0 + cell * ny as f64).round() as i32);
            draw_colorbar(area, self.colormap, (lo, hi), bx, by0, by1)?;
        }
        Ok(())
    }
}

/// A vertical colour bar at `x` from `y_top` to `y_bottom` with min / mid / max labels.
pub(crate) fn draw_colorbar(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    colormap: Colormap,
    (lo, hi): (f64, f64),
    x: i32,
    y_top: i32,
    y_bottom: i32,
) -> Result<(), PlotError> {
    let height = (y_bottom - y_top).max(2);
    for k in 0..height {
        let s = 1.0 - k as f64 / (height - 1) as f64;
        area.draw(&Rectangle::new(
            [(x, y_top + k), (x + 12, y_top + k + 1)],
            colormap.at(s).filled(),
        ))
        .map_err(backend_err)?;
    }
    area.draw(&Rectangle::new([(x, y_top), (x + 12, y_top + height)], BLACK.stroke_width(1)))
        .map_err(backend_err)?;
    for (frac, v) in [(0.0, hi), (0.5, 0.5 * (lo + hi)), (1.0, lo)] {
        let y = y_top + (frac * height as f64) as i32 - 6;
        area.draw(&Text::new(fmt_num(v), (x + 15, y), text_style(11))).map_err(backend_err)?;
    }
    Ok(())
}

/// Marching squares: the line segments of `{field = level}` in cell-centre coordinates
/// (cell `(i, j)` has its centre at `(i, j)`), linear interpolation along square edges;
/// saddles are resolved by the mean of the four corners (the usual asymptotic-decider-free
/// choice, adequate for display).
pub fn iso_segments(field: &Field2d, level: f64) -> Vec<[(f64, f64); 2]> {
    let mut out = Vec::new();
    let (nx, ny) = (field.nx, field.ny);
    if nx < 2 || ny < 2 {
        return out;
    }
    for j in 0..ny - 1 {
        for i in 0..nx - 1 {
            // Corners counter-clockwise from bottom-left.
            let v = [
                field.get(i, j),
                field.get(i + 1, j),
                field.get(i + 1, j + 1),
                field.get(i, j + 1),
            ];
            if v.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let p = [
                (i as f64, j as f64),
                ((i + 1) as f64, j as f64),
                ((i + 1) as f64, (j + 1) as f64),
                (i as f64, (j + 1) as f64),
            ];
            let above: [bool; 4] = std::array::from_fn(|k| v[k] > level);
            // Crossing point on edge k (between corner k and k+1).
            let cross = |k: usize| {
                let (a, b) = (k, (k + 1) % 4);
                let t = (level - v[a]) / (v[b] - v[a]);
                (p[a].0 + t * (p[b].0 - p[a].0), p[a].1 + t * (p[b].1 - p[a].1))
            };
            let edges: Vec<usize> = (0..4).filter(|&k| above[k] != above[(k + 1) % 4]).collect();
            match edges.len() {
                2 => out.push([cross(edges[0]), cross(edges[1])]),
                4 => {
                    // Saddle: corners 0 and 2 on one side, 1 and 3 on the other.
                    let centre_above = v.iter().sum::<f64>() / 4.0 > level;
                    if centre_above == above[0] {
                        // Corners 0, 2 connect through the centre: cut off corners 1 and 3.
                        out.push([cross(0), cross(1)]);
                        out.push([cross(2), cross(3)]);
                    } else {
                        out.push([cross(3), cross(0)]);
                        out.push([cross(1), cross(2)]);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Figure, RED, WHITE};
    use super::*;

    #[test]
    fn circle_contour_lies_on_the_circle() {
        let (c, r) = (10.0, 6.3);
        let f = Field2d::from_fn(21, 21, |x, y| (x as f64 - c).hypot(y as f64 - c));
        let segs = iso_segments(&f, r);
        assert!(segs.len() > 30);
        for s in &segs {
            for (x, y) in s {
                // Linear interpolation of the distance function is exact along axis-aligned
                // edges up to its curvature: error below 0.05 cells for r = 6.3.
                assert!(((x - c).hypot(y - c) - r).abs() < 0.05, "({x}, {y})");
            }
        }
        // Closed curve: every endpoint is shared by exactly two segments.
        let key = |(x, y): (f64, f64)| ((x * 1e6).round() as i64, (y * 1e6).round() as i64);
        let mut count = std::collections::HashMap::new();
        for s in &segs {
            for p in s {
                *count.entry(key(*p)).or_insert(0) += 1;
            }
        }
        assert!(count.values().all(|&n| n == 2));
    }

    #[test]
    fn constant_field_has_no_contour() {
        let f = Field2d::from_fn(5, 4, |_, _| 1.0);
        assert!(iso_segments(&f, 0.5).is_empty());
        assert!(iso_segments(&f, 1.5).is_empty());
    }

    #[test]
    fn heatmap_colours_cells_and_mask() {
        // Left half 0, right half 1, mask off the top row: the rendered panel must contain
        // the colour map's two end colours and the outside gray.
        let f = Field2d::from_fn(8, 8, |x, _| if x < 4 { 0.0 } else { 1.0 });
        let mask: Vec<bool> = (0..64).map(|k| k / 8 != 7).collect();
        let hm = Heatmap::new("", f).mask(mask).range(0.0, 1.0).no_colorbar();
        let (rgb, w, h) = Figure::new(1).panel_size(100, 100).with(hm).render_rgb().unwrap();
        let has = |c: RGBColor| rgb.chunks(3).any(|p| p == [c.0, c.1, c.2]);
        assert!(has(Colormap::Viridis.at(0.0)) && has(Colormap::Viridis.at(1.0)) && has(OUTSIDE));
        assert_eq!((w, h), (100, 100));
    }

    #[test]
    fn contour_of_a_mismatched_field_is_an_error() {
        let f = Field2d::from_fn(8, 8, |x, _| x as f64);
        let g = Field2d::from_fn(4, 8, |x, _| x as f64);
        let hm = Heatmap::new("pred", f).contour_of(g, 0.5, RED, "truth").contour(1.0, WHITE);
        let err = Figure::new(1).with(hm).render_png().unwrap_err();
        assert!(err.to_string().contains("pred"), "{err}");
        assert!(Field2d::new(3, 3, vec![0.0; 8]).is_err());
    }
}
