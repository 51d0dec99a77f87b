-- els-console, the browser pages' read side (c-web, console/web_*.c): one function per page
-- answer, each returning the JSON document the page fetches, so that every aggregation runs in
-- PostgreSQL and the daemon only passes text through. Applied at every start after
-- 001_core.sql and 002_change.sql; every statement may run again (CREATE OR REPLACE, IF NOT
-- EXISTS).
--
-- The enterprise tables (els_drops, els_admits, els_would_drops: docs/enterprise-schema.sql)
-- belong to els-sweep and may not exist yet when the console starts (els-sweep --init-db
-- creates them): the functions that read them are PL/pgSQL (resolved when called, not when
-- created) and answer empty tables while they are missing; their indexes are created here when
-- the tables exist, so a console restart after the first sweep adds them.

-- Whether port (a listener's) falls within a permit's port spec: '443', '8000-8080',
-- '80,443,8000-8080'; NULL or '' or 'any' is every port. A malformed part matches nothing.
CREATE OR REPLACE FUNCTION console_web_port_in(port integer, spec text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT spec IS NULL OR btrim(spec) IN ('', 'any') OR EXISTS (
		SELECT 1 FROM unnest(string_to_array(spec, ',')) AS part
		WHERE CASE
			WHEN btrim(part) ~ '^[0-9]{1,5}$' THEN port = btrim(part)::integer
			WHEN btrim(part) ~ '^[0-9]{1,5}-[0-9]{1,5}$' THEN
				port BETWEEN split_part(btrim(part), '-', 1)::integer
				         AND split_part(btrim(part), '-', 2)::integer
			ELSE false
		END)
$$;

-- An agent's state on the fleet page: 'silent' when an open drift finding says so, 'drift'
-- for any other open finding, 'ok' otherwise; drift lists the open kinds.
CREATE OR REPLACE VIEW console_web_agent_state AS
	SELECT a.agent_id,
	       CASE WHEN bool_or(d.kind = 'silent') THEN 'silent'
	            WHEN count(d.kind) > 0 THEN 'drift' ELSE 'ok' END AS state,
	       coalesce(array_agg(d.kind ORDER BY d.kind) FILTER (WHERE d.kind IS NOT NULL),
	                '{}') AS drift
	FROM console_agents a
	LEFT JOIN console_drift d ON d.agent_id = a.agent_id AND d.resolved_at IS NULL
	GROUP BY a.agent_id;

-- GET /api/fleet: agents matching group (exact) and q (substring of id, host or version,
-- case-insensitive), counted per state; then those of state, in agent order, at most lim:
-- objects, or with compact arrays of the named columns (policy_sha256 then 12 hex digits).
DROP FUNCTION IF EXISTS console_web_fleet(text, text, text, integer);
CREATE OR REPLACE FUNCTION console_web_fleet(p_state text, p_group text, p_q text, lim integer,
                                             compact boolean)
RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (
	WITH pv AS (
		SELECT grp, sha256, max(version) AS version FROM console_policy_versions GROUP BY 1, 2
	), f AS (
		SELECT a.agent_id, a.host, a.grp, a.version, a.last_seen, a.connected_to,
		       a.policy_sha256, pv.version AS policy_version, s.state, s.drift
		FROM console_agents a
		JOIN console_web_agent_state s USING (agent_id)
		LEFT JOIN pv ON pv.grp = a.grp AND pv.sha256 = a.policy_sha256
		WHERE (p_group IS NULL OR a.grp = p_group)
		  AND (p_q IS NULL OR strpos(lower(a.agent_id), lower(p_q)) > 0
		       OR strpos(lower(coalesce(a.host, '')), lower(p_q)) > 0
		       OR strpos(lower(coalesce(a.version, '')), lower(p_q)) > 0)
	), shown AS (
		SELECT * FROM f WHERE p_state IS NULL OR state = p_state
	)
	SELECT json_build_object(
		'total', (SELECT count(*) FROM f),
		'matching', (SELECT count(*) FROM shown),
		'counts', (SELECT coalesce(json_object_agg(state, n), '{}'::json)
		           FROM (SELECT state, count(*) AS n FROM f GROUP BY state) c),
		'groups', (SELECT coalesce(json_agg(json_build_object('name', g, 'agents', n) ORDER BY g),
		                           '[]'::json)
		           FROM (SELECT grp AS g, count(*) AS n FROM console_agents
		                 WHERE grp IS NOT NULL GROUP BY grp) x),
		'truncated', (SELECT count(*) FROM shown) > lim,
		-- compact (the fleet page): one array per agent in the order of 'columns', a third of
		-- the bytes of objects; else (elsctl, scripts) one object per agent
		'columns', json_build_array('id', 'host', 'group', 'version', 'last_seen', 'connected',
		                            'policy_sha256', 'policy_version', 'state', 'drift'),
		'agents', (SELECT coalesce(json_agg(CASE WHEN compact THEN json_build_array(
				agent_id, host, grp, version, date_trunc('second', last_seen),
				connected_to IS NOT NULL, left(policy_sha256, 12), policy_version, state,
				drift) ELSE json_build_object(
				'id', agent_id, 'host', host, 'group', grp, 'version', version,
				'last_seen', date_trunc('second', last_seen),
				'connected', connected_to IS NOT NULL, 'policy_sha256', policy_sha256,
				'policy_version', policy_version, 'state', state, 'drift', drift) END
				ORDER BY agent_id), '[]'::json)
		           FROM (SELECT * FROM shown ORDER BY agent_id LIMIT lim) r)));
END
$$;

-- Recent records of one agent from an enterprise table, newest first ('[]' while the sweep's
-- tables are missing).
CREATE OR REPLACE FUNCTION console_web_agent_records(p_id text, tbl text, lim integer)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
	r json;
BEGIN
	IF to_regclass(tbl) IS NULL THEN
		RETURN '[]'::json;
	END IF;
	EXECUTE format($q$
		SELECT coalesce(json_agg(json_build_object('ts', ts, 'proto', proto,
			'src', host(src), 'sport', sport, 'dst', host(dst), 'dport', dport,
			'reason', reason, 'rule_name', rule_name, 'packets', %s) ORDER BY ts DESC), '[]'::json)
		FROM (SELECT * FROM %I WHERE agent_id = $1 ORDER BY ts DESC LIMIT $2) x$q$,
		CASE WHEN tbl = 'els_drops' THEN 'packets' ELSE '1' END, tbl)
		INTO r USING p_id, lim;
	RETURN r;
END
$$;

-- GET /api/agents/{id}: NULL when no such agent.
CREATE OR REPLACE FUNCTION console_web_agent(p_id text) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	a console_agents;
	admits json := '[]'::json;
BEGIN
	SELECT * INTO a FROM console_agents WHERE agent_id = p_id;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	IF to_regclass('els_admits') IS NOT NULL THEN
		SELECT coalesce(json_agg(json_build_object('permit', permit, 'flows', flows, 'last', last)
		                         ORDER BY flows DESC, permit), '[]'::json) INTO admits
		FROM (SELECT coalesce(rule_name, '(unnamed)') AS permit, count(*) AS flows, max(ts) AS last
		      FROM els_admits WHERE agent_id = p_id AND ts > now() - interval '7 days'
		      GROUP BY 1) x;
	END IF;
	RETURN json_build_object(
		'agent', json_build_object(
			'id', a.agent_id, 'host', a.host, 'group', a.grp, 'version', a.version,
			'first_seen', a.first_seen, 'last_seen', a.last_seen,
			'connected', a.connected_to IS NOT NULL, 'connected_to', a.connected_to,
			'policy_sha256', a.policy_sha256, 'policy_generation', a.policy_generation,
			'managed', a.managed, 'rules_ok', a.rules_ok, 'monitor_ok', a.monitor_ok,
			'cert_not_after', a.cert_not_after, 'counters', a.counters,
			'state', (SELECT state FROM console_web_agent_state WHERE agent_id = p_id)),
		'policy', (SELECT json_build_object('id', id, 'version', version, 'state', state)
		           FROM console_policy_versions WHERE grp = a.grp AND sha256 = a.policy_sha256
		           ORDER BY version DESC LIMIT 1),
		'approved', (SELECT json_build_object('id', v.id, 'version', v.version, 'sha256', v.sha256)
		             FROM console_deployments d JOIN console_policy_versions v ON v.id = d.version_id
		             WHERE d.grp = a.grp AND d.state <> 'halted'
		             ORDER BY d.id DESC LIMIT 1),
		'drift', (SELECT coalesce(json_agg(json_build_object('kind', kind, 'detail', detail,
		                                                     'since', since) ORDER BY since), '[]'::json)
		          FROM console_drift WHERE agent_id = p_id AND resolved_at IS NULL),
		'permits', (SELECT coalesce(json_agg(json_build_object(
				'id', p->>'id', 'proto', p->>'proto', 'port', p->>'port', 'dir', p->>'dir',
				'registry', (SELECT json_build_object('service', r.service,
					'justification', r.justification, 'owner', r.owner, 'category', r.category,
					'mitigations', r.mitigations, 'reviewed_at', r.reviewed_at,
					'expires_at', r.expires_at)
				             FROM console_registry r WHERE r.id = p->>'id'))
				ORDER BY ord), '[]'::json)
		            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a.permits) = 'array'
		                                           THEN a.permits ELSE '[]'::jsonb END)
		                 WITH ORDINALITY AS x(p, ord)),
		'listeners', (SELECT coalesce(json_agg(json_build_object(
				'proto', l->>'proto', 'addr', l->>'addr', 'port', l->'port',
				'permit', (SELECT p->>'id'
				           FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a.permits) = 'array'
				                                          THEN a.permits ELSE '[]'::jsonb END) p
				           WHERE coalesce(p->>'dir', 'in') = 'in'
				             AND (p->>'proto' = l->>'proto' OR p->>'proto' = 'any')
				             AND (l->>'port') ~ '^[0-9]{1,5}$'
				             AND console_web_port_in((l->>'port')::integer, p->>'port')
				           LIMIT 1))
				ORDER BY ord), '[]'::json)
		              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(a.listeners) = 'array'
		                                             THEN a.listeners ELSE '[]'::jsonb END)
		                   WITH ORDINALITY AS y(l, ord)),
		'drops', console_web_agent_records(p_id, 'els_drops', 50),
		'would_drops', console_web_agent_records(p_id, 'els_would_drops', 50),
		'admits', admits,
		'deployments', (SELECT coalesce(json_agg(json_build_object(
				'deployment_id', d.id, 'version', v.version, 'version_id', v.id,
				'started_by', d.started_by, 'created_at', d.created_at, 'state', d.state,
				'wave', t.wave, 'target_state', t.state, 'error', t.error,
				'sent_at', t.sent_at, 'done_at', t.done_at) ORDER BY d.id DESC), '[]'::json)
		                FROM (SELECT * FROM console_deployment_targets WHERE agent_id = p_id
		                      ORDER BY deployment_id DESC LIMIT 20) t
		                JOIN console_deployments d ON d.id = t.deployment_id
		                JOIN console_policy_versions v ON v.id = d.version_id));
END
$$;

-- One table of GET /api/traffic: {"columns": [...], "rows": [{...}, ...]} for kind over
-- [p_from, p_to). Each aggregates in PostgreSQL; the top lists keep 20 rows, the per-permit
-- list 500 (the registry page shows each entry's hits from it).
CREATE OR REPLACE FUNCTION console_web_traffic_table(kind text, p_from timestamptz,
                                                     p_to timestamptz) RETURNS json
LANGUAGE plpgsql STABLE AS $$
DECLARE
	cols text[];
	tbl text;
	q text;
	r json;
BEGIN
	CASE kind
	WHEN 'drops_by_group' THEN
		cols := '{hour,group,packets}'; tbl := 'els_drops';
		q := $q$SELECT date_trunc('hour', e.ts) AS hour, coalesce(a.grp, '(no group)') AS "group",
		               sum(e.packets) AS packets
		        FROM els_drops e LEFT JOIN console_agents a USING (agent_id)
		        WHERE e.ts >= $1 AND e.ts < $2 GROUP BY 1, 2 ORDER BY 1, 2$q$;
	WHEN 'would_drops' THEN
		cols := '{hour,group,packets}'; tbl := 'els_would_drops';
		q := $q$SELECT date_trunc('hour', e.ts) AS hour, coalesce(a.grp, '(no group)') AS "group",
		               count(*) AS packets
		        FROM els_would_drops e LEFT JOIN console_agents a USING (agent_id)
		        WHERE e.ts >= $1 AND e.ts < $2 GROUP BY 1, 2 ORDER BY 1, 2$q$;
	WHEN 'blocked_ports' THEN
		cols := '{proto,port,packets,agents}'; tbl := 'els_drops';
		q := $q$SELECT proto, dport AS port, sum(packets) AS packets,
		               count(DISTINCT agent_id) AS agents
		        FROM els_drops WHERE ts >= $1 AND ts < $2 AND dport IS NOT NULL
		        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 20$q$;
	WHEN 'blocked_sources' THEN
		cols := '{src,packets,agents,ports}'; tbl := 'els_drops';
		q := $q$SELECT host(src) AS src, sum(packets) AS packets,
		               count(DISTINCT agent_id) AS agents, count(DISTINCT dport) AS ports
		        FROM els_drops WHERE ts >= $1 AND ts < $2 AND src IS NOT NULL
		        GROUP BY src ORDER BY 2 DESC, src LIMIT 20$q$;
	WHEN 'admits_by_permit' THEN
		cols := '{permit,flows,agents}'; tbl := 'els_admits';
		q := $q$SELECT coalesce(rule_name, '(unnamed)') AS permit, count(*) AS flows,
		               count(DISTINCT agent_id) AS agents
		        FROM els_admits WHERE ts >= $1 AND ts < $2
		        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 500$q$;
	ELSE
		RAISE EXCEPTION 'unknown traffic kind %', kind USING ERRCODE = '22023';
	END CASE;
	IF to_regclass(tbl) IS NULL THEN
		r := '[]'::json;
	ELSE
		EXECUTE format('SELECT coalesce(json_agg(t), ''[]''::json) FROM (%s) t', q)
			INTO r USING p_from, p_to;
	END IF;
	RETURN json_build_object('columns', to_json(cols), 'rows', r);
END
$$;

-- GET /api/traffic: every table, or only kind.
CREATE OR REPLACE FUNCTION console_web_traffic(p_kind text, p_from timestamptz, p_to timestamptz)
RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
	out jsonb := jsonb_build_object('from', p_from, 'to', p_to);
	k text;
BEGIN
	FOREACH k IN ARRAY ARRAY['drops_by_group', 'blocked_ports', 'blocked_sources', 'would_drops',
	                         'admits_by_permit'] LOOP
		IF p_kind IS NULL OR p_kind = k THEN
			out := out || jsonb_build_object(k, console_web_traffic_table(k, p_from, p_to)::jsonb);
		END IF;
	END LOOP;
	RETURN out::json;
END
$$;

-- The agent page reads one agent's newest records; the traffic page ranges over ts (the
-- sweep's own indexes). Only when the sweep's tables exist (see the top of this file).
DO $$
BEGIN
	IF to_regclass('els_drops') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS console_web_drops_agent_ts ON els_drops (agent_id, ts);
	END IF;
	IF to_regclass('els_would_drops') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS console_web_would_drops_agent_ts ON els_would_drops (agent_id, ts);
	END IF;
	IF to_regclass('els_admits') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS console_web_admits_agent_ts ON els_admits (agent_id, ts);
	END IF;
END
$$;
