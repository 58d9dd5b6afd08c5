//! The soak's chaos, drawn from a seed: when each disruption happens. Periods are the
//! issue's (relay aborts every 20–60 s, `tokenExpired` every 2 min, a refresh storm every
//! 3 min, a host SIGKILL every 10 min, a ptyd upgrade in place every 15 min, one relay
//! restart, one 40 s proxy stall), shortened for short runs so that every kind happens at
//! least once.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// One kind of disruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chaos {
    /// The relay drops the host's connection without a close frame.
    RelayAbort,
    /// The relay process restarts (connections closed, state kept).
    RelayRestart,
    /// The relay says `tokenExpired`: the host rotates.
    TokenExpired,
    /// 20 `tether auth status` at once, each refreshing under the cross-process lock.
    RefreshStorm,
    /// `tether-host` killed with SIGKILL and started again.
    HostKill,
    /// `tether-ptyd` replaced on disk and upgraded in place (same pid, every terminal kept).
    PtydUpgrade,
    /// The proxy between the host and the relay and API carries nothing for 40 s.
    ProxyStall,
}

/// How long the proxy stall lasts.
pub const STALL: Duration = Duration::from_secs(40);

impl Chaos {
    /// How long it keeps going once started (the next one waits for its end).
    pub fn lasts(self) -> f64 {
        match self {
            Chaos::ProxyStall => STALL.as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// A disruption at a time from the start.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Planned {
    /// Seconds from the start.
    pub at_s: f64,
    /// What happens.
    pub chaos: Chaos,
}

/// The schedule for a run of `length`, from `seed`; sorted by time.
pub fn plan(length: Duration, seed: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let total = length.as_secs_f64();
    // Nothing in the first 10 s (the workload settles) or the last 15 s (it drains).
    let (first, last) = (10.0, (total - 15.0).max(10.0));
    let mut out = Vec::new();
    let every = |chaos: Chaos, period: f64, out: &mut Vec<Planned>, rng: &mut StdRng| {
        let period = period.min((last - first) / 2.0).max(5.0);
        let mut at = first + rng.random_range(0.0..period / 2.0);
        while at < last {
            out.push(Planned { at_s: at, chaos });
            at += period;
        }
    };
    every(Chaos::TokenExpired, 120.0, &mut out, &mut rng);
    every(Chaos::RefreshStorm, 180.0, &mut out, &mut rng);
    every(Chaos::HostKill, 600.0, &mut out, &mut rng);
    every(Chaos::PtydUpgrade, 900.0, &mut out, &mut rng);
    let mut at = first + rng.random_range(5.0..15.0);
    while at < last {
        out.push(Planned {
            at_s: at,
            chaos: Chaos::RelayAbort,
        });
        at += rng.random_range(20.0..60.0);
    }
    out.push(Planned {
        at_s: first + (last - first) * rng.random_range(0.35..0.65),
        chaos: Chaos::RelayRestart,
    });
    out.push(Planned {
        at_s: first + (last - first - STALL.as_secs_f64()).max(0.0) * rng.random_range(0.1..0.9),
        chaos: Chaos::ProxyStall,
    });
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    // Two disruptions less than 3 s apart (after the first one's end) blur the check of
    // each: space them out.
    for i in 1..out.len() {
        let free = out[i - 1].at_s + out[i - 1].chaos.lasts() + 3.0;
        if out[i].at_s < free {
            out[i].at_s = free;
        }
    }
    out.retain(|p| p.at_s < last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_has_every_kind_and_the_seed_decides() {
        let plan_a = plan(Duration::from_secs(120), 7);
        for kind in [
            Chaos::RelayAbort,
            Chaos::RelayRestart,
            Chaos::TokenExpired,
            Chaos::RefreshStorm,
            Chaos::HostKill,
            Chaos::PtydUpgrade,
            Chaos::ProxyStall,
        ] {
            assert!(
                plan_a.iter().any(|p| p.chaos == kind),
                "{kind:?} missing: {plan_a:?}"
            );
        }
        let again = plan(Duration::from_secs(120), 7);
        assert_eq!(format!("{plan_a:?}"), format!("{again:?}"));
        assert!(plan_a
            .windows(2)
            .all(|w| w[1].at_s >= w[0].at_s + w[0].chaos.lasts() + 3.0));
        let hour = plan(Duration::from_secs(3600), 1);
        let count = |kind| hour.iter().filter(|p| p.chaos == kind).count();
        assert_eq!(count(Chaos::PtydUpgrade), 4, "every 15 min: {hour:?}");
        assert_eq!(count(Chaos::ProxyStall), 1);
        assert_eq!(count(Chaos::HostKill), 6);
    }
}
