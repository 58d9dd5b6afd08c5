//! `target/bench/index.html`: the benchmark figures as one self-contained page (the same
//! kind as the conformance report), with SVG charts drawn by plotters — the keystroke echo
//! distribution of tether and OpenSSH, and `cat` throughput beside OpenSSH and the bare
//! kernel pty — and the table of figures against their targets.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde_json::json;

use super::{percentile, Report};

/// The page's template.
const TEMPLATE: &str = include_str!("index.html.j2");

/// Writes the page to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let echo_ms: Vec<f64> = report
        .echoes
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let openssh_ms = report
        .openssh
        .as_ref()
        .map(|s| s.echo_samples_ms.clone())
        .unwrap_or_default();
    let cdf = echo_chart(&echo_ms, &openssh_ms)?;
    let mut bars = vec![
        (
            "tether (relay → host → ptyd)",
            report.mib / report.through.as_secs_f64(),
        ),
        (
            "bare kernel pty (script)",
            report.mib / report.raw.as_secs_f64(),
        ),
    ];
    if let Ok(ssh) = &report.openssh {
        bars.push(("OpenSSH (ssh -tt)", ssh.cat_mib_s));
    }
    let throughput = throughput_chart(&bars)?;
    let rows = rows(report, (bars[0].1, bars[1].1));
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("bench", TEMPLATE)?;
    let page = env.get_template("bench")?.render(minijinja::context! {
        rows => rows,
        samples => echo_ms.len(),
        // The SVG is plotters' own output, inlined as markup.
        echo_svg => minijinja::Value::from_safe_string(cdf),
        throughput_svg => minijinja::Value::from_safe_string(throughput),
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))
}

/// The table of figures and their targets.
fn rows(report: &Report, (through_mib_s, raw_mib_s): (f64, f64)) -> Vec<serde_json::Value> {
    let q = |p: f64| percentile(&report.echoes, p).as_secs_f64() * 1000.0;
    let mut rows = vec![
        json!([
            "host start --daemon → healthy (median of 7)",
            format!(
                "{:.1} ms",
                percentile(&report.starts, 0.5).as_secs_f64() * 1000.0
            ),
            "< 100 ms"
        ]),
        json!(["keystroke echo p50", format!("{:.3} ms", q(0.5)), ""]),
        json!(["keystroke echo p99", format!("{:.3} ms", q(0.99)), "< 5 ms"]),
        json!([
            format!("cat {:.0} MiB through tether", report.mib),
            format!("{:.1} MiB/s", through_mib_s),
            "≥ 90 % of the kernel pty"
        ]),
        json!([
            format!("cat {:.0} MiB on the kernel pty", report.mib),
            format!("{:.1} MiB/s", raw_mib_s),
            ""
        ]),
        json!([
            "tether-host RSS with 10 terminals",
            format!("{:.1} MiB", report.rss_kib as f64 / 1024.0),
            "< 20 MiB"
        ]),
        json!([
            "peak RSS, cat /dev/zero, relay not reading",
            format!(
                "host {:.1} / ptyd {:.1} MiB",
                report.host_peak_kib as f64 / 1024.0,
                report.ptyd_peak_kib as f64 / 1024.0
            ),
            "< 64 MiB each"
        ]),
    ];
    match &report.openssh {
        Ok(ssh) => {
            rows.push(json!([
                format!("OpenSSH echo p50 / p99 ({})", ssh.version),
                format!("{:.3} / {:.3} ms", ssh.echo_ms.0, ssh.echo_ms.1),
                "tether ≤ OpenSSH"
            ]));
            rows.push(json!([
                "OpenSSH cat",
                format!("{:.1} MiB/s", ssh.cat_mib_s),
                ""
            ]));
        }
        Err(why) => rows.push(json!(["OpenSSH", format!("not measured: {why}"), ""])),
    }
    if let Some(b) = &report.burst {
        rows.push(json!([
            format!("{} terminals, session.open every 2 ms", b.terminals),
            format!("first {:.0} ms, all {:.0} ms", b.first_ms, b.all_ms),
            "first ≤ 50 ms, all ≤ 5 s"
        ]));
        rows.push(json!([
            format!("tether-ptyd with {} open", b.terminals),
            format!(
                "{} threads, {} fds, {:.1} MiB",
                b.ptyd_threads,
                b.ptyd_fds,
                b.ptyd_rss_kib as f64 / 1024.0
            ),
            "≤ 8 threads, ≤ 64 MiB"
        ]));
    }
    rows
}

/// The echo latency distribution (cumulative share of samples under each latency).
fn echo_chart(tether_ms: &[f64], openssh_ms: &[f64]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let max = tether_ms
            .iter()
            .chain(openssh_ms)
            .copied()
            .fold(0.1f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "keystroke echo: share of samples at or under a latency",
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..max * 1.05, 0f64..1f64)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("ms")
            .y_desc("share")
            .draw()
            .map_err(draw_error)?;
        for (name, samples, color) in [("tether", tether_ms, BLUE), ("OpenSSH", openssh_ms, RED)] {
            if samples.is_empty() {
                continue;
            }
            let n = samples.len() as f64;
            let points = samples
                .iter()
                .enumerate()
                .map(|(i, ms)| (*ms, (i + 1) as f64 / n));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(draw_error)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// `cat` throughput bars.
fn throughput_chart(bars: &[(&str, f64)]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 80 + 50 * bars.len() as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let max = bars.iter().map(|(_, v)| *v).fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption("cat throughput, MiB/s", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(10)
            .build_cartesian_2d(0f64..max * 1.15, 0f64..bars.len() as f64)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("MiB/s")
            .draw()
            .map_err(draw_error)?;
        for (i, (name, value)) in bars.iter().enumerate() {
            let y = i as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.2), (*value, y + 0.8)],
                    Palette99::pick(i).filled(),
                )))
                .map_err(draw_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{name}: {value:.1}"),
                    (max * 0.02, y + 0.5),
                    ("sans-serif", 13),
                )))
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_page_holds_both_charts_and_every_figure() {
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        let report = Report {
            starts: vec![ms(40.0); 7],
            echoes: (1..=100).map(|i| ms(0.2 + i as f64 / 1000.0)).collect(),
            mib: 100.0,
            through: Duration::from_secs(1),
            raw: Duration::from_millis(800),
            rss_kib: 6000,
            host_peak_kib: 9000,
            ptyd_peak_kib: 7000,
            openssh: Ok(super::super::openssh::OpenSsh {
                version: "OpenSSH_9.2p1".into(),
                echo_ms: (0.13, 0.24),
                cat_mib_s: 81.0,
                echo_samples_ms: (1..=100).map(|i| 0.1 + i as f64 / 1000.0).collect(),
            }),
            burst: None,
        };
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("index.html");
        write(&report, &path).expect("write");
        // minijinja escapes `/` too.
        let page = std::fs::read_to_string(&path)
            .expect("read")
            .replace("&#x2f;", "/");
        assert_eq!(page.matches("<svg").count(), 2, "two charts inline");
        for figure in [
            "100.0 MiB/s",
            "125.0 MiB/s",
            "81.0 MiB/s",
            "OpenSSH_9.2p1",
            "5.9 MiB",
        ] {
            assert!(page.contains(figure), "{figure} missing");
        }
        assert!(!page.contains("src=\"http"), "the page fetches something");
    }
}
