//! Timing does not tell which emails are registered: a sign-in with an unknown
//! email and one with a known email and a wrong password, and a password-reset
//! request for either, take the same time within 20%.
//!
//! Both paths verify an argon2id hash (the unknown one against a dummy), which
//! is most of their time; a path that skipped it would answer several times
//! faster. The machine is shared (the whole suite runs beside this test), so:
//! - the samples come in pairs, taken back to back in alternating order, and
//!   the verdict is the median of the pairs' ratios: a pair shares the load of
//!   its moment, which a comparison of two separate medians does not;
//! - before each sample, the previous known-email attempt's `user.login_failed`
//!   append (written after its answer) has committed: waited for, not guessed
//!   with a pause, so it is never timed as part of the next sample;
//! - when a round's noise leaves the ratio over the limit, another round's pairs
//!   are pooled with it, so that the verdict rests on more data, never on a
//!   lucky round.

use super::Probe;
use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

const SAMPLES: usize = 15;
const ROUNDS: usize = 6;
const TOLERANCE: f64 = 1.2;

/// The known address both tests time against unknown ones.
const KNOWN: &str = "known@example.org";

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `attempt` for [`KNOWN`] and for a fresh unknown address in
/// back-to-back pairs of alternating order, `pairs` a round, until the median
/// of the pairs' ratios is within [`TOLERANCE`] (a pass) or [`ROUNDS`] rounds
/// were pooled (a failure, with every round's figures).
async fn assert_alike(what: &str, pairs: usize, attempt: impl AsyncFn(&str) -> Duration) {
    let (mut known, mut unknown, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..pairs {
            let nobody = format!("nobody-{round}-{i}@example.org");
            let (k, u) = if i % 2 == 0 {
                let k = attempt(KNOWN).await;
                (k, attempt(&nobody).await)
            } else {
                let u = attempt(&nobody).await;
                (attempt(KNOWN).await, u)
            };
            known.push(millis(k));
            unknown.push(millis(u));
            ratios.push(millis(k) / millis(u));
        }
        let (k, u, r) = (
            median(&mut known),
            median(&mut unknown),
            median(&mut ratios),
        );
        println!(
            "{what} timing after {} pairs: known email {k:.2} ms; unknown email {u:.2} ms \
             (medians); median ratio of the pairs {r:.3}",
            known.len()
        );
        rounds.push(format!(
            "{} pairs: {k:.2} ms vs {u:.2} ms (median pair ratio {r:.3})",
            known.len()
        ));
        if r.max(1.0 / r) <= TOLERANCE {
            return;
        }
    }
    panic!(
        "{what} for a known and for an unknown email differ by more than {:.0}%: {}",
        (TOLERANCE - 1.0) * 100.0,
        rounds.join("; ")
    );
}

/// Waits until the log holds `n` events of `event_type` (at most 5 s): what a
/// known address's attempt records after its answer has committed, so that it
/// is never timed as part of the next attempt.
async fn settled(db: &tokio_postgres::Client, event_type: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let have: i64 = db
            .query_one(
                "SELECT count(*) FROM auth_events WHERE event_type = $1",
                &[&event_type],
            )
            .await
            .unwrap()
            .get(0);
        if have >= n || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[actix_web::test]
async fn sign_in_takes_as_long_for_an_unknown_email_as_for_a_wrong_password() {
    let app = spawn_app_with(|s| {
        s.auth.signin_email_failures = 1_000_000;
        s.auth.signin_ip_attempts = 1_000_000;
    })
    .await;
    let probe = Probe::new(&app);
    app.create_user(KNOWN).await;
    let db = app.db().await;
    let failures = std::cell::Cell::new(0i64);
    let attempt = async |email: &str| {
        let body = json!({"email": email, "password": "not the right passphrase"});
        settled(&db, "user.login_failed", failures.get()).await;
        let started = Instant::now();
        let res = probe.call("POST", "/v1/sessions", None, Some(body)).await;
        let took = started.elapsed();
        assert_error(&res, 401, "invalid_credentials");
        if email == KNOWN {
            failures.set(failures.get() + 1);
        }
        took
    };
    // The first unknown email computes the dummy hash; connections and
    // statements are prepared.
    for i in 0..3 {
        attempt(KNOWN).await;
        attempt(&format!("warm-up-{i}@example.org")).await;
    }
    assert_alike("sign-in", SAMPLES, attempt).await;
    probe.assert_clean();
}

/// A password-reset request is answered in the same time for an address with
/// an account as for one without: the look-up and the request's event come
/// after the answer (docs/account-lifecycle.md). Measured as sign-in is.
#[actix_web::test]
async fn a_reset_request_takes_as_long_for_an_unknown_email_as_for_a_known_one() {
    let app = spawn_app_with(|s| {
        s.auth.mail_email_requests = 1_000_000;
        s.auth.mail_ip_requests = 1_000_000;
    })
    .await;
    let probe = Probe::new(&app);
    app.create_user(KNOWN).await;
    let db = app.db().await;
    let asked = std::cell::Cell::new(0i64);
    let attempt = async |email: &str| {
        settled(&db, "user.password_reset_requested", asked.get()).await;
        let started = Instant::now();
        let body = json!({ "email": email });
        let res = probe
            .call("POST", "/v1/password-reset", None, Some(body))
            .await;
        let took = started.elapsed();
        assert_eq!(res.status, 202, "{}", res.text);
        if email == KNOWN {
            asked.set(asked.get() + 1);
        }
        took
    };
    for i in 0..5 {
        attempt(KNOWN).await;
        attempt(&format!("warm-up-{i}@example.org")).await;
    }
    // Each answer takes a few milliseconds: more pairs a round.
    assert_alike("password-reset", SAMPLES * 2, &attempt).await;
    let recorded = app
        .count_events_eventually("user.password_reset_requested", asked.get())
        .await;
    assert_eq!(
        recorded,
        asked.get(),
        "every known request was recorded, and no unknown one"
    );
    probe.assert_clean();
}
