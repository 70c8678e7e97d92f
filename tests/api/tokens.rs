//! Access tokens checked independently of vouch's verifier, and forged ones refused.

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

/// HMAC-SHA256 (RFC 2104), for forging an HS256 token.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

async fn private_key(app: &TestApp, kid: &str) -> SigningKey {
    let row = app
        .db()
        .await
        .query_one(
            "SELECT private_key FROM signing_key_secrets WHERE kid = $1",
            &[&kid],
        )
        .await
        .unwrap();
    let bytes: Vec<u8> = row.get(0);
    SigningKey::from_bytes(&bytes.try_into().unwrap())
}

fn signed(header: Value, claims: Value, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

#[actix_web::test]
async fn an_access_token_verifies_with_the_published_jwks_alone() {
    let app = spawn_app().await;
    let (user_id, token, _) = app.user_session("ada@example.org").await;

    let jwks = app
        .request("GET", "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(jwks.status, 200);
    assert!(jwks
        .headers
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("max-age"));
    let header = part(&token, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    let jwk = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS");
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = VerifyingKey::from_bytes(&x).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig: [u8; 64] = URL_SAFE_NO_PAD.decode(sig).unwrap().try_into().unwrap();
    public
        .verify(
            input.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .expect("signature verifies with the JWKS key");

    let claims = part(&token, 1);
    assert_eq!(claims["iss"], "vouch");
    assert_eq!(claims["aud"], "vouch");
    assert_eq!(claims["sub"], user_id);
    assert!(claims["sid"].is_string() && claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
}

#[actix_web::test]
async fn forged_tokens_are_refused_by_introspection_and_routes() {
    let app = spawn_app().await;
    let (user_id, token, _) = app.user_session("ada@example.org").await;
    let header = part(&token, 0);
    let claims = part(&token, 1);
    let kid = header["kid"].as_str().unwrap();
    let real_key = private_key(&app, kid).await;
    let public_bytes = real_key.verifying_key().to_bytes();
    let payload = token.split('.').nth(1).unwrap();

    let alg_none = format!(
        "{}.{payload}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string())
    );
    let hs_input = format!(
        "{}.{payload}",
        b64(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string())
    );
    let hs256 = format!(
        "{hs_input}.{}",
        b64(hmac_sha256(&public_bytes, hs_input.as_bytes()))
    );
    let hs256_jwk_text = format!(
        "{hs_input}.{}",
        b64(hmac_sha256(
            b64(public_bytes).as_bytes(),
            hs_input.as_bytes()
        ))
    );
    let wrong_kid = signed(
        json!({"alg": "EdDSA", "typ": "JWT", "kid": "not-a-key"}),
        claims.clone(),
        &real_key,
    );
    let mut expired_claims = claims.clone();
    expired_claims["iat"] = json!(1_000_000_000);
    expired_claims["exp"] = json!(1_000_000_900);
    let expired = signed(header.clone(), expired_claims, &real_key);
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("someone-else");
    let wrong_aud = signed(header.clone(), other_aud, &real_key);
    let mut other_iss = claims.clone();
    other_iss["iss"] = json!("mallory");
    let wrong_iss = signed(header.clone(), other_iss, &real_key);
    let stranger = SigningKey::from_bytes(&[9u8; 32]);
    let foreign_key = signed(header.clone(), claims.clone(), &stranger);
    let mut flipped = token.clone().into_bytes();
    let at = flipped.len() - 10;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    let org = app.create_org("acme", None).await;
    let (_, introspector) = app.create_key(&id(&org), &[]).await;
    let res = app
        .post("/v1/introspect", &introspector, json!({"token": token}))
        .await;
    assert_eq!(res.body["active"], true, "the genuine token: {}", res.text);
    assert_eq!(res.body["sub"], user_id);
    assert_eq!(app.get("/v1/me", &token).await.status, 200);

    for (name, forged) in [
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("HS256 with the JWK text", hs256_jwk_text),
        ("unknown kid", wrong_kid),
        ("expired", expired),
        ("wrong aud", wrong_aud),
        ("wrong iss", wrong_iss),
        ("another key", foreign_key),
        ("flipped signature byte", flipped),
    ] {
        let res = app
            .post("/v1/introspect", &introspector, json!({"token": forged}))
            .await;
        assert_eq!(res.status, 200, "{name}: {}", res.text);
        assert_eq!(res.body, json!({"active": false}), "{name}");
        let res = app.get("/v1/me", &forged).await;
        assert_error(&res, 401, "unauthenticated");
    }
}

#[actix_web::test]
async fn rotation_keeps_old_tokens_valid_until_their_keys_retire() {
    let app = spawn_app_with(|s| {
        s.auth.access_token_ttl_seconds = 2;
        s.auth.jwks_retire_margin_seconds = 0;
    })
    .await;
    app.create_user("ada@example.org").await;
    let old = app.sign_in("ada@example.org", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = part(&old, 0)["kid"].as_str().unwrap().to_owned();

    let new_kid = app.app.rotate_signing_key().await.unwrap();
    assert_ne!(new_kid, old_kid);
    let jwks = app
        .request("GET", "/.well-known/jwks.json", None, None)
        .await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old_kid.as_str(), new_kid.as_str()]);
    assert_eq!(
        app.get("/v1/me", &old).await.status,
        200,
        "a token of the old key still works"
    );
    let new = app.sign_in("ada@example.org", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(part(&new, 0)["kid"], new_kid.as_str(), "the new key signs");
    assert_eq!(
        app.app.retire_expired_signing_keys().await.unwrap(),
        0,
        "not before the old tokens expire"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.app.retire_expired_signing_keys().await.unwrap(), 1);
    let jwks = app
        .request("GET", "/.well-known/jwks.json", None, None)
        .await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str()]);
    assert_eq!(app.count_events("signing_key.retired").await, 1);
}

#[actix_web::test]
async fn a_token_says_how_its_session_was_signed_in_and_a_refresh_keeps_it() {
    let app = spawn_app().await;
    let (_, access, refresh) = app.user_session("ada@example.org").await;
    assert_eq!(part(&access, 1)["amr"], json!(["pwd"]));
    let me = app.get("/v1/me", &access).await;
    assert_eq!(me.body["amr"], json!(["pwd"]), "{}", me.text);
    let refreshed = app.refresh(&json!(refresh)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let again = refreshed.body["access_token"].as_str().unwrap();
    assert_eq!(part(again, 1)["amr"], json!(["pwd"]));
    let res = app
        .post("/v1/introspect", &app.admin_key, json!({ "token": again }))
        .await;
    assert_eq!(res.body["amr"], json!(["pwd"]), "{}", res.text);
    // Stored as the session's, and rebuilt so by replay.
    let mode = vouch::app::replay::Mode::Verify;
    assert_eq!(app.replay(mode).await.unwrap().drift, vec![]);
}
