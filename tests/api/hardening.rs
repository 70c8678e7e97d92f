//! What an attacker and a strict client found: look-alike emails, invisible
//! characters, caching headers, member emails, key lifetimes, JSON syntax.

use crate::helpers::{assert_error, id, spawn_app, PASSWORD};
use serde_json::json;

#[actix_web::test]
async fn look_alike_emails_are_one_account() {
    let app = spawn_app().await;
    let first = app.create_user("ada@bücher.example").await;
    assert_eq!(first["email"], "ada@xn--bcher-kva.example");
    for alike in [
        "ＡＤＡ@bücher.example",
        "ada@XN--BCHER-KVA.example",
        "Ada@Bücher.Example",
    ] {
        let res = app
            .request(
                "POST",
                "/v1/users",
                None,
                Some(json!({"email": alike, "password": PASSWORD})),
            )
            .await;
        assert_error(&res, 409, "email_taken");
    }
    // And each of them signs in to the one account.
    let res = app.sign_in("ＡＤＡ@BÜCHER.example", PASSWORD).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["user"]["id"], first["id"]);
}

#[actix_web::test]
async fn invisible_characters_are_refused_in_emails_and_names() {
    let app = spawn_app().await;
    let user = app.create_user("grace@example.org").await;
    let org = app.create_org("acme", None).await;
    let org_id = id(&org);
    for c in ['\u{200b}', '\u{202e}', '\u{00ad}', '\u{2066}', '\u{feff}'] {
        let email = format!("gr{c}ace2@example.org");
        let res = app
            .request(
                "POST",
                "/v1/users",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_error(&res, 422, "validation_error");
        assert_eq!(res.body["error"]["details"]["field"], "email");

        let name = format!("Gr{c}ace");
        let cases = [
            (
                "PATCH",
                format!("/v1/users/{}", id(&user)),
                json!({"name": name}),
            ),
            (
                "POST",
                "/v1/orgs".to_owned(),
                json!({"name": name, "slug": "other"}),
            ),
            ("PATCH", format!("/v1/orgs/{org_id}"), json!({"name": name})),
            (
                "POST",
                format!("/v1/orgs/{org_id}/keys"),
                json!({"name": name}),
            ),
        ];
        for (method, path, body) in cases {
            let res = app
                .request(method, &path, Some(&app.admin_key), Some(body))
                .await;
            assert_error(&res, 422, "validation_error");
            assert_eq!(res.body["error"]["details"]["field"], "name", "{path}");
        }
    }
    assert_eq!(app.count_events("user.registered").await, 1);
    assert_eq!(
        app.count_events("api_key.created").await,
        1,
        "bootstrap only"
    );
}

fn header<'a>(res: &'a crate::helpers::Response, name: &str) -> Option<&'a str> {
    res.headers.get(name).and_then(|v| v.to_str().ok())
}

#[actix_web::test]
async fn secrets_are_never_cached_and_nothing_is_sniffed() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let org_id = id(&org);
    app.create_user("ada@example.org").await;
    let signed_in = app.sign_in("ada@example.org", PASSWORD).await;
    let refreshed = app.refresh(&signed_in.body["refresh_token"]).await;
    let created = app
        .post(
            &format!("/v1/orgs/{org_id}/keys"),
            &app.admin_key,
            json!({"name": "k"}),
        )
        .await;
    let rotated = app
        .post(
            &format!("/v1/orgs/{org_id}/keys/{}/rotate", id(&created.body)),
            &app.admin_key,
            json!({}),
        )
        .await;
    for (what, res, status) in [
        ("sign-in", &signed_in, 201),
        ("refresh", &refreshed, 200),
        ("key create", &created, 201),
        ("key rotate", &rotated, 201),
    ] {
        assert_eq!(res.status, status, "{what}: {}", res.text);
        assert_eq!(header(res, "cache-control"), Some("no-store"), "{what}");
        assert_eq!(header(res, "x-content-type-options"), Some("nosniff"));
    }
    // Every response is nosniff, errors and the public JWKS too; the JWKS
    // keeps its own caching.
    let jwks = app
        .request("GET", "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(header(&jwks, "cache-control"), Some("public, max-age=60"));
    for res in [
        jwks,
        app.request("GET", "/nowhere", None, None).await,
        app.request("PUT", "/healthz", None, None).await,
        app.request("GET", "/v1/orgs", None, None).await,
        app.request("GET", "/metrics", None, None).await,
    ] {
        assert_eq!(header(&res, "x-content-type-options"), Some("nosniff"));
    }
}

#[actix_web::test]
async fn member_emails_are_for_the_orgs_people_and_admin_keys_only() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.org").await;
    let org = app.create_org("acme", Some(&id(&owner))).await;
    let org_id = id(&org);
    let other = app.create_user("other@example.org").await;
    let members = format!("/v1/orgs/{org_id}/members");
    let member = format!("{members}/{}", id(&owner));
    for scopes in [
        &["deploy"][..],
        &["vouch:keys:verify"],
        &["vouch:audit:read", "read:things"],
    ] {
        let (_, key) = app.create_key(&org_id, scopes).await;
        for (method, path, body) in [
            ("GET", &members, None),
            (
                "POST",
                &members,
                Some(json!({"user_id": id(&other), "role": "member"})),
            ),
            ("PATCH", &member, Some(json!({"role": "admin"}))),
            ("DELETE", &member, None),
        ] {
            let res = app.request(method, path, Some(&key), body).await;
            assert_error(&res, 403, "forbidden");
            assert!(!res.text.contains("owner@example.org"), "{scopes:?}");
        }
    }
    let (_, org_admin) = app.create_key(&org_id, &["vouch:org:admin"]).await;
    let signed_in = app.sign_in("owner@example.org", PASSWORD).await;
    let token = signed_in.body["access_token"].as_str().unwrap().to_owned();
    for credential in [&org_admin, &app.admin_key, &token] {
        let res = app.get(&members, credential).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body["items"][0]["email"], "owner@example.org");
    }
    assert_eq!(
        app.count_events("org.member_added").await,
        1,
        "the owner only"
    );
}

#[actix_web::test]
async fn a_key_may_not_mint_a_key_that_outlives_it() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let keys = format!("/v1/orgs/{}/keys", id(&org));
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let earlier = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let short = app
        .post(
            &keys,
            &app.admin_key,
            json!({"name": "short", "scopes": ["vouch:org:admin"], "expires_at": soon}),
        )
        .await;
    assert_eq!(short.status, 201, "{}", short.text);
    let short_key = short.body["key"].as_str().unwrap();
    for body in [
        json!({"name": "forever", "scopes": ["vouch:org:admin"]}),
        json!({"name": "longer", "scopes": ["deploy"], "expires_at": later}),
    ] {
        let res = app.post(&keys, short_key, body).await;
        assert_error(&res, 422, "validation_error");
        assert_eq!(res.body["error"]["details"]["field"], "expires_at");
    }
    let within = app
        .post(
            &keys,
            short_key,
            json!({"name": "within", "expires_at": earlier}),
        )
        .await;
    assert_eq!(within.status, 201, "{}", within.text);
    // Rotating a non-expiring key would mint one that outlives the caller.
    let forever = app
        .post(
            &keys,
            &app.admin_key,
            json!({"name": "app key", "scopes": ["deploy"]}),
        )
        .await;
    let rotate = format!("{keys}/{}/rotate", id(&forever.body));
    assert_error(
        &app.post(&rotate, short_key, json!({})).await,
        403,
        "forbidden",
    );
    // A key that never expires and a user mint keys of any lifetime.
    let (_, lasting) = app.create_key(&id(&org), &["vouch:org:admin"]).await;
    let res = app
        .post(&keys, &lasting, json!({"name": "also forever"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(app.post(&rotate, &lasting, json!({})).await.status, 201);
    // Refusals appended nothing: bootstrap, short, within, app key, lasting, also forever, rotated.
    assert_eq!(app.count_events("api_key.created").await, 7);
}

/// Every operation of `/openapi.json` that takes a JSON body, with its path
/// parameters filled in with objects that exist.
async fn json_operations(app: &crate::helpers::TestApp) -> Vec<(String, String)> {
    let user = app.create_user("json@example.org").await;
    let org = app.create_org("json", Some(&id(&user))).await;
    let (key_id, _) = app.create_key(&id(&org), &[]).await;
    let doc = app.request("GET", "/openapi.json", None, None).await.body;
    let mut operations = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation.get("requestBody").is_none() {
                continue;
            }
            let concrete = path
                .replace("{org_id}", &id(&org))
                .replace("{key_id}", &key_id)
                .replace("{user_id}", &id(&user))
                .replace("{passkey_id}", &uuid::Uuid::nil().to_string())
                .replace("{id}", &id(&user));
            operations.push((method.to_uppercase(), concrete));
        }
    }
    operations
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_400_on_every_route_before_its_fields_are_read() {
    let app = spawn_app().await;
    let operations = json_operations(&app).await;
    assert!(operations.len() >= 15, "{operations:?}");
    let malformed = [
        "[1, 2",
        "{} trailing",
        r#"{"a": 1,}"#,
        r#"{"a": "unterminated}"#,
        r#"{"name": 5,"#,
    ];
    let mut checked = 0;
    for (method, path) in &operations {
        for body in malformed {
            let res = app
                .raw(
                    method,
                    path,
                    Some(&app.admin_key),
                    Some("application/json"),
                    body.as_bytes().to_vec(),
                )
                .await;
            assert_error(&res, 400, "invalid_json");
            assert!(
                res.body["error"].get("details").is_none()
                    || res.body["error"]["details"].get("field").is_none(),
                "{method} {path} {body}: {}",
                res.text
            );
            checked += 1;
        }
    }
    eprintln!(
        "{checked} malformed bodies on {} operations: all 400",
        operations.len()
    );
}

#[actix_web::test]
async fn a_body_that_is_an_array_of_the_fields_is_refused() {
    // serde reads a struct from an array of its fields in order; the API
    // takes objects only (schemathesis sent `[null, null]` to a DELETE whose
    // body is two optional fields, and it ran as an empty body).
    let app = spawn_app().await;
    let (user, token, _) = app.user_session("ada@example.org").await;
    let res = app
        .request(
            "DELETE",
            &format!("/v1/users/{user}/mfa/totp"),
            Some(&app.admin_key),
            Some(json!([null, null])),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    let res = app
        .request(
            "POST",
            "/v1/users",
            None,
            Some(json!(["bob@example.org", PASSWORD, null])),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    let res = app
        .request(
            "PATCH",
            &format!("/v1/users/{user}"),
            Some(&token),
            Some(json!(["Ada"])),
        )
        .await;
    assert_error(&res, 422, "validation_error");
    assert_eq!(app.count_events("user.registered").await, 1);
}
