//! Sign-in timing does not tell which emails are registered: an unknown email
//! and a known email with a wrong password take the same time within 20%.
//!
//! Both paths verify an argon2id hash (the unknown one against a dummy), which
//! is most of their time; a path that skipped it would answer several times
//! faster. The machine is shared, so the samples are interleaved (each pair in
//! alternating order, a pause before each) after a warm-up and compared by
//! their medians; when a round's noise leaves the medians apart, another
//! round's samples are pooled with it, so that the verdict rests on more data,
//! never on a lucky round.

use super::Probe;
use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

const SAMPLES: usize = 15;
const ROUNDS: usize = 6;
/// A pause before each sample: what an answer leaves running (a known email's
/// `user.login_failed` append) is not timed as part of the next one.
const SETTLE: Duration = Duration::from_millis(15);
const TOLERANCE: f64 = 1.2;

fn median(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

#[actix_web::test]
async fn sign_in_takes_as_long_for_an_unknown_email_as_for_a_wrong_password() {
    let app = spawn_app_with(|s| {
        s.auth.signin_email_failures = 1_000_000;
        s.auth.signin_ip_attempts = 1_000_000;
    })
    .await;
    let probe = Probe::new(&app);
    app.create_user("known@example.org").await;
    let attempt = async |email: &str| {
        let body = json!({"email": email, "password": "not the right passphrase"});
        tokio::time::sleep(SETTLE).await;
        let started = Instant::now();
        let res = probe.call("POST", "/v1/sessions", None, Some(body)).await;
        let took = started.elapsed();
        assert_error(&res, 401, "invalid_credentials");
        took
    };
    // The first unknown email computes the dummy hash; connections and
    // statements are prepared.
    for i in 0..3 {
        attempt("known@example.org").await;
        attempt(&format!("warm-up-{i}@example.org")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..SAMPLES {
            let nobody = format!("nobody-{round}-{i}@example.org");
            if i % 2 == 0 {
                known.push(attempt("known@example.org").await);
                unknown.push(attempt(&nobody).await);
            } else {
                unknown.push(attempt(&nobody).await);
                known.push(attempt("known@example.org").await);
            }
        }
        let (k, u) = (median(&mut known), median(&mut unknown));
        let ratio = k.max(u) / k.min(u);
        println!(
            "sign-in timing after {} samples each: known email, wrong password {k:.1} ms; \
             unknown email {u:.1} ms (medians); ratio {ratio:.3}",
            known.len()
        );
        rounds.push(format!(
            "{} samples: {k:.1} ms vs {u:.1} ms (ratio {ratio:.2})",
            known.len()
        ));
        if ratio <= TOLERANCE {
            probe.assert_clean();
            return;
        }
    }
    panic!(
        "sign-in for a known email with a wrong password and for an unknown email \
         differ by more than {:.0}%: {}",
        (TOLERANCE - 1.0) * 100.0,
        rounds.join("; ")
    );
}
