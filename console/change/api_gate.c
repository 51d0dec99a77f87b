/* The health gate at work (api.h, api_deploy_tick): every second, for each live deployment,
 * refresh the canary's pre-apply drop samples, judge the canary (change_gate_decide), open
 * wave 1 on a pass, halt on a failure, and mark a deployment done when every target applied.
 * Transitions are conditional UPDATEs on the old state, so two console instances running the
 * same pass move a deployment once, and only the one that moved it audits and alerts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "els/log.h"

static struct change_gate_params gate_params(const struct console *c)
{
	struct change_gate_params p = change_gate_defaults;

	p.settle_s = c->conf->deploy_health_wait_s;
	p.drop_factor = c->conf->deploy_max_drop_rate_ratio;
	/* The agent port's own limit: an agent silent this long has lost its session. */
	p.lockout_s = c->conf->heartbeat_timeout_s;
	if (p.settle_s + p.lockout_s > p.timeout_s)
		p.timeout_s = p.settle_s + p.lockout_s;
	return p;
}

/* Moves deployment id from state `from` to `to` (with sets, extra SQL for the SET list).
 * true when this call moved it. */
static bool move(struct console *c, const char *id, const char *from, const char *to,
		 const char *reason, bool open_wave1)
{
	const char *p[] = {id, from, to, reason};
	PGresult *r = console_db_query(
	    c,
	    open_wave1 ? "UPDATE console_deployments SET state = $3, open_wave = 1, "
			 "gate_passed_at = now(), updated_at = now(), halt_reason = NULL WHERE "
			 "id = $1::bigint AND state = $2 AND $4::text IS NULL RETURNING grp"
		       : "UPDATE console_deployments SET state = $3, updated_at = now(), "
			 "halt_reason = $4 WHERE id = $1::bigint AND state = $2 RETURNING grp",
	    4, p);
	bool moved = r && PQntuples(r) == 1;
	if (moved) {
		const char *grp = PQgetvalue(r, 0, 0);
		json_t *d =
		    json_pack("{s:s, s:s, s:s}", "deployment_id", id, "from", from, "to", to);
		if (reason)
			json_object_set_new(d, "reason", json_string(reason));
		console_audit(c, "console", "system", "deploy.state", grp,
			      strcmp(to, "halted") == 0 ? "halted" : "ok", d);
		els_log(strcmp(to, "halted") == 0 ? ELS_LL_ERROR : ELS_LL_INFO,
			"deployment %s to group %s: %s -> %s%s%s", id, grp, from, to,
			reason ? ": " : "", reason ? reason : "");
	}
	PQclear(r);
	return moved;
}

static time_t ts(const PGresult *r, int i, int k)
{
	return PQgetisnull(r, i, k) ? 0 : (time_t)atoll(PQgetvalue(r, i, k));
}

static void judge_canary(struct console *c, const char *id, const char *state, const char *sha,
			 time_t started, bool has_rest)
{
	const char *p[] = {id};
	PGresult *r = console_db_query(
	    c,
	    "SELECT t.agent_id, t.state, t.error, extract(epoch FROM t.done_at)::bigint, "
	    "a.connected_to IS NOT NULL, extract(epoch FROM a.last_seen)::bigint, "
	    "a.policy_sha256, t.base_dropped, extract(epoch FROM t.base_at)::bigint, "
	    "t.mid_dropped, extract(epoch FROM t.mid_at)::bigint, "
	    "(a.counters->>'dropped')::bigint, extract(epoch FROM a.last_seen)::bigint "
	    "FROM console_deployment_targets t LEFT JOIN console_agents a USING (agent_id) "
	    "WHERE t.deployment_id = $1::bigint AND t.wave = 0",
	    1, p);
	if (!r)
		return;
	size_t n = (size_t)PQntuples(r);
	struct change_gate_obs *o = calloc(n + 1, sizeof(*o));
	if (!o) {
		PQclear(r);
		return;
	}
	bool all_ok = true;
	for (size_t i = 0; i < n; i++) {
		int k = (int)i;
		o[i] = (struct change_gate_obs){
		    .agent_id = PQgetvalue(r, k, 0),
		    .state =
			(enum change_target_state)change_target_state_parse(PQgetvalue(r, k, 1)),
		    .error = PQgetisnull(r, k, 2) ? NULL : PQgetvalue(r, k, 2),
		    .done_at = ts(r, k, 3),
		    .connected = PQgetvalue(r, k, 4)[0] == 't',
		    .last_seen = ts(r, k, 5),
		    .running_sha256 = PQgetisnull(r, k, 6) ? NULL : PQgetvalue(r, k, 6),
		    .have_base = !PQgetisnull(r, k, 7) && !PQgetisnull(r, k, 8),
		    .base_dropped = atoll(PQgetvalue(r, k, 7)),
		    .base_at = ts(r, k, 8),
		    .have_mid = !PQgetisnull(r, k, 9) && !PQgetisnull(r, k, 10),
		    .mid_dropped = atoll(PQgetvalue(r, k, 9)),
		    .mid_at = ts(r, k, 10),
		    .have_now = !PQgetisnull(r, k, 11) && !PQgetisnull(r, k, 12),
		    .now_dropped = atoll(PQgetvalue(r, k, 11)),
		    .now_at = ts(r, k, 12),
		};
		all_ok &= o[i].state == TARGET_OK;
	}
	struct change_gate_params gp = gate_params(c);
	char why[CHANGE_REASON_LEN];
	enum change_gate g =
	    change_gate_decide(o, n, sha, started, time(NULL), &gp, why, sizeof(why));
	if (g == GATE_FAIL)
		move(c, id, state, "halted", why, false);
	else if (g == GATE_PASS)
		move(c, id, state, has_rest ? "rolling" : "done", NULL, has_rest);
	else if (all_ok && strcmp(state, "canary") == 0)
		move(c, id, "canary", "waiting_health", NULL, false);
	free(o);
	PQclear(r);
}

/* A rolling deployment: halted when a target failed, done when every one applied. */
static void judge_rest(struct console *c, const char *id)
{
	const char *p[] = {id};
	PGresult *r = console_db_query(
	    c,
	    "SELECT count(*) FILTER (WHERE state <> 'ok'), "
	    "min(agent_id || ': ' || coalesce(error, 'apply failed')) FILTER (WHERE state = "
	    "'failed') FROM console_deployment_targets WHERE deployment_id = $1::bigint",
	    1, p);
	if (!r)
		return;
	if (!PQgetisnull(r, 0, 1)) {
		char why[CHANGE_REASON_LEN];
		snprintf(why, sizeof(why), "agent %s", PQgetvalue(r, 0, 1));
		move(c, id, "rolling", "halted", why, false);
	} else if (atoll(PQgetvalue(r, 0, 0)) == 0) {
		move(c, id, "rolling", "done", NULL, false);
	}
	PQclear(r);
}

void api_deploy_tick(struct console *c)
{
	/* the last heartbeat before each canary's apply was answered: the "before" sample */
	console_db_exec(c,
			"UPDATE console_deployment_targets t SET mid_dropped = "
			"(a.counters->>'dropped')::bigint, mid_at = a.last_seen FROM "
			"console_agents a, console_deployments d WHERE a.agent_id = t.agent_id AND "
			"d.id = t.deployment_id AND d.state IN ('canary', 'waiting_health') AND "
			"t.state IN ('pending', 'sent') AND a.last_seen > coalesce(t.mid_at, "
			"'-infinity')",
			0, NULL);
	PGresult *r = console_db_query(
	    c,
	    "SELECT d.id, d.state, v.sha256, extract(epoch FROM d.created_at)::bigint, "
	    "EXISTS (SELECT 1 FROM console_deployment_targets t WHERE t.deployment_id = d.id "
	    "AND t.wave = 1) FROM console_deployments d JOIN console_policy_versions v ON "
	    "v.id = d.version_id WHERE d.state IN ('canary', 'waiting_health', 'rolling') "
	    "ORDER BY d.id",
	    0, NULL);
	if (!r)
		return;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 1);
		if (strcmp(state, "rolling") == 0)
			judge_rest(c, id);
		else
			judge_canary(c, id, state, PQgetvalue(r, i, 2), ts(r, i, 3),
				     PQgetvalue(r, i, 4)[0] == 't');
	}
	PQclear(r);
}
