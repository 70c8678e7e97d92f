//! Passkeys end to end, with software authenticators of
//! webauthn-authenticator-rs playing the browser and the device: register,
//! list, rename, remove; sign in with a passkey alone and as the second
//! factor; and the ceremonies vouch must refuse (a wrong origin, a replayed
//! assertion, a counter going backwards, another user's credential).

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url,
    WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_authenticator_rs::AuthenticatorBackend;

/// A passkey's name: personal data (the log scan looks for it).
const PASSKEY_NAME: &str = "Ada's travel laptop";

/// The app's pages: the relying party is `app.example.org`.
const ORIGIN: &str = "https://app.example.org";

async fn spawn() -> TestApp {
    spawn_app_with(|s| s.mail.public_url = format!("{ORIGIN}/account")).await
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// A software passkey that performs user verification (as platform
/// passkeys do).
fn soft_passkey() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// Registers a passkey of `user` with `device`; returns the passkey's JSON.
async fn register(
    app: &TestApp,
    user: &str,
    token: &str,
    device: &mut impl AuthenticatorBackend,
    name: &str,
) -> Value {
    let options = app
        .post(
            &format!("/v1/users/{user}/passkeys/options"),
            token,
            json!({"current_password": PASSWORD}),
        )
        .await;
    assert_eq!(options.status, 201, "{}", options.text);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(options.body["options"].clone()).unwrap();
    let credential = device.do_registration(origin(), ccr).unwrap();
    let res = app
        .post(
            &format!("/v1/users/{user}/passkeys"),
            token,
            json!({
                "ceremony_id": options.body["ceremony_id"],
                "credential": credential,
                "name": name,
            }),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

/// Starts a passkey sign-in; `mfa_token` for a second factor.
async fn options(app: &TestApp, mfa_token: Option<&str>) -> Value {
    let body = mfa_token.map(|t| json!({"mfa_token": t}));
    let res = app
        .request("POST", "/v1/sessions/passkey/options", None, body)
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

/// What a browser with a discoverable passkey answers to a sign-in's
/// options: the device finds its own credential for the relying party (the
/// software devices cannot search, so the client names it to them) and
/// returns the user handle stored with it.
fn discoverable_answer(
    device: &mut impl AuthenticatorBackend,
    started: &Value,
    passkey: &Value,
    at: Url,
) -> Value {
    let mut options = started["options"].clone();
    options["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": passkey["credential_id"]}]);
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let mut credential: PublicKeyCredential = device.do_authentication(at, rcr).unwrap();
    let user = uuid::Uuid::parse_str(passkey["user_id"].as_str().unwrap()).unwrap();
    credential.response.user_handle = Some(user.as_bytes().to_vec());
    serde_json::to_value(credential).unwrap()
}

/// A device's answer to a second factor's options (they name the user's
/// credentials).
fn answer(device: &mut impl AuthenticatorBackend, started: &Value, at: Url) -> Value {
    let rcr: RequestChallengeResponse = serde_json::from_value(started["options"].clone()).unwrap();
    serde_json::to_value(device.do_authentication(at, rcr).unwrap()).unwrap()
}

async fn finish(app: &TestApp, started: &Value, credential: &Value, mfa: Option<&str>) -> Response {
    let mut body = json!({"ceremony_id": started["ceremony_id"], "credential": credential});
    if let Some(t) = mfa {
        body["mfa_token"] = json!(t);
    }
    app.request("POST", "/v1/sessions/passkey", None, Some(body))
        .await
}

/// Signs in with a passkey alone; returns the access token (its session
/// passed a second factor: amr `hwk`, `mfa`).
async fn passkey_session(
    app: &TestApp,
    device: &mut impl AuthenticatorBackend,
    passkey: &Value,
) -> String {
    let started = options(app, None).await;
    let credential = discoverable_answer(device, &started, passkey, origin());
    let res = finish(app, &started, &credential, None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["access_token"].as_str().unwrap().to_owned()
}

/// Signs in with the password; returns the challenge's token.
async fn challenge(app: &TestApp, email: &str) -> (String, Value) {
    let res = app.sign_in(email, PASSWORD).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["mfa_required"], true);
    (
        res.body["mfa_token"].as_str().unwrap().to_owned(),
        res.body["methods"].clone(),
    )
}

#[actix_web::test]
async fn a_passkey_is_registered_named_listed_and_signs_in_alone() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    let passkey = register(&app, &user, &token, &mut device, PASSKEY_NAME).await;
    assert_eq!(passkey["name"], PASSKEY_NAME);
    assert_eq!(passkey["user_id"], user.as_str());
    assert_eq!(passkey["backup_eligible"], false);
    assert!(passkey["last_used_at"].is_null());
    let passkey_id = id(&passkey);

    let list = app.get(&format!("/v1/users/{user}/passkeys"), &token).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let path = format!("/v1/users/{user}/passkeys/{passkey_id}");
    let renamed = app
        .patch(&path, &token, json!({"name": "  Work laptop "}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Work laptop");
    assert_error(
        &app.patch(&path, &token, json!({"name": ""})).await,
        422,
        "validation_error",
    );

    // Passwordless: the passkey verified its user, a factor of its own.
    let started = options(&app, None).await;
    assert_eq!(started["options"]["publicKey"]["rpId"], "app.example.org");
    let credential = discoverable_answer(&mut device, &started, &passkey, origin());
    let res = finish(&app, &started, &credential, None).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["user"]["id"], user.as_str());
    let access = res.body["access_token"].as_str().unwrap();
    let me = app.get("/v1/me", access).await;
    assert_eq!(me.body["amr"], json!(["hwk", "mfa"]), "{}", me.text);
    let list = app.get(&format!("/v1/users/{user}/passkeys"), &token).await;
    assert!(list.body["items"][0]["last_used_at"].is_string());
    assert_eq!(app.count_events("user.passkey_used").await, 1);

    // The credential never shows; the log holds it sealed.
    let events = app
        .events_eventually("/v1/events?type=user.passkey_used", &app.admin_key, 1)
        .await;
    assert!(
        events.text.contains("\"credential\":\"[redacted]\""),
        "{}",
        events.text
    );
    app.assert_personal_fields_sealed().await;
}

#[actix_web::test]
async fn a_passkey_answers_a_password_sign_ins_challenge() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    register(&app, &user, &token, &mut device, "Phone").await;
    // Holding a passkey turns the second factor on.
    let (mfa_token, methods) = challenge(&app, "ada@example.org").await;
    assert_eq!(methods, json!(["passkey"]));
    let started = options(&app, Some(&mfa_token)).await;
    let allowed = &started["options"]["publicKey"]["allowCredentials"];
    assert_eq!(allowed.as_array().unwrap().len(), 1);
    let credential = answer(&mut device, &started, origin());
    let res = finish(&app, &started, &credential, Some(&mfa_token)).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let access = res.body["access_token"].as_str().unwrap();
    let me = app.get("/v1/me", access).await;
    assert_eq!(me.body["amr"], json!(["pwd", "hwk", "mfa"]), "{}", me.text);
    assert_eq!(app.count_events("user.mfa_passed").await, 1);
    // The challenge is spent.
    assert_error(
        &app.request(
            "POST",
            "/v1/sessions/passkey/options",
            None,
            Some(json!({"mfa_token": mfa_token})),
        )
        .await,
        401,
        "unauthenticated",
    );
}

#[actix_web::test]
async fn an_assertion_for_another_origin_is_refused() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let evil = Url::parse("https://app.example.org.evil.test").unwrap();
    // A registration made on another origin is refused, and recorded.
    let opts = app
        .post(
            &format!("/v1/users/{user}/passkeys/options"),
            &token,
            json!({"current_password": PASSWORD}),
        )
        .await;
    let ccr: CreationChallengeResponse =
        serde_json::from_value(opts.body["options"].clone()).unwrap();
    let made = AuthenticatorBackend::perform_register(
        &mut soft_passkey(),
        evil.clone(),
        ccr.public_key,
        60_000,
    )
    .unwrap();
    let res = app
        .post(
            &format!("/v1/users/{user}/passkeys"),
            &token,
            json!({"ceremony_id": opts.body["ceremony_id"], "credential": made}),
        )
        .await;
    assert_error(&res, 401, "invalid_passkey");
    assert_eq!(app.count_events("user.passkey_registered").await, 0);
    assert_eq!(app.count_events("user.mfa_enrollment_failed").await, 1);

    let mut device = soft_passkey();
    let passkey = register(&app, &user, &token, &mut device, "Laptop").await;
    // A look-alike site relays vouch's options to the device; the device
    // signs for the origin it is really on.
    let started = options(&app, None).await;
    let mut forged = started["options"].clone();
    forged["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": passkey["credential_id"]}]);
    let rcr: RequestChallengeResponse = serde_json::from_value(forged).unwrap();
    let mut credential =
        AuthenticatorBackend::perform_auth(&mut device, evil, rcr.public_key, 60_000).unwrap();
    credential.response.user_handle =
        Some(uuid::Uuid::parse_str(&user).unwrap().as_bytes().to_vec());
    let res = finish(
        &app,
        &started,
        &serde_json::to_value(credential).unwrap(),
        None,
    )
    .await;
    assert_error(&res, 401, "invalid_passkey");
    assert_eq!(app.count_events("session.started").await, 1);
    assert_eq!(app.count_events_eventually("user.login_failed", 1).await, 1);
}

#[actix_web::test]
async fn a_replayed_assertion_is_refused() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    let passkey = register(&app, &user, &token, &mut device, "Laptop").await;
    let started = options(&app, None).await;
    let credential = discoverable_answer(&mut device, &started, &passkey, origin());
    assert_eq!(finish(&app, &started, &credential, None).await.status, 201);
    // The same answer again: its ceremony is spent.
    assert_error(
        &finish(&app, &started, &credential, None).await,
        401,
        "unauthenticated",
    );
    // Against a fresh ceremony: it signed another challenge.
    let fresh = options(&app, None).await;
    assert_error(
        &finish(&app, &fresh, &credential, None).await,
        401,
        "invalid_passkey",
    );
    assert_eq!(app.count_events("user.passkey_used").await, 1);
}

#[actix_web::test]
async fn a_cloned_authenticator_whose_counter_goes_back_is_refused() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let (mut device, _) = SoftToken::new(true).unwrap();
    let passkey = register(&app, &user, &token, &mut device, "Key").await;
    // A copy of the device as it is now (counter 0).
    let mut clone = SoftToken::from_cbor(&device.to_cbor().unwrap()).unwrap();
    for _ in 0..2 {
        let started = options(&app, None).await;
        let credential = discoverable_answer(&mut device, &started, &passkey, origin());
        assert_eq!(finish(&app, &started, &credential, None).await.status, 201);
    }
    // The copy signs with counter 1, below the 2 vouch has seen.
    let started = options(&app, None).await;
    let credential = discoverable_answer(&mut clone, &started, &passkey, origin());
    assert_error(
        &finish(&app, &started, &credential, None).await,
        401,
        "invalid_passkey",
    );
    assert_eq!(app.count_events("user.passkey_used").await, 2);
}

#[actix_web::test]
async fn another_users_passkey_is_refused() {
    let app = spawn().await;
    let (ada, ada_token, _) = app.user_session("ada@example.org").await;
    let (bob, bob_token, _) = app.user_session("bob@example.org").await;
    let mut ada_device = soft_passkey();
    let mut bob_device = soft_passkey();
    register(&app, &ada, &ada_token, &mut ada_device, "Ada's").await;
    let bobs = register(&app, &bob, &bob_token, &mut bob_device, "Bob's").await;

    // Bob's passkey answering Ada's challenge.
    let (mfa_token, _) = challenge(&app, "ada@example.org").await;
    let started = options(&app, Some(&mfa_token)).await;
    let mut forged = started["options"].clone();
    forged["publicKey"]["allowCredentials"] =
        json!([{"type": "public-key", "id": bobs["credential_id"]}]);
    let rcr: RequestChallengeResponse = serde_json::from_value(forged).unwrap();
    let credential =
        serde_json::to_value(bob_device.do_authentication(origin(), rcr).unwrap()).unwrap();
    assert_error(
        &finish(&app, &started, &credential, Some(&mfa_token)).await,
        401,
        "invalid_passkey",
    );

    // Bob's passkey claiming to be Ada's (her user handle) when signing in alone.
    let started = options(&app, None).await;
    let mut credential = discoverable_answer(&mut bob_device, &started, &bobs, origin());
    credential["response"]["userHandle"] =
        json!(URL_SAFE_NO_PAD.encode(uuid::Uuid::parse_str(&ada).unwrap().as_bytes()));
    assert_error(
        &finish(&app, &started, &credential, None).await,
        401,
        "invalid_passkey",
    );
    // A challenge's ceremony is its user's alone.
    let (bob_mfa, _) = challenge(&app, "bob@example.org").await;
    let bob_started = options(&app, Some(&bob_mfa)).await;
    let (ada_mfa, _) = challenge(&app, "ada@example.org").await;
    let credential = answer(&mut bob_device, &bob_started, origin());
    assert_error(
        &finish(&app, &bob_started, &credential, Some(&ada_mfa)).await,
        401,
        "unauthenticated",
    );
    assert_eq!(app.count_events("user.mfa_passed").await, 0);
    // Only the owner manages a passkey.
    let path = format!("/v1/users/{bob}/passkeys/{}", id(&bobs));
    assert_error(
        &app.patch(&path, &ada_token, json!({"name": "mine"})).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get(&format!("/v1/users/{bob}/passkeys"), &ada_token)
            .await,
        404,
        "not_found",
    );
}

#[actix_web::test]
async fn registration_needs_the_password_and_a_ceremony_works_once() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let path = format!("/v1/users/{user}/passkeys/options");
    assert_error(
        &app.post(&path, &token, json!({"current_password": "not it at all"}))
            .await,
        401,
        "invalid_credentials",
    );
    assert_error(
        &app.post(&path, &token, json!({})).await,
        422,
        "validation_error",
    );
    // The options are a resource of their own, not a passkey named "options".
    let res = app
        .request("PATCH", &path, Some(&token), Some(json!({"name": "x"})))
        .await;
    assert_error(&res, 405, "method_not_allowed");
    assert_eq!(res.headers.get("allow").unwrap(), "POST");
    let opts = app
        .post(&path, &token, json!({"current_password": PASSWORD}))
        .await;
    let ccr: CreationChallengeResponse =
        serde_json::from_value(opts.body["options"].clone()).unwrap();
    let mut device = soft_passkey();
    let made = device.do_registration(origin(), ccr).unwrap();
    let body = json!({"ceremony_id": opts.body["ceremony_id"], "credential": made});
    let register_path = format!("/v1/users/{user}/passkeys");
    // Another user cannot take (nor spend) Ada's ceremony.
    let (bob, bob_token, _) = app.user_session("bob@example.org").await;
    assert_error(
        &app.post(
            &format!("/v1/users/{bob}/passkeys"),
            &bob_token,
            body.clone(),
        )
        .await,
        409,
        "conflict",
    );
    let first = app.post(&register_path, &token, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_error(
        &app.post(&register_path, &token, body).await,
        409,
        "conflict",
    );
    // Ada holds a passkey now: she manages them from a session that used it.
    let token = passkey_session(&app, &mut device, &first.body).await;
    // A malformed credential is a validation error, and changes nothing.
    let opts = app
        .post(&path, &token, json!({"current_password": PASSWORD}))
        .await;
    assert_error(
        &app.post(
            &register_path,
            &token,
            json!({"ceremony_id": opts.body["ceremony_id"], "credential": {"id": 7}}),
        )
        .await,
        422,
        "validation_error",
    );
    // ... and leaves the ceremony for a proper answer.
    let ccr: CreationChallengeResponse =
        serde_json::from_value(opts.body["options"].clone()).unwrap();
    let made = soft_passkey().do_registration(origin(), ccr).unwrap();
    let res = app
        .post(
            &register_path,
            &token,
            json!({"ceremony_id": opts.body["ceremony_id"], "credential": made}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["name"], "Passkey");
    assert_eq!(app.count_events("user.passkey_registered").await, 2);
}

#[actix_web::test]
async fn removing_the_last_passkey_turns_the_second_factor_off() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    let first = register(&app, &user, &token, &mut device, "One").await;
    let token = passkey_session(&app, &mut device, &first).await;
    let second = register(&app, &user, &token, &mut soft_passkey(), "Two").await;
    let path = |p: &Value| format!("/v1/users/{user}/passkeys/{}", id(p));
    assert_error(
        &app.request(
            "DELETE",
            &path(&first),
            Some(&token),
            Some(json!({"current_password": "wrong password!"})),
        )
        .await,
        401,
        "invalid_credentials",
    );
    assert_error(&app.delete(&path(&first), &token).await, 403, "forbidden");
    let res = app
        .request(
            "DELETE",
            &path(&first),
            Some(&token),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    // One is left: sign-in still asks for it.
    challenge(&app, "ada@example.org").await;
    // A vouch:admin reset, recorded with its actor.
    assert_eq!(app.delete(&path(&second), &app.admin_key).await.status, 204);
    assert_error(
        &app.delete(&path(&second), &app.admin_key).await,
        404,
        "not_found",
    );
    let removed = app
        .events_eventually("/v1/events?type=user.passkey_removed", &app.admin_key, 2)
        .await;
    assert_eq!(removed.body["items"][1]["data"]["by_admin"], true);
    assert_eq!(
        removed.body["items"][1]["metadata"]["actor"]["type"],
        "api_key"
    );
    assert_eq!(app.sign_in("ada@example.org", PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn passkeys_are_off_without_a_domain_in_the_public_url() {
    let app = spawn_app_with(|s| s.mail.public_url = "http://127.0.0.1:8080".into()).await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    assert_error(
        &app.post(
            &format!("/v1/users/{user}/passkeys/options"),
            &token,
            json!({"current_password": PASSWORD}),
        )
        .await,
        409,
        "conflict",
    );
    assert_error(
        &app.request("POST", "/v1/sessions/passkey/options", None, None)
            .await,
        409,
        "conflict",
    );
}

#[actix_web::test]
async fn a_user_with_a_second_factor_manages_passkeys_only_after_passing_it() {
    let app = spawn().await;
    let (user, password_only, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    register(&app, &user, &password_only, &mut device, "First").await;
    // The session signed in before the passkey existed passed no second
    // factor: with it (and the password) no passkey is added or removed.
    let path = format!("/v1/users/{user}/passkeys/options");
    let body = json!({"current_password": PASSWORD});
    assert_error(
        &app.post(&path, &password_only, body.clone()).await,
        403,
        "forbidden",
    );
    // A session that passed it may.
    let (mfa_token, _) = challenge(&app, "ada@example.org").await;
    let started = options(&app, Some(&mfa_token)).await;
    let credential = answer(&mut device, &started, origin());
    let res = finish(&app, &started, &credential, Some(&mfa_token)).await;
    let strong = res.body["access_token"].as_str().unwrap().to_owned();
    register(&app, &user, &strong, &mut soft_passkey(), "Second").await;
}

#[actix_web::test]
async fn a_retried_passkey_sign_in_replays_no_tokens_of_an_ended_session() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let mut device = soft_passkey();
    let passkey = register(&app, &user, &token, &mut device, "Laptop").await;
    let started = options(&app, None).await;
    let credential = discoverable_answer(&mut device, &started, &passkey, origin());
    let body = json!({"ceremony_id": started["ceremony_id"], "credential": credential});
    let send = || async {
        let mut res = app
            .client
            .post(format!("{}/v1/sessions/passkey", app.address))
            .insert_header(("Idempotency-Key", "passkey-retry-1"))
            .send_json(&body)
            .await
            .unwrap();
        let bytes = res.body().await.unwrap();
        (
            res.status().as_u16(),
            serde_json::from_slice::<Value>(&bytes).unwrap(),
        )
    };
    let (status, first) = send().await;
    assert_eq!(status, 201, "{first}");
    // A retry while the session lives gets the same answer.
    assert_eq!(send().await.1["session_id"], first["session_id"]);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.delete("/v1/sessions/current", access).await.status, 204);
    let (status, after) = send().await;
    assert_eq!(status, 409, "{after}");
    assert_eq!(after["error"]["code"], "conflict");
}

#[actix_web::test]
async fn a_challenge_offers_no_passkey_while_passkeys_are_off() {
    let app = spawn().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let passkey = register(&app, &user, &token, &mut soft_passkey(), "Laptop").await;
    // Another instance of the same deployment, its public URL an address.
    let off = spawn_instance(&app, |s| s.mail.public_url = "http://127.0.0.1:8080".into()).await;
    let res = off.sign_in("ada@example.org", PASSWORD).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["methods"], json!([]));
    // An admin can still remove the passkey there.
    let path = format!("/v1/users/{user}/passkeys/{}", id(&passkey));
    assert_eq!(off.delete(&path, &off.admin_key).await.status, 204);
    assert_eq!(off.sign_in("ada@example.org", PASSWORD).await.status, 201);
}
