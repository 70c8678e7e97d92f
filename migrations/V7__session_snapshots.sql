-- A refresh decides against the session's read model instead of folding its
-- whole stream (a session refreshed every 15 minutes for 30 days holds ~2,900
-- events). What the decision needs of the stream:
--   sessions.version: the stream version the row reflects, the version the
--     refresh's append expects (a concurrent refresh turns into a conflict);
--   session_refresh_tokens: every refresh token the session issued, so that a
--     token that is not the current one is recognised as reused.
-- Both are written by the projections from event values only.
ALTER TABLE sessions ADD COLUMN version int NOT NULL DEFAULT 0;

UPDATE sessions s SET version = v.version
FROM (SELECT stream_id, max(version) AS version FROM auth_events
      WHERE stream_type = 'session' GROUP BY stream_id) v
WHERE v.stream_id = s.id;

CREATE TABLE session_refresh_tokens (
    session_id         uuid NOT NULL,
    refresh_token_hash text NOT NULL,
    PRIMARY KEY (session_id, refresh_token_hash)
);

INSERT INTO session_refresh_tokens (session_id, refresh_token_hash)
SELECT DISTINCT stream_id, data->>'refresh_token_hash' FROM auth_events
WHERE event_type IN ('session.started', 'session.refreshed')
  AND data->>'refresh_token_hash' IS NOT NULL;
