//! `spawn_app`: a fresh database, migrated and bootstrapped, and a server on port 0.

use crate::scratch::TempDatabase;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use vouch::app::Bootstrap;
use vouch::config::Settings;
use vouch::startup::Application;

pub const PG: &str = "postgres://postgres@127.0.0.1:5432";

pub struct TestApp {
    /// Dropped with the last service on it.
    pub database: Arc<TempDatabase>,
    pub app: vouch::app::App,
    /// The management listener (`VOUCH_METRICS_BIND`), if it has one.
    pub management: Option<String>,
    pub relay: std::sync::Arc<vouch::bus::relay::RelayStatus>,
    pub stop: vouch::startup::StopHandle,
    pub address: String,
    pub database_url: String,
    pub admin_key: String,
    pub client: awc::Client,
}

pub struct Response {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// A database of its own for one test, dropped when the test ends.
pub fn fresh_database() -> Arc<TempDatabase> {
    // Every test starts here or in `spawn_instance`: the log is on from the first.
    crate::log_capture::install();
    Arc::new(TempDatabase::new())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(fresh_database(), adjust).await
}

/// A service started on `database`, which it bootstraps.
pub async fn spawn_app_on(
    database: Arc<TempDatabase>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let database_url = database.url.clone();
    let mut settings = Settings::for_database(&database_url);
    adjust(&mut settings);
    let application = Application::build(settings).await.expect("service starts");
    let Bootstrap::Created(issued) = application.bootstrap() else {
        panic!("a fresh database is bootstrapped");
    };
    let admin_key = issued.key.expose().to_owned();
    let address = format!("http://127.0.0.1:{}", application.port());
    let management = application
        .management_port()
        .map(|p| format!("http://127.0.0.1:{p}"));
    let app = application.app().clone();
    let (relay, stop) = (application.relay_status(), application.stop_handle());
    actix_web::rt::spawn(application.run_until_stopped());
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    TestApp {
        database,
        app,
        management,
        relay,
        stop,
        address,
        database_url,
        admin_key,
        client,
    }
}

/// Secrets must never leave the service except the one plaintext key of a create.
pub fn assert_no_secrets(text: &str) {
    assert!(!text.contains("$argon2"), "a password hash leaked: {text}");
    for field in ["password_hash", "key_hash", "refresh_token_hash"] {
        let needle = format!("\"{field}\":\"");
        for (at, _) in text.match_indices(&needle) {
            let rest = &text[at + needle.len()..];
            // Redacted (API) or a commitment (audit exports): never the stored value.
            assert!(
                rest.starts_with("[redacted]") || rest.starts_with("sha256:"),
                "{field} leaked: {text}"
            );
        }
    }
}

/// Another instance on the same database.
pub async fn spawn_instance(of: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    crate::log_capture::install();
    let mut settings = Settings::for_database(&of.database_url);
    adjust(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("second instance starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    let management = application
        .management_port()
        .map(|p| format!("http://127.0.0.1:{p}"));
    let app = application.app().clone();
    let (relay, stop) = (application.relay_status(), application.stop_handle());
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        database: of.database.clone(),
        app,
        management,
        relay,
        stop,
        address,
        database_url: of.database_url.clone(),
        admin_key: of.admin_key.clone(),
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
    }
}

pub const PASSWORD: &str = "a long enough passphrase";

impl TestApp {
    /// Signs in; returns the 201 body (tokens, session, user).
    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.request(
            "POST",
            "/v1/sessions",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Trades a refresh token (a JSON value, as an answer holds it) for new tokens.
    pub async fn refresh(&self, token: &Value) -> Response {
        self.request(
            "POST",
            "/v1/sessions/refresh",
            None,
            Some(json!({ "refresh_token": token })),
        )
        .await
    }

    /// Signs a new user up and in; returns (user id, access token, refresh token).
    pub async fn user_session(&self, email: &str) -> (String, String, String) {
        let user = self.create_user(email).await;
        let res = self.sign_in(email, PASSWORD).await;
        assert_eq!(res.status, 201, "{}", res.text);
        (
            id(&user),
            res.body["access_token"].as_str().unwrap().to_owned(),
            res.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        let mut res = match body {
            Some(body) => req.send_json(&body).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        let bytes = res.body().limit(64 * 1024 * 1024).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_no_secrets(&text);
        Response {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        if let Some(ct) = content_type {
            req = req.insert_header(("Content-Type", ct));
        }
        let mut res = req.send_body(body).await.unwrap();
        let bytes = res.body().limit(64 * 1024 * 1024).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        Response {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request("GET", path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Response {
        self.request("POST", path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Response {
        self.request("PATCH", path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.request("DELETE", path, Some(key), None).await
    }

    pub async fn create_user(&self, email: &str) -> Value {
        let res = self
            .request(
                "POST",
                "/v1/users",
                None,
                Some(json!({"email": email, "password": "a long enough passphrase"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    pub async fn create_org(&self, slug: &str, owner_id: Option<&str>) -> Value {
        let res = self
            .post(
                "/v1/orgs",
                &self.admin_key,
                json!({"name": slug, "slug": slug, "owner_id": owner_id}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    /// Issues a key in `org_id` with `scopes` (as admin); returns (id, plaintext).
    pub async fn create_key(&self, org_id: &str, scopes: &[&str]) -> (String, String) {
        let res = self
            .post(
                &format!("/v1/orgs/{org_id}/keys"),
                &self.admin_key,
                json!({"name": "test key", "scopes": scopes}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        (id(&res.body), res.body["key"].as_str().unwrap().to_owned())
    }

    /// Whether `POST /v1/keys/verify` calls `key` valid.
    pub async fn is_valid(&self, key: &str) -> bool {
        let res = self
            .post("/v1/keys/verify", &self.admin_key, json!({ "key": key }))
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body["valid"] == json!(true)
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        actix_web::rt::spawn(conn);
        client
    }

    pub async fn count_events(&self, event_type: &str) -> i64 {
        self.db()
            .await
            .query_one(
                "SELECT count(*) FROM auth_events WHERE event_type = $1",
                &[&event_type],
            )
            .await
            .unwrap()
            .get(0)
    }
}

impl TestApp {
    /// Polls until at least `n` events of a type are recorded (some are
    /// recorded after the answer); returns the count.
    /// Sessions revoked with `reason` (`session.revoked` events).
    pub async fn count_revocations(&self, reason: &str) -> i64 {
        self.db()
            .await
            .query_one(
                "SELECT count(*) FROM auth_events WHERE event_type = 'session.revoked' \
                 AND data->>'reason' = $1",
                &[&reason],
            )
            .await
            .unwrap()
            .get(0)
    }

    pub async fn count_events_eventually(&self, event_type: &str, n: i64) -> i64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = self.count_events(event_type).await;
            if count >= n || std::time::Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls a log page until it holds at least `n` items: the commit-safe feed
    /// shows an event once every transaction older than it has ended, which
    /// other tests' transactions on the same server can delay briefly.
    pub async fn events_eventually(&self, path: &str, key: &str, n: usize) -> Response {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let res = self.get(path, key).await;
            let len = res.body["items"].as_array().map_or(0, Vec::len);
            if res.status != 200 || len >= n || std::time::Instant::now() > deadline {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("object has an id").to_owned()
}

#[track_caller]
pub fn assert_error(res: &Response, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(res.body["error"]["code"], code, "{}", res.text);
    let header = res.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(res.body["request_id"], header);
}

impl TestApp {
    /// `vouch replay` on this app's database, with its personal-data key file.
    pub async fn replay(
        &self,
        mode: vouch::app::replay::Mode,
    ) -> Result<vouch::app::replay::Report, vouch::app::replay::ReplayError> {
        let key_file = pii_key_file(&self.database_url);
        vouch::app::replay::replay(&self.database_url, &key_file, mode, &crate::replay::Quiet).await
    }
}

impl TestApp {
    /// Every personal field a person's request put in the log is sealed: the
    /// payload's personal fields, and the caller's address and agent of every
    /// event a person (not an org's key or the system) caused.
    pub async fn assert_personal_fields_sealed(&self) {
        let rows = self
            .db()
            .await
            .query(
                "SELECT event_type, data, metadata FROM auth_events ORDER BY position",
                &[],
            )
            .await
            .unwrap();
        let sealed = |v: Option<&Value>| {
            v.is_none_or(|v| v.is_null() || v.as_str().is_some_and(|s| s.starts_with("pii:v1:")))
        };
        for row in rows {
            let (event_type, data, metadata): (String, Value, Value) =
                (row.get(0), row.get(1), row.get(2));
            for field in vouch::pii::fields::personal_fields(&event_type) {
                assert!(
                    sealed(data.get(*field)),
                    "{event_type}.{field} in the clear: {data}"
                );
            }
            let person = matches!(
                metadata["actor"]["type"].as_str(),
                Some("anonymous" | "user" | "token_holder")
            );
            if person {
                for field in ["ip", "user_agent"] {
                    assert!(
                        sealed(metadata.get(field)),
                        "{event_type}: the caller's {field} in the clear: {metadata}"
                    );
                }
            }
        }
    }
}

/// The personal-data key file of the deployment on `database_url` (as
/// `Settings::for_database` names it): what replay opens sealed fields with.
pub fn pii_key_file(database_url: &str) -> std::path::PathBuf {
    Settings::for_database(database_url).pii_key_file
}

/// The keyring of `app`'s deployment, from its key file.
pub fn keyring(app: &TestApp) -> vouch::pii::keyring::Keyring {
    let path = pii_key_file(&app.database_url);
    let secret = vouch::auth::key_file::read(&path, "pii").unwrap().unwrap();
    vouch::pii::keyring::Keyring::new(vouch::pii::Kek::from_secret(&secret))
}
