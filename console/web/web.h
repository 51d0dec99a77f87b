/* els-console's browser pages (c-web): the parts without a server, so that unit tests and the
 * fuzz target drive them directly. web_static.c serves the files, web_api.c the read
 * endpoints (GET /api/me, /api/fleet, /api/agents/{id}, /api/traffic); both register in
 * console_web_init() (web_api.c). */
#ifndef ELS_CONSOLE_WEB_H
#define ELS_CONSOLE_WEB_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct console;

/* A time from a query string: "2026-12-05", "2026-12-05T01:00", "...T01:00:30",
 * "...T01:00:30.123" with an optional zone "Z", "+02:00" or "-0530" (none: UTC), or a space
 * instead of the T. Years 1970..9999. Returns 0 with *out in seconds since 1970 UTC, or
 * -EINVAL (nothing else is accepted: the text never reaches SQL). */
int web_parse_time(const char *s, time_t *out);

/* The ISO form web_parse_time reads: "2026-12-05T01:00:00Z" into buf (at least 21 bytes). */
void web_format_time(time_t t, char *buf, size_t n);

/* One table of a /api/traffic answer ({"columns": [names], "rows": [{name: value}]}) as CSV
 * (RFC 4180: CRLF, fields with a comma, quote or line break quoted, quotes doubled). A text
 * cell that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a
 * leading apostrophe: agents supply some of these strings. Returns malloc'd text (caller
 * frees) and its length, or NULL when table is not of that shape or memory ran out. */
char *web_table_csv(const json_t *table, size_t *len);

/* Whether s is acceptable text for a query parameter or path part: 1..max bytes without
 * control bytes. Group names and agent ids reach SQL only as parameters and are matched
 * exactly; this keeps control bytes and megabyte strings out of queries and logs. */
bool web_plain_text(const char *s, size_t max);

int console_web_static_init(struct console *c);

/* ---- web_db.c: the pages' queries, asynchronously on a connection of their own ---- */
struct console_http_ctx;
struct console_http_deferred;

/* Called once the query ran: r is its result (PGRES_TUPLES_OK; freed after the call), or NULL
 * when the database did not answer (logged). Must answer d and free arg. */
typedef void (*web_db_done)(struct console *c, struct console_http_deferred *d, PGresult *r,
			    void *arg);

/* Connects (database.conninfo) at start; -EIO (logged) when it cannot yet, which is not fatal:
 * each query tries again. */
int web_db_open(struct console *c);

/* Defers ctx's request and queues sql with n (at most 5) text parameters. 0, or -ENOMEM
 * (nothing deferred or queued: the caller answers and frees arg). */
int web_db_query(struct console_http_ctx *ctx, const char *sql, int n, const char *const *params,
		 web_db_done done, void *arg);

#endif
