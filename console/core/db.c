/* PostgreSQL for els-console: connection, schema, queries, LISTEN (db.h says the contract). */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "db.h"
#include "els/log.h"

#define MAX_LISTENS 16

struct listen_entry {
	char *channel;
	console_db_notify_fn fn;
	void *arg;
};

struct console_db {
	PGconn *conn;
	struct event *sock_ev; /* readable: notifications */
	struct event *retry;   /* every second while the connection is down */
	struct event *dispatch; /* listeners run from the loop, never inside a query */
	bool tell_reconnect;	/* listeners still to be told that some may have been missed */
	struct listen_entry listens[MAX_LISTENS];
	unsigned nlistens;
	bool was_down; /* logged once per outage */
};

static void first_line(char *out, size_t n, const char *s)
{
	size_t i = 0;
	while (s[i] && s[i] != '\n' && i + 1 < n) {
		out[i] = s[i];
		i++;
	}
	out[i] = 0;
}

static void msg_trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg);

/* Listeners run on the next turn of the loop, never from inside console_db_query: a listener
 * called there would run in the middle of its caller's logic (the relay once dropped an answer
 * that came back within the query that sent its request). A query leaves what it read with
 * its result in libpq's buffer, where the socket no longer shows it: this event picks it up. */
static void schedule_dispatch(struct console *c)
{
	static const struct timeval now = {0, 0};
	if (c->db->dispatch)
		evtimer_add(c->db->dispatch, &now);
}

/* The event loop waits on every call: a database that stops answering must cost seconds, not
 * the kernel's TCP timeouts (minutes), or every agent session would stall with it. These come
 * first, so the same keys in database.conninfo win. */
static PGconn *connect_db(const char *conninfo)
{
	static const char *const keys[] = {"connect_timeout",	  "tcp_user_timeout",
					   "keepalives_idle",	  "keepalives_interval",
					   "keepalives_count",	  "application_name",
					   "dbname",		  NULL};
	const char *values[] = {"3", "10000", "10", "3", "3", "els-console", conninfo, NULL};
	return PQconnectdbParams(keys, values, 1);
}

static void quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int do_listen(struct console *c, const struct listen_entry *l)
{
	char *id = PQescapeIdentifier(c->db->conn, l->channel, strlen(l->channel));
	char sql[256];
	if (!id)
		return -ENOMEM;
	snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);
	PGresult *r = PQexec(c->db->conn, sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -EIO;
	if (rc < 0) {
		char e[512];
		snprintf(e, sizeof(e), "%s", PQerrorMessage(c->db->conn));
		msg_trim(e);
		els_log(ELS_LL_ERROR, "database: LISTEN %s: %s", l->channel, e);
	}
	PQclear(r);
	return rc;
}

/* The socket event follows the connection: after a reset the descriptor differs. */
static void watch_socket(struct console *c)
{
	struct console_db *db = c->db;
	if (db->sock_ev) {
		event_free(db->sock_ev);
		db->sock_ev = NULL;
	}
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK || PQsocket(db->conn) < 0)
		return;
	db->sock_ev = event_new(c->base, PQsocket(db->conn), EV_READ | EV_PERSIST, on_socket, c);
	if (db->sock_ev)
		event_add(db->sock_ev, NULL);
}

/* After a reconnect: LISTEN again and tell each listener that it may have missed some. */
static void after_reconnect(struct console *c)
{
	struct console_db *db = c->db;
	watch_socket(c);
	for (unsigned i = 0; i < db->nlistens; i++)
		do_listen(c, &db->listens[i]);
	const char *p[] = {c->name};
	PGresult *r = PQexecParams(db->conn,
				   "INSERT INTO console_instances(name, started_at, last_seen) "
				   "VALUES ($1, now(), now()) ON CONFLICT (name) DO UPDATE SET "
				   "last_seen = now()",
				   1, NULL, p, NULL, NULL, 0);
	PQclear(r);
	db->tell_reconnect = true;
	schedule_dispatch(c);
}

static bool ensure_conn(struct console *c)
{
	struct console_db *db = c->db;
	if (db->conn && PQstatus(db->conn) == CONNECTION_OK)
		return true;
	if (!db->conn)
		db->conn = connect_db(c->conf->conninfo);
	else
		PQreset(db->conn);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		if (!db->was_down) {
			char e[512];
			snprintf(e, sizeof(e), "%s", PQerrorMessage(db->conn));
			msg_trim(e);
			els_log(ELS_LL_ERROR,
				"database: connection lost, retrying every second: %s", e);
		}
		db->was_down = true;
		watch_socket(c);
		return false;
	}
	if (db->was_down)
		els_log(ELS_LL_INFO, "database: connected again");
	db->was_down = false;
	after_reconnect(c);
	return true;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct console *c = arg;
	if (c->db->conn && PQstatus(c->db->conn) == CONNECTION_OK)
		return;
	ensure_conn(c);
}

static void dispatch_notifies(struct console *c)
{
	PGnotify *n;
	while (c->db->conn && (n = PQnotifies(c->db->conn))) {
		for (unsigned i = 0; i < c->db->nlistens; i++)
			if (strcmp(c->db->listens[i].channel, n->relname) == 0)
				c->db->listens[i].fn(c, c->db->listens[i].arg,
						     n->extra ? n->extra : "");
		PQfreemem(n);
	}
}

static void on_dispatch(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct console *c = arg;
	struct console_db *db = c->db;
	if (db->tell_reconnect) {
		db->tell_reconnect = false;
		for (unsigned i = 0; i < db->nlistens; i++)
			db->listens[i].fn(c, db->listens[i].arg, NULL);
	}
	dispatch_notifies(c);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct console *c = arg;
	if (!PQconsumeInput(c->db->conn) || PQstatus(c->db->conn) != CONNECTION_OK) {
		/* Closed under us (PostgreSQL restarted): stop watching a dead descriptor;
		 * the retry timer reconnects. */
		if (c->db->sock_ev) {
			event_free(c->db->sock_ev);
			c->db->sock_ev = NULL;
		}
		ensure_conn(c);
		return;
	}
	dispatch_notifies(c);
}

PGresult *console_db_query(struct console *c, const char *sql, int nparams,
			   const char *const *params)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!ensure_conn(c))
			return NULL;
		PGresult *r = PQexecParams(c->db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			/* A query may have read notifications along with its answer. */
			schedule_dispatch(c);
			return r;
		}
		bool lost = PQstatus(c->db->conn) != CONNECTION_OK;
		char head[120], e[512];
		first_line(head, sizeof(head), sql);
		snprintf(e, sizeof(e), "%s",
			 r ? PQresultErrorMessage(r) : PQerrorMessage(c->db->conn));
		msg_trim(e);
		PQclear(r);
		if (lost && attempt == 0)
			continue; /* the statement never ran on a dead connection: once more */
		els_log(ELS_LL_ERROR, "database: %s: %s", head, e);
		return NULL;
	}
	return NULL;
}

int console_db_exec(struct console *c, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = console_db_query(c, sql, nparams, params);
	if (!r)
		return -EIO;
	PQclear(r);
	return 0;
}

PGconn *console_db_conn(struct console *c)
{
	return c->db ? c->db->conn : NULL;
}

bool console_db_ok(struct console *c)
{
	return c->db && c->db->conn && PQstatus(c->db->conn) == CONNECTION_OK;
}

int console_db_listen(struct console *c, const char *channel, console_db_notify_fn fn, void *arg)
{
	struct console_db *db = c->db;
	if (db->nlistens == MAX_LISTENS)
		return -ENOSPC;
	struct listen_entry *l = &db->listens[db->nlistens];
	if (!(l->channel = strdup(channel)))
		return -ENOMEM;
	l->fn = fn;
	l->arg = arg;
	db->nlistens++;
	if (console_db_ok(c))
		return do_listen(c, l);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.sql of dir in name order, each in its own transaction, under one advisory lock. */
static int apply_schema(struct console *c, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (!d) {
		els_log(ELS_LL_ERROR, "database: cannot read the schema directory %s: %s", dir,
			strerror(errno));
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".sql") != 0 || e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				rc = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n == 0) {
		els_log(ELS_LL_ERROR, "database: no *.sql schema file in %s", dir);
		rc = -ENOENT;
		goto out;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	/* The number is arbitrary but fixed: the same lock in every instance. */
	PQclear(PQexec(c->db->conn, "SELECT pg_advisory_lock(7444015)"));
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[4096], *body = NULL;
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		int r = console_read_file(path, 16u << 20, &body, &len);
		if (r < 0) {
			els_log(ELS_LL_ERROR, "database: cannot read %s: %s", path, strerror(-r));
			rc = r;
			break;
		}
		PGresult *res = PQexec(c->db->conn, "BEGIN");
		PQclear(res);
		res = PQexec(c->db->conn, body);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			char m[1024];
			snprintf(m, sizeof(m), "%s", PQresultErrorMessage(res));
			msg_trim(m);
			const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
			unsigned line = 1;
			for (long k = 0, p = pos ? atol(pos) : 0; k < p - 1 && body[k]; k++)
				line += body[k] == '\n';
			els_log(ELS_LL_ERROR, "database: %s:%u: %s", path, line, m);
			rc = -EINVAL;
			PQclear(res);
			PQclear(PQexec(c->db->conn, "ROLLBACK"));
		} else {
			PQclear(res);
			PQclear(PQexec(c->db->conn, "COMMIT"));
			els_log(ELS_LL_DEBUG, "database: applied %s", path);
		}
		free(body);
	}
	PQclear(PQexec(c->db->conn, "SELECT pg_advisory_unlock(7444015)"));
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int console_db_open(struct console *c)
{
	struct console_db *db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	c->db = db;
	db->conn = connect_db(c->conf->conninfo);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		char e[512];
		snprintf(e, sizeof(e), "%s", PQerrorMessage(db->conn));
		msg_trim(e);
		els_log(ELS_LL_ERROR, "database: cannot connect (database.conninfo): %s", e);
		return -ECONNREFUSED;
	}
	/* Quiet the NOTICEs of CREATE ... IF NOT EXISTS on every start. */
	PQsetNoticeProcessor(db->conn, quiet_notice, NULL);
	int rc = apply_schema(c, c->conf->sql_dir);
	if (rc < 0)
		return rc;
	db->dispatch = evtimer_new(c->base, on_dispatch, c);
	if (!db->dispatch)
		return -ENOMEM;
	after_reconnect(c);
	db->retry = event_new(c->base, -1, EV_PERSIST, on_retry, c);
	struct timeval one = {1, 0};
	if (!db->retry || event_add(db->retry, &one) < 0)
		return -ENOMEM;
	return 0;
}

void console_db_close(struct console *c)
{
	struct console_db *db = c->db;
	if (!db)
		return;
	if (db->sock_ev)
		event_free(db->sock_ev);
	if (db->retry)
		event_free(db->retry);
	if (db->dispatch)
		event_free(db->dispatch);
	for (unsigned i = 0; i < db->nlistens; i++)
		free(db->listens[i].channel);
	if (db->conn)
		PQfinish(db->conn);
	free(db);
	c->db = NULL;
}
