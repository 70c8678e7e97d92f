//! The organisation aggregate: its name, slug and members with roles.
//!
//! Rules: an org always keeps at least one owner once it has one; only an owner
//! (or a system admin) grants `owner` or changes an owner's membership; members
//! are managed by admins and owners.

mod invitation;

use super::action::{Presented, TokenIssue, TokenSecret};
use super::personal::Personal;
use super::values::{Email, OrgName, Role, Slug};
use super::{Aggregate, DomainError, DomainEvent, StreamType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Events of an org stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrgEvent {
    /// The org was created.
    #[serde(rename = "org.created")]
    Created {
        /// Display name.
        name: OrgName,
        /// Unique slug.
        slug: Slug,
        /// The user who created it, if a user did.
        created_by: Option<Uuid>,
    },
    /// The org's display name changed.
    #[serde(rename = "org.renamed")]
    Renamed {
        /// The new name.
        name: OrgName,
    },
    /// A user joined the org.
    #[serde(rename = "org.member_added")]
    MemberAdded {
        /// The member.
        user_id: Uuid,
        /// Their role.
        role: Role,
    },
    /// A member's role changed.
    #[serde(rename = "org.member_role_changed")]
    MemberRoleChanged {
        /// The member.
        user_id: Uuid,
        /// The new role.
        role: Role,
    },
    /// A member left or was removed.
    #[serde(rename = "org.member_removed")]
    MemberRemoved {
        /// The former member.
        user_id: Uuid,
    },
    /// Someone was invited to join with a role.
    #[serde(rename = "org.invitation_created")]
    InvitationCreated {
        /// The invitation (also the subject its personal fields are sealed for).
        invitation_id: Uuid,
        /// The invitee's address, normalised; personal data.
        email: Personal<Email>,
        /// The role they get on accepting.
        role: Role,
        /// The token, for the mailer; sealed, and redacted wherever shown.
        token: Personal<TokenSecret>,
        /// Hex SHA-256 of the token; redacted wherever shown.
        token_hash: String,
        /// When the token stops working.
        expires_at: DateTime<Utc>,
        /// The user who invited, if a user did (not a key).
        invited_by: Option<Uuid>,
    },
    /// An invitation was withdrawn before it was accepted.
    #[serde(rename = "org.invitation_revoked")]
    InvitationRevoked {
        /// The invitation.
        invitation_id: Uuid,
    },
    /// A signed-in user with the invited, verified address accepted (their
    /// `org.member_added` follows).
    #[serde(rename = "org.invitation_accepted")]
    InvitationAccepted {
        /// The invitation.
        invitation_id: Uuid,
        /// The user who joined.
        user_id: Uuid,
    },
}

impl DomainEvent for OrgEvent {}

/// What the actor of a command may do in this org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A `vouch:admin` key: everything.
    SystemAdmin,
    /// A member of the org (or an org key acting as one) with this role.
    Member(Role),
}

impl Authority {
    /// Whether this authority manages members and invitations.
    pub fn can_manage(self) -> bool {
        match self {
            Self::SystemAdmin => true,
            Self::Member(role) => role >= Role::Admin,
        }
    }

    fn is_owner(self) -> bool {
        matches!(self, Self::SystemAdmin | Self::Member(Role::Owner))
    }
}

/// Commands on an org.
#[derive(Debug, Clone)]
pub enum OrgCommand {
    /// Create the org, with its first owner if there is one.
    Create {
        /// Display name.
        name: OrgName,
        /// Unique slug.
        slug: Slug,
        /// The creating user, if a user creates it.
        created_by: Option<Uuid>,
        /// The first owner (the creating user, or one named by an admin).
        owner: Option<Uuid>,
    },
    /// Change the display name.
    Rename {
        /// Who asks.
        by: Authority,
        /// The new name.
        name: OrgName,
    },
    /// Add a user with a role.
    AddMember {
        /// Who asks.
        by: Authority,
        /// The user to add.
        user_id: Uuid,
        /// The role to grant.
        role: Role,
    },
    /// Change a member's role.
    ChangeRole {
        /// Who asks.
        by: Authority,
        /// The member.
        user_id: Uuid,
        /// The new role.
        role: Role,
    },
    /// Remove a member.
    RemoveMember {
        /// Who asks.
        by: Authority,
        /// The member.
        user_id: Uuid,
    },
    /// Invite an address with a role.
    Invite {
        /// Who asks.
        by: Authority,
        /// The user who asks, if a user does.
        invited_by: Option<Uuid>,
        /// A fresh id for the invitation.
        invitation_id: Uuid,
        /// The invitee's address.
        email: Email,
        /// The role they get.
        role: Role,
        /// The invitation's token.
        issue: TokenIssue,
    },
    /// Withdraw a pending invitation.
    RevokeInvitation {
        /// Who asks.
        by: Authority,
        /// The invitation.
        invitation_id: Uuid,
    },
    /// Join with an invitation's token.
    AcceptInvitation {
        /// The invitation the token names.
        invitation_id: Uuid,
        /// The token presented.
        presented: Presented,
        /// The signed-in user.
        user_id: Uuid,
        /// Their address.
        email: Email,
        /// Whether they proved it.
        email_verified: bool,
    },
}

/// The state of one org, as far as its rules need it.
#[derive(Debug, Clone, Default)]
pub struct Org {
    exists: bool,
    name: Option<OrgName>,
    members: BTreeMap<Uuid, Role>,
    invitations: BTreeMap<Uuid, invitation::Invitation>,
}

impl Org {
    /// The role of a member, if they are one.
    pub fn role_of(&self, user_id: Uuid) -> Option<Role> {
        self.members.get(&user_id).copied()
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }

    fn require_manager(by: Authority) -> Result<(), DomainError> {
        if by.can_manage() {
            Ok(())
        } else {
            Err(DomainError::Forbidden(
                "only owners and admins manage the organisation",
            ))
        }
    }

    /// Checks a change to an existing member's role, or their removal (`to = None`).
    fn check_member_change(
        &self,
        by: Authority,
        current: Role,
        to: Option<Role>,
    ) -> Result<(), DomainError> {
        let touches_owner = current == Role::Owner || to == Some(Role::Owner);
        if touches_owner && !by.is_owner() {
            return Err(DomainError::Forbidden(
                "only owners grant or take the owner role",
            ));
        }
        if current == Role::Owner && to != Some(Role::Owner) && self.owners() == 1 {
            return Err(DomainError::LastOwner);
        }
        Ok(())
    }
}

impl Aggregate for Org {
    const STREAM_TYPE: StreamType = StreamType::Org;
    type Event = OrgEvent;
    type Command = OrgCommand;

    fn decide(&self, command: &OrgCommand) -> Result<Vec<OrgEvent>, DomainError> {
        use OrgCommand as C;
        use OrgEvent as E;
        if let C::Create {
            name,
            slug,
            created_by,
            owner,
        } = command
        {
            if self.exists {
                return Err(DomainError::AlreadyExists);
            }
            let mut events = vec![E::Created {
                name: name.clone(),
                slug: slug.clone(),
                created_by: *created_by,
            }];
            if let Some(user_id) = owner {
                events.push(E::MemberAdded {
                    user_id: *user_id,
                    role: Role::Owner,
                });
            }
            return Ok(events);
        }
        if !self.exists {
            return Err(DomainError::NotFound);
        }
        match command {
            C::Create { .. } => Err(DomainError::AlreadyExists),
            C::Rename { by, name } => {
                Self::require_manager(*by)?;
                if self.name.as_ref() == Some(name) {
                    return Ok(vec![]);
                }
                Ok(vec![E::Renamed { name: name.clone() }])
            }
            C::AddMember { by, user_id, role } => {
                Self::require_manager(*by)?;
                if self.members.contains_key(user_id) {
                    return Err(DomainError::AlreadyMember);
                }
                if *role == Role::Owner && !by.is_owner() {
                    return Err(DomainError::Forbidden("only owners grant the owner role"));
                }
                Ok(vec![E::MemberAdded {
                    user_id: *user_id,
                    role: *role,
                }])
            }
            C::ChangeRole { by, user_id, role } => {
                Self::require_manager(*by)?;
                let current = self.role_of(*user_id).ok_or(DomainError::NotFound)?;
                if current == *role {
                    return Ok(vec![]);
                }
                self.check_member_change(*by, current, Some(*role))?;
                Ok(vec![E::MemberRoleChanged {
                    user_id: *user_id,
                    role: *role,
                }])
            }
            C::RemoveMember { by, user_id } => {
                Self::require_manager(*by)?;
                let current = self.role_of(*user_id).ok_or(DomainError::NotFound)?;
                self.check_member_change(*by, current, None)?;
                Ok(vec![E::MemberRemoved { user_id: *user_id }])
            }
            C::Invite { .. } | C::RevokeInvitation { .. } | C::AcceptInvitation { .. } => {
                self.decide_invitation(command)
            }
        }
    }

    fn evolve(mut self, event: &OrgEvent) -> Self {
        match event {
            OrgEvent::Created { name, .. } => {
                self.exists = true;
                self.name = Some(name.clone());
            }
            OrgEvent::Renamed { name } => self.name = Some(name.clone()),
            OrgEvent::MemberAdded { user_id, role }
            | OrgEvent::MemberRoleChanged { user_id, role } => {
                self.members.insert(*user_id, *role);
            }
            OrgEvent::MemberRemoved { user_id } => {
                self.members.remove(user_id);
            }
            OrgEvent::InvitationCreated { .. }
            | OrgEvent::InvitationRevoked { .. }
            | OrgEvent::InvitationAccepted { .. } => self.evolve_invitation(event),
        }
        self
    }
}

#[cfg(test)]
mod tests;
