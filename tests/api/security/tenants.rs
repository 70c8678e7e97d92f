//! Tenant isolation: every org-scoped operation of the OpenAPI document, called
//! by someone of org A with the real ids of org B's objects, answers 404
//! `not_found` exactly as for an org that does not exist, and nothing of B changes.

use super::{operations, Probe};
use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Every org-scoped operation API.md lists: the document must keep them all.
const KNOWN: &[(&str, &str)] = &[
    ("GET", "/v1/orgs/{org_id}"),
    ("PATCH", "/v1/orgs/{org_id}"),
    ("GET", "/v1/orgs/{org_id}/members"),
    ("POST", "/v1/orgs/{org_id}/members"),
    ("PATCH", "/v1/orgs/{org_id}/members/{user_id}"),
    ("DELETE", "/v1/orgs/{org_id}/members/{user_id}"),
    ("POST", "/v1/orgs/{org_id}/keys"),
    ("GET", "/v1/orgs/{org_id}/keys"),
    ("GET", "/v1/orgs/{org_id}/keys/{key_id}"),
    ("POST", "/v1/orgs/{org_id}/keys/{key_id}/revoke"),
    ("POST", "/v1/orgs/{org_id}/keys/{key_id}/rotate"),
    ("GET", "/v1/orgs/{org_id}/events"),
    ("GET", "/v1/orgs/{org_id}/access"),
    ("POST", "/v1/orgs/{org_id}/invitations"),
    ("GET", "/v1/orgs/{org_id}/invitations"),
    ("DELETE", "/v1/orgs/{org_id}/invitations/{invitation_id}"),
];

/// Ids to put in a path template.
#[derive(Clone, Copy)]
struct Ids<'a> {
    org: &'a str,
    key: &'a str,
    user: &'a str,
    invitation: &'a str,
}

fn fill(template: &str, ids: Ids<'_>) -> String {
    let path = template
        .replace("{org_id}", ids.org)
        .replace("{key_id}", ids.key)
        .replace("{user_id}", ids.user)
        .replace("{invitation_id}", ids.invitation);
    assert!(
        !path.contains('{'),
        "{template}: a path parameter this test does not know; give it an id of org B"
    );
    path
}

/// A valid body for an operation, so that only authorisation can refuse it.
fn body_for(method: &str, template: &str, op: &Value, intruder: &str) -> Option<Value> {
    let body = match (method, template) {
        ("PATCH", "/v1/orgs/{org_id}") => json!({"name": "Taken over"}),
        ("POST", "/v1/orgs/{org_id}/members") => json!({"user_id": intruder, "role": "owner"}),
        ("POST", "/v1/orgs/{org_id}/invitations") => {
            json!({"email": "intruder@example.org", "role": "owner"})
        }
        ("PATCH", "/v1/orgs/{org_id}/members/{user_id}") => json!({"role": "owner"}),
        ("POST", "/v1/orgs/{org_id}/keys") => {
            json!({"name": "stolen", "scopes": ["vouch:org:admin"]})
        }
        ("POST", "/v1/orgs/{org_id}/keys/{key_id}/revoke") => json!({"reason": "sabotage"}),
        ("POST", "/v1/orgs/{org_id}/keys/{key_id}/rotate") => json!({"grace_seconds": 0}),
        _ => {
            assert!(
                op.get("requestBody").is_none(),
                "{method} {template} takes a body: give this test a valid one"
            );
            return None;
        }
    };
    Some(body)
}

/// What an admin sees of org B, and how many events it has.
async fn org_state(app: &TestApp, org: &str) -> (Vec<Value>, i64, i64) {
    let mut seen = Vec::new();
    for path in ["", "/members", "/keys?include_revoked=true", "/invitations"] {
        let res = app
            .get(&format!("/v1/orgs/{org}{path}"), &app.admin_key)
            .await;
        assert_eq!(res.status, 200, "{path}: {}", res.text);
        seen.push(res.body);
    }
    let db = app.db().await;
    let org = Uuid::parse_str(org).unwrap();
    let of_b: i64 = db
        .query_one(
            "SELECT count(*) FROM auth_events WHERE org_id = $1",
            &[&org],
        )
        .await
        .unwrap()
        .get(0);
    let all: i64 = db
        .query_one("SELECT count(*) FROM auth_events", &[])
        .await
        .unwrap()
        .get(0);
    (seen, of_b, all)
}

#[actix_web::test]
async fn another_orgs_objects_are_not_found_on_every_org_route() {
    let app = spawn_app().await;
    let probe = Probe::new(&app);

    // Org A: an owner and two org keys. Org B: an owner, a member and keys.
    let (a_owner, a_token, _) = app.user_session("owner-a@example.org").await;
    let org_a = id(&app.create_org("org-a", Some(&a_owner)).await);
    let (_, a_admin_key) = app.create_key(&org_a, &["vouch:org:admin"]).await;
    let (_, a_audit_key) = app.create_key(&org_a, &["vouch:audit:read"]).await;
    let (_, a_verifier) = app.create_key(&org_a, &["vouch:keys:verify"]).await;
    let b_owner = id(&app.create_user("owner-b@example.org").await);
    let b_member = id(&app.create_user("member-b@example.org").await);
    let org_b = id(&app.create_org("org-b", Some(&b_owner)).await);
    let res = app
        .post(
            &format!("/v1/orgs/{org_b}/members"),
            &app.admin_key,
            json!({"user_id": b_member, "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (b_key_id, b_key) = app.create_key(&org_b, &["vouch:org:admin"]).await;
    let res = app
        .post(
            &format!("/v1/orgs/{org_b}/invitations"),
            &app.admin_key,
            json!({"email": "invitee-b@example.org", "role": "member"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let b_invitation = id(&res.body);
    let before = org_state(&app, &org_b).await;

    let doc = probe.call("GET", "/openapi.json", None, None).await.body;
    let scoped: Vec<(String, String, Value)> = operations(&doc)
        .into_iter()
        .filter(|(_, path, _)| path.contains("{org_id}"))
        .collect();
    let documented: BTreeSet<(&str, &str)> = scoped
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    for known in KNOWN {
        assert!(
            documented.contains(known),
            "{known:?} is no longer documented"
        );
    }

    let b = Ids {
        org: &org_b,
        key: &b_key_id,
        user: &b_member,
        invitation: &b_invitation,
    };
    let (nowhere_org, nowhere_key, nowhere_user, nowhere_invitation) = (
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
        Uuid::now_v7().to_string(),
    );
    let nowhere = Ids {
        org: &nowhere_org,
        key: &nowhere_key,
        user: &nowhere_user,
        invitation: &nowhere_invitation,
    };
    // Org A's own path with org B's key, member and invitation: a reference
    // across tenants.
    let across = Ids {
        org: &org_a,
        key: &b_key_id,
        user: &b_member,
        invitation: &b_invitation,
    };
    let callers = [
        ("the owner of org A", a_token.as_str(), true),
        ("a vouch:org:admin key of org A", a_admin_key.as_str(), true),
        (
            "a vouch:audit:read key of org A",
            a_audit_key.as_str(),
            false,
        ),
    ];
    let (mut with_b, mut across_refs, mut others) = (0, 0, 0);
    for (caller, credential, manages_a) in callers {
        let mut exercised = BTreeSet::new();
        for (method, template, op) in &scoped {
            let body = body_for(method, template, op, &a_owner);
            let send = async |ids: Ids<'_>| {
                let path = fill(template, ids);
                probe
                    .call(method, &path, Some(credential), body.clone())
                    .await
            };
            let res = send(b).await;
            assert_error(&res, 404, "not_found");
            let absent = send(nowhere).await;
            assert_eq!(
                (res.status, &res.body["error"]),
                (absent.status, &absent.body["error"]),
                "{caller}, {method} {template}: org B's answer differs from a missing org's"
            );
            let cross_reference = template.contains("{key_id}")
                || template.contains("{user_id}")
                || template.contains("{invitation_id}");
            if manages_a && cross_reference {
                let res = send(across).await;
                assert_error(&res, 404, "not_found");
                across_refs += 1;
            }
            exercised.insert((method.as_str(), template.as_str()));
            with_b += 1;
        }
        assert_eq!(
            exercised, documented,
            "{caller}: an org-scoped route was skipped"
        );

        let res = probe
            .call(
                "GET",
                &format!("/v1/audit/export?org_id={org_b}"),
                Some(credential),
                None,
            )
            .await;
        assert_error(&res, 404, "not_found");
        let res = probe.call("GET", "/v1/orgs", Some(credential), None).await;
        assert_eq!(res.status, 200, "{}", res.text);
        let listed: Vec<&str> = res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [org_a.as_str()], "{caller} lists other orgs");
        others += 2;
    }

    // Keys of org A learn nothing of org B's keys through verify or introspection.
    for key in [&a_verifier, &a_admin_key] {
        let res = probe
            .call(
                "POST",
                "/v1/keys/verify",
                Some(key),
                Some(json!({"key": b_key})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body, json!({"valid": false, "code": "not_found"}));
        others += 1;
    }
    for key in [&a_admin_key, &a_audit_key] {
        let res = probe
            .call(
                "POST",
                "/v1/introspect",
                Some(key),
                Some(json!({"token": b_key})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.body, json!({"active": false}));
        let res = probe
            .call(
                "GET",
                &format!("/v1/events?stream_id={org_b}"),
                Some(key),
                None,
            )
            .await;
        assert_error(&res, 403, "forbidden");
        others += 2;
    }
    probe.assert_clean();

    let after = org_state(&app, &org_b).await;
    assert_eq!(after.0, before.0, "org B changed");
    assert_eq!(after.1, before.1, "org B has new events");
    assert_eq!(after.2, before.2, "the log has new events");
    println!(
        "tenant isolation: {} org-scoped operations; {with_b} calls with org B's ids, \
         each also with a missing org's; {across_refs} references to org B's objects \
         from org A's paths; {others} export, list, verify, introspect and log calls; \
         {} requests",
        documented.len(),
        probe.inspector.borrow().requests
    );
}
