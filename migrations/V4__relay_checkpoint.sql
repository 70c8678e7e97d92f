-- Where each log reader resumes, in commit-safe order. Advanced only after the
-- side effect (the broker's confirm) succeeded, and never backwards.
CREATE TABLE log_checkpoints (
    name           text PRIMARY KEY,
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_checkpoints (name, transaction_id, position) VALUES ('relay', '0', 0);
