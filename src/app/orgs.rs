//! Organisation and membership commands and queries.

use super::{App, AppError, Caller, Ctx, Page, PageCursor};
use crate::domain::org::{Org, OrgCommand};
use crate::domain::values::{OrgName, Role, Slug};
use crate::domain::DomainError;
use crate::store::memberships::MemberRow;
use crate::store::orgs::OrgRow;
use crate::store::orgs::OrgScope;
use crate::store::{memberships, orgs, users};
use uuid::Uuid;

/// A request to create an org, parsed.
#[derive(Debug)]
pub struct NewOrg {
    /// Display name.
    pub name: OrgName,
    /// Unique slug.
    pub slug: Slug,
    /// First owner, when an admin creates the org.
    pub owner_id: Option<Uuid>,
}

impl App {
    /// Creates an org. A user becomes its owner; an admin may name an owner.
    pub async fn create_org(&self, ctx: &Ctx, new: NewOrg) -> Result<OrgRow, AppError> {
        let (created_by, owner) = match &ctx.caller {
            Caller::User { user_id, .. } => {
                if new.owner_id.is_some_and(|o| o != *user_id) {
                    return Err(AppError::Forbidden("only vouch:admin names another owner"));
                }
                (Some(*user_id), Some(*user_id))
            }
            c if c.is_admin() || matches!(c, Caller::System) => (None, new.owner_id),
            _ => return Err(AppError::Forbidden("org keys cannot create organisations")),
        };
        if let Some(owner) = owner {
            self.require_user_exists(owner, "owner_id").await?;
        }
        let id = self.clock.new_id();
        let command = OrgCommand::Create {
            name: new.name,
            slug: new.slug,
            created_by,
            owner,
        };
        self.execute_new::<Org>(ctx, id, Some(id), &command).await?;
        self.org_row(id).await
    }

    /// The orgs the caller can see, a page at a time.
    pub async fn list_orgs(
        &self,
        ctx: &Ctx,
        after: Option<PageCursor>,
        limit: i64,
    ) -> Result<Page<OrgRow>, AppError> {
        let scope = match &ctx.caller {
            c if c.is_admin() => OrgScope::All,
            Caller::ApiKey { org_id, .. } => OrgScope::Only(*org_id),
            Caller::User { user_id, .. } => OrgScope::MemberOf(*user_id),
            _ => return Err(AppError::Unauthenticated),
        };
        let client = self.pool.get().await?;
        let items = orgs::find_orgs(&client, scope, after.map(|c| c.0), limit).await?;
        Ok(Page::by_id(items, limit, |o| o.id))
    }

    /// One org, if the caller can see it.
    pub async fn get_org(&self, ctx: &Ctx, org_id: Uuid) -> Result<OrgRow, AppError> {
        self.standing(ctx, org_id).await?;
        self.org_row(org_id).await
    }

    /// Renames an org (owner/admin).
    pub async fn rename_org(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        name: OrgName,
    ) -> Result<OrgRow, AppError> {
        let by = self.standing(ctx, org_id).await?.authority;
        self.execute::<Org>(ctx, org_id, Some(org_id), &OrgCommand::Rename { by, name })
            .await?;
        self.org_row(org_id).await
    }

    /// The org's members.
    pub async fn list_members(&self, ctx: &Ctx, org_id: Uuid) -> Result<Vec<MemberRow>, AppError> {
        self.standing(ctx, org_id).await?.require_people()?;
        let client = self.pool.get().await?;
        Ok(memberships::find_members(&client, org_id).await?)
    }

    /// Adds an existing user to the org with a role (`vouch:admin` only).
    pub async fn add_member(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        user_id: Uuid,
        role: Role,
    ) -> Result<MemberRow, AppError> {
        let standing = self.standing(ctx, org_id).await?;
        standing.require_people()?;
        // A person joins an org by consent: by accepting an invitation.
        if !ctx.caller.is_admin() {
            return Err(AppError::Forbidden(
                "adding a user by id needs vouch:admin: invite their email instead",
            ));
        }
        let by = standing.authority;
        self.require_user_exists(user_id, "user_id").await?;
        let command = OrgCommand::AddMember { by, user_id, role };
        self.execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await?;
        self.member_row(org_id, user_id).await
    }

    /// Changes a member's role.
    pub async fn change_member_role(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        user_id: Uuid,
        role: Role,
    ) -> Result<MemberRow, AppError> {
        let standing = self.standing(ctx, org_id).await?;
        standing.require_people()?;
        let by = standing.authority;
        let command = OrgCommand::ChangeRole { by, user_id, role };
        self.execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await?;
        self.member_row(org_id, user_id).await
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), AppError> {
        let standing = self.standing(ctx, org_id).await?;
        standing.require_people()?;
        let by = standing.authority;
        let command = OrgCommand::RemoveMember { by, user_id };
        self.execute::<Org>(ctx, org_id, Some(org_id), &command)
            .await?;
        Ok(())
    }

    async fn require_user_exists(
        &self,
        user_id: Uuid,
        field: &'static str,
    ) -> Result<(), AppError> {
        let client = self.pool.get().await?;
        match users::find_user(&client, user_id).await? {
            Some(_) => Ok(()),
            None => Err(DomainError::invalid(field, "no such user").into()),
        }
    }

    async fn org_row(&self, id: Uuid) -> Result<OrgRow, AppError> {
        let client = self.pool.get().await?;
        orgs::find_org(&client, id).await?.ok_or(AppError::NotFound)
    }

    async fn member_row(&self, org_id: Uuid, user_id: Uuid) -> Result<MemberRow, AppError> {
        let client = self.pool.get().await?;
        memberships::find_member(&client, org_id, user_id)
            .await?
            .ok_or(AppError::NotFound)
    }
}
