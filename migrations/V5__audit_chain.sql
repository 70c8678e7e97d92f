-- The hash chain over the log in commit-safe order: h_seq = SHA-256(h_{seq-1} || canonical bytes).
CREATE TABLE audit_chain (
    seq            bigint PRIMARY KEY,
    position       bigint NOT NULL UNIQUE,
    transaction_id xid8   NOT NULL,
    hash           bytea  NOT NULL CHECK (length(hash) = 32)
);

-- Signed statements "the chain had `seq` links ending in `head`", made with a key
-- kept outside the database.
CREATE TABLE audit_checkpoints (
    seq            bigint PRIMARY KEY,
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    head           bytea       NOT NULL,
    signed_at      timestamptz NOT NULL,
    key_id         text        NOT NULL,
    public_key     text        NOT NULL,
    signature      text        NOT NULL
);
