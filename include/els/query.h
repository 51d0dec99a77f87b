/* One query vocabulary for the monitor's records, shared by els-log (the local file), elsctl
 * log (over management) and elsd's side of the management `log` request: the same filters with
 * the same grammar and errors, the same matching (real CIDR for IPv4 and IPv6), the same order
 * and the same JSON (docs/forensics.md, "Record JSON"). */
#ifndef ELS_QUERY_H
#define ELS_QUERY_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "els/addr.h"

struct els_handler;

#define ELS_QUERY_MAX	      16 /* values per list filter */
#define ELS_QUERY_HANDLER_LEN 32

struct els_query {
	int64_t since_ns, until_ns;    /* ts_ns >= since, < until; -1: open */
	int64_t before_seq, after_seq; /* seq < before, > after; -1: open */
	uint32_t kinds;		       /* bit (1 << enum els_rec_kind); 0: any */
	uint8_t verdicts;	       /* bit 0 accept, bit 1 drop; 0: any */
	unsigned naddr, nport, nreason, nhandler;
	struct els_cidr addr[ELS_QUERY_MAX]; /* source or destination inside one of them */
	uint16_t port[ELS_QUERY_MAX];	     /* source or destination port */
	uint16_t reason[ELS_QUERY_MAX];	     /* enum els_reason */
	char handler[ELS_QUERY_MAX][ELS_QUERY_HANDLER_LEN];
	uint64_t limit; /* the newest `limit` matching rows; 0: every one */
	/* The handlers --handler may name (els_handler_all(), NULL-terminated), beside the
	 * record sources that are not handlers. The caller passes them in, so that lib/ does not
	 * call up into the engine's registry. NULL: none but those sources. */
	const struct els_handler *const *handlers;
};

/* An empty query (every record) that knows the handlers of `handlers` by name. */
void els_query_init(struct els_query *q, const struct els_handler *const *handlers);

/* Adds one command-line filter. name is the long option without its dashes: kind, verdict,
 * addr, port, reason, handler (comma lists; repeating the option adds values), since, until
 * (TIME, see els_time_parse), limit, before-seq, after-seq. Every value is checked: kinds,
 * reasons and handlers against the lists elsd records, addresses as CIDR or one address,
 * ports 0..65535. 0, or -EINVAL with err = "--NAME 'VALUE': why". */
int els_query_set(struct els_query *q, const char *name, const char *value, int64_t now_ns,
		  char *err, size_t errlen);

/* ---- the filters as command-line options (lib/query/query_opts.c) ---- */

/* The filters' options, the same in els-log and `elsctl log`: -s/--since, -u/--until,
 * -k/--kind, -v/--verdict, --addr, -p/--port, -r/--reason, -H/--handler, -l/--limit,
 * --before-seq, --after-seq. A tool puts ELS_QUERY_SHORTOPTS in its getopt string and the
 * entries els_query_longopts writes into its long options, and hands every option
 * els_query_opt_name knows to els_query_set. */
#define ELS_QUERY_SHORTOPTS  "s:u:k:v:p:r:H:l:"
#define ELS_QUERY_NOPTS	     11
#define ELS_QUERY_OPT_ADDR   0x1000 /* getopt values of the long-only filters */
#define ELS_QUERY_OPT_BEFORE 0x1001
#define ELS_QUERY_OPT_AFTER  0x1002
struct option;
/* Writes the ELS_QUERY_NOPTS long options at lo; returns how many. */
unsigned els_query_longopts(struct option *lo);
/* The filter name (for els_query_set) of getopt's value val, or NULL for another option. */
const char *els_query_opt_name(int val);

/* TIME: "@EPOCH_SECONDS"; an age before now_ns: N followed by s, m, h, d or w ("90s", "15m",
 * "1h", "2d", "1w"); or UTC "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.FRACTION]][Z]" (a space may
 * replace the T). 0 and *out_ns, or -EINVAL with *why. */
int els_time_parse(const char *s, int64_t now_ns, int64_t *out_ns, const char **why);
/* "2024-05-01T10:30:00.250Z" */
void els_time_format(int64_t ns, char *buf, size_t len);

/* One record's filterable fields; NULL strings and port -1 for SQL NULL. */
struct els_query_rec {
	int64_t seq, ts_ns;
	const char *kind, *verdict, *src, *dst, *reason, *handler;
	int32_t sport, dport;
};
/* Does r pass every filter of q (the limit aside)? The one predicate every tool uses. */
bool els_query_match(const struct els_query *q, const struct els_query_rec *r);
/* The same on a row as JSON (els_query_row_json or a management answer's row). */
bool els_query_match_json(const struct els_query *q, json_t *row);

/* Opens a monitor file read-only (beside a running elsd: WAL readers never block its writer).
 * 0, or -errno with err naming the file. */
int els_query_open(const char *path, sqlite3 **db, char *err, size_t errlen);
/* Prepares q on db: every column of `records` (docs/monitor-schema.md order), the rows that
 * match, newest first when newest_first, else oldest first; with a limit, the newest `limit`
 * rows (plus `extra`, to learn whether more match) in that order. q must outlive the
 * statement. 0, or -EIO with err. */
int els_query_prepare(sqlite3 *db, const struct els_query *q, bool newest_first, unsigned extra,
		      sqlite3_stmt **st, char *err, size_t errlen);

/* ---- rows as JSON (lib/query/query_json.c) ---- */

/* The current row of st (from els_query_prepare) as an object in the documented form: every
 * column, "time" after "ts_ns", SQL NULL as null. NULL when out of memory. */
json_t *els_query_row_json(sqlite3_stmt *st);
/* Any row object (a management answer's, possibly from an older agent) in that same form: keys
 * in schema order, a missing column as null, "time" from ts_ns. New reference or NULL. */
json_t *els_query_row_normal(json_t *row);
/* One row as one line of NDJSON (ASCII, control characters escaped). */
void els_query_print_ndjson(json_t *row, FILE *out);
/* CSV with a header line: els_query_csv_header once, then a line per row. */
void els_query_csv_header(FILE *out);
void els_query_print_csv(json_t *row, FILE *out);

/* The aligned table both tools print: TIME SEQ KIND VERDICT DIR PROTO SOURCE DESTINATION
 * HANDLER RULE COUNT DETAIL, every cell made terminal-safe, nothing cut. */
struct els_query_table;
struct els_query_table *els_query_table_new(void);
int els_query_table_add(struct els_query_table *t, json_t *row); /* 0 or -ENOMEM */
/* Prints the rows added so far (with the header when there are any) and empties the table, so
 * that --follow can print batch by batch; widths only grow, so columns stay aligned. */
void els_query_table_flush(struct els_query_table *t, FILE *out);
void els_query_table_free(struct els_query_table *t);

/* elsd's side of the management `log` request (docs/management-protocol.md): its args (handler
 * names checked against handlers, as els_query_init), the monitor file at path, newest first,
 * at most max_ms of work. The result object, or NULL with
 * *code ("bad_request" for an invalid filter, "internal") and msg. */
json_t *els_query_wire(const char *path, json_t *args, const struct els_handler *const *handlers,
		       unsigned max_ms, const char **code, char *msg, size_t msglen);
/* The part of q a management `log` request can carry (single kind, verdict and port; lists of
 * addresses, reasons and handlers that fit the protocol's 64 bytes), as its args (new
 * reference). Whatever is left out is wider, never narrower: the caller applies
 * els_query_match_json to the rows and pages on with before_seq. */
json_t *els_query_wire_args(const struct els_query *q, unsigned limit);

/* ---- top (lib/query/query_top.c) ---- */

enum els_top_by { ELS_TOP_PORT, ELS_TOP_SRC, ELS_TOP_REASON, ELS_TOP_PERMIT };
/* "port", "src", "reason", "permit": 0, or -EINVAL. */
int els_top_by_parse(const char *s, enum els_top_by *by);
struct els_top;
struct els_top *els_top_new(enum els_top_by by);
/* Counts one row: its `count` (packets aggregated into a drop record; 1 when null) under its
 * key (dport, src, reason, or rule_name / "#rule"). 0 or -ENOMEM. */
int els_top_add(struct els_top *t, json_t *row);
/* The n biggest keys (0: all), by packets then records; text table or NDJSON lines
 * {"by", "value", "packets", "records"}. */
void els_top_print(struct els_top *t, unsigned n, bool json, FILE *out);
void els_top_free(struct els_top *t);

#endif
