//! The conformance suite under `cargo test`: one test per scenario, so they run in
//! parallel and fail by name. `cargo xtask e2e` runs the same scenarios with a table
//! and JUnit output.

macro_rules! scenarios {
    ($($name:ident => $id:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Err(e) = tether_harness::scenarios::run($id).await {
                    panic!("{}: {e:#}", $id);
                }
            }
        )*

        #[test]
        fn every_scenario_has_a_test() {
            let listed = [$($id),*];
            for scenario in tether_harness::scenarios::all() {
                assert!(listed.contains(&scenario.id), "{} has no test in tests/conformance.rs", scenario.id);
            }
        }
    };
}

scenarios! {
    auth_pkce_login => "auth.pkce_login",
    auth_wrong_state => "auth.wrong_state",
    auth_api_key_header => "auth.api_key_header",
    auth_session_token_minted => "auth.session_token_minted",
    auth_oauth_passthrough => "auth.oauth_passthrough",
    auth_expired_jwt_not_sent => "auth.expired_jwt_not_sent",
    refresh_in_window => "refresh.in_window",
    refresh_rotation_persisted => "refresh.rotation_persisted",
    refresh_reuse_detected => "refresh.reuse_detected",
    refresh_transient_5xx => "refresh.transient_5xx",
    refresh_connection_dropped => "refresh.connection_dropped",
    refresh_connection_refused => "refresh.connection_refused",
    refresh_concurrent_20 => "refresh.concurrent_20",
    rotation_token_expired => "rotation.token_expired",
    rotation_cap => "rotation.cap",
    rotation_jwks_key_rotation => "rotation.jwks_key_rotation",
    rotation_relay_restart => "rotation.relay_restart",
    org_key_bound_to_a => "org.key_bound_to_a",
    org_owner_removed_and_readded => "org.owner_removed_and_readded",
    org_metadata_immutable => "org.metadata_immutable",
    host_oauth_via_host => "host_oauth.via_host",
    host_oauth_expired => "host_oauth.expired",
    host_oauth_internal_403 => "host_oauth.internal_403",
    bundle_missing_ptyd => "bundle.missing_ptyd",
    hostile_credential_free_shell => "hostile.credential_free_shell",
    hostile_bad_session_ids => "hostile.bad_session_ids",
    hostile_too_many_sessions => "hostile.too_many_sessions",
    hostile_stuck_terminal => "hostile.stuck_terminal",
    hostile_oversized_input => "hostile.oversized_input",
    hostile_route_spellings => "hostile.route_spellings",
    hostile_relay_stops_reading => "hostile.relay_stops_reading",
    lifecycle_background_job => "lifecycle.background_job",
    lifecycle_killed_by_signal => "lifecycle.killed_by_signal",
    blackbox_api_key_status => "blackbox.api_key_status",
    blackbox_host_connects => "blackbox.host_connects",
}
