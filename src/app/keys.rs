//! API-key commands, queries, verification and caller authentication.

use super::{App, AppError, Caller, Ctx, Page, PageCursor};
use crate::auth::api_key::{hashes_equal, PresentedKey};
use crate::domain::api_key::{ApiKey, ApiKeyCommand, NewKey};
use crate::domain::stored::AnyEvent;
use crate::domain::values::{KeyName, Scopes, SCOPE_ADMIN, SCOPE_KEYS_VERIFY, SCOPE_ORG_ADMIN};
use crate::domain::DomainError;
use crate::domain::{Aggregate, StreamType};
use crate::store::api_keys;
use crate::store::api_keys::KeyRow;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Longest rotation grace: 7 days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// A request for a new key, parsed.
#[derive(Debug)]
pub struct KeyRequest {
    /// The key's label, as its creator named it.
    pub name: KeyName,
    /// The scopes the key grants.
    pub scopes: Scopes,
    /// When the key stops working (none: never).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just issued: the only time its plaintext exists outside the caller.
#[derive(Debug)]
pub struct IssuedKey {
    /// The stored key.
    pub row: KeyRow,
    /// The plaintext, to be shown once.
    pub key: PresentedKey,
}

/// The answer to `POST /v1/keys/verify`.
#[derive(Debug)]
pub enum Verification {
    /// The key works now.
    Valid(KeyRow),
    /// It does not: `not_found`, `expired`, `revoked` or `malformed`.
    Invalid(&'static str),
}

/// Whether a key expiring at `expires_at` (`None`: never) ends no later than
/// the caller's own key: a key may not mint a key that outlives it.
fn outlives_nothing(ctx: &Ctx, expires_at: Option<DateTime<Utc>>) -> bool {
    match (ctx.caller.key_expiry(), expires_at) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(own), Some(new)) => new <= own,
    }
}

impl App {
    /// Issues a key in `org_id`.
    pub async fn create_key(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        req: KeyRequest,
    ) -> Result<IssuedKey, AppError> {
        self.standing(ctx, org_id).await?.require_manage()?;
        if !outlives_nothing(ctx, req.expires_at) {
            return Err(DomainError::invalid(
                "expires_at",
                "must be set, and no later than the expiry of the key that creates it",
            )
            .into());
        }
        self.issue_key(ctx, org_id, req, None).await
    }

    pub(crate) async fn issue_key(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        req: KeyRequest,
        rotated_from: Option<Uuid>,
    ) -> Result<IssuedKey, AppError> {
        if req.scopes.has(SCOPE_ADMIN)
            && !(ctx.caller.is_admin() || matches!(ctx.caller, Caller::System))
        {
            return Err(AppError::Forbidden(
                "only a vouch:admin holder mints vouch:admin keys",
            ));
        }
        let key = PresentedKey::generate();
        let id = self.clock.new_id();
        let command = ApiKeyCommand::Create {
            key: Box::new(self.new_key(org_id, &key, req, rotated_from)),
            now: self.clock.now(),
        };
        let recorded = self
            .execute_new::<ApiKey>(ctx, id, Some(org_id), &command)
            .await?;
        let row = recorded
            .iter()
            .find_map(|e| match &e.event {
                AnyEvent::ApiKey(event) => KeyRow::created(&e.envelope, event),
                _ => None,
            })
            .ok_or(AppError::Internal(
                "a key creation recorded no api_key.created".into(),
            ))?;
        Ok(IssuedKey { row, key })
    }

    fn new_key(
        &self,
        org_id: Uuid,
        key: &PresentedKey,
        req: KeyRequest,
        rotated_from: Option<Uuid>,
    ) -> NewKey {
        NewKey {
            org_id,
            name: req.name,
            prefix: key.display_prefix(),
            key_hash: key.hash(),
            scopes: req.scopes,
            expires_at: req.expires_at,
            rotated_from,
        }
    }

    /// A page of the org's keys.
    pub async fn list_keys(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        include_revoked: bool,
        after: Option<PageCursor>,
        limit: i64,
    ) -> Result<Page<KeyRow>, AppError> {
        self.standing(ctx, org_id).await?.require_manage()?;
        let client = self.pool.get().await?;
        let items =
            api_keys::find_keys(&client, org_id, include_revoked, after.map(|c| c.0), limit)
                .await?;
        Ok(Page::by_id(items, limit, |k| k.id))
    }

    /// One key of the org.
    pub async fn get_key(&self, ctx: &Ctx, org_id: Uuid, key_id: Uuid) -> Result<KeyRow, AppError> {
        self.standing(ctx, org_id).await?.require_manage()?;
        self.org_key_row(org_id, key_id).await
    }

    /// Revokes a key; revoking a revoked key changes nothing.
    pub async fn revoke_key(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        key_id: Uuid,
        reason: Option<String>,
    ) -> Result<KeyRow, AppError> {
        self.standing(ctx, org_id).await?.require_manage()?;
        let command = ApiKeyCommand::Revoke { reason };
        self.retrying(async || {
            // The stream first, then the row: the row is at least as new as
            // the stream, and the commit below expects the stream's version,
            // so once it lands the row read here is the state it changed
            // (every key row is its own stream's).
            let client = self.pool.get().await?;
            let loaded = self.load::<ApiKey>(&client, key_id).await?;
            let row = api_keys::find_key(&client, key_id)
                .await?
                .filter(|row| row.org_id == org_id)
                .ok_or(AppError::NotFound)?;
            drop(client);
            let recorded = self
                .decide_and_commit(ctx, key_id, Some(org_id), &loaded, &command)
                .await?;
            Ok(recorded
                .iter()
                .fold(row, |row, e| row.then(&e.envelope, &e.event)))
        })
        .await
    }

    /// Replaces a key with a new one of the same name and scopes; the old one
    /// expires after `grace_seconds`. Both changes commit together.
    pub async fn rotate_key(
        &self,
        ctx: &Ctx,
        org_id: Uuid,
        key_id: Uuid,
        grace_seconds: i64,
    ) -> Result<IssuedKey, AppError> {
        if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(
                DomainError::invalid("grace_seconds", "must be 0 to 604800 (7 days)").into(),
            );
        }
        self.standing(ctx, org_id).await?.require_manage()?;
        let old = self.org_key_row(org_id, key_id).await?;
        let scopes = Scopes::parse(&old.scopes)?;
        if scopes.has(SCOPE_ADMIN) && !ctx.caller.is_admin() {
            return Err(AppError::Forbidden(
                "only a vouch:admin holder mints vouch:admin keys",
            ));
        }
        let name = KeyName::parse(&old.name)?;
        let key = PresentedKey::generate();
        let new_id = self.clock.new_id();
        self.retrying(async || {
            let now = self.clock.now();
            // The new key keeps the old one's lifetime, counted from now; a
            // lifetime that reaches past the last representable time ends there.
            let expires_at = old.expires_at.map(|at| {
                now.checked_add_signed(at - old.created_at)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            });
            if !outlives_nothing(ctx, expires_at) {
                return Err(AppError::Forbidden(
                    "the new key would outlive the key that rotates it",
                ));
            }
            let client = self.pool.get().await?;
            let current = self.load::<ApiKey>(&client, key_id).await?;
            drop(client);
            let grace_end = now + Duration::seconds(grace_seconds);
            let expire = current.state.decide(&ApiKeyCommand::ExpireForRotation {
                expires_at: grace_end,
            })?;
            let req = KeyRequest {
                name: name.clone(),
                scopes: scopes.clone(),
                expires_at,
            };
            let create = ApiKey::default().decide(&ApiKeyCommand::Create {
                key: Box::new(self.new_key(org_id, &key, req, Some(key_id))),
                now,
            })?;
            let changes = [
                self.change(
                    (StreamType::ApiKey, key_id),
                    current.version,
                    Some(org_id),
                    &expire,
                )?,
                self.change((StreamType::ApiKey, new_id), 0, Some(org_id), &create)?,
            ];
            self.commit(ctx, &changes).await
        })
        .await?;
        Ok(IssuedKey {
            row: self.key_row(new_id).await?,
            key,
        })
    }

    /// Checks a presented key for an app (`vouch:keys:verify`, `vouch:org:admin`
    /// or `vouch:admin`). Org keys verify keys of their own org only.
    pub async fn verify_key(&self, ctx: &Ctx, raw: &str) -> Result<Verification, AppError> {
        let own_org = match &ctx.caller {
            c if c.is_admin() => None,
            Caller::ApiKey { org_id, scopes, .. }
                if scopes.has(SCOPE_KEYS_VERIFY) || scopes.has(SCOPE_ORG_ADMIN) =>
            {
                Some(*org_id)
            }
            _ => return Err(AppError::Forbidden("needs vouch:keys:verify")),
        };
        self.check_key(own_org, raw).await
    }

    /// A key valid now and visible from `own_org` (`None`: from everywhere).
    pub(crate) async fn verify_key_for(
        &self,
        own_org: Option<Uuid>,
        raw: &str,
    ) -> Result<Option<KeyRow>, AppError> {
        Ok(match self.check_key(own_org, raw).await? {
            Verification::Valid(row) => Some(row),
            Verification::Invalid(_) => None,
        })
    }

    async fn check_key(&self, own_org: Option<Uuid>, raw: &str) -> Result<Verification, AppError> {
        let Ok(key) = PresentedKey::parse(raw) else {
            return Ok(Verification::Invalid("malformed"));
        };
        let row = match self.find_presented(&key).await? {
            Some(row) if own_org.is_none_or(|own| own == row.org_id) => row,
            _ => return Ok(Verification::Invalid("not_found")),
        };
        let now = self.clock.now();
        Ok(match key_state(&row, now) {
            Ok(()) => {
                self.usage.record(row.id, now);
                Verification::Valid(row)
            }
            Err(code) => Verification::Invalid(code),
        })
    }

    /// Authenticates a caller by API key: any problem is the same 401.
    pub async fn authenticate_key(&self, raw: &str) -> Result<Caller, AppError> {
        let key = PresentedKey::parse(raw).map_err(|_| AppError::Unauthenticated)?;
        let row = self
            .find_presented(&key)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let now = self.clock.now();
        key_state(&row, now).map_err(|_| AppError::Unauthenticated)?;
        let scopes = Scopes::parse(&row.scopes)?;
        self.usage.record(row.id, now);
        Ok(Caller::ApiKey {
            key_id: row.id,
            org_id: row.org_id,
            scopes,
            expires_at: row.expires_at,
        })
    }

    /// The stored key of a presented one: from the cache, else the read model.
    async fn find_presented(&self, key: &PresentedKey) -> Result<Option<KeyRow>, AppError> {
        let hash = key.hash();
        if let Some(row) = self.cache.key(&hash) {
            return Ok(Some(row).filter(|r| hashes_equal(&r.key_hash, &hash)));
        }
        let epoch = self.cache.epoch();
        let client = self.pool.get().await?;
        let row = api_keys::find_key_by_hash(&client, &hash).await?;
        let row = row.filter(|r| hashes_equal(&r.key_hash, &hash));
        if let Some(row) = &row {
            self.cache.fill_key(epoch, row);
        }
        Ok(row)
    }

    async fn org_key_row(&self, org_id: Uuid, key_id: Uuid) -> Result<KeyRow, AppError> {
        let row = self.key_row(key_id).await?;
        if row.org_id == org_id {
            Ok(row)
        } else {
            Err(AppError::NotFound)
        }
    }

    async fn key_row(&self, id: Uuid) -> Result<KeyRow, AppError> {
        let client = self.pool.get().await?;
        api_keys::find_key(&client, id)
            .await?
            .ok_or(AppError::NotFound)
    }
}

/// Whether a key works at `now`: revocation first, then expiry.
fn key_state(row: &KeyRow, now: DateTime<Utc>) -> Result<(), &'static str> {
    if row.revoked_at.is_some() {
        return Err("revoked");
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Err("expired");
    }
    Ok(())
}
