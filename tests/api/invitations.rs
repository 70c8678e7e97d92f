//! Invitations end to end through a real SMTP server: invite, mail, accept
//! with a verified matching address; the refusals change nothing.

use crate::helpers::*;
use crate::lifecycle::spawn_mailing_app;
use crate::smtp::SmtpSink;
use serde_json::json;

/// The org Acme, founded by a signed-in owner: (owner's access token, org id).
async fn acme(app: &TestApp) -> (String, String) {
    let (_, owner_token, _) = app.user_session("owner@example.org").await;
    let org = app
        .post(
            "/v1/orgs",
            &owner_token,
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.text);
    (owner_token, id(&org.body))
}

/// Signs a user up and in and verifies their address through the mail.
async fn verified_user(app: &TestApp, sink: &SmtpSink, email: &str) -> (String, String) {
    let (id, token, _) = app.user_session(email).await;
    let res = app
        .post(
            &format!("/v1/users/{id}/email-verification"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text);
    let mailed = sink
        .wait_for(email, "Confirm your email")
        .await
        .token()
        .unwrap();
    let res = app
        .request(
            "POST",
            "/v1/email-verification/confirm",
            None,
            Some(json!({"token": mailed})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    (id, token)
}

#[actix_web::test]
async fn an_invited_person_joins_with_the_mailed_token_once() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let path = format!("/v1/orgs/{org_id}/invitations");

    let res = app
        .post(
            &path,
            &owner_token,
            json!({"email": " Bob@Example.org ", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["email"], "bob@example.org");
    assert_eq!(res.body["role"], "admin");
    assert_eq!(res.body["status"], "pending");
    let token = res.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("vin_"));
    let invitation = id(&res.body);
    let mail = sink
        .wait_for("bob@example.org", "You are invited to join Acme")
        .await;
    assert_eq!(
        mail.token().as_deref(),
        Some(token.as_str()),
        "the same token is mailed"
    );
    assert!(mail
        .decoded()
        .contains("https://app.example.org/account/accept-invitation?token=vin_"));

    // Listed without its token.
    let list = app.get(&path, &owner_token).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(list.body["items"][0].get("token").is_none());
    assert!(!list.text.contains(&token));

    // Bob signs up, but must prove the address first.
    let (bob, bob_token, _) = app.user_session("bob@example.org").await;
    let accept = async |t: &str, bearer: &str| {
        app.post("/v1/invitations/accept", bearer, json!({"token": t}))
            .await
    };
    assert_error(&accept(&token, &bob_token).await, 403, "email_not_verified");
    // Someone else, verified, with Bob's token: not theirs.
    let (_, eve_token) = verified_user(&app, &sink, "eve@example.org").await;
    assert_error(&accept(&token, &eve_token).await, 403, "forbidden");
    // A token of another kind or a changed one.
    assert_error(
        &accept("vin_nonsense", &eve_token).await,
        400,
        "invalid_token",
    );
    let changed = crate::smtp::altered(&token);
    assert_error(&accept(&changed, &eve_token).await, 400, "invalid_token");
    assert_eq!(app.count_events("org.invitation_accepted").await, 0);

    let res = app
        .post(
            &format!("/v1/users/{bob}/email-verification"),
            &bob_token,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 202);
    let verify = sink
        .wait_for("bob@example.org", "Confirm your email")
        .await
        .token()
        .unwrap();
    app.request(
        "POST",
        "/v1/email-verification/confirm",
        None,
        Some(json!({"token": verify})),
    )
    .await;
    let res = accept(&token, &bob_token).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["user_id"], bob.as_str());
    assert_eq!(res.body["role"], "admin");
    // Used: refused, nothing changes.
    assert_error(&accept(&token, &bob_token).await, 400, "invalid_token");
    let list = app.get(&path, &owner_token).await;
    assert_eq!(list.body["items"][0]["status"], "accepted");
    assert_eq!(list.body["items"][0]["accepted_by"], bob.as_str());
    let members = app
        .get(&format!("/v1/orgs/{org_id}/members"), &owner_token)
        .await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 2);
    // A revoke after the acceptance is refused.
    let res = app
        .delete(&format!("{path}/{invitation}"), &owner_token)
        .await;
    assert_error(&res, 409, "conflict");
    // The events never show the token or its hash.
    let shown = app
        .get(&format!("/v1/orgs/{org_id}/events"), &owner_token)
        .await;
    assert!(!shown.text.contains(&token), "{}", shown.text);
    app.assert_personal_fields_sealed().await;
}

#[actix_web::test]
async fn only_owners_invite_owners_and_members_do_not_invite() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let path = format!("/v1/orgs/{org_id}/invitations");
    // An admin and a member, added by invitation.
    let mut tokens = Vec::new();
    for (email, role) in [
        ("admin@example.org", "admin"),
        ("member@example.org", "member"),
    ] {
        let invitation = app
            .post(&path, &owner_token, json!({"email": email, "role": role}))
            .await;
        let token = invitation.body["token"].as_str().unwrap().to_owned();
        let (_, bearer) = verified_user(&app, &sink, email).await;
        assert_eq!(
            app.post("/v1/invitations/accept", &bearer, json!({"token": token}))
                .await
                .status,
            200
        );
        tokens.push(bearer);
    }
    let (admin, member) = (&tokens[0], &tokens[1]);
    let res = app
        .post(
            &path,
            admin,
            json!({"email": "x@example.org", "role": "owner"}),
        )
        .await;
    assert_error(&res, 403, "forbidden");
    let res = app
        .post(
            &path,
            member,
            json!({"email": "x@example.org", "role": "member"}),
        )
        .await;
    assert_error(&res, 403, "forbidden");
    assert_error(&app.get(&path, member).await, 403, "forbidden");
    let res = app
        .post(
            &path,
            admin,
            json!({"email": "x@example.org", "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let res = app
        .post(
            &path,
            &owner_token,
            json!({"email": "x@example.org", "role": "superuser"}),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    // An org admin key invites too; an outsider's id is not found.
    let (_, key) = app.create_key(&org_id, &["vouch:org:admin"]).await;
    assert_eq!(
        app.post(
            &path,
            &key,
            json!({"email": "y@example.org", "role": "admin"})
        )
        .await
        .status,
        201
    );
    let (_, outsider, _) = app.user_session("outsider@example.org").await;
    assert_error(
        &app.post(
            &path,
            &outsider,
            json!({"email": "z@example.org", "role": "member"}),
        )
        .await,
        404,
        "not_found",
    );
    // Adding by id is vouch:admin's alone.
    let (someone, _, _) = app.user_session("someone@example.org").await;
    let res = app
        .post(
            &format!("/v1/orgs/{org_id}/members"),
            &owner_token,
            json!({"user_id": someone, "role": "member"}),
        )
        .await;
    assert_error(&res, 403, "forbidden");
    let res = app
        .post(
            &format!("/v1/orgs/{org_id}/members"),
            &app.admin_key,
            json!({"user_id": someone, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn a_revoked_invitation_no_longer_works() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let path = format!("/v1/orgs/{org_id}/invitations");
    let res = app
        .post(
            &path,
            &owner_token,
            json!({"email": "bob@example.org", "role": "member"}),
        )
        .await;
    let (invitation, token) = (
        id(&res.body),
        res.body["token"].as_str().unwrap().to_owned(),
    );
    let res = app
        .delete(&format!("{path}/{invitation}"), &owner_token)
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    // Again: nothing more to do.
    assert_eq!(
        app.delete(&format!("{path}/{invitation}"), &owner_token)
            .await
            .status,
        204
    );
    assert_eq!(app.count_events("org.invitation_revoked").await, 1);
    assert_error(
        &app.delete(&format!("{path}/{}", uuid::Uuid::now_v7()), &owner_token)
            .await,
        404,
        "not_found",
    );
    let (_, bob_token) = verified_user(&app, &sink, "bob@example.org").await;
    let res = app
        .post(
            "/v1/invitations/accept",
            &bob_token,
            json!({"token": token}),
        )
        .await;
    assert_error(&res, 400, "invalid_token");
    assert_eq!(
        app.get(&path, &owner_token).await.body["items"][0]["status"],
        "revoked"
    );
}

#[actix_web::test]
async fn an_expired_invitation_is_refused() {
    use std::sync::Arc;
    use vouch::app::{AppError, Caller, Ctx, Policy};
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let res = app
        .post(
            &format!("/v1/orgs/{org_id}/invitations"),
            &owner_token,
            json!({"email": "bob@example.org", "role": "member"}),
        )
        .await;
    let token = res.body["token"].as_str().unwrap().to_owned();
    let (bob, _) = verified_user(&app, &sink, "bob@example.org").await;
    let later = vouch::clock::FixedClock::at(
        chrono::Utc::now() + chrono::Duration::days(7) + chrono::Duration::seconds(1),
    );
    let app_later =
        vouch::app::App::with_clock(app.app.pool().clone(), Policy::default(), Arc::new(later))
            .with_personal_data(keyring(&app));
    let ctx = Ctx {
        caller: Caller::User {
            user_id: bob.parse().unwrap(),
            session_id: uuid::Uuid::nil(),
        },
        ..Ctx::system("test")
    };
    let outcome = app_later.accept_invitation(&ctx, &token).await;
    assert!(
        matches!(outcome, Err(AppError::InvalidToken)),
        "{outcome:?}"
    );
    assert_eq!(app.count_events("org.invitation_accepted").await, 0);
}

#[actix_web::test]
async fn erasing_a_person_erases_their_address_from_every_invitation() {
    let sink = SmtpSink::start().await;
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let path = format!("/v1/orgs/{org_id}/invitations");
    let res = app
        .post(
            &path,
            &owner_token,
            json!({"email": "bob@example.org", "role": "member"}),
        )
        .await;
    let token = res.body["token"].as_str().unwrap().to_owned();
    // Another org's invitation to the same address, never accepted.
    let beta = app
        .post(
            "/v1/orgs",
            &owner_token,
            json!({"name": "Beta", "slug": "beta"}),
        )
        .await;
    let beta_path = format!("/v1/orgs/{}/invitations", id(&beta.body));
    let res = app
        .post(
            &beta_path,
            &owner_token,
            json!({"email": "bob@example.org", "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (bob, bob_token) = verified_user(&app, &sink, "bob@example.org").await;
    let res = app
        .post(
            "/v1/invitations/accept",
            &bob_token,
            json!({"token": token}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = app
        .request(
            "DELETE",
            &format!("/v1/users/{bob}"),
            Some(&bob_token),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let list = app.get(&path, &owner_token).await;
    assert_eq!(list.body["items"][0]["email"], serde_json::Value::Null);
    assert_eq!(list.body["items"][0]["status"], "accepted");
    let pending = app.get(&beta_path, &owner_token).await;
    assert_eq!(pending.body["items"][0]["email"], serde_json::Value::Null);
    assert_eq!(pending.body["items"][0]["status"], "pending");
    let dump = app
        .db()
        .await
        .query_one("SELECT string_agg(email, ' ') FROM invitations", &[])
        .await
        .unwrap();
    assert_eq!(dump.get::<_, Option<String>>(0), None);
    let events = app
        .get(&format!("/v1/orgs/{org_id}/events"), &owner_token)
        .await;
    let created = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "org.invitation_created")
        .unwrap()
        .clone();
    assert_eq!(created["data"]["email"], "[erased]");
    assert_eq!(created["data"]["token"], "[redacted]");
    assert!(!events.text.contains("bob@example.org"));
    // The rebuilt read models agree.
    let mode = vouch::app::replay::Mode::Verify;
    assert_eq!(app.replay(mode).await.unwrap().drift, vec![]);
}

#[actix_web::test]
async fn a_mailbox_refused_for_good_holds_no_mail_back() {
    let sink = SmtpSink::start().await;
    sink.refuse_for_good("gone@example.org");
    let app = spawn_mailing_app(&sink, |_| {}).await;
    let (owner_token, org_id) = acme(&app).await;
    let path = format!("/v1/orgs/{org_id}/invitations");
    for email in ["gone@example.org", "here@example.org"] {
        let res = app
            .post(
                &path,
                &owner_token,
                json!({"email": email, "role": "member"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
    // The mail after the refused one goes out; the refused one is not retried.
    sink.wait_for("here@example.org", "You are invited").await;
    assert!(sink.mails_to("gone@example.org").is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = app.get("/metrics", &app.admin_key).await.text;
        if metrics.contains("vouch_mailer_lag_events 0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mailer is stuck: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
