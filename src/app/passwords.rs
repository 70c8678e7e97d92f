//! Password changes: verified against the current password, committed
//! together with the end of the user's other sessions.

use super::{App, AppError, Ctx};
use crate::auth::password::{self, NewPassword};
use crate::domain::session::{RevokeReason, Session, SessionCommand, SessionEvent};
use crate::domain::user::{User, UserCommand};
use crate::domain::{Aggregate, StreamType};
use crate::store::events::StreamChange;
use crate::store::{credentials, sessions, users};
use deadpool_postgres::GenericClient;
use secrecy::SecretString;
use uuid::Uuid;

impl App {
    /// Changes the caller's password and ends their other sessions, in one transaction.
    pub async fn change_password(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        current: SecretString,
        new: NewPassword,
    ) -> Result<(), AppError> {
        let own_session = Self::require_self(ctx, user_id)?;
        let user = self.check_password(ctx, user_id, current).await?;
        let password_hash = password::hash(new).await?;
        let command = UserCommand::ChangePassword { password_hash };
        self.retrying(async || {
            let mut client = self.pool.get().await?;
            let tx = self.begin(&mut client, ctx).await?;
            // No session starts for this user until the change commits, and a
            // concurrent change of the same password loses.
            let current = credentials::lock_credential_for_change(&tx, user_id).await?;
            if current.as_deref() != Some(user.password_hash.as_str()) {
                return Err(AppError::InvalidCredentials);
            }
            let changes = self
                .new_password_changes(
                    &tx,
                    user_id,
                    &command,
                    Some(own_session),
                    RevokeReason::PasswordChanged,
                )
                .await?;
            self.finish(tx, ctx, &changes).await
        })
        .await?;
        Ok(())
    }

    /// The changes a new password makes, decided in `tx` (which holds the
    /// credential lock): the user's event, and the end of every session of
    /// theirs but `keep`.
    pub(crate) async fn new_password_changes(
        &self,
        tx: &impl GenericClient,
        user_id: Uuid,
        command: &UserCommand,
        keep: Option<Uuid>,
        reason: RevokeReason,
    ) -> Result<Vec<StreamChange>, AppError> {
        let loaded = self.load::<User>(tx, user_id).await?;
        let mut changes = vec![self.change(
            (StreamType::User, user_id),
            loaded.version,
            None,
            &loaded.state.decide(command)?,
        )?];
        changes.extend(self.end_sessions(tx, user_id, keep, reason).await?);
        Ok(changes)
    }

    /// Checks a user's password now, throttled and counted as a sign-in is
    /// (401 `invalid_credentials` when wrong); returns the user as checked.
    pub(crate) async fn check_password(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        password: SecretString,
    ) -> Result<users::UserRow, AppError> {
        let client = self.pool.get().await?;
        let user = users::find_user(&client, user_id)
            .await?
            .ok_or(AppError::NotFound)?;
        drop(client);
        let attempt = self.reserve_sign_in(&user.email, ctx.ip.as_deref()).await?;
        let matches = password::verify(password, user.password_hash.clone()).await?;
        self.settle(attempt, !matches).await?;
        if !matches {
            return Err(AppError::InvalidCredentials);
        }
        Ok(user)
    }

    /// Revocation changes for every active session of a user but `keep`.
    pub(crate) async fn end_sessions(
        &self,
        client: &impl GenericClient,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: RevokeReason,
    ) -> Result<Vec<StreamChange>, AppError> {
        let ids: Vec<Uuid> = sessions::find_active_sessions(client, user_id, self.clock.now())
            .await?
            .iter()
            .map(|s| s.id)
            .filter(|id| Some(*id) != keep)
            .collect();
        self.revocations(client, &ids, reason).await
    }

    /// Revocation changes for sessions (skipping those already ended).
    pub(crate) async fn revocations(
        &self,
        client: &impl GenericClient,
        session_ids: &[Uuid],
        reason: RevokeReason,
    ) -> Result<Vec<StreamChange>, AppError> {
        let mut changes = Vec::with_capacity(session_ids.len());
        for id in session_ids {
            let loaded = self.load::<Session>(client, *id).await?;
            let decided: Vec<SessionEvent> =
                loaded.state.decide(&SessionCommand::Revoke { reason })?;
            if !decided.is_empty() {
                changes.push(self.change(
                    (StreamType::Session, *id),
                    loaded.version,
                    None,
                    &decided,
                )?);
            }
        }
        Ok(changes)
    }
}
