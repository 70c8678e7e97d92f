//! Sign-in and sessions: `/v1/sessions…`, `/v1/me`, password change,
//! introspection and the JWKS.

use super::dto::{IntrospectionDto, OrgDto, UserDto};
use super::error::{ApiError, ErrorBody};
use super::extract::{Auth, Json, MaybeAuth};
use super::mfa::MfaChallengeDto;
use crate::app::introspection::Introspection;
use crate::app::sessions::{SignInOutcome, SignedIn};
use crate::app::App;
use crate::auth::jwt::Jwk;
use crate::auth::password::NewPassword;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Sign-in request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The account's email.
    pub email: String,
    /// The password.
    pub password: String,
}

/// Refresh request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// The current refresh token.
    pub refresh_token: String,
}

/// Password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current_password: String,
    /// The new password: 8 to 128 characters, not a common one.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// A token to introspect.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Introspect {
    /// An access token or an API key.
    pub token: String,
}

/// Tokens of a session.
#[derive(Serialize, ToSchema)]
pub struct TokensDto {
    /// EdDSA JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// One-time refresh token; each refresh returns a new one.
    pub refresh_token: String,
    /// The session.
    pub session_id: Uuid,
    /// The signed-in user.
    pub user: UserDto,
}

impl From<SignedIn> for TokensDto {
    fn from(s: SignedIn) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "Bearer".into(),
            expires_in: s.expires_in,
            refresh_token: s.refresh_token.expose().to_owned(),
            session_id: s.session_id,
            user: UserDto::from(s.user),
        }
    }
}

/// An active session.
#[derive(Serialize, ToSchema)]
pub struct SessionDto {
    /// Its id (UUID v7).
    pub id: Uuid,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client user agent at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session of the calling token.
    pub current: bool,
}

/// The caller's sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    /// Active sessions, newest first.
    pub items: Vec<SessionDto>,
}

/// An org of the caller with their role.
#[derive(Serialize, ToSchema)]
pub struct MyOrg {
    /// Org id.
    pub id: Uuid,
    /// The org's display name.
    pub name: String,
    /// The org's unique slug.
    pub slug: String,
    /// The caller's role.
    pub role: String,
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeDto {
    /// The user.
    pub user: UserDto,
    /// Their orgs.
    pub orgs: Vec<MyOrg>,
    /// How this session was signed in (RFC 8176: `pwd`, `otp`, `hwk`, `swk`, `mfa`).
    pub amr: Vec<String>,
}

/// The JWKS document.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// Public keys that may have signed a live token.
    pub keys: Vec<Jwk>,
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = SignIn,
    responses((status = 201, body = TokensDto),
              (status = 200, description = "The user has a second factor: answer the challenge at `POST /v1/sessions/mfa`", body = MfaChallengeDto),
              (status = 401, description = "`invalid_credentials`: wrong email or password, or a disabled user", body = ErrorBody),
              (status = 403, description = "`email_not_verified`: sign-in waits for a verified address (`VOUCH_REQUIRE_VERIFIED_EMAIL`)", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many attempts for this email or from this address", body = ErrorBody)))]
pub async fn sign_in(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let outcome = app
        .sign_in(&ctx, &body.email, SecretString::from(body.password))
        .await?;
    Ok(match outcome {
        SignInOutcome::SignedIn(signed_in) => {
            HttpResponse::Created().json(TokensDto::from(signed_in))
        }
        SignInOutcome::MfaRequired(challenge) => HttpResponse::Ok().json(MfaChallengeDto {
            mfa_required: true,
            mfa_token: challenge.mfa_token.expose().to_owned(),
            methods: challenge.methods.iter().map(|m| (*m).to_owned()).collect(),
        }),
    })
}

/// Exchanges a refresh token for new tokens; the old refresh token stops working.
#[utoipa::path(post, path = "/v1/sessions/refresh", tag = "sessions", request_body = Refresh,
    responses((status = 200, body = TokensDto),
              (status = 401, description = "`unauthenticated`: an unknown, used or expired refresh token", body = ErrorBody)))]
pub async fn refresh(
    app: web::Data<App>,
    MaybeAuth(ctx): MaybeAuth,
    Json(body): Json<Refresh>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = app.refresh(&ctx, &body.refresh_token).await?;
    Ok(HttpResponse::Ok().json(TokensDto::from(signed_in)))
}

/// The caller's active sessions.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions",
    responses((status = 200, body = SessionList),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_sessions(app: web::Data<App>, Auth(ctx): Auth) -> Result<HttpResponse, ApiError> {
    let (sessions, current) = app.list_sessions(&ctx).await?;
    let items = sessions
        .into_iter()
        .map(|s| SessionDto {
            current: s.id == current,
            id: s.id,
            created_at: s.created_at,
            last_refreshed_at: s.last_refreshed_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}

/// Signs out of the current session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions",
    responses((status = 204),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sign_out(app: web::Data<App>, Auth(ctx): Auth) -> Result<HttpResponse, ApiError> {
    app.sign_out(&ctx, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = Uuid, Path)),
    responses((status = 204),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_session(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    app.sign_out(&ctx, Some(*id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller and their orgs.
#[utoipa::path(get, path = "/v1/me", tag = "sessions",
    responses((status = 200, body = MeDto),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(app: web::Data<App>, Auth(ctx): Auth) -> Result<HttpResponse, ApiError> {
    let me = app.me(&ctx).await?;
    let orgs = me
        .orgs
        .into_iter()
        .map(|(org, role)| {
            let org = OrgDto::from(org);
            MyOrg {
                id: org.id,
                name: org.name,
                slug: org.slug,
                role,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(MeDto {
        user: UserDto::from(me.user),
        orgs,
        amr: me.amr,
    }))
}

/// Changes the caller's password; their other sessions end.
#[utoipa::path(post, path = "/v1/users/{id}/password", tag = "users", params(("id" = Uuid, Path)), request_body = ChangePassword,
    responses((status = 204),
              (status = 401, description = "`invalid_credentials`: wrong current password", body = ErrorBody),
              (status = 403, description = "`forbidden`: the caller is not a user", body = ErrorBody),
              (status = 404, description = "`not_found`: not the caller", body = ErrorBody),
              (status = 422, description = "`validation_error`, also for a common password", body = ErrorBody),
              (status = 429, description = "`rate_limited`: too many attempts", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_password(
    app: web::Data<App>,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    Json(body): Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let new = NewPassword::parse("new_password", &body.new_password)?;
    app.change_password(&ctx, *id, SecretString::from(body.current_password), new)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 7662 introspection of an access token or an API key (caller: any API key).
#[utoipa::path(post, path = "/v1/introspect", tag = "sessions", request_body = Introspect,
    responses((status = 200, body = IntrospectionDto),
              (status = 403, description = "`forbidden`: the caller is not an API key", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn introspect(
    app: web::Data<App>,
    Auth(ctx): Auth,
    Json(body): Json<Introspect>,
) -> Result<HttpResponse, ApiError> {
    let dto = match app.introspect(&ctx, &body.token).await? {
        Introspection::Inactive => IntrospectionDto::default(),
        Introspection::AccessToken(c) => IntrospectionDto {
            active: true,
            token_type: Some("access_token".into()),
            sub: Some(c.sub),
            sid: Some(c.sid),
            exp: Some(Some(c.exp)),
            iat: Some(c.iat),
            iss: Some(c.iss),
            aud: Some(c.aud),
            amr: Some(c.amr),
            ..IntrospectionDto::default()
        },
        Introspection::ApiKey(k) => IntrospectionDto {
            active: true,
            token_type: Some("api_key".into()),
            exp: Some(k.expires_at.map(|t| t.timestamp())),
            key_id: Some(k.id),
            org_id: Some(k.org_id),
            scopes: Some(k.scopes),
            ..IntrospectionDto::default()
        },
    };
    Ok(HttpResponse::Ok().json(dto))
}

/// The public keys that verify access tokens (RFC 8037 OKP keys).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sessions", responses((status = 200, body = Jwks)))]
pub async fn jwks(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    let keys = app.jwks().await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(Jwks { keys }))
}
