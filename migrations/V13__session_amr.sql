-- How each session was signed in (RFC 8176 `amr` values), for its access
-- tokens, `/v1/me` and introspection. Sessions of the log before it were a
-- password's (session.started v1 is upcast the same way).
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';
