//! Every plotting primitive once, on made-up data: a reference for demo authors.
//!
//! Run: `cargo run -p neurohybrid-cli --example plot_gallery -- /tmp/gallery` and open
//! `/tmp/gallery/index.html`.

use neurohybrid_cli::output::OutputDir;
use neurohybrid_cli::plot::{
    BarChart, Colormap, Field2d, Figure, GraphPlot, Heatmap, LinePlot, LineStyle, RED, Series,
    WHITE,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "out/gallery".into());
    let mut out = OutputDir::create(dir)?;
    let (nx, ny) = (48, 56);
    let inside = |x: usize, y: usize| {
        let (u, v) = ((x as f64 - 23.5) / 22.0, (y as f64 - 27.5) / 26.0);
        u * u + v * v < 1.0
    };
    let mask: Vec<bool> = (0..ny).flat_map(|y| (0..nx).map(move |x| inside(x, y))).collect();
    let blob = |t: f64| {
        Field2d::from_fn(nx, ny, move |x, y| {
            let r2 = (x as f64 - 30.0).powi(2) + (y as f64 - 34.0).powi(2);
            (-(r2) / (8.0 + 10.0 * t)).exp()
        })
    };
    let mut grid = Figure::new(3).title("density: truth vs model");
    for t in [1.0, 2.0, 4.0] {
        grid.push(
            Heatmap::new(format!("truth, day {}", 30.0 * t), blob(t))
                .mask(mask.clone())
                .range(0.0, 1.0)
                .contour(0.6, RED)
                .contour(0.16, WHITE),
        );
    }
    for t in [1.0, 2.0, 4.0] {
        grid.push(
            Heatmap::new(format!("hybrid, day {}", 30.0 * t), blob(0.9 * t))
                .mask(mask.clone())
                .range(0.0, 1.0)
                .contour(0.6, WHITE)
                .contour_of(blob(t), 0.6, RED, "truth core"),
        );
    }
    out.write_figure("heatmaps.png", "Heat maps with mask and contours", &grid)?;

    let it: Vec<f64> = (0..200).map(f64::from).collect();
    let loss = |a: f64| it.iter().map(|i| a * (-i / 40.0).exp() + 1e-3).collect::<Vec<_>>();
    let t: Vec<f64> = (0..40).map(|i| i as f64 * 0.5).collect();
    let traj: Vec<f64> = t.iter().map(|t| 1.0 / (1.0 + (-(t - 8.0) / 2.0).exp())).collect();
    let lo: Vec<f64> = traj.iter().map(|y| y - 0.08).collect();
    let hi: Vec<f64> = traj.iter().map(|y| y + 0.08).collect();
    let lines = Figure::new(2)
        .panel_size(480, 340)
        .with(
            LinePlot::new("training loss", "iteration", "loss")
                .log_y()
                .series(Series::new("mechanistic", it.clone(), loss(1.0)))
                .series(Series::new("neural", it.clone(), loss(3.0)))
                .series(Series::new("hybrid", it.clone(), loss(0.5))),
        )
        .with(
            LinePlot::new("regional trajectory", "years", "SUVR")
                .series(Series::new("prediction", t.clone(), traj.clone()).band(lo, hi))
                .series(
                    Series::new(
                        "observed",
                        t.iter().step_by(8).copied().collect(),
                        traj.iter().step_by(8).copied().collect(),
                    )
                    .style(LineStyle::Markers),
                )
                .series(
                    Series::new("mechanistic", t.clone(), traj.iter().map(|y| 0.8 * y).collect())
                        .style(LineStyle::Dashed),
                )
                .vline(10.0, "last visit"),
        );
    out.write_figure("lines.png", "Line plots: log-y, bands, markers, dashed, vline", &lines)?;

    let bars = Figure::new(1).panel_size(520, 340).with(
        BarChart::new(
            "held-out metrics",
            "value",
            vec!["RMSE".into(), "1 - Dice".into(), "volume err".into()],
        )
        .series("mechanistic", vec![0.05, 0.2, 0.15])
        .series("neural", vec![0.08, 0.35, 0.3])
        .series("hybrid", vec![0.02, 0.1, 0.05]),
    );
    out.write_figure("bars.png", "Grouped bar chart", &bars)?;

    let n = 68;
    let pos: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            let r = if i % 2 == 0 { 1.0 } else { 0.6 };
            [r * a.cos() * 0.8, r * a.sin()]
        })
        .collect();
    let edges: Vec<(usize, usize, f64)> =
        (0..n).flat_map(|i| [(i, (i + 1) % n, 1.0), (i, (i + 7) % n, 0.3)]).collect();
    let mut graphs = Figure::new(3).title("concentration on the connectome");
    for (k, t) in [0.0, 5.0, 10.0].iter().enumerate() {
        let vals: Vec<f64> =
            (0..n).map(|i| (-(i as f64 - 10.0).abs() / (1.0 + 3.0 * t)).exp()).collect();
        graphs.push(
            GraphPlot::new(format!("year {}", 5 * k), pos.clone(), vals, edges.clone())
                .range(0.0, 1.0)
                .colormap(Colormap::Inferno),
        );
    }
    out.write_figure("graph.png", "Graph drawing", &graphs)?;
    out.write_index("plot gallery", &["Every plotting primitive of neurohybrid-cli."], None)?;
    println!("wrote {}", out.root().display());
    Ok(())
}
