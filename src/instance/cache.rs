//! The credential cache: API keys (by hash), session liveness (by id) and
//! verified access-token signatures in memory, so verifying a key or an access
//! token needs no database round trip and, for a token seen before, no Ed25519.
//!
//! Correctness rests on three rules:
//! - The instance that commits a revocation evicts the entry after its commit
//!   and before it answers, so revocation there is effective at once.
//! - Every instance follows the log (`instance::invalidation`): it reads what
//!   committed since its last read, woken by the coalesced notifier or a short
//!   poll, and evicts what that revoked. The cache serves only while such a
//!   read succeeded within [`FRESH_FOR`]; otherwise every look-up goes to
//!   Postgres. Nothing the crashed process of another instance committed can be
//!   missed: the reads come from the log, not from that process.
//! - A look-up that raced an invalidation does not fill the cache: each fill
//!   carries the invalidation epoch read before its query, and is dropped if
//!   the epoch moved meanwhile (the row read may predate the revocation).
//!
//! Entries also age out after a TTL, a backstop for changes made outside vouch.

use crate::auth::jwt::Claims;
use crate::store::api_keys::KeyRow;
use crate::store::events::TypedEvent;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Payload that empties every cache (after a replay swapped the tables).
pub const ALL: &str = "all";

/// How long one successful read of the log vouches for the cache: with no
/// newer one, nothing is served from memory.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// How far before its creation the cache counts time from.
const ANCHOR_MARGIN: Duration = Duration::from_secs(3600);

/// The stored event types that change what a cached entry says, and what each
/// evicts: the whole mapping, used for local commits and for the log alike.
pub const REVOKING: [(&str, Evicts); 3] = [
    ("api_key.revoked", Evicts::Key),
    ("api_key.expiry_set", Evicts::Key),
    ("session.revoked", Evicts::Session),
];

/// What a revoking event evicts: the stream's key, or its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evicts {
    /// The API key whose stream it is.
    Key,
    /// The session whose stream it is.
    Session,
}

/// How big and how fresh the cache may be.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Whether to cache at all.
    pub enabled: bool,
    /// Most keys and sessions held (each).
    pub max_entries: usize,
    /// Longest an entry is trusted without a look-up.
    pub ttl: Duration,
}

impl CacheLimits {
    /// The limits the settings ask for.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            enabled: settings.credential_cache,
            max_entries: settings.credential_cache_entries,
            ttl: Duration::from_secs(settings.credential_cache_ttl_seconds),
        }
    }
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 200_000,
            ttl: Duration::from_secs(60),
        }
    }
}

/// What is cached of a session: enough to tell whether its tokens are live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLiveness {
    /// Whose session it is.
    pub user_id: Uuid,
    /// Whether it was revoked.
    pub is_revoked: bool,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// An invalidation epoch, read before a look-up and handed back with its fill.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(u64);

struct Entry<T> {
    value: T,
    filled: Instant,
}

/// The cache; one per process, shared by every worker.
pub struct CredentialCache {
    limits: CacheLimits,
    /// When the log was last read, in milliseconds after `anchor` (0: never).
    followed_at: AtomicU64,
    anchor: Instant,
    epoch: AtomicU64,
    keys: RwLock<HashMap<String, Entry<KeyRow>>>,
    key_hashes: RwLock<HashMap<Uuid, String>>,
    sessions: RwLock<HashMap<Uuid, Entry<SessionLiveness>>>,
    tokens: RwLock<HashMap<[u8; 32], Entry<Claims>>>,
    orgs: RwLock<HashSet<Uuid>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("following", &self.is_following())
            .field("keys", &self.len().0)
            .field("sessions", &self.len().1)
            .finish()
    }
}

/// What an event changes for the cache, if anything: `key:<id>` or `session:<id>`.
pub fn invalidation(event_type: &str, stream_id: Uuid) -> Option<String> {
    let (_, evicts) = REVOKING.iter().find(|(t, _)| *t == event_type)?;
    Some(match evicts {
        Evicts::Key => format!("key:{stream_id}"),
        Evicts::Session => format!("session:{stream_id}"),
    })
}

impl CredentialCache {
    /// An empty cache, off until [`Self::caught_up`] says the log was read.
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            followed_at: AtomicU64::new(0),
            // Earlier than any read this cache will be told of.
            anchor: Instant::now()
                .checked_sub(ANCHOR_MARGIN)
                .unwrap_or_else(Instant::now),
            epoch: AtomicU64::new(0),
            keys: RwLock::default(),
            key_hashes: RwLock::default(),
            sessions: RwLock::default(),
            tokens: RwLock::default(),
            orgs: RwLock::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether entries are being served: the log was read within [`FRESH_FOR`].
    pub fn is_following(&self) -> bool {
        match self.followed_at.load(Ordering::SeqCst) {
            0 => false,
            at => self.millis() < at.saturating_add(millis(FRESH_FOR)),
        }
    }

    fn millis(&self) -> u64 {
        millis(self.anchor.elapsed()).saturating_add(1)
    }

    /// Keys and sessions held.
    pub fn len(&self) -> (usize, usize) {
        (
            self.keys.read().map_or(0, |m| m.len()),
            self.sessions.read().map_or(0, |m| m.len()),
        )
    }

    /// Look-ups answered from memory and from the database.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The epoch to hand back with a fill; read it before the database look-up.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    fn is_serving(&self) -> bool {
        self.limits.enabled && self.is_following()
    }

    fn fresh<T: Clone>(&self, entry: Option<&Entry<T>>) -> Option<T> {
        let value = entry
            .filter(|e| e.filled.elapsed() < self.limits.ttl)
            .map(|e| e.value.clone());
        let counter = if value.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        value
    }

    /// The key with this hash, if cached and fresh.
    pub fn key(&self, key_hash: &str) -> Option<KeyRow> {
        if !self.is_serving() {
            return None;
        }
        self.fresh(self.keys.read().ok()?.get(key_hash))
    }

    /// The liveness of this session, if cached and fresh.
    pub fn session(&self, id: Uuid) -> Option<SessionLiveness> {
        if !self.is_serving() {
            return None;
        }
        self.fresh(self.sessions.read().ok()?.get(&id))
    }

    /// The claims of an access token whose signature was verified before, by the
    /// SHA-256 of the token's bytes. Only the signature check is saved: expiry
    /// and the session's liveness are still checked on every use.
    pub fn token(&self, digest: &[u8; 32]) -> Option<Claims> {
        if !self.is_serving() {
            return None;
        }
        self.fresh(self.tokens.read().ok()?.get(digest))
    }

    /// Remembers a verified token's claims. Nothing revokes a signature, so no epoch.
    pub fn fill_token(&self, digest: [u8; 32], claims: &Claims) {
        let Ok(mut tokens) = self.tokens.write() else {
            return;
        };
        if !self.is_serving() || !self.make_room(&mut tokens) {
            return;
        }
        let entry = Entry {
            value: claims.clone(),
            filled: Instant::now(),
        };
        tokens.insert(digest, entry);
    }

    /// Whether the org is known to exist (orgs are never deleted).
    pub fn is_known_org(&self, id: Uuid) -> bool {
        self.is_serving() && self.orgs.read().is_ok_and(|orgs| orgs.contains(&id))
    }

    /// Remembers that the org exists.
    pub fn note_org(&self, id: Uuid) {
        if let Ok(mut orgs) = self.orgs.write() {
            if self.is_serving() && orgs.len() < self.limits.max_entries {
                orgs.insert(id);
            }
        }
    }

    /// Remembers a key read from the database at `epoch`.
    pub fn fill_key(&self, epoch: Epoch, row: &KeyRow) {
        let (Ok(mut keys), Ok(mut ids)) = (self.keys.write(), self.key_hashes.write()) else {
            return;
        };
        // Checked under the write locks: an invalidation bumps the epoch first,
        // then takes these locks to evict, so it cannot slip in between.
        if !self.may_fill(epoch) || !self.make_room(&mut keys) {
            return;
        }
        let entry = Entry {
            value: row.clone(),
            filled: Instant::now(),
        };
        ids.insert(row.id, row.key_hash.clone());
        keys.insert(row.key_hash.clone(), entry);
    }

    /// Remembers a session read from the database at `epoch`.
    pub fn fill_session(&self, epoch: Epoch, id: Uuid, liveness: SessionLiveness) {
        let Ok(mut sessions) = self.sessions.write() else {
            return;
        };
        if !self.may_fill(epoch) || !self.make_room(&mut sessions) {
            return;
        }
        let entry = Entry {
            value: liveness,
            filled: Instant::now(),
        };
        sessions.insert(id, entry);
    }

    fn may_fill(&self, epoch: Epoch) -> bool {
        self.is_serving() && self.epoch.load(Ordering::SeqCst) == epoch.0
    }

    /// Drops stale entries when full; false if still no room.
    fn make_room<K, T>(&self, map: &mut HashMap<K, Entry<T>>) -> bool {
        if map.len() >= self.limits.max_entries {
            let ttl = self.limits.ttl;
            map.retain(|_, e| e.filled.elapsed() < ttl);
        }
        map.len() < self.limits.max_entries
    }

    /// Applies one invalidation payload (from the log or a local commit).
    pub fn invalidate(&self, payload: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match payload.split_once(':') {
            Some(("key", id)) => {
                if let Ok(id) = Uuid::parse_str(id) {
                    self.evict_key(id);
                }
            }
            Some(("session", id)) => {
                if let (Ok(id), Ok(mut sessions)) = (Uuid::parse_str(id), self.sessions.write()) {
                    sessions.remove(&id);
                }
            }
            _ => self.clear(),
        }
    }

    fn evict_key(&self, id: Uuid) {
        if let (Ok(mut keys), Ok(mut ids)) = (self.keys.write(), self.key_hashes.write()) {
            if let Some(hash) = ids.remove(&id) {
                keys.remove(&hash);
            }
        }
    }

    /// Evicts what these just-committed events change, before the caller answers.
    pub fn invalidate_committed(&self, events: &[TypedEvent]) {
        let payloads = events
            .iter()
            .filter_map(|e| invalidation(&e.envelope.event_type, e.envelope.stream_id));
        for payload in payloads {
            self.invalidate(&payload);
        }
    }

    fn clear(&self) {
        if let (Ok(mut keys), Ok(mut ids), Ok(mut sessions), Ok(mut tokens), Ok(mut orgs)) = (
            self.keys.write(),
            self.key_hashes.write(),
            self.sessions.write(),
            self.tokens.write(),
            self.orgs.write(),
        ) {
            keys.clear();
            ids.clear();
            sessions.clear();
            tokens.clear();
            orgs.clear();
        }
    }

    /// Following the log failed: stop serving now and forget everything.
    pub fn suspend(&self) {
        self.followed_at.store(0, Ordering::SeqCst);
        self.invalidate(ALL);
    }

    /// Everything committed up to a read that started at `read_started` has
    /// been applied: serve until [`FRESH_FOR`] after that read started.
    pub fn caught_up(&self, read_started: Instant) {
        let at = millis(read_started.saturating_duration_since(self.anchor)).saturating_add(1);
        self.followed_at.fetch_max(at, Ordering::SeqCst);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: Uuid, hash: &str) -> KeyRow {
        KeyRow {
            id,
            org_id: Uuid::nil(),
            name: "k".into(),
            prefix: "vk_abc".into(),
            key_hash: hash.into(),
            scopes: vec![],
            expires_at: None,
            revoked_at: None,
            rotated_from: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            last_used_at: None,
        }
    }

    fn listening() -> CredentialCache {
        let cache = CredentialCache::new(CacheLimits::default());
        cache.caught_up(Instant::now());
        cache
    }

    #[test]
    fn serves_nothing_until_the_log_was_read() {
        let cache = CredentialCache::new(CacheLimits::default());
        let id = Uuid::from_u128(1);
        cache.fill_key(cache.epoch(), &key(id, "h1"));
        assert!(cache.key("h1").is_none());
        cache.caught_up(Instant::now());
        cache.fill_key(cache.epoch(), &key(id, "h1"));
        assert_eq!(cache.key("h1").map(|k| k.id), Some(id));
    }

    #[test]
    fn a_read_vouches_for_the_cache_only_for_a_while() {
        let cache = CredentialCache::new(CacheLimits::default());
        cache.caught_up(Instant::now() - FRESH_FOR - Duration::from_millis(1));
        assert!(!cache.is_following(), "too old a read");
        cache.caught_up(Instant::now());
        assert!(cache.is_following());
        cache.caught_up(Instant::now() - FRESH_FOR * 2);
        assert!(cache.is_following(), "an older read never moves it back");
    }

    #[test]
    fn the_revoking_types_are_the_stored_names_of_the_revoking_events() {
        use crate::domain::api_key::ApiKeyEvent;
        use crate::domain::session::SessionEvent;
        use crate::domain::DomainEvent;
        let revoked = ApiKeyEvent::Revoked { reason: None };
        let names = [
            revoked.to_stored().map(|(t, _)| t),
            ApiKeyEvent::ExpirySet {
                expires_at: DateTime::<Utc>::UNIX_EPOCH,
            }
            .to_stored()
            .map(|(t, _)| t),
            SessionEvent::Revoked {
                reason: crate::domain::session::RevokeReason::Logout,
            }
            .to_stored()
            .map(|(t, _)| t),
        ];
        let expected: Vec<_> = REVOKING.iter().map(|(t, _)| Ok((*t).to_owned())).collect();
        assert_eq!(
            names
                .into_iter()
                .map(|n| n.map_err(|e| e.to_string()))
                .collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn an_invalidation_evicts_the_key_by_id() {
        let cache = listening();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        cache.fill_key(cache.epoch(), &key(a, "ha"));
        cache.fill_key(cache.epoch(), &key(b, "hb"));
        cache.invalidate(&format!("key:{a}"));
        assert!(cache.key("ha").is_none());
        assert!(cache.key("hb").is_some());
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = listening();
        let id = Uuid::from_u128(1);
        let before = cache.epoch();
        cache.invalidate(&format!("key:{id}"));
        cache.fill_key(before, &key(id, "h1"));
        assert!(cache.key("h1").is_none());
    }

    #[test]
    fn losing_the_listener_empties_and_disables_the_cache() {
        let cache = listening();
        let id = Uuid::from_u128(7);
        let live = SessionLiveness {
            user_id: id,
            is_revoked: false,
            expires_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        cache.fill_session(cache.epoch(), id, live);
        assert_eq!(cache.session(id), Some(live));
        cache.suspend();
        assert!(cache.session(id).is_none());
        cache.caught_up(Instant::now());
        assert!(cache.session(id).is_none(), "resumes empty");
    }

    #[test]
    fn entries_age_out_and_the_size_is_bounded() {
        let cache = CredentialCache::new(CacheLimits {
            enabled: true,
            max_entries: 2,
            ttl: Duration::from_millis(30),
        });
        cache.caught_up(Instant::now());
        for i in 0..3u128 {
            cache.fill_key(cache.epoch(), &key(Uuid::from_u128(i), &format!("h{i}")));
        }
        assert_eq!(cache.len().0, 2);
        assert!(cache.key("h2").is_none(), "no room for a third");
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.key("h0").is_none(), "aged out");
        cache.fill_key(cache.epoch(), &key(Uuid::from_u128(2), "h2"));
        assert!(cache.key("h2").is_some(), "stale entries made room");
    }
}
