use crate::helpers::*;

#[actix_web::test]
async fn the_log_is_readable_redacted_and_filterable() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.org").await;
    let org = app.create_org("acme", Some(&id(&user))).await;
    let oid = id(&org);
    let (kid, _) = app.create_key(&oid, &["vouch:audit:read"]).await;

    let res = app.events_eventually("/v1/events", &app.admin_key, 7).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "org.created",
            "api_key.created",
            "signing_key.created",
            "user.registered",
            "org.created",
            "org.member_added",
            "api_key.created"
        ]
    );
    let registered = &items[3];
    assert_eq!(registered["data"]["password_hash"], "[redacted]");
    assert_eq!(registered["data"]["email"], "ada@example.org");
    assert_eq!(registered["stream_type"], "user");
    assert_eq!(registered["version"], 1);
    assert!(registered["metadata"]["request_id"].is_string());
    assert_eq!(items[6]["data"]["key_hash"], "[redacted]");
    assert_eq!(items[6]["metadata"]["actor"]["type"], "api_key");

    let res = app
        .get("/v1/events?type=api_key.created", &app.admin_key)
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 2);
    let res = app
        .get(&format!("/v1/events?stream_id={kid}"), &app.admin_key)
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 1);
    let after = items[4]["cursor"].as_str().unwrap();
    let res = app
        .get(&format!("/v1/events?after={after}"), &app.admin_key)
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 2);
    assert_error(
        &app.get("/v1/events?after=zzz", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/events?stream_id=nope", &app.admin_key).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.get("/v1/events?type=DROP%20TABLE", &app.admin_key)
            .await,
        422,
        "validation_error",
    );
}

#[actix_web::test]
async fn org_events_need_audit_rights_and_stay_in_the_org() {
    let app = spawn_app().await;
    let acme = app.create_org("acme", None).await;
    let other = app.create_org("other", None).await;
    let (_, auditor) = app.create_key(&id(&acme), &["vouch:audit:read"]).await;
    let (_, plain) = app.create_key(&id(&acme), &["deploy"]).await;
    app.create_key(&id(&other), &[]).await;

    let res = app
        .get(&format!("/v1/orgs/{}/events", id(&acme)), &auditor)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "created + two keys: {}", res.text);
    assert!(items.iter().all(|e| e["org_id"] == acme["id"]));
    assert_error(
        &app.get(&format!("/v1/orgs/{}/events", id(&acme)), &plain)
            .await,
        403,
        "forbidden",
    );
    assert_error(&app.get("/v1/events", &auditor).await, 403, "forbidden");
    let res = app
        .get(&format!("/v1/orgs/{}/events", id(&acme)), &app.admin_key)
        .await;
    assert_eq!(res.body["items"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn the_log_is_append_only() {
    let app = spawn_app().await;
    let db = app.db().await;
    for sql in [
        "UPDATE auth_events SET event_type = 'x'",
        "DELETE FROM auth_events",
        "TRUNCATE auth_events",
    ] {
        let err = db.batch_execute(sql).await.expect_err(sql);
        assert!(
            err.to_string().contains("append-only") || format!("{err:?}").contains("append-only"),
            "{sql}: {err:?}"
        );
    }
    let n: i64 = db
        .query_one("SELECT count(*) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "bootstrap org, admin key, signing key");
}
