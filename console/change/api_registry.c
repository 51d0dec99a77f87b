/* The enterprise PPS registry (CONSOLE.md, console_registry): GET /api/registry (auditor) and
 * POST /api/registry (admin: add or replace one entry). Every change is audited with the
 * certificate identity; a bad field is refused naming it. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"

static void get_registry(struct console_http_ctx *ctx)
{
	PGresult *r = console_db_query(
	    ctx->c,
	    "SELECT id, proto, port, service, direction, justification, owner, category, "
	    "mitigations, reviewed_at::text AS reviewed_at, expires_at::text AS expires_at, "
	    "(expires_at IS NOT NULL AND expires_at < (now() AT TIME ZONE 'UTC')::date) AS "
	    "expired, "
	    "updated_by, " API_TS("updated_at") " AS updated_at FROM console_registry ORDER BY id",
	    0, NULL);
	if (!r)
		return api_reply_db_down(ctx);
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "entries", api_rows_json(r)));
	PQclear(r);
}

static const char *str(json_t *b, const char *k)
{
	const char *s = json_string_value(json_object_get(b, k));
	return s && *s ? s : NULL;
}

/* The first problem with entry b, in words, or NULL. */
static const char *check_entry(json_t *b, char *why, size_t len)
{
	static const char *const protos[] = {"tcp", "udp", "icmp", "icmpv6", "any", NULL};
	static const char *const fields[] = {
	    "id",    "proto",	 "port",	"service",     "direction",  "justification",
	    "owner", "category", "mitigations", "reviewed_at", "expires_at", NULL};
	const char *key;
	json_t *v;
	time_t t;

	json_object_foreach(b, key, v)
	{
		bool known = false;
		for (int i = 0; fields[i] && !known; i++)
			known = strcmp(fields[i], key) == 0;
		if (!known)
			return snprintf(why, len, "unknown field '%s'", key), why;
		if (!json_is_string(v) && !json_is_null(v))
			return snprintf(why, len, "'%s' must be a string", key), why;
	}
	const char *id = str(b, "id"), *proto = str(b, "proto"), *dir = str(b, "direction");
	if (!id || strlen(id) > 128 || strpbrk(id, " \t\r\n\"'\\"))
		return "'id' is required: the permit id policies use (1..128 characters, no "
		       "spaces or quotes)";
	bool ok = false;
	for (int i = 0; proto && protos[i] && !ok; i++)
		ok = strcmp(proto, protos[i]) == 0;
	if (!ok)
		return "'proto' must be tcp, udp, icmp, icmpv6 or any";
	if (str(b, "port") && change_ports_cover(str(b, "port"), 0, 0) < 0)
		return "'port' must be a port list such as \"443\", \"8000-8080\" or \"80,443\"";
	if (dir && strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0)
		return "'direction' must be \"in\" or \"out\"";
	if (!str(b, "justification"))
		return "'justification' is required: why this port, protocol or service is open";
	if (!str(b, "owner"))
		return "'owner' is required: who answers for this permit";
	if (str(b, "reviewed_at") && change_date_end(str(b, "reviewed_at"), &t) < 0)
		return "'reviewed_at' must be a date YYYY-MM-DD";
	if (str(b, "expires_at") && change_date_end(str(b, "expires_at"), &t) < 0)
		return "'expires_at' must be a date YYYY-MM-DD";
	return NULL;
}

static void post_registry(struct console_http_ctx *ctx)
{
	json_t *b = console_http_read_json(ctx, 0);
	char why[200];
	const char *bad;

	if (!b)
		return;
	if ((bad = check_entry(b, why, sizeof(why)))) {
		console_audit(ctx->c, ctx->identity, ctx->role_name, "registry.put",
			      str(b, "id") ? str(b, "id") : "-", "refused",
			      json_pack("{s:s}", "reason", bad));
		console_http_reply_error(ctx, 400, "bad_request", "%s", bad);
		json_decref(b);
		return;
	}
	const char *p[] = {str(b, "id"),
			   str(b, "proto"),
			   str(b, "port"),
			   str(b, "service"),
			   str(b, "direction") ?: "in",
			   str(b, "justification"),
			   str(b, "owner"),
			   str(b, "category"),
			   str(b, "mitigations"),
			   str(b, "reviewed_at"),
			   str(b, "expires_at"),
			   ctx->identity};
	PGresult *r = console_db_query(
	    ctx->c,
	    "INSERT INTO console_registry (id, proto, port, service, direction, justification, "
	    "owner, category, mitigations, reviewed_at, expires_at, updated_by, updated_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::date, $11::date, $12, now()) "
	    "ON CONFLICT (id) DO UPDATE SET proto = EXCLUDED.proto, port = EXCLUDED.port, "
	    "service = EXCLUDED.service, direction = EXCLUDED.direction, "
	    "justification = EXCLUDED.justification, owner = EXCLUDED.owner, "
	    "category = EXCLUDED.category, mitigations = EXCLUDED.mitigations, "
	    "reviewed_at = EXCLUDED.reviewed_at, expires_at = EXCLUDED.expires_at, "
	    "updated_by = EXCLUDED.updated_by, updated_at = now() "
	    "RETURNING id, proto, port, service, direction, justification, owner, category, "
	    "mitigations, reviewed_at::text AS reviewed_at, expires_at::text AS expires_at, "
	    "updated_by",
	    12, p);
	if (!r) {
		json_decref(b);
		return api_reply_db_down(ctx);
	}
	json_t *e = api_row_json(r, 0);
	PQclear(r);
	console_audit(ctx->c, ctx->identity, ctx->role_name, "registry.put", str(b, "id"), "ok",
		      json_incref(e));
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "entry", e));
	json_decref(b);
}

int api_registry_routes(struct console *c)
{
	int rc =
	    console_http_route(c, "GET", "/api/registry", get_registry, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/registry", post_registry, ELS_ROLE_ADMIN,
					true);
	return rc;
}
