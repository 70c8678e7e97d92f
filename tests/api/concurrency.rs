use crate::helpers::*;
use futures_util::future::join_all;
use serde_json::json;

#[actix_web::test]
async fn twenty_concurrent_sign_ups_with_one_email_give_one_user() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        app.request(
            "POST",
            "/v1/users",
            None,
            Some(
                json!({"email": "race@example.org", "password": format!("passphrase number {i}")}),
            ),
        )
    });
    let results = join_all(attempts).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let taken = results
        .iter()
        .filter(|r| r.status == 409 && r.body["error"]["code"] == "email_taken")
        .count();
    assert_eq!(
        (created, taken),
        (1, 19),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.count_events("user.registered").await, 1);
}

#[actix_web::test]
async fn twenty_concurrent_revokes_give_one_event() {
    let app = spawn_app().await;
    let org = app.create_org("acme", None).await;
    let oid = id(&org);
    let (kid, _) = app.create_key(&oid, &[]).await;
    let path = format!("/v1/orgs/{oid}/keys/{kid}/revoke");
    let results =
        join_all((0..20).map(|_| app.post(&path, &app.admin_key, json!({"reason": "race"})))).await;
    assert!(
        results.iter().all(|r| r.status == 200),
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(app.count_events("api_key.revoked").await, 1);
}

#[actix_web::test]
async fn concurrent_member_changes_keep_an_owner() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.org").await;
    let b = app.create_user("b@example.org").await;
    let org = app.create_org("acme", Some(&id(&a))).await;
    let oid = id(&org);
    app.post(
        &format!("/v1/orgs/{oid}/members"),
        &app.admin_key,
        json!({"user_id": id(&b), "role": "owner"}),
    )
    .await;
    // Both owners try to leave at once: one must stay.
    let (path_a, path_b) = (
        format!("/v1/orgs/{oid}/members/{}", id(&a)),
        format!("/v1/orgs/{oid}/members/{}", id(&b)),
    );
    let (ra, rb) = tokio::join!(
        app.delete(&path_a, &app.admin_key),
        app.delete(&path_b, &app.admin_key)
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [204, 409], "{} {}", ra.text, rb.text);
    let res = app
        .get(&format!("/v1/orgs/{oid}/members"), &app.admin_key)
        .await;
    assert_eq!(res.body["items"][0]["role"], "owner");
}
