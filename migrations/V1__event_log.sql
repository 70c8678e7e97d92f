-- The event log: the only source of truth. Append-only.
CREATE TABLE auth_events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL UNIQUE,
    stream_type    text        NOT NULL,
    stream_id      uuid        NOT NULL,
    version        int         NOT NULL CHECK (version >= 1),
    event_type     text        NOT NULL,
    schema_version smallint    NOT NULL DEFAULT 1,
    org_id         uuid,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auth_events_stream_version_key UNIQUE (stream_id, version)
);

-- Commit-safe readers order by (transaction_id, position).
CREATE INDEX auth_events_commit_order ON auth_events (transaction_id, position);
CREATE INDEX auth_events_org_commit_order ON auth_events (org_id, transaction_id, position)
    WHERE org_id IS NOT NULL;

CREATE FUNCTION auth_events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER auth_events_no_update_delete
    BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION auth_events_reject_change();

CREATE TRIGGER auth_events_no_truncate
    BEFORE TRUNCATE ON auth_events
    FOR EACH STATEMENT EXECUTE FUNCTION auth_events_reject_change();
