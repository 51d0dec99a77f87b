/* The agent port: the listener, its limits before authentication, the index of connected
 * agents, and the batched writes of their state to console_agents (one statement a second
 * for every agent that sent a frame, so 10,000 heartbeating agents cost ~1 statement/s). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/x509.h>

#include "agents_int.h"
#include "db.h"
#include "deployer.h"
#include "els/log.h"
#include "tls.h"

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

struct agent_sess *agents_find(struct console_agents *a, const char *id)
{
	if (!a || !a->nbuckets)
		return NULL;
	for (struct agent_sess *s = a->buckets[hash_id(id) % a->nbuckets]; s; s = s->hnext)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

void agents_index(struct console_agents *a, struct agent_sess *s)
{
	size_t b = hash_id(s->id) % a->nbuckets;
	s->hnext = a->buckets[b];
	a->buckets[b] = s;
	a->nhello++;
}

void agents_unindex(struct console_agents *a, struct agent_sess *s)
{
	struct agent_sess **pp = &a->buckets[hash_id(s->id) % a->nbuckets];
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			a->nhello--;
			return;
		}
}

void agents_pre_add(struct console_agents *a, struct agent_sess *s)
{
	s->pre_prev = NULL;
	s->pre_next = a->pre_head;
	if (a->pre_head)
		a->pre_head->pre_prev = s;
	else
		a->pre_tail = s;
	a->pre_head = s;
	s->in_pre = true;
	a->npreauth++;
}

void agents_pre_del(struct console_agents *a, struct agent_sess *s)
{
	if (!s->in_pre)
		return;
	if (s->pre_prev)
		s->pre_prev->pre_next = s->pre_next;
	else
		a->pre_head = s->pre_next;
	if (s->pre_next)
		s->pre_next->pre_prev = s->pre_prev;
	else
		a->pre_tail = s->pre_prev;
	s->in_pre = false;
	a->npreauth--;
}

void agents_log_refusal(struct console_agents *a, const char *fmt, ...)
{
	time_t now = time(NULL);
	if (now != a->refused_sec) {
		if (a->refused_logged > 20)
			els_log(ELS_LL_WARNING, "agents: %u more refused connections not logged",
				a->refused_logged - 20);
		a->refused_sec = now;
		a->refused_logged = 0;
	}
	if (a->refused_logged++ >= 20)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	els_log(ELS_LL_WARNING, "agents: %s", line);
}

/* ---- state to the database ---- */

void agents_mark_state(struct console_agents *a, struct agent_sess *s, json_t *row)
{
	json_object_set_new(row, "peer", json_string(s->peer));
	json_object_set_new(row, "connected_since_epoch", json_real(s->connected_since));
	if (s->cert_not_after > 0)
		json_object_set_new(row, "cert_not_after_epoch", json_real(s->cert_not_after));
	json_object_del(a->gone, s->id);
	json_object_set(a->dirty, s->id, row);
}

void agents_mark_gone(struct console_agents *a, struct agent_sess *s)
{
	json_object_del(a->dirty, s->id);
	json_object_set_new(a->gone, s->id, json_true());
}

static const char upsert_sql[] =
    "INSERT INTO console_agents AS a (agent_id, host, grp, version, first_seen, last_seen, "
    "connected_to, connected_since, peer, policy_sha256, policy_generation, managed, "
    "rules_ok, monitor_ok, listeners, permits, counters, agent_time, cert_not_after) "
    "SELECT x.agent_id, x.host, x.grp, x.version, now(), now(), $1, "
    "to_timestamp(x.connected_since_epoch), x.peer, x.policy_sha256, x.policy_generation, "
    "x.managed, x.rules_ok, x.monitor_ok, x.listeners, x.permits, x.counters, "
    "to_timestamp(x.agent_time_epoch), to_timestamp(x.cert_not_after_epoch) "
    "FROM jsonb_to_recordset($2::jsonb) AS x(agent_id text, host text, grp text, "
    "version text, connected_since_epoch float8, peer text, policy_sha256 text, "
    "policy_generation bigint, managed boolean, rules_ok boolean, monitor_ok boolean, "
    "listeners jsonb, permits jsonb, counters jsonb, agent_time_epoch float8, "
    "cert_not_after_epoch float8) "
    "ON CONFLICT (agent_id) DO UPDATE SET "
    /* A heartbeat carries only what changed: absent fields keep their value. */
    "host = COALESCE(EXCLUDED.host, a.host), grp = COALESCE(EXCLUDED.grp, a.grp), "
    "version = COALESCE(EXCLUDED.version, a.version), last_seen = now(), "
    "connected_to = $1, connected_since = EXCLUDED.connected_since, peer = EXCLUDED.peer, "
    "policy_sha256 = COALESCE(EXCLUDED.policy_sha256, a.policy_sha256), "
    "policy_generation = COALESCE(EXCLUDED.policy_generation, a.policy_generation), "
    "managed = COALESCE(EXCLUDED.managed, a.managed), "
    "rules_ok = COALESCE(EXCLUDED.rules_ok, a.rules_ok), "
    "monitor_ok = COALESCE(EXCLUDED.monitor_ok, a.monitor_ok), "
    "listeners = COALESCE(EXCLUDED.listeners, a.listeners), "
    "permits = COALESCE(EXCLUDED.permits, a.permits), "
    "counters = COALESCE(EXCLUDED.counters, a.counters), "
    "agent_time = COALESCE(EXCLUDED.agent_time, a.agent_time), "
    "cert_not_after = COALESCE(EXCLUDED.cert_not_after, a.cert_not_after)";

static int upsert(struct console *c, json_t *rows)
{
	char *s = json_dumps(rows, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	const char *p[] = {c->name, s};
	int rc = console_db_exec(c, upsert_sql, 2, p);
	free(s);
	return rc;
}

void console_agents_flush(struct console *c)
{
	struct console_agents *a = c->agents;
	if (!a || (!json_object_size(a->dirty) && !json_object_size(a->gone)))
		return;
	if (!console_db_ok(c) && console_db_exec(c, "SELECT 1", 0, NULL) < 0)
		return; /* kept for the next flush */
	if (json_object_size(a->gone)) {
		json_t *ids = json_array();
		const char *k;
		json_t *v;
		json_object_foreach(a->gone, k, v) json_array_append_new(ids, json_string(k));
		char *s = json_dumps(ids, JSON_COMPACT);
		const char *p[] = {c->name, s};
		/* Only where this instance still holds it: the agent may be on another by now. */
		if (s && console_db_exec(c,
					 "UPDATE console_agents SET connected_to = NULL, "
					 "connected_since = NULL, last_seen = now() WHERE "
					 "connected_to = $1 AND agent_id IN (SELECT "
					 "jsonb_array_elements_text($2::jsonb))",
					 2, p) == 0)
			json_object_clear(a->gone);
		free(s);
		json_decref(ids);
	}
	if (!json_object_size(a->dirty))
		return;
	json_t *rows = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(a->dirty, k, v) json_array_append(rows, v);
	if (upsert(c, rows) == 0) {
		json_object_clear(a->dirty);
	} else if (console_db_ok(c)) {
		/* The database is up and refused the batch: find the row it refuses, keep the
		 * others. hello.c should make this impossible; this keeps one agent from
		 * blocking every other one's state if it does not. */
		size_t i;
		json_array_foreach(rows, i, v)
		{
			json_t *one = json_array();
			json_array_append(one, v);
			if (upsert(c, one) < 0)
				els_log(ELS_LL_ERROR, "agents: state of %s refused by the database",
					json_string_value(json_object_get(v, "agent_id")));
			json_decref(one);
		}
		json_object_clear(a->dirty);
	}
	json_decref(rows);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	console_agents_flush(arg);
}

/* Cuts the sessions whose certificate no longer passes a->ctx's checks. */
static void recheck_sessions(struct console *c)
{
	struct console_agents *a = c->agents;
	struct agent_sess *s = a->all, *next;
	for (; s; s = next) {
		next = s->next;
		if (!s->authed || s->closing)
			continue;
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
		int v = ssl ? console_tls_verify_peer(a->ctx, ssl) : X509_V_ERR_UNSPECIFIED;
		if (v == X509_V_OK)
			continue;
		char outcome[160];
		snprintf(outcome, sizeof(outcome), "session closed: %s",
			 X509_verify_cert_error_string(v));
		console_audit(c, s->id, "agent", "agent.session", s->peer, outcome, NULL);
		/* next may be closed by this (it is not: sess_close frees only s). */
		sess_close(s, outcome);
	}
}

int console_agents_reload(struct console *c)
{
	struct console_agents *a = c->agents;
	char err[512];
	SSL_CTX *ctx = console_tls_server_ctx(&c->conf->agents, err, sizeof(err));
	if (!ctx) {
		els_log(ELS_LL_ERROR, "agents: reload: %s (the previous certificates and CRL stay)",
			err);
		return -EINVAL;
	}
	SSL_CTX_free(a->ctx); /* sessions keep a reference to theirs */
	a->ctx = ctx;
	els_log(ELS_LL_INFO, "agents: certificates and CRL read again");
	recheck_sessions(c);
	return 0;
}

/* Every 5 s: this instance is alive (with its count), and agents held by an instance that
 * stopped refreshing for 30 s are no longer shown as connected to it. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct console *c = arg;
	char n[24];
	/* A certificate that expired during its session ends the session, as at a handshake. */
	double now = (double)time(NULL);
	for (struct agent_sess *s = c->agents->all, *next; s; s = next) {
		next = s->next;
		if (s->authed && !s->closing && s->cert_not_after > 0 && s->cert_not_after < now) {
			console_audit(c, s->id, "agent", "agent.session", s->peer,
				      "session closed: certificate has expired", NULL);
			sess_close(s, "certificate has expired");
		}
	}
	snprintf(n, sizeof(n), "%zu", c->agents->nhello);
	const char *p[] = {c->name, n};
	console_db_exec(c,
			"INSERT INTO console_instances(name, last_seen, agents_connected) VALUES "
			"($1, now(), $2::int) ON CONFLICT (name) DO UPDATE SET last_seen = now(), "
			"agents_connected = $2::int",
			2, p);
	console_db_exec(c,
			"UPDATE console_agents SET connected_to = NULL, connected_since = NULL "
			"WHERE connected_to IN (SELECT name FROM console_instances WHERE "
			"last_seen < now() - interval '30 seconds')",
			0, NULL);
}

/* ---- the listener ---- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	(void)l;
	(void)salen;
	struct console *c = arg;
	struct console_agents *a = c->agents;
	char peer[64] = "?", host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(peer, sizeof(peer), "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(peer, sizeof(peer), "[%s]:%u", host, ntohs(in6->sin6_port));
	}
	/* Full: the oldest connection still before its hello gives way (as elsd's endpoint
	 * does), so idle connections cannot hold the port; agents that said hello stay. */
	if (a->nall >= c->conf->agents_max || a->npreauth >= c->conf->agents_max_preauth) {
		struct agent_sess *old = a->pre_tail;
		if (!old) {
			agents_log_refusal(a,
					   "connection refused @%s: max_connections (%u) reached",
					   peer, c->conf->agents_max);
			close(fd);
			return;
		}
		agents_log_refusal(a, "connection evicted @%s: %s full, a new connection came",
				   old->peer,
				   a->nall >= c->conf->agents_max ? "max_connections"
								  : "max_handshakes");
		sess_close(old, "evicted before its hello");
	}
	/* Small frames both ways (handshake flights, requests, answers): no Nagle delay. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sess_start(a, fd, peer);
}

static void on_listen_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and the like: the listener keeps going; the next accept may succeed. */
	els_log(ELS_LL_WARNING, "agents: accept failed: %s", strerror(errno));
}

int console_agents_start(struct console *c)
{
	struct console_agents *a = calloc(1, sizeof(*a));
	char err[512];

	if (!a)
		return -ENOMEM;
	c->agents = a;
	a->c = c;
	a->nbuckets = 4096;
	while (a->nbuckets < c->conf->agents_max)
		a->nbuckets *= 2;
	a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
	a->dirty = json_object();
	a->gone = json_object();
	if (!a->buckets || !a->dirty || !a->gone)
		return -ENOMEM;
	a->ctx = console_tls_server_ctx(&c->conf->agents, err, sizeof(err));
	if (!a->ctx) {
		els_log(ELS_LL_ERROR, "agents: %s", err);
		return -EINVAL;
	}
	/* Whatever this instance held before it stopped is not held now. */
	const char *p[] = {c->name};
	console_db_exec(c,
			"UPDATE console_agents SET connected_to = NULL, connected_since = NULL "
			"WHERE connected_to = $1",
			1, p);

	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char spec[80];
	snprintf(spec, sizeof(spec), strchr(c->conf->agents.host, ':') ? "[%s]:%u" : "%s:%u",
		 c->conf->agents.host, c->conf->agents.port);
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sl) < 0) {
		els_log(ELS_LL_ERROR, "agents: bad listen address %s", c->conf->agents.listen);
		return -EINVAL;
	}
	a->lst = evconnlistener_new_bind(c->base, on_accept, c,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					     LEV_OPT_CLOSE_ON_EXEC,
					 1024, (struct sockaddr *)&ss, sl);
	if (!a->lst) {
		els_log(ELS_LL_ERROR, "agents: cannot listen on %s: %s", c->conf->agents.listen,
			strerror(errno));
		return -EADDRINUSE;
	}
	evconnlistener_set_error_cb(a->lst, on_listen_error);
	a->flush_ev = event_new(c->base, -1, EV_PERSIST, on_flush, c);
	a->tick_ev = event_new(c->base, -1, EV_PERSIST, on_tick, c);
	struct timeval one = {1, 0}, five = {5, 0};
	if (!a->flush_ev || !a->tick_ev || event_add(a->flush_ev, &one) < 0 ||
	    event_add(a->tick_ev, &five) < 0)
		return -ENOMEM;
	els_log(ELS_LL_INFO, "agents: listening on %s", c->conf->agents.listen);
	return 0;
}

void console_agents_free(struct console *c)
{
	struct console_agents *a = c->agents;
	if (!a)
		return;
	if (a->lst)
		evconnlistener_free(a->lst);
	while (a->all)
		sess_close(a->all, "console stopping");
	console_agents_flush(c);
	if (a->flush_ev)
		event_free(a->flush_ev);
	if (a->tick_ev)
		event_free(a->tick_ev);
	json_decref(a->dirty);
	json_decref(a->gone);
	SSL_CTX_free(a->ctx);
	free(a->buckets);
	free(a);
	c->agents = NULL;
}

size_t console_agents_count(struct console *c)
{
	return c->agents ? c->agents->nhello : 0;
}

bool console_agent_connected(struct console *c, const char *agent_id)
{
	return agents_find(c->agents, agent_id) != NULL;
}

int console_agents_disconnect(struct console *c, const char *agent_id, const char *why)
{
	struct agent_sess *s = agents_find(c->agents, agent_id);
	if (!s)
		return -ENOENT;
	sess_close(s, why);
	return 0;
}
