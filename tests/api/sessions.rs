use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn sign_in_answers_tokens_and_the_user() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let res = app.sign_in("  ADA@example.org ", PASSWORD).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["token_type"], "Bearer");
    assert_eq!(res.body["expires_in"], 900);
    assert_eq!(res.body["user"]["id"], user["id"]);
    assert!(res.body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("vrt_"));
    let token = res.body["access_token"].as_str().unwrap();
    let me = app.get("/v1/me", token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["user"]["email"], "ada@example.org");
    assert_eq!(me.body["orgs"], json!([]));
    assert_eq!(app.count_events("session.started").await, 1);
}

#[actix_web::test]
async fn wrong_password_unknown_email_and_disabled_user_get_the_same_answer() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let wrong = app.sign_in("ada@example.org", "not the passphrase").await;
    let unknown = app.sign_in("nobody@example.org", PASSWORD).await;
    app.post(
        &format!("/v1/users/{}/disable", id(&user)),
        &app.admin_key,
        json!({}),
    )
    .await;
    let disabled = app.sign_in("ada@example.org", PASSWORD).await;
    for res in [&wrong, &unknown, &disabled] {
        assert_error(res, 401, "invalid_credentials");
        assert_eq!(res.body["error"], wrong.body["error"]);
    }
    assert_eq!(
        app.count_events_eventually("user.login_failed", 2).await,
        2,
        "failures of an existing user are recorded"
    );
    assert_eq!(app.count_events("session.started").await, 0);
    assert_error(
        &app.sign_in("not an email", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    let res = app
        .request(
            "POST",
            "/v1/sessions",
            None,
            Some(json!({"email": "a@b.co"})),
        )
        .await;
    assert_error(&res, 422, "validation_error");
}

#[actix_web::test]
async fn a_refresh_token_with_a_character_across_the_session_id_end_is_refused() {
    let app = spawn_app().await;
    // 80 bytes like a token, but where the 32-digit session id should end
    // (32 bytes after `vrt_`) is inside a two-byte character.
    let token = format!("vrt_{}\u{e9}{}", "a".repeat(31), "a".repeat(43));
    assert_eq!(token.len(), 80);
    for _ in 0..2 {
        let res = app
            .request(
                "POST",
                "/v1/sessions/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await;
        assert_error(&res, 401, "unauthenticated");
    }
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let app = spawn_app().await;
    let (_, access, first) = app.user_session("ada@example.org").await;
    let res = app
        .request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": first})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let second = res.body["refresh_token"].as_str().unwrap().to_owned();
    let second_access = res.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(app.get("/v1/me", &second_access).await.status, 200);

    // The first token again: someone else has it. The whole session ends.
    let res = app
        .request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": first})),
        )
        .await;
    assert_error(&res, 401, "unauthenticated");
    let res = app
        .request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": second})),
        )
        .await;
    assert_error(&res, 401, "unauthenticated");
    assert_error(&app.get("/v1/me", &access).await, 401, "unauthenticated");
    assert_error(
        &app.get("/v1/me", &second_access).await,
        401,
        "unauthenticated",
    );
    let revoked = app
        .db()
        .await
        .query_one("SELECT revoked_reason FROM sessions", &[])
        .await
        .unwrap()
        .get::<_, Option<String>>(0);
    assert_eq!(revoked.as_deref(), Some("refresh_reuse"));

    for garbage in ["", "vrt_nope", "vk_abc"] {
        let res = app
            .request(
                "POST",
                "/v1/sessions/refresh",
                None,
                Some(json!({"refresh_token": garbage})),
            )
            .await;
        assert_error(&res, 401, "unauthenticated");
    }
}

#[actix_web::test]
async fn sessions_are_listed_and_ended_by_their_owner_only() {
    let app = spawn_app().await;
    let (_, a1, refresh1) = app.user_session("ada@example.org").await;
    let a2 = app.sign_in("ada@example.org", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, bob, _) = app.user_session("bob@example.org").await;

    let res = app.get("/v1/sessions", &a1).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let other = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_error(
        &app.delete(&format!("/v1/sessions/{other}"), &bob).await,
        404,
        "not_found",
    );
    assert_eq!(
        app.delete(&format!("/v1/sessions/{other}"), &a1)
            .await
            .status,
        204
    );
    assert_error(&app.get("/v1/me", &a2).await, 401, "unauthenticated");

    assert_eq!(app.delete("/v1/sessions/current", &a1).await.status, 204);
    assert_error(&app.get("/v1/me", &a1).await, 401, "unauthenticated");
    let res = app
        .request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": refresh1})),
        )
        .await;
    assert_error(&res, 401, "unauthenticated");
    assert_error(
        &app.get("/v1/sessions", &app.admin_key).await,
        403,
        "forbidden",
    );
}

#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (uid, here, _) = app.user_session("ada@example.org").await;
    let elsewhere = app.sign_in("ada@example.org", PASSWORD).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, bob, _) = app.user_session("bob@example.org").await;
    let path = format!("/v1/users/{uid}/password");

    let res = app
        .post(
            &path,
            &here,
            json!({"current_password": "wrong one!", "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_error(&res, 401, "invalid_credentials");
    let res = app
        .post(
            &path,
            &here,
            json!({"current_password": PASSWORD, "new_password": "password"}),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    assert_error(
        &app.post(
            &path,
            &bob,
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await,
        404,
        "not_found",
    );

    let res = app
        .post(
            &path,
            &here,
            json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(
        app.get("/v1/me", &here).await.status,
        200,
        "this session stays"
    );
    assert_error(&app.get("/v1/me", &elsewhere).await, 401, "unauthenticated");
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
    assert_eq!(app.count_events("user.password_changed").await, 1);
}

#[actix_web::test]
async fn disabling_a_user_ends_all_their_sessions() {
    let app = spawn_app().await;
    let (uid, token, refresh) = app.user_session("ada@example.org").await;
    let res = app
        .post(
            &format!("/v1/users/{uid}/disable"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_error(&app.get("/v1/me", &token).await, 401, "unauthenticated");
    let res = app
        .request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_error(&res, 401, "unauthenticated");
    let reason: Option<String> = app
        .db()
        .await
        .query_one("SELECT revoked_reason FROM sessions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason.as_deref(), Some("user_disabled"));
}

#[actix_web::test]
async fn failures_per_email_are_throttled_even_for_the_right_password() {
    let app = spawn_app_with(|s| s.auth.signin_email_failures = 3).await;
    app.create_user("ada@example.org").await;
    for _ in 0..3 {
        assert_error(
            &app.sign_in("ada@example.org", "wrong guess!").await,
            401,
            "invalid_credentials",
        );
    }
    let res = app.sign_in("ada@example.org", PASSWORD).await;
    assert_error(&res, 429, "rate_limited");
    let retry: u64 = res
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=901).contains(&retry), "{retry}");
    assert_eq!(
        app.count_events_eventually("user.login_failed", 3).await,
        3,
        "throttled attempts record nothing"
    );
    // Another email from the same address is not affected by this email's limit.
    app.create_user("bob@example.org").await;
    assert_eq!(app.sign_in("bob@example.org", PASSWORD).await.status, 201);
}

#[actix_web::test]
async fn attempts_per_address_are_throttled_across_instances() {
    let app = spawn_app_with(|s| s.auth.signin_ip_attempts = 4).await;
    let other = spawn_instance(&app, |s| s.auth.signin_ip_attempts = 4).await;
    app.create_user("ada@example.org").await;
    for (i, instance) in [&app, &other, &app, &other].into_iter().enumerate() {
        let res = instance
            .sign_in(&format!("user{i}@example.org"), PASSWORD)
            .await;
        assert_error(&res, 401, "invalid_credentials");
    }
    let res = other.sign_in("ada@example.org", PASSWORD).await;
    assert_error(&res, 429, "rate_limited");
    assert!(res.headers.get("retry-after").is_some());
}

#[actix_web::test]
async fn users_create_orgs_and_act_by_their_role() {
    let app = spawn_app().await;
    let (_, owner, _) = app.user_session("owner@example.org").await;
    let (bob_id, bob, _) = app.user_session("bob@example.org").await;
    let (_, eve, _) = app.user_session("eve@example.org").await;

    let res = app
        .post("/v1/orgs", &owner, json!({"name": "Acme", "slug": "acme"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let oid = id(&res.body);
    let res = app.get("/v1/me", &owner).await;
    assert_eq!(res.body["orgs"][0]["role"], "owner");
    assert_eq!(res.body["orgs"][0]["slug"], "acme");

    let res = app
        .post(
            &format!("/v1/orgs/{oid}/members"),
            &owner,
            json!({"user_id": bob_id, "role": "member"}),
        )
        .await;
    assert_error(&res, 403, "forbidden");
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/members"),
            &app.admin_key,
            json!({"user_id": bob_id, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(
        app.get(&format!("/v1/orgs/{oid}/members"), &bob)
            .await
            .status,
        200,
        "members read the member list"
    );
    assert_error(
        &app.post(&format!("/v1/orgs/{oid}/keys"), &bob, json!({"name": "k"}))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get(&format!("/v1/orgs/{oid}"), &eve).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get(&format!("/v1/orgs/{oid}/members"), &eve).await,
        404,
        "not_found",
    );

    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &owner,
            json!({"name": "ci", "scopes": ["deploy"]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys"),
            &owner,
            json!({"name": "x", "scopes": ["vouch:admin"]}),
        )
        .await,
        403,
        "forbidden",
    );
    let res = app.get("/v1/orgs", &bob).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/v1/orgs", &eve).await.body["items"], json!([]));
    // Users read only themselves.
    let res = app.get(&format!("/v1/users/{bob_id}"), &bob).await;
    assert_eq!(res.status, 200);
    assert_error(
        &app.get(&format!("/v1/users/{bob_id}"), &eve).await,
        404,
        "not_found",
    );
    assert_error(
        &app.post("/v1/introspect", &bob, json!({"token": "x"}))
            .await,
        403,
        "forbidden",
    );
}

#[actix_web::test]
async fn introspection_of_api_keys_stays_in_the_org() {
    let app = spawn_app().await;
    let acme = app.create_org("acme", None).await;
    let other = app.create_org("other", None).await;
    let (kid, key) = app.create_key(&id(&acme), &["deploy"]).await;
    let (_, caller) = app.create_key(&id(&acme), &[]).await;
    let (_, outsider) = app.create_key(&id(&other), &[]).await;
    let res = app
        .post("/v1/introspect", &caller, json!({"token": key}))
        .await;
    assert_eq!(res.body["active"], true, "{}", res.text);
    assert_eq!(res.body["token_type"], "api_key");
    assert_eq!(res.body["key_id"], kid);
    assert_eq!(res.body["scopes"], json!(["deploy"]));
    assert_eq!(
        app.post("/v1/introspect", &outsider, json!({"token": key}))
            .await
            .body,
        json!({"active": false})
    );
    assert_eq!(
        app.post("/v1/introspect", &app.admin_key, json!({"token": key}))
            .await
            .body["active"],
        true
    );
    assert_eq!(
        app.post("/v1/introspect", &caller, json!({"token": "garbage"}))
            .await
            .body,
        json!({"active": false})
    );
}
