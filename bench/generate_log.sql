-- A large log for replay benchmarks: :events events, 2% org.created and the
-- rest api_key.created spread over those orgs, then VACUUM ANALYZE.
--   psql -v events=1000000 -f bench/generate_log.sql
-- With -v people=N, also N people who signed up and in, as a log written
-- before personal fields were sealed has them (2N events, fields in the clear;
-- `vouch migrate-pii` seals them).
SELECT :events / 50 AS orgs, :events - :events / 50 AS keys \gset
CREATE TEMP TABLE o AS SELECT i, gen_random_uuid() AS id FROM generate_series(1, :orgs) i;
INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, org_id, data, metadata)
SELECT gen_random_uuid(), 'org', id, 1, 'org.created', id,
       jsonb_build_object('name', 'Org ' || i, 'slug', 'org-' || i, 'created_by', null),
       '{"actor": {"type": "system"}}'
FROM o;
INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, schema_version, org_id, data, metadata)
SELECT gen_random_uuid(), 'api_key', gen_random_uuid(), 1, 'api_key.created', 2, o.id,
       jsonb_build_object('org_id', o.id, 'name', 'key ' || k, 'prefix', 'vk_' || substr(md5(k::text), 1, 9),
         'key_hash', md5(k::text) || md5((k + 1)::text), 'scopes', jsonb_build_array('deploy'),
         'expires_at', null, 'hash_algorithm', 'sha256'),
       '{"actor": {"type": "system"}}'
FROM generate_series(1, :keys) k JOIN o ON o.i = 1 + k % :orgs;
\if :{?people}
CREATE TEMP TABLE p AS SELECT i, gen_random_uuid() AS id, gen_random_uuid() AS session FROM generate_series(1, :people) i;
INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata)
SELECT gen_random_uuid(), 'user', id, 1, 'user.registered',
       jsonb_build_object('email', 'person' || i || '@example.org', 'name', 'Person ' || i,
         'password_hash', '$argon2id$v=19$m=19456,t=2,p=1$bench$bench'),
       jsonb_build_object('actor', jsonb_build_object('type', 'anonymous'), 'request_id', 'bench',
         'ip', '198.51.100.' || (i % 250), 'user_agent', 'BenchBrowser/' || (i % 100))
FROM p;
INSERT INTO auth_events (event_id, stream_type, stream_id, version, event_type, data, metadata)
SELECT gen_random_uuid(), 'session', session, 1, 'session.started',
       jsonb_build_object('user_id', id, 'refresh_token_hash', md5(i::text) || md5((i + 7)::text),
         'expires_at', '2099-01-01T00:00:00Z', 'ip', '198.51.100.' || (i % 250),
         'user_agent', 'BenchBrowser/' || (i % 100)),
       jsonb_build_object('actor', jsonb_build_object('type', 'anonymous'), 'request_id', 'bench',
         'ip', '198.51.100.' || (i % 250), 'user_agent', 'BenchBrowser/' || (i % 100))
FROM p;
\endif
VACUUM ANALYZE auth_events;
