-- Responses of requests sent with an Idempotency-Key (API.md "Safe retries").
-- Not a read model: nothing here is derived from the log, and replay leaves it
-- alone. A row is inserted in the same transaction as the command's events, so
-- a command and its claim commit together or not at all; the response follows
-- right after the commit, sealed (see docs/idempotency.md).
CREATE TABLE idempotency_records (
    scope       text        NOT NULL,  -- the caller: key:<id> | user:<id> | anonymous
    key         text        NOT NULL,  -- the client's Idempotency-Key
    fingerprint bytea       NOT NULL,  -- keyed hash of method, path and body
    created_at  timestamptz NOT NULL,
    status      smallint,              -- null until the response is stored
    response    bytea,                 -- sealed status line, headers and body
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
