//! The account lifecycle of a user: verifying the address, resetting a
//! forgotten password, moving to a new address. Each request records a token
//! (its hash, and the token sealed for the mailer) in the user's stream; each
//! confirmation spends it. See `docs/account-lifecycle.md`.

use super::{App, AppError, Ctx};
use crate::auth::action_token::{ActionToken, Purpose};
use crate::auth::password::{self, NewPassword};
use crate::domain::action::{Presented, TokenIssue, TokenSecret};
use crate::domain::session::RevokeReason;
use crate::domain::user::{User, UserCommand};
use crate::domain::values::Email;
use crate::domain::DomainError;
use crate::store::users::UserRow;
use crate::store::{credentials, users};
use secrecy::SecretString;
use uuid::Uuid;

impl App {
    /// A fresh token of `purpose` for `id`, as a request records it.
    pub(crate) fn issue(&self, purpose: Purpose, id: Uuid) -> (ActionToken, TokenIssue) {
        let token = ActionToken::generate(purpose, id);
        let issue = TokenIssue {
            token: TokenSecret::new(token.expose()),
            token_hash: token.hash(),
            expires_at: self.clock.now() + purpose.lifetime(),
        };
        (token, issue)
    }

    /// A presented token of `purpose`, parsed, from a client the throttle of
    /// wrong tokens lets try (a malformed one counts as wrong).
    pub(crate) async fn presented(
        &self,
        ctx: &Ctx,
        purpose: Purpose,
        raw: &str,
    ) -> Result<(Uuid, Presented), AppError> {
        self.check_token_attempts(ctx.ip.as_deref()).await?;
        let Ok(token) = ActionToken::parse(purpose, raw) else {
            return self.refused_token(ctx, Err(AppError::InvalidToken)).await;
        };
        let presented = Presented {
            token_hash: token.hash(),
            now: self.clock.now(),
        };
        Ok((token.id(), presented))
    }

    /// The context of a confirmation: its caller acts as the token's user (an
    /// action token is that user's credential for this one step), so the
    /// caller's address and agent are sealed for that user.
    fn as_token_holder(ctx: &Ctx, user_id: Uuid) -> Ctx {
        Ctx {
            caller: super::Caller::TokenHolder { user_id },
            ..ctx.clone()
        }
    }

    /// Maps a refused token to the one answer, counting it against the
    /// client that presented it.
    pub(crate) async fn refused_token<T>(
        &self,
        ctx: &Ctx,
        outcome: Result<T, AppError>,
    ) -> Result<T, AppError> {
        match outcome {
            // An erased or unknown target is a token that does not work.
            Err(AppError::Domain(DomainError::InvalidToken | DomainError::NotFound))
            | Err(AppError::NotFound | AppError::InvalidToken) => {
                self.record_token_failure(ctx.ip.as_deref()).await?;
                Err(AppError::InvalidToken)
            }
            other => other,
        }
    }

    /// Mails the caller a token that proves their address (`202`); 409 when
    /// it is verified already.
    pub async fn request_email_verification(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
    ) -> Result<(), AppError> {
        Self::require_self(ctx, user_id)?;
        let user = self.user_row(user_id).await?;
        if user.email_verified {
            return Err(DomainError::Conflict("the email address is verified already").into());
        }
        self.send_verification(ctx, &user).await
    }

    /// Records a verification request for `user` (throttled like every mail).
    pub(crate) async fn send_verification(
        &self,
        ctx: &Ctx,
        user: &UserRow,
    ) -> Result<(), AppError> {
        self.reserve_mail(&user.email, ctx.ip.as_deref()).await?;
        let (_, issue) = self.issue(Purpose::EmailVerification, user.id);
        let command = UserCommand::RequestEmailVerification(issue);
        self.execute::<User>(ctx, user.id, None, &command).await?;
        Ok(())
    }

    /// Marks the address of the token's user verified.
    pub async fn confirm_email_verification(
        &self,
        ctx: &Ctx,
        raw: &str,
    ) -> Result<UserRow, AppError> {
        let (user_id, presented) = self.presented(ctx, Purpose::EmailVerification, raw).await?;
        let command = UserCommand::ConfirmEmailVerification(presented);
        let holder = Self::as_token_holder(ctx, user_id);
        let outcome = self.execute::<User>(&holder, user_id, None, &command).await;
        self.refused_token(ctx, outcome).await?;
        self.user_row(user_id).await
    }

    /// Asks for a reset mail for `email`. The answer (202) is the same, and
    /// takes the same time, whether or not the address has an account: past
    /// the throttle, the look-up and the request's event happen after it.
    pub async fn request_password_reset(&self, ctx: &Ctx, email: &Email) -> Result<(), AppError> {
        self.reserve_mail(email.as_str(), ctx.ip.as_deref()).await?;
        // A retry under the same Idempotency-Key gets this answer again
        // instead of asking for another mail; every address writes the claim,
        // so the answer's timing stays alike.
        self.commit_claim(ctx).await?;
        let (app, mut ctx, email) = (self.clone(), ctx.clone(), email.clone());
        ctx.idempotency = None;
        actix_web::rt::spawn(async move {
            if let Err(e) = app.record_password_reset_request(&ctx, &email).await {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), "recording a password-reset request failed");
            }
        });
        Ok(())
    }

    async fn record_password_reset_request(
        &self,
        ctx: &Ctx,
        email: &Email,
    ) -> Result<(), AppError> {
        let client = self.pool.get().await?;
        let user = users::find_user_by_email(&client, email.as_str()).await?;
        drop(client);
        let Some(user) = user else { return Ok(()) };
        let (_, issue) = self.issue(Purpose::PasswordReset, user.id);
        let command = UserCommand::RequestPasswordReset(issue);
        match self.execute::<User>(ctx, user.id, None, &command).await {
            // A disabled user gets no mail.
            Err(AppError::Domain(DomainError::Conflict(_))) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Sets a new password with a reset token and ends every session of the
    /// user, in one transaction.
    pub async fn confirm_password_reset(
        &self,
        ctx: &Ctx,
        raw: &str,
        new: NewPassword,
    ) -> Result<(), AppError> {
        let (user_id, presented) = self.presented(ctx, Purpose::PasswordReset, raw).await?;
        let ctx = &Self::as_token_holder(ctx, user_id);
        // The token is checked before the password is hashed: a wrong one
        // costs no argon2. The transaction decides again.
        let loaded = {
            let client = self.pool.get().await?;
            self.load::<User>(&client, user_id).await?
        };
        if !loaded.state.accepts_reset(&presented) {
            return self.refused_token(ctx, Err(AppError::InvalidToken)).await;
        }
        let password_hash = password::hash(new).await?;
        let command = UserCommand::ConfirmPasswordReset {
            presented,
            password_hash,
        };
        let outcome = self
            .retrying(async || {
                let mut client = self.pool.get().await?;
                let tx = self.begin(&mut client, ctx).await?;
                // No session starts on the old password once this commits.
                credentials::lock_credential_for_change(&tx, user_id).await?;
                let changes = self
                    .new_password_changes(&tx, user_id, &command, None, RevokeReason::PasswordReset)
                    .await?;
                self.finish(tx, ctx, &changes).await
            })
            .await;
        self.refused_token(ctx, outcome).await?;
        Ok(())
    }

    /// Asks to move the caller's account to `new_email`: the new address gets
    /// a token, the old one a notice. Needs the current password.
    pub async fn request_email_change(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        new_email: Email,
        current_password: SecretString,
    ) -> Result<(), AppError> {
        Self::require_self(ctx, user_id)?;
        self.check_password(ctx, user_id, current_password).await?;
        let client = self.pool.get().await?;
        let taken = users::find_user_by_email(&client, new_email.as_str()).await?;
        drop(client);
        if taken.is_some_and(|u| u.id != user_id) {
            return Err(AppError::EmailTaken);
        }
        self.reserve_mail(new_email.as_str(), ctx.ip.as_deref())
            .await?;
        let (_, issue) = self.issue(Purpose::EmailChange, user_id);
        let command = UserCommand::RequestEmailChange { new_email, issue };
        self.execute::<User>(ctx, user_id, None, &command).await?;
        Ok(())
    }

    /// Moves the token's user to the address it was mailed to; 409
    /// `email_taken` if someone registered it meanwhile.
    pub async fn confirm_email_change(&self, ctx: &Ctx, raw: &str) -> Result<UserRow, AppError> {
        let (user_id, presented) = self.presented(ctx, Purpose::EmailChange, raw).await?;
        let command = UserCommand::ConfirmEmailChange(presented);
        let holder = Self::as_token_holder(ctx, user_id);
        let outcome = self.execute::<User>(&holder, user_id, None, &command).await;
        self.refused_token(ctx, outcome).await?;
        self.user_row(user_id).await
    }
}
