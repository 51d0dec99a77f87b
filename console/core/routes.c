/* c-core's own routes and the registration of every module's routes (routes.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "console.h"
#include "db.h"
#include "els/log.h"
#include "http.h"
#include "routes.h"

/* GET /api/console/instances: the consoles sharing the database, with this one marked. */
static void get_instances(struct console_http_ctx *ctx)
{
	PGresult *r = console_db_query(
	    ctx->c,
	    "SELECT name, to_char(started_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
	    "agents_connected FROM console_instances ORDER BY name",
	    0, NULL);
	if (!r) {
		console_http_reply_error(ctx, 503, "database", "the database is not reachable");
		return;
	}
	json_t *list = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
		    list,
		    json_pack("{s:s,s:s,s:s,s:i,s:b}", "name", PQgetvalue(r, i, 0), "started_at",
			      PQgetvalue(r, i, 1), "last_seen", PQgetvalue(r, i, 2),
			      "agents_connected", atoi(PQgetvalue(r, i, 3)), "this",
			      strcmp(PQgetvalue(r, i, 0), ctx->c->name) == 0));
	PQclear(r);
	console_http_reply_json(ctx, 200,
				json_pack("{s:s,s:i,s:o}", "this", ctx->c->name, "agents_connected",
					  (int)console_agents_count(ctx->c), "instances", list));
}

/* POST /api/console/disconnect {"agent_id": ...}: cuts an agent's session on this instance,
 * e.g. right after revoking its certificate (its next connection meets the new CRL). */
static void post_disconnect(struct console_http_ctx *ctx)
{
	json_t *body = console_http_read_json(ctx, 4096);
	if (!body)
		return;
	const char *id = json_string_value(json_object_get(body, "agent_id"));
	if (!id || !*id) {
		console_http_reply_error(ctx, 400, "bad_request",
					 "agent_id (a string) is required");
		json_decref(body);
		return;
	}
	int rc = console_agents_disconnect(ctx->c, id, "disconnected by an operator");
	console_audit(ctx->c, ctx->identity, ctx->role_name, "agent.disconnect", id,
		      rc == 0 ? "ok" : "not connected here", NULL);
	if (rc == 0)
		console_http_reply_json(ctx, 200, json_pack("{s:s,s:b}", "agent_id", id, "ok", 1));
	else
		console_http_reply_error(ctx, 404, "not_connected",
					 "agent %s holds no session with console %s", id,
					 ctx->c->name);
	json_decref(body);
}

struct agent_call {
	struct console_http_deferred *d;
	char agent[128], cmd[48], identity[128], role[16];
};

static void on_agent_answer(struct console *c, void *arg, json_t *resp, const char *error)
{
	struct agent_call *a = arg;
	const char *code = NULL;
	if (resp && !json_is_true(json_object_get(resp, "ok")))
		code = json_string_value(json_object_get(json_object_get(resp, "error"), "code"));
	console_audit(c, a->identity, a->role, "agent.request", a->agent,
		      !resp  ? "no answer"
		      : code ? code
			     : "ok",
		      json_pack("{s:s,s:s*}", "cmd", a->cmd, "error", resp ? NULL : error));
	if (resp)
		console_http_deferred_json(
		    a->d, 200, json_pack("{s:s,s:O}", "agent_id", a->agent, "response", resp));
	else
		console_http_deferred_error(a->d, 504, "agent", "agent %s: %s", a->agent,
					    error ? error : "no answer");
	free(a);
}

/* POST /api/console/agent-request {"agent_id", "cmd", "args"}: one management request to an
 * agent, wherever it is connected, on behalf of the caller with the caller's own role: the
 * agent applies its role table to it (an auditor cannot apply a policy this way). */
static void post_agent_request(struct console_http_ctx *ctx)
{
	json_t *body = console_http_read_json(ctx, 0);
	if (!body)
		return;
	const char *id = json_string_value(json_object_get(body, "agent_id"));
	const char *cmd = json_string_value(json_object_get(body, "cmd"));
	json_t *args = json_object_get(body, "args");
	if (!id || !*id || strlen(id) >= 128 || !cmd || !*cmd || strlen(cmd) >= 48 ||
	    (args && !json_is_object(args))) {
		console_http_reply_error(ctx, 400, "bad_request",
					 "agent_id and cmd (strings) are required; args must be "
					 "an object");
		json_decref(body);
		return;
	}
	struct agent_call *a = calloc(1, sizeof(*a));
	if (!a || !(a->d = console_http_defer(ctx))) {
		free(a);
		console_http_reply_error(ctx, 500, "internal", "out of memory");
		json_decref(body);
		return;
	}
	snprintf(a->agent, sizeof(a->agent), "%s", id);
	snprintf(a->cmd, sizeof(a->cmd), "%s", cmd);
	snprintf(a->identity, sizeof(a->identity), "%s", ctx->identity);
	snprintf(a->role, sizeof(a->role), "%s", ctx->role_name);
	struct console_principal who = {ctx->identity, ctx->role};
	int rc = console_agent_request(ctx->c, id, cmd, args ? json_incref(args) : NULL, &who, 0,
				       on_agent_answer, a);
	if (rc < 0) {
		console_audit(ctx->c, a->identity, a->role, "agent.request", a->agent,
			      rc == -ENOENT ? "not connected" : "failed",
			      json_pack("{s:s}", "cmd", a->cmd));
		if (rc == -ENOENT)
			console_http_deferred_error(a->d, 404, "not_connected",
						    "agent %s is connected to no console", id);
		else
			console_http_deferred_error(a->d, 503, "unavailable",
						    "the request could not be sent: %s",
						    strerror(-rc));
		free(a);
	}
	json_decref(body);
}

int console_routes_register(struct console *c)
{
	int rc = console_http_route(c, "GET", "/api/console/instances", get_instances,
				    ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/console/disconnect", post_disconnect,
					ELS_ROLE_ADMIN, true);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/console/agent-request", post_agent_request,
					ELS_ROLE_AUDITOR, true);
	if (rc == 0 && console_api_init)
		rc = console_api_init(c);
	if (rc == 0 && console_web_init)
		rc = console_web_init(c);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "http: registering the routes failed: %s", strerror(-rc));
	return rc;
}
