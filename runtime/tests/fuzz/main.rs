//! Fuzzing of every decoder that reads bytes from another process (issue 13): ptyd
//! frames and requests, relay binary frames and control JSON, the relayed route policy,
//! the loopback HTTP listener, organization ids and `latest.json` (issue 25). Each target runs random and mutated inputs for
//! `TETHER_FUZZ_SECS` seconds (default 1; `cargo xtask fuzz --time S` sets it) through
//! proptest, which shrinks any failure to a small input. A target fails on a panic or a
//! broken invariant; it prints how many inputs it tried.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

mod targets;

/// How long each target runs.
fn budget() -> Duration {
    let secs = std::env::var("TETHER_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0f64);
    Duration::from_secs_f64(secs)
}

/// Runs `check` on inputs from `strategy` until the budget is spent; panics with the
/// shrunk input on the first failure.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let cpu_started = cpu_time();
    let mut cases = 0u64;
    let mut round = 0u32;
    while started.elapsed() < budget() {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(u64::from(round) ^ 0x7e7e_7e7e),
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("fuzz target {name} failed: {e}");
        }
        cases += 256;
        round += 1;
    }
    println!(
        "fuzz {name}: {cases} inputs, {:.1} s wall, {:.1} s CPU, 0 failures",
        started.elapsed().as_secs_f64(),
        (cpu_time() - cpu_started).as_secs_f64()
    );
}

/// CPU time this process has used so far.
fn cpu_time() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let t = u.user_time() + u.system_time();
            Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
        })
        .unwrap_or_default()
}

/// Arbitrary bytes, biased towards the shapes the decoders look for.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        targets::frame_like(),
    ]
}

#[test]
fn ptyd_frames() {
    fuzz("ptyd_frames", bytes(), targets::ptyd_frame);
}

#[test]
fn ptyd_requests() {
    fuzz("ptyd_requests", targets::json_like(), targets::ptyd_request);
}

#[test]
fn relay_binary_frames() {
    fuzz("relay_binary_frames", bytes(), targets::relay_binary);
}

#[test]
fn relay_control_json() {
    fuzz(
        "relay_control_json",
        targets::json_like(),
        targets::relay_control,
    );
}

#[test]
fn relayed_routes() {
    fuzz(
        "relayed_routes",
        (targets::method(), targets::path_like()),
        targets::relayed_route,
    );
}

#[test]
fn loopback_http() {
    let server = targets::LoopbackServer::start();
    fuzz("loopback_http", bytes(), |input| server.check(input));
}

#[test]
fn org_ids() {
    fuzz("org_ids", targets::org_like(), targets::org_id);
}

#[test]
fn latest_json() {
    fuzz("latest_json", targets::latest_like(), targets::latest_json);
}
