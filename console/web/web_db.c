/* The browser pages' queries run on a PostgreSQL connection of their own, asynchronously:
 * the fleet of 10,000 agents is a 1.2 MB answer that takes PostgreSQL 100-250 ms to build, and
 * the event loop that holds the agents' sessions must not wait for it (db.h's calls block).
 * One query at a time on the connection, the others queued in arrival order; the HTTP
 * request is deferred (http.h) and answered from the callback. A lost connection is reset at
 * the next query (a short blocking call, as db.c does); the query that found it lost, and
 * those queued while it cannot be reset, are answered "database unavailable". */
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "els/log.h"
#include "http.h"
#include "web.h"

#define WEB_DB_PARAMS 5

struct web_q {
	struct web_q *next;
	const char *sql; /* a literal of web_api.c */
	int n;
	char *params[WEB_DB_PARAMS];
	struct console_http_deferred *d;
	web_db_done done;
	void *arg;
	PGresult *result; /* the first result of the running query */
	bool retried;	  /* sent again once after the connection was found lost */
};

static struct {
	struct console *c;
	PGconn *conn;
	struct event *ev; /* the connection's socket is readable */
	int fd;
	struct web_q *head, *tail; /* head runs while busy */
	bool busy;
} wdb = {.fd = -1};

static void on_readable(evutil_socket_t fd, short what, void *arg);

/* Connecting (and resetting) blocks the loop: bounded as db.c bounds its own connection, the
 * same keys in database.conninfo winning. */
static PGconn *connect_db(const char *conninfo)
{
	static const char *const keys[] = {
	    "connect_timeout",	"tcp_user_timeout", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "application_name", "dbname",	       NULL};
	const char *values[] = {"3", "10000", "10", "3", "3", "els-console-web", conninfo, NULL};
	return PQconnectdbParams(keys, values, 1);
}

/* A connection that is up, with its socket watched; false (logged) when there is none. */
static bool ensure_conn(void)
{
	if (wdb.conn && PQstatus(wdb.conn) == CONNECTION_OK)
		return true;
	if (wdb.conn)
		PQreset(wdb.conn);
	else
		wdb.conn = connect_db(wdb.c->conf->conninfo);
	if (!wdb.conn || PQstatus(wdb.conn) != CONNECTION_OK) {
		els_log(ELS_LL_ERROR, "web: database connection: %s",
			wdb.conn ? PQerrorMessage(wdb.conn) : "out of memory");
		return false;
	}
	PQsetnonblocking(wdb.conn, 1);
	int fd = PQsocket(wdb.conn);
	if (fd != wdb.fd || !wdb.ev) {
		if (wdb.ev)
			event_free(wdb.ev);
		wdb.ev = event_new(wdb.c->base, fd, EV_READ | EV_PERSIST, on_readable, NULL);
		if (!wdb.ev || event_add(wdb.ev, NULL) < 0) {
			els_log(ELS_LL_ERROR, "web: cannot watch the database connection");
			if (wdb.ev)
				event_free(wdb.ev);
			wdb.ev = NULL;
			wdb.fd = -1;
			return false;
		}
		wdb.fd = fd;
	}
	return true;
}

static struct web_q *pop(void)
{
	struct web_q *q = wdb.head;
	wdb.head = q->next;
	if (!wdb.head)
		wdb.tail = NULL;
	return q;
}

/* Answers q through its callback (r NULL: no answer) and frees it. */
static void finish(struct web_q *q, PGresult *r)
{
	q->done(wdb.c, q->d, r, q->arg);
	PQclear(q->result);
	for (int i = 0; i < q->n; i++)
		free(q->params[i]);
	free(q);
}

/* The connection was found lost while q ran: q goes again once on a new connection (a
 * PostgreSQL restart costs the pages nothing), else it is answered "unavailable". */
static void lost(void)
{
	struct web_q *q = wdb.head;
	wdb.busy = false;
	if (wdb.ev)
		event_free(wdb.ev); /* the socket is gone; ensure_conn() watches the new one */
	wdb.ev = NULL;
	wdb.fd = -1;
	PQclear(q->result);
	q->result = NULL;
	if (!q->retried && PQstatus(wdb.conn) == CONNECTION_BAD) {
		q->retried = true;
		return;
	}
	finish(pop(), NULL);
}

/* Sends the queued queries one at a time while the connection is free. */
static void start_next(void)
{
	while (!wdb.busy && wdb.head) {
		struct web_q *q = wdb.head;
		if (!ensure_conn()) {
			finish(pop(), NULL);
			continue;
		}
		if (!PQsendQueryParams(wdb.conn, q->sql, q->n, NULL, (const char *const *)q->params,
				       NULL, NULL, 0)) {
			els_log(ELS_LL_ERROR, "web: database: %s", PQerrorMessage(wdb.conn));
			lost();
			continue;
		}
		/* The statements are short: the socket takes them at once; if it cannot, wait
		 * (at most 1 s in all) rather than keep a second event for writing. */
		int f, tries = 0;
		while ((f = PQflush(wdb.conn)) == 1 && tries++ < 10) {
			struct pollfd p = {.fd = PQsocket(wdb.conn), .events = POLLOUT};
			poll(&p, 1, 100);
		}
		if (f != 0) {
			els_log(ELS_LL_ERROR, "web: database: cannot send the query: %s",
				PQerrorMessage(wdb.conn));
			finish(pop(), NULL);
			continue;
		}
		wdb.busy = true;
	}
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!PQconsumeInput(wdb.conn)) {
		els_log(ELS_LL_WARNING, "web: database connection lost: %s",
			PQerrorMessage(wdb.conn));
		if (wdb.busy) {
			lost();
		} else {
			event_free(wdb.ev);
			wdb.ev = NULL;
			wdb.fd = -1;
		}
		start_next();
		return;
	}
	while (wdb.busy && !PQisBusy(wdb.conn)) {
		PGresult *r = PQgetResult(wdb.conn);
		if (r) {
			if (!wdb.head->result)
				wdb.head->result = r;
			else
				PQclear(r);
			continue;
		}
		/* the query is complete */
		if (PQstatus(wdb.conn) == CONNECTION_BAD) { /* the server went away mid-query */
			lost();
			start_next();
			return;
		}
		struct web_q *q = pop();
		wdb.busy = false;
		PGresult *res = q->result;
		if (res && PQresultStatus(res) != PGRES_TUPLES_OK) {
			els_log(ELS_LL_ERROR, "web: database: %.60s: %s", q->sql,
				PQresultErrorMessage(res));
			res = NULL;
		}
		finish(q, res);
		start_next();
	}
}

int web_db_open(struct console *c)
{
	wdb.c = c;
	return ensure_conn() ? 0 : -EIO; /* not fatal: retried at the first query */
}

int web_db_query(struct console_http_ctx *ctx, const char *sql, int n, const char *const *params,
		 web_db_done done, void *arg)
{
	struct web_q *q = calloc(1, sizeof(*q));
	if (!q || n > WEB_DB_PARAMS)
		goto nomem;
	q->sql = sql;
	q->n = n;
	q->done = done;
	q->arg = arg;
	for (int i = 0; i < n; i++)
		if (params[i] && !(q->params[i] = strdup(params[i])))
			goto nomem;
	if (!(q->d = console_http_defer(ctx)))
		goto nomem;
	if (!wdb.c)
		wdb.c = ctx->c;
	if (wdb.tail)
		wdb.tail->next = q;
	else
		wdb.head = q;
	wdb.tail = q;
	start_next();
	return 0;
nomem:
	if (q)
		for (int i = 0; i < q->n; i++)
			free(q->params[i]);
	free(q);
	return -ENOMEM;
}
