//! The conformance suite: each scenario has an id, a one-line statement, the RFC or
//! contract section it comes from, and runs the real binaries against the reference
//! servers, each in its own `TETHER_HOME` and ports so scenarios run in parallel.

mod auth;
mod blackbox;
mod bundle;
mod device;
pub mod diagnostics;
pub mod env;
mod host_oauth;
mod hostile;
mod net;
mod observability;
mod org_binding;
pub mod processes;
mod refresh;
mod resume;
mod rotation;
pub mod runs;
mod security;
pub mod server;
mod standard;

use std::future::Future;
use std::pin::Pin;

/// A scenario's body.
pub type Body = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// One conformance scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Stable id, e.g. `refresh.concurrent_20`.
    pub id: &'static str,
    /// What it proves, in one line.
    pub statement: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// True when it needs no server-side knobs, so it can run against a real deployment.
    pub black_box: bool,
    /// How it runs.
    pub run: Run,
}

/// How a scenario runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Its own function.
    Fn(fn() -> Body),
    /// A server check (`server::run_one`) on the target the environment names.
    ServerCheck,
}

/// A scenario that cannot apply to this target, and why (reported as not applicable,
/// JUnit `skipped`).
#[derive(Debug, thiserror::Error)]
#[error("not applicable: {0}")]
pub struct NotApplicable(pub String);

/// A check whose SHOULD (of the contract or an RFC) was not met: reported as
/// `non-strict`, which does not fail the run.
#[derive(Debug, thiserror::Error)]
#[error("non-strict: {0}")]
pub struct NonStrict(pub String);

/// Behaviour the contract leaves open, recorded as `informational`.
#[derive(Debug, thiserror::Error)]
#[error("informational: {0}")]
pub struct Informational(pub String);

/// Every scenario, in a stable order.
pub fn all() -> Vec<Scenario> {
    [
        auth::scenarios(),
        refresh::scenarios(),
        rotation::scenarios(),
        org_binding::scenarios(),
        host_oauth::scenarios(),
        hostile::scenarios(),
        security::scenarios(),
        resume::scenarios(),
        observability::scenarios(),
        net::scenarios(),
        standard::scenarios(),
        device::scenarios(),
        bundle::scenarios(),
        blackbox::scenarios(),
        server::scenarios(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs the scenario `id`.
pub async fn run(id: &str) -> anyhow::Result<()> {
    let scenario = all()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| anyhow::anyhow!("no scenario {id}"))?;
    scenario.execute().await
}

impl Scenario {
    /// Runs it; a failure carries what its processes printed and its host logs' tails.
    pub async fn execute(&self) -> anyhow::Result<()> {
        diagnostics::collect(self.body()).await
    }

    /// Its body.
    pub fn body(&self) -> Body {
        match self.run {
            Run::Fn(f) => f(),
            Run::ServerCheck => Box::pin(server::run_one(self.id)),
        }
    }
}

/// Shorthand for a scenario table entry.
macro_rules! scenario {
    ($id:literal, $statement:literal, $source:literal, $f:path) => {
        $crate::scenarios::Scenario {
            id: $id,
            statement: $statement,
            source: $source,
            black_box: false,
            run: $crate::scenarios::Run::Fn(|| Box::pin($f())),
        }
    };
    (black_box $id:literal, $statement:literal, $source:literal, $f:path) => {
        $crate::scenarios::Scenario {
            id: $id,
            statement: $statement,
            source: $source,
            black_box: true,
            run: $crate::scenarios::Run::Fn(|| Box::pin($f())),
        }
    };
}
pub(crate) use scenario;

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_every_scenario_names_its_source() {
        let all = super::all();
        let mut ids: Vec<_> = all.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert!(all
            .iter()
            .all(|s| !s.source.is_empty() && !s.statement.is_empty()));
    }
}
