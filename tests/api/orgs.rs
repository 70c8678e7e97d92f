use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn admins_create_orgs_with_an_owner() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.org").await;
    let res = app
        .post(
            "/v1/orgs",
            &app.admin_key,
            json!({"name": "Acme", "slug": "acme", "owner_id": id(&owner)}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["slug"], "acme");
    let org_id = id(&res.body);
    let res = app
        .get(&format!("/v1/orgs/{org_id}/members"), &app.admin_key)
        .await;
    assert_eq!(res.body["items"][0]["role"], "owner");
    assert_eq!(res.body["items"][0]["email"], "owner@example.org");

    assert_error(
        &app.post(
            "/v1/orgs",
            &app.admin_key,
            json!({"name": "Other", "slug": "acme"}),
        )
        .await,
        409,
        "slug_taken",
    );
    assert_error(
        &app.post(
            "/v1/orgs",
            &app.admin_key,
            json!({"name": "Bad", "slug": "-x"}),
        )
        .await,
        422,
        "validation_error",
    );
    let res = app
        .post("/v1/orgs", &app.admin_key, json!({"name": "Ghost", "slug": "ghost", "owner_id": "0192f0c1-0000-7000-8000-000000000000"}))
        .await;
    assert_error(&res, 422, "validation_error");
    assert_eq!(app.count_events("org.created").await, 2, "system + acme");
}

#[actix_web::test]
async fn org_keys_cannot_create_orgs_and_see_only_their_own() {
    let app = spawn_app().await;
    let acme = app.create_org("acme", None).await;
    let other = app.create_org("other", None).await;
    let (_, key) = app.create_key(&id(&acme), &["vouch:org:admin"]).await;
    assert_error(
        &app.post("/v1/orgs", &key, json!({"name": "X", "slug": "xyz"}))
            .await,
        403,
        "forbidden",
    );
    let res = app.get("/v1/orgs", &key).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(res.body["items"][0]["id"], acme["id"]);
    let oid = id(&other);
    for path in [
        format!("/v1/orgs/{oid}"),
        format!("/v1/orgs/{oid}/members"),
        format!("/v1/orgs/{oid}/keys"),
        format!("/v1/orgs/{oid}/events"),
    ] {
        assert_error(&app.get(&path, &key).await, 404, "not_found");
    }
    assert_error(
        &app.patch(&format!("/v1/orgs/{oid}"), &key, json!({"name": "Mine"}))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.post(&format!("/v1/orgs/{oid}/keys"), &key, json!({"name": "k"}))
            .await,
        404,
        "not_found",
    );
}

#[actix_web::test]
async fn listing_orgs_pages_by_cursor() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_org(&format!("org-{i}"), None).await;
    }
    let mut seen = vec![];
    let mut path = "/v1/orgs?limit=2".to_owned();
    loop {
        let res = app.get(&path, &app.admin_key).await;
        assert_eq!(res.status, 200, "{}", res.text);
        for o in res.body["items"].as_array().unwrap() {
            seen.push(o["slug"].as_str().unwrap().to_owned());
        }
        match res.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/orgs?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "system + 5: {seen:?}");
    assert_error(
        &app.get("/v1/orgs?limit=0", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/orgs?limit=abc", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/orgs?cursor=nonsense", &app.admin_key).await,
        422,
        "validation_error",
    );
}

#[actix_web::test]
async fn renaming_an_org() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let path = format!("/v1/orgs/{}", id(&org));
    let res = app
        .patch(&path, &app.admin_key, json!({"name": "Acme Corp"}))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["name"], "Acme Corp");
    let (_, reader) = app.create_key(&id(&org), &["vouch:keys:verify"]).await;
    assert_error(
        &app.patch(&path, &reader, json!({"name": "Mine"})).await,
        403,
        "forbidden",
    );
    assert_eq!(
        app.get(&path, &reader).await.status,
        200,
        "org keys read their org"
    );
}

#[actix_web::test]
async fn members_are_added_changed_and_removed_under_the_rules() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.org").await;
    let bob = app.create_user("bob@example.org").await;
    let org = app.create_org("acme", Some(&id(&owner))).await;
    let oid = id(&org);
    let (_, org_admin) = app.create_key(&oid, &["vouch:org:admin"]).await;
    let members = format!("/v1/orgs/{oid}/members");

    // People join by invitation; adding by id is vouch:admin's alone.
    assert_error(
        &app.post(
            &members,
            &org_admin,
            json!({"user_id": id(&bob), "role": "member"}),
        )
        .await,
        403,
        "forbidden",
    );
    let res = app
        .post(
            &members,
            &app.admin_key,
            json!({"user_id": id(&bob), "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["role"], "member");
    assert_error(
        &app.post(
            &members,
            &app.admin_key,
            json!({"user_id": id(&bob), "role": "member"}),
        )
        .await,
        409,
        "already_member",
    );
    assert_error(
        &app.post(
            &members,
            &app.admin_key,
            json!({"user_id": id(&bob), "role": "boss"}),
        )
        .await,
        422,
        "validation_error",
    );

    let bob_path = format!("{members}/{}", id(&bob));
    assert_error(
        &app.patch(&bob_path, &org_admin, json!({"role": "owner"}))
            .await,
        403,
        "forbidden",
    );
    let res = app
        .patch(&bob_path, &org_admin, json!({"role": "admin"}))
        .await;
    assert_eq!(res.body["role"], "admin");

    let owner_path = format!("{members}/{}", id(&owner));
    assert_error(
        &app.patch(&owner_path, &app.admin_key, json!({"role": "member"}))
            .await,
        409,
        "last_owner",
    );
    assert_error(
        &app.delete(&owner_path, &app.admin_key).await,
        409,
        "last_owner",
    );
    assert_error(&app.delete(&owner_path, &org_admin).await, 403, "forbidden");

    let res = app
        .patch(&bob_path, &app.admin_key, json!({"role": "owner"}))
        .await;
    assert_eq!(res.body["role"], "owner");
    assert_eq!(app.delete(&owner_path, &app.admin_key).await.status, 204);
    assert_error(
        &app.delete(&owner_path, &app.admin_key).await,
        404,
        "not_found",
    );
    let res = app.get(&members, &org_admin).await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1);
    let res = app
        .post(
            &members,
            &app.admin_key,
            json!({"user_id": "0192f0c1-0000-7000-8000-000000000000", "role": "member"}),
        )
        .await;
    assert_error(&res, 422, "validation_error");
}
