-- Sessions: owned by the session stream.
CREATE TABLE sessions (
    id                 uuid PRIMARY KEY,
    user_id            uuid        NOT NULL,
    refresh_token_hash text        NOT NULL,
    created_at         timestamptz NOT NULL,
    last_refreshed_at  timestamptz,
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoked_reason     text,
    ip                 text,
    user_agent         text
);
CREATE INDEX sessions_user_active ON sessions (user_id) WHERE revoked_at IS NULL;

-- Public halves of JWT signing keys: owned by the signing_key stream.
CREATE TABLE signing_keys (
    id         uuid PRIMARY KEY,
    kid        text        NOT NULL UNIQUE,
    algorithm  text        NOT NULL,
    public_key text        NOT NULL,
    created_at timestamptz NOT NULL,
    retired_at timestamptz
);

-- Private halves. Not a read model and never in the log: written in the same
-- transaction as signing_key.created, readable only by vouch's database role.
CREATE TABLE signing_key_secrets (
    kid         text PRIMARY KEY,
    private_key bytea       NOT NULL CHECK (length(private_key) = 32),
    created_at  timestamptz NOT NULL
);

-- Sign-in and sign-up attempts for throttling across instances. Not events:
-- look-ups and attempts are counted, decisions are logged.
CREATE TABLE auth_attempts (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind   text        NOT NULL CHECK (kind IN ('signin', 'signup')),
    email  text,
    ip     text,
    -- NULL while the attempt is being checked; counted as a failure until then.
    failed boolean,
    at     timestamptz NOT NULL
);
CREATE INDEX auth_attempts_email ON auth_attempts (kind, email, at);
CREATE INDEX auth_attempts_ip ON auth_attempts (kind, ip, at);
