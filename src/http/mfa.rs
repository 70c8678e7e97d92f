//! Second factors: TOTP enrolment and removal under `/v1/users/{id}/mfa`,
//! and `POST /v1/sessions/mfa`, which answers a sign-in's challenge.

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, MaybeAuth, OptionalJson};
use super::sessions::TokensDto;
use crate::app::App;
use actix_web::{web, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A new TOTP secret: shown once, enrolment completes with a code of it.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollmentDto {
    /// The secret, base32 (for typing into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/...` URI (what the QR code holds).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// The backup codes: shown once, each works once.
#[derive(Serialize, ToSchema)]
pub struct BackupCodesDto {
    /// Ten codes, `xxxxx-xxxxx`.
    pub backup_codes: Vec<String>,
}

/// A code of the authenticator app.
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six digits.
    #[schema(max_length = 64)]
    pub code: String,
}

/// Removing TOTP: the password and a code (TOTP or backup); `vouch:admin`
/// sends no body.
// No `Debug`: it holds secrets.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableTotp {
    /// The user's password now.
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// A TOTP code or a backup code.
    #[schema(max_length = 64)]
    pub code: Option<String>,
}

/// The answer to a sign-in's challenge.
// No `Debug`: it holds secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteMfa {
    /// The `mfa_token` of the sign-in's answer.
    #[schema(max_length = 200)]
    pub mfa_token: String,
    /// A TOTP code or a backup code.
    #[schema(max_length = 64)]
    pub code: String,
}

/// A sign-in that waits for a second factor: no tokens yet.
#[derive(Serialize, ToSchema)]
pub struct MfaChallengeDto {
    /// Always true.
    pub mfa_required: bool,
    /// Single use, five minutes: send it with a code to `POST /v1/sessions/mfa`.
    pub mfa_token: String,
    /// The factors that answer it: `totp` and `backup_code` (an app is
    /// enrolled), `passkey` (`POST /v1/sessions/passkey/options` with this token).
    pub methods: Vec<String>,
}

/// Begins enrolling an authenticator app (the user only).
#[utoipa::path(post, path = "/v1/users/{id}/mfa/totp", tag = "mfa", params(("id" = Uuid, Path)),
    responses((status = 201, body = TotpEnrollmentDto),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`conflict`: TOTP is enabled already", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enroll_totp(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let enrollment = app.enroll_totp(&ctx, *id).await?;
    Ok(HttpResponse::Created().json(TotpEnrollmentDto {
        secret: enrollment.secret.expose().to_owned(),
        otpauth_uri: enrollment.otpauth_uri,
        qr_svg: enrollment.qr_svg,
    }))
}

/// Completes the enrolment with a code of the app; answers the backup codes.
#[utoipa::path(post, path = "/v1/users/{id}/mfa/totp/confirm", tag = "mfa", params(("id" = Uuid, Path)),
    request_body = TotpCode,
    responses((status = 200, body = BackupCodesDto),
              (status = 401, description = "`invalid_code`", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`conflict`: no enrolment under way, or TOTP is enabled already", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn confirm_totp(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let backup_codes = app.confirm_totp(&ctx, *id, &body.code).await?;
    Ok(HttpResponse::Ok().json(BackupCodesDto { backup_codes }))
}

/// Replaces the backup codes (the old ones stop working), proven with a code
/// of the authenticator app; answers the ten new ones, shown once.
#[utoipa::path(post, path = "/v1/users/{id}/mfa/backup-codes", tag = "mfa", params(("id" = Uuid, Path)),
    request_body = TotpCode,
    responses((status = 200, body = BackupCodesDto),
              (status = 401, description = "`invalid_code` (TOTP off counts as a wrong code)", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many wrong codes", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn regenerate_backup_codes(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let backup_codes = app.regenerate_backup_codes(&ctx, *id, &body.code).await?;
    Ok(HttpResponse::Ok().json(BackupCodesDto { backup_codes }))
}

/// Removes TOTP and the backup codes: the user with their password and a
/// code, or `vouch:admin` with no body (a reset, recorded with its actor).
#[utoipa::path(delete, path = "/v1/users/{id}/mfa/totp", tag = "mfa", params(("id" = Uuid, Path)),
    request_body(content = Option<DisableTotp>, description = "The user's password and a code; empty for `vouch:admin`."),
    responses((status = 204),
              (status = 401, description = "`invalid_credentials`: wrong password; `invalid_code`", body = ErrorBody),
              (status = 403, description = "`forbidden`: a user without both fields", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many password attempts", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn disable_totp(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    OptionalJson(body): OptionalJson<DisableTotp>,
) -> Result<HttpResponse, ApiError> {
    let proof = match (body.current_password, body.code) {
        (Some(password), Some(code)) => Some((SecretString::from(password), code)),
        (None, None) => None,
        _ => {
            return Err(ApiError::validation(
                "code",
                "send current_password and code together",
            ))
        }
    };
    app.disable_totp(&ctx, *id, proof).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Answers a sign-in's challenge with a TOTP or backup code: the sign-in's
/// tokens. Wrong and reused codes are 401 `invalid_code`; a wrong, used or
/// expired `mfa_token` is 401 `unauthenticated`.
#[utoipa::path(post, path = "/v1/sessions/mfa", tag = "sessions", request_body = CompleteMfa,
    responses((status = 201, body = TokensDto),
              (status = 401, description = "`invalid_code`; `unauthenticated`: the challenge is wrong, used or expired", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many failures for this user or from this address", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn complete_mfa(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<CompleteMfa>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = app.complete_mfa(&ctx, &body.mfa_token, &body.code).await?;
    Ok(HttpResponse::Created().json(TokensDto::from(signed_in)))
}
