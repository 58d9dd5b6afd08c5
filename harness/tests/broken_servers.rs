//! The `server.*` checks against deliberately broken reference servers: each broken rule
//! must make its named check fail and leave every other check passing — otherwise the
//! checks would pass a deployment with that bug.

use tether_harness::authserver::BrokenAuth;
use tether_harness::relay::verify::BrokenRelay;
use tether_harness::scenarios::env::World;
use tether_harness::scenarios::server::{checks, Target};

/// Runs every server check on a reference world broken by `brake`; the ids that failed
/// (a MUST broken; a SHOULD unmet is not a failure).
async fn failing_checks(brake: impl FnOnce(&World)) -> Vec<&'static str> {
    checks_on(brake).await.0
}

/// The ids that failed, and those that came out non-strict.
async fn checks_on(brake: impl FnOnce(&World)) -> (Vec<&'static str>, Vec<&'static str>) {
    let world = World::start().await.expect("world");
    brake(&world);
    let target = Target::reference(world).expect("target");
    let runs = checks().into_iter().map(|check| {
        let target = &target;
        async move { (check.id, (check.run)(target).await) }
    });
    let mut failed = Vec::new();
    let mut non_strict = Vec::new();
    for (id, outcome) in futures_util::future::join_all(runs).await {
        if let Err(e) = outcome {
            eprintln!("{id}: {e:#}");
            if e.chain()
                .any(|c| c.is::<tether_harness::scenarios::NonStrict>())
            {
                non_strict.push(id);
            } else {
                failed.push(id);
            }
        }
    }
    (failed, non_strict)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_servers_pass_every_check() {
    assert_eq!(failing_checks(|_| {}).await, Vec::<&str>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_for_every_org_of_the_owner_is_caught() {
    let failed = failing_checks(|w| {
        w.auth.state().broken = BrokenAuth {
            mint_all_orgs: true,
            ..BrokenAuth::default()
        }
    })
    .await;
    assert_eq!(failed, ["server.mint_bound_org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_trailing_slash_is_caught() {
    let failed = failing_checks(|w| {
        w.auth.state().broken = BrokenAuth {
            issuer_trailing_slash: true,
            ..BrokenAuth::default()
        }
    })
    .await;
    assert_eq!(failed, ["server.metadata_issuer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_member_in_the_jwks_is_caught() {
    let failed = failing_checks(|w| {
        w.auth.state().broken = BrokenAuth {
            jwks_private_member: true,
            ..BrokenAuth::default()
        }
    })
    .await;
    assert_eq!(failed, ["server.jwks_public_keys"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_a_reused_refresh_token_is_caught() {
    let failed = failing_checks(|w| {
        w.auth.state().broken = BrokenAuth {
            refresh_reuse_accepted: true,
            ..BrokenAuth::default()
        }
    })
    .await;
    assert_eq!(failed, ["server.refresh_reuse"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_accepting_alg_none_is_caught() {
    let failed = failing_checks(|w| {
        w.relay.break_rules(BrokenRelay {
            accept_alg_none: true,
            ..BrokenRelay::default()
        })
    })
    .await;
    assert_eq!(failed, ["server.relay_alg_none"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_ignoring_the_organization_is_caught() {
    let failed = failing_checks(|w| {
        w.relay.break_rules(BrokenRelay {
            ignore_org: true,
            ..BrokenRelay::default()
        })
    })
    .await;
    assert_eq!(failed, ["server.relay_other_org"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_resume_is_reported_non_strict() {
    let (failed, non_strict) = checks_on(|w| w.relay.set_protocol_1(true)).await;
    // Protocol 1 is allowed (hosts fall back to live output), so it does not fail the run;
    // resending input is checked after a resume, so it is non-strict with it.
    assert_eq!(failed, Vec::<&str>::new());
    assert_eq!(
        non_strict,
        ["server.relay_resume", "server.relay_resend_input"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_forgets_unacknowledged_input_is_caught() {
    let failed = failing_checks(|w| {
        w.relay.break_rules(BrokenRelay {
            forget_unacked_input: true,
            ..BrokenRelay::default()
        })
    })
    .await;
    assert_eq!(failed, ["server.relay_resend_input"]);
}
