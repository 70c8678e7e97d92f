use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn sign_up_normalises_the_email_and_hides_the_hash() {
    let app = spawn_app().await;
    let res = app
        .request("POST", "/v1/users", None, Some(json!({"email": "  Ada@Example.ORG ", "password": "a long enough passphrase", "name": "Ada"})))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["email"], "ada@example.org");
    assert_eq!(res.body["name"], "Ada");
    assert_eq!(res.body["disabled"], false);
    assert!(res.body.get("password_hash").is_none());
    let stored: String = app
        .db()
        .await
        .query_one("SELECT password_hash FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[actix_web::test]
async fn a_taken_email_is_409_in_any_case() {
    let app = spawn_app().await;
    app.create_user("ada@example.org").await;
    let res = app
        .request(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": "ADA@example.org", "password": "another passphrase"})),
        )
        .await;
    assert_error(&res, 409, "email_taken");
    assert_eq!(app.count_events("user.registered").await, 1);
}

#[actix_web::test]
async fn bad_sign_ups_are_refused_with_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "a long enough passphrase"}),
            "email",
        ),
        (
            json!({"email": "a@example.org", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.org", "password": "password123"}),
            "password",
        ),
        (
            json!({"email": "a@example.org", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "a@example.org", "password": "a long enough passphrase", "name": "n".repeat(201)}),
            "name",
        ),
        (
            json!({"email": "a@example.org", "password": "a long enough passphrase", "admin": true}),
            "admin",
        ),
        (json!({"password": "a long enough passphrase"}), "email"),
        (
            json!({"email": 42, "password": "a long enough passphrase"}),
            "email",
        ),
        (
            json!({"email": "a@example.org", "password": ["a long enough passphrase"]}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let res = app
            .request("POST", "/v1/users", None, Some(body.clone()))
            .await;
        assert_error(&res, 422, "validation_error");
        if !field.is_empty() {
            assert_eq!(
                res.body["error"]["details"]["field"], field,
                "{body}: {}",
                res.text
            );
        }
    }
    assert_eq!(app.count_events("user.registered").await, 0);
}

#[actix_web::test]
async fn bodies_must_be_json_and_small() {
    let app = spawn_app().await;
    let res = app
        .raw(
            "POST",
            "/v1/users",
            None,
            Some("application/json"),
            b"{\"email\": ".to_vec(),
        )
        .await;
    assert_error(&res, 400, "invalid_json");
    let res = app
        .raw(
            "POST",
            "/v1/users",
            None,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_error(&res, 415, "unsupported_media_type");
    let res = app
        .raw("POST", "/v1/users", None, None, b"{}".to_vec())
        .await;
    assert_error(&res, 415, "unsupported_media_type");
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(70 * 1024));
    let res = app
        .raw(
            "POST",
            "/v1/users",
            None,
            Some("application/json"),
            big.into_bytes(),
        )
        .await;
    assert_error(&res, 413, "payload_too_large");
}

#[actix_web::test]
async fn users_are_visible_to_admins_only_for_now() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let path = format!("/v1/users/{}", id(&user));
    let res = app.get(&path, &app.admin_key).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["email"], "ada@example.org");

    let org = app.create_org("acme", None).await;
    let (_, org_key) = app.create_key(&id(&org), &["vouch:org:admin"]).await;
    assert_error(&app.get(&path, &org_key).await, 404, "not_found");
    assert_error(
        &app.get(
            "/v1/users/0192f0c1-0000-7000-8000-000000000000",
            &app.admin_key,
        )
        .await,
        404,
        "not_found",
    );
}

#[actix_web::test]
async fn renaming_a_user() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let path = format!("/v1/users/{}", id(&user));
    let res = app
        .patch(&path, &app.admin_key, json!({"name": "  Ada Lovelace "}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["name"], "Ada Lovelace");
    // Same name again: no new event.
    app.patch(&path, &app.admin_key, json!({"name": "Ada Lovelace"}))
        .await;
    assert_eq!(app.count_events("user.renamed").await, 1);
    assert_error(
        &app.patch(&path, &app.admin_key, json!({"name": ""})).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.patch(&path, &app.admin_key, json!({})).await,
        422,
        "validation_error",
    );
}

#[actix_web::test]
async fn admins_disable_and_enable_users() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let uid = id(&user);
    let res = app
        .post(
            &format!("/v1/users/{uid}/disable"),
            &app.admin_key,
            json!({"reason": "left"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["disabled"], true);
    // Without a body at all.
    let res = app
        .request(
            "POST",
            &format!("/v1/users/{uid}/disable"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.count_events("user.disabled").await, 1);
    let res = app
        .post(
            &format!("/v1/users/{uid}/enable"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(res.body["disabled"], false);

    let org = app.create_org("acme", None).await;
    let (_, org_key) = app.create_key(&id(&org), &["vouch:org:admin"]).await;
    let res = app
        .post(&format!("/v1/users/{uid}/disable"), &org_key, json!({}))
        .await;
    assert_error(&res, 403, "forbidden");
    let res = app
        .post(
            "/v1/users/0192f0c1-0000-7000-8000-000000000000/disable",
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_error(&res, 404, "not_found");
}

#[actix_web::test]
async fn closed_sign_up_admits_admins_only() {
    let app = spawn_app_with(|s| s.open_signup = false).await;
    let body = json!({"email": "ada@example.org", "password": "a long enough passphrase"});
    assert_error(
        &app.request("POST", "/v1/users", None, Some(body.clone()))
            .await,
        401,
        "unauthenticated",
    );
    let res = app.post("/v1/users", &app.admin_key, body).await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn sign_ups_are_throttled_per_client_address() {
    let app = spawn_app_with(|s| s.auth.signup_ip_attempts = 2).await;
    app.create_user("a@example.org").await;
    app.create_user("b@example.org").await;
    let body = json!({"email": "c@example.org", "password": "a long enough passphrase"});
    let res = app
        .request("POST", "/v1/users", None, Some(body.clone()))
        .await;
    assert_error(&res, 429, "rate_limited");
    assert!(res.headers.get("retry-after").is_some());
    // Admins are not throttled.
    assert_eq!(
        app.post("/v1/users", &app.admin_key, body).await.status,
        201
    );
}

#[actix_web::test]
async fn the_user_directory_pages_and_finds_by_email_for_admins_only() {
    let app = spawn_app().await;
    let mut ids: Vec<String> = Vec::new();
    for email in ["dir1@example.org", "dir2@example.org", "dir3@example.org"] {
        ids.push(id(&app.create_user(email).await));
    }
    let (_, token, _) = app.user_session("dir4@example.org").await;
    let erased = id(&app.create_user("gone@example.org").await);
    assert_eq!(
        app.delete(&format!("/v1/users/{erased}"), &app.admin_key)
            .await
            .status,
        204
    );

    // Every living user once, in id order, two a page.
    let mut seen = Vec::new();
    let mut path = "/v1/users?limit=2".to_owned();
    loop {
        let page = app.get(&path, &app.admin_key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for u in page.body["items"].as_array().unwrap() {
            seen.push(u["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "id order");
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(ids.iter().all(|i| seen.contains(i)) && !seen.contains(&erased));

    // By email, normalised as at sign-up; nobody for an unknown or erased one.
    let found = app
        .get("/v1/users?email=%20DIR2@Example.ORG%20", &app.admin_key)
        .await;
    assert_eq!(
        found.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        found.text
    );
    assert_eq!(found.body["items"][0]["id"], ids[1].as_str());
    assert_eq!(found.body["next_cursor"], serde_json::Value::Null);
    for nobody in ["nobody@example.org", "gone@example.org"] {
        let res = app
            .get(&format!("/v1/users?email={nobody}"), &app.admin_key)
            .await;
        assert_eq!(res.body["items"], serde_json::json!([]), "{nobody}");
    }

    // Bad input and other callers.
    assert_error(
        &app.get("/v1/users?email=not-an-email", &app.admin_key)
            .await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/users?cursor=nope", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/users?limit=0", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(&app.get("/v1/users", &token).await, 403, "forbidden");
}
