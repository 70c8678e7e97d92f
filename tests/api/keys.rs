use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn a_key_is_shown_once_and_stored_as_a_hash() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &app.admin_key,
            json!({"name": "ci", "scopes": ["deploy", "read"]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let key = res.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("vk_") && key.len() == 52);
    assert_eq!(res.body["prefix"], &key[..12]);
    assert_eq!(res.body["scopes"], json!(["deploy", "read"]));
    let kid = id(&res.body);
    let res = app
        .get(&format!("/v1/orgs/{oid}/keys/{kid}"), &app.admin_key)
        .await;
    assert_eq!(res.status, 200);
    assert!(res.body.get("key").is_none());
    assert!(!res.text.contains(&key));
    let events = app.get("/v1/events?limit=1000", &app.admin_key).await;
    assert!(!events.text.contains(&key[3..]));
    let stored: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM auth_events WHERE data::text LIKE '%' || $1 || '%'",
            &[&&key[3..]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "plaintext key stored");
}

#[actix_web::test]
async fn bad_key_requests_are_refused() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let path = format!("/v1/orgs/{}/keys", id(&org));
    for body in [
        json!({"name": ""}),
        json!({"name": "k", "scopes": ["UPPER"]}),
        json!({"name": "k", "scopes": ["vouch:root"]}),
        json!({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": "k", "expires_at": "yesterday"}),
        json!({"name": "k", "colour": "blue"}),
    ] {
        assert_error(
            &app.post(&path, &app.admin_key, body).await,
            422,
            "validation_error",
        );
    }
    assert_eq!(
        app.count_events("api_key.created").await,
        1,
        "only the bootstrap key"
    );
}

#[actix_web::test]
async fn scopes_limit_what_keys_may_do() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (_, verifier) = app.create_key(&oid, &["vouch:keys:verify"]).await;
    let (_, org_admin) = app.create_key(&oid, &["vouch:org:admin"]).await;
    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys"),
            &verifier,
            json!({"name": "k"}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.get(&format!("/v1/orgs/{oid}/keys"), &verifier).await,
        403,
        "forbidden",
    );
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &org_admin,
            json!({"name": "k", "scopes": ["vouch:admin"]}),
        )
        .await;
    assert_error(&res, 403, "forbidden");
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &org_admin,
            json!({"name": "k", "scopes": ["app:read"]}),
        )
        .await;
    assert_eq!(res.status, 201);
    let (_, plain) = app.create_key(&oid, &["app:read"]).await;
    assert_error(
        &app.post("/v1/keys/verify", &plain, json!({"key": plain}))
            .await,
        403,
        "forbidden",
    );
}

#[actix_web::test]
async fn verification_answers_each_state() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (kid, key) = app.create_key(&oid, &["deploy"]).await;
    let (_, verifier) = app.create_key(&oid, &["vouch:keys:verify"]).await;

    let res = app
        .post("/v1/keys/verify", &verifier, json!({"key": key}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["valid"], true);
    assert_eq!(res.body["key_id"], kid);
    assert_eq!(res.body["org_id"], oid);
    assert_eq!(res.body["scopes"], json!(["deploy"]));
    assert!(res.body["expires_at"].is_null());

    let res = app
        .post("/v1/keys/verify", &verifier, json!({"key": "vk_nope"}))
        .await;
    assert_eq!(res.body, json!({"valid": false, "code": "malformed"}));
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
    let res = app
        .post(
            "/v1/keys/verify",
            &verifier,
            json!({"key": String::from_utf8(typo).unwrap()}),
        )
        .await;
    assert_eq!(res.body["code"], "malformed");

    // Another org's key is invisible to an org verifier, visible to admin.
    let other = app.create_org("other", None).await;
    let (_, foreign) = app.create_key(&id(&other), &[]).await;
    let res = app
        .post("/v1/keys/verify", &verifier, json!({"key": foreign}))
        .await;
    assert_eq!(res.body, json!({"valid": false, "code": "not_found"}));
    let res = app
        .post("/v1/keys/verify", &app.admin_key, json!({"key": foreign}))
        .await;
    assert_eq!(res.body["valid"], true);

    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys/{kid}/revoke"),
            &app.admin_key,
            json!({"reason": "leaked"}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(res.body["revoked_at"].is_string());
    let res = app
        .post("/v1/keys/verify", &verifier, json!({"key": key}))
        .await;
    assert_eq!(res.body, json!({"valid": false, "code": "revoked"}));
    // The revoked key no longer authenticates either.
    assert_error(&app.get("/v1/orgs", &key).await, 401, "unauthenticated");
}

#[actix_web::test]
async fn an_expired_key_verifies_as_expired() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &app.admin_key,
            json!({"name": "short", "expires_at": soon}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let key = res.body["key"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app
        .post("/v1/keys/verify", &app.admin_key, json!({"key": key}))
        .await;
    assert_eq!(res.body, json!({"valid": false, "code": "expired"}));
}

#[actix_web::test]
async fn revoking_twice_records_one_event() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (kid, _) = app.create_key(&oid, &[]).await;
    let path = format!("/v1/orgs/{oid}/keys/{kid}/revoke");
    let first = app.request("POST", &path, Some(&app.admin_key), None).await;
    let second = app
        .post(&path, &app.admin_key, json!({"reason": "again"}))
        .await;
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.body["revoked_at"], second.body["revoked_at"]);
    assert_eq!(app.count_events("api_key.revoked").await, 1);
    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys/0192f0c1-0000-7000-8000-000000000000/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await,
        404,
        "not_found",
    );
}

#[actix_web::test]
async fn listing_keys_pages_and_hides_revoked_by_default() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(app.create_key(&oid, &[]).await.0);
    }
    app.post(
        &format!("/v1/orgs/{oid}/keys/{}/revoke", ids[0]),
        &app.admin_key,
        json!({}),
    )
    .await;
    let res = app
        .get(&format!("/v1/orgs/{oid}/keys?limit=3"), &app.admin_key)
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 3);
    let cursor = res.body["next_cursor"].as_str().unwrap().to_owned();
    let res = app
        .get(
            &format!("/v1/orgs/{oid}/keys?limit=3&cursor={cursor}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1);
    assert!(res.body["next_cursor"].is_null());
    let res = app
        .get(
            &format!("/v1/orgs/{oid}/keys?include_revoked=true"),
            &app.admin_key,
        )
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 5);
    assert_error(
        &app.get(
            &format!("/v1/orgs/{oid}/keys?include_revoked=maybe"),
            &app.admin_key,
        )
        .await,
        422,
        "validation_error",
    );
}

#[actix_web::test]
async fn grace_seconds_written_with_a_zero_fraction_is_a_whole_number() {
    // JSON (and the OpenAPI document's `integer`) do not tell 60 from 60.0.
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (kid, _) = app.create_key(&oid, &["deploy"]).await;
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({"grace_seconds": 60.0}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let old = app
        .get(&format!("/v1/orgs/{oid}/keys/{kid}"), &app.admin_key)
        .await;
    assert!(old.body["expires_at"].is_string(), "{}", old.text);
}

#[actix_web::test]
async fn rotation_replaces_a_key_with_grace() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (kid, old) = app.create_key(&oid, &["deploy"]).await;
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({"grace_seconds": 3600}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["rotated_from"], kid);
    assert_eq!(res.body["scopes"], json!(["deploy"]));
    let new = res.body["key"].as_str().unwrap().to_owned();
    let new_id = id(&res.body);
    assert_ne!(new, old);
    for key in [&old, &new] {
        let res = app
            .post("/v1/keys/verify", &app.admin_key, json!({"key": key}))
            .await;
        assert_eq!(res.body["valid"], true, "{}", res.text);
    }
    let res = app
        .get(&format!("/v1/orgs/{oid}/keys/{kid}"), &app.admin_key)
        .await;
    assert!(res.body["expires_at"].is_string());

    // Without grace the replaced key stops at once.
    let res = app
        .request(
            "POST",
            &format!("/v1/orgs/{oid}/keys/{new_id}/rotate"),
            Some(&app.admin_key),
            None,
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = app
        .post("/v1/keys/verify", &app.admin_key, json!({"key": new}))
        .await;
    assert_eq!(res.body["code"], "expired");

    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({"grace_seconds": 700000}),
        )
        .await,
        422,
        "validation_error",
    );
    // A fraction is no whole number of seconds.
    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({"grace_seconds": 1.5}),
        )
        .await,
        422,
        "validation_error",
    );
    app.post(
        &format!("/v1/orgs/{oid}/keys/{kid}/revoke"),
        &app.admin_key,
        json!({}),
    )
    .await;
    assert_error(
        &app.post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({}),
        )
        .await,
        409,
        "conflict",
    );
}

#[actix_web::test]
async fn a_key_expiring_at_the_end_of_time_can_be_rotated() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys"),
            &app.admin_key,
            json!({"name": "forever", "expires_at": "+262142-12-31T23:59:59.999999Z"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let kid = id(&res.body);
    let res = app
        .post(
            &format!("/v1/orgs/{oid}/keys/{kid}/rotate"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[actix_web::test]
async fn the_created_key_is_described_as_it_is_stored() {
    let app = spawn_app().await;
    let org = id(&app.create_org("acme", None).await);
    let body = json!({"name": "deploy bot", "scopes": ["deploy", "read"], "expires_at": "2099-01-02T03:04:05.123456Z"});
    let created = app
        .post(&format!("/v1/orgs/{org}/keys"), &app.admin_key, body)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key_id = id(&created.body);
    let stored = app
        .get(&format!("/v1/orgs/{org}/keys/{key_id}"), &app.admin_key)
        .await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    let mut described = created.body.clone();
    let described = described.as_object_mut().unwrap();
    assert!(described.remove("key").is_some(), "shown once, at creation");
    assert!(described.len() >= 7, "{described:?}");
    for (field, value) in described.iter() {
        assert_eq!(value, &stored.body[field], "{field}");
    }
}

#[actix_web::test]
async fn a_revoke_answers_with_the_key_as_it_is_stored() {
    let app = spawn_app().await;
    let org = id(&app.create_org("acme", None).await);
    let (key_id, _) = app.create_key(&org, &["deploy"]).await;
    let revoke = format!("/v1/orgs/{org}/keys/{key_id}/revoke");
    let first = app.post(&revoke, &app.admin_key, json!({})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.body["revoked_at"].is_string(), "{}", first.text);
    let stored = app
        .get(&format!("/v1/orgs/{org}/keys/{key_id}"), &app.admin_key)
        .await;
    assert_eq!(first.body, stored.body);
    // Again: nothing changes, and the answer still says when it happened.
    let again = app.post(&revoke, &app.admin_key, json!({})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, stored.body);
    let other = id(&app.create_org("other", None).await);
    let elsewhere = app
        .post(
            &format!("/v1/orgs/{other}/keys/{key_id}/revoke"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_error(&elsewhere, 404, "not_found");
}
