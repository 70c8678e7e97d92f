-- `vouch migrate-pii` (docs/personal-data.md) seals the personal fields of a
-- log written before sealing: the one time the log is rewritten. The chain is
-- then recomputed, and the head it replaces is kept here, signed with the
-- audit key, with the checkpoints signed over the old chain.
CREATE TABLE audit_rewrites (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason                  text        NOT NULL,
    replaced_seq            bigint      NOT NULL,
    replaced_transaction_id xid8        NOT NULL,
    replaced_position       bigint      NOT NULL,
    replaced_head           bytea       NOT NULL CHECK (length(replaced_head) = 32),
    rewritten_events        bigint      NOT NULL,
    rewritten_at            timestamptz NOT NULL,
    key_id                  text        NOT NULL,
    public_key              text        NOT NULL,
    signature               text        NOT NULL
);

CREATE TABLE audit_replaced_checkpoints (
    rewrite_id     bigint NOT NULL REFERENCES audit_rewrites (id),
    seq            bigint NOT NULL,
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    head           bytea       NOT NULL,
    signed_at      timestamptz NOT NULL,
    key_id         text        NOT NULL,
    public_key     text        NOT NULL,
    signature      text        NOT NULL,
    PRIMARY KEY (rewrite_id, seq)
);
