/* els-console's PostgreSQL connection: one libpq connection per instance, used with short
 * blocking calls from the event loop (each statement is small and indexed), LISTEN/NOTIFY
 * delivered through an event on the connection's socket. A lost connection (PostgreSQL
 * restarted) is re-established at the next query or within a second, and the LISTENs are
 * renewed; nothing in the console keeps state that only the connection held. */
#ifndef ELS_CONSOLE_DB_H
#define ELS_CONSOLE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

struct console;

/* Connects (c->conf->conninfo), applies every c->conf->sql_dir/\*.sql in name order under an
 * advisory lock (two instances starting together do not race), and registers this instance
 * in console_instances. 0, or -errno with the reason logged. */
int console_db_open(struct console *c);
void console_db_close(struct console *c);

/* Runs sql with params ($1..$n, text, NULL = SQL NULL). Returns the result when it is
 * PGRES_TUPLES_OK or PGRES_COMMAND_OK (caller PQclear()s), else NULL with the error logged
 * (first line of the statement and the server's message). Reconnects once when the
 * connection was lost, and retries the statement then. */
PGresult *console_db_query(struct console *c, const char *sql, int nparams,
			   const char *const *params);
/* Same, for statements whose result is not needed: 0 or -EIO. */
int console_db_exec(struct console *c, const char *sql, int nparams, const char *const *params);

/* The connection, for a module that needs libpq directly (escaping, COPY). May be NULL or
 * bad while PostgreSQL is away: prefer console_db_query. */
PGconn *console_db_conn(struct console *c);

/* Calls fn(c, arg, extra) for each NOTIFY on channel (LISTENed now and after each
 * reconnect), and also once after each reconnect with extra NULL (notifications sent while
 * the connection was down are lost: the listener then re-reads its state). 0 or -errno.
 * fn always runs from the event loop, never inside a console_db_query call. */
typedef void (*console_db_notify_fn)(struct console *c, void *arg, const char *extra);
int console_db_listen(struct console *c, const char *channel, console_db_notify_fn fn, void *arg);

/* Whether the connection is up now (for health output). */
bool console_db_ok(struct console *c);

#endif
