//! Per-request plumbing: request ids, the error body, metrics and a log line.

use super::error::ApiError;
use super::metrics::Metrics;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use std::time::Instant;
use tracing::Instrument;

/// Marks an error-status response whose body is already the one API.md
/// gives (`/readyz` when the database is down, a replayed answer): it is not
/// rendered again as an error body.
#[derive(Debug, Clone, Copy)]
pub struct FinalBody;

/// The request id of the current request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client-sent id is kept when it is 1 to 128 characters of `[A-Za-z0-9._:-]`.
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    ok.then(|| s.to_owned())
}

/// Assigns the request id, renders every error with it, records metrics and logs.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string()
        });
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let span =
        tracing::info_span!("http", request_id = %request_id, method = %method, path = %req.path());
    let started = Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let mut res = with_error_body(res.map_into_boxed_body(), &request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    protect(res.headers_mut());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(m) = metrics {
        m.observe_request(&method, &route, status, elapsed);
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, micros = elapsed.as_micros() as u64, "request");
    });
    Ok(res)
}

/// Headers every response gets: no content sniffing, and no caching of
/// anything that does not say otherwise (tokens, new API keys, personal data;
/// the JWKS says `max-age`).
fn protect(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Gives every error response API.md's body with this request's id.
fn with_error_body(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    if !(res.status().is_client_error() || res.status().is_server_error())
        || res.response().extensions().get::<FinalBody>().is_some()
    {
        return res;
    }
    let rendered = match res.response().error() {
        Some(e) => match e.as_error::<ApiError>() {
            Some(api) => {
                api.log(request_id);
                api.render(request_id)
            }
            None => ApiError::Status(res.status()).render(request_id),
        },
        // Our own error bodies always come with an error; anything else gets one.
        None => ApiError::Status(res.status()).render(request_id),
    };
    res.into_response(rendered)
}
