-- Passkeys (docs/mfa.md).

-- The passkeys of users: a projection of user.passkey_* events. The
-- credential itself (public key, counter) lives only in the log, sealed; the
-- credential id is what an assertion names, unique among all users.
CREATE TABLE passkeys (
    id              uuid PRIMARY KEY,
    user_id         uuid        NOT NULL,
    name            text,
    credential_id   text        NOT NULL,
    backup_eligible boolean     NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);

-- Sign-in asks for a second factor when an app is enrolled or a passkey is
-- held: both are kept, and mfa_enabled follows them.
ALTER TABLE users ADD COLUMN totp_enabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN passkey_count integer NOT NULL DEFAULT 0;
UPDATE users SET totp_enabled = mfa_enabled;

-- The state of a WebAuthn ceremony between its two requests (options, then
-- the authenticator's answer): sealed with a key outside the database, used
-- once (deleted by the request that finishes it), gone once expired. Not a
-- read model: nothing in the log rebuilds it.
CREATE TABLE passkey_ceremonies (
    id           uuid PRIMARY KEY,
    purpose      text        NOT NULL CHECK (purpose IN ('registration', 'sign_in', 'second_factor')),
    user_id      uuid,
    state        bytea       NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX passkey_ceremonies_expires_at ON passkey_ceremonies (expires_at);

-- Passkey sign-ins started, per client address (keyed indexes, never addresses).
ALTER TABLE auth_attempts DROP CONSTRAINT auth_attempts_kind_check;
ALTER TABLE auth_attempts ADD CONSTRAINT auth_attempts_kind_check
    CHECK (kind IN ('signin', 'signup', 'mail', 'token', 'ceremony'));
