//! The NOTIFY channels: a contract between the append, which notifies at
//! commit, and the listeners that wake on it.

/// Every append notifies here: the relay and the chainer wake on it.
pub const EVENTS: &str = "vouch_events";

/// Revocations committed anywhere: every instance's credential cache drops
/// what the payload names.
pub const INVALIDATIONS: &str = "vouch_invalidate";
