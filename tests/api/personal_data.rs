//! `GET /v1/users/{id}/personal-data`: the right of access.

use crate::helpers::*;
use serde_json::{json, Value};

/// A request with a user agent of the caller's own.
async fn with_agent(
    app: &TestApp,
    agent: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app
        .client
        .request(method.clone(), format!("{}{path}", app.address))
        .insert_header(("User-Agent", agent));
    if let Some(token) = token {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut res = req.send_json(&body).await.unwrap();
    assert!(
        res.status().is_success(),
        "{method:?} {path}: {}",
        res.status()
    );
    res.json().await.unwrap()
}

/// Signs a person up with a name and in with their agent; returns (id, token).
async fn person(app: &TestApp, email: &str, name: &str, agent: &str) -> (String, String) {
    let user = with_agent(
        app,
        agent,
        "POST",
        "/v1/users",
        None,
        json!({"email": email, "password": PASSWORD, "name": name}),
    )
    .await;
    let session = with_agent(
        app,
        agent,
        "POST",
        "/v1/sessions",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    (
        id(&user),
        session["access_token"].as_str().unwrap().to_owned(),
    )
}

/// The export's lines, parsed, after checking its media type.
async fn export(app: &TestApp, user: &str, token: &str) -> (String, Vec<Value>) {
    let mut res = app
        .client
        .get(format!("{}/v1/users/{user}/personal-data", app.address))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let media = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert_eq!(media, "application/x-ndjson");
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert_no_secrets(&text);
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (text, lines)
}

#[actix_web::test]
async fn a_person_gets_every_event_about_them_with_their_fields_and_no_one_elses() {
    let app = spawn_app().await;
    let (ada_agent, bob_agent) = ("AdaAgent/1.0 (analytical)", "BobAgent/2.0 (builder)");
    let (ada, ada_token) = person(&app, "ada@example.org", "Ada Lovelace", ada_agent).await;
    let (bob, bob_token) = person(&app, "bob@example.org", "Bob Builder", bob_agent).await;
    // Ada founds an org and adds Bob: an event about Bob, caused by Ada.
    let org = with_agent(
        &app,
        ada_agent,
        "POST",
        "/v1/orgs",
        Some(&ada_token),
        json!({"name": "Engines", "slug": "engines"}),
    )
    .await;
    // Bob joins (added by an admin); Ada, the owner, makes him an admin.
    let res = app
        .post(
            &format!("/v1/orgs/{}/members", id(&org)),
            &app.admin_key,
            json!({"user_id": bob, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    with_agent(
        &app,
        ada_agent,
        "PATCH",
        &format!("/v1/orgs/{}/members/{bob}", id(&org)),
        Some(&ada_token),
        json!({"role": "admin"}),
    )
    .await;

    let (text, lines) = export(&app, &ada, &ada_token).await;
    for theirs in ["ada@example.org", "Ada Lovelace", ada_agent] {
        assert!(text.contains(theirs), "{theirs} missing from Ada's export");
    }
    for others in ["bob@example.org", "Bob Builder", bob_agent] {
        assert!(!text.contains(others), "{others} in Ada's export");
    }
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "user.registered",
            "session.started",
            "org.created",
            "org.member_added",
            "org.member_role_changed"
        ]
    );
    // The events API's envelope, secrets redacted.
    let registered = &lines[0];
    for field in [
        "event_id",
        "cursor",
        "position",
        "stream_type",
        "stream_id",
        "version",
        "org_id",
        "metadata",
        "occurred_at",
    ] {
        assert!(registered.get(field).is_some(), "{field} missing");
    }
    assert_eq!(registered["data"]["password_hash"], "[redacted]");

    // Bob's copy, taken by an admin, has the event Ada caused about him, but
    // not Ada's address and agent.
    let (text, lines) = export(&app, &bob, &app.admin_key).await;
    assert!(text.contains("bob@example.org") && text.contains(bob_agent));
    for others in ["ada@example.org", "Ada Lovelace", ada_agent] {
        assert!(!text.contains(others), "{others} in Bob's export");
    }
    let added = lines
        .iter()
        .find(|l| l["type"] == "org.member_role_changed")
        .unwrap();
    assert_eq!(added["data"]["user_id"], json!(bob));
    assert_eq!(added["metadata"]["user_agent"], "[redacted]");
    assert_eq!(added["metadata"]["ip"], "[redacted]");

    // Nobody else's to take; gone with the person.
    let path = format!("/v1/users/{ada}/personal-data");
    assert_error(&app.get(&path, &bob_token).await, 404, "not_found");
    let res = app
        .request(
            "DELETE",
            &format!("/v1/users/{ada}"),
            Some(&ada_token),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_error(&res, 409, "last_owner");
    let res = app
        .patch(
            &format!("/v1/orgs/{}/members/{bob}", id(&org)),
            &app.admin_key,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        app.delete(&format!("/v1/users/{ada}"), &app.admin_key)
            .await
            .status,
        204
    );
    assert_error(&app.get(&path, &app.admin_key).await, 404, "not_found");
}
