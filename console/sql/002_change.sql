-- els-console, change control (c-api): the PPS registry, policy versions and their approvals,
-- staged deployments with their per-agent targets, and drift. Applied by els-console at start
-- after 001_core.sql; every statement may run again (IF NOT EXISTS). See docs/console-api.md.

-- The enterprise PPS registry: the single source of approved permits. A header_filter permit
-- in a proposed policy must carry the id of an entry here that has not expired.
CREATE TABLE IF NOT EXISTS console_registry (
	id text PRIMARY KEY,          -- the permit id policies use, e.g. 'https'
	proto text NOT NULL,          -- tcp, udp, icmp, icmpv6, any
	port text,                    -- '443', '8000-8080', '80,443'; NULL: any port / not ported
	service text,                 -- IANA service name or a description
	direction text NOT NULL DEFAULT 'in', -- in or out
	justification text NOT NULL,
	owner text NOT NULL,
	category text,
	mitigations text,
	reviewed_at date,
	expires_at date,              -- NULL: no expiry; valid through that day (UTC)
	updated_by text,              -- certificate identity of the last change
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Policy versions per group: proposed by one admin, approved by another (two-person rule).
CREATE TABLE IF NOT EXISTS console_policy_versions (
	id bigserial PRIMARY KEY,
	grp text NOT NULL,
	version int NOT NULL,          -- 1, 2, ... per group
	body text NOT NULL,            -- the policy document as agents receive it
	sha256 text NOT NULL,          -- of body, hex: what agents report as policy_sha256
	author text NOT NULL,          -- certificate identity of the proposer
	created_at timestamptz NOT NULL DEFAULT now(),
	approved_by text,
	approved_at timestamptz,
	state text NOT NULL DEFAULT 'proposed'
		CHECK (state IN ('proposed', 'approved', 'rejected')),
	parent_id bigint REFERENCES console_policy_versions(id),
	comment text,
	UNIQUE (grp, version)
);

-- Every approval or rejection, with the identity and role from the certificate. With
-- change.approvals > 1 a version needs that many distinct approvers (none its author when
-- change.two_person is on).
CREATE TABLE IF NOT EXISTS console_approvals (
	version_id bigint NOT NULL REFERENCES console_policy_versions(id),
	identity text NOT NULL,
	role text NOT NULL,
	decision text NOT NULL CHECK (decision IN ('approve', 'reject')),
	comment text,
	ts timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (version_id, identity)
);

-- A deployment of an approved version to a group. open_wave says which targets the deployer
-- may send: wave 0 (canary) from the start, wave 1 (the rest) once the health gate passed.
-- The deployer sends nothing of a deployment in a final state (done, halted, rolled_back).
CREATE TABLE IF NOT EXISTS console_deployments (
	id bigserial PRIMARY KEY,
	grp text NOT NULL,
	version_id bigint NOT NULL REFERENCES console_policy_versions(id),
	started_by text NOT NULL,
	state text NOT NULL DEFAULT 'canary'
		CHECK (state IN ('canary', 'waiting_health', 'rolling', 'done', 'halted',
				 'rolled_back')),
	canary text,                  -- as asked: '2' or '10%'
	open_wave int NOT NULL DEFAULT 0,
	prev_version_id bigint REFERENCES console_policy_versions(id), -- what rollback restores
	rollback_of bigint REFERENCES console_deployments(id), -- set on a rollback deployment
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	gate_passed_at timestamptz,
	halt_reason text
);
CREATE INDEX IF NOT EXISTS console_deployments_grp ON console_deployments (grp, id);

-- One row per agent of the group when the deployment started. The health gate's drop-rate
-- samples: base_* when the deployment was created, mid_* at the agent's last heartbeat
-- before its apply was answered.
CREATE TABLE IF NOT EXISTS console_deployment_targets (
	deployment_id bigint NOT NULL REFERENCES console_deployments(id),
	agent_id text NOT NULL,
	wave int NOT NULL,            -- 0 canary, 1 rest
	state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'ok', 'failed')),
	error text,
	sent_at timestamptz,
	done_at timestamptz,
	sent_by text,                 -- the console instance that sent it
	base_dropped bigint,
	base_at timestamptz,
	mid_dropped bigint,
	mid_at timestamptz,
	PRIMARY KEY (deployment_id, agent_id)
);
CREATE INDEX IF NOT EXISTS console_deployment_targets_pending
	ON console_deployment_targets (deployment_id) WHERE state = 'pending';

-- What the deployer may send now: pending targets of live deployments in an open wave, with
-- the document. One view, so every console instance applies the same rule.
CREATE OR REPLACE VIEW console_deploy_pending AS
	SELECT t.deployment_id, t.agent_id, t.wave, v.body, v.sha256, d.started_by
	FROM console_deployment_targets t
	JOIN console_deployments d ON d.id = t.deployment_id
	JOIN console_policy_versions v ON v.id = d.version_id
	WHERE t.state = 'pending' AND t.wave <= d.open_wave
	  AND d.state IN ('canary', 'waiting_health', 'rolling');

-- Drift: one open row per (agent, kind) until the condition clears (resolved_at set).
CREATE TABLE IF NOT EXISTS console_drift (
	id bigserial PRIMARY KEY,
	agent_id text NOT NULL,
	kind text NOT NULL
		CHECK (kind IN ('policy', 'rules', 'listener', 'monitor', 'expired_permit', 'silent')),
	detail text NOT NULL,
	since timestamptz NOT NULL DEFAULT now(),
	resolved_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS console_drift_open
	ON console_drift (agent_id, kind) WHERE resolved_at IS NULL;
