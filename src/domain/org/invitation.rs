//! Invitations: owners and admins invite an address with a role; a
//! signed-in user whose verified address it is accepts with the token and
//! joins. Only owners invite owners; an invitation works once, until it
//! expires or is revoked.

use super::{Org, OrgCommand, OrgEvent};
use crate::domain::action::Pending;
use crate::domain::values::{Email, Role};
use crate::domain::DomainError;

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Pending,
    Accepted,
    Revoked,
}

/// One invitation, as far as the rules need it.
#[derive(Debug, Clone)]
pub(super) struct Invitation {
    email: Option<Email>,
    role: Role,
    token: Pending,
    status: Status,
}

impl Org {
    /// Decides the invitation commands (the org exists).
    pub(super) fn decide_invitation(
        &self,
        command: &OrgCommand,
    ) -> Result<Vec<OrgEvent>, DomainError> {
        use OrgCommand as C;
        use OrgEvent as E;
        match command {
            C::Invite {
                by,
                invited_by,
                invitation_id,
                email,
                role,
                issue,
            } => {
                Self::require_manager(*by)?;
                if *role == Role::Owner && !by.is_owner() {
                    return Err(DomainError::Forbidden("only owners invite owners"));
                }
                if self.invitations.contains_key(invitation_id) {
                    return Err(DomainError::AlreadyExists);
                }
                Ok(vec![E::InvitationCreated {
                    invitation_id: *invitation_id,
                    email: email.clone().into(),
                    role: *role,
                    token: issue.token.clone().into(),
                    token_hash: issue.token_hash.clone(),
                    expires_at: issue.expires_at,
                    invited_by: *invited_by,
                }])
            }
            C::RevokeInvitation { by, invitation_id } => {
                Self::require_manager(*by)?;
                let invitation = self
                    .invitations
                    .get(invitation_id)
                    .ok_or(DomainError::NotFound)?;
                if invitation.role == Role::Owner && !by.is_owner() {
                    return Err(DomainError::Forbidden(
                        "only owners revoke an owner's invitation",
                    ));
                }
                match invitation.status {
                    Status::Revoked => Ok(vec![]),
                    Status::Accepted => Err(DomainError::Conflict("the invitation was accepted")),
                    Status::Pending => Ok(vec![E::InvitationRevoked {
                        invitation_id: *invitation_id,
                    }]),
                }
            }
            C::AcceptInvitation {
                invitation_id,
                presented,
                user_id,
                email,
                email_verified,
            } => {
                let invitation = self
                    .invitations
                    .get(invitation_id)
                    .filter(|i| i.status == Status::Pending)
                    .ok_or(DomainError::InvalidToken)?;
                if !presented.is_accepted_by(Some(&invitation.token)) {
                    return Err(DomainError::InvalidToken);
                }
                if invitation.email.as_ref() != Some(email) {
                    return Err(DomainError::Forbidden(
                        "the invitation is for another email address",
                    ));
                }
                // Only a valid token learns this.
                if !email_verified {
                    return Err(DomainError::EmailNotVerified);
                }
                if self.members.contains_key(user_id) {
                    return Err(DomainError::AlreadyMember);
                }
                Ok(vec![
                    E::InvitationAccepted {
                        invitation_id: *invitation_id,
                        user_id: *user_id,
                    },
                    E::MemberAdded {
                        user_id: *user_id,
                        role: invitation.role,
                    },
                ])
            }
            _ => unreachable!("decided by the org aggregate itself"),
        }
    }

    /// Folds the invitation events into the state.
    pub(super) fn evolve_invitation(&mut self, event: &OrgEvent) {
        match event {
            OrgEvent::InvitationCreated {
                invitation_id,
                email,
                role,
                token_hash,
                expires_at,
                ..
            } => {
                self.invitations.insert(
                    *invitation_id,
                    Invitation {
                        email: email.known().cloned(),
                        role: *role,
                        token: Pending {
                            token_hash: token_hash.clone(),
                            expires_at: *expires_at,
                        },
                        status: Status::Pending,
                    },
                );
            }
            OrgEvent::InvitationRevoked { invitation_id } => {
                if let Some(i) = self.invitations.get_mut(invitation_id) {
                    i.status = Status::Revoked;
                }
            }
            OrgEvent::InvitationAccepted { invitation_id, .. } => {
                if let Some(i) = self.invitations.get_mut(invitation_id) {
                    i.status = Status::Accepted;
                }
            }
            _ => {}
        }
    }
}
