//! Load, decide, append with the inline projections, retry on conflict.

use super::{App, AppError, Ctx};
use crate::domain::stored::AnyEvent;
use crate::domain::{Aggregate, DomainEvent};
use crate::store::append;
use crate::store::events::{self, NewEvent, StreamChange, TypedEvent};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// How often a command is decided again after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// An aggregate as loaded, with the version its next event must follow.
pub(crate) struct Loaded<A> {
    pub state: A,
    pub version: i32,
}

impl App {
    /// Loads one aggregate by folding its stream.
    pub(crate) async fn load<A: Aggregate>(
        &self,
        client: &impl GenericClient,
        stream_id: Uuid,
    ) -> Result<Loaded<A>, AppError> {
        let mut stored = events::read_stream(client, A::STREAM_TYPE, stream_id).await?;
        let payloads = stored
            .iter_mut()
            .map(|e| crate::pii::keyring::StoredPayload {
                event_type: &e.event_type,
                stream_id,
                data: &mut e.data,
                metadata: None,
            })
            .collect();
        self.open(client, payloads).await?;
        let mut state = A::default();
        let mut version = 0;
        for e in stored {
            let data = crate::domain::stored::upcast(&e.event_type, e.schema_version, e.data)
                .map_err(|reason| AppError::Internal(reason.into()))?;
            let event = A::Event::from_stored(&e.event_type, data)
                .map_err(|err| AppError::Internal(Box::new(err)))?;
            state = state.evolve(&event);
            version = e.version;
        }
        Ok(Loaded { state, version })
    }

    /// Turns decided events into a change of one stream.
    pub(crate) fn change<E: DomainEvent + Into<AnyEvent>>(
        &self,
        stream: (crate::domain::StreamType, Uuid),
        expected_version: i32,
        org_id: Option<Uuid>,
        decided: &[E],
    ) -> Result<StreamChange, AppError> {
        let events = decided
            .iter()
            .map(|e| {
                let (event_type, data) = e
                    .to_stored()
                    .map_err(|err| AppError::Internal(Box::new(err)))?;
                Ok(NewEvent {
                    event_id: self.clock.new_id(),
                    event_type,
                    schema_version: e.schema_version(),
                    data,
                    event: e.clone().into(),
                })
            })
            .collect::<Result<_, AppError>>()?;
        Ok(StreamChange {
            stream_type: stream.0,
            stream_id: stream.1,
            expected_version,
            org_id,
            events,
        })
    }

    /// Appends the changes and applies them to the read models in one
    /// transaction, the request's claim written first: one round trip (see
    /// `store::append::commit_pipelined`).
    pub(crate) async fn commit(
        &self,
        ctx: &Ctx,
        changes: &[StreamChange],
    ) -> Result<Vec<TypedEvent>, AppError> {
        let mut recorded = events::record(changes, &ctx.metadata(), self.clock.now());
        let claim = ctx
            .idempotency
            .as_deref()
            .filter(|claim| !claim.is_committed());
        if recorded.is_empty() && claim.is_none() {
            return Ok(recorded);
        }
        let first = claim.map(|c| {
            crate::store::idempotency::claim(&c.scope, &c.key, &c.fingerprint, self.clock.now())
        });
        let client = self.pool.get().await?;
        self.seal(&client, &mut recorded).await?;
        append::commit_pipelined(&client, first, &mut recorded).await?;
        drop(client);
        self.committed(ctx, &recorded);
        Ok(recorded)
    }

    /// What follows every commit: the claim is spent, this instance's cache
    /// forgets what was revoked (before the caller answers; other instances
    /// read it from the log, woken by this instance's notifier or their poll).
    pub(crate) fn committed(&self, ctx: &Ctx, recorded: &[TypedEvent]) {
        if let Some(claim) = &ctx.idempotency {
            claim.mark_committed();
        }
        self.cache.invalidate_committed(recorded);
        if !recorded.is_empty() {
            self.wakeups.committed();
        }
    }

    /// Opens a command's transaction, the request's claim written first: a
    /// concurrent duplicate waits here and then fails before it appends
    /// anything. For commands that read inside the transaction before they
    /// decide; [`Self::finish`] commits it.
    pub(crate) async fn begin<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
        ctx: &Ctx,
    ) -> Result<deadpool_postgres::Transaction<'c>, AppError> {
        let tx = client.transaction().await?;
        if let Some(claim) = &ctx.idempotency {
            self.write_claim(&tx, claim).await?;
        }
        Ok(tx)
    }

    /// Appends and projects the changes in a transaction from [`Self::begin`]
    /// and commits it.
    pub(crate) async fn finish(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        ctx: &Ctx,
        changes: &[StreamChange],
    ) -> Result<Vec<TypedEvent>, AppError> {
        let recorded = self.commit_in(&tx, ctx, changes).await?;
        tx.commit().await?;
        self.committed(ctx, &recorded);
        Ok(recorded)
    }

    /// Appends and projects inside a transaction the caller commits, in one
    /// round trip (see `store::append`).
    pub(crate) async fn commit_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        ctx: &Ctx,
        changes: &[StreamChange],
    ) -> Result<Vec<TypedEvent>, AppError> {
        let mut recorded = events::record(changes, &ctx.metadata(), self.clock.now());
        if recorded.is_empty() {
            return Ok(recorded);
        }
        self.seal(tx, &mut recorded).await?;
        append::append_and_project(tx, &mut recorded).await?;
        Ok(recorded)
    }

    /// Runs `attempt` again from a fresh load while it loses version races.
    pub(crate) async fn retrying<T>(
        &self,
        mut attempt: impl AsyncFnMut() -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        for _ in 1..MAX_ATTEMPTS {
            match attempt().await {
                Err(AppError::VersionConflict) => {
                    tokio::task::yield_now().await;
                }
                outcome => return outcome,
            }
        }
        attempt().await
    }

    /// Decides `command` against a loaded stream and commits what it produced
    /// (nothing for a no-op).
    pub(crate) async fn decide_and_commit<A: Aggregate>(
        &self,
        ctx: &Ctx,
        stream_id: Uuid,
        org_id: Option<Uuid>,
        loaded: &Loaded<A>,
        command: &A::Command,
    ) -> Result<Vec<TypedEvent>, AppError> {
        let decided = loaded.state.decide(command)?;
        if decided.is_empty() {
            return Ok(vec![]);
        }
        let change = self.change(
            (A::STREAM_TYPE, stream_id),
            loaded.version,
            org_id,
            &decided,
        )?;
        self.commit(ctx, &[change]).await
    }

    /// Decides a command that starts a stream under a fresh id: nothing to load,
    /// the stream is empty by construction (an id collision is still a conflict).
    pub(crate) async fn execute_new<A: Aggregate>(
        &self,
        ctx: &Ctx,
        stream_id: Uuid,
        org_id: Option<Uuid>,
        command: &A::Command,
    ) -> Result<Vec<TypedEvent>, AppError> {
        let empty = Loaded {
            state: A::default(),
            version: 0,
        };
        self.decide_and_commit(ctx, stream_id, org_id, &empty, command)
            .await
    }

    /// Decides one command on one stream and commits what it produced.
    /// Returns the recorded events (none for a no-op).
    pub(crate) async fn execute<A: Aggregate>(
        &self,
        ctx: &Ctx,
        stream_id: Uuid,
        org_id: Option<Uuid>,
        command: &A::Command,
    ) -> Result<Vec<TypedEvent>, AppError> {
        self.retrying(async || {
            let client = self.pool.get().await?;
            let loaded = self.load::<A>(&client, stream_id).await?;
            drop(client);
            self.decide_and_commit(ctx, stream_id, org_id, &loaded, command)
                .await
        })
        .await
    }
}
