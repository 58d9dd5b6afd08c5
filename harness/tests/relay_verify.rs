//! The reference relay's token checks, one rule each (contract section 4): it must be as
//! strict as a real relay, or scenarios would pass against bugs.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use tether_harness::authserver::AuthServer;
use tether_harness::relay::verify::{Refusal, Verifier};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn sign(
    auth: &AuthServer,
    claims: serde_json::Value,
    alg_kid: Option<(Algorithm, &str)>,
) -> String {
    let state = auth.state();
    let key = &state.keys[0];
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    if let Some((alg, kid)) = alg_kid {
        header.alg = alg;
        header.kid = Some(kid.to_string());
    }
    encode(&header, &claims, &key.encoding).expect("sign")
}

fn claims(iss: &str, exp: i64, orgs: &[&str]) -> serde_json::Value {
    json!({"iss": iss, "aud": [iss], "sub": "user_alice", "iat": now(), "exp": exp, "organizationIds": orgs})
}

#[tokio::test]
async fn a_good_token_passes_and_each_broken_rule_is_refused() {
    let auth = AuthServer::start().await.expect("auth");
    let api = auth.uri();
    let verifier = Verifier::new(&api);
    let good = sign(&auth, claims(&api, now() + 600, &["org_a"]), None);
    assert!(verifier.verify(&good, "org_a").await.is_ok());

    let unauthorized = |r: Result<_, Refusal>| matches!(r, Err(Refusal::Unauthorized(_)));
    let wrong_iss = sign(
        &auth,
        claims("https://evil.invalid", now() + 600, &["org_a"]),
        None,
    );
    assert!(
        unauthorized(verifier.verify(&wrong_iss, "org_a").await),
        "iss"
    );
    let mut other_aud = claims(&api, now() + 600, &["org_a"]);
    other_aud["aud"] = json!(["https://other.invalid"]);
    assert!(
        unauthorized(
            verifier
                .verify(&sign(&auth, other_aud, None), "org_a")
                .await
        ),
        "aud"
    );
    let expired = sign(&auth, claims(&api, now() - 31, &["org_a"]), None);
    assert!(
        unauthorized(verifier.verify(&expired, "org_a").await),
        "exp beyond the 30 s leeway"
    );
    let within_leeway = sign(&auth, claims(&api, now() - 5, &["org_a"]), None);
    assert!(
        verifier.verify(&within_leeway, "org_a").await.is_ok(),
        "exp within the leeway"
    );
    let unknown_kid = sign(
        &auth,
        claims(&api, now() + 600, &["org_a"]),
        Some((Algorithm::RS256, "no-such-key")),
    );
    assert!(
        unauthorized(verifier.verify(&unknown_kid, "org_a").await),
        "unknown kid"
    );
    assert!(
        matches!(
            verifier.verify(&good, "org_b").await,
            Err(Refusal::Forbidden(_))
        ),
        "org not in the token"
    );
    assert!(
        unauthorized(verifier.verify("not.a.jwt", "org_a").await),
        "garbage"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let auth = AuthServer::start().await.expect("auth");
    let api = auth.uri();
    let public_pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/keys/rs256-2026a.pub.pem"
    ))
    .expect("pub key");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rs256-2026a".into());
    let forged = encode(
        &header,
        &claims(&api, now() + 600, &["org_a"]),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("sign");
    let verdict = Verifier::new(&api).verify(&forged, "org_a").await;
    assert!(
        matches!(verdict, Err(Refusal::Unauthorized(_))),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn an_unknown_kid_triggers_one_jwks_refetch() {
    let auth = AuthServer::start().await.expect("auth");
    let api = auth.uri();
    let verifier = Verifier::new(&api);
    let first = sign(&auth, claims(&api, now() + 600, &["org_a"]), None);
    verifier.verify(&first, "org_a").await.expect("first key");
    verifier.verify(&first, "org_a").await.expect("cached");
    assert_eq!(
        verifier.fetches.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    auth.state().rotate_signing_key().expect("rotate");
    let second = sign(&auth, claims(&api, now() + 600, &["org_a"]), None);
    verifier
        .verify(&second, "org_a")
        .await
        .expect("new key after a refetch");
    verifier
        .verify(&first, "org_a")
        .await
        .expect("the old key is still published");
    assert_eq!(
        verifier.fetches.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_a_second() {
    let auth = AuthServer::start().await.expect("auth");
    let api = auth.uri();
    let verifier = std::sync::Arc::new(Verifier::new(&api));
    let good = sign(&auth, claims(&api, now() + 600, &["org_a"]), None);
    let tokens: Vec<String> = (0..10)
        .map(|i| {
            sign(
                &auth,
                claims(&api, now() + 600, &["org_a"]),
                Some((Algorithm::RS256, &format!("random-{i}"))),
            )
        })
        .collect();
    verifier.verify(&good, "org_a").await.expect("first key");
    let started = std::time::Instant::now();
    let flood: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&token, "org_a").await })
        })
        .collect();
    // 1.5 s of flood: one refetch is allowed in that time, not ten.
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(1500),
        futures_util::future::join_all(flood),
    )
    .await;
    let fetches = verifier.fetches.load(std::sync::atomic::Ordering::SeqCst);
    // The first fetch, then at most one per whole second since (ten without the limit).
    let allowed = 2 + started.elapsed().as_secs() as u32;
    assert!(
        fetches <= allowed,
        "{fetches} JWKS fetches in {:?} of flood",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_published_key_without_alg_is_not_used() {
    let auth = AuthServer::start().await.expect("auth");
    let api = auth.uri();
    let good = sign(&auth, claims(&api, now() + 600, &["org_a"]), None);
    for key in auth.state().keys.iter_mut() {
        key.jwk.common.key_algorithm = None;
    }
    let verdict = Verifier::new(&api).verify(&good, "org_a").await;
    assert!(
        matches!(verdict, Err(Refusal::Unauthorized(_))),
        "a key without alg was guessed: {verdict:?}"
    );
}
