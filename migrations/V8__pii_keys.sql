-- Personal data is encrypted per person (docs/personal-data.md). Neither table
-- is the log, and neither is rebuilt by replay.
--   pii_kek: the fingerprint of the key-encryption key in VOUCH_PII_KEY_FILE,
--     recorded on first start, so that a wrong, lost or foreign key file is
--     refused instead of producing garbage;
--   pii_subject_keys: each person's data key, wrapped by that key; erasure sets
--     wrapped_key to NULL and stamps erased_at.
CREATE TABLE pii_kek (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    fingerprint text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pii_subject_keys (
    subject_id  uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
