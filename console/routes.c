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
	    "SELECT name, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
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
		    list, json_pack("{s:s,s:s,s:s,s:i,s:b}", "name", PQgetvalue(r, i, 0),
				    "started_at", PQgetvalue(r, i, 1), "last_seen",
				    PQgetvalue(r, i, 2), "agents_connected",
				    atoi(PQgetvalue(r, i, 3)), "this",
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
		console_http_reply_error(ctx, 400, "bad_request", "agent_id (a string) is required");
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

int console_routes_register(struct console *c)
{
	int rc = console_http_route(c, "GET", "/api/console/instances", get_instances,
				    ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/console/disconnect", post_disconnect,
					ELS_ROLE_ADMIN, true);
	if (rc == 0 && console_api_init)
		rc = console_api_init(c);
	if (rc == 0 && console_web_init)
		rc = console_web_init(c);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "http: registering the routes failed: %s", strerror(-rc));
	return rc;
}
