//! Who could access an org at a moment, and which event granted it: a pure
//! fold of the org's own stream and its API-key streams up to that moment.

use super::api_key::ApiKeyEvent;
use super::org::OrgEvent;
use super::stored::AnyEvent;
use super::values::Role;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The event that granted an access.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The event.
    pub event_id: Uuid,
    /// Who did it (the event's `metadata.actor`).
    pub actor: Value,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A member as of the moment.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAccess {
    /// Their role.
    pub role: Role,
    /// The event that gave them this role.
    pub granted: Grant,
}

/// A key as of the moment.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAccess {
    /// The first 12 characters.
    pub prefix: String,
    /// Its label.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its expiry as known then.
    pub expires_at: Option<DateTime<Utc>>,
    /// The event that issued it.
    pub granted: Grant,
    revoked: bool,
}

/// The access to one org at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessReview {
    /// Name and slug then, if the org existed.
    pub org: Option<(String, String)>,
    /// Members by user id.
    pub members: BTreeMap<Uuid, MemberAccess>,
    keys: BTreeMap<Uuid, KeyAccess>,
}

impl AccessReview {
    /// Folds one event (already known to be at or before the moment).
    pub fn apply(&mut self, stream_id: Uuid, event: &AnyEvent, grant: Grant) {
        match event {
            AnyEvent::Org(e) => match e {
                OrgEvent::Created { name, slug, .. } => {
                    self.org = Some((name.as_str().to_owned(), slug.as_str().to_owned()));
                }
                OrgEvent::Renamed { name } => {
                    if let Some(org) = &mut self.org {
                        org.0 = name.as_str().to_owned();
                    }
                }
                OrgEvent::MemberAdded { user_id, role }
                | OrgEvent::MemberRoleChanged { user_id, role } => {
                    self.members.insert(
                        *user_id,
                        MemberAccess {
                            role: *role,
                            granted: grant,
                        },
                    );
                }
                OrgEvent::MemberRemoved { user_id } => {
                    self.members.remove(user_id);
                }
                // Access comes with the `org.member_added` an acceptance brings.
                OrgEvent::InvitationCreated { .. }
                | OrgEvent::InvitationRevoked { .. }
                | OrgEvent::InvitationAccepted { .. } => {}
            },
            AnyEvent::ApiKey(e) => match e {
                ApiKeyEvent::Created {
                    prefix,
                    name,
                    scopes,
                    expires_at,
                    ..
                } => {
                    self.keys.insert(
                        stream_id,
                        KeyAccess {
                            prefix: prefix.clone(),
                            name: name.as_str().to_owned(),
                            scopes: scopes.as_slice().to_vec(),
                            expires_at: *expires_at,
                            granted: grant,
                            revoked: false,
                        },
                    );
                }
                ApiKeyEvent::Revoked { .. } => {
                    if let Some(k) = self.keys.get_mut(&stream_id) {
                        k.revoked = true;
                    }
                }
                ApiKeyEvent::ExpirySet { expires_at } => {
                    if let Some(k) = self.keys.get_mut(&stream_id) {
                        k.expires_at = Some(*expires_at);
                    }
                }
            },
            _ => {}
        }
    }

    /// The keys that worked at `as_of`: not revoked by then, not expired then.
    pub fn valid_keys(&self, as_of: DateTime<Utc>) -> impl Iterator<Item = (&Uuid, &KeyAccess)> {
        self.keys
            .iter()
            .filter(move |(_, k)| !k.revoked && k.expires_at.is_none_or(|at| at > as_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::{KeyName, OrgName, Scopes, Slug};
    use chrono::TimeZone;

    fn grant(n: u128, minute: u32) -> Grant {
        Grant {
            event_id: Uuid::from_u128(n),
            actor: serde_json::json!({"type": "system"}),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
        }
    }

    #[test]
    fn members_carry_the_event_of_their_current_role() {
        let org = Uuid::from_u128(1);
        let ada = Uuid::from_u128(2);
        let mut r = AccessReview::default();
        let created = OrgEvent::Created {
            name: OrgName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            created_by: None,
        };
        r.apply(org, &AnyEvent::Org(created), grant(10, 0));
        r.apply(
            org,
            &AnyEvent::Org(OrgEvent::MemberAdded {
                user_id: ada,
                role: Role::Member,
            }),
            grant(11, 1),
        );
        assert_eq!(r.members[&ada].granted.event_id, Uuid::from_u128(11));
        r.apply(
            org,
            &AnyEvent::Org(OrgEvent::MemberRoleChanged {
                user_id: ada,
                role: Role::Admin,
            }),
            grant(12, 2),
        );
        assert_eq!(
            (r.members[&ada].role, r.members[&ada].granted.event_id),
            (Role::Admin, Uuid::from_u128(12))
        );
        r.apply(
            org,
            &AnyEvent::Org(OrgEvent::MemberRemoved { user_id: ada }),
            grant(13, 3),
        );
        assert!(r.members.is_empty());
        assert_eq!(r.org, Some(("Acme".into(), "acme".into())));
    }

    #[test]
    fn revoked_and_expired_keys_are_not_valid() {
        let mut r = AccessReview::default();
        let at = |m| Utc.with_ymd_and_hms(2026, 1, 1, 0, m, 0).unwrap();
        for (n, expires_at) in [(1u128, None), (2, Some(at(5))), (3, None)] {
            let created = ApiKeyEvent::Created {
                org_id: Uuid::nil(),
                name: KeyName::parse("k").unwrap(),
                prefix: "vk_123456789".into(),
                key_hash: "h".into(),
                scopes: Scopes::parse(&["x"]).unwrap(),
                expires_at,
                rotated_from: None,
                hash_algorithm: crate::domain::api_key::KeyHashAlgorithm::Sha256,
            };
            r.apply(Uuid::from_u128(n), &AnyEvent::ApiKey(created), grant(n, 0));
        }
        r.apply(
            Uuid::from_u128(3),
            &AnyEvent::ApiKey(ApiKeyEvent::Revoked { reason: None }),
            grant(9, 1),
        );
        let valid: Vec<u128> = r.valid_keys(at(10)).map(|(id, _)| id.as_u128()).collect();
        assert_eq!(valid, [1]);
        let valid: Vec<u128> = r.valid_keys(at(4)).map(|(id, _)| id.as_u128()).collect();
        assert_eq!(valid, [1, 2]);
    }
}
