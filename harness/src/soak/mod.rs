//! The soak (issue 30): the real binaries and the reference servers on loopback for N
//! minutes, 20 terminals at work (`workload.rs`), chaos on a seeded schedule
//! (`schedule.rs`), the host watched every second (`sampler.rs`), invariants checked
//! continuously and at the end, and a report (`report.rs`).

mod report;
mod sampler;
mod schedule;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Mutex as AsyncMutex;

use crate::authserver::AuthServer;
use crate::clock::now_ms;
use crate::forward_proxy::ForwardProxy;
use crate::lock::lock;
use crate::relay::Relay;
use crate::scenarios::env::Machine;
use report::{Event, Report, Verdict};
use sampler::Sample;
use schedule::{Chaos, Planned};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long, in minutes.
    pub minutes: f64,
    /// The chaos schedule's seed.
    pub seed: u64,
    /// Where `soak.json` and `soak.svg` go.
    pub report: PathBuf,
}

/// Runs shorter than this show RSS without judging it (it settles over minutes).
const MIN_MINUTES_FOR_RSS: f64 = 10.0;

/// A `/health` that does not answer within 1 s is excused this long after a host kill.
const RESTART_EXCUSE_S: f64 = 10.0;

/// Runs the soak; fails when an invariant broke (the report says which).
pub async fn run(options: Options) -> anyhow::Result<()> {
    let length = Duration::from_secs_f64(options.minutes * 60.0);
    let (auth, proxy, relay, machine) = signed_in_world(length).await?;
    machine.start_host("org_a").await?;
    let (host, _) = relay.wait_host("org_a", Duration::from_secs(20)).await?;
    let workload = workload::Workload::start(relay.clone(), &host, options.seed).await?;
    println!(
        "soak: {} minutes, seed {}, 20 terminals",
        options.minutes, options.seed
    );

    let started = Instant::now();
    let plan = schedule::plan(length, options.seed);
    let events = Arc::new(AsyncMutex::new(Vec::new()));
    let chaos = tokio::spawn(carry_out(
        plan,
        Targets {
            relay: relay.clone(),
            proxy: proxy.clone(),
            machine: machine.clone(),
            host: host.clone(),
        },
        started,
        events.clone(),
    ));
    let samples = watch(&machine, started, length).await;
    let _ = chaos.await;
    let tally = workload.finish().await?;
    let events = events.lock().await.clone();

    let verdicts = judge(&samples, &events, &machine, &auth, &tally, options.minutes);
    let traffic = {
        let t = lock(&tally);
        serde_json::json!({"printedLines": t.printed, "typedLines": t.typed, "echoedLines": t.echoed, "churnedTerminals": t.churned})
    };
    let report = Report {
        seed: options.seed,
        minutes: options.minutes,
        events,
        samples,
        verdicts,
        traffic,
    };
    report::write(&report, &options.report)?;
    let _ = machine.tether(&["host", "stop", "--org", "org_a"]).await;
    print(&report, &options);
    let broken = report
        .verdicts
        .iter()
        .filter(|v| v.broken.is_some())
        .count();
    anyhow::ensure!(
        broken == 0,
        "{broken} invariant(s) broken: see {}",
        options.report.display()
    );
    Ok(())
}

/// The soak's world, signed in as alice: the reference API and relay, reached by the host
/// at names only the CONNECT proxy resolves (as behind a corporate proxy, so the proxy can
/// stall), and a machine with binaries of its own (so an upgrade can replace tether-ptyd).
async fn signed_in_world(
    length: Duration,
) -> anyhow::Result<(AuthServer, Arc<ForwardProxy>, Arc<Relay>, Arc<Machine>)> {
    let auth = AuthServer::start().await?;
    // The host reaches the API and the relay at names only the proxy resolves, as behind a
    // corporate proxy: so the proxy can stall.
    let proxy = Arc::new(ForwardProxy::start(None)?);
    let api = auth.uri().replace("127.0.0.1", "api.tether.test");
    auth.state().issuer = api.clone();
    // Access tokens expire every 5 minutes (sooner in a short run): the host refreshes.
    auth.state().access_ttl =
        Duration::from_secs_f64((length.as_secs_f64() / 2.0).clamp(70.0, 300.0));
    let relay = Arc::new(Relay::start(&api).await?);
    let relay_url = relay.url().replace("127.0.0.1", "relay.tether.test");
    let mut machine = Machine::new(&api, &relay_url)?;
    machine.extra_env = vec![("HTTPS_PROXY".into(), proxy.url())];
    // Binaries of its own, so an upgrade can replace tether-ptyd on disk.
    machine.own_binaries()?;
    let machine = Arc::new(machine);
    {
        let mut state = auth.state();
        let refresh = state.issue_refresh_token("user_alice");
        let access = state.sign("user_alice", &["org_a".into()]);
        let ttl_ms = state.access_ttl.as_millis() as i64;
        drop(state);
        machine.store_sign_in(&access, Some(&refresh), now_ms() + ttl_ms)?;
    }
    Ok((auth, proxy, relay, machine))
}

/// Samples every second until `length` has passed.
async fn watch(machine: &Machine, started: Instant, length: Duration) -> Vec<Sample> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_default();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < length {
        tick.tick().await;
        let ptyd = machine.pids_of("tether-ptyd").first().copied();
        samples.push(sampler::sample(&http, &machine.home(), ptyd, started).await);
    }
    samples
}

/// What the chaos acts on.
struct Targets {
    relay: Arc<Relay>,
    proxy: Arc<ForwardProxy>,
    machine: Arc<Machine>,
    host: String,
}

/// Carries out the schedule, recording each disruption and how it went.
async fn carry_out(
    plan: Vec<Planned>,
    targets: Targets,
    started: Instant,
    events: Arc<AsyncMutex<Vec<Event>>>,
) {
    let Targets {
        relay,
        proxy,
        machine,
        host,
    } = targets;
    for planned in plan {
        let at = started + Duration::from_secs_f64(planned.at_s);
        tokio::time::sleep_until(at.into()).await;
        // A disruption of the relay connection waits until there is one (the host may still
        // be reconnecting from the previous one: 3 s apart is less than a backoff).
        if matches!(
            planned.chaos,
            Chaos::RelayAbort | Chaos::TokenExpired | Chaos::ProxyStall
        ) {
            let _ = relay.wait_host("org_a", Duration::from_secs(30)).await;
        }
        let outcome = match planned.chaos {
            Chaos::RelayAbort => relay.drop_connection("org_a", &host, false),
            Chaos::RelayRestart => relay.restart_keeping_state(Duration::from_secs(2)).await,
            Chaos::TokenExpired => relay.expire_now("org_a", &host),
            Chaos::RefreshStorm => refresh_storm(&machine).await,
            Chaos::HostKill => host_kill(&machine).await,
            Chaos::PtydUpgrade => machine.upgrade_ptyd_in_place().await.map(drop),
            Chaos::ProxyStall => {
                proxy.set_stalled(true);
                tokio::time::sleep(schedule::STALL).await;
                proxy.set_stalled(false);
                Ok(())
            }
        };
        let outcome = match outcome {
            Ok(()) => "done".to_string(),
            Err(e) => format!("failed: {e:#}"),
        };
        println!(
            "soak: {:>6.1}s {:?}: {outcome}",
            planned.at_s, planned.chaos
        );
        events.lock().await.push(Event {
            at_s: planned.at_s,
            chaos: planned.chaos,
            outcome,
        });
    }
}

/// 20 `tether auth status` at once: each must succeed, refreshing under the lock.
async fn refresh_storm(machine: &Machine) -> anyhow::Result<()> {
    let runs = (0..20).map(|_| machine.tether(&["auth", "status"]));
    let outs = futures_util::future::join_all(runs).await;
    let failed = outs
        .into_iter()
        .filter(|o| !o.as_ref().is_ok_and(|o| o.status.success()))
        .count();
    anyhow::ensure!(failed == 0, "{failed} of 20 `tether auth status` failed");
    Ok(())
}

/// SIGKILL to `tether-host`, then `tether host start` again.
async fn host_kill(machine: &Machine) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(machine.home().join("run/host-org_a.json"))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let pid = doc["pid"].as_u64().context("no host pid")?;
    crate::scenarios::processes::kill(pid as u32, "KILL")?;
    // The instance lock goes with the last process holding its file open: wait for that
    // (a loaded machine may take a moment), and name any holder that stays.
    let lock = machine.home().join("run/host-org_a.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let holders = crate::scenarios::processes::holders(&lock);
        if holders.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "5 s after kill -KILL {pid}, {} is still held open by {holders:?}",
                lock.display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    machine.start_host("org_a").await
}

fn verdict(invariant: &str, broken: Option<String>) -> Verdict {
    Verdict {
        invariant: invariant.into(),
        broken,
    }
}

/// Every invariant, against what was seen.
fn judge(
    samples: &[Sample],
    events: &[Event],
    machine: &Machine,
    auth: &AuthServer,
    tally: &std::sync::Mutex<workload::Tally>,
    minutes: f64,
) -> Vec<Verdict> {
    let t = lock(tally);
    let mut out = vec![verdict(
        "every printed and typed line exactly once, in order; every terminal alive",
        (!t.violations.is_empty()).then(|| t.violations.join("; ")),
    )];
    drop(t);
    let revoked = auth.state().revoked_family_count();
    out.push(verdict(
        "0 refresh-family revocations",
        (revoked > 0).then(|| format!("{revoked} families revoked")),
    ));
    let failed: Vec<&Event> = events.iter().filter(|e| e.outcome != "done").collect();
    out.push(verdict(
        "every scheduled disruption carried out (refresh storms: 20 of 20 succeed)",
        (!failed.is_empty()).then(|| format!("{failed:?}")),
    ));
    out.push(health_verdict(samples, events));
    flat_verdicts(samples, minutes, &mut out);
    let errors: Vec<String> = machine
        .host_logs()
        .into_iter()
        .flat_map(|(_, text)| {
            text.lines()
                .filter(|l| l.contains(" ERROR "))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    out.push(verdict(
        "no ERROR line in the host's log",
        (!errors.is_empty()).then(|| errors.join(" | ")),
    ));
    out
}

/// `/health` answered every second, but in the moments after a host kill.
fn health_verdict(samples: &[Sample], events: &[Event]) -> Verdict {
    let kills: Vec<f64> = events
        .iter()
        .filter(|e| e.chaos == Chaos::HostKill)
        .map(|e| e.at_s)
        .collect();
    let unanswered: Vec<f64> = samples
        .iter()
        .filter(|s| s.health_ms.is_none())
        .filter(|s| {
            !kills
                .iter()
                .any(|k| s.at_s >= *k && s.at_s <= k + RESTART_EXCUSE_S)
        })
        .map(|s| s.at_s)
        .collect();
    verdict(
        "/health answers within 1 s throughout (but right after a host kill)",
        (!unanswered.is_empty()).then(|| format!("no answer at {unanswered:?} s")),
    )
}

/// RSS, descriptors and threads of host and ptyd flat from the first tenth to the last.
fn flat_verdicts(samples: &[Sample], minutes: f64, out: &mut Vec<Verdict>) {
    let ten_percent = |v: u64| v + v / 10;
    let plus_two = |v: u64| v + 2;
    type Figure = fn(&Sample) -> Option<u64>;
    type Allowed<'a> = &'a dyn Fn(u64) -> u64;
    let figures: [(&str, Figure, Allowed); 6] = [
        (
            "tether-host RSS",
            |s| s.host.map(|p| p.rss_kib),
            &ten_percent,
        ),
        ("tether-host fds", |s| s.host.map(|p| p.fds), &plus_two),
        (
            "tether-host threads",
            |s| s.host.map(|p| p.threads),
            &plus_two,
        ),
        (
            "tether-ptyd RSS",
            |s| s.ptyd.map(|p| p.rss_kib),
            &ten_percent,
        ),
        ("tether-ptyd fds", |s| s.ptyd.map(|p| p.fds), &plus_two),
        (
            "tether-ptyd threads",
            |s| s.ptyd.map(|p| p.threads),
            &plus_two,
        ),
    ];
    for (name, figure, allowed) in figures {
        let judged = sampler::flat(samples, figure, allowed);
        // Memory settles over minutes (replay buffers, the allocator's arenas): a run under
        // 10 minutes shows RSS but cannot judge it. Descriptors and threads are judged always.
        if name.ends_with("RSS") && minutes < MIN_MINUTES_FOR_RSS {
            if let Err(growth) = judged {
                println!("soak: {name} {growth} (not judged in a run under {MIN_MINUTES_FOR_RSS} minutes)");
            }
            continue;
        }
        out.push(verdict(
            &format!("{name} flat (the last tenth's maximum within 10 % for RSS, +2 for fds and threads, of the first tenth after the warm-up)"),
            judged.err(),
        ));
    }
}

fn print(report: &Report, options: &Options) {
    println!(
        "soak: {} disruptions, traffic {}",
        report.events.len(),
        report.traffic
    );
    for v in &report.verdicts {
        match &v.broken {
            None => println!("  held    {}", v.invariant),
            Some(why) => println!("  BROKEN  {}: {why}", v.invariant),
        }
    }
    println!("report: {} (soak.json, soak.svg)", options.report.display());
}
