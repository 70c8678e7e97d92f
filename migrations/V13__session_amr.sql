-- How each session was signed in (RFC 8176 `amr` values), for its access
-- tokens, `/v1/me` and introspection. Sessions of the log before it were a
-- password's (session.started v1 is upcast the same way).
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';

-- Whether sign-in asks the user for a second factor (user.totp_enabled until
-- user.totp_disabled).
ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false;
