use crate::helpers::*;
use serde_json::json;

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
        .events_eventually(&format!("/v1/orgs/{}/events", id(&acme)), &auditor, 3)
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

#[actix_web::test]
async fn access_review_answers_for_three_moments() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.org").await;
    let ada = app.create_user("ada@example.org").await;
    let org = app.create_org("acme", Some(&id(&owner))).await;
    let oid = id(&org);
    let members = format!("/v1/orgs/{oid}/members");
    let added = app
        .post(
            &members,
            &app.admin_key,
            json!({"user_id": id(&ada), "role": "member"}),
        )
        .await;
    assert_eq!(added.status, 201);
    let (kid, _) = app.create_key(&oid, &["deploy"]).await;
    let moment = |ty: &'static str, n: usize| {
        let app = &app;
        async move {
            let res = app
                .events_eventually(&format!("/v1/events?type={ty}"), &app.admin_key, n)
                .await;
            let items = res.body["items"].as_array().unwrap().clone();
            let last = items.last().unwrap().clone();
            (
                last["occurred_at"].as_str().unwrap().to_owned(),
                last["event_id"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (t1, added_event) = moment("api_key.created", 2).await;
    app.patch(
        &format!("{members}/{}", id(&ada)),
        &app.admin_key,
        json!({"role": "admin"}),
    )
    .await;
    let (t2, promoted_event) = moment("org.member_role_changed", 1).await;
    app.delete(&format!("{members}/{}", id(&ada)), &app.admin_key)
        .await;
    app.post(
        &format!("/v1/orgs/{oid}/keys/{kid}/revoke"),
        &app.admin_key,
        json!({}),
    )
    .await;
    let (t3, _) = moment("api_key.revoked", 1).await;

    let review = |t: String| {
        let app = &app;
        let oid = oid.clone();
        async move {
            let t = t.replace('+', "%2B");
            let res = app
                .get(&format!("/v1/orgs/{oid}/access?as_of={t}"), &app.admin_key)
                .await;
            assert_eq!(res.status, 200, "as_of={t}: {}", res.text);
            res.body
        }
    };
    let ada_in = |body: &serde_json::Value| {
        body["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == ada["id"])
            .cloned()
    };

    let at1 = review(t1).await;
    assert_eq!(at1["org"]["slug"], "acme");
    let m = ada_in(&at1).expect("ada is a member at t1");
    assert_eq!(m["role"], "member");
    assert_eq!(m["email"], "ada@example.org");
    assert_eq!(m["granted"]["actor"]["type"], "api_key");
    let member_added = app
        .get("/v1/events?type=org.member_added", &app.admin_key)
        .await;
    let added_id = member_added.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["event_id"]
        .clone();
    assert_eq!(m["granted"]["event_id"], added_id);
    assert_eq!(
        at1["keys"].as_array().unwrap().len(),
        1,
        "the key was issued at t1: {at1}"
    );
    assert_eq!(at1["keys"][0]["key_id"], kid);
    assert_eq!(at1["keys"][0]["granted"]["event_id"], added_event.as_str());

    let at2 = review(t2).await;
    let m = ada_in(&at2).expect("ada is a member at t2");
    assert_eq!(m["role"], "admin");
    assert_eq!(m["granted"]["event_id"], promoted_event.as_str());

    let at3 = review(t3).await;
    assert!(ada_in(&at3).is_none(), "ada was removed by t3");
    assert_eq!(at3["keys"], json!([]), "the key was revoked by t3");
    assert_eq!(
        at3["members"].as_array().unwrap().len(),
        1,
        "the owner stays"
    );

    assert_error(
        &app.get(
            &format!("/v1/orgs/{oid}/access?as_of=2001-01-01T00:00:00Z"),
            &app.admin_key,
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.get(
            &format!("/v1/orgs/{oid}/access?as_of=yesterday"),
            &app.admin_key,
        )
        .await,
        422,
        "validation_error",
    );
    let (_, plain) = app.create_key(&oid, &["deploy"]).await;
    assert_error(
        &app.get(&format!("/v1/orgs/{oid}/access"), &plain).await,
        403,
        "forbidden",
    );
    let (_, auditor) = app.create_key(&oid, &["vouch:audit:read"]).await;
    assert_eq!(
        app.get(&format!("/v1/orgs/{oid}/access"), &auditor)
            .await
            .status,
        200
    );
}
