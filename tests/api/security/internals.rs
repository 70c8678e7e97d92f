//! No internals in responses: every documented operation of /openapi.json, fed
//! bad input (broken JSON, wrong types, huge bodies, bad ids, bad query values
//! and cursors, wrong methods, bad credentials), answers without a trace of the
//! implementation, and never with a server error.

use super::{operations, Body, Probe, Req};
use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Path ids that are not ids of anything.
const BAD_IDS: &[&str] = &[
    "not-a-uuid",
    "0",
    "-1",
    "00000000-0000-0000-0000-000000000000",
    "0192f0c1-0000-7000-8000-00000000000g",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%00",
    "%FF%FE",
    "%C3%A9",
    "%7B%7D",
    "1%20OR%201=1",
];

/// Bodies that are not JSON.
const BROKEN_JSON: &[&[u8]] = &[
    b"",
    b"{",
    b"{\"a\":",
    b"nul",
    b"{'a': 1}",
    b"{\"a\": 1}}",
    b"{\"a\": 1} trailing",
    b"\xff\xfe\x00{",
    b"{\"a\": NaN}",
    b"{\"a\": \"\\ud800\"}",
    b"{\"a\": 1e999999}",
];

/// Query values that are not what any parameter takes.
const BAD_QUERY: &[&str] = &[
    "",
    "!!!",
    "-1",
    "0",
    "1e3",
    "99999999999999999999",
    "null",
    "%00",
    "%FF",
    "%5B%5D",
    "true",
];

/// Authorization headers that are not credentials.
fn bad_credentials() -> Vec<String> {
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    vec![
        "Bearer".into(),
        "Bearer ".into(),
        "Basic Zm9vOmJhcg==".into(),
        "Bearer vk_".into(),
        format!("Bearer vk_{}", "A".repeat(49)),
        format!("Bearer vk_{}é", "A".repeat(47)),
        format!(
            "Bearer {}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"sub":"x"}"#)
        ),
        format!(
            "Bearer {}.{}.c2ln",
            b64(r#"{"alg":"HS256","kid":"x"}"#),
            b64("{}")
        ),
        "Bearer a.b.c".into(),
        format!("Bearer {}", "x".repeat(8000)),
        format!("Bearer vrt_{}_{}", "0".repeat(32), "A".repeat(43)),
    ]
}

/// Token strings for the bodies of refresh, introspect and verify: badly
/// shaped, some with multi-byte characters where a parser might cut.
fn bad_tokens() -> Vec<String> {
    vec![
        String::new(),
        "vrt_".into(),
        "vk_".into(),
        // 80 bytes, as a refresh token is, with byte 36 inside a character.
        format!("vrt_{}é{}", "a".repeat(31), "b".repeat(43)),
        format!("vrt_{}_{}é", "0".repeat(32), "c".repeat(41)),
        format!("vk_{}é{}", "A".repeat(42), "B".repeat(5)),
        format!("vk_{}\u{0}", "A".repeat(48)),
        "eyJ.eyJ.".into(),
        "é.é.é".into(),
        "x".repeat(60_000),
    ]
}

/// A value of the wrong type for a property of this schema.
fn wrong_type(schema: &Value) -> Value {
    if schema.to_string().contains("\"string\"") {
        json!(12345)
    } else {
        json!("text")
    }
}

/// The JSON schema of an operation's body, with `$ref`s of components resolved.
fn body_schema<'a>(doc: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let schema = op.pointer("/requestBody/content/application~1json/schema")?;
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')),
        None => Some(schema),
    }
}

/// Bodies of the right syntax and the wrong shape.
fn wrong_shapes(doc: &Value, op: &Value) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Value> = vec![json!([]), json!("s"), json!(1), json!(true), json!(null)];
    bodies.push(json!({"unknown_field": {"deep": [1, 2]}}));
    if let Some(props) = body_schema(doc, op).and_then(|s| s["properties"].as_object()) {
        for (name, schema) in props {
            bodies.push(json!({ name: wrong_type(schema) }));
            bodies.push(json!({ name: "x".repeat(10_000) }));
        }
    }
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let mut raw: Vec<Vec<u8>> = bodies.iter().map(|b| b.to_string().into_bytes()).collect();
    raw.push(deep.into_bytes());
    raw
}

/// Fills a template with real ids of this test's objects.
fn real_path(template: &str, real: &BTreeMap<&str, String>) -> String {
    let mut path = template.to_owned();
    for (param, value) in real {
        path = path.replace(&format!("{{{param}}}"), value);
    }
    path
}

#[actix_web::test]
async fn bad_input_never_reveals_internals() {
    let app = spawn_app().await;
    let probe = Probe::new(&app);
    let admin = app.admin_key.clone();
    let (user, token, _) = app.user_session("sweep@example.org").await;
    let org = id(&app.create_org("sweep", Some(&user)).await);
    let (key_id, _) = app.create_key(&org, &["vouch:org:admin"]).await;
    let session = app.get("/v1/sessions", &token).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let real_for = |template: &str| {
        let id = if template.starts_with("/v1/sessions") {
            &session
        } else {
            &user
        };
        let real = BTreeMap::from([
            ("org_id", org.clone()),
            ("key_id", key_id.clone()),
            ("user_id", user.clone()),
            ("id", id.clone()),
        ]);
        real_path(template, &real)
    };
    let doc = probe.call("GET", "/openapi.json", None, None).await.body;
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "{} operations documented", ops.len());
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (method, template, _) in &ops {
        paths
            .entry(template.clone())
            .or_default()
            .push(method.clone());
    }

    for (method, template, op) in &ops {
        let path = real_for(template);
        // Bad ids, one parameter at a time.
        for param in template.split('/').filter(|s| s.starts_with('{')) {
            for bad in BAD_IDS {
                let p = real_for(&template.replace(param, bad));
                probe.send(&Req::new(method, p).auth(&admin)).await;
            }
        }
        // Bad query values and cursors, one parameter at a time, and an unknown one.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for param in params.iter().filter(|p| p["in"] == "query") {
            let name = param["name"].as_str().unwrap();
            let cursors = [
                URL_SAFE_NO_PAD.encode("p1:not-a-uuid"),
                URL_SAFE_NO_PAD.encode("e1:99999999999999999999999:1"),
            ];
            let values = BAD_QUERY.iter().map(|v| v.to_string()).chain(cursors);
            for value in values {
                let p = format!("{path}?{name}={value}");
                probe.send(&Req::new(method, p).auth(&admin)).await;
            }
            let twice = format!("{path}?{name}=1&{name}=2");
            probe.send(&Req::new(method, twice).auth(&admin)).await;
        }
        if params.iter().any(|p| p["in"] == "query") {
            let unknown = format!("{path}?unknown=1");
            probe.send(&Req::new(method, unknown).auth(&admin)).await;
        }
        // Bad credentials on every operation.
        for credential in bad_credentials() {
            let mut req = Req::new(method, path.clone());
            req.auth = Some(credential);
            probe.send(&req).await;
        }
        // Bodies: broken, of the wrong shape or type, too big, or not declared as JSON.
        if op.get("requestBody").is_some() {
            let mut bodies: Vec<(&str, Body)> = Vec::new();
            for raw in BROKEN_JSON
                .iter()
                .map(|b| b.to_vec())
                .chain(wrong_shapes(&doc, op))
            {
                bodies.push(("application/json", Body::Bytes(raw)));
            }
            let huge = |n: usize| json!({"name": "x".repeat(n)}).to_string().into_bytes();
            bodies.push(("application/json", Body::Bytes(huge(64 * 1024))));
            bodies.push(("application/json", Body::Bytes(huge(1024 * 1024))));
            bodies.push(("application/json", Body::Chunked(huge(200 * 1024))));
            for ct in [
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/json; charset=latin1",
                "application/jsonx",
            ] {
                bodies.push((ct, Body::Bytes(b"{}".to_vec())));
            }
            for (ct, body) in bodies {
                let mut req = Req::new(method, path.clone()).auth(&admin);
                req.content_type = Some(ct.into());
                req.body = body;
                probe.send(&req).await;
            }
        }
    }
    // Methods no operation of a path has.
    for (template, methods) in &paths {
        for method in [
            "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO",
        ] {
            if !methods.iter().any(|m| m == method) {
                probe
                    .send(&Req::new(method, real_for(template)).auth(&admin))
                    .await;
            }
        }
    }
    // Token strings in the bodies that carry tokens.
    for token in bad_tokens() {
        for (path, body) in [
            ("/v1/sessions/refresh", json!({"refresh_token": token})),
            ("/v1/introspect", json!({"token": token})),
            ("/v1/keys/verify", json!({"key": token})),
            ("/v1/sessions", json!({"email": token, "password": token})),
        ] {
            probe
                .send(&Req::new("POST", path).auth(&admin).json(&body))
                .await;
            probe.send(&Req::new("POST", path).json(&body)).await;
        }
    }
    // Paths and headers beyond what anyone sends.
    probe
        .send(&Req::new("GET", format!("/v1/orgs/{}", "a".repeat(20_000))).auth(&admin))
        .await;
    probe
        .send(&Req::new("GET", "/v1/%2e%2e/%2e%2e/etc/passwd"))
        .await;
    probe.send(&Req::new("GET", "/nowhere")).await;

    let inspector = probe.inspector.borrow();
    let server_errors: Vec<&u16> = inspector.statuses.keys().filter(|s| **s >= 500).collect();
    println!(
        "internals sweep: {} operations, {} requests, statuses {:?}",
        ops.len(),
        inspector.requests,
        inspector.statuses
    );
    inspector.assert_clean();
    assert!(
        server_errors.is_empty(),
        "bad input got server errors: {:?}",
        inspector.statuses
    );
}
