/* els-sweep's side of PostgreSQL: connecting (TLS verified unless told otherwise), checking
 * and creating the enterprise schema, and submitting batches. A batch goes into a temporary
 * staging table by COPY, then into the per-kind tables with ON CONFLICT DO NOTHING, together
 * with its els_sweeps row, in one transaction: it lands whole or not at all, and landing twice
 * changes nothing. */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep.h"

static const char stage_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS els_stage (seq bigint, ts_ns bigint, kind text,"
    " verdict text, dir text, family smallint, proto text, src text, sport integer, dst text,"
    " dport integer, icmp_type smallint, icmp_code smallint, tcp_flags smallint, handler text,"
    " reason text, rule bigint, rule_name text, generation bigint, count bigint,"
    " pkts_init bigint, pkts_resp bigint, bytes_init bigint, bytes_resp bigint,"
    " duration_ns bigint, detail text, mac bytea) ON COMMIT DELETE ROWS";

#define COMMON	   "agent_id, host, chain_id, seq, ts, ts_ns, mac"
#define COMMON_SEL "$1, $2, $3, seq, to_timestamp(ts_ns / 1e9), ts_ns, mac"
#define PKT                                                                                        \
	"dir, family, proto, src, sport, dst, dport, icmp_type, icmp_code, tcp_flags, handler,"    \
	" reason, rule, rule_name, generation"
#define PKT_SEL                                                                                    \
	"dir, family, proto, src::inet, sport, dst::inet, dport, icmp_type, icmp_code,"            \
	" tcp_flags, handler, reason, rule, rule_name, generation"
#define INTO(table, cols, sel, kind)                                                               \
	"INSERT INTO " table " (" COMMON ", " cols ") SELECT " COMMON_SEL ", " sel                 \
	" FROM els_stage WHERE kind = '" kind "' ON CONFLICT DO NOTHING RETURNING 1"

/* The kinds submit_sql has a table for. A sweep stops at a record of any other kind (a monitor
 * newer than this els-sweep) rather than mark it swept, which would let retention delete it. */
const char *const sweep_pg_kinds[] = {"drop",	  "admit", "accept", "would_drop",
				      "flow_end", "event", "gap",    "half_open", NULL};

/* Every kind in one statement: one round trip per batch, whatever its size (t_sweep checks
 * that every kind the agent writes lands in its table). */
#define FLOW_END_COLS "pkts_init, pkts_resp, bytes_init, bytes_resp, duration_ns"
static const char submit_sql[] =
    "WITH d AS (" INTO("els_drops", PKT ", packets", PKT_SEL ", count", "drop") "),"
    " a AS (" INTO("els_admits", PKT, PKT_SEL, "admit") "),"
    " c AS (" INTO("els_accepts", PKT, PKT_SEL, "accept") "),"
    " w AS (" INTO("els_would_drops", PKT, PKT_SEL, "would_drop") "),"
    " f AS (" INTO("els_flow_ends", PKT ", " FLOW_END_COLS, PKT_SEL ", " FLOW_END_COLS,
		   "flow_end") "),"
    " e AS (" INTO("els_events", "handler, reason, generation, detail",
		   "handler, reason, generation, detail", "event") "),"
    " g AS (" INTO("els_gaps", "records, detail", "count, detail", "gap") "),"
    " h AS (" INTO("els_half_opens", PKT ", flows", PKT_SEL ", count", "half_open") "),"
    " s AS (INSERT INTO els_sweeps (agent_id, host, chain_id, first_seq, last_seq, last_mac,"
    " records) VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'), $7) ON CONFLICT DO NOTHING)"
    " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM a) + (SELECT count(*) FROM c)"
    " + (SELECT count(*) FROM w) + (SELECT count(*) FROM f) + (SELECT count(*) FROM e)"
    " + (SELECT count(*) FROM g) + (SELECT count(*) FROM h)";

PGconn *sweep_pg_connect(const struct sweep_conf *c, char *err, size_t errlen)
{
	/* Later keywords override earlier ones, the expanded conninfo included: a default
	 * that fails secure, then the conninfo, then what the configuration says explicitly. */
	const char *keys[6], *vals[6];
	int n = 0;
	PGconn *pg;

	keys[n] = "sslmode", vals[n++] = "verify-full";
	keys[n] = "dbname", vals[n++] = c->conninfo;
	if (c->sslmode)
		keys[n] = "sslmode", vals[n++] = c->sslmode;
	if (c->sslrootcert)
		keys[n] = "sslrootcert", vals[n++] = c->sslrootcert;
	keys[n] = "application_name", vals[n++] = "els-sweep";
	keys[n] = NULL, vals[n] = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
			 pg ? PQerrorMessage(pg) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

static int exec_ok(PGconn *pg, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, sql);
	int st = PQresultStatus(r);
	int ret = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;

	if (ret) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		err[strcspn(err, "\n")] = '\0';
	}
	PQclear(r);
	return ret;
}

int sweep_pg_check_schema(PGconn *pg, char *err, size_t errlen)
{
	PGresult *r = PQexec(pg, "SELECT to_regclass('els_sweeps') IS NOT NULL AND"
				 " to_regclass('els_drops') IS NOT NULL AND"
				 " to_regclass('els_gaps') IS NOT NULL AND"
				 " to_regclass('els_would_drops') IS NOT NULL AND"
				 " to_regclass('els_half_opens') IS NOT NULL");
	int ret = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
	else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
		snprintf(err, errlen,
			 "the database lacks enterprise tables (none yet, or made by an older "
			 "els-sweep): create them with els-sweep --init-db (as a role that may; "
			 "safe to run again), or psql -f docs/enterprise-schema.sql");
	else
		ret = 0;
	PQclear(r);
	err[strcspn(err, "\n")] = '\0';
	return ret;
}

int sweep_pg_init_schema(PGconn *pg, char *err, size_t errlen)
{
	if (exec_ok(pg, "BEGIN", err, errlen) || exec_ok(pg, sweep_schema_sql, err, errlen) ||
	    exec_ok(pg, "COMMIT", err, errlen)) {
		PQclear(PQexec(pg, "ROLLBACK"));
		return -1;
	}
	return 0;
}

int sweep_pg_last(PGconn *pg, const struct sweep_ident *id, uint64_t *seq,
		  unsigned char mac[ELS_MON_MAC_LEN], char *err, size_t errlen)
{
	const char *p[2] = {id->agent_id, id->chain_id};
	PGresult *r = PQexecParams(pg,
				   "SELECT last_seq, encode(last_mac, 'hex') FROM els_sweeps"
				   " WHERE agent_id = $1 AND chain_id = $2"
				   " ORDER BY last_seq DESC LIMIT 1",
				   2, NULL, p, NULL, NULL, 0);
	int ret = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		err[strcspn(err, "\n")] = '\0';
	} else if (PQntuples(r) == 0) {
		ret = 0;
	} else if (els_mon_unhex(PQgetvalue(r, 0, 1), mac, ELS_MON_MAC_LEN) != 0) {
		snprintf(err, errlen, "els_sweeps holds a malformed last_mac for chain %s",
			 id->chain_id);
	} else {
		*seq = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
		ret = 1;
	}
	PQclear(r);
	return ret;
}

int sweep_pg_prepare(PGconn *pg, char *err, size_t errlen)
{
	return exec_ok(pg, stage_sql, err, errlen);
}

int sweep_pg_submit(PGconn *pg, const struct sweep_ident *id, const struct sweep_batch *b,
		    uint64_t *added, char *err, size_t errlen)
{
	char first[24], last[24], rows[16], mac[2 * ELS_MON_MAC_LEN + 1];
	const char *p[7] = {id->agent_id, id->host, id->chain_id, first, last, mac, rows};
	PGresult *r;

	if (exec_ok(pg, "BEGIN", err, errlen))
		return -1;
	r = PQexec(pg, "COPY els_stage FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	if (PQputCopyData(pg, b->buf, (int)b->len) != 1 || PQputCopyEnd(pg, NULL) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(pg));
		goto fail;
	}
	r = PQgetResult(pg);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	while ((r = PQgetResult(pg)))
		PQclear(r);
	snprintf(first, sizeof(first), "%" PRIu64, b->first_seq);
	snprintf(last, sizeof(last), "%" PRIu64, b->last_seq);
	snprintf(rows, sizeof(rows), "%u", b->rows);
	els_mon_hex(b->last_mac, ELS_MON_MAC_LEN, mac);
	r = PQexecParams(pg, submit_sql, 7, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	*added = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (exec_ok(pg, "COMMIT", err, errlen))
		goto fail;
	return 0;
fail:
	err[strcspn(err, "\n")] = '\0';
	PQclear(PQexec(pg, "ROLLBACK"));
	return -1;
}

void sweep_pg_finding(PGconn *pg, const struct sweep_ident *id, uint64_t seq, const char *what,
		      const char *detail)
{
	char s[24];
	const char *p[6] = {id->agent_id, id->host, id->chain_id, s, what, detail};

	snprintf(s, sizeof(s), "%" PRIu64, seq);
	PQclear(PQexecParams(pg,
			     "INSERT INTO els_findings (agent_id, host, chain_id, seq, finding,"
			     " detail) VALUES ($1, $2, $3, $4, $5, $6)",
			     6, NULL, p, NULL, NULL, 0));
}

/* ---- COPY text format ---- */

static int grow(struct sweep_batch *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 65536;
	while (cap < b->len + more)
		cap *= 2;
	char *n = realloc(b->buf, cap);
	if (!n)
		return -ENOMEM;
	b->buf = n;
	b->cap = cap;
	return 0;
}

/* Text with COPY's escapes: a backslash, tab, newline or carriage return in a detail must not
 * end a field or a row. */
static void put_text(struct sweep_batch *b, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = (char)s[i];
		const char *esc = c == '\\'   ? "\\\\"
				  : c == '\t' ? "\\t"
				  : c == '\n' ? "\\n"
				  : c == '\r' ? "\\r"
					      : NULL;

		if (esc) {
			memcpy(b->buf + b->len, esc, 2);
			b->len += 2;
		} else {
			b->buf[b->len++] = c;
		}
	}
}

int sweep_batch_add(struct sweep_batch *b, sqlite3_stmt *st)
{
	for (int i = 0; i <= ELS_MON_NCOLS; i++) {
		int t = sqlite3_column_type(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);

		if (grow(b, 2 * n + 80))
			return -ENOMEM;
		if (i)
			b->buf[b->len++] = '\t';
		if (t == SQLITE_NULL) {
			memcpy(b->buf + b->len, "\\N", 2);
			b->len += 2;
		} else if (i == ELS_MON_NCOLS) { /* mac: bytea hex, its backslash escaped */
			memcpy(b->buf + b->len, "\\\\x", 3);
			b->len += 3;
			els_mon_hex(sqlite3_column_blob(st, i), n, b->buf + b->len);
			b->len += 2 * n;
		} else if (t == SQLITE_INTEGER) {
			b->len += (size_t)sprintf(b->buf + b->len, "%lld",
						  (long long)sqlite3_column_int64(st, i));
		} else {
			put_text(b, sqlite3_column_text(st, i), n);
		}
	}
	if (grow(b, 1))
		return -ENOMEM;
	b->buf[b->len++] = '\n';
	if (!b->rows)
		b->first_seq = (uint64_t)sqlite3_column_int64(st, 0);
	b->last_seq = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(b->last_mac, sqlite3_column_blob(st, ELS_MON_NCOLS), ELS_MON_MAC_LEN);
	b->rows++;
	return 0;
}

void sweep_batch_reset(struct sweep_batch *b)
{
	b->len = 0;
	b->rows = 0;
}
