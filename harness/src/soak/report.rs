//! The soak's report: `soak.json` (every sample, event and invariant) and `soak.svg`
//! (RSS, fds, threads, relay connections and output over time, events marked), drawn with
//! plotters.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

use super::sampler::Sample;
use super::schedule::Chaos;

/// A disruption as it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Seconds from the start.
    pub at_s: f64,
    /// What.
    pub chaos: Chaos,
    /// How it went (an error, if it could not be done).
    pub outcome: String,
}

/// One invariant's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The invariant.
    pub invariant: String,
    /// `None`: held; else why not.
    pub broken: Option<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The schedule's seed.
    pub seed: u64,
    /// How long it ran.
    pub minutes: f64,
    /// The disruptions.
    pub events: Vec<Event>,
    /// Every sample.
    pub samples: Vec<Sample>,
    /// Every invariant.
    pub verdicts: Vec<Verdict>,
    /// Lines printed, typed and echoed, terminals churned.
    pub traffic: serde_json::Value,
}

/// Writes `dir/soak.json` and `dir/soak.svg`.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("soak.json"), serde_json::to_vec_pretty(report)?)?;
    draw(report, &dir.join("soak.svg")).context("drawing soak.svg")
}

type Series<'a> = (&'a str, RGBColor, Box<dyn Fn(&Sample) -> Option<f64> + 'a>);

fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let host_rss: Series = (
        "host RSS MiB",
        BLUE,
        Box::new(|s| s.host.map(|p| p.rss_kib as f64 / 1024.0)),
    );
    let ptyd_rss: Series = (
        "ptyd RSS MiB",
        RED,
        Box::new(|s| s.ptyd.map(|p| p.rss_kib as f64 / 1024.0)),
    );
    let host_fds: Series = ("host fds", BLUE, Box::new(|s| s.host.map(|p| p.fds as f64)));
    let ptyd_fds: Series = ("ptyd fds", RED, Box::new(|s| s.ptyd.map(|p| p.fds as f64)));
    let host_threads: Series = (
        "host threads",
        CYAN,
        Box::new(|s| s.host.map(|p| p.threads as f64)),
    );
    let ptyd_threads: Series = (
        "ptyd threads",
        MAGENTA,
        Box::new(|s| s.ptyd.map(|p| p.threads as f64)),
    );
    let connects: Series = (
        "relay connects",
        GREEN,
        Box::new(|s| Some(s.relay_connects)),
    );
    let output: Series = (
        "output MiB",
        BLACK,
        Box::new(|s| Some(s.output_bytes / 1048576.0)),
    );
    let charts: [(&str, Vec<Series>); 3] = [
        ("memory", vec![host_rss, ptyd_rss]),
        (
            "descriptors and threads",
            vec![host_fds, ptyd_fds, host_threads, ptyd_threads],
        ),
        (
            "relay connections and output (per host process)",
            vec![connects, output],
        ),
    ];
    for (panel, (title, series)) in panels.iter().zip(charts) {
        draw_panel(report, panel, title, &series)?;
    }
    root.present()?;
    Ok(())
}

/// One panel: its series over the run's seconds, a grey line at each disruption.
fn draw_panel(
    report: &Report,
    panel: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    let end = report.minutes * 60.0;
    let top = report
        .samples
        .iter()
        .flat_map(|s| series.iter().filter_map(move |(_, _, f)| f(s)))
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(panel)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end.max(1.0), 0.0..top)?;
    chart.configure_mesh().x_desc("seconds").draw()?;
    for event in &report.events {
        chart.draw_series(LineSeries::new(
            [(event.at_s, 0.0), (event.at_s, top)],
            RGBColor(200, 200, 200).stroke_width(1),
        ))?;
    }
    for (name, colour, figure) in series {
        let points: Vec<(f64, f64)> = report
            .samples
            .iter()
            .filter_map(|s| figure(s).map(|v| (s.at_s, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], *colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
