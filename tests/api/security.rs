//! Security checks as tests: secrets stay out of the log, sign-in takes as long
//! for an unknown email, tenants and users cannot reach each other's data, and no
//! response reveals internals. Every response these tests get goes through one
//! [`Inspector`].

mod internals;
mod logs;
mod tenants;
mod timing;
mod users;

use crate::helpers::{assert_no_secrets, Response, TestApp};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A request as the security tests send it: anything a client could put on the wire.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub auth: Option<String>,
    pub content_type: Option<String>,
    pub body: Body,
}

#[derive(Clone, Debug)]
pub enum Body {
    None,
    Bytes(Vec<u8>),
    /// Sent with chunked transfer encoding, without a length up front.
    Chunked(Vec<u8>),
}

impl Req {
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            auth: None,
            content_type: None,
            body: Body::None,
        }
    }

    pub fn auth(mut self, credential: &str) -> Self {
        self.auth = Some(format!("Bearer {credential}"));
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }

    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.content_type = Some(content_type.into());
        self.body = Body::Bytes(body);
        self
    }
}

/// Looks at every response for internals and counts what it saw.
#[derive(Default)]
pub struct Inspector {
    pub requests: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub findings: Vec<String>,
}

/// Text that only a stack trace, a framework or a driver would put in a body.
const INTERNALS: &[&str] = &[
    "panicked",
    "backtrace",
    "src/",
    ".rs:",
    "tokio_postgres",
    "tokio-postgres",
    "deadpool",
    "actix",
    "sqlstate",
    "at line",
    "db error",
    "rust_backtrace",
    "serde",
    "utoipa",
];

/// Rust's and serde's own words, which only error bodies could echo: type
/// names of the implementation and the parsers' phrasing.
const INTERNAL_WORDS: &[&str] = &[
    "struct ",
    "enum ",
    "deserialize",
    " i32",
    " i64",
    " u32",
    " u64",
    " usize",
    " isize",
    " f64",
];

/// Headers that name a server, framework or version.
const REVEALING_HEADERS: &[&str] = &[
    "server",
    "x-powered-by",
    "via",
    "x-runtime",
    "x-version",
    "x-generator",
];

/// Whether `text` holds vouch's version as a whole token (not inside `10.1.0.5`).
pub fn has_version(text: &str) -> bool {
    let version = env!("CARGO_PKG_VERSION");
    text.match_indices(version).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + version.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
        !part(before) && !part(after)
    })
}

impl Inspector {
    /// Records a response; what it reveals becomes a finding.
    pub fn check(&mut self, what: &str, res: &Response) {
        assert_no_secrets(&res.text);
        self.requests += 1;
        *self.statuses.entry(res.status).or_default() += 1;
        let mut find = |why: String| self.findings.push(format!("{what}: {why}"));
        // Every error is API.md's body with the response's request id (a HEAD
        // answer has no body to carry it).
        let request_id = res.headers.get("x-request-id").map(|v| v.as_bytes());
        let head = what.starts_with("HEAD ");
        if request_id.is_none() {
            find(format!("{} without X-Request-Id", res.status));
        } else if res.status >= 400 && !head {
            let body_id = res.body["request_id"].as_str().map(str::as_bytes);
            if res.body["error"]["code"].as_str().is_none() || body_id != request_id {
                find(format!(
                    "{} without the error body: {}",
                    res.status, res.text
                ));
            }
        }
        for (name, value) in res.headers.iter() {
            let value = String::from_utf8_lossy(value.as_bytes()).to_lowercase();
            if REVEALING_HEADERS.contains(&name.as_str()) {
                find(format!("header {name}: {value}"));
            }
            if value.contains("actix") || value.contains("rust") || has_version(&value) {
                find(format!("header {name} names the implementation: {value}"));
            }
        }
        let lower = res.text.to_lowercase();
        for needle in INTERNALS {
            if let Some(at) = lower.find(needle) {
                find(format!(
                    "{} body holds {needle:?}: …{}…",
                    res.status,
                    excerpt(&res.text, at)
                ));
            }
        }
        if res.status >= 400 {
            for needle in INTERNAL_WORDS {
                if let Some(at) = lower.find(needle) {
                    find(format!(
                        "{} error names an internal ({needle:?}): …{}…",
                        res.status,
                        excerpt(&res.text, at)
                    ));
                }
            }
        }
        if has_version(&res.text) {
            find(format!(
                "{} body holds the version {}",
                res.status,
                env!("CARGO_PKG_VERSION")
            ));
        }
        if res.status >= 500 {
            let error = &res.body["error"];
            let generic = matches!(
                (error["code"].as_str(), error["message"].as_str()),
                (Some("internal"), Some("internal error"))
                    | (Some("unavailable"), Some("the database cannot be reached"))
            );
            if !generic || error.get("details").is_some() {
                find(format!(
                    "{} is not a generic error: {}",
                    res.status, res.text
                ));
            }
        }
    }

    /// Records that no response came back at all (the connection dropped).
    pub fn no_response(&mut self, what: &str, error: &str) {
        self.requests += 1;
        self.findings.push(format!("{what}: no response ({error})"));
    }

    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.findings.is_empty(),
            "{} of {} responses reveal internals:\n{}",
            self.findings.len(),
            self.requests,
            self.findings.join("\n")
        );
    }
}

/// Up to 40 characters around byte `at` of `text`.
fn excerpt(text: &str, at: usize) -> String {
    let start = (0..=at.saturating_sub(20))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    text[start..].chars().take(60).collect()
}

/// A client for one test: every response is inspected.
pub struct Probe<'a> {
    pub app: &'a TestApp,
    pub inspector: RefCell<Inspector>,
}

impl<'a> Probe<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            inspector: RefCell::default(),
        }
    }

    /// Sends anything; `None` (and a finding) if no response came back.
    pub async fn send(&self, req: &Req) -> Option<Response> {
        let what = format!("{} {}", req.method, req.path);
        match send(self.app, req).await {
            Ok(res) => {
                self.inspector.borrow_mut().check(&what, &res);
                Some(res)
            }
            Err(e) => {
                self.inspector.borrow_mut().no_response(&what, &e);
                None
            }
        }
    }

    /// Sends a request that must be answered.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = Req::new(method, path);
        if let Some(credential) = credential {
            req = req.auth(credential);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        self.send(&req)
            .await
            .unwrap_or_else(|| panic!("{method} {path}: no response"))
    }

    pub fn assert_clean(&self) {
        self.inspector.borrow().assert_clean();
    }
}

/// One request on the wire, without the test client's own checks.
pub async fn send(app: &TestApp, req: &Req) -> Result<Response, String> {
    let method = awc::http::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = app
        .client
        .request(method, format!("{}{}", app.address, req.path));
    if let Some(auth) = &req.auth {
        let value = awc::http::header::HeaderValue::from_bytes(auth.as_bytes())
            .map_err(|e| e.to_string())?;
        request = request.insert_header(("Authorization", value));
    }
    if let Some(ct) = &req.content_type {
        request = request.insert_header(("Content-Type", ct.as_str()));
    }
    let sent = match &req.body {
        Body::None => request.send().await,
        Body::Bytes(bytes) => request.send_body(bytes.clone()).await,
        Body::Chunked(bytes) => {
            let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = bytes
                .chunks(8 * 1024)
                .map(|c| Ok(actix_web::web::Bytes::copy_from_slice(c)))
                .collect();
            request
                .send_stream(futures_util::stream::iter(chunks))
                .await
        }
    };
    let mut res = sent.map_err(|e| e.to_string())?;
    let bytes = res
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Response {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

/// The first and last few characters of a secret, never the whole of it.
pub fn masked(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail} ({} chars)", chars.len())
}

/// The documented operations: `(METHOD, path template, operation)`.
pub fn operations(openapi: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in openapi["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}
