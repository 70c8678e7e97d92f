//! Secrets never reach the log: the credentials a whole sign-up, sign-in, key,
//! refresh and password-change flow handles are absent from every log line the
//! process wrote meanwhile, while each of its requests has its line.

use super::{masked, Probe};
use crate::helpers::*;
use crate::log_capture::LogCapture;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The shapes of vouch's secrets and password hashes, found anywhere in
/// `text`: `(kind, line, secret)`.
pub fn secret_shapes(text: &str) -> Vec<(&'static str, usize, String)> {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let run = |from: usize, ok: &dyn Fn(u8) -> bool| {
            bytes[from..].iter().take_while(|b| ok(**b)).count()
        };
        for (at, _) in line.match_indices("vk_") {
            if run(at + 3, &alnum) >= 49 {
                found.push(("API key", n + 1, line[at..at + 52].to_owned()));
            }
        }
        for (at, _) in line.match_indices("vrt_") {
            let hex = bytes[at + 4..]
                .iter()
                .take(32)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            let tail = at + 4 + 32;
            if hex == 32 && bytes.get(tail) == Some(&b'_') && run(tail + 1, &alnum) >= 43 {
                found.push(("refresh token", n + 1, line[at..tail + 44].to_owned()));
            }
        }
        for (at, _) in line.match_indices("$argon2") {
            let end = at + run(at + 1, &|b| b64url(b) || b"$=,+/".contains(&b)) + 1;
            found.push(("password hash", n + 1, line[at..end].to_owned()));
        }
        for (at, _) in line.match_indices("eyJ") {
            let first = run(at, &b64url);
            let dot = at + first;
            if bytes.get(dot) != Some(&b'.') {
                continue;
            }
            let second = run(dot + 1, &b64url);
            if second > 0 && bytes.get(dot + 1 + second) == Some(&b'.') {
                let end = dot + 2 + second + run(dot + 2 + second, &b64url);
                found.push(("access token", n + 1, line[at..end].to_owned()));
            }
        }
    }
    found
}

/// The 1-based line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|n| n + 1)
}

fn str_of(res: &Response, field: &str) -> String {
    res.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {}", res.text))
        .to_owned()
}

#[actix_web::test]
async fn the_log_has_every_request_and_no_secret() {
    let log = LogCapture::start();
    let app = spawn_app().await;
    let probe = Probe::new(&app);
    let first_password = "first log-test passphrase";
    let second_password = "second log-test passphrase";
    let wrong_password = "a wrong log-test guess";
    let mut secrets = vec![
        ("bootstrap admin key", app.admin_key.clone()),
        ("password", first_password.to_owned()),
        ("new password", second_password.to_owned()),
        ("wrong password", wrong_password.to_owned()),
    ];
    let mut responses = Vec::new();
    let admin = app.admin_key.clone();
    let sign_in = async |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        probe.call("POST", "/v1/sessions", None, Some(body)).await
    };

    let email = "log@example.org";
    let res = probe
        .call(
            "POST",
            "/v1/users",
            None,
            Some(json!({"email": email, "password": first_password})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let user_id = id(&res.body);
    responses.push(res);
    let res = sign_in(email, wrong_password).await;
    assert_error(&res, 401, "invalid_credentials");
    responses.push(res);
    let res = sign_in(email, first_password).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (access, refresh) = (str_of(&res, "access_token"), str_of(&res, "refresh_token"));
    secrets.push(("access token", access.clone()));
    secrets.push(("refresh token", refresh.clone()));
    responses.push(res);

    let res = probe
        .call(
            "POST",
            "/v1/orgs",
            Some(&access),
            Some(json!({"name": "Logs", "slug": "logs"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let org = id(&res.body);
    responses.push(res);
    let keys = format!("/v1/orgs/{org}/keys");
    let issue = async |credential: &str, scopes: Value| {
        let res = probe
            .call(
                "POST",
                &keys,
                Some(credential),
                Some(json!({"name": "k", "scopes": scopes})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        (id(&res.body), str_of(&res, "key"), res)
    };
    let (admin_key_id, org_admin, res) = issue(&access, json!(["vouch:org:admin"])).await;
    responses.push(res);
    let (_, verifier, res) = issue(&admin, json!(["vouch:keys:verify"])).await;
    responses.push(res);
    let (_, app_key, res) = issue(&org_admin, json!(["deploy"])).await;
    responses.push(res);
    secrets.push(("org admin key", org_admin.clone()));
    secrets.push(("verifier key", verifier.clone()));
    secrets.push(("app key", app_key.clone()));

    // The credentials in use: as bearer and in bodies, valid and not.
    for (method, path, credential, body) in [
        ("GET", "/v1/me".to_owned(), &access, None),
        ("GET", "/v1/sessions".to_owned(), &access, None),
        ("GET", keys.clone(), &org_admin, None),
        (
            "POST",
            "/v1/keys/verify".to_owned(),
            &verifier,
            Some(json!({"key": app_key})),
        ),
        (
            "POST",
            "/v1/introspect".to_owned(),
            &org_admin,
            Some(json!({"token": access})),
        ),
        (
            "POST",
            "/v1/introspect".to_owned(),
            &org_admin,
            Some(json!({"token": app_key})),
        ),
        ("GET", format!("/v1/users/{user_id}"), &access, None),
    ] {
        let res = probe.call(method, &path, Some(credential), body).await;
        assert_eq!(res.status, 200, "{method} {path}: {}", res.text);
        responses.push(res);
    }

    // Refresh, then present the used refresh token again: the session ends.
    let res = probe
        .call(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    secrets.push(("refreshed access token", str_of(&res, "access_token")));
    secrets.push(("refreshed refresh token", str_of(&res, "refresh_token")));
    responses.push(res);
    let res = probe
        .call(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_error(&res, 401, "unauthenticated");
    responses.push(res);

    // A new session changes the password; the new one signs in.
    let res = sign_in(email, first_password).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let access = str_of(&res, "access_token");
    secrets.push(("second access token", access.clone()));
    secrets.push(("second refresh token", str_of(&res, "refresh_token")));
    responses.push(res);
    let password_path = format!("/v1/users/{user_id}/password");
    for (current, status) in [(wrong_password, 401), (first_password, 204)] {
        let body = json!({"current_password": current, "new_password": second_password});
        let res = probe
            .call("POST", &password_path, Some(&access), Some(body))
            .await;
        assert_eq!(res.status, status, "{}", res.text);
        responses.push(res);
    }
    let res = sign_in(email, second_password).await;
    assert_eq!(res.status, 201, "{}", res.text);
    secrets.push(("third access token", str_of(&res, "access_token")));
    secrets.push(("third refresh token", str_of(&res, "refresh_token")));
    responses.push(res);

    // Rotation hands out a new key; the revoked one is refused.
    let res = probe
        .call(
            "POST",
            &format!("{keys}/{admin_key_id}/rotate"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    secrets.push(("rotated key", str_of(&res, "key")));
    responses.push(res);
    let res = probe.call("GET", &keys, Some(&org_admin), None).await;
    assert_error(&res, 401, "unauthenticated");
    responses.push(res);
    let res = probe
        .call("DELETE", "/v1/sessions/current", Some(&access), None)
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    responses.push(res);
    probe.assert_clean();

    let text = log.text();
    for (what, secret) in &secrets {
        if let Some(line) = line_of(&text, secret) {
            panic!("the {what} ({}) is in log line {line}", masked(secret));
        }
    }
    let shapes = secret_shapes(&text);
    assert!(
        shapes.is_empty(),
        "secret-shaped strings in the log: {:?}",
        shapes
            .iter()
            .map(|(kind, line, s)| format!("{kind} {} at line {line}", masked(s)))
            .collect::<Vec<_>>()
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    for res in &responses {
        let request_id = res.headers.get("x-request-id").unwrap().to_str().unwrap();
        let logged = lines.iter().any(|l| {
            l["message"] == "request"
                && l["span"]["request_id"] == request_id
                && l["status"] == res.status
        });
        assert!(
            logged,
            "no log line for request {request_id} ({})",
            res.status
        );
    }
}

/// The scanner CI runs over a whole test run's log finds each kind of secret,
/// names its line and never prints it whole.
#[test]
fn the_log_scanner_finds_each_kind_of_secret() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scan_logs.sh");
    let dir = crate::scratch::TempPath::new("scan");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |name: &str, lines: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = Command::new(&script).arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let request = r#"{"level":"INFO","message":"request","status":200,"span":{"request_id":"r1"}}"#;
    let key = format!("vk_{}", "A1b2C3d4E5".repeat(5).get(..49).unwrap());
    let refresh = format!(
        "vrt_{}_{}",
        "0a".repeat(16),
        "Z9".repeat(22).get(..43).unwrap()
    );
    let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz".to_owned();
    let clean = run("clean.jsonl", &[request.to_owned()]);
    assert_eq!(clean.0, Some(0), "{}", clean.1);
    for (kind, secret) in [
        ("API key", key),
        ("refresh token", refresh),
        ("access token", jwt),
        ("test password", PASSWORD.to_owned()),
        (
            "password hash",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
        ),
    ] {
        let leak = format!(r#"{{"level":"DEBUG","message":"oops","value":"{secret}"}}"#);
        let (code, text) = run("leak.jsonl", &[request.to_owned(), leak]);
        assert_eq!(code, Some(1), "{kind}: {text}");
        assert!(
            text.contains(&format!("leak.jsonl:2: {kind}")),
            "{kind}: {text}"
        );
        assert!(!text.contains(&secret), "{kind} printed whole: {text}");
    }
    let (code, text) = run("silent.jsonl", &[r#"{"message":"started"}"#.to_owned()]);
    assert_eq!(
        code,
        Some(2),
        "a log without requests proves nothing: {text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
