/* Helpers shared by the change-control API's modules (api.h). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"

/* PostgreSQL type oids (pg_type.h is a server header) */
#define OID_BOOL  16
#define OID_INT8  20
#define OID_INT2  21
#define OID_INT4  23
#define OID_JSON  114
#define OID_JSONB 3802

json_t *api_row_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	for (int k = 0; k < PQnfields(r); k++) {
		const char *name = PQfname(r, k), *v = PQgetvalue(r, i, k);
		json_t *j;
		if (PQgetisnull(r, i, k)) {
			j = json_null();
		} else {
			switch (PQftype(r, k)) {
			case OID_BOOL:
				j = json_boolean(v[0] == 't');
				break;
			case OID_INT2:
			case OID_INT4:
			case OID_INT8:
				j = json_integer(strtoll(v, NULL, 10));
				break;
			case OID_JSON:
			case OID_JSONB:
				j = json_loads(v, JSON_DECODE_ANY, NULL);
				if (!j)
					j = json_string(v);
				break;
			default:
				j = json_string(v);
			}
		}
		json_object_set_new(o, name, j ? j : json_null());
	}
	return o;
}

json_t *api_rows_json(const PGresult *r)
{
	json_t *a = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(a, api_row_json(r, i));
	return a;
}

void api_reply_problem(struct console_http_ctx *ctx, int code, const char *code_name,
		       const char *msg, json_t *details)
{
	json_t *o = json_pack("{s:s, s:s}", "error", code_name, "message", msg);
	if (details)
		json_object_set_new(o, "details", details);
	console_http_reply_json(ctx, code, o);
}

void api_reply_db_down(struct console_http_ctx *ctx)
{
	console_http_reply_error(ctx, 503, "database", "the database is not reachable");
}

long long api_parse_id(const char *s)
{
	char *end;
	long long v;

	if (!s || *s < '1' || *s > '9')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno || *end ? 0 : v;
}

bool api_group_valid(const char *g)
{
	size_t n = g ? strlen(g) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)g[i]) && !strchr("._-", g[i]))
			return false;
	return true;
}

int api_registry_load(struct console *c, PGresult **res, struct change_registry_entry **out)
{
	PGresult *r = console_db_query(
	    c, "SELECT id, proto, port, direction, expires_at::text FROM console_registry", 0,
	    NULL);
	*res = r;
	*out = NULL;
	if (!r)
		return -1;
	int n = PQntuples(r);
	*out = calloc((size_t)n + 1, sizeof(**out));
	if (!*out) {
		PQclear(r);
		*res = NULL;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct change_registry_entry *e = &(*out)[i];
		e->id = PQgetvalue(r, i, 0);
		e->proto = PQgetvalue(r, i, 1);
		e->port = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
		e->direction = PQgetvalue(r, i, 3);
		if (!PQgetisnull(r, i, 4) &&
		    change_date_end(PQgetvalue(r, i, 4), &e->expires_s) < 0)
			e->expires_s =
			    1; /* unreadable date: treated as expired, never as forever */
	}
	return n;
}

struct change_rules api_change_rules(const struct console *c)
{
	return (struct change_rules){.two_person = c->conf->two_person, .approvals = 1};
}

void api_notify_deploy(struct console *c)
{
	console_db_exec(c, "NOTIFY els_deploy", 0, NULL);
}

char *api_text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	char *out = malloc(len), *o = out;
	if (!out)
		return NULL;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = 0;
	return out;
}
