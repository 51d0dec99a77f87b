/* The deployer (deployer.h). What may be sent is c-api's rule, the view
 * console_deploy_pending (console/sql/002_change.sql); this file claims rows of it for the
 * agents connected to this instance, sends them policy.apply on behalf of the deployment's
 * starter, and records the answer. Each target is claimed with one UPDATE ... WHERE state =
 * 'pending', so two instances never both send it.
 *
 * States of a target here: pending -> sent (claimed, request on the wire) -> ok | failed.
 * sent goes back to pending when the answer cannot come: the agent disconnected, the agent
 * said busy, or the instance that sent it stopped (restart, crash); policy.apply of the same
 * text is idempotent, so sending again is safe. A target never waits on an agent that is not
 * connected: it stays pending, and the agent's next hello wakes the deployer. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "console.h"
#include "db.h"
#include "deployer.h"
#include "els/log.h"
#include "els/mgmt.h"

#define CLAIM_BATCH 5000 /* targets claimed per pass; the pass repeats at once when full */

struct console_deployer {
	struct event *timer, *kick, *results_ev;
	json_t *inflight; /* "deployment_id/agent_id" -> true: requests on the wire */
	json_t *results;  /* answers not yet written: one statement for many */
	bool have_view;
	bool warned_no_view;
};

struct apply_ctx {
	char *deployment_id, *agent_id;
};

static void inflight_key(char *out, size_t n, const char *dep, const char *agent)
{
	snprintf(out, n, "%s/%s", dep, agent);
}

static const char results_sql[] =
    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(d bigint, a text, s text, "
    "e text, sha text, g bigint)), "
    "u AS (UPDATE console_deployment_targets t SET state = r.s, error = r.e, done_at = CASE "
    "WHEN r.s IN ('ok', 'failed') THEN now() END FROM r WHERE t.deployment_id = r.d AND "
    "t.agent_id = r.a AND t.state = 'sent' RETURNING t.deployment_id, r.s), "
    /* What the agent runs now, before its next heartbeat says so. */
    "ag AS (UPDATE console_agents g SET policy_sha256 = r.sha, policy_generation = "
    "COALESCE(r.g, g.policy_generation) FROM r WHERE g.agent_id = r.a AND r.sha IS NOT NULL "
    "RETURNING 1) "
    /* For c-api's health gate and anyone watching: results are in. */
    "SELECT pg_notify('els_deploy_result', d::text) FROM (SELECT DISTINCT deployment_id AS d "
    "FROM u WHERE s <> 'pending') x";

/* Writes the answers gathered since the last call in one statement. 0, or -EIO with them
 * kept for the next call (the database is away). */
static int flush_results(struct console *c)
{
	struct console_deployer *d = c->deployer;
	if (!d || !json_array_size(d->results))
		return 0;
	char *text = json_dumps(d->results, JSON_COMPACT);
	const char *p[] = {text};
	int rc = text ? console_db_exec(c, results_sql, 1, p) : -ENOMEM;
	free(text);
	if (rc == 0)
		json_array_clear(d->results);
	else if (!d->results_ev || !evtimer_pending(d->results_ev, NULL)) {
		struct timeval again = {1, 0};
		evtimer_add(d->results_ev, &again);
	}
	return rc;
}

static void on_results(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush_results(arg);
}

/* One answer: gathered for ~50 ms (thousands of agents answer within one deployment). */
static void set_state(struct console *c, const char *dep, const char *agent, const char *state,
		      const char *error, const char *sha, json_t *gen)
{
	json_t *row = json_pack("{s:I,s:s,s:s,s:s?,s:s?,s:O?}", "d",
				(json_int_t)strtoll(dep, NULL, 10), "a", agent, "s", state, "e",
				error, "sha", sha, "g", json_is_integer(gen) ? gen : NULL);
	struct console_deployer *d = c->deployer;
	if (!row)
		return;
	if (!d) {
		/* Stopping (the deployer is gone, sessions close): write it now. */
		json_t *one = json_array();
		json_array_append_new(one, row);
		char *text = json_dumps(one, JSON_COMPACT);
		const char *p[] = {text};
		if (text)
			console_db_exec(c, results_sql, 1, p);
		free(text);
		json_decref(one);
		return;
	}
	json_array_append_new(d->results, row);
	if (!evtimer_pending(d->results_ev, NULL)) {
		struct timeval soon = {0, 50000};
		evtimer_add(d->results_ev, &soon);
	}
}

static void on_apply(struct console *c, void *arg, json_t *resp, const char *error)
{
	struct apply_ctx *a = arg;
	char key[300];
	inflight_key(key, sizeof(key), a->deployment_id, a->agent_id);
	if (c->deployer)
		json_object_del(c->deployer->inflight, key);

	if (!resp) {
		/* Gone: sent again at its next hello. Still connected: it did not answer. */
		bool connected = console_agent_connected(c, a->agent_id);
		els_log(ELS_LL_WARNING, "deployer: deployment %s to %s: %s", a->deployment_id,
			a->agent_id, error ? error : "no answer");
		set_state(c, a->deployment_id, a->agent_id, connected ? "failed" : "pending",
			  connected ? error : NULL, NULL, NULL);
	} else if (json_is_true(json_object_get(resp, "ok"))) {
		json_t *res = json_object_get(resp, "result");
		const char *sha = json_string_value(json_object_get(res, "sha256"));
		if (sha && (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64))
			sha = NULL; /* not a hash: not written as one */
		json_t *gen = json_object_get(res, "generation");
		els_log(ELS_LL_INFO, "deployer: deployment %s to %s: applied (sha256 %.12s)",
			a->deployment_id, a->agent_id, sha ? sha : "?");
		set_state(c, a->deployment_id, a->agent_id, "ok", NULL, sha, gen);
	} else {
		json_t *e = json_object_get(resp, "error");
		const char *code = json_string_value(json_object_get(e, "code"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		char text[1024];
		snprintf(text, sizeof(text), "%s: %s", code ? code : "error", msg ? msg : "");
		/* busy: another check runs on the agent; try again at the next pass. */
		bool again = code && strcmp(code, "busy") == 0;
		els_log(ELS_LL_WARNING, "deployer: deployment %s to %s: %s%s", a->deployment_id,
			a->agent_id, text, again ? " (will retry)" : "");
		set_state(c, a->deployment_id, a->agent_id, again ? "pending" : "failed",
			  again ? NULL : text, NULL, NULL);
	}
	free(a->deployment_id);
	free(a->agent_id);
	free(a);
}

static bool check_view(struct console *c)
{
	struct console_deployer *d = c->deployer;
	if (d->have_view)
		return true;
	PGresult *r = console_db_query(
	    c, "SELECT to_regclass('console_deploy_pending') IS NOT NULL", 0, NULL);
	d->have_view = r && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!d->have_view && !d->warned_no_view) {
		els_log(ELS_LL_INFO, "deployer: no console_deploy_pending view in the database "
				     "(change control not installed): nothing to deploy");
		d->warned_no_view = true;
	}
	return d->have_view;
}

/* Targets this instance claimed but holds no request for (it restarted), and targets claimed
 * by an instance that stopped refreshing console_instances: back to pending. */
static void recover(struct console *c)
{
	struct console_deployer *d = c->deployer;
	const char *p[] = {c->name};
	PGresult *r = console_db_query(c,
				       "SELECT deployment_id, agent_id FROM "
				       "console_deployment_targets WHERE state = 'sent' AND "
				       "sent_by = $1",
				       1, p);
	for (int i = 0; r && i < PQntuples(r); i++) {
		char key[300];
		inflight_key(key, sizeof(key), PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (json_object_get(d->inflight, key))
			continue;
		const char *q[] = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)};
		console_db_exec(c,
				"UPDATE console_deployment_targets SET state = 'pending' WHERE "
				"deployment_id = $1::bigint AND agent_id = $2 AND state = 'sent'",
				2, q);
	}
	PQclear(r);
	console_db_exec(c,
			"UPDATE console_deployment_targets SET state = 'pending' WHERE state = "
			"'sent' AND (sent_by IS NULL OR sent_by NOT IN (SELECT name FROM "
			"console_instances WHERE last_seen > now() - interval '30 seconds'))",
			0, NULL);
}

/* Claims targets for this instance's agents. Joins only by primary keys after the candidate
 * list: its plan stays linear even before PostgreSQL has statistics of freshly filled tables. */
static const char claim_sql[] =
    "WITH cand AS ("
    " SELECT DISTINCT ON (p.agent_id) p.deployment_id, p.agent_id"
    " FROM console_deploy_pending p JOIN console_agents a ON a.agent_id = p.agent_id"
    " WHERE a.connected_to = $1"
    /* One apply at a time per agent: the older deployment first. */
    "  AND NOT EXISTS (SELECT 1 FROM console_deployment_targets s"
    "   WHERE s.agent_id = p.agent_id AND s.state = 'sent')"
    " ORDER BY p.agent_id, p.deployment_id LIMIT $2::int)"
    " UPDATE console_deployment_targets t SET state = 'sent', sent_at = now(), sent_by = $1,"
    " error = NULL FROM cand"
    " WHERE t.deployment_id = cand.deployment_id AND t.agent_id = cand.agent_id"
    /* Still pending when this UPDATE gets the row: another instance may have claimed it.
     * Written as an expression so that the planner looks each row up by the primary key:
     * the partial index on pending targets (by deployment only) made this quadratic on
     * tables without statistics yet (5000 claims of 10,000 targets: 3.4 s, now 0.1 s). */
    " AND (t.state || '') = 'pending'"
    " RETURNING t.deployment_id, t.agent_id";

/* deployment id -> {"body", "started_by"} for the deployments of claimed rows r: one query,
 * so that a policy sent to 10,000 agents is read once. NULL on a database error. */
static json_t *deployment_texts(struct console *c, PGresult *r)
{
	json_t *ids = json_object(), *list = json_array(), *out = NULL;
	for (int i = 0; ids && list && i < PQntuples(r); i++)
		if (!json_object_get(ids, PQgetvalue(r, i, 0))) {
			json_object_set_new(ids, PQgetvalue(r, i, 0), json_true());
			json_array_append_new(list, json_string(PQgetvalue(r, i, 0)));
		}
	char *text = list ? json_dumps(list, JSON_COMPACT) : NULL;
	const char *p[] = {text};
	PGresult *q = text ? console_db_query(c,
					      "SELECT d.id::text, v.body, d.started_by FROM "
					      "console_deployments d JOIN console_policy_versions v "
					      "ON v.id = d.version_id WHERE d.id IN (SELECT "
					      "jsonb_array_elements_text($1::jsonb)::bigint)",
					      1, p)
			   : NULL;
	if (q) {
		out = json_object();
		for (int i = 0; out && i < PQntuples(q); i++)
			json_object_set_new(out, PQgetvalue(q, i, 0),
					    json_pack("{s:s,s:s}", "body", PQgetvalue(q, i, 1),
						      "started_by", PQgetvalue(q, i, 2)));
	}
	PQclear(q);
	free(text);
	json_decref(ids);
	json_decref(list);
	return out;
}

static void pass(struct console *c)
{
	struct console_deployer *d = c->deployer;
	char limit[16];

	console_agents_flush(c);
	/* Answers first: recover() would take a target answered but not yet written for one
	 * this instance lost track of. */
	if (flush_results(c) < 0 || !console_agents_count(c) || !check_view(c))
		return;
	recover(c);
	snprintf(limit, sizeof(limit), "%d", CLAIM_BATCH);
	const char *p[] = {c->name, limit};
	PGresult *r = console_db_query(c, claim_sql, 2, p);
	if (!r)
		return;
	int n = PQntuples(r);
	json_t *texts = n ? deployment_texts(c, r) : NULL;
	for (int i = 0; i < n; i++) {
		const char *dep = PQgetvalue(r, i, 0), *agent = PQgetvalue(r, i, 1);
		json_t *t = json_object_get(texts, dep);
		struct apply_ctx *a = t ? calloc(1, sizeof(*a)) : NULL;
		if (!a || !(a->deployment_id = strdup(dep)) || !(a->agent_id = strdup(agent))) {
			if (a) {
				free(a->deployment_id);
				free(a);
			}
			set_state(c, dep, agent, "pending", NULL, NULL, NULL);
			continue;
		}
		struct console_principal who = {
		    json_string_value(json_object_get(t, "started_by")), ELS_ROLE_ADMIN};
		json_t *args = json_pack("{s:O}", "text", json_object_get(t, "body"));
		int rc = console_agent_request_local(c, agent, "policy.apply", args, &who, 0,
						     on_apply, a);
		if (rc < 0) {
			/* The database said connected here, the session is gone: it comes back. */
			set_state(c, dep, agent, "pending", NULL, NULL, NULL);
			free(a->deployment_id);
			free(a->agent_id);
			free(a);
			continue;
		}
		char key[300];
		inflight_key(key, sizeof(key), dep, agent);
		json_object_set_new(d->inflight, key, json_true());
		els_log(ELS_LL_DEBUG, "deployer: deployment %s: policy.apply sent to %s", dep,
			agent);
	}
	json_decref(texts);
	PQclear(r);
	if (n == CLAIM_BATCH)
		console_deployer_kick(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pass(arg);
}

static void on_notify(struct console *c, void *arg, const char *extra)
{
	(void)arg;
	(void)extra;
	console_deployer_kick(c);
}

/* Coalesced over 50 ms: a thousand agents saying hello within a second cost a few passes,
 * not a thousand. */
void console_deployer_kick(struct console *c)
{
	struct console_deployer *d = c->deployer;
	if (!d || !d->kick || evtimer_pending(d->kick, NULL))
		return;
	struct timeval soon = {0, 50000};
	evtimer_add(d->kick, &soon);
}

int console_deployer_start(struct console *c)
{
	struct console_deployer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	c->deployer = d;
	d->inflight = json_object();
	d->results = json_array();
	d->results_ev = evtimer_new(c->base, on_results, c);
	d->timer = event_new(c->base, -1, EV_PERSIST, on_timer, c);
	d->kick = event_new(c->base, -1, 0, on_timer, c);
	struct timeval iv = {c->conf->deploy_interval_ms / 1000,
			     (c->conf->deploy_interval_ms % 1000) * 1000};
	if (!d->inflight || !d->results || !d->results_ev || !d->timer || !d->kick ||
	    event_add(d->timer, &iv) < 0)
		return -ENOMEM;
	int rc = console_db_listen(c, "els_deploy", on_notify, NULL);
	if (rc < 0)
		return rc;
	return 0;
}

void console_deployer_free(struct console *c)
{
	struct console_deployer *d = c->deployer;
	if (!d)
		return;
	if (d->timer)
		event_free(d->timer);
	if (d->kick)
		event_free(d->kick);
	flush_results(c);
	if (d->results_ev)
		event_free(d->results_ev);
	json_decref(d->results);
	json_decref(d->inflight);
	free(d);
	c->deployer = NULL;
}
