-- els-console core schema (c-core): agents, groups, the audit trail, console instances.
-- Applied at every start, in file-name order with the other console/sql/*.sql files, each
-- file in one transaction; every statement is idempotent (IF NOT EXISTS), so a restart or a
-- second instance changes nothing. docs/console-schema.md describes the tables.

-- One row per els-console instance sharing this database. last_seen is refreshed every
-- few seconds by the instance; agents_connected is its count of live sessions then.
CREATE TABLE IF NOT EXISTS console_instances (
	name text PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now(),
	agents_connected integer NOT NULL DEFAULT 0
);

-- One row per agent that ever said hello. agent_id is the CN of its certificate (never what
-- the agent claims: a hello whose agent_id differs is refused). connected_to names the
-- console instance holding its session now, NULL while it is disconnected. The state
-- columns are the last hello or heartbeat as the agent reported it.
CREATE TABLE IF NOT EXISTS console_agents (
	agent_id text PRIMARY KEY,
	host text,
	grp text,
	version text,
	first_seen timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now(),
	connected_to text,
	connected_since timestamptz,
	peer text,                       -- address:port the session came from
	policy_sha256 text,
	policy_generation bigint,
	managed boolean,
	rules_ok boolean,
	monitor_ok boolean,
	listeners jsonb,
	permits jsonb,
	counters jsonb,
	agent_time timestamptz,          -- the agent's own clock at its last frame
	cert_not_after timestamptz
);
CREATE INDEX IF NOT EXISTS console_agents_connected_to ON console_agents (connected_to);
CREATE INDEX IF NOT EXISTS console_agents_grp ON console_agents (grp);

-- Groups of agents; canary is the default canary size of a deployment ("2" agents or "10%").
CREATE TABLE IF NOT EXISTS console_groups (
	name text PRIMARY KEY,
	canary text NOT NULL DEFAULT '1',
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Every console action and every refusal: who (certificate identity and role), through which
-- instance, what on what, and how it ended. Append-only for the console.
CREATE TABLE IF NOT EXISTS console_audit (
	id bigserial PRIMARY KEY,
	ts timestamptz NOT NULL DEFAULT now(),
	identity text,
	role text,
	console text,
	action text NOT NULL,
	target text,
	outcome text NOT NULL,
	detail jsonb
);
CREATE INDEX IF NOT EXISTS console_audit_ts ON console_audit (ts);
