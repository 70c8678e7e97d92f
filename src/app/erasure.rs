//! Erasure: a person is forgotten. Their sessions and memberships end, their
//! read-model rows lose every personal field, and their data key is destroyed,
//! all in one transaction with `user.erased` (see `docs/personal-data.md`).

use super::{App, AppError, Caller, Ctx};
use crate::domain::org::{Authority, Org, OrgCommand};
use crate::domain::session::RevokeReason;
use crate::domain::user::{User, UserCommand};
use crate::domain::{Aggregate, DomainError, StreamType};
use crate::store::events::StreamChange;
use crate::store::{credentials, invitations, memberships, users};
use deadpool_postgres::GenericClient;
use secrecy::SecretString;
use uuid::Uuid;

impl App {
    /// Erases a user: the user themself with their current password, or a
    /// `vouch:admin` caller without one. Refused with 409 `last_owner` while
    /// the user is the last owner of an org; nothing changes then.
    pub async fn erase_user(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        current_password: Option<SecretString>,
    ) -> Result<(), AppError> {
        let checked_hash = if ctx.caller.is_admin() {
            None
        } else {
            Some(
                self.check_own_password(ctx, user_id, current_password)
                    .await?,
            )
        };
        self.retrying(async || {
            let mut client = self.pool.get().await?;
            let tx = self.begin(&mut client, ctx).await?;
            // No session starts for this user while the erasure decides.
            let held = credentials::lock_credential_for_change(&tx, user_id)
                .await?
                .ok_or(AppError::NotFound)?;
            if checked_hash.as_ref().is_some_and(|h| *h != held) {
                // The password changed since it was checked.
                return Err(AppError::InvalidCredentials);
            }
            // Their address, for the invitations that name it (read before
            // the erasure's projection clears it).
            let email = users::find_user(&tx, user_id).await?.map(|u| u.email);
            let loaded = self.load::<User>(&tx, user_id).await?;
            let mut changes = vec![self.change(
                (StreamType::User, user_id),
                loaded.version,
                None,
                &loaded.state.decide(&UserCommand::Erase)?,
            )?];
            changes.extend(self.memberships_ended(&tx, user_id).await?);
            changes.extend(
                self.end_sessions(&tx, user_id, None, RevokeReason::UserErased)
                    .await?,
            );
            // The events are sealed with the person's key, then the key goes.
            let recorded = self.commit_in(&tx, ctx, &changes).await?;
            self.keyring()?.erase(&tx, user_id).await?;
            // Their address on the invitations they accepted, or that were
            // sent to it, is sealed for each invitation: those keys go too,
            // and the rows lose it (as a replay without the keys rebuilds them).
            let named = invitations::find_naming(&tx, user_id, email.as_deref()).await?;
            for invitation in &named {
                self.keyring()?.erase(&tx, *invitation).await?;
            }
            invitations::forget_emails(&tx, &named).await?;
            tx.commit().await?;
            self.committed(ctx, &recorded);
            Ok(())
        })
        .await
    }

    /// The caller's own password, checked (and throttled) as a sign-in is;
    /// returns the hash it matched. Another user's id is not found.
    async fn check_own_password(
        &self,
        ctx: &Ctx,
        user_id: Uuid,
        current_password: Option<SecretString>,
    ) -> Result<String, AppError> {
        match ctx.caller {
            Caller::User { user_id: own, .. } if own == user_id => {}
            Caller::Anonymous => return Err(AppError::Unauthenticated),
            // Other users and org keys do not learn that this user exists.
            _ => return Err(AppError::NotFound),
        }
        // Not a malformed request (an admin sends none): not enough proof.
        let current = current_password.ok_or(AppError::Forbidden(
            "erasing your own account needs your current_password",
        ))?;
        Ok(self
            .check_password(ctx, user_id, current)
            .await?
            .password_hash)
    }

    /// The end of every membership of the user, decided by each org's rules
    /// on the person's behalf: the last owner of an org is refused.
    async fn memberships_ended(
        &self,
        client: &impl GenericClient,
        user_id: Uuid,
    ) -> Result<Vec<StreamChange>, AppError> {
        let mut changes = Vec::new();
        for (org, _) in memberships::find_memberships_of(client, user_id).await? {
            let loaded = self.load::<Org>(client, org.id).await?;
            let command = OrgCommand::RemoveMember {
                by: Authority::SystemAdmin,
                user_id,
            };
            let decided = match loaded.state.decide(&command) {
                // Removed meanwhile: nothing left to end.
                Err(DomainError::NotFound) => continue,
                other => other?,
            };
            changes.push(self.change(
                (StreamType::Org, org.id),
                loaded.version,
                Some(org.id),
                &decided,
            )?);
        }
        Ok(changes)
    }
}
