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
            // The server checks run in tests/broken_servers.rs, against sound and broken servers.
            let listed_elsewhere = |s: &tether_harness::scenarios::Scenario| {
                matches!(s.run, tether_harness::scenarios::Run::ServerCheck)
            };
            for scenario in tether_harness::scenarios::all().into_iter().filter(|s| !listed_elsewhere(s)) {
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
    security_loopback_never_proxied => "security.loopback_never_proxied",
    security_metadata_plaintext => "security.metadata_plaintext",
    security_hostile_org_id => "security.hostile_org_id",
    security_server_text_printable => "security.server_text_printable",
    security_endless_body => "security.endless_body",
    security_device_interval_overflow => "security.device_interval_overflow",
    security_via_host_iss => "security.via_host_iss",
    resume_relay_crash => "resume.relay_crash",
    resume_clean_close => "resume.clean_close",
    resume_rotation => "resume.rotation",
    resume_host_restart => "resume.host_restart",
    resume_ptyd_late => "resume.ptyd_late",
    resume_typed_input => "resume.typed_input",
    resume_ptyd_upgrade => "resume.ptyd_upgrade",
    resume_gap => "resume.gap",
    resume_protocol_1 => "resume.protocol_1",
    observability_log_timestamps => "observability.log_timestamps",
    observability_metrics => "observability.metrics",
    observability_metrics_not_relayed => "observability.metrics_not_relayed",
    lifecycle_background_job => "lifecycle.background_job",
    lifecycle_killed_by_signal => "lifecycle.killed_by_signal",
    blackbox_api_key_status => "blackbox.api_key_status",
    blackbox_host_connects => "blackbox.host_connects",
    net_untrusted_ca => "net.untrusted_ca",
    net_wrong_host_name => "net.wrong_host_name",
    net_expired_certificate => "net.expired_certificate",
    net_relay_tls_error => "net.relay_tls_error",
    net_proxy_basic_auth => "net.proxy_basic_auth",
    net_no_proxy_bypass => "net.no_proxy_bypass",
    net_proxy_down => "net.proxy_down",
    net_plaintext_refused => "net.plaintext_refused",
    net_doctor_route => "net.doctor_route",
    standard_login_rfc8414 => "standard.login_rfc8414",
    standard_login_oidc => "standard.login_oidc",
    standard_refresh => "standard.refresh",
    standard_user_unknown => "standard.user_unknown",
    standard_logout => "standard.logout",
    standard_no_tether_endpoints => "standard.no_tether_endpoints",
    mixup_wrong_iss => "mixup.wrong_iss",
    mixup_missing_iss => "mixup.missing_iss",
    mixup_access_denied => "mixup.access_denied",
    device_approved => "device.approved",
    device_slow_down => "device.slow_down",
    device_denied => "device.denied",
    device_expired => "device.expired",
    device_deadline => "device.deadline",
    device_chosen_over_ssh => "device.chosen_over_ssh",
}
