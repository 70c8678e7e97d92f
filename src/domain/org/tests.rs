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

mod invitations {
    use super::*;
    use crate::domain::action::{Presented, TokenIssue, TokenSecret};
    use crate::domain::values::Email;
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn bob() -> Email {
        Email::parse("bob@example.org").unwrap()
    }

    fn invite(by: Authority, role: Role) -> C {
        C::Invite {
            by,
            invited_by: Some(uid(1)),
            invitation_id: uid(100),
            email: bob(),
            role,
            issue: TokenIssue {
                token: TokenSecret::new("vin_x"),
                token_hash: "ab".repeat(32),
                expires_at: t0() + Duration::days(7),
            },
        }
    }

    fn invited(role: Role) -> E {
        E::InvitationCreated {
            invitation_id: uid(100),
            email: bob().into(),
            role,
            token: TokenSecret::new("vin_x").into(),
            token_hash: "ab".repeat(32),
            expires_at: t0() + Duration::days(7),
            invited_by: Some(uid(1)),
        }
    }

    fn accept(hash: &str, at: DateTime<Utc>, email: &str, verified: bool) -> C {
        C::AcceptInvitation {
            invitation_id: uid(100),
            presented: Presented {
                token_hash: hash.repeat(32),
                now: at,
            },
            user_id: uid(2),
            email: Email::parse(email).unwrap(),
            email_verified: verified,
        }
    }

    #[test]
    fn owners_and_admins_invite_and_only_owners_invite_owners() {
        given::<Org>(acme())
            .when(invite(ADMIN, Role::Admin))
            .then([invited(Role::Admin)]);
        given::<Org>(acme())
            .when(invite(ADMIN, Role::Owner))
            .then_err(DomainError::Forbidden("only owners invite owners"));
        given::<Org>(acme())
            .when(invite(OWNER, Role::Owner))
            .then([invited(Role::Owner)]);
        given::<Org>(acme())
            .when(invite(MEMBER, Role::Member))
            .then_err(DomainError::Forbidden(
                "only owners and admins manage the organisation",
            ));
    }

    #[test]
    fn the_invited_verified_address_joins_with_the_role_once() {
        given::<Org>(with(acme(), [invited(Role::Admin)]))
            .when(accept("ab", t0(), "bob@example.org", true))
            .then([
                E::InvitationAccepted {
                    invitation_id: uid(100),
                    user_id: uid(2),
                },
                added(2, Role::Admin),
            ]);
        let accepted = with(
            acme(),
            [
                invited(Role::Admin),
                E::InvitationAccepted {
                    invitation_id: uid(100),
                    user_id: uid(2),
                },
                added(2, Role::Admin),
            ],
        );
        given::<Org>(accepted)
            .when(accept("ab", t0(), "bob@example.org", true))
            .then_err(DomainError::InvalidToken);
    }

    #[test]
    fn a_wrong_expired_or_revoked_token_another_address_or_an_unproven_one_is_refused() {
        let pending = with(acme(), [invited(Role::Member)]);
        given::<Org>(pending.clone())
            .when(accept("cd", t0(), "bob@example.org", true))
            .then_err(DomainError::InvalidToken);
        given::<Org>(pending.clone())
            .when(accept(
                "ab",
                t0() + Duration::days(7),
                "bob@example.org",
                true,
            ))
            .then_err(DomainError::InvalidToken);
        given::<Org>(pending.clone())
            .when(accept("ab", t0(), "eve@example.org", true))
            .then_err(DomainError::Forbidden(
                "the invitation is for another email address",
            ));
        given::<Org>(pending.clone())
            .when(accept("ab", t0(), "bob@example.org", false))
            .then_err(DomainError::EmailNotVerified);
        let revoked = with(
            pending,
            [E::InvitationRevoked {
                invitation_id: uid(100),
            }],
        );
        given::<Org>(revoked.clone())
            .when(accept("ab", t0(), "bob@example.org", true))
            .then_err(DomainError::InvalidToken);
        given::<Org>(revoked)
            .when(C::RevokeInvitation {
                by: OWNER,
                invitation_id: uid(100),
            })
            .then_nothing();
    }

    #[test]
    fn a_member_cannot_join_again_by_invitation() {
        given::<Org>(with(acme(), [added(2, Role::Member), invited(Role::Admin)]))
            .when(accept("ab", t0(), "bob@example.org", true))
            .then_err(DomainError::AlreadyMember);
    }
}
