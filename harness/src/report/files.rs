//! The report directory of contract section 12: `results.json` (schema 1, documented in
//! docs/HARNESS.md), `index.html` (one self-contained page rendered from the same data with
//! a minijinja template) and `junit.xml`; then a search of all three for every secret the
//! run used.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use super::{junit, Outcome, Verdict};

/// The template of `index.html`.
const TEMPLATE: &str = include_str!("index.html.j2");

/// What the report says about the run as a whole.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// `tether --version` of the binaries under test (or "not run" in server mode).
    pub tether_version: String,
    /// The target those binaries are for.
    pub target: String,
    /// The servers: "reference (in-process)" or the deployment's URLs.
    pub servers: Vec<(String, String)>,
    /// How long the run took.
    pub duration: Duration,
}

impl RunFacts {
    /// The facts of a run in this process: the binaries' `tether --version` and target,
    /// and which servers (a deployment's URLs, else the reference servers).
    pub fn of_this_run(duration: Duration) -> RunFacts {
        let version = crate::scenarios::env::bin_dir()
            .ok()
            .and_then(|dir| {
                std::process::Command::new(dir.join("tether"))
                    .arg("--version")
                    .output()
                    .ok()
            })
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_else(|| "unknown (no tether binary found)".into());
        // `tether 0.1.0 (<sha> <triple> …)`: the triple is the word with two dashes or more.
        let target = version
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .find(|w| w.matches('-').count() >= 2)
            .unwrap_or(std::env::consts::ARCH)
            .to_string();
        let servers = match crate::scenarios::env::deployment() {
            Some((api, relay, key)) => {
                // The deployment's key is a secret of this run too.
                crate::transcript::secret(&key);
                vec![("api".to_string(), api), ("relay".to_string(), relay)]
            }
            None => vec![(
                "servers".to_string(),
                "the harness's reference servers, started per scenario on loopback".to_string(),
            )],
        };
        RunFacts {
            tether_version: version,
            target,
            servers,
            duration,
        }
    }
}

/// Order of outcomes in the page: what needs a look first.
fn rank(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Fail => 0,
        Verdict::NonStrict => 1,
        Verdict::Informational => 2,
        Verdict::NotApplicable => 3,
        Verdict::Pass => 4,
    }
}

/// The group of a scenario: its id's first part (`auth`, `server`, …).
fn group(id: &str) -> &str {
    id.split_once('.').map(|(g, _)| g).unwrap_or(id)
}

fn counts<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Value {
    let mut counts = json!({"pass": 0, "fail": 0, "non-strict": 0, "informational": 0, "n/a": 0});
    for o in outcomes {
        let name = o.verdict().name();
        counts[name] = json!(counts[name].as_u64().unwrap_or(0) + 1);
    }
    counts
}

/// `results.json`, schema 1.
pub fn results(outcomes: &[Outcome], facts: &RunFacts) -> Value {
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| (rank(o.verdict()), o.id));
    let mut groups: Vec<&str> = outcomes.iter().map(|o| group(o.id)).collect();
    groups.sort();
    groups.dedup();
    let per_group: serde_json::Map<String, Value> = groups
        .iter()
        .map(|g| {
            (
                g.to_string(),
                counts(outcomes.iter().filter(|o| group(o.id) == *g)),
            )
        })
        .collect();
    json!({
        "schema": 1,
        "tether_version": facts.tether_version,
        "target": facts.target,
        "servers": facts.servers.iter().map(|(name, url)| json!({"name": name, "url": url})).collect::<Vec<_>>(),
        "duration_ms": facts.duration.as_millis() as u64,
        "counts": counts(outcomes.iter()),
        "groups": per_group,
        "scenarios": sorted.iter().map(|o| json!({
            "id": o.id,
            "group": group(o.id),
            "statement": o.statement,
            "source": o.source,
            "outcome": o.verdict().name(),
            "reason": o.reason(),
            "duration_ms": o.elapsed.as_millis() as u64,
            "transcript": o.transcript,
            "omitted_events": o.omitted,
        })).collect::<Vec<_>>(),
    })
}

/// `index.html` from `results` (the document `results.json` holds).
pub fn html(results: &Value) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("index.html", TEMPLATE)
        .context("the report template does not parse")?;
    let page = env
        .get_template("index.html")?
        .render(minijinja::context! { r => results })
        .context("the report template did not render")?;
    Ok(page)
}

/// Writes `index.html`, `results.json` and `junit.xml` into `dir`, then searches them for
/// every secret this process used; any found is an error (the files stay, for a look).
pub fn write(dir: &Path, outcomes: &[Outcome], facts: &RunFacts) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let results = results(outcomes, facts);
    let files = [
        ("results.json", serde_json::to_string_pretty(&results)?),
        ("index.html", html(&results)?),
        ("junit.xml", junit(outcomes)),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let secrets = crate::transcript::secrets();
    let found = secrets_in(
        files.iter().map(|(name, text)| (*name, text.as_str())),
        &secrets,
    )?;
    anyhow::ensure!(
        found.is_empty(),
        "the report in {} holds secrets the run used: {}",
        dir.display(),
        found.join("; ")
    );
    eprintln!(
        "==> report in {} (index.html, results.json, junit.xml); none of the run's {} secrets is in it",
        dir.display(),
        secrets.len()
    );
    Ok(())
}

/// Which of `secrets` appear in which of `files` (one pass per file).
pub fn secrets_in<'a>(
    files: impl Iterator<Item = (&'a str, &'a str)>,
    secrets: &[String],
) -> anyhow::Result<Vec<String>> {
    if secrets.is_empty() {
        return Ok(vec![]);
    }
    let finder = aho_corasick::AhoCorasick::new(secrets).context("cannot search for secrets")?;
    let mut found = Vec::new();
    for (name, text) in files {
        for hit in finder.find_iter(text) {
            let secret = &secrets[hit.pattern().as_usize()];
            found.push(format!(
                "{name} holds {} at byte {}",
                crate::transcript::prefix(secret),
                hit.start()
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::{Event, EventKind};

    fn outcome(id: &'static str) -> Outcome {
        Outcome {
            id,
            statement: "s",
            source: "contract §4",
            failure: None,
            not_applicable: None,
            soft: None,
            elapsed: Duration::from_millis(5),
            transcript: vec![],
            omitted: 0,
        }
    }

    #[test]
    fn failures_come_first_then_what_needs_a_look_and_counts_add_up_per_group() {
        let mut broken = outcome("server.b");
        broken.failure = Some("MUST broken".into());
        broken.transcript.push(Event {
            at_ms: 1.5,
            kind: EventKind::Note {
                text: "<script>alert(1)</script>".into(),
            },
        });
        let mut soft = outcome("server.a");
        soft.soft = Some((Verdict::NonStrict, "SHOULD unmet".into()));
        let mut na = outcome("auth.c");
        na.not_applicable = Some("no session".into());
        let outcomes = vec![outcome("auth.a"), na, soft, broken];
        let results = results(&outcomes, &RunFacts::default());
        let order: Vec<&str> = results["scenarios"]
            .as_array()
            .expect("scenarios")
            .iter()
            .map(|s| s["id"].as_str().expect("id"))
            .collect();
        assert_eq!(order, ["server.b", "server.a", "auth.c", "auth.a"]);
        assert_eq!(
            results["counts"],
            json!({"pass": 1, "fail": 1, "non-strict": 1, "informational": 0, "n/a": 1})
        );
        assert_eq!(results["groups"]["server"]["non-strict"], 1);
        assert_eq!(results["groups"]["auth"]["n/a"], 1);
        let page = html(&results).expect("html");
        // Recorded text is escaped, never markup; the failure is open, the rest closed.
        assert!(!page.contains("<script>alert"), "unescaped transcript text");
        assert!(
            page.contains("id=\"s-server.b\" open"),
            "the failure is not open"
        );
        assert!(!page.contains("id=\"s-server.a\" open"));
        assert!(page.contains("id=\"count-non-strict\">1<"), "{page}");
    }

    #[test]
    fn a_secret_anywhere_in_the_files_is_found() {
        let secrets = vec!["sk_live_0123456789abcdef".to_string()];
        let found = secrets_in(
            [("a.json", "{}"), ("b.html", "x sk_live_0123456789abcdef y")].into_iter(),
            &secrets,
        )
        .expect("search");
        assert_eq!(found, ["b.html holds sk_live_01… at byte 2"]);
    }
}
