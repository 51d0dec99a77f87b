-- The enterprise database that els-sweep fills (PostgreSQL 12 or later).
-- Apply once, as a role that may create tables:  els-sweep --init-db  (or psql -f this file).
-- els-sweep --print-schema prints this text; every statement may be run again safely.
--
-- One table per record kind. Every row names its agent (agent_id, host) and its place in
-- that agent's chain: chain_id names one monitor file (a new one starts when the file is
-- replaced), seq is the record's sequence number in it, mac its chained HMAC-SHA256 (see
-- docs/forensics.md: with the agent's key, the chain can be verified here as well).
-- (agent_id, chain_id, seq) is unique in each table, and els-sweep inserts with
-- ON CONFLICT DO NOTHING: a sweep run twice, or re-run after a crash, adds nothing twice.
--
-- Least privilege for the sweep's role:
--   CREATE ROLE els_sweep LOGIN;
--   GRANT SELECT, INSERT ON els_drops, els_admits, els_would_drops, els_accepts, els_flow_ends,
--         els_half_opens, els_events, els_gaps, els_sweeps, els_findings TO els_sweep;
--   GRANT USAGE ON SEQUENCE els_findings_id_seq TO els_sweep;

-- Dropped packets, aggregated per key and second on the agent: `packets` of them.
CREATE TABLE IF NOT EXISTS els_drops (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,      -- the (first) packet's time, microseconds
	ts_ns bigint NOT NULL,        -- the same, nanoseconds since 1970 UTC, as recorded
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,                     -- 'in' (to the agent's host) or 'out'
	family smallint,              -- 4 or 6; NULL for packets too broken to have one
	proto text,                   -- 'tcp', 'udp', 'icmp', 'icmpv6', or the number
	src inet,
	sport integer,                -- NULL when the protocol has no ports
	dst inet,
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,                 -- which handler decided ('iplist', 'header_filter', ...)
	reason text,                  -- why ('no_permit', 'deny_list', ...)
	rule integer,
	rule_name text,
	generation bigint,            -- the agent's policy generation
	packets bigint NOT NULL,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_drops_ts ON els_drops (ts);
CREATE INDEX IF NOT EXISTS els_drops_src ON els_drops (src);

-- The first packet of each admitted flow.
CREATE TABLE IF NOT EXISTS els_admits (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,
	family smallint,
	proto text,
	src inet,                     -- the flow's initiator
	sport integer,
	dst inet,                     -- the responder
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,
	reason text,
	rule integer,
	rule_name text,
	generation bigint,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_admits_ts ON els_admits (ts);

-- Observe mode: packets that were passed but that the policy would have dropped (handler,
-- reason and rule say which part of the policy), one row per packet.
CREATE TABLE IF NOT EXISTS els_would_drops (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,
	family smallint,
	proto text,
	src inet,
	sport integer,
	dst inet,
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,
	reason text,
	rule integer,
	rule_name text,
	generation bigint,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_would_drops_ts ON els_would_drops (ts);

-- TCP flows admitted by a permit that ended before their handshake completed (a SYN flood's,
-- or a connection refused), aggregated on the agent per second, direction, destination,
-- port, reason and permit over all sources: `flows` of them. src and sport are NULL.
CREATE TABLE IF NOT EXISTS els_half_opens (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,      -- when the first of them ended
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,
	family smallint,
	proto text,
	src inet,                     -- NULL: many sources
	sport integer,
	dst inet,                     -- the responder
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,                 -- the admitting handler
	reason text,                  -- how they ended: 'flow_timeout', 'flow_closed', ...
	rule integer,
	rule_name text,               -- the admitting permit
	generation bigint,
	flows bigint NOT NULL,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_half_opens_ts ON els_half_opens (ts);

-- Every accepted packet: only from agents with monitor.log = "all" (debugging).
CREATE TABLE IF NOT EXISTS els_accepts (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,
	family smallint,
	proto text,
	src inet,
	sport integer,
	dst inet,
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,
	reason text,
	rule integer,
	rule_name text,
	generation bigint,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_accepts_ts ON els_accepts (ts);

-- Flows that ended (closed, timed out, evicted, revoked, shutdown), with their counts.
CREATE TABLE IF NOT EXISTS els_flow_ends (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	dir text,
	family smallint,
	proto text,
	src inet,                     -- the flow's initiator
	sport integer,
	dst inet,                     -- the responder
	dport integer,
	icmp_type smallint,
	icmp_code smallint,
	tcp_flags smallint,
	handler text,
	reason text,                  -- why it ended ('flow_timeout', 'flow_closed', ...)
	rule integer,
	rule_name text,               -- the rule that admitted it
	generation bigint,
	pkts_init bigint,             -- packets from the initiator
	pkts_resp bigint,             -- packets from the responder
	bytes_init bigint,            -- IP bytes from the initiator
	bytes_resp bigint,
	duration_ns bigint,           -- first to last packet
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_flow_ends_ts ON els_flow_ends (ts);

-- Agent events: start, stop, reloads, the monitor's own alerts (size cap, findings at open).
CREATE TABLE IF NOT EXISTS els_events (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	handler text,                 -- 'elsd' or 'monitor'
	reason text,
	generation bigint,
	detail text,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_events_ts ON els_events (ts);

-- Records the agent could not write: full rings, write errors, the size cap. `records`
-- of them are missing at this point of the chain; detail says where and why.
CREATE TABLE IF NOT EXISTS els_gaps (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint NOT NULL,
	ts timestamptz NOT NULL,
	ts_ns bigint NOT NULL,
	mac bytea NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	records bigint NOT NULL,
	detail text,
	UNIQUE (agent_id, chain_id, seq)
);
CREATE INDEX IF NOT EXISTS els_gaps_ts ON els_gaps (ts);

-- One row per committed sweep batch, in the same transaction as its records: where the
-- next sweep of that chain starts, and the MAC it must chain on. A file that later shows
-- less than this (truncated, rolled back, replaced by an older copy) is reported.
CREATE TABLE IF NOT EXISTS els_sweeps (
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	first_seq bigint NOT NULL,
	last_seq bigint NOT NULL,
	last_mac bytea NOT NULL,
	records integer NOT NULL,
	swept_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (agent_id, chain_id, last_seq)
);

-- What verification found while sweeping: the first altered, inserted or deleted record, a
-- truncated file, records deleted before they were swept.
CREATE TABLE IF NOT EXISTS els_findings (
	id bigserial PRIMARY KEY,
	agent_id text NOT NULL,
	host text NOT NULL,
	chain_id text NOT NULL,
	seq bigint,
	finding text NOT NULL,        -- 'altered', 'inserted', 'deleted', 'truncated', 'meta', ...
	detail text NOT NULL,
	found_at timestamptz NOT NULL DEFAULT now()
);

-- Everything of one agent in order, for reading: kind, time, the common columns.
CREATE OR REPLACE VIEW els_records AS
	SELECT agent_id, host, chain_id, seq, ts, 'drop' AS kind, proto, src, sport, dst, dport,
	       handler, reason, rule_name, packets AS count, NULL AS detail FROM els_drops
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'admit', proto, src, sport, dst, dport,
	       handler, reason, rule_name, 1, NULL FROM els_admits
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'would_drop', proto, src, sport, dst, dport,
	       handler, reason, rule_name, 1, NULL FROM els_would_drops
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'accept', proto, src, sport, dst, dport,
	       handler, reason, rule_name, 1, NULL FROM els_accepts
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'flow_end', proto, src, sport, dst, dport,
	       handler, reason, rule_name, 1, NULL FROM els_flow_ends
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'half_open', proto, src, sport, dst, dport,
	       handler, reason, rule_name, flows, NULL FROM els_half_opens
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'event', NULL, NULL, NULL, NULL, NULL,
	       handler, reason, NULL, 1, detail FROM els_events
	UNION ALL
	SELECT agent_id, host, chain_id, seq, ts, 'gap', NULL, NULL, NULL, NULL, NULL,
	       NULL, NULL, NULL, records, detail FROM els_gaps;
