-- The database's own ceiling for a key creation: the same two inserts in one
-- durable transaction, sent in one pipeline as vouch sends them (pgbench -M
-- prepared), without vouch. No NOTIFY: vouch's commands send none.
\set n random(1, 1000000000)
\startpipeline
BEGIN;
INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, schema_version, org_id, data, metadata)
VALUES (gen_random_uuid(), 'api_key', gen_random_uuid(), 1, 'api_key.created', 2, '00000000-0000-0000-0000-000000000001',
  jsonb_build_object('name', 'load key', 'prefix', 'vk_' || :n, 'key_hash', md5(:n::text || random()::text), 'scopes', jsonb_build_array('deploy')),
  '{"actor": {"type": "api_key"}}');
INSERT INTO api_keys (id, org_id, name, prefix, key_hash, scopes, created_at)
VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'load key', 'vk_' || :n, md5(:n::text || random()::text), ARRAY['deploy'], now());
COMMIT;
\endpipeline
