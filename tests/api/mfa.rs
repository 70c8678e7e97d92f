//! TOTP second factor end to end: codes computed here from the secret
//! (RFC 4226/6238 by hand: base32, HMAC-SHA1, dynamic truncation), never with
//! vouch's own code.

use crate::helpers::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

/// RFC 4648 base32 without padding.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base32") as u32;
        value = (value << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// The six-digit code of `secret` for the 30-second step `offset` steps from now.
fn code(secret: &str, offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let counter = ((now / 30) + offset) as u64;
    let mut mac = Hmac::<Sha1>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let at = (hash[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([hash[at] & 0x7f, hash[at + 1], hash[at + 2], hash[at + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// Signs a user up and in and enrols TOTP; returns (user id, access token,
/// secret, backup codes, the code that confirmed the enrolment).
async fn enrolled(app: &TestApp, email: &str) -> (String, String, String, Vec<String>, String) {
    let (user, token, _) = app.user_session(email).await;
    let res = app
        .post(&format!("/v1/users/{user}/mfa/totp"), &token, json!({}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let secret = res.body["secret"].as_str().unwrap().to_owned();
    let uri = res.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")));
    assert!(res.body["qr_svg"].as_str().unwrap().contains("<svg"));
    // A wrong code does not finish the enrolment.
    let confirm = format!("/v1/users/{user}/mfa/totp/confirm");
    let wrong = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_error(
        &app.post(&confirm, &token, json!({"code": wrong})).await,
        401,
        "invalid_code",
    );
    let confirming = code(&secret, 0);
    let res = app
        .post(&confirm, &token, json!({"code": confirming}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let backup: Vec<String> = res.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup.len(), 10);
    (user, token, secret, backup, confirming)
}

async fn sign_in_challenge(app: &TestApp, email: &str) -> String {
    let res = app.sign_in(email, PASSWORD).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["mfa_required"], true);
    assert!(
        res.body.get("access_token").is_none(),
        "no tokens before the second factor"
    );
    assert_eq!(res.body["methods"], json!(["totp", "backup_code"]));
    res.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn answer(app: &TestApp, mfa_token: &str, code: &str) -> Response {
    app.request(
        "POST",
        "/v1/sessions/mfa",
        None,
        Some(json!({"mfa_token": mfa_token, "code": code})),
    )
    .await
}

fn amr(token: &Value) -> Value {
    use base64::Engine;
    let payload = token.as_str().unwrap().split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["amr"].clone()
}

#[actix_web::test]
async fn an_enrolled_user_signs_in_with_a_totp_code_once() {
    let app = spawn_app().await;
    let (user, _, secret, _, confirming) = enrolled(&app, "ada@example.org").await;
    let challenge = sign_in_challenge(&app, "ada@example.org").await;
    // The enrolment's step was spent: its code does not work again.
    assert_error(
        &answer(&app, &challenge, &confirming).await,
        401,
        "invalid_code",
    );
    // One step ahead (clock drift) does, once.
    let ahead = code(&secret, 1);
    let res = answer(&app, &challenge, &ahead).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["user"]["id"], user.as_str());
    assert_eq!(amr(&res.body["access_token"]), json!(["pwd", "otp", "mfa"]));
    let me = app
        .get("/v1/me", res.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["amr"], json!(["pwd", "otp", "mfa"]));
    // A refresh keeps how the session was signed in.
    let refreshed = app.refresh(&res.body["refresh_token"]).await;
    assert_eq!(
        amr(&refreshed.body["access_token"]),
        json!(["pwd", "otp", "mfa"])
    );
    // The challenge is spent; a new one does not take the same code again.
    assert_error(
        &answer(&app, &challenge, &ahead).await,
        401,
        "unauthenticated",
    );
    let again = sign_in_challenge(&app, "ada@example.org").await;
    assert_error(&answer(&app, &again, &ahead).await, 401, "invalid_code");
    assert_eq!(app.count_events("user.mfa_passed").await, 1);
    // Secrets never show.
    let events = app
        .events_eventually(
            "/v1/events?type=user.totp_enrollment_started",
            &app.admin_key,
            1,
        )
        .await;
    assert!(!events.text.contains(&secret));
    assert!(
        events.text.contains("\"secret\":\"[redacted]\""),
        "{}",
        events.text
    );
    app.assert_personal_fields_sealed().await;
}

#[actix_web::test]
async fn a_backup_code_works_once_and_a_challenge_is_its_users_alone() {
    let app = spawn_app().await;
    let (_, _, _, backup, _) = enrolled(&app, "ada@example.org").await;
    let (_, _, bob_secret, _, _) = enrolled(&app, "bob@example.org").await;
    let challenge = sign_in_challenge(&app, "ada@example.org").await;
    // Bob's code is no proof for Ada's challenge.
    assert_error(
        &answer(&app, &challenge, &code(&bob_secret, 1)).await,
        401,
        "invalid_code",
    );
    let res = answer(&app, &challenge, &backup[3]).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["user"]["email"], "ada@example.org");
    let again = sign_in_challenge(&app, "ada@example.org").await;
    assert_error(&answer(&app, &again, &backup[3]).await, 401, "invalid_code");
    assert_eq!(answer(&app, &again, &backup[4]).await.status, 201);
    // A challenge token changed or of another kind is no challenge.
    let res = answer(&app, "vmf_nonsense", &backup[5]).await;
    assert_error(&res, 401, "unauthenticated");
}

#[actix_web::test]
async fn removing_totp_needs_the_password_and_a_code_or_an_admin() {
    let app = spawn_app().await;
    let (user, token, secret, backup, _) = enrolled(&app, "ada@example.org").await;
    let path = format!("/v1/users/{user}/mfa/totp");
    let remove = async |body: Option<Value>, bearer: &str| {
        app.request("DELETE", &path, Some(bearer), body).await
    };
    assert_error(&remove(None, &token).await, 403, "forbidden");
    let wrong_password = json!({"current_password": "not the right passphrase", "code": backup[0]});
    assert_error(
        &remove(Some(wrong_password), &token).await,
        401,
        "invalid_credentials",
    );
    let wrong_code = json!({"current_password": PASSWORD, "code": "000000x"});
    assert_error(&remove(Some(wrong_code), &token).await, 401, "invalid_code");
    assert_eq!(app.count_events("user.totp_disabled").await, 0);
    let res = remove(
        Some(json!({"current_password": PASSWORD, "code": code(&secret, 1)})),
        &token,
    )
    .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(
        app.sign_in("ada@example.org", PASSWORD).await.status,
        201,
        "no challenge now"
    );
    // An admin resets another user's factors, recorded with the admin as actor.
    let (bob, _, _, _, _) = enrolled(&app, "bob@example.org").await;
    let res = app
        .request(
            "DELETE",
            &format!("/v1/users/{bob}/mfa/totp"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(app.sign_in("bob@example.org", PASSWORD).await.status, 201);
    let events = app
        .events_eventually("/v1/events?type=user.totp_disabled", &app.admin_key, 2)
        .await;
    let by_admin = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["by_admin"] == true)
        .unwrap_or_else(|| panic!("{}", events.text));
    assert_eq!(by_admin["metadata"]["actor"]["type"], "api_key");
}

#[actix_web::test]
async fn wrong_second_factors_are_throttled_like_sign_in_failures() {
    let app = spawn_app_with(|s| s.auth.signin_email_failures = 3).await;
    let (_, _, secret, _, _) = enrolled(&app, "ada@example.org").await;
    let challenge = sign_in_challenge(&app, "ada@example.org").await;
    let wrong = if code(&secret, 1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        assert_error(&answer(&app, &challenge, wrong).await, 401, "invalid_code");
    }
    assert_error(
        &answer(&app, &challenge, &code(&secret, 1)).await,
        429,
        "rate_limited",
    );
    // Each wrong code is a failed sign-in in the log.
    let failures = app
        .events_eventually("/v1/events?type=user.login_failed", &app.admin_key, 3)
        .await;
    let reasons: Vec<&Value> = failures.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["reason"])
        .collect();
    assert_eq!(reasons, [&json!("wrong_second_factor"); 3]);
}

#[actix_web::test]
async fn a_new_password_ends_the_challenges_of_the_old_one() {
    let app = spawn_app().await;
    let (user, token, secret, _, _) = enrolled(&app, "ada@example.org").await;
    let challenge = sign_in_challenge(&app, "ada@example.org").await;
    let res = app
        .post(
            &format!("/v1/users/{user}/password"),
            &token,
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    // Whoever held the old password and the challenge gets no session.
    let res = answer(&app, &challenge, &code(&secret, 1)).await;
    assert_error(&res, 401, "unauthenticated");
}

#[actix_web::test]
async fn forged_challenges_count_against_their_client_not_the_user_they_name() {
    let app = spawn_app_with(|s| {
        s.auth.signin_email_failures = 2;
        s.auth.token_failures = 3;
    })
    .await;
    let (user, _, secret, _, _) = enrolled(&app, "ada@example.org").await;
    let forged = format!("vmf_{}_{}", user.replace('-', ""), "A".repeat(43));
    for _ in 0..3 {
        assert_error(
            &answer(&app, &forged, "123456").await,
            401,
            "unauthenticated",
        );
    }
    assert_error(&answer(&app, &forged, "123456").await, 429, "rate_limited");
    // Ada's own sign-in is untouched by them (her email's throttle allows 2).
    let other_instance = spawn_instance(&app, |s| {
        s.auth.token_failures = 1_000_000;
    })
    .await;
    let challenge = sign_in_challenge(&other_instance, "ada@example.org").await;
    let res = answer(&other_instance, &challenge, &code(&secret, 1)).await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn wrong_codes_to_remove_totp_are_counted_as_failed_sign_ins() {
    let app = spawn_app_with(|s| s.auth.signin_email_failures = 2).await;
    let (user, token, _, _, _) = enrolled(&app, "ada@example.org").await;
    let path = format!("/v1/users/{user}/mfa/totp");
    let wrong = json!({"current_password": PASSWORD, "code": "aaaaa-aaaaa"});
    for _ in 0..2 {
        let res = app
            .request("DELETE", &path, Some(&token), Some(wrong.clone()))
            .await;
        assert_error(&res, 401, "invalid_code");
    }
    let res = app
        .request("DELETE", &path, Some(&token), Some(wrong))
        .await;
    assert_error(&res, 429, "rate_limited");
    assert_eq!(app.count_events("user.totp_disabled").await, 0);
}

#[actix_web::test]
async fn new_backup_codes_replace_the_old_ones_with_an_app_code() {
    let app = spawn_app().await;
    let (user, token, secret, old, _) = enrolled(&app, "ada@example.org").await;
    let path = format!("/v1/users/{user}/mfa/backup-codes");
    // A backup code is no proof here (they may be what was lost).
    let res = app.post(&path, &token, json!({"code": old[0]})).await;
    assert_error(&res, 401, "invalid_code");
    let ahead = code(&secret, 1);
    let res = app.post(&path, &token, json!({"code": ahead})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let new: Vec<String> = res.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    // The app code was spent; the old backup codes no longer work; a new one does.
    assert_error(
        &app.post(&path, &token, json!({"code": ahead})).await,
        401,
        "invalid_code",
    );
    let challenge = sign_in_challenge(&app, "ada@example.org").await;
    assert_error(
        &answer(&app, &challenge, &old[1]).await,
        401,
        "invalid_code",
    );
    assert_eq!(answer(&app, &challenge, &new[0]).await.status, 201);
    let events = app
        .events_eventually(
            "/v1/events?type=user.backup_codes_regenerated",
            &app.admin_key,
            1,
        )
        .await;
    assert!(
        events
            .text
            .contains("\"backup_code_hashes\":\"[redacted]\""),
        "{}",
        events.text
    );
}
