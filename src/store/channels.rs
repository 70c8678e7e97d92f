//! The NOTIFY channels: a contract between the senders and the listeners that
//! wake on them. No command transaction notifies (see `instance::notifier`).

/// The coalesced notifier announces commits here: the relay, the chainer and
/// every instance's log follower wake on it (each also polls).
pub const EVENTS: &str = "vouch_events";

/// A replay that swapped the read models sends `all` here, in its own
/// transaction: every instance's credential cache empties.
pub const INVALIDATIONS: &str = "vouch_invalidate";
