-- t_console_web: a fleet for the browser test, written straight into the console's tables
-- (as if agents had said hello) and the enterprise tables (as if swept): 10,000 agents in four
-- groups, drift of every kind, a registry with entries expiring, a deployed and a pending
-- policy version, a finished deployment, and a day of drops, would_drops and admits. Hostile
-- strings stand where agents supply text (host, version, permit ids, listener addresses).
-- psql variable :now_agent names the agent that t_console_web swept from a real elsd. The
-- group lab is held by stand-in agents connected for real (tests/integration/console_agent.py),
-- so that a deployment the browser starts there runs to its end.
BEGIN;

INSERT INTO console_groups (name, canary) VALUES ('web', '2'), ('db', '1'), ('mail', '1'),
	('edge', '10%'), ('lab', '1') ON CONFLICT DO NOTHING;

INSERT INTO console_registry (id, proto, port, service, direction, justification, owner,
	category, mitigations, reviewed_at, expires_at, updated_by) VALUES
	('https', 'tcp', '443', 'https', 'in', 'public web service', 'web team', 'business',
	 'TLS 1.3 only, WAF', current_date - 30, current_date + 300, 'seed'),
	('ssh-admin', 'tcp', '22', 'ssh', 'in', 'administration from the jump hosts', 'ops',
	 'administration', 'keys only, jump hosts', current_date - 200, current_date + 5, 'seed'),
	('smtp', 'tcp', '25', 'smtp', 'in', 'inbound mail', 'mail team', 'business',
	 'greylisting', current_date - 100, current_date + 20, 'seed'),
	('postgres', 'tcp', '5432', 'postgresql', 'in', 'application database', 'dba', 'business',
	 'client certificates', current_date - 10, NULL, 'seed'),
	('dns-old', 'udp', '53', 'domain', 'in', 'legacy resolver', 'ops', 'legacy',
	 NULL, current_date - 400, current_date - 1, 'seed')
	ON CONFLICT DO NOTHING;

-- policy versions: web v1 approved and deployed, web v2 proposed by bob (waiting for a second
-- admin); lab v1 approved and deployed (the click-through test proposes lab v2)
INSERT INTO console_policy_versions (grp, version, body, sha256, author, created_at, approved_by,
	approved_at, state, comment) VALUES
	('web', 1, E'# web v1\nchain = ["header_filter"];\nheader_filter: {\n  permits = (\n    { id = "https"; dir = "in"; proto = "tcp"; local_ports = [443]; }\n  );\n};\n',
	 repeat('a1', 32), 'alice', now() - interval '3 days', 'bob', now() - interval '3 days',
	 'approved', 'first web policy'),
	('web', 2, E'# web v2\nchain = ["header_filter"];\nheader_filter: {\n  permits = (\n    { id = "https"; dir = "in"; proto = "tcp"; local_ports = [443]; },\n    { id = "ssh-admin"; dir = "in"; proto = "tcp"; local_ports = [22]; }\n  );\n};\n',
	 repeat('b2', 32), 'bob', now() - interval '2 hours', NULL, NULL, 'proposed',
	 'ssh from the jump hosts'),
	('lab', 1, E'# lab v1\nchain = ["header_filter"];\nheader_filter: {\n  permits = (\n    { id = "https"; dir = "in"; proto = "tcp"; local_ports = [443]; }\n  );\n};\n',
	 repeat('c3', 32), 'alice', now() - interval '1 day', 'bob', now() - interval '1 day',
	 'approved', 'lab baseline');

-- 10,000 agents: web 6000, db 2000, mail 1500, edge 500
INSERT INTO console_agents (agent_id, host, grp, version, first_seen, last_seen, connected_to,
	policy_sha256, policy_generation, managed, rules_ok, monitor_ok, listeners, permits, counters,
	cert_not_after)
SELECT format('%s-%s', g, lpad(i::text, 5, '0')), format('%s-%s.example.net', g, lpad(i::text, 5, '0')),
	g, CASE WHEN i % 10 = 0 THEN '0.8.1' ELSE '0.9.0' END,
	now() - interval '30 days', now() - (i % 50) * interval '1 second', 'console-1',
	CASE g WHEN 'web' THEN repeat('a1', 32) WHEN 'db' THEN repeat('db', 32) WHEN 'mail' THEN repeat('ba', 32)
	       ELSE repeat('ed', 32) END, 3, true, true, true,
	'[{"proto":"tcp","addr":"0.0.0.0","port":443}]'::jsonb,
	'[{"id":"https","proto":"tcp","port":"443","dir":"in"}]'::jsonb,
	jsonb_build_object('dropped', i * 7 % 1000, 'admitted', i * 13 % 5000, 'would_drop', 0),
	now() + interval '300 days'
FROM (SELECT i, CASE WHEN i <= 6000 THEN 'web' WHEN i <= 8000 THEN 'db' WHEN i <= 9500 THEN 'mail'
	             ELSE 'edge' END AS g FROM generate_series(1, 10000) i) s;

INSERT INTO console_agents (agent_id, host, grp, version, last_seen, connected_to, policy_sha256,
	policy_generation, managed, rules_ok, monitor_ok, listeners, permits, counters) VALUES
	-- agent-supplied strings an attacker controls: they must show as text, never run
	('evil-1', '<img src=x onerror="window.ELS_PWNED=1">', 'edge', '<script>window.ELS_PWNED=2</script>',
	 now(), 'console-1', repeat('ee', 32), 1, true, true, true,
	 '[{"proto":"tcp","addr":"<b>0.0.0.0</b>","port":8443}]',
	 '[{"id":"<svg onload=window.ELS_PWNED=3>","proto":"tcp","port":"8443","dir":"in"}]',
	 '{"dropped":0,"admitted":0,"would_drop":0}')
	ON CONFLICT DO NOTHING;

-- the agent whose monitor file t_console_web swept: in group web
INSERT INTO console_agents (agent_id, host, grp, version, last_seen, connected_to, policy_sha256,
	policy_generation, managed, rules_ok, monitor_ok, listeners, permits, counters)
VALUES (:'now_agent', 'swept.example.net', 'web', '0.9.0', now(), 'console-1', repeat('a1', 32), 2,
	true, true, true,
	'[{"proto":"tcp","addr":"0.0.0.0","port":443},{"proto":"tcp","addr":"0.0.0.0","port":8080}]',
	'[{"id":"https","proto":"tcp","port":"443","dir":"in"}]', '{"dropped":5,"admitted":3,"would_drop":1}')
ON CONFLICT (agent_id) DO UPDATE SET grp = 'web', listeners = EXCLUDED.listeners,
	permits = EXCLUDED.permits;

-- drift of every kind (and the agent state that goes with it)
UPDATE console_agents SET policy_sha256 = repeat('ff', 32) WHERE agent_id IN ('web-00007', 'web-00008', 'web-00009');
UPDATE console_agents SET rules_ok = false WHERE agent_id = 'web-00011';
UPDATE console_agents SET monitor_ok = false WHERE agent_id = 'mail-08003';
UPDATE console_agents SET listeners = listeners || '[{"proto":"tcp","addr":"0.0.0.0","port":8080}]'
	WHERE agent_id IN ('web-00021', 'edge-09501');
UPDATE console_agents SET permits = permits || '[{"id":"dns-old","proto":"udp","port":"53","dir":"in"}]'
	WHERE agent_id = 'db-06010';
UPDATE console_agents SET connected_to = NULL, last_seen = now() - interval '2 days'
	WHERE agent_id IN ('web-00031', 'web-00032', 'edge-09600');
INSERT INTO console_drift (agent_id, kind, detail, since) VALUES
	('web-00007', 'policy', 'runs ffffffffffff, not web v1 as approved', now() - interval '40 minutes'),
	('web-00008', 'policy', 'runs ffffffffffff, not web v1 as approved', now() - interval '35 minutes'),
	('web-00009', 'policy', 'runs ffffffffffff, not web v1 as approved', now() - interval '3 hours'),
	('web-00011', 'rules', 'steering rules missing', now() - interval '12 minutes'),
	('mail-08003', 'monitor', 'monitor chain does not verify', now() - interval '1 day'),
	('web-00021', 'listener', 'tcp 0.0.0.0:8080 listens without a permit', now() - interval '5 hours'),
	('edge-09501', 'listener', 'tcp 0.0.0.0:8080 listens without a permit', now() - interval '6 hours'),
	('db-06010', 'expired_permit', 'permit dns-old expired ' || (current_date - 1), now() - interval '20 hours'),
	('web-00031', 'silent', 'silent for 2 days', now() - interval '1 day'),
	('web-00032', 'silent', 'silent for 2 days', now() - interval '1 day'),
	('edge-09600', 'silent', 'silent for 2 days', now() - interval '1 day'),
	(:'now_agent', 'listener', 'tcp 0.0.0.0:8080 listens without a permit', now() - interval '10 minutes')
	ON CONFLICT DO NOTHING;

-- web v1 deployed to the group: a finished deployment, the first agents as its canary
INSERT INTO console_deployments (grp, version_id, started_by, state, canary, open_wave, created_at,
	updated_at, gate_passed_at)
SELECT 'web', id, 'alice', 'done', '2', 1, now() - interval '3 days', now() - interval '3 days',
	now() - interval '3 days' FROM console_policy_versions WHERE grp = 'web' AND version = 1;
INSERT INTO console_deployment_targets (deployment_id, agent_id, wave, state, sent_at, done_at, sent_by)
SELECT d.id, a.agent_id, CASE WHEN a.agent_id IN ('web-00001', 'web-00002') THEN 0 ELSE 1 END,
	'ok', d.created_at, d.created_at + interval '1 minute', 'console-1'
FROM console_deployments d, console_agents a WHERE d.grp = 'web' AND a.grp = 'web';
INSERT INTO console_deployments (grp, version_id, started_by, state, canary, open_wave, created_at,
	updated_at, gate_passed_at)
SELECT 'lab', id, 'alice', 'done', '1', 1, now() - interval '1 day', now() - interval '1 day',
	now() - interval '1 day' FROM console_policy_versions WHERE grp = 'lab' AND version = 1;
INSERT INTO console_deployment_targets (deployment_id, agent_id, wave, state, sent_at, done_at, sent_by)
SELECT d.id, 'lab-1', 0, 'ok', d.created_at, d.created_at + interval '1 minute', 'console-1'
FROM console_deployments d WHERE d.grp = 'lab';

-- a day of traffic across the fleet (the swept agent's real records come from els-sweep)
INSERT INTO els_drops (agent_id, host, chain_id, seq, ts, ts_ns, mac, dir, family, proto, src,
	sport, dst, dport, tcp_flags, handler, reason, packets)
SELECT a, a || '.example.net', 'seed', i, t, (extract(epoch FROM t) * 1e9)::bigint, '\x00', 'in', 4,
	CASE WHEN i % 9 = 0 THEN 'udp' ELSE 'tcp' END,
	('198.18.' || (i % 7) || '.' || (1 + i % 23))::inet, 40000 + i % 20000, '198.19.0.10'::inet,
	(ARRAY[22, 23, 25, 445, 3389, 8080, 53, 1433])[1 + (i * 7) % 8], 2, 'header_filter', 'no_permit',
	1 + i % 5
FROM (SELECT i, now() - (i % 1440) * interval '1 minute' AS t,
	     CASE WHEN i % 4 = 0 THEN format('db-%s', lpad((6001 + i % 2000)::text, 5, '0'))
	          WHEN i % 4 = 1 THEN format('mail-%s', lpad((8001 + i % 1500)::text, 5, '0'))
	          WHEN i % 8 = 2 THEN format('edge-%s', lpad((9501 + i % 500)::text, 5, '0'))
	          ELSE format('web-%s', lpad((1 + i % 6000)::text, 5, '0')) END AS a
      FROM generate_series(1, 20000) i) s;
INSERT INTO els_would_drops (agent_id, host, chain_id, seq, ts, ts_ns, mac, dir, family, proto, src,
	sport, dst, dport, handler, reason, rule_name)
SELECT format('edge-%s', lpad((9501 + i % 500)::text, 5, '0')), 'edge.example.net', 'seed', i, t,
	(extract(epoch FROM t) * 1e9)::bigint, '\x00', 'in', 4, 'tcp', ('198.18.9.' || (1 + i % 50))::inet,
	50000 + i, '198.19.0.20'::inet, (ARRAY[8443, 8080, 9000])[1 + i % 3], 'header_filter',
	'no_permit', NULL
FROM (SELECT i, now() - (i % 360) * interval '1 minute' AS t FROM generate_series(1, 3000) i) s;
INSERT INTO els_admits (agent_id, host, chain_id, seq, ts, ts_ns, mac, dir, family, proto, src,
	sport, dst, dport, handler, reason, rule_name)
SELECT format('web-%s', lpad((1 + i % 6000)::text, 5, '0')), 'web.example.net', 'seed', i, t,
	(extract(epoch FROM t) * 1e9)::bigint, '\x00', 'in', 4, 'tcp', ('198.18.20.' || (1 + i % 200))::inet,
	30000 + i % 30000, '198.19.0.30'::inet, CASE WHEN i % 5 = 0 THEN 22 ELSE 443 END, 'header_filter',
	'permit', CASE WHEN i % 5 = 0 THEN 'ssh-admin' ELSE 'https' END
FROM (SELECT i, now() - (i % 1440) * interval '1 minute' AS t FROM generate_series(1, 20000) i) s;

-- console actions before the test's own
INSERT INTO console_audit (ts, identity, role, console, action, target, outcome, detail) VALUES
	(now() - interval '3 days', 'alice', 'admin', 'console-1', 'policy.propose', 'web v1', 'ok', NULL),
	(now() - interval '3 days', 'bob', 'admin', 'console-1', 'policy.approve', 'web v1', 'ok', NULL),
	(now() - interval '2 hours', 'bob', 'admin', 'console-1', 'policy.propose', 'web v2', 'ok', NULL);
-- the seeded versions' real hashes, and the agents that run them report those
UPDATE console_agents a SET policy_sha256 = encode(sha256(convert_to(v.body, 'UTF8')), 'hex')
	FROM console_policy_versions v WHERE a.policy_sha256 = v.sha256;
UPDATE console_policy_versions SET sha256 = encode(sha256(convert_to(body, 'UTF8')), 'hex');
COMMIT;
ANALYZE;
