//! No other user's data: every route that takes a user or session id, called
//! by user X (or an org key) with user Y's real ids, answers as for an id that
//! does not exist, and nothing of Y's changes.

use super::Probe;
use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// What Y has: their user as an admin sees it, their active sessions, their events.
async fn state_of(app: &TestApp, user: &str, token: &str) -> (Value, Value, i64) {
    let res = app.get(&format!("/v1/users/{user}"), &app.admin_key).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let sessions = app.get("/v1/sessions", token).await;
    assert_eq!(sessions.status, 200, "{}", sessions.text);
    let user_id = Uuid::parse_str(user).unwrap();
    let events: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM auth_events WHERE stream_id = $1 \
             OR stream_id IN (SELECT id FROM sessions WHERE user_id = $1)",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    (res.body, sessions.body["items"].clone(), events)
}

fn ids(items: &Value, field: &str) -> BTreeSet<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_user_cannot_reach_another_users_data() {
    let app = spawn_app().await;
    let probe = Probe::new(&app);
    let (x, x_token, _) = app.user_session("x@example.org").await;
    let (y, y_token, _) = app.user_session("y@example.org").await;
    let second = app.sign_in("y@example.org", PASSWORD).await;
    assert_eq!(second.status, 201, "{}", second.text);
    // X owns an org Y is a member of: sharing an org grants nothing over Y.
    let shared = id(&app.create_org("shared", Some(&x)).await);
    let res = app
        .post(
            &format!("/v1/orgs/{shared}/members"),
            &app.admin_key,
            json!({"user_id": y, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let y_own = id(&app.create_org("y-own", Some(&y)).await);
    let (_, shared_key) = app.create_key(&shared, &["vouch:org:admin"]).await;
    let before = state_of(&app, &y, &y_token).await;
    let y_sessions = ids(&before.1, "id");
    assert_eq!(y_sessions.len(), 2);

    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/users/{}".into(), None),
        (
            "PATCH",
            "/v1/users/{}".into(),
            Some(json!({"name": "Taken over"})),
        ),
        (
            "POST",
            "/v1/users/{}/password".into(),
            Some(json!({"current_password": PASSWORD, "new_password": "taken over by x"})),
        ),
        ("POST", "/v1/users/{}/disable".into(), Some(json!({}))),
        ("POST", "/v1/users/{}/enable".into(), Some(json!({}))),
    ];
    let targets: Vec<String> = std::iter::once(y.clone())
        .chain(y_sessions.iter().cloned())
        .collect();
    let callers = [
        ("user X", x_token.as_str(), &[404][..]),
        (
            "an org admin key of X's org",
            shared_key.as_str(),
            &[403, 404][..],
        ),
    ];
    let mut checked = 0;
    for (caller, credential, allowed) in callers {
        let mut calls: Vec<(&str, String, Option<Value>)> = cases
            .iter()
            .map(|(m, p, b)| (*m, p.replace("{}", &y), b.clone()))
            .collect();
        for session in &targets[1..] {
            calls.push(("DELETE", format!("/v1/sessions/{session}"), None));
        }
        for (method, path, body) in calls {
            let res = probe
                .call(method, &path, Some(credential), body.clone())
                .await;
            assert!(
                allowed.contains(&res.status),
                "{caller}, {method} {path}: {} {}",
                res.status,
                res.text
            );
            // The same answer as for an id nobody has.
            let absent_path = targets.iter().fold(path.clone(), |p, t| {
                p.replace(t, &Uuid::now_v7().to_string())
            });
            let absent = probe
                .call(method, &absent_path, Some(credential), body)
                .await;
            assert_eq!(
                (res.status, &res.body["error"]),
                (absent.status, &absent.body["error"]),
                "{caller}, {method} {path}: Y's answer differs from a missing id's"
            );
            checked += 1;
        }
    }

    // X's own views hold nothing of Y's.
    let res = probe
        .call("GET", "/v1/sessions", Some(&x_token), None)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let listed = ids(&res.body["items"], "id");
    assert_eq!(listed.len(), 1, "{}", res.text);
    assert!(listed.is_disjoint(&y_sessions), "X sees Y's sessions");
    let res = probe.call("GET", "/v1/me", Some(&x_token), None).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["user"]["id"], x.as_str());
    let orgs = ids(&res.body["orgs"], "id");
    assert_eq!(orgs, BTreeSet::from([shared.clone()]), "{}", res.text);
    assert!(!orgs.contains(&y_own));
    probe.assert_clean();

    let after = state_of(&app, &y, &y_token).await;
    assert_eq!(after, before, "something of Y's changed");
    assert_eq!(
        app.sign_in("y@example.org", PASSWORD).await.status,
        201,
        "Y's password still works"
    );
    println!(
        "user isolation: {checked} calls with Y's ids, each compared with a missing id; {} requests",
        probe.inspector.borrow().requests
    );
}
