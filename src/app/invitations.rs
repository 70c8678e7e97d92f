//! Invitations to orgs: owners and admins (and `vouch:org:admin` keys)
//! invite an address with a role; the token is answered once to the inviter
//! and mailed; a signed-in user whose verified address it is accepts.

use super::{App, AppError, Ctx, Page, PageCursor};
use crate::auth::action_token::Purpose;
use crate::domain::org::{Org, OrgCommand};
use crate::domain::values::{Email, Role};
use crate::store::invitations::{self, InvitationRow};
use crate::store::memberships::MemberRow;
use crate::store::users;
use uuid::Uuid;

/// A new invitation and its token, shown once.
#[derive(Debug)]
pub struct IssuedInvitation {
    /// The invitation.
    pub invitation: InvitationRow,
    /// The token in the clear.
    pub token: crate::auth::action_token::ActionToken,
}

impl App {
    /// The caller's authority over the org's people, if it manages them.
    async fn manager(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
    ) -> Result<crate::domain::org::Authority, AppError> {
        let standing = self.standing(ctx, org_id).await?;
        standing.require_people()?;
        if !standing.authority.can_manage() {
            return Err(AppError::Forbidden(
                "only owners and admins manage the organisation",
            ));
        }
        Ok(standing.authority)
    }

    /// Invites `email` to the org with `role`.
    pub async fn invite(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        email: Email,
        role: Role,
    ) -> Result<IssuedInvitation, AppError> {
        let by = self.manager(ctx, org_id).await?;
        // An invitation is a mail like any other: throttled per address and
        // per client.
        self.reserve_mail(email.as_str(), ctx.ip.as_deref()).await?;
        let invitation_id = self.clock.new_id();
        let (token, issue) = self.issue(Purpose::Invitation, invitation_id);
        let command = OrgCommand::Invite {
            by,
            invited_by: ctx.caller.user_id(),
            invitation_id,
            email,
            role,
            issue,
        };
        self.execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await?;
        Ok(IssuedInvitation {
            invitation: self.invitation_row(invitation_id).await?,
            token,
        })
    }

    /// The org's invitations, a page at a time (managers only).
    pub async fn list_invitations(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        after: Option<PageCursor>,
        limit: i64,
    ) -> Result<Page<InvitationRow>, AppError> {
        self.manager(ctx, org_id).await?;
        let client = self.pool.get().await?;
        let items =
            invitations::find_invitations_page(&client, org_id, after.map(|c| c.0), limit).await?;
        Ok(Page::by_id(items, limit, |i| i.id))
    }

    /// Withdraws a pending invitation; its token stops working.
    pub async fn revoke_invitation(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<(), AppError> {
        let by = self.manager(ctx, org_id).await?;
        let row = self.invitation_row(invitation_id).await?;
        if row.org_id != org_id {
            return Err(AppError::NotFound);
        }
        let command = OrgCommand::RevokeInvitation { by, invitation_id };
        self.execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await?;
        Ok(())
    }

    /// Joins the org of an invitation as the signed-in caller, whose verified
    /// address must be the invited one.
    pub async fn accept_invitation(&self, ctx: &Ctx, raw: &str) -> Result<MemberRow, AppError> {
        let (user_id, _) = Self::require_user(ctx)?;
        let (invitation_id, presented) = self.presented(ctx, Purpose::Invitation, raw).await?;
        let client = self.pool.get().await?;
        let invitation = invitations::find_invitation(&client, invitation_id).await?;
        let user = users::find_user(&client, user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        drop(client);
        let Some(invitation) = invitation else {
            return self.refused_token(ctx, Err(AppError::InvalidToken)).await;
        };
        let org_id = invitation.org_id;
        let email = Email::parse(&user.email).map_err(|e| AppError::Internal(Box::new(e)))?;
        let command = OrgCommand::AcceptInvitation {
            invitation_id,
            presented,
            user_id,
            email,
            email_verified: user.email_verified,
        };
        let outcome = self
            .execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await;
        self.refused_token(ctx, outcome).await?;
        let client = self.pool.get().await?;
        crate::store::memberships::find_member(&client, org_id, user_id)
            .await?
            .ok_or(AppError::NotFound)
    }

    async fn invitation_row(&self, id: Uuid) -> Result<InvitationRow, AppError> {
        let client = self.pool.get().await?;
        invitations::find_invitation(&client, id)
            .await?
            .ok_or(AppError::NotFound)
    }
}
