/* Staged deployment (CONSOLE.md, console_deployments and _targets): POST /api/deployments
 * starts one (canary wave 0, the rest wave 1), GET /api/deployments[/{id}] shows them, POST
 * /api/groups/{g}/rollback deploys the previous approved version at once. c-core's deployer
 * sends what console_deploy_pending lists; api_deploy_tick() judges the canary with the health
 * gate (change_gate.c), opens wave 1, halts on failure, and marks deployments done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "els/log.h"

#define DEPLOY_COLS                                                                                \
	"d.id, d.grp AS \"group\", d.version_id, v.version, v.sha256, d.started_by, d.state, "     \
	"d.canary, d.open_wave, d.prev_version_id, d.rollback_of, " API_TS(                        \
	    "d.created_at") " AS created_at, " API_TS("d.updated_at") " AS updated_at, " API_TS("d.gate_passed_at") " AS gate_passed_at, d.halt_reason"
#define LIVE_STATES "('canary', 'waiting_health', 'rolling')"

/* {"deployment": {..., "targets": [...]}} for id, or NULL (*missing: no such deployment). */
static json_t *deployment_json(struct console *c, long long id, bool *missing)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", id);
	const char *p[] = {ids};
	PGresult *r = console_db_query(c,
				       "SELECT " DEPLOY_COLS " FROM console_deployments d JOIN "
				       "console_policy_versions v ON v.id = d.version_id "
				       "WHERE d.id = $1::bigint",
				       1, p);
	*missing = r && PQntuples(r) == 0;
	if (!r || *missing) {
		PQclear(r);
		return NULL;
	}
	json_t *d = api_row_json(r, 0);
	PQclear(r);
	r = console_db_query(
	    c,
	    "SELECT agent_id, wave, state, error, " API_TS("sent_at") " AS sent_at, " API_TS(
		"done_at") " AS done_at, sent_by FROM console_deployment_targets "
			   "WHERE deployment_id = $1::bigint ORDER BY wave, agent_id",
	    1, p);
	if (!r) {
		json_decref(d);
		return NULL;
	}
	json_object_set_new(d, "targets", api_rows_json(r));
	PQclear(r);
	return json_pack("{s:o}", "deployment", d);
}

static void get_deployments(struct console_http_ctx *ctx)
{
	long long id = api_parse_id(ctx->rest);
	bool missing = false;

	if (*ctx->rest && !id)
		return console_http_reply_error(ctx, 404, "not_found", "no such resource: %s",
						ctx->path);
	if (id) {
		json_t *o = deployment_json(ctx->c, id, &missing);
		if (o)
			return console_http_reply_json(ctx, 200, o);
		return missing ? console_http_reply_error(ctx, 404, "not_found",
							  "no deployment %lld", id)
			       : api_reply_db_down(ctx);
	}
	char *g = console_http_query_param(ctx, "group");
	const char *p[] = {g};
	PGresult *r =
	    console_db_query(ctx->c,
			     "SELECT " DEPLOY_COLS " FROM console_deployments d JOIN "
			     "console_policy_versions v ON v.id = d.version_id WHERE "
			     "($1::text IS NULL OR d.grp = $1) ORDER BY d.id DESC LIMIT 500",
			     1, p);
	free(g);
	if (!r)
		return api_reply_db_down(ctx);
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "deployments", api_rows_json(r)));
	PQclear(r);
}

/* Creates a deployment of version_id (approved, of group grp) with every agent of the group as
 * a target; canary NULL: no canary (a rollback), every target sent at once. Returns its id,
 * or 0 with the HTTP code and reason set. */
static long long create(struct console *c, const char *grp, const char *version_id,
			const char *canary, const char *started_by, const char *rollback_of,
			const char *prev_version, int *code, char *why, size_t len)
{
	struct change_canary cn = {false, 1};
	const char *bad;
	PGresult *r;
	long long id = 0;

	if (canary && change_canary_parse(canary, &cn, &bad) < 0) {
		snprintf(why, len, "canary \"%s\": %s", canary, bad);
		*code = 400;
		return 0;
	}
	const char *pg[] = {grp};
	r = console_db_query(
	    c, "SELECT id FROM console_deployments WHERE grp = $1 AND state IN " LIVE_STATES, 1,
	    pg);
	if (!r)
		goto db;
	if (PQntuples(r) > 0 && !rollback_of) {
		snprintf(why, len,
			 "deployment %s to group %s is still in progress: wait for it, or roll "
			 "the group back",
			 PQgetvalue(r, 0, 0), grp);
		PQclear(r);
		*code = 409;
		return 0;
	}
	PQclear(r);
	r = console_db_query(c,
			     "SELECT agent_id, connected_to IS NOT NULL FROM console_agents "
			     "WHERE grp = $1",
			     1, pg);
	if (!r)
		goto db;
	size_t n = (size_t)PQntuples(r);
	if (n == 0) {
		snprintf(why, len, "group %s has no agents: nothing to deploy to", grp);
		PQclear(r);
		*code = 409;
		return 0;
	}
	struct change_agent_pick *pick = calloc(n, sizeof(*pick));
	if (!pick) {
		PQclear(r);
		snprintf(why, len, "out of memory");
		*code = 500;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		pick[i] = (struct change_agent_pick){PQgetvalue(r, (int)i, 0),
						     PQgetvalue(r, (int)i, 1)[0] == 't', 0};
	if (canary)
		change_canary_assign(&cn, pick, n);
	/* One transaction: the deployment and all its targets, or nothing. */
	if (console_db_exec(c, "BEGIN", 0, NULL) < 0)
		goto db_free;
	const char *pd[] = {grp,	 version_id,	     started_by,
			    canary,	 canary ? "0" : "1", canary ? "canary" : "rolling",
			    rollback_of, prev_version};
	PGresult *rd = console_db_query(
	    c,
	    "INSERT INTO console_deployments (grp, version_id, started_by, canary, open_wave, "
	    "state, rollback_of, prev_version_id) VALUES ($1, $2::bigint, $3, $4, $5::int, $6, "
	    "$7::bigint, coalesce($8::bigint, (SELECT d.version_id FROM console_deployments d "
	    "WHERE d.grp = $1 AND d.state = 'done' ORDER BY d.id DESC LIMIT 1))) RETURNING id",
	    8, pd);
	if (!rd)
		goto rollback;
	id = atoll(PQgetvalue(rd, 0, 0));
	const char *ids = PQgetvalue(rd, 0, 0);
	/* Every target in one statement (a group of 10,000 agents is one round trip): the
	 * canary chosen above by id, everyone else of the group in wave 1. */
	const char **canary_ids = calloc(n + 1, sizeof(*canary_ids));
	size_t k = 0;
	for (size_t i = 0; canary_ids && i < n; i++)
		if (pick[i].wave == 0)
			canary_ids[k++] = pick[i].agent_id;
	char *arr = canary_ids ? api_text_array(canary_ids, k) : NULL;
	free(canary_ids);
	const char *pt[] = {ids, arr, canary ? "f" : "t", grp};
	int ins =
	    arr ? console_db_exec(c,
				  "INSERT INTO console_deployment_targets (deployment_id, "
				  "agent_id, wave, base_dropped, base_at, mid_dropped, mid_at) "
				  "SELECT $1::bigint, agent_id, CASE WHEN $3::bool OR agent_id = "
				  "ANY($2::text[]) THEN 0 ELSE 1 END, (counters->>'dropped')::"
				  "bigint, last_seen, (counters->>'dropped')::bigint, last_seen "
				  "FROM console_agents WHERE grp = $4",
				  4, pt)
		: -1;
	free(arr);
	if (ins < 0) {
		PQclear(rd);
		id = 0;
		goto rollback;
	}
	PQclear(rd);
	if (console_db_exec(c, "COMMIT", 0, NULL) < 0) {
		id = 0;
		goto db_free;
	}
	free(pick);
	PQclear(r);
	api_notify_deploy(c);
	return id;
rollback:
	console_db_exec(c, "ROLLBACK", 0, NULL);
db_free:
	free(pick);
	PQclear(r);
db:
	snprintf(why, len, "the database is not reachable");
	*code = 503;
	return 0;
}

static void post_deployment(struct console_http_ctx *ctx)
{
	json_t *b = console_http_read_json(ctx, 0);
	char why[CHANGE_REASON_LEN], vid[24];
	int code = 0;

	if (!b)
		return;
	json_t *vj = json_object_get(b, "version_id");
	const char *canary = json_string_value(json_object_get(b, "canary"));
	if (!json_is_integer(vj) || json_integer_value(vj) <= 0) {
		json_decref(b);
		return console_http_reply_error(
		    ctx, 400, "bad_request",
		    "version_id (an integer) is required; canary: \"N\" "
		    "agents or \"P%%\"");
	}
	snprintf(vid, sizeof(vid), "%lld", (long long)json_integer_value(vj));
	const char *p[] = {vid};
	PGresult *r = console_db_query(
	    ctx->c,
	    "SELECT v.grp, v.state, coalesce(g.canary, '1') FROM console_policy_versions v "
	    "LEFT JOIN console_groups g ON g.name = v.grp WHERE v.id = $1::bigint",
	    1, p);
	if (!r) {
		json_decref(b);
		return api_reply_db_down(ctx);
	}
	long long id = 0;
	if (PQntuples(r) == 0) {
		snprintf(why, sizeof(why), "no policy version %s", vid);
		code = 404;
	} else if (strcmp(PQgetvalue(r, 0, 1), "approved") != 0) {
		snprintf(why, sizeof(why),
			 "version %s is %s: only an approved version is deployed (change control)",
			 vid, PQgetvalue(r, 0, 1));
		code = 409;
	} else {
		id = create(ctx->c, PQgetvalue(r, 0, 0), vid, canary ? canary : PQgetvalue(r, 0, 2),
			    ctx->identity, NULL, NULL, &code, why, sizeof(why));
	}
	const char *grp = PQntuples(r) ? PQgetvalue(r, 0, 0) : "-";
	if (!id) {
		console_audit(ctx->c, ctx->identity, ctx->role_name, "deploy.start", grp, "refused",
			      json_pack("{s:s, s:s}", "version_id", vid, "reason", why));
		console_http_reply_error(ctx, code, code == 409 ? "conflict" : "refused", "%s",
					 why);
	} else {
		bool missing;
		console_audit(ctx->c, ctx->identity, ctx->role_name, "deploy.start", grp, "ok",
			      json_pack("{s:I, s:s, s:s}", "deployment_id", (json_int_t)id,
					"version_id", vid, "canary",
					canary ? canary : PQgetvalue(r, 0, 2)));
		els_log(ELS_LL_INFO, "deployment %lld of version %s to group %s started by %s", id,
			vid, grp, ctx->identity);
		json_t *o = deployment_json(ctx->c, id, &missing);
		if (o)
			console_http_reply_json(ctx, 201, o);
		else
			api_reply_db_down(ctx);
	}
	PQclear(r);
	json_decref(b);
}

/* POST /api/groups/{g}/rollback: the version the group's newest deployment replaced. */
static void post_rollback(struct console_http_ctx *ctx)
{
	char grp[80], why[CHANGE_REASON_LEN], prev[24], last[24], cur[24];
	const char *slash = strchr(ctx->rest, '/');
	int code = 0;

	if (!slash || strcmp(slash, "/rollback") != 0 || (size_t)(slash - ctx->rest) >= sizeof(grp))
		return console_http_reply_error(ctx, 404, "not_found", "no such resource: %s",
						ctx->path);
	memcpy(grp, ctx->rest, (size_t)(slash - ctx->rest));
	grp[slash - ctx->rest] = 0;
	if (!api_group_valid(grp))
		return console_http_reply_error(ctx, 400, "bad_request", "not a group name");
	const char *p[] = {grp};
	PGresult *r =
	    console_db_query(ctx->c,
			     "SELECT id, prev_version_id, version_id FROM "
			     "console_deployments WHERE grp = $1 ORDER BY id DESC LIMIT 1",
			     1, p);
	if (!r)
		return api_reply_db_down(ctx);
	if (PQntuples(r) == 0 || PQgetisnull(r, 0, 1)) {
		snprintf(why, sizeof(why),
			 "group %s has no previous approved version to roll back to", grp);
		console_audit(ctx->c, ctx->identity, ctx->role_name, "deploy.rollback", grp,
			      "refused", json_pack("{s:s}", "reason", why));
		PQclear(r);
		return console_http_reply_error(ctx, 409, "conflict", "%s", why);
	}
	snprintf(last, sizeof(last), "%s", PQgetvalue(r, 0, 0));
	snprintf(prev, sizeof(prev), "%s", PQgetvalue(r, 0, 1));
	snprintf(cur, sizeof(cur), "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	/* the deployment in progress stops sending; its targets keep their results */
	const char *pl[] = {grp};
	console_db_exec(ctx->c,
			"UPDATE console_deployments SET state = 'rolled_back', updated_at = now(), "
			"halt_reason = coalesce(halt_reason, 'rolled back') WHERE grp = $1 AND "
			"state IN " LIVE_STATES,
			1, pl);
	long long id =
	    create(ctx->c, grp, prev, NULL, ctx->identity, last, cur, &code, why, sizeof(why));
	if (!id) {
		console_audit(ctx->c, ctx->identity, ctx->role_name, "deploy.rollback", grp,
			      "refused", json_pack("{s:s}", "reason", why));
		return console_http_reply_error(ctx, code, "refused", "%s", why);
	}
	console_audit(ctx->c, ctx->identity, ctx->role_name, "deploy.rollback", grp, "ok",
		      json_pack("{s:I, s:s, s:s}", "deployment_id", (json_int_t)id, "version_id",
				prev, "rolled_back", last));
	els_log(ELS_LL_WARNING, "group %s rolled back to version %s by %s (deployment %lld)", grp,
		prev, ctx->identity, id);
	bool missing;
	json_t *o = deployment_json(ctx->c, id, &missing);
	if (o)
		console_http_reply_json(ctx, 201, o);
	else
		api_reply_db_down(ctx);
}

int api_deploy_routes(struct console *c)
{
	int rc = console_http_route(c, "GET", "/api/deployments", get_deployments, ELS_ROLE_AUDITOR,
				    false);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/deployments", post_deployment,
					ELS_ROLE_ADMIN, true);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/groups/", post_rollback, ELS_ROLE_ADMIN,
					true);
	return rc;
}
