//! Sign-in, refresh-token rotation, sign-out, access-token authentication,
//! password changes and token introspection.

use super::{App, AppError, Caller, Ctx};
use crate::auth::password;
use crate::auth::refresh_token::RefreshToken;
use crate::domain::session::{AuthMethod, RevokeReason, Session, SessionCommand, SessionEvent};
use crate::domain::stored::AnyEvent;
use crate::domain::user::{User, UserCommand};
use crate::domain::values::Email;
use crate::domain::{Aggregate, StreamType};
use crate::instance::cache::SessionLiveness;
use crate::store::credentials;
use crate::store::events::TypedEvent;
use crate::store::orgs::OrgRow;
use crate::store::sessions::SessionRow;
use crate::store::users::UserRow;
use crate::store::{memberships, sessions, users};
use chrono::Duration;
use secrecy::SecretString;
use uuid::Uuid;

/// Tokens handed out by sign-in and refresh.
#[derive(Debug)]
pub struct SignedIn {
    /// The EdDSA access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token (shown once).
    pub refresh_token: RefreshToken,
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user: UserRow,
}

/// What a sign-in with the right password answers.
#[derive(Debug)]
pub enum SignInOutcome {
    /// Tokens: the session started.
    SignedIn(SignedIn),
    /// A second factor is needed first (`POST /v1/sessions/mfa`).
    MfaRequired(super::mfa::MfaChallenge),
}

/// What `GET /v1/me` answers.
#[derive(Debug)]
pub struct Me {
    /// How the caller's session was signed in (RFC 8176 values).
    pub amr: Vec<String>,
    /// The user.
    pub user: UserRow,
    /// Their orgs with their role in each.
    pub orgs: Vec<(OrgRow, String)>,
}

impl App {
    /// Signs a user in: throttled, timing-safe, and recorded. A user with a
    /// second factor gets a challenge instead of tokens.
    pub async fn sign_in(
        &self,
        ctx: &Ctx,
        email: &str,
        password: SecretString,
    ) -> Result<SignInOutcome, AppError> {
        let email = Email::parse(email).map_err(|_| AppError::InvalidCredentials)?;
        let attempt = self
            .reserve_sign_in(email.as_str(), ctx.ip.as_deref())
            .await?;
        let client = self.pool.get().await?;
        let user = users::find_user_by_email(&client, email.as_str()).await?;
        drop(client);
        let hash = user.as_ref().map_or_else(
            || password::dummy_hash().to_owned(),
            |u| u.password_hash.clone(),
        );
        let matches = password::verify(password, hash).await?;
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            other => {
                self.settle(attempt, true).await?;
                if let Some(user) = other {
                    let reason = if matches {
                        "user_disabled"
                    } else {
                        "wrong_password"
                    };
                    self.record_login_failure(ctx, user.id, reason);
                }
                // A retry under the same Idempotency-Key gets this refusal
                // again instead of counting as another failure. Known and
                // unknown emails both write it, so their timing stays alike.
                self.commit_claim(ctx).await?;
                return Err(AppError::InvalidCredentials);
            }
        };
        if self.policy.auth.require_verified_email && !user.email_verified {
            // Only the holder of the password learns this, and gets a fresh
            // verification mail (unless the mail throttle says no).
            self.settle(attempt, false).await?;
            match self.send_verification(ctx, &user).await {
                Ok(()) | Err(AppError::RateLimited { .. }) => {}
                Err(e) => return Err(e),
            }
            return Err(AppError::EmailNotVerified);
        }
        if user.mfa_enabled {
            // The password was right; the second factor decides.
            self.settle(attempt, false).await?;
            return Ok(SignInOutcome::MfaRequired(
                self.challenge_mfa(ctx, &user).await?,
            ));
        }
        let session_id = self.clock.new_id();
        let refresh_token = RefreshToken::generate(session_id);
        let command = SessionCommand::Start {
            user_id: user.id,
            refresh_token_hash: refresh_token.hash(),
            expires_at: self.clock.now() + Duration::seconds(self.policy.auth.session_ttl_seconds),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            amr: vec![AuthMethod::Pwd],
        };
        let started = self.start_session(ctx, &user, session_id, &command).await?;
        self.settle(attempt, !started).await?;
        if !started {
            // Disabled, or the password changed, while it was being checked.
            self.record_login_failure(ctx, user.id, "credential_changed");
            self.commit_claim(ctx).await?;
            return Err(AppError::InvalidCredentials);
        }
        let amr = [AuthMethod::Pwd.as_str().to_owned()];
        let (access_token, expires_in) = self.sign_access_token(user.id, session_id, &amr).await?;
        Ok(SignInOutcome::SignedIn(SignedIn {
            access_token,
            expires_in,
            refresh_token,
            session_id,
            user,
        }))
    }

    /// Starts a session against the user's state as the password was checked:
    /// false, with nothing appended, if they were disabled or their password
    /// changed since (see `store::credentials`).
    async fn start_session(
        &self,
        ctx: &Ctx,
        user: &UserRow,
        session_id: Uuid,
        command: &SessionCommand,
    ) -> Result<bool, AppError> {
        let decided = Session::default().decide(command)?;
        let change = self.change((StreamType::Session, session_id), 0, None, &decided)?;
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client, ctx).await?;
        if !credentials::lock_credential_for_session(&tx, user.id, &user.password_hash, true)
            .await?
        {
            return Ok(false);
        }
        self.finish(tx, ctx, &[change]).await?;
        Ok(true)
    }

    /// Records a known user's failed sign-in without the answer waiting for
    /// it: an answer that waited for the append took longer for a registered
    /// email than for an unknown one, which has nothing to record. The
    /// throttle has counted the failure already.
    pub(crate) fn record_login_failure(&self, ctx: &Ctx, user_id: Uuid, reason: &str) {
        let (app, mut ctx) = (self.clone(), ctx.clone());
        // The request's claim is committed on its own (see `sign_in`).
        ctx.idempotency = None;
        let command = UserCommand::RecordLoginFailure {
            reason: reason.into(),
        };
        // Sign-in runs in a handler, on an actix worker.
        actix_web::rt::spawn(async move {
            if let Err(e) = app.execute::<User>(&ctx, user_id, None, &command).await {
                tracing::warn!(error = %e, user_id = %user_id, "recording a failed sign-in failed");
            }
        });
    }

    /// Exchanges a refresh token for new tokens. A replaced token revokes the session.
    pub async fn refresh(&self, ctx: &Ctx, presented: &str) -> Result<SignedIn, AppError> {
        let presented = RefreshToken::parse(presented).map_err(|_| AppError::Unauthenticated)?;
        let session_id = presented.session_id();
        let client = self.pool.get().await?;
        let session = sessions::find_session(&client, session_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let user = users::find_user(&client, session.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        drop(client);
        // Disabling revokes every session with it; this holds even so.
        if user.disabled {
            return Err(AppError::Unauthenticated);
        }
        let next = RefreshToken::generate(session_id);
        let presented_hash = presented.hash();
        let command = SessionCommand::Refresh {
            presented_hash: presented_hash.clone(),
            new_hash: next.hash(),
            now: self.clock.now(),
        };
        // The refresh token is the session's credential: its holder acts as
        // the session's user, and the caller's address and agent are that
        // person's (sealed for them, erased with them).
        let ctx = &Ctx {
            caller: Caller::User {
                user_id: session.user_id,
                session_id,
            },
            ..ctx.clone()
        };
        // Decided on the read model's snapshot, not by folding the stream; its
        // version makes a concurrent refresh a conflict, decided again.
        let recorded = self
            .retrying(async || {
                let client = self.pool.get().await?;
                let snapshot =
                    sessions::find_refresh_snapshot(&client, session_id, &presented_hash)
                        .await?
                        .ok_or(AppError::Unauthenticated)?;
                drop(client);
                let replaced = match snapshot.issued_presented {
                    true => vec![presented_hash.clone()],
                    false => vec![],
                };
                let state = Session::from_snapshot(
                    snapshot.user_id,
                    snapshot.current_hash,
                    replaced,
                    snapshot.expires_at,
                    snapshot.is_revoked,
                );
                let decided = state.decide(&command)?;
                if decided.is_empty() {
                    return Ok(vec![]);
                }
                let stream = (StreamType::Session, session_id);
                let change = self.change(stream, snapshot.version, None, &decided)?;
                self.commit(ctx, &[change]).await
            })
            .await?;
        let revoked =
            |e: &TypedEvent| matches!(e.event, AnyEvent::Session(SessionEvent::Revoked { .. }));
        if recorded.iter().any(revoked) {
            tracing::warn!(session_id = %session_id, "refresh token reused: session revoked");
            return Err(AppError::Unauthenticated);
        }
        // A refreshed token says how the session was signed in.
        let (access_token, expires_in) = self
            .sign_access_token(user.id, session_id, &session.amr)
            .await?;
        Ok(SignedIn {
            access_token,
            expires_in,
            refresh_token: next,
            session_id,
            user,
        })
    }

    /// Whether `token` is the refresh token of a live session now: what an
    /// earlier answer handed out may be handed out again only while it is.
    pub async fn is_refresh_token_current(&self, token: &str) -> Result<bool, AppError> {
        let Ok(token) = RefreshToken::parse(token) else {
            return Ok(false);
        };
        let client = self.pool.get().await?;
        Ok(sessions::is_refresh_token_current(
            &client,
            token.session_id(),
            &token.hash(),
            self.clock.now(),
        )
        .await?)
    }

    /// Authenticates an access token: signature, claims, and a live session.
    pub async fn authenticate_token(&self, token: &str) -> Result<Caller, AppError> {
        let claims = self.verify_jwt(token).await?;
        self.require_live_session(claims.sid, claims.sub).await?;
        Ok(Caller::User {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }

    pub(crate) async fn require_live_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), AppError> {
        let live = match self.cache.session(session_id) {
            Some(live) => live,
            None => {
                let epoch = self.cache.epoch();
                let client = self.pool.get().await?;
                let Some((user_id, is_revoked, expires_at)) =
                    sessions::find_session_liveness(&client, session_id).await?
                else {
                    return Err(AppError::Unauthenticated);
                };
                let live = SessionLiveness {
                    user_id,
                    is_revoked,
                    expires_at,
                };
                self.cache.fill_session(epoch, session_id, live);
                live
            }
        };
        if live.user_id == user_id && !live.is_revoked && live.expires_at > self.clock.now() {
            Ok(())
        } else {
            Err(AppError::Unauthenticated)
        }
    }

    pub(crate) fn require_user(ctx: &Ctx) -> Result<(Uuid, Uuid), AppError> {
        match ctx.caller {
            Caller::User {
                user_id,
                session_id,
            } => Ok((user_id, session_id)),
            _ => Err(AppError::Forbidden("needs a user's access token")),
        }
    }

    /// The session of the signed-in caller, who must be `user_id`: another
    /// user's id is not found, and a caller that is not a user is forbidden.
    pub(crate) fn require_self(ctx: &Ctx, user_id: Uuid) -> Result<Uuid, AppError> {
        match Self::require_user(ctx)? {
            (caller, session) if caller == user_id => Ok(session),
            _ => Err(AppError::NotFound),
        }
    }

    /// The caller's active sessions.
    pub async fn list_sessions(&self, ctx: &Ctx) -> Result<(Vec<SessionRow>, Uuid), AppError> {
        let (user_id, current) = Self::require_user(ctx)?;
        let client = self.pool.get().await?;
        let sessions = sessions::find_active_sessions(&client, user_id, self.clock.now()).await?;
        Ok((sessions, current))
    }

    /// Ends one of the caller's sessions (`None`: the current one).
    pub async fn sign_out(&self, ctx: &Ctx, session_id: Option<Uuid>) -> Result<(), AppError> {
        let (user_id, current) = Self::require_user(ctx)?;
        let session_id = session_id.unwrap_or(current);
        let client = self.pool.get().await?;
        match sessions::find_session(&client, session_id).await? {
            Some(s) if s.user_id == user_id => {}
            _ => return Err(AppError::NotFound),
        }
        drop(client);
        let command = SessionCommand::Revoke {
            reason: RevokeReason::Logout,
        };
        self.execute::<Session>(ctx, session_id, None, &command)
            .await?;
        Ok(())
    }

    /// The caller and their orgs.
    pub async fn me(&self, ctx: &Ctx) -> Result<Me, AppError> {
        let (user_id, session_id) = Self::require_user(ctx)?;
        let client = self.pool.get().await?;
        let user = users::find_user(&client, user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let amr = sessions::find_session(&client, session_id)
            .await?
            .ok_or(AppError::Unauthenticated)?
            .amr;
        let orgs = memberships::find_memberships_of(&client, user_id).await?;
        Ok(Me { amr, user, orgs })
    }
}
