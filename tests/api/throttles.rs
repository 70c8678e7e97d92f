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

#[actix_web::test]
async fn parallel_sign_ups_from_one_address_never_pass_the_limit() {
    let apps = three_instances().await;
    for apps in [&apps[..1], &apps[..]] {
        // A fresh window per round: the attempts of the last one are forgotten.
        apps[0]
            .db()
            .await
            .execute("DELETE FROM auth_attempts", &[])
            .await
            .unwrap();
        let tag = apps.len();
        let got = statuses(
            apps,
            "/v1/users",
            |i| json!({"email": format!("signup-{tag}-{i}@example.org"), "password": PASSWORD}),
        )
        .await;
        eprintln!(
            "{PARALLEL} parallel sign-ups on {tag} instance(s): {} passed",
            passed(&got)
        );
        assert_eq!(passed(&got), SIGNUPS, "{got:?}");
        assert!(got.iter().all(|s| [201, 429].contains(s)), "{got:?}");
    }
}

#[actix_web::test]
async fn parallel_sign_ins_from_one_address_never_pass_the_limit() {
    let apps = three_instances().await;
    for apps in [&apps[..1], &apps[..]] {
        apps[0]
            .db()
            .await
            .execute("DELETE FROM auth_attempts", &[])
            .await
            .unwrap();
        let tag = apps.len();
        // Another email each: only the address limit applies.
        let got = statuses(
            apps,
            "/v1/sessions",
            |i| json!({"email": format!("nobody-{tag}-{i}@example.org"), "password": PASSWORD}),
        )
        .await;
        eprintln!(
            "{PARALLEL} parallel sign-ins on {tag} instance(s): {} passed",
            passed(&got)
        );
        assert_eq!(passed(&got), SIGNINS, "{got:?}");
        assert!(got.iter().all(|s| [401, 429].contains(s)), "{got:?}");
    }
}
