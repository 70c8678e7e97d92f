-- auth_attempts holds keyed indexes (HMAC-SHA256 under a key derived from
-- VOUCH_PII_KEY_FILE, hex) of emails and addresses from now on, never the
-- values (docs/personal-data.md). Rows written before hold plaintext: they
-- only matter for the throttles' windows (at most 15 minutes by default), so
-- they go.
DELETE FROM auth_attempts;
