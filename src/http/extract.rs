//! Extractors: JSON bodies with API.md's errors, and the authenticated caller.

use super::error::ApiError;
use super::middleware::RequestId;
use crate::app::{App, AppError, Caller, Ctx};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Largest accepted body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body: 415 without a JSON content type, 413 over 64 KiB, 400 for
/// broken JSON, 422 for a missing, unknown or wrongly typed field.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// Like [`Json`], but an empty body means `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        (m.type_() == "application" && m.subtype() == "json")
            || m.suffix().is_some_and(|s| s == "json")
    })
}

pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a request body as `T`, with API.md's errors: 400 for a body that is
/// not JSON (checked first, whatever its fields), 422 naming the offending field
/// (its path, such as `scopes[1]`) otherwise.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    let syntax = |e: &serde_json::Error| {
        ApiError::InvalidJson(format!(
            "body is not valid JSON: {} (line {}, column {})",
            plain_message(e),
            e.line(),
            e.column()
        ))
    };
    // Syntax first, over the whole body: a body that is not JSON is 400 even
    // where its fields, read as far as they go, would already be wrong.
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| syntax(&e))?;
    // Every body of the API is an object: serde would also read a struct from
    // an array of its fields in order (`[null, null]`), which no client means.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::Validation {
            field: None,
            message: "invalid type: array, expected an object".into(),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => syntax(&inner),
            Category::Data => {
                let message = plain_message(&inner);
                ApiError::Validation {
                    // The body as a whole (not an object, say) names no field.
                    field: Some(field_of(&path, &message)).filter(|f| !f.is_empty()),
                    message,
                }
            }
        }
    })?;
    de.end().map_err(|e| syntax(&e))?;
    Ok(value)
}

/// serde's message in the API's words: without serde's position suffix, and
/// with what was expected named as JSON names it, not as the Rust type behind
/// it (`struct CreateUser`, `i64`).
fn plain_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    let Some(at) = message.rfind("expected ") else {
        return message.to_owned();
    };
    let (head, expected) = message.split_at(at + "expected ".len());
    let plain = match expected.split_whitespace().next() {
        Some("struct") => "an object",
        Some(
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
            | "usize",
        ) => "an integer",
        Some("f32" | "f64") => "a number",
        _ => return message.to_owned(),
    };
    format!("{head}{plain}")
}

/// The field a data error is about: its path, and for a missing field
/// (reported at the enclosing object) the field's own name under it.
fn field_of(path: &str, message: &str) -> String {
    let named = message
        .starts_with("missing field")
        .then(|| message.split('`').nth(1))
        .flatten();
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (_, Some(name)) => format!("{path}.{name}"),
        (".", None) => String::new(),
        (_, None) => path.to_owned(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read_body(&req, payload).await?;
            parse_json(&body).map(Json)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, payload).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_json(&body).map(OptionalJson)
        })
    }
}

/// An authenticated caller, as the request's context. 401 otherwise.
#[derive(Debug)]
pub struct Auth(pub Ctx);

/// The request's context whether or not it carries a credential; a credential
/// that is present must be valid.
#[derive(Debug)]
pub struct MaybeAuth(pub Ctx);

fn base_ctx(req: &HttpRequest) -> Ctx {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect::<String>())
        // The mark of an erased field is no agent: recorded, it would read as erased.
        .filter(|s| s != crate::domain::personal::ERASED);
    Ctx {
        caller: Caller::Anonymous,
        request_id,
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent,
        idempotency: req
            .extensions()
            .get::<std::sync::Arc<crate::app::idempotency::Claim>>()
            .cloned(),
    }
}

/// The bearer credential, if the request has an Authorization header.
pub(crate) fn bearer(req: &HttpRequest) -> Option<Result<String, AppError>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|t| !t.is_empty());
    Some(parsed.ok_or(AppError::Unauthenticated))
}

pub(crate) async fn authenticate(app: &App, token: &str) -> Result<Caller, AppError> {
    if token.starts_with(crate::auth::api_key::KEY_PREFIX) {
        app.authenticate_key(token).await
    } else {
        app.authenticate_token(token).await
    }
}

fn app_of(req: &HttpRequest) -> Result<web::Data<App>, ApiError> {
    req.app_data::<web::Data<App>>()
        .cloned()
        .ok_or_else(|| ApiError::App(AppError::Internal("application state missing".into())))
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut ctx = base_ctx(req);
        let token = bearer(req);
        let app = app_of(req);
        Box::pin(async move {
            let token = token.ok_or(AppError::Unauthenticated)??;
            let app = app?;
            ctx.caller = authenticate(&app, &token).await?;
            Ok(Auth(ctx))
        })
    }
}

impl FromRequest for MaybeAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut ctx = base_ctx(req);
        let token = bearer(req);
        let app = app_of(req);
        Box::pin(async move {
            if let Some(token) = token {
                let app = app?;
                ctx.caller = authenticate(&app, &token?).await?;
            }
            Ok(MaybeAuth(ctx))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        scopes: Vec<String>,
    }

    fn field(body: &str) -> Option<String> {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_data_error_names_the_field_by_its_path() {
        assert_eq!(field(r#"{"name": 5}"#).as_deref(), Some("name"));
        assert_eq!(
            field(r#"{"name": "a", "scopes": ["x", 7]}"#).as_deref(),
            Some("scopes[1]")
        );
        assert_eq!(field(r#"{"scopes": []}"#).as_deref(), Some("name"));
        assert_eq!(
            field(r#"{"name": "a", "admin": true}"#).as_deref(),
            Some("admin")
        );
    }

    fn message(body: &str) -> String {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation { message, .. } | ApiError::InvalidJson(message)) => message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn messages_name_json_types_and_no_rust_ones() {
        assert_eq!(message("[]"), "invalid type: array, expected an object");
        // An array of the fields in order is no object either.
        assert_eq!(
            message(r#"["a", []]"#),
            "invalid type: array, expected an object"
        );
        assert_eq!(
            message("5"),
            "invalid type: integer `5`, expected an object"
        );
        assert_eq!(
            message(r#"{"name": 5}"#),
            "invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            message(r#"{"name": "a", "admin": 1}"#),
            "unknown field `admin`, expected `name` or `scopes`"
        );
        assert_eq!(
            message(r#"{"name": "#),
            "body is not valid JSON: EOF while parsing a value (line 1, column 9)"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Counted {
            n: i64,
        }
        match parse_json::<Counted>(br#"{"n": "x"}"#) {
            Err(ApiError::Validation { message, .. }) => {
                assert_eq!(message, r#"invalid type: string "x", expected an integer"#)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_names_no_field() {
        assert_eq!(field(r#""abc""#), None);
        assert_eq!(field("[]"), None);
    }

    #[test]
    fn broken_or_trailing_json_is_a_syntax_error() {
        for body in [
            r#"{"name": "a"} x"#,
            r#"{"name": "#,
            "",
            "{",
            // Wrong before the syntax breaks: still a syntax error.
            "[1, 2",
            "{} trailing",
            r#"{"a": 1,}"#,
            r#"{"a": "unterminated}"#,
            r#"{"name": 5, }"#,
        ] {
            assert!(
                matches!(
                    parse_json::<Body>(body.as_bytes()),
                    Err(ApiError::InvalidJson(_))
                ),
                "{body}"
            );
        }
    }
}
