//! Running scenarios outside `cargo test`: a verdict table for people and JUnit XML for CI.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::scenarios::{diagnostics, NotApplicable, Scenario};

/// How one scenario went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Scenario id.
    pub id: &'static str,
    /// Its statement.
    pub statement: &'static str,
    /// Its source.
    pub source: &'static str,
    /// `None` when it passed (or did not apply), else why it failed.
    pub failure: Option<String>,
    /// Why it did not apply to this target, when it did not.
    pub not_applicable: Option<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs `scenarios`, `parallel` at a time, in the order given.
pub async fn run_all(scenarios: Vec<Scenario>, parallel: usize) -> Vec<Outcome> {
    stream::iter(scenarios)
        .map(|s| async move {
            let started = Instant::now();
            let result = tokio::spawn(diagnostics::collect(s.body())).await;
            let mut not_applicable = None;
            let failure = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => match e.chain().find_map(|c| c.downcast_ref::<NotApplicable>()) {
                    Some(na) => {
                        not_applicable = Some(na.0.clone());
                        None
                    }
                    None => Some(format!("{e:#}")),
                },
                Err(e) => Some(format!("panicked: {e}")),
            };
            Outcome {
                id: s.id,
                statement: s.statement,
                source: s.source,
                failure,
                not_applicable,
                elapsed: started.elapsed(),
            }
        })
        .buffered(parallel.max(1))
        .collect()
        .await
}

/// The verdict table.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = format!(
        "{:<34} {:<7} {:>8}  {}\n",
        "scenario", "verdict", "time", "source"
    );
    for o in outcomes {
        let verdict = match (&o.failure, &o.not_applicable) {
            (Some(_), _) => "FAIL",
            (None, Some(_)) => "n/a",
            (None, None) => "pass",
        };
        out.push_str(&format!(
            "{:<34} {:<7} {:>7.2}s  {}\n",
            o.id,
            verdict,
            o.elapsed.as_secs_f64(),
            o.source
        ));
        if let Some(why) = o.failure.as_ref().or(o.not_applicable.as_ref()) {
            out.push_str(&format!("    {why}\n"));
        }
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let skipped = outcomes
        .iter()
        .filter(|o| o.not_applicable.is_some())
        .count();
    out.push_str(&format!(
        "{} passed, {} failed",
        outcomes.len() - failed - skipped,
        failed
    ));
    if skipped > 0 {
        out.push_str(&format!(", {skipped} not applicable"));
    }
    out.push('\n');
    out
}

/// For `--repeat`: the scenarios that failed in any run, worst first, each with why it
/// failed in every run it failed in (repeated here so that the end of a long log says it).
pub fn failures_per_scenario(runs: &[Vec<Outcome>]) -> String {
    let mut failed: Vec<(&str, Vec<(usize, &str)>)> = Vec::new();
    let mut scenarios = 0;
    for (run, outcomes) in runs.iter().enumerate() {
        scenarios = scenarios.max(outcomes.len());
        for outcome in outcomes {
            let Some(why) = outcome.failure.as_deref() else {
                continue;
            };
            match failed.iter_mut().find(|(id, _)| *id == outcome.id) {
                Some((_, whys)) => whys.push((run + 1, why)),
                None => failed.push((outcome.id, vec![(run + 1, why)])),
            }
        }
    }
    failed.sort_by_key(|(_, whys)| std::cmp::Reverse(whys.len()));
    let mut out = String::new();
    for (id, whys) in &failed {
        out.push_str(&format!(
            "{id}: failed in {} of {} runs\n",
            whys.len(),
            runs.len()
        ));
        for (run, why) in whys {
            out.push_str(&format!("    run {run}: {why}\n"));
        }
    }
    out.push_str(&format!(
        "{} of {} scenarios failed in at least one of {} runs\n",
        failed.len(),
        scenarios,
        runs.len()
    ));
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML, one `testcase` per scenario.
pub fn junit(outcomes: &[Outcome]) -> String {
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let skipped = outcomes
        .iter()
        .filter(|o| o.not_applicable.is_some())
        .count();
    let total: f64 = outcomes.iter().map(|o| o.elapsed.as_secs_f64()).sum();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"tether-conformance\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{total:.3}\">\n",
        outcomes.len()
    );
    for o in outcomes {
        let (family, _) = o.id.split_once('.').unwrap_or((o.id, ""));
        xml.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n      <properties><property name=\"statement\" value=\"{}\"/><property name=\"source\" value=\"{}\"/></properties>\n",
            escape(family),
            escape(o.id),
            o.elapsed.as_secs_f64(),
            escape(o.statement),
            escape(o.source)
        ));
        if let Some(why) = &o.failure {
            xml.push_str(&format!("      <failure message=\"{}\"/>\n", escape(why)));
        } else if let Some(why) = &o.not_applicable {
            xml.push_str(&format!("      <skipped message=\"{}\"/>\n", escape(why)));
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes() -> Vec<Outcome> {
        vec![
            Outcome {
                id: "auth.a",
                statement: "s <1>",
                source: "RFC",
                failure: None,
                not_applicable: None,
                elapsed: Duration::from_millis(1500),
            },
            Outcome {
                id: "auth.b",
                statement: "t",
                source: "c",
                failure: Some("broke & \"died\"".into()),
                not_applicable: None,
                elapsed: Duration::ZERO,
            },
        ]
    }

    #[test]
    fn junit_counts_and_escapes() {
        let xml = junit(&outcomes());
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"broke &amp; &quot;died&quot;\"/>"),
            "{xml}"
        );
        assert!(xml.contains("value=\"s &lt;1&gt;\""), "{xml}");
    }

    #[test]
    fn a_check_that_does_not_apply_is_skipped_with_its_reason() {
        let mut runs = outcomes();
        runs[0].not_applicable = Some("no session token given".into());
        let xml = junit(&runs);
        assert!(xml.contains("skipped=\"1\""), "{xml}");
        assert!(
            xml.contains("<skipped message=\"no session token given\"/>"),
            "{xml}"
        );
        let text = table(&runs);
        assert!(
            text.contains("auth.a                             n/a"),
            "{text}"
        );
        assert!(
            text.trim_end()
                .ends_with("0 passed, 1 failed, 1 not applicable"),
            "{text}"
        );
    }

    #[test]
    fn failures_are_counted_per_scenario_across_runs_with_why() {
        let mut second = outcomes();
        second[0].failure = Some("flaked".into());
        let text = failures_per_scenario(&[outcomes(), second]);
        assert!(
            text.contains("auth.a: failed in 1 of 2 runs\n    run 2: flaked"),
            "{text}"
        );
        assert!(text.contains("auth.b: failed in 2 of 2 runs"), "{text}");
        // Worst first.
        assert!(text.find("auth.b") < text.find("auth.a"), "{text}");
        assert!(
            text.ends_with("2 of 2 scenarios failed in at least one of 2 runs\n"),
            "{text}"
        );
        let clean = failures_per_scenario(&[vec![outcomes()[0].clone()]]);
        assert_eq!(clean, "0 of 1 scenarios failed in at least one of 1 runs\n");
    }

    #[test]
    fn table_ends_with_the_counts() {
        let text = table(&outcomes());
        assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");
        assert!(text.contains("auth.b") && text.contains("FAIL"));
    }
}
