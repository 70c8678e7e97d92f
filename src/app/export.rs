//! Signed exports of the log: the one use case behind `vouch export` and
//! `GET /v1/audit/export`. The format is `audit::export`'s.

use super::App;
use crate::audit::chainer::CheckpointPolicy;
use crate::audit::export::{self, ExportError, ExportFilter, LineSink};
use crate::audit::key::AuditKey;

/// What signs exports and when the chain signs checkpoints: from the settings,
/// the same for every export of an instance.
#[derive(Clone)]
pub struct ExportSigner {
    /// The audit key.
    pub key: AuditKey,
    /// The chain's checkpoint policy.
    pub policy: CheckpointPolicy,
}

impl std::fmt::Debug for ExportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key's private half stays out of every log line.
        f.debug_struct("ExportSigner")
            .field("key_id", &self.key.key_id())
            .field("policy", &self.policy)
            .finish()
    }
}

impl App {
    /// Chains every event committed before this call (itself when no chainer
    /// runs, else by waiting for it), so that an export started next is
    /// complete as of now. Separate from [`Self::write_export`] so that a
    /// streamed export can fail before its first byte.
    pub async fn prepare_export(&self, signer: &ExportSigner) -> Result<(), ExportError> {
        export::catch_up(&self.pool, &signer.key, signer.policy).await
    }

    /// Writes the chained events matching `filter` to `sink`, then the signed
    /// manifest; returns the event count.
    pub async fn write_export(
        &self,
        signer: &ExportSigner,
        filter: &ExportFilter,
        sink: &mut impl LineSink,
        progress: &dyn Fn(u64),
    ) -> Result<u64, ExportError> {
        let keyring = self.pii.as_ref().ok_or(ExportError::NoPersonalDataKey)?;
        export::export(&self.pool, &signer.key, keyring, filter, sink, progress).await
    }
}
