//! The account lifecycle end to end through a real SMTP server: email
//! verification, password reset and email change, with their bad tokens.

use crate::helpers::*;
use crate::smtp::SmtpSink;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use vouch::app::{AppError, Ctx, Policy};

use vouch::auth::password::NewPassword;
use vouch::clock::FixedClock;

/// A service whose mailer sends to `sink`.
pub async fn spawn_mailing_app(
    sink: &SmtpSink,
    adjust: impl FnOnce(&mut vouch::config::Settings),
) -> TestApp {
    let url = sink.url();
    spawn_app_with(|s| {
        s.mail.mailer = true;
        s.mail.mail_url = Some(url);
        s.mail.public_url = "https://app.example.org/account".into();
        adjust(s);
    })
    .await
}

#[actix_web::test]
async fn a_user_verifies_their_address_with_the_mailed_token_once() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, token, _) = app.user_session("ada@example.org").await;
    let (_, bob_token, _) = app.user_session("bob@example.org").await;
    let user = app.get(&format!("/v1/users/{ada}"), &token).await;
    assert_eq!(user.body["email_verified"], false);

    // Someone else cannot ask for Ada's mail.
    let res = app
        .post(
            &format!("/v1/users/{ada}/email-verification"),
            &bob_token,
            json!({}),
        )
        .await;
    assert_error(&res, 404, "not_found");
    let res = app
        .post(
            &format!("/v1/users/{ada}/email-verification"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text);
    let mail = sink
        .wait_for("ada@example.org", "Confirm your email address")
        .await;
    assert!(mail
        .decoded()
        .contains("https://app.example.org/account/verify-email?token=vev_"));
    let message_id = mail.header("Message-ID").unwrap();
    assert!(message_id.ends_with("@app.example.org>"), "{message_id}");
    let token_text = mail.token().unwrap();
    // The token stands nowhere in the database, not even in the log.
    let dump = app
        .db()
        .await
        .query_one("SELECT string_agg(data::text, ' ') FROM auth_events", &[])
        .await
        .unwrap();
    let log: String = dump.get(0);
    assert!(!log.contains(&token_text) && !log.contains("ada@example.org"));

    // Bad tokens: one answer, nothing changes.
    let events = app.count_events("user.email_verified").await;
    for bad in [
        "",
        "vev_nonsense",
        &token_text.replace("vev_", "vpr_"),
        &crate::smtp::altered(&token_text),
    ] {
        let res = app
            .request(
                "POST",
                "/v1/email-verification/confirm",
                None,
                Some(json!({"token": bad})),
            )
            .await;
        assert_error(&res, 400, "invalid_token");
    }
    assert_eq!(app.count_events("user.email_verified").await, events);

    let res = app
        .request(
            "POST",
            "/v1/email-verification/confirm",
            None,
            Some(json!({"token": token_text})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["email_verified"], true);
    assert_eq!(res.body["id"], ada.as_str());
    // Used: refused alike.
    let res = app
        .request(
            "POST",
            "/v1/email-verification/confirm",
            None,
            Some(json!({"token": token_text})),
        )
        .await;
    assert_error(&res, 400, "invalid_token");
    let res = app
        .post(
            &format!("/v1/users/{ada}/email-verification"),
            &token,
            json!({}),
        )
        .await;
    assert_error(&res, 409, "conflict");
    assert_eq!(app.count_events("user.email_verified").await, events + 1);
    // The events API never shows the token or its hash.
    let shown = app
        .events_eventually(
            "/v1/events?type=user.email_verification_requested",
            &app.admin_key,
            1,
        )
        .await;
    assert!(
        shown.text.contains("\"token\":\"[redacted]\""),
        "{}",
        shown.text
    );
    assert!(!shown.text.contains(&token_text));
}

#[actix_web::test]
async fn sign_in_waits_for_a_verified_address_when_required() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |s| s.auth.require_verified_email = true).await;
    app.create_user("eve@example.org").await;
    // Sign-up sent the first mail.
    let first = sink
        .wait_for("eve@example.org", "Confirm")
        .await
        .token()
        .unwrap();
    let res = app
        .sign_in("eve@example.org", "not the right passphrase")
        .await;
    assert_error(&res, 401, "invalid_credentials");
    // The right password learns why, and gets a fresh mail.
    let res = app.sign_in("eve@example.org", PASSWORD).await;
    assert_error(&res, 403, "email_not_verified");
    app.count_events_eventually("user.email_verification_requested", 2)
        .await;
    sink.wait_for_count("eve@example.org", 2).await;
    let latest = sink.mails_to("eve@example.org")[1].token().unwrap();
    let confirm = async |token: &str| {
        app.request(
            "POST",
            "/v1/email-verification/confirm",
            None,
            Some(json!({"token": token})),
        )
        .await
    };
    assert_error(&confirm(&first).await, 400, "invalid_token");
    assert_eq!(confirm(&latest).await.status, 200);
    let res = app.sign_in("eve@example.org", PASSWORD).await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn a_password_reset_sets_a_new_password_once_and_ends_every_session() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, _, refresh) = app.user_session("ada@example.org").await;
    let second = app.sign_in("ada@example.org", PASSWORD).await;
    assert_eq!(second.status, 201);

    for email in ["ada@example.org", "nobody@example.org", " ADA@example.org "] {
        let res = app
            .request(
                "POST",
                "/v1/password-reset",
                None,
                Some(json!({"email": email})),
            )
            .await;
        assert_eq!(res.status, 202, "{}", res.text);
        assert!(res.text.is_empty());
    }
    let res = app
        .request(
            "POST",
            "/v1/password-reset",
            None,
            Some(json!({"email": "not an address"})),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    // Two requests for Ada: the second replaced the first's token.
    app.count_events_eventually("user.password_reset_requested", 2)
        .await;
    sink.wait_for_count("ada@example.org", 2).await;
    let mails = sink.mails_to("ada@example.org");
    let (first, latest) = (mails[0].token().unwrap(), mails[1].token().unwrap());
    assert!(sink.mails_to("nobody@example.org").is_empty());
    assert_eq!(app.count_events("user.password_reset_requested").await, 2);

    let confirm = async |token: &str, password: &str| {
        app.request(
            "POST",
            "/v1/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": password})),
        )
        .await
    };
    assert_error(
        &confirm(&first, "a brand new passphrase").await,
        400,
        "invalid_token",
    );
    assert_error(&confirm(&latest, "password").await, 422, "validation_error");
    let res = confirm(&latest, "a brand new passphrase").await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_error(
        &confirm(&latest, "yet another passphrase").await,
        400,
        "invalid_token",
    );

    assert_eq!(app.count_revocations("password_reset").await, 2);
    assert_eq!(app.refresh(&json!(refresh)).await.status, 401);
    assert_error(
        &app.sign_in("ada@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(
        app.sign_in("ada@example.org", "a brand new passphrase")
            .await
            .status,
        201
    );
    assert_eq!(app.count_events("user.password_reset").await, 1);
    let shown = app
        .get(&format!("/v1/events?stream_id={ada}"), &app.admin_key)
        .await;
    assert!(!shown.text.contains(&latest));
    // The resetter acted as Ada: their address is sealed for her, also on
    // the revocations.
    app.assert_personal_fields_sealed().await;
}

#[actix_web::test]
async fn an_expired_reset_token_is_refused_and_changes_nothing() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    app.create_user("ada@example.org").await;
    let res = app
        .request(
            "POST",
            "/v1/password-reset",
            None,
            Some(json!({"email": "ada@example.org"})),
        )
        .await;
    assert_eq!(res.status, 202);
    let token = sink
        .wait_for("ada@example.org", "Reset")
        .await
        .token()
        .unwrap();
    // The same service an hour and a second later.
    let later = FixedClock::at(chrono::Utc::now() + chrono::Duration::seconds(3601));
    let app_later =
        vouch::app::App::with_clock(app.app.pool().clone(), Policy::default(), Arc::new(later))
            .with_personal_data(keyring(&app));
    let new = NewPassword::parse("new_password", "a brand new passphrase").unwrap();
    let outcome = app_later
        .confirm_password_reset(&Ctx::system("test"), &token, new)
        .await;
    assert!(
        matches!(outcome, Err(AppError::InvalidToken)),
        "{outcome:?}"
    );
    assert_eq!(app.count_events("user.password_reset").await, 0);
    assert_eq!(app.sign_in("ada@example.org", PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn wrong_tokens_from_one_client_are_throttled_whichever_account_they_name() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |s| s.auth.token_failures = 3).await;
    let (ada, _, _) = app.user_session("ada@example.org").await;
    let (bob, _, _) = app.user_session("bob@example.org").await;
    let wrong = |user: &str| format!("vpr_{}_{}", user.replace('-', ""), "A".repeat(43));
    let confirm = async |token: &str| {
        app.request(
            "POST",
            "/v1/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": "a brand new passphrase"})),
        )
        .await
    };
    // Malformed, Ada's, Bob's: each counts for this client.
    for token in ["vpr_garbage".to_owned(), wrong(&ada), wrong(&bob)] {
        assert_error(&confirm(&token).await, 400, "invalid_token");
    }
    for token in [wrong(&ada), wrong(&bob)] {
        assert_error(&confirm(&token).await, 429, "rate_limited");
    }
    // No argon2 ran for any of them, and nothing was recorded.
    assert_eq!(app.count_events("user.password_reset").await, 0);
}

#[actix_web::test]
async fn an_email_change_moves_the_account_after_the_new_address_confirms() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, token, _) = app.user_session("ada@example.org").await;
    app.create_user("taken@example.org").await;
    let path = format!("/v1/users/{ada}/email");
    let ask = async |new_email: &str, password: &str| {
        app.post(
            &path,
            &token,
            json!({"new_email": new_email, "current_password": password}),
        )
        .await
    };
    assert_error(
        &ask("new@example.org", "not the right passphrase").await,
        401,
        "invalid_credentials",
    );
    assert_error(
        &ask("taken@example.org", PASSWORD).await,
        409,
        "email_taken",
    );
    assert_error(
        &ask("ada@example.org", PASSWORD).await,
        422,
        "validation_error",
    );
    assert_error(
        &ask("not an address", PASSWORD).await,
        422,
        "validation_error",
    );
    let res = ask("new@example.org", PASSWORD).await;
    assert_eq!(res.status, 202, "{}", res.text);
    let to_new = sink
        .wait_for("new@example.org", "Confirm your new email address")
        .await;
    let notice = sink.wait_for("ada@example.org", "is changing").await;
    assert!(notice.token().is_none(), "the old address gets no token");
    let change = to_new.token().unwrap();
    assert!(change.starts_with("vec_"));
    assert_eq!(
        app.sign_in("ada@example.org", PASSWORD).await.status,
        201,
        "nothing moved yet"
    );

    let res = app
        .request(
            "POST",
            "/v1/email-change/confirm",
            None,
            Some(json!({"token": change})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["email"], "new@example.org");
    assert_eq!(res.body["email_verified"], true);
    let res = app
        .request(
            "POST",
            "/v1/email-change/confirm",
            None,
            Some(json!({"token": change})),
        )
        .await;
    assert_error(&res, 400, "invalid_token");
    assert_eq!(app.sign_in("new@example.org", PASSWORD).await.status, 201);
    assert_error(
        &app.sign_in("ada@example.org", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    app.assert_personal_fields_sealed().await;
    // The old address is free again.
    assert_eq!(
        app.request(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": "ada@example.org", "password": PASSWORD}))
        )
        .await
        .status,
        201
    );
}

#[actix_web::test]
async fn an_address_registered_while_its_change_was_pending_is_not_taken_twice() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, token, _) = app.user_session("ada@example.org").await;
    let res = app
        .post(
            &format!("/v1/users/{ada}/email"),
            &token,
            json!({"new_email": "race@example.org", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 202);
    let change = sink
        .wait_for("race@example.org", "Confirm")
        .await
        .token()
        .unwrap();
    app.create_user("race@example.org").await;
    let res = app
        .request(
            "POST",
            "/v1/email-change/confirm",
            None,
            Some(json!({"token": change})),
        )
        .await;
    assert_error(&res, 409, "email_taken");
    assert_eq!(app.count_events("user.email_changed").await, 0);
    assert_eq!(app.sign_in("ada@example.org", PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn a_mail_server_outage_loses_no_mail() {
    let sink = SmtpSink::start().await;
    sink.set_down(true);
    let app = spawn_mailing_app(&sink, |_| {}).await;
    app.create_user("ada@example.org").await;
    for _ in 0..2 {
        let res = app
            .request(
                "POST",
                "/v1/password-reset",
                None,
                Some(json!({"email": "ada@example.org"})),
            )
            .await;
        assert_eq!(res.status, 202);
    }
    app.count_events_eventually("user.password_reset_requested", 2)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sink.received().is_empty());
    let lag = async || {
        let metrics = app.get("/metrics", &app.admin_key).await.text;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("vouch_mailer_lag_events "))
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(
        lag().await >= 2,
        "the waiting requests show as the mailer's lag"
    );
    sink.set_down(false);
    sink.wait_for_count("ada@example.org", 2).await;
    let ids: std::collections::BTreeSet<_> = sink
        .received()
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "one message id per request; none sent twice");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lag().await != 0 {
        assert!(std::time::Instant::now() < deadline, "the mailer caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn racing_confirmations_spend_a_token_once_and_take_an_address_once() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    // One reset token, confirmed twice at once: one 204, one invalid_token.
    app.create_user("ada@example.org").await;
    let res = app
        .request(
            "POST",
            "/v1/password-reset",
            None,
            Some(json!({"email": "ada@example.org"})),
        )
        .await;
    assert_eq!(res.status, 202);
    let token = sink
        .wait_for("ada@example.org", "Reset")
        .await
        .token()
        .unwrap();
    let confirm = |password: &'static str| {
        let token = token.clone();
        let app = &app;
        async move {
            app.request(
                "POST",
                "/v1/password-reset/confirm",
                None,
                Some(json!({"token": token, "new_password": password})),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(
        confirm("first brand new passphrase"),
        confirm("second brand new passphrase")
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [204, 400], "{} / {}", a.text, b.text);
    assert_eq!(app.count_events("user.password_reset").await, 1);

    // Two people move to one address at once: one gets it, one 409.
    let mut tokens = Vec::new();
    for email in ["bob@example.org", "cy@example.org"] {
        let (user, bearer, _) = app.user_session(email).await;
        let res = app
            .post(
                &format!("/v1/users/{user}/email"),
                &bearer,
                json!({"new_email": "shared@example.org", "current_password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status, 202, "{}", res.text);
        sink.wait_for_count("shared@example.org", tokens.len() + 1)
            .await;
        tokens.push(
            sink.mails_to("shared@example.org")[tokens.len()]
                .token()
                .unwrap(),
        );
    }
    let change = |token: String| {
        let app = &app;
        async move {
            app.request(
                "POST",
                "/v1/email-change/confirm",
                None,
                Some(json!({"token": token})),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(change(tokens[0].clone()), change(tokens[1].clone()));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    assert_eq!(app.count_events("user.email_changed").await, 1);
    let found = app
        .get("/v1/users?email=shared@example.org", &app.admin_key)
        .await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn another_instance_takes_over_the_mail_when_the_mailer_stops() {
    let sink = SmtpSink::start().await;
    let a = spawn_mailing_app(&sink, |_| {}).await;
    a.create_user("ada@example.org").await;
    let reset = json!({"email": "ada@example.org"});
    let res = a
        .request("POST", "/v1/password-reset", None, Some(reset.clone()))
        .await;
    assert_eq!(res.status, 202);
    // Alone, the first instance is the mailer.
    sink.wait_for_count("ada@example.org", 1).await;
    let url = sink.url();
    let b = spawn_instance(&a, |s| {
        s.mail.mailer = true;
        s.mail.mail_url = Some(url);
        s.mail.public_url = "https://app.example.org/account".into();
    })
    .await;
    a.stop.stop().await;
    let res = b
        .request("POST", "/v1/password-reset", None, Some(reset))
        .await;
    assert_eq!(res.status, 202);
    let mails = sink.wait_for_count("ada@example.org", 2).await;
    assert_ne!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    let ids: std::collections::BTreeSet<_> = sink
        .received()
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "the new mailer sent only what was left");
}

#[actix_web::test]
async fn a_token_moved_to_another_user_is_refused() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, ada_token, _) = app.user_session("ada@example.org").await;
    let (bob, bob_token, _) = app.user_session("bob@example.org").await;
    for (id, token) in [(&ada, &ada_token), (&bob, &bob_token)] {
        let res = app
            .post(
                &format!("/v1/users/{id}/email-verification"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(res.status, 202);
    }
    let ada_mail = sink
        .wait_for("ada@example.org", "Confirm")
        .await
        .token()
        .unwrap();
    sink.wait_for("bob@example.org", "Confirm").await;
    // Ada's secret under Bob's id: Bob's pending token is another.
    let moved = ada_mail.replace(&ada.replace('-', ""), &bob.replace('-', ""));
    assert_ne!(moved, ada_mail);
    let res = app
        .request(
            "POST",
            "/v1/email-verification/confirm",
            None,
            Some(json!({ "token": moved })),
        )
        .await;
    assert_error(&res, 400, "invalid_token");
    assert_eq!(app.count_events("user.email_verified").await, 0);
}

#[actix_web::test]
async fn expired_verification_and_email_change_tokens_are_refused() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (ada, bearer, _) = app.user_session("ada@example.org").await;
    let res = app
        .post(
            &format!("/v1/users/{ada}/email-verification"),
            &bearer,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 202);
    let verify = sink
        .wait_for("ada@example.org", "Confirm your email")
        .await
        .token()
        .unwrap();
    let res = app
        .post(
            &format!("/v1/users/{ada}/email"),
            &bearer,
            json!({"new_email": "new@example.org", "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 202);
    let change = sink
        .wait_for("new@example.org", "Confirm")
        .await
        .token()
        .unwrap();
    let at = |seconds: i64| {
        let clock = FixedClock::at(chrono::Utc::now() + chrono::Duration::seconds(seconds));
        vouch::app::App::with_clock(app.app.pool().clone(), Policy::default(), Arc::new(clock))
            .with_personal_data(keyring(&app))
    };
    let ctx = Ctx::system("test");
    // The change's hour has passed; the verification's day has not.
    let outcome = at(3601).confirm_email_change(&ctx, &change).await;
    assert!(
        matches!(outcome, Err(AppError::InvalidToken)),
        "{outcome:?}"
    );
    let outcome = at(24 * 3600 + 1)
        .confirm_email_verification(&ctx, &verify)
        .await;
    assert!(
        matches!(outcome, Err(AppError::InvalidToken)),
        "{outcome:?}"
    );
    assert_eq!(app.count_events("user.email_changed").await, 0);
    assert_eq!(app.count_events("user.email_verified").await, 0);
    // Within their lifetimes they work.
    let user = at(3500)
        .confirm_email_verification(&ctx, &verify)
        .await
        .unwrap();
    assert!(user.email_verified);
}
