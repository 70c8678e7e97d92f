//! Passkeys (WebAuthn): registration, list, rename and removal under
//! `/v1/users/{id}/passkeys`; sign-in with a passkey, alone or as a
//! sign-in's second factor, under `/v1/sessions/passkey`. Each ceremony is
//! two requests: `.../options` answers what the browser passes to
//! `navigator.credentials.create()` or `.get()`, then the browser's answer
//! (its `PublicKeyCredential` as JSON, binary fields base64url) finishes it.

use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, MaybeAuth, OptionalJson};
use super::sessions::TokensDto;
use crate::app::App;
use crate::store::passkeys::PasskeyRow;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// The first half of a ceremony.
#[derive(Serialize, ToSchema)]
pub struct CeremonyDto {
    /// Names the ceremony in its second request (single use).
    pub ceremony_id: Uuid,
    /// When it stops working (five minutes).
    pub expires_at: DateTime<Utc>,
    /// For `navigator.credentials.create()` / `.get()`: `{"publicKey": {...}}`
    /// (binary fields base64url; decode them to ArrayBuffers first).
    #[schema(value_type = Object)]
    pub options: Value,
}

/// A passkey of a user.
#[derive(Serialize, ToSchema)]
pub struct PasskeyDto {
    /// Its id.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// What the user calls it.
    pub name: Option<String>,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// Whether the authenticator may sync it to other devices (its sign-ins
    /// are `swk` rather than `hwk`).
    pub backup_eligible: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed in.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<PasskeyRow> for PasskeyDto {
    fn from(p: PasskeyRow) -> Self {
        Self {
            id: p.id,
            user_id: p.user_id,
            name: p.name,
            credential_id: p.credential_id,
            backup_eligible: p.backup_eligible,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A user's passkeys (ten at most: not paged).
#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    /// The passkeys, oldest first.
    pub items: Vec<PasskeyDto>,
    /// Always null.
    pub next_cursor: Option<String>,
}

/// The password, proving the caller is the user (not a stolen token).
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentPassword {
    /// The user's password now.
    #[schema(format = Password)]
    pub current_password: String,
}

/// Removing a passkey: the user's password; `vouch:admin` sends no body.
// No `Debug`: it holds a secret.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemovePasskey {
    /// The user's password now.
    #[schema(format = Password)]
    pub current_password: Option<String>,
}

/// The authenticator's answer to a registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPasskey {
    /// The `ceremony_id` of `POST /v1/users/{id}/passkeys/options`.
    pub ceremony_id: Uuid,
    /// The `PublicKeyCredential` of `navigator.credentials.create()`, as
    /// JSON (binary fields base64url).
    #[schema(value_type = Object)]
    pub credential: Value,
    /// What to call it (1 to 100 characters; `Passkey` if absent).
    #[schema(max_length = 100)]
    pub name: Option<String>,
}

/// A new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenamePasskey {
    /// 1 to 100 characters.
    #[schema(max_length = 100)]
    pub name: String,
}

/// Options of a passkey sign-in: none for a passkey alone; the challenge's
/// `mfa_token` for a passkey as the second factor.
// No `Debug`: it holds a secret.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignInOptions {
    /// The `mfa_token` of a sign-in's answer (second factor).
    #[schema(max_length = 200)]
    pub mfa_token: Option<String>,
}

/// The authenticator's answer to a sign-in.
// No `Debug`: it holds a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignIn {
    /// The `ceremony_id` of `POST /v1/sessions/passkey/options`.
    pub ceremony_id: Uuid,
    /// The `PublicKeyCredential` of `navigator.credentials.get()`, as JSON
    /// (binary fields base64url).
    #[schema(value_type = Object)]
    pub credential: Value,
    /// The challenge's `mfa_token`, when the passkey is the second factor
    /// (the same one its options were asked with).
    #[schema(max_length = 200)]
    pub mfa_token: Option<String>,
}

/// Begins registering a passkey (the user, with their password).
#[utoipa::path(post, path = "/v1/users/{id}/passkeys/options", tag = "passkeys", params(("id" = Uuid, Path)),
    request_body = CurrentPassword,
    responses((status = 201, body = CeremonyDto),
              (status = 401, description = "`invalid_credentials`: wrong password", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user, or a user with a second factor in a session that did not pass one", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`conflict`: ten passkeys already, or passkeys are off", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many password attempts", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn registration_options(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<CurrentPassword>,
) -> Result<HttpResponse, ApiError> {
    let password = SecretString::from(body.current_password);
    let started = app.start_passkey_registration(&ctx, *id, password).await?;
    Ok(HttpResponse::Created().json(CeremonyDto {
        ceremony_id: started.ceremony_id,
        expires_at: started.expires_at,
        options: started.options,
    }))
}

/// Registers the passkey the authenticator made.
#[utoipa::path(post, path = "/v1/users/{id}/passkeys", tag = "passkeys", params(("id" = Uuid, Path)),
    request_body = RegisterPasskey,
    responses((status = 201, body = PasskeyDto),
              (status = 401, description = "`invalid_passkey`: the ceremony failed verification", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 409, description = "`conflict`: no such ceremony (used, expired), the passkey is registered already, or ten passkeys", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register_passkey(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<RegisterPasskey>,
) -> Result<HttpResponse, ApiError> {
    let row = app
        .finish_passkey_registration(
            &ctx,
            *id,
            body.ceremony_id,
            body.name.as_deref(),
            &body.credential,
        )
        .await?;
    Ok(HttpResponse::Created().json(PasskeyDto::from(row)))
}

/// The user's passkeys (the user or `vouch:admin`).
#[utoipa::path(get, path = "/v1/users/{id}/passkeys", tag = "passkeys", params(("id" = Uuid, Path)),
    responses((status = 200, body = PasskeyList),
              (status = 404, description = "`not_found`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_passkeys(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let items = app.list_passkeys(&ctx, *id).await?;
    Ok(HttpResponse::Ok().json(PasskeyList {
        items: items.into_iter().map(PasskeyDto::from).collect(),
        next_cursor: None,
    }))
}

/// Renames a passkey (the user).
#[utoipa::path(patch, path = "/v1/users/{id}/passkeys/{passkey_id}", tag = "passkeys",
    params(("id" = Uuid, Path), ("passkey_id" = Uuid, Path)),
    request_body = RenamePasskey,
    responses((status = 200, body = PasskeyDto),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rename_passkey(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    Json(body): Json<RenamePasskey>,
) -> Result<HttpResponse, ApiError> {
    let (id, passkey_id) = *path;
    let row = app.rename_passkey(&ctx, id, passkey_id, &body.name).await?;
    Ok(HttpResponse::Ok().json(PasskeyDto::from(row)))
}

/// Removes a passkey: the user with their password, or `vouch:admin` with
/// no body (recorded with its actor).
#[utoipa::path(delete, path = "/v1/users/{id}/passkeys/{passkey_id}", tag = "passkeys",
    params(("id" = Uuid, Path), ("passkey_id" = Uuid, Path)),
    request_body(content = Option<RemovePasskey>, description = "The user's password; empty for `vouch:admin`."),
    responses((status = 204),
              (status = 401, description = "`invalid_credentials`: wrong password", body = ErrorBody),
              (status = 403, description = "`forbidden`: a user without current_password, or a user with a second factor in a session that did not pass one", body = ErrorBody),
              (status = 404, description = "`not_found`", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many password attempts", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_passkey(
    app: web::Data<App>,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    OptionalJson(body): OptionalJson<RemovePasskey>,
) -> Result<HttpResponse, ApiError> {
    let (id, passkey_id) = *path;
    let password = body.current_password.map(SecretString::from);
    app.remove_passkey(&ctx, id, passkey_id, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Begins a sign-in with a passkey: alone (no body; any passkey of this
/// site, the authenticator says whose), or as the second factor of a
/// sign-in's challenge (`mfa_token`: one of that user's passkeys).
#[utoipa::path(post, path = "/v1/sessions/passkey/options", tag = "sessions",
    request_body(content = Option<PasskeySignInOptions>, description = "Empty, or the challenge's `mfa_token`."),
    responses((status = 201, body = CeremonyDto),
              (status = 401, description = "`unauthenticated`: the challenge is wrong, used or expired", body = ErrorBody),
              (status = 409, description = "`conflict`: the user holds no passkey, or passkeys are off", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many from this address", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn sign_in_options(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    OptionalJson(body): OptionalJson<PasskeySignInOptions>,
) -> Result<HttpResponse, ApiError> {
    let started = match body.mfa_token {
        Some(token) => app.start_passkey_second_factor(&ctx, &token).await?,
        None => app.start_passkey_sign_in(&ctx).await?,
    };
    Ok(HttpResponse::Created().json(CeremonyDto {
        ceremony_id: started.ceremony_id,
        expires_at: started.expires_at,
        options: started.options,
    }))
}

/// Finishes a sign-in with a passkey: the sign-in's tokens (`amr` `hwk` or
/// `swk` and `mfa`, with `pwd` for a second factor).
#[utoipa::path(post, path = "/v1/sessions/passkey", tag = "sessions", request_body = PasskeySignIn,
    responses((status = 201, body = TokensDto),
              (status = 401, description = "`invalid_passkey`: the assertion failed verification (origin, challenge, signature, counter, another user's passkey); `unauthenticated`: the ceremony or challenge is wrong, used or expired", body = ErrorBody),
              (status = 403, description = "`email_not_verified`", body = ErrorBody),
              (status = 409, description = "`conflict`: passkeys are off", body = ErrorBody),
              (status = 429, description = "`rate_limited`", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn sign_in_with_passkey(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<PasskeySignIn>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = app
        .finish_passkey_sign_in(
            &ctx,
            body.ceremony_id,
            &body.credential,
            body.mfa_token.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Created().json(TokensDto::from(signed_in)))
}
