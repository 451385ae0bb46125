//! Graph drawings: nodes at 2D positions coloured by a value, edges shaded by weight — a
//! connectome seen from above.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::colormap::{Colormap, finite_range};
use super::heatmap::draw_colorbar;
use super::{BLACK, PlotError, backend_err, draw_title, input_err};

/// A graph panel.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphPlot {
    /// Panel title.
    pub title: String,
    /// Node positions (any units; the drawing keeps the aspect ratio).
    pub positions: Vec<[f64; 2]>,
    /// One value per node, coloured by `colormap` over `range`.
    pub values: Vec<f64>,
    /// Undirected edges `(i, j, weight)`; shade and width grow with `weight / max weight`.
    pub edges: Vec<(usize, usize, f64)>,
    /// Colour range; `None` spans the values.
    pub range: Option<(f64, f64)>,
    /// Colour map.
    pub colormap: Colormap,
    /// Node radius in pixels.
    pub node_radius: u32,
    /// Edges lighter than this fraction of the heaviest edge are not drawn (default 0.05).
    pub min_edge_fraction: f64,
}

impl GraphPlot {
    /// A graph with node values and edges.
    pub fn new(
        title: impl Into<String>,
        positions: Vec<[f64; 2]>,
        values: Vec<f64>,
        edges: Vec<(usize, usize, f64)>,
    ) -> Self {
        Self {
            title: title.into(),
            positions,
            values,
            edges,
            range: None,
            colormap: Colormap::default(),
            node_radius: 6,
            min_edge_fraction: 0.05,
        }
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

    fn check(&self) -> Result<(), PlotError> {
        let n = self.positions.len();
        if n == 0 || self.values.len() != n {
            return Err(input_err(
                &self.title,
                format!("{} positions and {} values", n, self.values.len()),
            ));
        }
        if let Some(&(i, j, _)) = self.edges.iter().find(|(i, j, _)| *i >= n || *j >= n) {
            return Err(input_err(&self.title, format!("edge ({i}, {j}) on {n} nodes")));
        }
        if self.positions.iter().flatten().any(|x| !x.is_finite()) {
            return Err(input_err(&self.title, "non-finite node position"));
        }
        Ok(())
    }

    pub(crate) fn draw(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, Shift>,
    ) -> Result<(), PlotError> {
        self.check()?;
        let (w, h) = area.dim_in_pixel();
        let top = draw_title(area, &self.title)? as f64;
        let r = self.node_radius as f64;
        let bar_w = 62.0;
        let (avail_w, avail_h) = (w as f64 - bar_w - 2.0 * r - 8.0, h as f64 - top - 2.0 * r - 6.0);
        let xs = finite_range(self.positions.iter().map(|p| &p[0]), None);
        let ys = finite_range(self.positions.iter().map(|p| &p[1]), None);
        let scale = (avail_w / (xs.1 - xs.0)).min(avail_h / (ys.1 - ys.0)).max(1e-12);
        let x0 = 4.0 + r + (avail_w - scale * (xs.1 - xs.0)) / 2.0;
        let y0 = top + r + (avail_h - scale * (ys.1 - ys.0)) / 2.0;
        let to_px = |p: [f64; 2]| {
            (
                (x0 + scale * (p[0] - xs.0)).round() as i32,
                (y0 + scale * (ys.1 - p[1])).round() as i32,
            )
        };
        let w_max = self.edges.iter().map(|e| e.2.abs()).fold(0.0, f64::max);
        let mut edges: Vec<_> = self
            .edges
            .iter()
            .filter(|e| w_max > 0.0 && e.2.abs() >= self.min_edge_fraction * w_max)
            .collect();
        // Light edges first so strong ones stay visible on top.
        edges.sort_by(|a, b| a.2.abs().total_cmp(&b.2.abs()));
        for &&(i, j, wt) in &edges {
            let f = wt.abs() / w_max;
            let shade = (200.0 - 150.0 * f) as u8;
            let style = ShapeStyle::from(&RGBColor(shade, shade, shade)).stroke_width(if f > 0.5 {
                2
            } else {
                1
            });
            area.draw(&PathElement::new(
                vec![to_px(self.positions[i]), to_px(self.positions[j])],
                style,
            ))
            .map_err(backend_err)?;
        }
        let (lo, hi) = self.range.unwrap_or_else(|| finite_range(self.values.iter(), None));
        for (p, &v) in self.positions.iter().zip(&self.values) {
            let c = to_px(*p);
            area.draw(&Circle::new(c, self.node_radius, self.colormap.map(v, lo, hi).filled()))
                .map_err(backend_err)?;
            area.draw(&Circle::new(c, self.node_radius, BLACK.stroke_width(1)))
                .map_err(backend_err)?;
        }
        let bx = (w as f64 - bar_w + 6.0) as i32;
        draw_colorbar(area, self.colormap, (lo, hi), bx, top as i32 + 4, h as i32 - 10)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Figure;
    use super::*;

    #[test]
    fn ring_graph_renders_nodes_in_map_colours() {
        let n = 12;
        let pos: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                [a.cos(), a.sin()]
            })
            .collect();
        let vals: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let edges: Vec<_> = (0..n).map(|i| (i, (i + 1) % n, 1.0 + i as f64)).collect();
        let g = GraphPlot::new("ring", pos, vals, edges).range(0.0, (n - 1) as f64);
        let (rgb, _, _) = Figure::new(1).with(g).render_rgb().unwrap();
        let c = Colormap::Viridis.at(1.0);
        // The node with the largest value (and the colour bar's top) carry the map's end colour.
        assert!(rgb.chunks(3).filter(|p| *p == [c.0, c.1, c.2]).count() > 20);
    }

    #[test]
    fn bad_edges_are_errors() {
        let g = GraphPlot::new("g", vec![[0.0, 0.0]; 2], vec![0.0; 2], vec![(0, 2, 1.0)]);
        assert!(Figure::new(1).with(g).render_png().unwrap_err().to_string().contains("edge"));
        let g = GraphPlot::new("g", vec![[0.0, 0.0]; 2], vec![0.0; 3], vec![]);
        assert!(Figure::new(1).with(g).render_png().is_err());
    }
}
