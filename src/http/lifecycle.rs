//! The account-lifecycle routes: email verification, password reset, email
//! change. Every bad token is 400 `invalid_token`, whatever is wrong with it.

use super::dto::UserDto;
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, MaybeAuth};
use crate::app::App;
use crate::auth::password::NewPassword;
use crate::domain::values::Email;
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A token from a mail (or, for invitations, from the inviter).
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The token, as the `token` query parameter of the mail's link gave it.
    #[schema(max_length = 200)]
    pub token: String,
}

/// A password-reset request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's email (normalised as at sign-up).
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

/// A new password with its reset token.
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the reset mail.
    #[schema(max_length = 200)]
    pub token: String,
    /// 8 to 128 characters, not a common password.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// An email change.
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new address (normalised as at sign-up).
    #[schema(format = "email", max_length = 254)]
    pub new_email: String,
    /// The user's password now.
    #[schema(format = Password)]
    pub current_password: String,
}

/// Mails the caller a token that proves their address.
#[utoipa::path(post, path = "/v1/users/{id}/email-verification", tag = "account", params(("id" = Uuid, Path)),
    responses((status = 202, description = "The mail is on its way"),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`conflict`: the address is verified already", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many mails asked for", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn request_email_verification(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    app.request_email_verification(&ctx, *id).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Confirms an address with the token of a verification mail.
#[utoipa::path(post, path = "/v1/email-verification/confirm", tag = "account", request_body = TokenBody,
    responses((status = 200, body = UserDto),
              (status = 400, description = "`invalid_token`: malformed, unknown, used, replaced or expired", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many wrong tokens for this account", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn confirm_email_verification(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = app.confirm_email_verification(&ctx, &body.token).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

/// Asks for a password-reset mail. Always 202, in the same time, whether or
/// not the address has an account.
#[utoipa::path(post, path = "/v1/password-reset", tag = "account", request_body = PasswordResetRequest,
    responses((status = 202, description = "If the address has an account, a mail is on its way"),
              (status = 422, description = "`validation_error`: not an email address", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many mails asked for this address or from this client", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn request_password_reset(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    app.request_password_reset(&ctx, &email).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sets a new password with a reset token; every session of the user ends.
#[utoipa::path(post, path = "/v1/password-reset/confirm", tag = "account", request_body = PasswordResetConfirm,
    responses((status = 204, description = "The password is set; every session ended"),
              (status = 400, description = "`invalid_token`: malformed, unknown, used, replaced or expired", body = ErrorBody),
              (status = 422, description = "`validation_error`, also for a common password", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many wrong tokens for this account", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn confirm_password_reset(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<PasswordResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let new = NewPassword::parse("new_password", &body.new_password)?;
    app.confirm_password_reset(&ctx, &body.token, new).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Asks to move the caller's account to a new address: it gets a token, the
/// old address a notice.
#[utoipa::path(post, path = "/v1/users/{id}/email", tag = "account", params(("id" = Uuid, Path)),
    request_body = EmailChangeRequest,
    responses((status = 202, description = "The mails are on their way"),
              (status = 401, description = "`invalid_credentials`: wrong current password", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`email_taken`", body = ErrorBody),
              (status = 422, description = "`validation_error`: not an address, or the account's own", body = ErrorBody),
              (status = 429, description = "`rate_limited`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn request_email_change(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<EmailChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let new_email = Email::parse(&body.new_email)
        .map_err(|_| ApiError::validation("new_email", "must be an email address"))?;
    let password = SecretString::from(body.current_password);
    app.request_email_change(&ctx, *id, new_email, password)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Moves an account to the address an email-change token was mailed to.
#[utoipa::path(post, path = "/v1/email-change/confirm", tag = "account", request_body = TokenBody,
    responses((status = 200, body = UserDto),
              (status = 400, description = "`invalid_token`: malformed, unknown, used, replaced or expired", body = ErrorBody),
              (status = 409, description = "`email_taken`: the address was registered meanwhile", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many wrong tokens for this account", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn confirm_email_change(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let user = app.confirm_email_change(&ctx, &body.token).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}
