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
	struct event *timer, *kick;
	json_t *inflight; /* "deployment_id/agent_id" -> true: requests on the wire */
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

static void set_state(struct console *c, const char *dep, const char *agent, const char *state,
		      const char *error)
{
	const char *p[] = {dep, agent, state, error};
	console_db_exec(c,
			"UPDATE console_deployment_targets SET state = $3, error = $4, done_at = "
			"CASE WHEN $3 IN ('ok', 'failed') THEN now() END WHERE deployment_id = "
			"$1::bigint AND agent_id = $2 AND state = 'sent'",
			4, p);
	if (strcmp(state, "pending") != 0) {
		/* For c-api's health gate and anyone watching: a result is in. */
		const char *q[] = {dep};
		console_db_exec(c, "SELECT pg_notify('els_deploy_result', $1)", 1, q);
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
			  connected ? error : NULL);
	} else if (json_is_true(json_object_get(resp, "ok"))) {
		json_t *res = json_object_get(resp, "result");
		const char *sha = json_string_value(json_object_get(res, "sha256"));
		json_t *gen = json_object_get(res, "generation");
		els_log(ELS_LL_INFO, "deployer: deployment %s to %s: applied (sha256 %.12s)",
			a->deployment_id, a->agent_id, sha ? sha : "?");
		set_state(c, a->deployment_id, a->agent_id, "ok", NULL);
		/* What the agent runs now, before its next heartbeat says so. */
		char g[24] = "";
		if (json_is_integer(gen))
			snprintf(g, sizeof(g), "%lld", (long long)json_integer_value(gen));
		const char *p[] = {a->agent_id, sha, g[0] ? g : NULL};
		if (sha)
			console_db_exec(c,
					"UPDATE console_agents SET policy_sha256 = $2, "
					"policy_generation = COALESCE($3::bigint, policy_generation) "
					"WHERE agent_id = $1",
					3, p);
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
			  again ? NULL : text);
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
    " error = NULL FROM cand, console_deploy_pending p"
    " WHERE t.deployment_id = cand.deployment_id AND t.agent_id = cand.agent_id"
    " AND p.deployment_id = t.deployment_id AND p.agent_id = t.agent_id AND t.state = 'pending'"
    " RETURNING t.deployment_id, t.agent_id, p.body, p.started_by";

static void pass(struct console *c)
{
	struct console_deployer *d = c->deployer;
	char limit[16];

	console_agents_flush(c);
	if (!console_agents_count(c) || !check_view(c))
		return;
	recover(c);
	snprintf(limit, sizeof(limit), "%d", CLAIM_BATCH);
	const char *p[] = {c->name, limit};
	PGresult *r = console_db_query(c, claim_sql, 2, p);
	if (!r)
		return;
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *dep = PQgetvalue(r, i, 0), *agent = PQgetvalue(r, i, 1);
		struct apply_ctx *a = calloc(1, sizeof(*a));
		if (!a || !(a->deployment_id = strdup(dep)) || !(a->agent_id = strdup(agent))) {
			if (a) {
				free(a->deployment_id);
				free(a);
			}
			set_state(c, dep, agent, "pending", NULL);
			continue;
		}
		struct console_principal who = {PQgetvalue(r, i, 3), ELS_ROLE_ADMIN};
		json_t *args = json_pack("{s:s}", "text", PQgetvalue(r, i, 2));
		int rc = console_agent_request(c, agent, "policy.apply", args, &who, 0, on_apply, a);
		if (rc < 0) {
			/* The database said connected here, the session is gone: it comes back. */
			set_state(c, dep, agent, "pending", NULL);
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

void console_deployer_kick(struct console *c)
{
	if (c->deployer && c->deployer->kick)
		event_active(c->deployer->kick, EV_TIMEOUT, 0);
}

int console_deployer_start(struct console *c)
{
	struct console_deployer *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	c->deployer = d;
	d->inflight = json_object();
	d->timer = event_new(c->base, -1, EV_PERSIST, on_timer, c);
	d->kick = event_new(c->base, -1, 0, on_timer, c);
	struct timeval iv = {c->conf->deploy_interval_ms / 1000,
			     (c->conf->deploy_interval_ms % 1000) * 1000};
	if (!d->inflight || !d->timer || !d->kick || event_add(d->timer, &iv) < 0)
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
	json_decref(d->inflight);
	free(d);
	c->deployer = NULL;
}
