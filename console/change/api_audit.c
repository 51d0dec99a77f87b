/* GET /api/audit: the console's audit trail, newest first. Role: auditor. */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "console.h"
#include "db.h"

static void get_audit(struct console_http_ctx *ctx)
{
	char *lim = console_http_query_param(ctx, "limit");
	char *action = console_http_query_param(ctx, "action");
	long long n = lim ? api_parse_id(lim) : 100;
	char nbuf[24];

	if (n <= 0 || n > 10000) {
		console_http_reply_error(ctx, 400, "bad_request", "limit: 1..10000");
		goto out;
	}
	snprintf(nbuf, sizeof(nbuf), "%lld", n);
	const char *p[] = {nbuf, action};
	PGresult *r = console_db_query(
	    ctx->c,
	    "SELECT id, " API_TS(
		"ts") " AS ts, identity, role, console, action, target, outcome, "
		      "detail FROM console_audit WHERE ($2::text IS NULL OR action = $2) "
		      "ORDER BY id DESC LIMIT $1::int",
	    2, p);
	if (!r) {
		api_reply_db_down(ctx);
		goto out;
	}
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "audit", api_rows_json(r)));
	PQclear(r);
out:
	free(lim);
	free(action);
}

int api_audit_routes(struct console *c)
{
	return console_http_route(c, "GET", "/api/audit", get_audit, ELS_ROLE_AUDITOR, false);
}
