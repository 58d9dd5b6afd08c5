//! The conformance report in a real browser (contract section 12): a run with one
//! reference-server rule broken on purpose (`TETHER_HARNESS_BREAK=iss`) writes a report
//! whose failures come first and open, with the offending response in the transcript;
//! headless Chromium loads it from `file://` and its DOM agrees with `results.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs Chromium headless on `page` with `args`; returns stdout.
fn headless(browser: &Path, page: &Path, args: &[&str]) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number in `<span class="n" id="count-<class>">N</span>`.
fn count_in(dom: &str, class: &str) -> u64 {
    let marker = format!("id=\"count-{class}\">");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in the page"))
        + marker.len();
    dom[at..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count after {marker}"))
}

#[test]
fn a_broken_rule_is_first_open_and_shows_the_response_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("dir");
    let report = dir.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_tether-harness"))
        .args(["e2e", "--filter", "standard.", "--report"])
        .arg(&report)
        .env("TETHER_HARNESS_BREAK", "iss")
        .output()
        .expect("run the harness");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken run must fail: {out:?}"
    );

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("results.json")).expect("results.json"))
            .expect("json");
    assert_eq!(results["schema"], 1);
    let first = &results["scenarios"][0];
    assert_eq!(first["outcome"], "fail", "{first}");
    let shown = first["transcript"].to_string();
    assert!(
        shown.contains("attacker.example") && shown.contains("302"),
        "the transcript does not show the response with the wrong iss: {shown}"
    );
    let page = std::fs::read_to_string(report.join("index.html")).expect("index.html");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "the page fetches something"
    );

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the browser test: install chromium (`bash .ci/setup`)"
        );
        eprintln!("chromium is not installed: the browser part is skipped");
        return;
    };
    let index = report.join("index.html");
    let dom = headless(&browser, &index, &["--dump-dom"]);
    page_agrees_with_results(&dom, &results);

    // The screenshot CI keeps.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-browser");
    std::fs::create_dir_all(&shots).expect("dir");
    let shot = shots.join("index.png");
    headless(
        &browser,
        &index,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
}

/// The rendered page's counts are results.json's, and its first scenario is the first
/// failure, open, showing the offending response.
fn page_agrees_with_results(dom: &str, results: &serde_json::Value) {
    for (name, class) in [
        ("pass", "pass"),
        ("fail", "fail"),
        ("non-strict", "non-strict"),
        ("informational", "informational"),
        ("n/a", "na"),
    ] {
        assert_eq!(
            count_in(dom, class),
            results["counts"][name].as_u64().expect("count"),
            "the page's {name} count is not results.json's"
        );
    }
    // The first scenario in the page is the first failure, open, its transcript shown.
    let first_details = dom.find("<details").expect("a scenario");
    let opening = &dom[first_details..first_details + dom[first_details..].find('>').expect(">")];
    let first = &results["scenarios"][0];
    let id = first["id"].as_str().expect("id");
    assert!(
        opening.contains(&format!("id=\"s-{id}\"")) && opening.contains("open"),
        "the first scenario is not {id}, open: {opening}"
    );
    let body_end = dom[first_details..].find("</details>").expect("end") + first_details;
    assert!(
        dom[first_details..body_end].contains("attacker.example"),
        "the open failure does not show the offending response"
    );
}
