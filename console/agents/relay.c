/* The relay (relay.h). The asking instance keeps a callback per row id; the holding instance
 * serves rows addressed to it with console_agent_request_local, never relaying further. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "db.h"
#include "els/log.h"
#include "els/mgmt.h"
#include "relay.h"

struct relay_wait {
	struct relay_wait *next;
	struct console *c;
	long long id;
	console_agent_cb cb;
	void *arg;
	struct event *timer;
};

struct console_relay {
	struct relay_wait *waits;
	struct event *cleanup;
};

struct serve_ctx {
	long long id;
	char from[64];
};

static void unlink_wait(struct console_relay *r, struct relay_wait *w)
{
	for (struct relay_wait **pp = &r->waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

static void finish_wait(struct console *c, struct relay_wait *w, json_t *resp, const char *error)
{
	unlink_wait(c->relay, w);
	if (w->timer)
		event_free(w->timer);
	w->cb(c, w->arg, resp, error);
	free(w);
}

/* ---- the asking side ---- */

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct relay_wait *w = arg;
	struct console *c = w->c;
	char id[24];
	snprintf(id, sizeof(id), "%lld", w->id);
	const char *p[] = {id};
	console_db_exec(c,
			"UPDATE console_agent_requests SET state = 'expired' WHERE id = $1 "
			"AND state <> 'done'",
			1, p);
	finish_wait(c, w, NULL, "the agent's console did not answer in time");
}

/* The answer to row id is in: hand it to its callback and remove the row. */
static void deliver(struct console *c, struct relay_wait *w)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", w->id);
	const char *p[] = {id};
	PGresult *r = console_db_query(c,
				       "DELETE FROM console_agent_requests WHERE id = $1 AND "
				       "state = 'done' RETURNING response::text, error",
				       1, p);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		return; /* not done yet (a notification for a row of a restarted asker) */
	}
	json_t *resp = NULL;
	if (!PQgetisnull(r, 0, 0))
		resp = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	char err[512] = "";
	if (!PQgetisnull(r, 0, 1))
		snprintf(err, sizeof(err), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	els_log(ELS_LL_DEBUG, "relay: request %lld: answer delivered", w->id);
	finish_wait(c, w, resp, resp ? NULL : (err[0] ? err : "no answer"));
	json_decref(resp);
}

static void deliver_id(struct console *c, long long id)
{
	for (struct relay_wait *w = c->relay->waits; w; w = w->next)
		if (w->id == id) {
			deliver(c, w);
			return;
		}
}

static void on_resp(struct console *c, void *arg, const char *extra)
{
	(void)arg;
	struct console_relay *r = c->relay;
	if (!extra) {
		/* Reconnected: answers may have come while the connection was down. By id, not
		 * by pointer: a delivery's callback may end other waits. */
		size_t n = 0;
		for (struct relay_wait *w = r->waits; w; w = w->next)
			n++;
		long long *ids = n ? calloc(n, sizeof(*ids)) : NULL;
		size_t k = 0;
		for (struct relay_wait *w = r->waits; ids && w; w = w->next)
			ids[k++] = w->id;
		for (size_t i = 0; i < k; i++)
			deliver_id(c, ids[i]);
		free(ids);
		return;
	}
	size_t nl = strlen(c->name);
	if (strncmp(extra, c->name, nl) != 0 || extra[nl] != ':')
		return;
	deliver_id(c, atoll(extra + nl + 1));
}

int console_relay_request(struct console *c, const char *agent_id, const char *cmd, json_t *args,
			  const struct console_principal *on_behalf_of, unsigned timeout_s,
			  console_agent_cb cb, void *arg)
{
	struct relay_wait *w = NULL;
	char *a = NULL, tmo[24];
	int rc = -ENOENT;

	if (!c->relay || !cb)
		goto out;
	unsigned t = timeout_s ? timeout_s : c->conf->request_timeout_s;
	snprintf(tmo, sizeof(tmo), "%u", t);
	if (!args && !(args = json_object())) {
		rc = -ENOMEM;
		goto out;
	}
	a = json_dumps(args, JSON_COMPACT);
	const char *role = on_behalf_of ? els_mgmt_role_name(on_behalf_of->role) : NULL;
	const char *p[] = {agent_id, c->name, cmd, a, on_behalf_of ? on_behalf_of->identity : NULL,
			   role,     tmo};
	/* Only a live holder: one that stopped refreshing its row is not asked. */
	PGresult *r = console_db_query(
	    c,
	    "INSERT INTO console_agent_requests (agent_id, cmd, args, obo_identity, obo_role, "
	    "from_console, to_console, deadline) SELECT $1, $3, $4::jsonb, $5, $6, $2, "
	    "a.connected_to, now() + make_interval(secs => $7::int) FROM console_agents a JOIN "
	    "console_instances i ON i.name = a.connected_to WHERE a.agent_id = $1 AND "
	    "a.connected_to <> $2 AND i.last_seen > now() - interval '30 seconds' RETURNING id, "
	    "to_console",
	    7, p);
	if (!r) {
		rc = -EIO;
		goto out;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		goto out;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		PQclear(r);
		rc = -ENOMEM;
		goto out;
	}
	w->c = c;
	w->id = atoll(PQgetvalue(r, 0, 0));
	w->cb = cb;
	w->arg = arg;
	w->timer = evtimer_new(c->base, on_wait_timeout, w);
	struct timeval tv = {t, 0};
	if (w->timer)
		evtimer_add(w->timer, &tv);
	w->next = c->relay->waits;
	c->relay->waits = w;
	/* Only now wake the holder: its answer must find the wait, however soon it comes. */
	const char *n[] = {PQgetvalue(r, 0, 1)};
	els_log(ELS_LL_DEBUG, "relay: %s %s -> %s (request %lld)", agent_id, cmd, n[0], w->id);
	console_db_exec(c, "SELECT pg_notify('els_agent_req', $1)", 1, n);
	PQclear(r);
	rc = 0;
out:
	free(a);
	json_decref(args);
	return rc;
}

/* ---- the holding side ---- */

static void on_served(struct console *c, void *arg, json_t *resp, const char *error)
{
	struct serve_ctx *s = arg;
	char id[24], note[96];
	char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	snprintf(id, sizeof(id), "%lld", s->id);
	const char *p[] = {id, text, resp ? NULL : (error ? error : "no answer")};
	console_db_exec(c,
			"UPDATE console_agent_requests SET state = 'done', response = $2::jsonb, "
			"error = $3, done_at = now() WHERE id = $1 AND state = 'sent'",
			3, p);
	els_log(ELS_LL_DEBUG, "relay: request %lld from %s answered", s->id, s->from);
	snprintf(note, sizeof(note), "%s:%lld", s->from, s->id);
	const char *q[] = {note};
	console_db_exec(c, "SELECT pg_notify('els_agent_resp', $1)", 1, q);
	free(text);
	free(s);
}

static void serve(struct console *c)
{
	const char *p[] = {c->name};
	PGresult *r = console_db_query(
	    c,
	    "UPDATE console_agent_requests SET state = 'sent' WHERE to_console = $1 AND state = "
	    "'pending' AND deadline > now() RETURNING id, agent_id, cmd, args::text, "
	    "obo_identity, obo_role, from_console, greatest(1, extract(epoch FROM deadline - "
	    "now()))::int",
	    1, p);
	for (int i = 0; r && i < PQntuples(r); i++) {
		struct serve_ctx *s = calloc(1, sizeof(*s));
		json_t *args = json_loads(PQgetvalue(r, i, 3), 0, NULL);
		struct console_principal who = {PQgetvalue(r, i, 4),
						els_mgmt_role_parse(PQgetvalue(r, i, 5))};
		if (!s) {
			json_decref(args);
			continue;
		}
		s->id = atoll(PQgetvalue(r, i, 0));
		snprintf(s->from, sizeof(s->from), "%s", PQgetvalue(r, i, 6));
		int rc =
		    console_agent_request_local(c, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), args,
						PQgetisnull(r, i, 4) ? NULL : &who,
						(unsigned)atoi(PQgetvalue(r, i, 7)), on_served, s);
		if (rc < 0)
			on_served(c, s, NULL, "the agent is no longer connected to its console");
	}
	PQclear(r);
}

static void on_req(struct console *c, void *arg, const char *extra)
{
	(void)arg;
	if (!extra || strcmp(extra, c->name) == 0)
		serve(c);
}

static void on_cleanup(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct console *c = arg;
	serve(c); /* a notification lost while the database was away */
	console_db_exec(c,
			"DELETE FROM console_agent_requests WHERE created_at < now() - "
			"interval '1 hour'",
			0, NULL);
}

int console_relay_start(struct console *c)
{
	struct console_relay *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	c->relay = r;
	r->cleanup = event_new(c->base, -1, EV_PERSIST, on_cleanup, c);
	struct timeval iv = {30, 0};
	if (!r->cleanup || event_add(r->cleanup, &iv) < 0)
		return -ENOMEM;
	int rc = console_db_listen(c, "els_agent_req", on_req, NULL);
	if (rc == 0)
		rc = console_db_listen(c, "els_agent_resp", on_resp, NULL);
	return rc;
}

void console_relay_free(struct console *c)
{
	struct console_relay *r = c->relay;
	if (!r)
		return;
	while (r->waits)
		finish_wait(c, r->waits, NULL, "console stopping");
	if (r->cleanup)
		event_free(r->cleanup);
	free(r);
	c->relay = NULL;
}
