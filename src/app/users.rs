//! User commands and queries.

use super::{App, AppError, Caller, Ctx, Page, PageCursor};
use crate::auth::password::{self, NewPassword};
use crate::domain::session::RevokeReason;
use crate::domain::user::{User, UserCommand};
use crate::domain::values::{Email, UserName};
use crate::domain::{Aggregate, StreamType};
use crate::store::credentials;
use crate::store::users::UserRow;
use crate::store::{sessions, users};
use uuid::Uuid;

/// A sign-up request, parsed.
#[derive(Debug)]
pub struct Registration {
    /// Normalised email.
    pub email: Email,
    /// Checked password.
    pub password: NewPassword,
    /// Optional display name.
    pub name: Option<UserName>,
}

impl App {
    /// Registers a user. Open to anyone unless sign-up is closed (then admin only).
    pub async fn register_user(&self, ctx: &Ctx, reg: Registration) -> Result<UserRow, AppError> {
        if !self.policy.open_signup && !ctx.caller.is_admin() {
            return Err(match ctx.caller {
                Caller::Anonymous => AppError::Unauthenticated,
                _ => AppError::Forbidden("sign-up is closed: only vouch:admin creates users"),
            });
        }
        if !ctx.caller.is_admin() {
            self.reserve_sign_up(ctx.ip.as_deref()).await?;
        }
        // argon2 runs before the transaction, on the blocking pool.
        let password_hash = password::hash(reg.password).await?;
        let id = self.clock.new_id();
        let command = UserCommand::Register {
            email: reg.email,
            name: reg.name,
            password_hash,
        };
        self.execute_new::<User>(ctx, id, None, &command).await?;
        let user = self.user_row(id).await?;
        if self.policy.auth.require_verified_email {
            // Sign-in waits for the address: the first mail goes out at once.
            match self.send_verification(ctx, &user).await {
                Ok(()) | Err(AppError::RateLimited { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(user)
    }

    /// The user directory (`vouch:admin`): every living user in id order, or
    /// the one with this email (normalised as at sign-up).
    pub async fn list_users(
        &self,
        ctx: &Ctx,
        email: Option<Email>,
        cursor: Option<PageCursor>,
        limit: i64,
    ) -> Result<Page<UserRow>, AppError> {
        if !ctx.caller.is_admin() {
            return Err(AppError::Forbidden("the user directory needs vouch:admin"));
        }
        let client = self.pool.get().await?;
        let items = match email {
            // One user at most: a page of its own, past which there is nothing.
            Some(email) => users::find_user_by_email(&client, email.as_str())
                .await?
                .filter(|u| cursor.is_none_or(|c| u.id > c.0))
                .into_iter()
                .collect(),
            None => users::find_users_page(&client, cursor.map(|c| c.0), limit).await?,
        };
        Ok(Page::by_id(items, limit, |u| u.id))
    }

    /// A user, visible to themself and to admins only.
    pub async fn get_user(&self, ctx: &Ctx, id: Uuid) -> Result<UserRow, AppError> {
        self.require_self_or_admin(ctx, id)?;
        self.user_row(id).await
    }

    /// Renames a user (themself or an admin).
    pub async fn rename_user(
        &self,
        ctx: &Ctx,
        id: Uuid,
        name: UserName,
    ) -> Result<UserRow, AppError> {
        self.require_self_or_admin(ctx, id)?;
        self.execute::<User>(ctx, id, None, &UserCommand::Rename { name })
            .await?;
        self.user_row(id).await
    }

    /// Disables or enables a user (`vouch:admin`).
    pub async fn set_user_disabled(
        &self,
        ctx: &Ctx,
        id: Uuid,
        disabled: bool,
        reason: Option<String>,
    ) -> Result<UserRow, AppError> {
        if !ctx.caller.is_admin() {
            return Err(match ctx.caller.user_id() {
                Some(own) if own == id => AppError::Forbidden("only vouch:admin disables users"),
                // Other users do not learn that this one exists.
                Some(_) => AppError::NotFound,
                None => AppError::Forbidden("only vouch:admin disables users"),
            });
        }
        let command = if disabled {
            UserCommand::Disable { reason }
        } else {
            UserCommand::Enable
        };
        // Disabling ends every session in the same transaction, and holds the
        // user's row first, so that no sign-in starts one it does not see.
        self.retrying(async || {
            let mut client = self.pool.get().await?;
            let tx = self.begin(&mut client, ctx).await?;
            if credentials::lock_credential_for_change(&tx, id)
                .await?
                .is_none()
            {
                return Err(AppError::NotFound);
            }
            let loaded = self.load::<User>(&tx, id).await?;
            let sessions = match disabled {
                true => sessions::find_active_sessions(&tx, id, self.clock.now()).await?,
                false => vec![],
            };
            let decided = loaded.state.decide(&command)?;
            let mut changes = Vec::new();
            if !decided.is_empty() {
                changes.push(self.change(
                    (StreamType::User, id),
                    loaded.version,
                    None,
                    &decided,
                )?);
            }
            let ids: Vec<Uuid> = sessions.iter().map(|s| s.id).collect();
            changes.extend(
                self.revocations(&tx, &ids, RevokeReason::UserDisabled)
                    .await?,
            );
            if changes.is_empty() {
                return Ok(vec![]);
            }
            self.finish(tx, ctx, &changes).await
        })
        .await?;
        self.user_row(id).await
    }

    /// The user themself or `vouch:admin`; others do not learn the user exists (404).
    pub(crate) fn require_self_or_admin(&self, ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
        if ctx.caller.is_admin() || ctx.caller.user_id() == Some(id) {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    pub(crate) async fn user_row(&self, id: Uuid) -> Result<UserRow, AppError> {
        let client = self.pool.get().await?;
        users::find_user(&client, id)
            .await?
            .ok_or(AppError::NotFound)
    }
}
