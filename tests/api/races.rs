//! Sign-in racing the user's own state: a session starts only against the
//! credential as it is when the session commits.

use crate::helpers::{spawn_app_with, TestApp, PASSWORD};
use serde_json::json;
use std::time::Duration;

/// Rounds of each race; every round is one user.
const ROUNDS: usize = 100;
/// Rounds run at once.
const AT_ONCE: usize = 10;

async fn racing_app() -> TestApp {
    spawn_app_with(|s| {
        s.auth.signin_ip_attempts = 100_000;
        s.auth.signup_ip_attempts = 100_000;
        s.db_pool_size = 16;
    })
    .await
}

/// Delays of (the sign-in, the other request) that spread the two over each
/// other's argon2 time: in even rounds the sign-in starts first, in odd
/// rounds the other.
fn stagger(round: usize) -> (Duration, Duration) {
    let ms = |n: u64| Duration::from_millis(n);
    match round % 2 {
        0 => (ms(0), ms((round as u64 * 7) % 400)),
        _ => (ms((round as u64 * 13) % 400), ms(0)),
    }
}

/// Sign-ins refused because the credential changed while they were checked.
async fn refused_as_changed(app: &TestApp) -> i64 {
    count(
        app,
        "SELECT count(*) FROM auth_events WHERE event_type = 'user.login_failed' \
         AND data->>'reason' = 'credential_changed'",
    )
    .await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[actix_web::test]
async fn a_sign_in_racing_disable_leaves_no_live_session() {
    let app = racing_app().await;
    let (mut signed_in, mut live_after) = (0, 0);
    for batch in (0..ROUNDS).collect::<Vec<_>>().chunks(AT_ONCE) {
        let rounds = batch.iter().map(|&round| {
            let app = &app;
            async move {
                let email = format!("disable-{round}@example.org");
                let user = app.create_user(&email).await;
                let user_id = user["id"].as_str().unwrap().to_owned();
                let (first, second) = stagger(round);
                let sign_in = async {
                    tokio::time::sleep(first).await;
                    app.sign_in(&email, PASSWORD).await
                };
                let disable = async {
                    tokio::time::sleep(second).await;
                    let path = format!("/v1/users/{user_id}/disable");
                    app.post(&path, &app.admin_key, json!({})).await
                };
                let (session, disabled) = tokio::join!(sign_in, disable);
                assert_eq!(disabled.status, 200, "{}", disabled.text);
                assert!(
                    [201, 401].contains(&session.status),
                    "{}: {}",
                    session.status,
                    session.text
                );
                if session.status != 201 {
                    return (false, false);
                }
                let token = session.body["access_token"].as_str().unwrap();
                let refresh = session.body["refresh_token"].clone();
                let me = app.get("/v1/me", token).await.status;
                let refreshed = app.refresh(&refresh).await.status;
                (true, me == 200 || refreshed == 200)
            }
        });
        for (won, live) in futures_util::future::join_all(rounds).await {
            signed_in += won as usize;
            live_after += live as usize;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!(
        "disable race: {ROUNDS} rounds; the sign-in got tokens in {signed_in}, \
         was refused after its password check in {}",
        refused_as_changed(&app).await
    );
    assert_eq!(live_after, 0, "a disabled user's tokens still worked");
    let live = count(
        &app,
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE u.disabled AND s.revoked_at IS NULL",
    )
    .await;
    assert_eq!(live, 0, "live sessions of disabled users");
    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE disabled").await,
        ROUNDS as i64
    );
}

#[actix_web::test]
async fn a_sign_in_racing_a_password_change_leaves_no_session_of_the_old_password() {
    let app = racing_app().await;
    let mut signed_in = 0;
    for batch in (0..ROUNDS).collect::<Vec<_>>().chunks(AT_ONCE) {
        let rounds = batch.iter().map(|&round| {
            let app = &app;
            async move {
                let email = format!("change-{round}@example.org");
                let (user_id, own_token, _) = app.user_session(&email).await;
                let (first, second) = stagger(round);
                let sign_in = async {
                    tokio::time::sleep(first).await;
                    app.sign_in(&email, PASSWORD).await
                };
                let change = async {
                    tokio::time::sleep(second).await;
                    let path = format!("/v1/users/{user_id}/password");
                    let body = json!({"current_password": PASSWORD,
                                      "new_password": "a brand new passphrase"});
                    app.post(&path, &own_token, body).await
                };
                let (session, changed) = tokio::join!(sign_in, change);
                assert_eq!(changed.status, 204, "{}", changed.text);
                assert!([201, 401].contains(&session.status), "{}", session.text);
                if session.status == 201 {
                    let token = session.body["access_token"].as_str().unwrap();
                    assert_eq!(app.get("/v1/me", token).await.status, 401);
                }
                session.status == 201
            }
        });
        for won in futures_util::future::join_all(rounds).await {
            signed_in += won as usize;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!(
        "password race: {ROUNDS} rounds; the sign-in got tokens in {signed_in}, \
         was refused after its password check in {}",
        refused_as_changed(&app).await
    );
    // Each user keeps the one session that changed the password.
    let live = count(
        &app,
        "SELECT count(*) FROM sessions WHERE revoked_at IS NULL",
    )
    .await;
    assert_eq!(live, ROUNDS as i64, "sessions of a superseded password");
}

#[actix_web::test]
async fn a_disabled_users_session_is_refused_even_if_it_was_left_live() {
    let app = racing_app().await;
    let (_, token, refresh) = app.user_session("left@example.org").await;
    // As if a disable had missed this session: the flag alone, no revocation.
    app.db()
        .await
        .execute(
            "UPDATE users SET disabled = true WHERE email = 'left@example.org'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(app.get("/v1/me", &token).await.status, 401);
    let res = app.refresh(&json!(refresh)).await;
    assert_eq!(res.status, 401, "{}", res.text);
    assert_eq!(app.count_events("session.refreshed").await, 0);
}

#[actix_web::test]
async fn of_32_concurrent_refreshes_of_one_token_exactly_one_wins() {
    let app = racing_app().await;
    let (_, _, refresh) = app.user_session("concurrent@example.org").await;
    let token = json!(refresh);
    let answers = futures_util::future::join_all((0..32).map(|_| app.refresh(&token))).await;
    let won = answers.iter().filter(|r| r.status == 200).count();
    let refused = answers.iter().filter(|r| r.status == 401).count();
    assert_eq!(
        (won, refused),
        (1, 31),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.count_events("session.refreshed").await, 1);
    // The losers presented a token that had just been replaced: a reuse, which
    // ends the session once.
    assert_eq!(app.count_revocations("refresh_reuse").await, 1);
}
