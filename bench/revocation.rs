//! How long a revocation on one instance takes to reach another instance's
//! credential cache: issue a key on A, verify it on B until B has it cached,
//! revoke it on A, then verify on B until B refuses it.
//!
//! `cargo run --release --example revocation -- URL_A URL_B ADMIN_KEY [rounds]`
//!
//! Prints `RESULT rounds=.. p50_ms=.. p99_ms=.. max_ms=.. same_instance_stale=..`:
//! the time from A's revoke response to B's first refusal, and how many times
//! A itself still accepted the key right after answering the revoke (must be 0).

use serde_json::{json, Value};
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error>;

struct Instance {
    client: awc::Client,
    base: String,
    admin: String,
}

impl Instance {
    async fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        let mut response = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Authorization", format!("Bearer {}", self.admin)))
            .send_body(body.to_string())
            .await?;
        let bytes = response.body().await?;
        if !response.status().is_success() {
            return Err(format!("POST {path}: {}", response.status()).into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn is_valid(&self, key: &str) -> Result<bool, Failure> {
        let v = self.post("/v1/keys/verify", json!({ "key": key })).await?;
        Ok(v["valid"].as_bool() == Some(true))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

#[actix_rt::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: revocation URL_A URL_B ADMIN_KEY [rounds]".into());
    }
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200);
    let instance = |base: &str| Instance {
        client: awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish(),
        base: base.to_owned(),
        admin: args[3].clone(),
    };
    let (a, b) = (instance(&args[1]), instance(&args[2]));
    let slug = format!("revocation-{}", uuid::Uuid::new_v4().simple());
    let org = a
        .post(
            "/v1/orgs",
            json!({"name": "revocation", "slug": &slug[..30]}),
        )
        .await?;
    let org_id = org["id"].as_str().ok_or("org without id")?.to_owned();
    let mut delays = Vec::with_capacity(rounds);
    let mut stale_on_a = 0;
    for _ in 0..rounds {
        let issued = a
            .post(
                &format!("/v1/orgs/{org_id}/keys"),
                json!({"name": "revocation"}),
            )
            .await?;
        let (key, id) = (
            issued["key"].as_str().ok_or("no key")?.to_owned(),
            issued["id"].as_str().ok_or("no id")?.to_owned(),
        );
        // Twice on each: the second answer comes from the cache.
        for instance in [&a, &b, &a, &b] {
            if !instance.is_valid(&key).await? {
                return Err("a fresh key did not verify".into());
            }
        }
        a.post(&format!("/v1/orgs/{org_id}/keys/{id}/revoke"), json!({}))
            .await?;
        let revoked = Instant::now();
        if a.is_valid(&key).await? {
            stale_on_a += 1;
        }
        loop {
            if !b.is_valid(&key).await? {
                break;
            }
            if revoked.elapsed() > Duration::from_secs(10) {
                return Err("instance B still accepts a key revoked 10 s ago".into());
            }
        }
        delays.push(revoked.elapsed().as_secs_f64() * 1000.0);
    }
    delays.sort_by(f64::total_cmp);
    println!(
        "RESULT rounds={rounds} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} same_instance_stale={stale_on_a}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
