/* The browser pages' read endpoints (CONSOLE.md, c-web): GET /api/me, /api/fleet,
 * /api/agents/{id} and /api/traffic (JSON, or one table as CSV). Each is one call of a
 * console_web_* function of console/sql/003_web.sql, which aggregates in PostgreSQL and
 * returns the JSON text the page reads; here the parameters are checked, the query runs
 * without blocking the event loop (web_db.c) and the text is passed through. Every route is
 * readable by an auditor; none changes state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console.h"
#include "http.h"
#include "web.h"

#define FLEET_LIMIT_DEFAULT 20000
#define FLEET_LIMIT_MAX	    100000
#define TRAFFIC_RANGE_MAX   (92 * 86400)

static const char *const traffic_kinds[] = {"drops_by_group", "blocked_ports", "blocked_sources",
					    "would_drops", "admits_by_permit"};

/* The answer of a console_web_* function: its JSON, or 404 (arg: what is missing) when it
 * returned NULL. */
static void json_done(struct console *c, struct console_http_deferred *d, PGresult *r, void *arg)
{
	const char *what = arg;
	(void)c;
	if (!r)
		console_http_deferred_error(d, 503, "database", "the database did not answer");
	else if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
		console_http_deferred_error(d, 404, "not_found", "%s", what);
	else
		console_http_deferred_bytes(d, 200, "application/json", PQgetvalue(r, 0, 0),
					    (size_t)PQgetlength(r, 0, 0), NULL, NULL);
}

/* Runs a console_web_* function without blocking the event loop (web_db.c). */
static void reply_query(struct console_http_ctx *ctx, const char *sql, int n,
			const char *const *params, const char *what)
{
	if (web_db_query(ctx, sql, n, params, json_done, (void *)what) < 0)
		console_http_reply_error(ctx, 500, "internal", "out of memory");
}

static void on_me(struct console_http_ctx *ctx)
{
	console_http_reply_json(ctx, 200,
				json_pack("{s:s, s:s, s:s?}", "identity", ctx->identity, "role",
					  ctx->role_name, "console", ctx->c->name));
}

/* A text parameter: NULL when absent or empty; *bad set (and an error sent) when present but
 * not acceptable. */
static char *text_param(struct console_http_ctx *ctx, const char *name, size_t max, bool *bad)
{
	char *v = console_http_query_param(ctx, name);
	if (v && !*v) {
		free(v);
		return NULL;
	}
	if (v && !web_plain_text(v, max)) {
		console_http_reply_error(ctx, 400, "bad_parameter",
					 "%s: at most %zu characters, no control characters", name,
					 max);
		free(v);
		*bad = true;
		return NULL;
	}
	return v;
}

/* GET /api/fleet?state=ok|drift|silent&group=NAME&q=TEXT&limit=N&compact=1 */
static void on_fleet(struct console_http_ctx *ctx)
{
	bool bad = false;
	char *state = text_param(ctx, "state", 16, &bad);
	char *group = bad ? NULL : text_param(ctx, "group", 255, &bad);
	char *q = bad ? NULL : text_param(ctx, "q", 200, &bad);
	char *limit = bad ? NULL : text_param(ctx, "limit", 16, &bad);
	char *compact = bad ? NULL : text_param(ctx, "compact", 8, &bad);
	char lim[16];
	long n = FLEET_LIMIT_DEFAULT;

	if (bad)
		goto out;
	if (state && strcmp(state, "ok") != 0 && strcmp(state, "drift") != 0 &&
	    strcmp(state, "silent") != 0) {
		console_http_reply_error(ctx, 400, "bad_parameter",
					 "state: one of ok, drift, silent");
		goto out;
	}
	if (limit) {
		char *end;
		errno = 0;
		n = strtol(limit, &end, 10);
		if (errno || *end || end == limit || n < 0 || n > FLEET_LIMIT_MAX) {
			console_http_reply_error(ctx, 400, "bad_parameter", "limit: 0..%d",
						 FLEET_LIMIT_MAX);
			goto out;
		}
	}
	if (compact && strcmp(compact, "0") != 0 && strcmp(compact, "1") != 0) {
		console_http_reply_error(ctx, 400, "bad_parameter", "compact: 0 or 1");
		goto out;
	}
	snprintf(lim, sizeof(lim), "%ld", n);
	const char *params[] = {state, group, q, lim, compact && *compact == '1' ? "t" : "f"};
	reply_query(ctx, "SELECT console_web_fleet($1, $2, $3, $4::integer, $5::boolean)", 5,
		    params, "no fleet");
out:
	free(state);
	free(group);
	free(q);
	free(limit);
	free(compact);
}

/* GET /api/agents/{id} */
static void on_agent(struct console_http_ctx *ctx)
{
	const char *id = ctx->rest;
	if (!web_plain_text(id, 255)) {
		console_http_reply_error(ctx, 400, "bad_agent",
					 "an agent id: 1-255 characters, no control characters");
		return;
	}
	const char *params[] = {id};
	reply_query(ctx, "SELECT console_web_agent($1)", 1, params, "no such agent");
}

static int time_param(struct console_http_ctx *ctx, const char *name, time_t def, time_t *out)
{
	char *v = console_http_query_param(ctx, name);
	int rc = 0;
	if (!v || !*v)
		*out = def;
	else if (web_parse_time(v, out) < 0) {
		console_http_reply_error(ctx, 400, "bad_parameter",
					 "%s: a time like 2026-12-05T01:00:00Z", name);
		rc = -EINVAL;
	}
	free(v);
	return rc;
}

struct traffic_csv {
	char kind[32], from[32], to[32];
};

/* One table of the traffic answer as CSV (arg: struct traffic_csv, freed here). */
static void csv_done(struct console *c, struct console_http_deferred *d, PGresult *r, void *arg)
{
	struct traffic_csv *t = arg;
	json_t *doc = NULL;
	size_t len = 0;
	char *csv = NULL, disp[160];
	(void)c;

	if (!r || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		console_http_deferred_error(d, 503, "database", "the database did not answer");
		goto out;
	}
	doc = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	csv = doc ? web_table_csv(json_object_get(doc, t->kind), &len) : NULL;
	if (!csv) {
		console_http_deferred_error(d, 500, "internal", "the %s table could not be written",
					    t->kind);
		goto out;
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"els-%s-%.10s-%.10s.csv\"", t->kind,
		 t->from, t->to);
	console_http_deferred_bytes(d, 200, "text/csv; charset=utf-8", csv, len,
				    "Content-Disposition", disp);
out:
	json_decref(doc);
	free(csv);
	free(t);
}

/* GET /api/traffic?from=T&to=T&kind=K&format=json|csv: default the last 24 hours, every
 * table; CSV needs one kind. */
static void on_traffic(struct console_http_ctx *ctx)
{
	bool bad = false;
	char *kind = text_param(ctx, "kind", 32, &bad);
	char *format = bad ? NULL : text_param(ctx, "format", 8, &bad);
	time_t now = time(NULL), from, to;
	char from_s[32], to_s[32];
	bool csv = false;

	if (bad)
		goto out;
	if (kind) {
		size_t i = 0;
		while (i < sizeof(traffic_kinds) / sizeof(traffic_kinds[0]) &&
		       strcmp(kind, traffic_kinds[i]) != 0)
			i++;
		if (i == sizeof(traffic_kinds) / sizeof(traffic_kinds[0])) {
			console_http_reply_error(ctx, 400, "bad_parameter",
						 "kind: one of drops_by_group, blocked_ports, "
						 "blocked_sources, would_drops, admits_by_permit");
			goto out;
		}
	}
	if (format && strcmp(format, "csv") == 0)
		csv = true;
	else if (format && strcmp(format, "json") != 0) {
		console_http_reply_error(ctx, 400, "bad_parameter", "format: json or csv");
		goto out;
	}
	if (csv && !kind) {
		console_http_reply_error(ctx, 400, "bad_parameter",
					 "format=csv needs kind= (one table per file)");
		goto out;
	}
	if (time_param(ctx, "to", now, &to) < 0 || time_param(ctx, "from", to - 86400, &from) < 0)
		goto out;
	if (from >= to || to - from > TRAFFIC_RANGE_MAX) {
		console_http_reply_error(ctx, 400, "bad_range",
					 "from must be before to, at most 92 days apart");
		goto out;
	}
	web_format_time(from, from_s, sizeof(from_s));
	web_format_time(to, to_s, sizeof(to_s));
	const char *params[] = {kind, from_s, to_s};
	static const char sql[] =
	    "SELECT console_web_traffic($1, $2::timestamptz, $3::timestamptz)";
	if (!csv) {
		reply_query(ctx, sql, 3, params, "no traffic");
		goto out;
	}
	struct traffic_csv *t = calloc(1, sizeof(*t));
	if (t) {
		snprintf(t->kind, sizeof(t->kind), "%s", kind);
		snprintf(t->from, sizeof(t->from), "%s", from_s);
		snprintf(t->to, sizeof(t->to), "%s", to_s);
	}
	if (!t || web_db_query(ctx, sql, 3, params, csv_done, t) < 0) {
		free(t);
		console_http_reply_error(ctx, 500, "internal", "out of memory");
	}
out:
	free(kind);
	free(format);
}

/* Called by routes.c (weak reference) before the server starts. */
int console_web_init(struct console *c)
{
	int rc = console_web_static_init(c);
	web_db_open(c);
	if (rc == 0)
		rc = console_http_route(c, "GET", "/api/me", on_me, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "GET", "/api/fleet", on_fleet, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc =
		    console_http_route(c, "GET", "/api/agents/", on_agent, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "GET", "/api/traffic", on_traffic, ELS_ROLE_AUDITOR,
					false);
	return rc;
}
