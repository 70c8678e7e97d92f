//! `/v1/users` routes.

use super::dto::{EventDto, Page, UserDto};
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, MaybeAuth, OptionalJson};
use crate::app::users::Registration;
use crate::app::App;
use crate::auth::password::NewPassword;
use crate::domain::values::{Email, UserName};
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Sign-up request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email (normalised: trimmed, lower-cased).
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, not a common password.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
    /// Display name: 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: Option<String>,
}

/// Profile change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New display name: 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
}

/// Optional reason for disabling or enabling.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why, for the audit trail (up to 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Erasure request: the user's own password; a `vouch:admin` caller sends no body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseUser {
    /// The user's password now (required when the user erases themself).
    pub current_password: Option<String>,
}

/// User directory parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only the user with this email (normalised as at sign-up: trimmed, lower-cased).
    #[param(format = "email", max_length = 254)]
    pub email: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Checks an optional free-text reason.
pub fn parse_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    match reason {
        Some(r) if r.chars().count() > 500 => {
            Err(ApiError::validation("reason", "at most 500 characters"))
        }
        other => Ok(other),
    }
}

/// Creates a user.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserDto),
              (status = 403, description = "`forbidden`: sign-up is closed and the caller is not `vouch:admin`", body = ErrorBody),
              (status = 409, description = "`email_taken`", body = ErrorBody),
              (status = 422, description = "`validation_error`, also for a common password", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many sign-ups from this address", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn create_user(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let reg = Registration {
        email: Email::parse(&body.email)?,
        password: NewPassword::parse("password", &body.password)?,
        name: body.name.as_deref().map(UserName::parse).transpose()?,
    };
    let user = app.register_user(&ctx, reg).await?;
    Ok(HttpResponse::Created().json(UserDto::from(user)))
}

/// A user (themself or `vouch:admin`).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_user(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = app.get_user(&ctx, *id).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

/// Renames a user (themself or `vouch:admin`).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserDto), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_user(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<UpdateUser>,
) -> Result<HttpResponse, ApiError> {
    let name = UserName::parse(&body.name)?;
    let user = app.rename_user(&ctx, *id, name).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

/// Disables a user (`vouch:admin`).
#[utoipa::path(post, path = "/v1/users/{id}/disable", tag = "users", params(("id" = Uuid, Path)), request_body(content = Option<Reason>, description = "Optional: an empty body is no reason."),
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn disable_user(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    OptionalJson(body): OptionalJson<Reason>,
) -> Result<HttpResponse, ApiError> {
    let user = app
        .set_user_disabled(&ctx, *id, true, parse_reason(body.reason)?)
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

/// Enables a user (`vouch:admin`).
#[utoipa::path(post, path = "/v1/users/{id}/enable", tag = "users", params(("id" = Uuid, Path)), request_body(content = Option<Reason>, description = "Optional: an empty body is no reason."),
    responses((status = 200, body = UserDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enable_user(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    OptionalJson(body): OptionalJson<Reason>,
) -> Result<HttpResponse, ApiError> {
    parse_reason(body.reason)?;
    let user = app.set_user_disabled(&ctx, *id, false, None).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

/// Erases a user: the user themself (with `current_password`) or `vouch:admin`
/// (no body). Sessions and memberships end, personal fields become unreadable
/// everywhere, and the email is free again (`user.erased`).
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    request_body(content = Option<EraseUser>, description = "The user's own password; empty for `vouch:admin`."),
    responses((status = 204),
              (status = 401, description = "`invalid_credentials`: wrong current password", body = ErrorBody),
              (status = 404, description = "`not_found`: no such user, erased already, or not the caller", body = ErrorBody),
              (status = 409, description = "`last_owner`: the user is the last owner of an org", body = ErrorBody),
              (status = 403, description = "`forbidden`: the user sent no `current_password`", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many password attempts", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase_user(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    OptionalJson(body): OptionalJson<EraseUser>,
) -> Result<HttpResponse, ApiError> {
    let current = body.current_password.map(SecretString::from);
    app.erase_user(&ctx, *id, current).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every event concerning the user, with their personal fields readable and
/// everyone else's withheld (`[redacted]`), secrets redacted as in the events
/// API: the right of access (the user or `vouch:admin`).
#[utoipa::path(get, path = "/v1/users/{id}/personal-data", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
               description = "JSON Lines: one event per line in the events API's envelope, in commit-safe order"),
              (status = 404, description = "`not_found`: no such user, erased, or not the caller", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn personal_data(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let events = app.personal_data(&ctx, *id).await?;
    let mut body = Vec::new();
    for event in events {
        serde_json::to_writer(&mut body, &EventDto::from(event))
            .map_err(|e| ApiError::App(crate::app::AppError::Internal(Box::new(e))))?;
        body.push(b'\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body(body))
}

/// The user directory (`vouch:admin`): every user in id order, or the one with
/// an email; erased users are in neither.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = Page<UserDto>),
              (status = 403, description = "`forbidden`: not `vouch:admin`", body = ErrorBody),
              (status = 422, description = "`validation_error`: a bad email, limit or cursor", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_users(
    app: web::Data<App>,
    Auth(ctx): Auth,
    q: web::Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let email = q.email.as_deref().map(Email::parse).transpose()?;
    let (cursor, limit) = super::orgs::PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse()?;
    let page = app.list_users(&ctx, email, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.into_iter().map(UserDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
