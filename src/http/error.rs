//! The one place errors become HTTP responses with API.md's error body.

use crate::app::AppError;
use crate::domain::DomainError;
use crate::telemetry::error_chain;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use utoipa::ToSchema;

/// An error answer of the API.
#[derive(Debug)]
pub enum ApiError {
    /// A failure of a command or query.
    App(AppError),
    /// The body is not syntactically valid JSON.
    InvalidJson(String),
    /// The body is over 64 KiB.
    PayloadTooLarge,
    /// The body is not declared as JSON.
    UnsupportedMediaType,
    /// A bad value in the body, query or headers.
    Validation {
        /// The field at fault, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An `Idempotency-Key` sent again with another request.
    IdempotencyKeyReused,
    /// An `Idempotency-Key` whose first request has no answer to give (yet).
    IdempotencyPending,
    /// An `Idempotency-Key` whose first request was applied, but whose
    /// response was lost (or cannot be opened any more).
    IdempotencyLost,
    /// No route or method here.
    Status(StatusCode),
    /// The path exists, but not with this method: the `Allow` header value.
    MethodNotAllowed(String),
}

impl ApiError {
    /// A validation error about `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::App(AppError::Domain(e))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (status, code, message, _) = self.parts();
        write!(f, "{} {code}: {message}", status.as_u16())
    }
}

/// The error body every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
    /// Equals the `X-Request-Id` response header.
    pub request_id: String,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_error`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra facts, e.g. `{"field": "email"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

type Parts = (StatusCode, &'static str, String, Option<Value>);

fn field(field: &str) -> Option<Value> {
    Some(json!({ "field": field }))
}

fn domain_parts(e: &DomainError) -> Parts {
    use StatusCode as S;
    match e {
        DomainError::Validation { field: f, message } => (
            S::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("{f}: {message}"),
            field(f),
        ),
        DomainError::NotFound => (S::NOT_FOUND, "not_found", "no such object".into(), None),
        DomainError::AlreadyExists => (S::CONFLICT, "conflict", e.to_string(), None),
        DomainError::AlreadyMember => (S::CONFLICT, "already_member", e.to_string(), None),
        DomainError::LastOwner => (S::CONFLICT, "last_owner", e.to_string(), None),
        DomainError::Forbidden(m) => (S::FORBIDDEN, "forbidden", (*m).into(), None),
        DomainError::Conflict(m) => (S::CONFLICT, "conflict", (*m).into(), None),
        DomainError::InvalidCode => (
            S::UNAUTHORIZED,
            "invalid_code",
            "the code is wrong or was used already".into(),
            field("code"),
        ),
        DomainError::EmailNotVerified => (
            S::FORBIDDEN,
            "email_not_verified",
            "verify your email address first".into(),
            None,
        ),
        DomainError::InvalidToken => (
            S::UNAUTHORIZED,
            "unauthenticated",
            "a valid credential is required".into(),
            None,
        ),
    }
}

impl ApiError {
    fn parts(&self) -> Parts {
        use StatusCode as S;
        match self {
            Self::App(e) => match e {
                AppError::Domain(d) => domain_parts(d),
                AppError::Unauthenticated => (
                    S::UNAUTHORIZED,
                    "unauthenticated",
                    "a valid credential is required".into(),
                    None,
                ),
                AppError::InvalidCredentials => (
                    S::UNAUTHORIZED,
                    "invalid_credentials",
                    "wrong email or password".into(),
                    None,
                ),
                AppError::RateLimited { retry_after } => (
                    S::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many attempts; retry in {retry_after} seconds"),
                    Some(json!({ "retry_after": retry_after })),
                ),
                AppError::Forbidden(m) => (S::FORBIDDEN, "forbidden", (*m).into(), None),
                AppError::NotFound => (S::NOT_FOUND, "not_found", "no such object".into(), None),
                AppError::InvalidToken => (
                    S::BAD_REQUEST,
                    "invalid_token",
                    "the token is not valid: it may be malformed, used, replaced or expired".into(),
                    field("token"),
                ),
                AppError::InvalidPasskey => (
                    S::UNAUTHORIZED,
                    "invalid_passkey",
                    "the passkey was refused".into(),
                    field("credential"),
                ),
                AppError::EmailNotVerified => (
                    S::FORBIDDEN,
                    "email_not_verified",
                    "sign-in needs a verified email address: confirm the verification mail first"
                        .into(),
                    None,
                ),
                AppError::EmailTaken => (
                    S::CONFLICT,
                    "email_taken",
                    "email is already registered".into(),
                    field("email"),
                ),
                AppError::SlugTaken => (
                    S::CONFLICT,
                    "slug_taken",
                    "slug is already in use".into(),
                    field("slug"),
                ),
                AppError::IdempotencyRace => idempotency_pending(),
                AppError::VersionConflict => (
                    S::CONFLICT,
                    "conflict",
                    "the object changed concurrently; retry".into(),
                    None,
                ),
                AppError::Unavailable(_) => (
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database cannot be reached".into(),
                    None,
                ),
                AppError::Internal(_) => (
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".into(),
                    None,
                ),
            },
            Self::InvalidJson(m) => (S::BAD_REQUEST, "invalid_json", m.clone(), None),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is over 64 KiB".into(),
                None,
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json".into(),
                None,
            ),
            Self::Validation { field: f, message } => (
                S::UNPROCESSABLE_ENTITY,
                "validation_error",
                message.clone(),
                f.as_deref().and_then(field),
            ),
            Self::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request".into(),
                field("Idempotency-Key"),
            ),
            Self::IdempotencyPending => idempotency_pending(),
            Self::IdempotencyLost => (
                S::CONFLICT,
                "conflict",
                "the request with this Idempotency-Key was applied, but its response \
                 is no longer available; read the current state instead"
                    .into(),
                None,
            ),
            Self::Status(s) => status_parts(*s),
            Self::MethodNotAllowed(_) => status_parts(StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// Renders the error body for a request id.
    pub fn render(&self, request_id: &str) -> HttpResponse {
        let (status, code, message, details) = self.parts();
        let mut res = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Self::App(AppError::RateLimited { retry_after }) = self {
            res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let Self::MethodNotAllowed(allow) = self {
            res.insert_header((header::ALLOW, allow.as_str()));
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                details,
            },
            request_id: request_id.into(),
        })
    }
}

impl ApiError {
    /// Logs the error's cause chain where it is a fault of ours or of the database.
    pub fn log(&self, request_id: &str) {
        match self {
            Self::App(AppError::Internal(e)) => {
                tracing::error!(request_id, error = %error_chain(e.as_ref()), "internal error");
            }
            Self::App(AppError::Unavailable(e)) => {
                tracing::warn!(request_id, error = %error_chain(e), "database unavailable");
            }
            _ => {}
        }
    }
}

fn idempotency_pending() -> Parts {
    (
        StatusCode::CONFLICT,
        "conflict",
        "a request with this Idempotency-Key is in flight; retry later".into(),
        None,
    )
}

/// The parts of a bare status (no route, wrong method).
fn status_parts(status: StatusCode) -> Parts {
    let (code, message) = match status.as_u16() {
        404 => ("not_found", "no such object"),
        405 => ("method_not_allowed", "method not allowed on this path"),
        401 => ("unauthenticated", "a valid credential is required"),
        400 => ("invalid_json", "bad request"),
        413 => ("payload_too_large", "the body is over 64 KiB"),
        s if s >= 500 => ("internal", "internal error"),
        _ => ("bad_request", "bad request"),
    };
    (status, code, message.into(), None)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        // The request-id middleware renders the body again with the request's id.
        self.render("")
    }
}
