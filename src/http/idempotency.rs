//! The `Idempotency-Key` middleware (API.md "Safe retries"): a retry of a
//! state-changing POST gets the first request's answer instead of running
//! again. See `app::idempotency` for the claim and docs/idempotency.md for
//! the rules.

use super::error::ApiError;
use super::extract::{authenticate, bearer, read_body, BODY_LIMIT};
use super::middleware::{FinalBody, RequestId};
use crate::app::idempotency::{Claim, Earlier};
use crate::app::{App, AppError, Caller};
use crate::auth::seal::ResponseSeal;
use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The response header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// POSTs that change nothing: the header is accepted and ignored.
const READ_ONLY: [&str; 2] = ["/v1/introspect", "/v1/keys/verify"];

/// What is sealed of a response.
#[derive(Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Checks a header value: 1 to 255 printable ASCII characters.
pub fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let bytes = value.as_bytes();
    if (1..=255).contains(&bytes.len()) && bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        Ok(String::from_utf8_lossy(bytes).into_owned())
    } else {
        Err(ApiError::validation(
            "Idempotency-Key",
            "Idempotency-Key: 1 to 255 printable ASCII characters",
        ))
    }
}

/// Routes whose caller proves itself in the body, with the fields that carry
/// the credential: an anonymous caller's scope is a digest of them.
const CREDENTIAL_FIELDS: [(&str, &[&str]); 3] = [
    ("/v1/sessions", &["email", "password"]),
    ("/v1/sessions/refresh", &["refresh_token"]),
    ("/v1/users", &["email", "password"]),
];

/// Routes whose answer hands out a session's tokens.
const SESSION_ROUTES: [&str; 4] = [
    "/v1/sessions",
    "/v1/sessions/refresh",
    "/v1/sessions/mfa",
    "/v1/sessions/passkey",
];

/// Whose key it is (the scope), and the caller's stable secret that also
/// seals the response. An API key is its own secret; a user's access tokens
/// change, so users have none. A caller without a credential header is known
/// only by what it presents in the body: its scope is a keyed digest of that
/// credential (the email and password of a sign-in or sign-up, the refresh
/// token of a refresh; the whole body elsewhere), so two anonymous clients
/// that pick the same key never meet. `None` when the credential header is
/// not valid: the handler answers that.
async fn caller_of(
    app: &App,
    seal: &ResponseSeal,
    req: &HttpRequest,
    body: &[u8],
) -> Option<(String, Vec<u8>)> {
    match bearer(req) {
        None => {
            let credential = body_credential(req.path(), body);
            let digest = seal.credential_digest(&[req.path().as_bytes(), &credential]);
            let scope = format!("anonymous:{}", crate::auth::api_key::hex(&digest[..16]));
            Some((scope, credential))
        }
        Some(Err(_)) => None,
        Some(Ok(token)) => match authenticate(app, &token).await.ok()? {
            Caller::ApiKey { key_id, .. } => Some((format!("key:{key_id}"), token.into_bytes())),
            Caller::User { user_id, .. } => Some((format!("user:{user_id}"), Vec::new())),
            Caller::System | Caller::Anonymous | Caller::TokenHolder { .. } => None,
        },
    }
}

/// The credential an anonymous request presents in its body, as bytes: its
/// credential fields (length-prefixed, an email normalised) where the route
/// has them and the body holds them, else the whole body.
fn body_credential(path: &str, body: &[u8]) -> Vec<u8> {
    let fields = CREDENTIAL_FIELDS
        .iter()
        .find(|(route, _)| *route == path)
        .map(|(_, fields)| *fields);
    let value = serde_json::from_slice::<serde_json::Value>(body).ok();
    let (Some(fields), Some(value)) = (fields, value) else {
        return body.to_vec();
    };
    let mut out = Vec::new();
    for field in fields {
        let Some(text) = value.get(field).and_then(|v| v.as_str()) else {
            return body.to_vec();
        };
        let text = match *field {
            "email" => crate::domain::values::Email::parse(text)
                .map_or_else(|_| text.to_owned(), |e| e.as_str().to_owned()),
            _ => text.to_owned(),
        };
        out.extend_from_slice(&(text.len() as u64).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

fn declared_too_large(req: &ServiceRequest) -> bool {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > BODY_LIMIT)
}

/// Runs a state-changing POST at most once per caller and `Idempotency-Key`.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let value = match req.method() == Method::POST && !READ_ONLY.contains(&req.path()) {
        true => req.headers().get(HEADER).cloned(),
        false => None,
    };
    let Some(value) = value else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let services = (
        req.app_data::<web::Data<App>>().cloned(),
        req.app_data::<web::Data<ResponseSeal>>().cloned(),
    );
    let (Some(app), Some(seal)) = services else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match parse_key(&value) {
        Ok(key) => key,
        Err(e) => return Ok(req.error_response(e)),
    };
    if declared_too_large(&req) {
        // The handler refuses it (413) without running anything.
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let payload = req.take_payload();
    let body = match read_body(req.request(), payload).await {
        Ok(body) => body.freeze(),
        Err(e) => return Ok(req.error_response(e)),
    };
    req.set_payload(Payload::from(body.clone()));
    let Some((scope, secret)) = caller_of(&app, &seal, req.request(), &body).await else {
        // The handler refuses it (401) without running anything.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let fingerprint = seal.fingerprint(&[
        scope.as_bytes(),
        key.as_bytes(),
        b"POST",
        target.as_bytes(),
        &body,
    ]);
    let binding: [&[u8]; 5] = [
        scope.as_bytes(),
        key.as_bytes(),
        target.as_bytes(),
        &body,
        &secret,
    ];
    let claim = Arc::new(Claim::new(scope.clone(), key.clone(), fingerprint));
    match app.find_earlier(&claim).await {
        Ok(Earlier::Nothing) => {}
        Ok(earlier) => match is_stale(&app, req.path(), &earlier, &seal, &binding).await {
            Ok(false) => {
                let (http_req, _) = req.into_parts();
                return Ok(answer(http_req, earlier, &seal, &binding));
            }
            // The refresh token presented was used, and what it was traded
            // for is no longer current: the request runs as a reuse, which
            // ends the session (no claim: nothing of it is kept).
            Ok(true) if req.path() == "/v1/sessions/refresh" => {
                return Ok(next.call(req).await?.map_into_boxed_body());
            }
            Ok(true) => return Ok(req.error_response(ApiError::IdempotencyLost)),
            Err(e) => return Ok(req.error_response(ApiError::from(e))),
        },
        Err(e) => return Ok(req.error_response(ApiError::from(e))),
    }
    let Some(_running) = app.in_flight().enter(&scope, &key) else {
        return Ok(req.error_response(ApiError::IdempotencyPending));
    };
    req.extensions_mut().insert(claim.clone());
    let res = next.call(req).await?.map_into_boxed_body();
    if lost_race(&res) {
        // Another process committed this key first; its answer follows it.
        let earlier = app.find_earlier(&claim).await.unwrap_or(Earlier::Pending);
        let (http_req, _) = res.into_parts();
        return Ok(answer(http_req, earlier, &seal, &binding));
    }
    keep(res, &app, &claim, &seal, &binding).await
}

/// Whether an earlier answer that handed out a session's tokens no longer
/// holds them live: the session ended, or its refresh token was rotated
/// since. Such an answer is never handed out again.
async fn is_stale(
    app: &App,
    path: &str,
    earlier: &Earlier,
    seal: &ResponseSeal,
    binding: &[&[u8]],
) -> Result<bool, AppError> {
    let Earlier::Answered { sealed, .. } = earlier else {
        return Ok(false);
    };
    if !SESSION_ROUTES.contains(&path) {
        return Ok(false);
    }
    let stored = seal
        .open(binding, sealed)
        .and_then(|plain| serde_json::from_slice::<StoredResponse>(&plain).ok());
    let token = stored
        .filter(|s| StatusCode::from_u16(s.status).is_ok_and(|s| s.is_success()))
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s.body).ok())
        .and_then(|body| body.get("refresh_token")?.as_str().map(str::to_owned));
    match token {
        Some(token) => Ok(!app.is_refresh_token_current(&token).await?),
        // A refusal holds no tokens; a response that cannot be opened is
        // answered as lost.
        None => Ok(false),
    }
}

fn lost_race(res: &ServiceResponse<BoxBody>) -> bool {
    res.response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .is_some_and(|e| matches!(e, ApiError::App(AppError::IdempotencyRace)))
}

/// Stores the response when a retry must see it again: every success, and a
/// refusal whose request committed something (a recorded failed sign-in).
/// A server error is not kept: a retry of a request that committed nothing
/// runs again, one that committed is answered 409.
async fn keep(
    res: ServiceResponse<BoxBody>,
    app: &App,
    claim: &Claim,
    seal: &ResponseSeal,
    binding: &[&[u8]],
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let status = res.status();
    if !(status.is_success() || (claim.is_committed() && status.is_client_error())) {
        return Ok(res);
    }
    let (http_req, http_res) = res.into_parts();
    let (head, body) = http_res.into_parts();
    let bytes = to_bytes(body)
        .await
        .map_err(|e| ApiError::App(AppError::Internal(e.to_string().into())))?;
    let stored = StoredResponse {
        status: status.as_u16(),
        headers: head
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    match serde_json::to_vec(&stored) {
        Ok(plain) => {
            let sealed = seal.seal(binding, &plain);
            if let Err(e) = app.save_response(claim, status.as_u16(), &sealed).await {
                tracing::warn!(error = %e, "the response of an idempotent request was not kept");
            }
        }
        Err(e) => tracing::warn!(error = %e, "the response of an idempotent request was not kept"),
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(BoxBody::new(bytes)),
    ))
}

/// The answer to a request whose key an earlier request holds.
fn answer(
    req: HttpRequest,
    earlier: Earlier,
    seal: &ResponseSeal,
    binding: &[&[u8]],
) -> ServiceResponse<BoxBody> {
    let error = match earlier {
        Earlier::Answered { sealed, .. } => match seal
            .open(binding, &sealed)
            .and_then(|plain| serde_json::from_slice::<StoredResponse>(&plain).ok())
            .and_then(|stored| replay(&req, stored))
        {
            Some(res) => return ServiceResponse::new(req, res),
            None => ApiError::IdempotencyLost,
        },
        Earlier::OtherRequest => ApiError::IdempotencyKeyReused,
        Earlier::Lost => ApiError::IdempotencyLost,
        Earlier::Pending | Earlier::Nothing => ApiError::IdempotencyPending,
    };
    ServiceResponse::from_err(error, req)
}

/// The stored response again; an error body gets this request's id.
fn replay(req: &HttpRequest, stored: StoredResponse) -> Option<HttpResponse> {
    let status = StatusCode::from_u16(stored.status).ok()?;
    let mut body = stored.body;
    if status.is_client_error() {
        let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
        if let (Ok(mut value), Some(id)) =
            (serde_json::from_str::<serde_json::Value>(&body), request_id)
        {
            value["request_id"] = serde_json::Value::String(id);
            body = value.to_string();
        }
    }
    let mut res = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            if n != CONTENT_LENGTH {
                res.append_header((n, v));
            }
        }
    }
    res.insert_header((REPLAYED, "true"));
    let mut res = res.body(body);
    res.extensions_mut().insert(FinalBody);
    Some(res)
}
