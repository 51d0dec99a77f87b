/* Continuous compliance (api.h, api_drift_tick; GET /api/drift): every pass reads every
 * agent's last reported state, runs the drift rules (change_drift.c) against its group's
 * approved deployed version and the registry, opens a console_drift row for each new finding
 * (with since), resolves the rows whose condition cleared, and alerts each opening and
 * resolution once: a log line and an audit row. Only the changes are written: a pass over a
 * quiet fleet, drifting or not, is one read of the agents, the open drift and the registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "els/log.h"

/* An open drift row, as read at the start of a pass. */
struct open_row {
	char *agent_id;
	int kind;
};

static int kind_of(const char *s)
{
	for (int k = 0; k < DRIFT_NKINDS; k++)
		if (strcmp(change_drift_names[k], s) == 0)
			return k;
	return -1;
}

static int open_cmp(const void *a, const void *b)
{
	const struct open_row *x = a, *y = b;
	int c = strcmp(x->agent_id, y->agent_id);
	return c ? c : (x->kind > y->kind) - (x->kind < y->kind);
}

/* Binary search: a fleet of 10,000 drifting agents must not cost 10,000^2 comparisons. */
static struct open_row *find_open(struct open_row *o, size_t n, const char *agent, int kind)
{
	struct open_row key = {(char *)agent, kind};
	return n ? bsearch(&key, o, n, sizeof(*o), open_cmp) : NULL;
}

static void flag(struct console *c, const char *agent, int kind, const char *detail)
{
	const char *p[] = {agent, change_drift_names[kind], detail};
	/* xmax = 0: this statement inserted the row (a new finding), not updated it */
	PGresult *r = console_db_query(
	    c,
	    "INSERT INTO console_drift (agent_id, kind, detail) VALUES ($1, $2, $3) "
	    "ON CONFLICT (agent_id, kind) WHERE resolved_at IS NULL DO UPDATE SET detail = "
	    "EXCLUDED.detail WHERE console_drift.detail <> EXCLUDED.detail "
	    "RETURNING (xmax = 0)",
	    3, p);
	if (r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't') {
		els_log(ELS_LL_WARNING, "drift: agent %s: %s: %s", agent, change_drift_names[kind],
			detail);
		console_audit(c, "console", "system", "drift.flagged", agent,
			      change_drift_names[kind], json_pack("{s:s}", "detail", detail));
	}
	PQclear(r);
}

static void resolve(struct console *c, const char *agent, int kind)
{
	const char *p[] = {agent, change_drift_names[kind]};
	PGresult *r = console_db_query(c,
				       "UPDATE console_drift SET resolved_at = now() WHERE "
				       "agent_id = $1 AND kind = $2 AND resolved_at IS NULL "
				       "RETURNING id",
				       2, p);
	if (r && PQntuples(r) > 0) {
		els_log(ELS_LL_INFO, "drift resolved: agent %s: %s", agent,
			change_drift_names[kind]);
		console_audit(c, "console", "system", "drift.resolved", agent,
			      change_drift_names[kind], NULL);
	}
	PQclear(r);
}

/* The agent's reported listeners and permits (jsonb text) as the rules' arrays; strings point
 * into the json_t, which the caller keeps until done. */
static void parse_lists(json_t *ls, json_t *ps, struct change_listener **l, size_t *nl,
			struct change_permit **p, size_t *np)
{
	size_t i;
	json_t *v;

	*l = calloc(json_array_size(ls) + 1, sizeof(**l));
	*p = calloc(json_array_size(ps) + 1, sizeof(**p));
	*nl = *np = 0;
	if (!*l || !*p)
		return;
	json_array_foreach(ls, i, v)
	{
		json_int_t port = json_integer_value(json_object_get(v, "port"));
		const char *proto = json_string_value(json_object_get(v, "proto"));
		if (!proto || port <= 0 || port > 65535)
			continue;
		(*l)[(*nl)++] = (struct change_listener){
		    proto, json_string_value(json_object_get(v, "addr")), (unsigned)port};
	}
	json_array_foreach(ps, i, v)
	{
		json_t *port = json_object_get(v, "port");
		char *txt = NULL;
		(*p)[(*np)++] =
		    (struct change_permit){json_string_value(json_object_get(v, "id")),
					   json_string_value(json_object_get(v, "proto")),
					   json_is_string(port) ? json_string_value(port) : NULL,
					   json_string_value(json_object_get(v, "dir"))};
		/* a numeric port is kept as text inside the object, for the rule */
		if (json_is_integer(port) &&
		    asprintf(&txt, "%lld", (long long)json_integer_value(port)) > 0) {
			json_object_set_new(v, "port_text", json_string(txt));
			(*p)[*np - 1].port = json_string_value(json_object_get(v, "port_text"));
			free(txt);
		}
	}
}

void api_drift_tick(struct console *c)
{
	PGresult *ro = NULL, *ra = NULL, *rreg = NULL;
	struct change_registry_entry *reg = NULL;
	struct open_row *open = NULL;
	size_t nopen = 0;
	time_t now = time(NULL);

	ro = console_db_query(
	    c, "SELECT agent_id, kind FROM console_drift WHERE resolved_at IS NULL", 0, NULL);
	/* the approved deployed version of each group: its newest deployment that completed */
	ra = console_db_query(
	    c,
	    "WITH approved AS (SELECT DISTINCT ON (d.grp) d.grp, v.sha256 FROM "
	    "console_deployments d JOIN console_policy_versions v ON v.id = d.version_id WHERE "
	    "d.state = 'done' ORDER BY d.grp, d.id DESC) "
	    "SELECT a.agent_id, ap.sha256, a.policy_sha256, coalesce(a.rules_ok, true), "
	    "coalesce(a.monitor_ok, true), extract(epoch FROM a.last_seen)::bigint, "
	    "a.listeners::text, a.permits::text FROM console_agents a LEFT JOIN approved ap ON "
	    "ap.grp = a.grp",
	    0, NULL);
	int nreg = api_registry_load(c, &rreg, &reg);
	if (!ro || !ra || nreg < 0)
		goto out;
	nopen = (size_t)PQntuples(ro);
	open = calloc(nopen + 1, sizeof(*open));
	if (!open)
		goto out;
	for (size_t i = 0; i < nopen; i++)
		open[i] = (struct open_row){PQgetvalue(ro, (int)i, 0),
					    kind_of(PQgetvalue(ro, (int)i, 1))};
	qsort(open, nopen, sizeof(*open), open_cmp);
	for (int i = 0; i < PQntuples(ra); i++) {
		json_t *ls =
		    PQgetisnull(ra, i, 6) ? NULL : json_loads(PQgetvalue(ra, i, 6), 0, NULL);
		json_t *ps =
		    PQgetisnull(ra, i, 7) ? NULL : json_loads(PQgetvalue(ra, i, 7), 0, NULL);
		struct change_listener *l;
		struct change_permit *p;
		size_t nl, np;
		char detail[DRIFT_NKINDS][CHANGE_REASON_LEN];

		parse_lists(ls, ps, &l, &nl, &p, &np);
		struct change_drift_input in = {
		    .agent_id = PQgetvalue(ra, i, 0),
		    .approved_sha256 = PQgetisnull(ra, i, 1) ? NULL : PQgetvalue(ra, i, 1),
		    .running_sha256 = PQgetisnull(ra, i, 2) ? NULL : PQgetvalue(ra, i, 2),
		    .rules_ok = PQgetvalue(ra, i, 3)[0] == 't',
		    .monitor_ok = PQgetvalue(ra, i, 4)[0] == 't',
		    .have_state = true,
		    .last_seen = (time_t)atoll(PQgetvalue(ra, i, 5)),
		    .listeners = l,
		    .nlisteners = nl,
		    .permits = p,
		    .npermits = np,
		    .registry = reg,
		    .nregistry = (size_t)nreg,
		};
		unsigned mask = change_drift_eval(&in, now, c->conf->drift_silent_after_s, detail);
		for (int k = 0; k < DRIFT_NKINDS; k++) {
			struct open_row *o = find_open(open, nopen, in.agent_id, k);
			/* An open finding keeps its first detail: a quiet pass writes nothing
			 * (the silent detail alone would change every pass). */
			if ((mask & (1u << k)) && !o)
				flag(c, in.agent_id, k, detail[k]);
			else if (!(mask & (1u << k)) && o)
				resolve(c, in.agent_id, k);
		}
		free(l);
		free(p);
		json_decref(ls);
		json_decref(ps);
	}
out:
	free(open);
	free(reg);
	PQclear(ro);
	PQclear(ra);
	PQclear(rreg);
}

static void get_drift(struct console_http_ctx *ctx)
{
	char *all = console_http_query_param(ctx, "all");
	char *agent = console_http_query_param(ctx, "agent");
	const char *p[] = {all && strcmp(all, "0") != 0 ? "t" : "f", agent};
	PGresult *r = console_db_query(
	    ctx->c,
	    "SELECT d.agent_id, a.grp AS \"group\", d.kind, d.detail, " API_TS(
		"d.since") " AS since, " API_TS("d.resolved_at") " AS resolved_at FROM "
								 "console_drift d LEFT JOIN "
								 "console_agents a USING "
								 "(agent_id) WHERE ($1::bool OR "
								 "d.resolved_at IS NULL) AND "
								 "($2::text IS NULL OR d.agent_id "
								 "= $2) ORDER BY d.since DESC, "
								 "d.id DESC LIMIT 10000",
	    2, p);
	free(all);
	free(agent);
	if (!r)
		return api_reply_db_down(ctx);
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "drift", api_rows_json(r)));
	PQclear(r);
}

int api_drift_routes(struct console *c)
{
	return console_http_route(c, "GET", "/api/drift", get_drift, ELS_ROLE_AUDITOR, false);
}
