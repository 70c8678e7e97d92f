//! Who may see and change what in an org. Not visible means 404, as if absent.

use super::{App, AppError, Caller, Ctx};
use crate::domain::org::Authority;
use crate::domain::values::{Role, SCOPE_AUDIT_READ, SCOPE_ORG_ADMIN};
use crate::store::{memberships, orgs};
use uuid::Uuid;

/// The caller's standing in one org.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// What the caller may do in the org's aggregate.
    pub authority: Authority,
    /// Whether the caller may read the org's audit events.
    pub can_read_audit: bool,
    /// Whether the caller may see the org's people (member routes, with their
    /// emails): its members, `vouch:org:admin` and `vouch:admin` keys; not a
    /// key that holds only app scopes.
    pub can_see_people: bool,
}

impl Standing {
    /// Whether the caller manages the org (owner, admin, org-admin key, system admin).
    pub fn can_manage(&self) -> bool {
        matches!(
            self.authority,
            Authority::SystemAdmin | Authority::Member(Role::Admin | Role::Owner)
        )
    }

    /// Fails with 403 unless the caller may see the org's people.
    pub fn require_people(&self) -> Result<(), AppError> {
        if self.can_see_people {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "members are for the organisation's people and vouch:org:admin keys",
            ))
        }
    }

    /// Fails with 403 unless the caller manages the org.
    pub fn require_manage(&self) -> Result<(), AppError> {
        if self.can_manage() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "only owners and admins manage the organisation",
            ))
        }
    }
}

impl App {
    /// The caller's standing in `org_id`; 404 if the org does not exist or is not theirs.
    pub async fn standing(&self, ctx: &Ctx, org_id: Uuid) -> Result<Standing, AppError> {
        // Only an admin's standing needs the org looked up: an org key's own org
        // exists (its key row names it), and a membership implies its org.
        let standing = match &ctx.caller {
            caller if caller.is_admin() => self.org_exists(org_id).await?.then_some(Standing {
                authority: Authority::SystemAdmin,
                can_read_audit: true,
                can_see_people: true,
            }),
            Caller::ApiKey {
                org_id: own,
                scopes,
                ..
            } if *own == org_id => {
                let admin = scopes.has(SCOPE_ORG_ADMIN);
                Some(Standing {
                    authority: Authority::Member(if admin { Role::Admin } else { Role::Member }),
                    can_read_audit: admin || scopes.has(SCOPE_AUDIT_READ),
                    can_see_people: admin,
                })
            }
            Caller::User { user_id, .. } => {
                let client = self.pool.get().await?;
                memberships::find_member(&client, org_id, *user_id)
                    .await?
                    .and_then(|m| Role::parse(&m.role).ok())
                    .map(|role| Standing {
                        authority: Authority::Member(role),
                        can_read_audit: role >= Role::Admin,
                        can_see_people: true,
                    })
            }
            _ => None,
        };
        standing.ok_or(AppError::NotFound)
    }

    /// Whether the org exists. Orgs are never deleted, so a yes is remembered.
    async fn org_exists(&self, org_id: Uuid) -> Result<bool, AppError> {
        if self.cache.is_known_org(org_id) {
            return Ok(true);
        }
        let client = self.pool.get().await?;
        let exists = orgs::find_org(&client, org_id).await?.is_some();
        if exists {
            self.cache.note_org(org_id);
        }
        Ok(exists)
    }
}
