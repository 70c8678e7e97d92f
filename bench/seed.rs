//! Seeds a running vouch over its HTTP API for the benchmark suite, and writes
//! the credentials the load scripts replay into a work directory.
//!
//! `cargo run --release --example seed -- URL ADMIN_KEY WORKDIR [orgs] [keys] [users]`
//!
//! Files written (one item a line): `orgs` (org ids), `verify_keys` (plaintext
//! keys to verify), `revoke` (`org_id/key_id` of keys the revoke load may
//! consume), `users` (`email password`), `access` (access tokens), `refresh`
//! (refresh tokens, one chain each). They hold benchmark secrets: the suite
//! deletes the directory at the end.

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Requests in flight while seeding.
const CONCURRENCY: usize = 32;
/// Sign-ups in flight: hashing is bounded by the cores anyway.
const SIGNUP_CONCURRENCY: usize = 8;
/// Sessions opened for introspection and refresh chains.
const SESSIONS: usize = 256;
/// Keys kept for the verify load, at most (the rest, at least four fifths, may be revoked).
const VERIFY_KEYS: usize = 20_000;

struct Seeder {
    client: awc::Client,
    base: String,
    admin: String,
}

type Failure = Box<dyn std::error::Error>;

impl Seeder {
    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Result<Value, Failure> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"));
        if let Some(token) = bearer {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = request.send_body(body.to_string()).await?;
        let bytes = response.body().limit(1 << 20).await?;
        if !response.status().is_success() {
            return Err(format!(
                "POST {path}: {} {}",
                response.status(),
                String::from_utf8_lossy(&bytes)
            )
            .into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Failure> {
    v[name]
        .as_str()
        .ok_or_else(|| format!("response without {name}: {v}").into())
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> Result<(), Failure> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
    for line in lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[actix_rt::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: seed URL ADMIN_KEY WORKDIR [orgs] [keys] [users]".into());
    }
    let seeder = Seeder {
        client: awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish(),
        base: args[1].clone(),
        admin: args[2].clone(),
    };
    let dir = PathBuf::from(&args[3]);
    let (orgs, keys, users): (usize, usize, usize) = (
        arg(&args, 4, 1000),
        arg(&args, 5, 100_000),
        arg(&args, 6, 1000),
    );
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();

    let user_rows: Vec<(String, String, String)> = stream::iter(0..users)
        .map(|i| {
            let seeder = &seeder;
            async move {
                let (email, password) = (
                    format!("seed{i}@bench.example"),
                    format!("seed passphrase {i}"),
                );
                let user = seeder
                    .post(
                        "/v1/users",
                        None,
                        json!({"email": email, "password": password, "name": format!("Seed {i}")}),
                    )
                    .await?;
                Ok::<_, Failure>((field(&user, "id")?.to_owned(), email, password))
            }
        })
        .buffered(SIGNUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    eprintln!(
        "seed: {users} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let org_ids: Vec<String> = stream::iter(0..orgs)
        .map(|i| {
            let seeder = &seeder;
            let owner = user_rows[i % user_rows.len().max(1)].0.clone();
            async move {
                let org = seeder
                    .post(
                        "/v1/orgs",
                        Some(&seeder.admin),
                        json!({"name": format!("Bench org {i}"), "slug": format!("bench-org-{i}"), "owner_id": owner}),
                    )
                    .await?;
                Ok::<_, Failure>(field(&org, "id")?.to_owned())
            }
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    eprintln!(
        "seed: {orgs} orgs at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let key_started = Instant::now();
    let issued: Vec<(String, String, String)> = stream::iter(0..keys)
        .map(|i| {
            let seeder = &seeder;
            let org = org_ids[i % org_ids.len().max(1)].clone();
            async move {
                let key = seeder
                    .post(
                        &format!("/v1/orgs/{org}/keys"),
                        Some(&seeder.admin),
                        json!({"name": format!("seed key {i}"), "scopes": ["deploy", "read"]}),
                    )
                    .await?;
                Ok::<_, Failure>((
                    org,
                    field(&key, "id")?.to_owned(),
                    field(&key, "key")?.to_owned(),
                ))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let key_seconds = key_started.elapsed().as_secs_f64();
    eprintln!(
        "seed: {keys} keys in {key_seconds:.1} s ({:.0}/s over HTTP, {CONCURRENCY} in flight)",
        keys as f64 / key_seconds
    );

    let sessions: Vec<(String, String)> = stream::iter(user_rows.iter().cycle().take(SESSIONS))
        .map(|(_, email, password)| {
            let seeder = &seeder;
            async move {
                let s = seeder
                    .post(
                        "/v1/sessions",
                        None,
                        json!({"email": email, "password": password}),
                    )
                    .await?;
                Ok::<_, Failure>((
                    field(&s, "access_token")?.to_owned(),
                    field(&s, "refresh_token")?.to_owned(),
                ))
            }
        })
        .buffered(SIGNUP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    let (verify, revoke) =
        issued.split_at(VERIFY_KEYS.min(issued.len() / 5).max(1).min(issued.len()));
    write_lines(&dir, "orgs", &org_ids)?;
    write_lines(
        &dir,
        "verify_keys",
        &verify.iter().map(|k| k.2.clone()).collect::<Vec<_>>(),
    )?;
    write_lines(
        &dir,
        "revoke",
        &revoke
            .iter()
            .map(|k| format!("{}/{}", k.0, k.1))
            .collect::<Vec<_>>(),
    )?;
    write_lines(
        &dir,
        "users",
        &user_rows
            .iter()
            .map(|u| format!("{} {}", u.1, u.2))
            .collect::<Vec<_>>(),
    )?;
    write_lines(
        &dir,
        "access",
        &sessions.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
    )?;
    write_lines(
        &dir,
        "refresh",
        &sessions.iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
    )?;
    println!("seed_keys_per_second={:.0}", keys as f64 / key_seconds);
    eprintln!("seed: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
