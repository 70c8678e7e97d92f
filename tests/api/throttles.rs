//! Per-address throttles hold under parallel requests, on one instance or three.

use crate::helpers::{spawn_app_with, spawn_instance, TestApp, PASSWORD};
use futures_util::future::join_all;
use serde_json::json;

const SIGNUPS: usize = 5;
const SIGNINS: usize = 6;
const PARALLEL: usize = 24;

async fn three_instances() -> Vec<TestApp> {
    let limits = |s: &mut vouch::config::Settings| {
        s.auth.signup_ip_attempts = SIGNUPS;
        s.auth.signin_ip_attempts = SIGNINS;
    };
    let first = spawn_app_with(limits).await;
    let second = spawn_instance(&first, limits).await;
    let third = spawn_instance(&first, limits).await;
    vec![first, second, third]
}

/// Statuses of `PARALLEL` requests sent at once, spread over `apps`.
async fn statuses(
    apps: &[TestApp],
    path: &str,
    body: impl Fn(usize) -> serde_json::Value,
) -> Vec<u16> {
    let requests = (0..PARALLEL).map(|i| {
        let app = &apps[i % apps.len()];
        app.request("POST", path, None, Some(body(i)))
    });
    join_all(requests).await.iter().map(|r| r.status).collect()
}

fn passed(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s != 429).count()
}

/// On one instance, then spread over three, with a fresh window each time:
/// `PARALLEL` requests at once from one address pass the address limit
/// exactly `limit` times; the others are 429, the passed ones `passed_status`.
async fn assert_limit_holds(
    path: &str,
    body: impl Fn(usize, usize) -> serde_json::Value,
    limit: usize,
    passed_status: u16,
) {
    let apps = three_instances().await;
    for apps in [&apps[..1], &apps[..]] {
        // The attempts of the last round are forgotten.
        apps[0]
            .db()
            .await
            .execute("DELETE FROM auth_attempts", &[])
            .await
            .unwrap();
        let n = apps.len();
        let got = statuses(apps, path, |i| body(n, i)).await;
        eprintln!(
            "{PARALLEL} parallel POST {path} on {n} instance(s): {} passed",
            passed(&got)
        );
        assert_eq!(passed(&got), limit, "{got:?}");
        assert!(
            got.iter().all(|s| [passed_status, 429].contains(s)),
            "{got:?}"
        );
    }
}

#[actix_web::test]
async fn parallel_sign_ups_from_one_address_never_pass_the_limit() {
    let body = |n: usize, i: usize| json!({"email": format!("signup-{n}-{i}@example.org"), "password": PASSWORD});
    assert_limit_holds("/v1/users", body, SIGNUPS, 201).await;
}

#[actix_web::test]
async fn parallel_sign_ins_from_one_address_never_pass_the_limit() {
    // Another email each: only the address limit applies.
    let body = |n: usize, i: usize| json!({"email": format!("nobody-{n}-{i}@example.org"), "password": PASSWORD});
    assert_limit_holds("/v1/sessions", body, SIGNINS, 401).await;
}
