//! The relay's handshake and its first minutes (contract section 4): every token it must
//! refuse, the organization rule, and a valid connection that survives `hello` and an
//! unknown message type. The valid connection poses as a host with no terminals.

use std::time::Duration;

use anyhow::{ensure, Context};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::Connector;

use super::mint::{foreign_token, verified_claims};
use super::{check, Check, Target};
use crate::clock::now_s;
use crate::scenarios::NotApplicable;

pub fn checks() -> Vec<Check> {
    vec![
        check!("server.relay_no_token", "a handshake without a token is refused with 401", "contract §4", no_token),
        check!("server.relay_foreign_key", "a token signed by a key not in the JWKS is refused with 401", "contract §4", foreign_key),
        check!("server.relay_alg_none", "a token with alg none is refused with 401", "contract §4, RFC 8725 §3.1", alg_none),
        check!("server.relay_hs256_public_key", "HS256 signed with the server's public key as secret is refused with 401", "contract §4, RFC 8725 §3.1", hs256_public_key),
        check!("server.relay_expired", "a token expired beyond the 30 s leeway is refused with 401", "contract §4", expired),
        check!("server.relay_other_org", "a valid token for an organization it does not name is refused with 403", "contract §4", other_org),
        check!("server.relay_resume", "a protocol-2 hello is answered with resume (within 6 s)", "contract §4 resume", resume),
        check!("server.relay_resend_input", "input the host did not acknowledge is sent again after its next hello, from the inputOffset it names; acknowledged input is not", "contract §4 resume, input.ack", resend_input),
        check!("server.relay_valid", "a valid token is upgraded (101); hello and an unknown message type keep the connection open (a ping within 30 s with TETHER_E2E_SLOW=1)", "contract §4", valid),
    ]
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/hosts/connect` for `org` with `token`; the handshake's status, and the socket on 101.
async fn handshake(
    target: &Target,
    org: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Option<Ws>)> {
    handshake_as(target, org, token, &format!("conformance-{}", now_s())).await
}

/// [`handshake`] as host `host_id`.
async fn handshake_as(
    target: &Target,
    org: &str,
    token: Option<&str>,
    host_id: &str,
) -> anyhow::Result<(u16, Option<Ws>)> {
    let url = format!(
        "{}/hosts/connect?organizationId={}&hostId={host_id}",
        target.relay,
        url::form_urlencoded::byte_serialize(org.as_bytes()).collect::<String>()
    );
    let mut request = url.as_str().into_client_request()?;
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let connector = Connector::Rustls(crate::tls::client_config());
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
    match tokio::time::timeout(Duration::from_secs(20), attempt).await {
        Err(_) => anyhow::bail!("the relay did not answer the handshake within 20 s"),
        Ok(Ok((ws, response))) => Ok((response.status().as_u16(), Some(ws))),
        Ok(Err(WsError::Http(response))) => Ok((response.status().as_u16(), None)),
        Ok(Err(e)) => Err(e).with_context(|| format!("handshake with {}", target.relay)),
    }
}

async fn expect_status(
    target: &Target,
    org: &str,
    token: Option<&str>,
    want: u16,
) -> anyhow::Result<()> {
    let (status, _) = handshake(target, org, token).await?;
    ensure!(status == want, "the relay answered {status}, not {want}");
    Ok(())
}

/// The organization the API key's minted token names, and the token.
async fn bound(target: &Target) -> anyhow::Result<(String, String, Value)> {
    let token = target.minted().await?;
    let claims = verified_claims(target, &token).await?;
    let org = claims["organizationIds"][0]
        .as_str()
        .context("the minted token names no organization")?
        .to_string();
    Ok((org, token, claims))
}

async fn no_token(target: &Target) -> anyhow::Result<()> {
    let (org, _, _) = bound(target).await?;
    expect_status(target, &org, None, 401).await
}

async fn foreign_key(target: &Target) -> anyhow::Result<()> {
    let token = foreign_token(target, 600)?;
    expect_status(target, "org_conformance", Some(&token), 401).await
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn alg_none(target: &Target) -> anyhow::Result<()> {
    let (org, token, _) = bound(target).await?;
    // The real token's claims, re-headed as unsigned.
    let payload = token.split('.').nth(1).context("token shape")?;
    let kid = jsonwebtoken::decode_header(&token)?.kid.unwrap_or_default();
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    let unsigned = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
    expect_status(target, &org, Some(&unsigned), 401).await
}

async fn hs256_public_key(target: &Target) -> anyhow::Result<()> {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let (org, token, claims) = bound(target).await?;
    let kid = jsonwebtoken::decode_header(&token)?.kid.unwrap_or_default();
    let jwks = target.jwks().await?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["kid"] == kid.as_str() && k["kty"] == "RSA")
        })
        .ok_or_else(|| NotApplicable(format!("the signing key {kid} is not an RSA key")))?;
    let decode = |field: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key[field].as_str().unwrap_or_default())
            .with_context(|| format!("JWKS {field}"))
    };
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&decode("n")?),
        rsa::BigUint::from_bytes_be(&decode("e")?),
    )?;
    let pem = public.to_public_key_pem(LineEnding::LF)?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )?;
    expect_status(target, &org, Some(&forged), 401).await
}

async fn expired(target: &Target) -> anyhow::Result<()> {
    let world =
        target.reference_world("signing an expired token needs the server's private key")?;
    let (org, _, mut claims) = bound(target).await?;
    claims["exp"] = (now_s() - 120).into();
    let token = world.auth.state().keys[0].sign(&claims)?;
    expect_status(target, &org, Some(&token), 401).await
}

async fn other_org(target: &Target) -> anyhow::Result<()> {
    let (_, token, _) = bound(target).await?;
    expect_status(
        target,
        "org_conformance_not_in_the_token",
        Some(&token),
        403,
    )
    .await
}

async fn valid(target: &Target) -> anyhow::Result<()> {
    let (org, token, _) = bound(target).await?;
    let (status, ws) = handshake(target, &org, Some(&token)).await?;
    ensure!(status == 101, "a valid token got {status}, not 101");
    let mut ws = ws.context("no socket after 101")?;
    let hello = json!({"type": "hello", "hostId": "conformance", "version": "conformance", "organizationId": org, "sessions": []});
    ws.send(Message::text(hello.to_string())).await?;
    ws.send(Message::text(
        json!({"type": "conformance.unknown", "x": 1}).to_string(),
    ))
    .await?;
    let slow = std::env::var("TETHER_E2E_SLOW").is_ok_and(|v| v == "1");
    let watch = if slow {
        Duration::from_secs(35)
    } else {
        Duration::from_secs(2)
    };
    let deadline = tokio::time::Instant::now() + watch;
    let mut pinged = false;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await;
        match next {
            Err(_) => break,
            Ok(None) => {
                anyhow::bail!("the relay closed the connection after hello and an unknown type")
            }
            Ok(Some(Err(e))) => anyhow::bail!("the connection failed after hello: {e}"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                anyhow::bail!("the relay closed the connection: {frame:?}")
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let doc: Value = serde_json::from_str(&text).unwrap_or_default();
                if doc["type"] == "ping" {
                    pinged = true;
                    ws.send(Message::text(json!({"type": "pong"}).to_string()))
                        .await?;
                    if slow {
                        break;
                    }
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    ensure!(!slow || pinged, "no ping within 35 s");
    let _ = ws.close(None).await;
    Ok(())
}

/// A valid connection as host `host_id` that said a protocol-2 `hello` announcing terminal
/// `s1` with `input_offset`, and got `resume`; the input frames that came before `resume`
/// are none (the relay resends after it).
async fn hello_resumed(
    target: &Target,
    (org, token): (&str, &str),
    host_id: &str,
    input_offset: Option<u64>,
) -> anyhow::Result<Ws> {
    use tether_contract::relay_protocol::{Control, HelloSession, PROTOCOL};
    let (status, ws) = handshake_as(target, org, Some(token), host_id).await?;
    ensure!(status == 101, "a valid token got {status}, not 101");
    let mut ws = ws.context("no socket after 101")?;
    let sessions = input_offset
        .map(|input_offset| HelloSession {
            session_id: "s1".into(),
            pid: 1,
            cols: 80,
            rows: 24,
            output_offset: 0,
            input_offset,
        })
        .into_iter()
        .collect();
    let hello = Control::Hello {
        host_id: host_id.into(),
        version: "conformance".into(),
        organization_id: org.into(),
        protocol: Some(PROTOCOL),
        sessions,
    };
    ws.send(Message::text(serde_json::to_string(&hello)?))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            // A protocol-1 relay still serves hosts (they fall back to live output): a
            // SHOULD of contract section 4, not a MUST.
            Err(_) => {
                return Err(crate::scenarios::NonStrict(
                    "no resume within 6 s of a protocol-2 hello: a protocol-1 relay, so output printed while a host reconnects is lost".into(),
                )
                .into())
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let doc: Value = serde_json::from_str(&text).unwrap_or_default();
                if doc["type"] == "resume" {
                    ensure!(
                        doc["sessions"].is_array(),
                        "resume without a sessions array: {text}"
                    );
                    return Ok(ws);
                }
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                anyhow::bail!("a binary frame came before resume")
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => anyhow::bail!("the connection ended before resume: {other:?}"),
        }
    }
}

async fn resume(target: &Target) -> anyhow::Result<()> {
    let (org, token, _) = bound(target).await?;
    let host = format!("conformance-resume-{}", now_s());
    let mut ws = hello_resumed(target, (&org, &token), &host, None).await?;
    let _ = ws.close(None).await;
    Ok(())
}

/// The keystrokes for `s1` that arrive within `limit` (until a quiet 300 ms after some).
async fn input_within(ws: &mut Ws, limit: Duration) -> anyhow::Result<Vec<u8>> {
    use tether_contract::relay_protocol::{decode_binary, KIND_INPUT};
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let until = if got.is_empty() {
            deadline
        } else {
            tokio::time::Instant::now() + Duration::from_millis(300)
        };
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return Ok(got),
            Ok(Some(Ok(Message::Binary(frame)))) => {
                if let Some((KIND_INPUT, "s1", bytes)) = decode_binary(&frame) {
                    got.extend_from_slice(bytes);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => anyhow::bail!("the connection ended: {other:?}"),
        }
    }
}

async fn resend_input(target: &Target) -> anyhow::Result<()> {
    use tether_contract::relay_protocol::Control;
    let world = target.reference_world(
        "typing into a host's terminal needs the relay's client side, which the contract leaves to the deployment",
    )?;
    let (org, token, _) = bound(target).await?;
    let keys = (org.as_str(), token.as_str());
    let host = format!("conformance-input-{}", now_s());
    let mut ws = hello_resumed(target, keys, &host, Some(0)).await?;
    let terminal = world.relay.attach(&org, &host, "s1");
    terminal.send(b"typed-1\n")?;
    let got = input_within(&mut ws, Duration::from_secs(5)).await?;
    ensure!(got == b"typed-1\n", "the input frame carried {got:?}");
    let _ = ws.close(None).await;
    // Not acknowledged, and the host's hello says ptyd has none of it: sent again.
    let mut ws = hello_resumed(target, keys, &host, Some(0)).await?;
    let again = input_within(&mut ws, Duration::from_secs(5)).await?;
    ensure!(
        again == b"typed-1\n",
        "after hello (inputOffset 0) the relay resent {again:?}, not the unacknowledged input"
    );
    let ack = Control::InputAck {
        session_id: "s1".into(),
        input_offset: 8,
    };
    ws.send(Message::text(serde_json::to_string(&ack)?)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = ws.close(None).await;
    // Acknowledged: never again.
    let mut ws = hello_resumed(target, keys, &host, Some(8)).await?;
    let after_ack = input_within(&mut ws, Duration::from_secs(1)).await?;
    ensure!(
        after_ack.is_empty(),
        "acknowledged input was sent again: {after_ack:?}"
    );
    let _ = ws.close(None).await;
    Ok(())
}
