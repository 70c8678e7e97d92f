//! The organisation aggregate: its name, slug and members with roles.
//!
//! Rules: an org always keeps at least one owner once it has one; only an owner
//! (or a system admin) grants `owner` or changes an owner's membership; members
//! are managed by admins and owners.

use super::values::{OrgName, Role, Slug};
use super::{Aggregate, DomainError, DomainEvent, StreamType};
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
    fn can_manage(self) -> bool {
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
}

/// The state of one org, as far as its rules need it.
#[derive(Debug, Clone, Default)]
pub struct Org {
    exists: bool,
    name: Option<OrgName>,
    members: BTreeMap<Uuid, Role>,
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
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;
    use OrgCommand as C;
    use OrgEvent as E;

    const OWNER: Authority = Authority::Member(Role::Owner);
    const ADMIN: Authority = Authority::Member(Role::Admin);
    const MEMBER: Authority = Authority::Member(Role::Member);

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn created() -> E {
        E::Created {
            name: OrgName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            created_by: Some(uid(1)),
        }
    }

    fn added(n: u128, role: Role) -> E {
        E::MemberAdded {
            user_id: uid(n),
            role,
        }
    }

    fn acme() -> Vec<E> {
        vec![created(), added(1, Role::Owner)]
    }

    fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
        events.extend(more);
        events
    }

    #[test]
    fn creating_an_org_makes_its_creator_owner() {
        given::<Org>([])
            .when(C::Create {
                name: OrgName::parse("Acme").unwrap(),
                slug: Slug::parse("acme").unwrap(),
                created_by: Some(uid(1)),
                owner: Some(uid(1)),
            })
            .then(acme());
    }

    #[test]
    fn an_org_is_created_once() {
        given::<Org>(acme())
            .when(C::Create {
                name: OrgName::parse("Acme").unwrap(),
                slug: Slug::parse("acme").unwrap(),
                created_by: None,
                owner: None,
            })
            .then_err(DomainError::AlreadyExists);
    }

    #[test]
    fn commands_on_a_missing_org_are_not_found() {
        given::<Org>([])
            .when(C::Rename {
                by: Authority::SystemAdmin,
                name: OrgName::parse("X").unwrap(),
            })
            .then_err(DomainError::NotFound);
    }

    #[test]
    fn admins_add_members_but_members_do_not() {
        given::<Org>(acme())
            .when(C::AddMember {
                by: ADMIN,
                user_id: uid(2),
                role: Role::Member,
            })
            .then([added(2, Role::Member)]);
        given::<Org>(acme())
            .when(C::AddMember {
                by: MEMBER,
                user_id: uid(2),
                role: Role::Member,
            })
            .then_err(DomainError::Forbidden(
                "only owners and admins manage the organisation",
            ));
    }

    #[test]
    fn a_member_is_added_once() {
        given::<Org>(acme())
            .when(C::AddMember {
                by: OWNER,
                user_id: uid(1),
                role: Role::Member,
            })
            .then_err(DomainError::AlreadyMember);
    }

    #[test]
    fn only_owners_grant_owner() {
        given::<Org>(acme())
            .when(C::AddMember {
                by: ADMIN,
                user_id: uid(2),
                role: Role::Owner,
            })
            .then_err(DomainError::Forbidden("only owners grant the owner role"));
        given::<Org>(with(acme(), [added(2, Role::Member)]))
            .when(C::ChangeRole {
                by: ADMIN,
                user_id: uid(2),
                role: Role::Owner,
            })
            .then_err(DomainError::Forbidden(
                "only owners grant or take the owner role",
            ));
        given::<Org>(with(acme(), [added(2, Role::Member)]))
            .when(C::ChangeRole {
                by: OWNER,
                user_id: uid(2),
                role: Role::Owner,
            })
            .then([E::MemberRoleChanged {
                user_id: uid(2),
                role: Role::Owner,
            }]);
    }

    #[test]
    fn admins_cannot_demote_or_remove_an_owner() {
        let events = with(acme(), [added(2, Role::Owner)]);
        given::<Org>(events.clone())
            .when(C::ChangeRole {
                by: ADMIN,
                user_id: uid(2),
                role: Role::Member,
            })
            .then_err(DomainError::Forbidden(
                "only owners grant or take the owner role",
            ));
        given::<Org>(events)
            .when(C::RemoveMember {
                by: ADMIN,
                user_id: uid(2),
            })
            .then_err(DomainError::Forbidden(
                "only owners grant or take the owner role",
            ));
    }

    #[test]
    fn the_last_owner_can_be_neither_removed_nor_demoted() {
        given::<Org>(acme())
            .when(C::RemoveMember {
                by: OWNER,
                user_id: uid(1),
            })
            .then_err(DomainError::LastOwner);
        given::<Org>(acme())
            .when(C::ChangeRole {
                by: Authority::SystemAdmin,
                user_id: uid(1),
                role: Role::Admin,
            })
            .then_err(DomainError::LastOwner);
    }

    #[test]
    fn an_owner_can_leave_when_another_owner_remains() {
        given::<Org>(with(acme(), [added(2, Role::Owner)]))
            .when(C::RemoveMember {
                by: OWNER,
                user_id: uid(1),
            })
            .then([E::MemberRemoved { user_id: uid(1) }]);
    }

    #[test]
    fn changing_to_the_same_role_changes_nothing() {
        given::<Org>(with(acme(), [added(2, Role::Admin)]))
            .when(C::ChangeRole {
                by: OWNER,
                user_id: uid(2),
                role: Role::Admin,
            })
            .then_nothing();
    }

    #[test]
    fn changing_a_non_member_is_not_found() {
        given::<Org>(acme())
            .when(C::ChangeRole {
                by: OWNER,
                user_id: uid(9),
                role: Role::Admin,
            })
            .then_err(DomainError::NotFound);
        given::<Org>(with(
            acme(),
            [added(2, Role::Member), E::MemberRemoved { user_id: uid(2) }],
        ))
        .when(C::RemoveMember {
            by: OWNER,
            user_id: uid(2),
        })
        .then_err(DomainError::NotFound);
    }

    #[test]
    fn renaming_needs_a_manager_and_a_new_name() {
        let name = OrgName::parse("Acme Corp").unwrap();
        given::<Org>(acme())
            .when(C::Rename {
                by: ADMIN,
                name: name.clone(),
            })
            .then([E::Renamed { name: name.clone() }]);
        given::<Org>(acme())
            .when(C::Rename { by: MEMBER, name })
            .then_err(DomainError::Forbidden(
                "only owners and admins manage the organisation",
            ));
        given::<Org>(acme())
            .when(C::Rename {
                by: OWNER,
                name: OrgName::parse("Acme").unwrap(),
            })
            .then_nothing();
    }
}
