//! Running scenarios outside `cargo test`: a verdict table for people, JUnit XML for CI,
//! and the conformance report (contract section 12: `index.html`, `results.json`).

pub mod files;

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::scenarios::{diagnostics, Informational, NonStrict, NotApplicable, Scenario};
use crate::transcript::{self, Event, Transcript};

/// The outcomes of section 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every MUST held.
    Pass,
    /// A MUST of the contract or an RFC was broken.
    Fail,
    /// A SHOULD was not met: reported, does not fail the run.
    NonStrict,
    /// Behaviour the contract leaves open, recorded.
    Informational,
    /// The check does not apply to this target (with the reason).
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Verdict {
    /// As the report and the table write it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NonStrict => "non-strict",
            Verdict::Informational => "informational",
            Verdict::NotApplicable => "n/a",
        }
    }
}

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
    /// The SHOULD it found unmet, or the open behaviour it recorded.
    pub soft: Option<(Verdict, String)>,
    /// Wall time.
    pub elapsed: Duration,
    /// What crossed the edges while it ran.
    pub transcript: Vec<Event>,
    /// Events left out of the transcript (it keeps the first few hundred).
    pub omitted: usize,
}

impl Outcome {
    /// Its verdict.
    pub fn verdict(&self) -> Verdict {
        match (&self.failure, &self.not_applicable, &self.soft) {
            (Some(_), _, _) => Verdict::Fail,
            (None, Some(_), _) => Verdict::NotApplicable,
            (None, None, Some((verdict, _))) => *verdict,
            (None, None, None) => Verdict::Pass,
        }
    }

    /// Why it is not a plain pass, when it is not.
    pub fn reason(&self) -> Option<&str> {
        self.failure
            .as_deref()
            .or(self.not_applicable.as_deref())
            .or(self.soft.as_ref().map(|(_, why)| why.as_str()))
    }
}

/// Runs `scenarios`, `parallel` at a time, in the order given.
pub async fn run_all(scenarios: Vec<Scenario>, parallel: usize) -> Vec<Outcome> {
    stream::iter(scenarios)
        .map(|s| async move {
            let started = Instant::now();
            let recorded = Transcript::new();
            let body = transcript::scope(recorded.clone(), diagnostics::collect(s.body()));
            let result = tokio::spawn(body).await;
            let mut not_applicable = None;
            let mut soft = None;
            let failure = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    if let Some(na) = e.chain().find_map(|c| c.downcast_ref::<NotApplicable>()) {
                        not_applicable = Some(na.0.clone());
                        None
                    } else if let Some(ns) = e.chain().find_map(|c| c.downcast_ref::<NonStrict>()) {
                        soft = Some((Verdict::NonStrict, ns.0.clone()));
                        None
                    } else if let Some(info) =
                        e.chain().find_map(|c| c.downcast_ref::<Informational>())
                    {
                        soft = Some((Verdict::Informational, info.0.clone()));
                        None
                    } else {
                        Some(format!("{e:#}"))
                    }
                }
                Err(e) => Some(format!("panicked: {e}")),
            };
            let (events, omitted) = recorded.events();
            Outcome {
                id: s.id,
                statement: s.statement,
                source: s.source,
                failure,
                not_applicable,
                soft,
                elapsed: started.elapsed(),
                transcript: events,
                omitted,
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
        let verdict = match o.verdict() {
            Verdict::Fail => "FAIL",
            other => other.name(),
        };
        out.push_str(&format!(
            "{:<34} {:<7} {:>7.2}s  {}\n",
            o.id,
            verdict,
            o.elapsed.as_secs_f64(),
            o.source
        ));
        if let Some(why) = o.reason() {
            out.push_str(&format!("    {why}\n"));
        }
    }
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict() == v).count();
    out.push_str(&format!(
        "{} passed, {} failed",
        count(Verdict::Pass),
        count(Verdict::Fail)
    ));
    for (verdict, words) in [
        (Verdict::NonStrict, "non-strict"),
        (Verdict::Informational, "informational"),
        (Verdict::NotApplicable, "not applicable"),
    ] {
        if count(verdict) > 0 {
            out.push_str(&format!(", {} {words}", count(verdict)));
        }
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

/// One outcome per scenario over `runs`: its first failure if it failed in any run (a
/// report must not hide a flake), else the last run's.
pub fn one_per_scenario(runs: &[Vec<Outcome>]) -> Vec<Outcome> {
    let Some(last) = runs.last() else {
        return vec![];
    };
    last.iter()
        .map(|o| {
            runs.iter()
                .flatten()
                .find(|r| r.id == o.id && r.failure.is_some())
                .unwrap_or(o)
                .clone()
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML, one `testcase` per scenario (`non-strict` and `informational` pass, with
/// their reason in `system-out`).
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
        } else if let Some((verdict, why)) = &o.soft {
            xml.push_str(&format!(
                "      <system-out>{}: {}</system-out>\n",
                verdict.name(),
                escape(why)
            ));
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
                soft: None,
                elapsed: Duration::from_millis(1500),
                transcript: vec![],
                omitted: 0,
            },
            Outcome {
                id: "auth.b",
                statement: "t",
                source: "c",
                failure: Some("broke & \"died\"".into()),
                not_applicable: None,
                soft: None,
                elapsed: Duration::ZERO,
                transcript: vec![],
                omitted: 0,
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
