-- The deployer's indexes on change control's tables (console/sql/002_change.sql), applied after
-- it. The deployer asks, at every pass, which agents have a target on the wire (state 'sent')
-- and which of those this instance sent: without this index each pass would read every target
-- of every deployment ever made. Nothing happens where change control is not installed.
DO $$
BEGIN
	IF to_regclass('console_deployment_targets') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS console_deployment_targets_sent
			ON console_deployment_targets (agent_id) WHERE state = 'sent';
	END IF;
END
$$;
