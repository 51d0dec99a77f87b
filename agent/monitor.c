/* The monitor's writer thread and SQLite file (see include/els/monitor.h and
 * docs/monitor-schema.md).
 *
 * One thread owns the sqlite3 handle. It drains the producers' rings round-robin into an open
 * transaction and commits after batch_max rows or flush_ms, whichever comes first. Producers
 * never wait for it: when idle it sleeps on a condition variable that only sync and close
 * signal. Nothing is lost silently: a full ring's losses become a gap record placed where they
 * happened, and the records of a failed transaction become one "write error" gap record in the
 * first transaction that succeeds again.
 *
 * Lock order: only m->mu exists; producers never take it. */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "els/addr.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/reason.h"

#define MON_IDLE_MS	  5    /* longest idle sleep: bounds the latency of a quiet ring */
#define MON_DRAIN_CHUNK	  64   /* records taken from one ring before visiting the next */
#define MON_RETRY_MIN_MS  50   /* first retry after a failed transaction */
#define MON_RETRY_MAX_MS  2000 /* retries back off up to this */
#define MON_STAT_MS	  1000 /* how often the path is checked for a deleted or replaced file */
#define MON_MAX_PRODUCERS 4096

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE records("
    " seq INTEGER PRIMARY KEY,"
    " ts_ns INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " verdict TEXT,"
    " dir TEXT,"
    " family INTEGER,"
    " proto TEXT,"
    " src TEXT, sport INTEGER, dst TEXT, dport INTEGER,"
    " icmp_type INTEGER, icmp_code INTEGER, tcp_flags INTEGER,"
    " handler TEXT, reason TEXT,"
    " rule INTEGER, rule_name TEXT, generation INTEGER,"
    " count INTEGER NOT NULL DEFAULT 1,"
    " pkts_init INTEGER, pkts_resp INTEGER, bytes_init INTEGER, bytes_resp INTEGER,"
    " duration_ns INTEGER,"
    " detail TEXT);"
    "CREATE INDEX records_ts ON records(ts_ns);"
    "CREATE VIEW records_v AS SELECT seq,"
    " strftime('%Y-%m-%dT%H:%M:%fZ', ts_ns/1e9, 'unixepoch') AS time, kind, verdict, dir,"
    " proto, src, sport, dst, dport, handler, reason, rule_name, count, detail FROM records;"
    "INSERT INTO meta(key, value) VALUES('schema_version', '1');";

static const char insert_sql[] =
    "INSERT INTO records(ts_ns, kind, verdict, dir, family, proto, src, sport, dst, dport,"
    " icmp_type, icmp_code, tcp_flags, handler, reason, rule, rule_name, generation, count,"
    " pkts_init, pkts_resp, bytes_init, bytes_resp, duration_ns, detail)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25)";

/* Per-ring bookkeeping. [W] writer only; [A] atomic, written by the writer, read by sync. */
struct ring_state {
	uint64_t consumed;	    /* [W] records taken off the ring */
	uint64_t lost_seen;	    /* [W] ring losses already turned into gap records */
	_Atomic uint64_t done;	    /* [A] consumed, as of the last commit or discard */
	_Atomic uint64_t lost_done; /* [A] lost_seen, as of the last commit or discard */
};

struct els_monitor {
	/* [I] set by open, never changed */
	char *path;
	unsigned nring, batch_max, flush_ms, busy_ms;
	struct els_ring **rings;
	struct ring_state *rs;

	/* [W] the writer thread's, or the opener's until start */
	sqlite3 *db;
	sqlite3_stmt *ins;
	dev_t dev;
	ino_t ino;
	bool in_txn;
	unsigned txn_rows;    /* rows in the open transaction */
	uint64_t txn_value;   /* records those rows stand for: 1 per record, count per gap */
	uint64_t txn_records; /* rows that are producers' records, not gaps */
	uint64_t txn_start_ms;
	bool failed; /* discarding until retry_ms, after a failed transaction */
	bool reopen; /* the file is gone or replaced: reopen before the next write */
	uint64_t retry_ms, backoff_ms, next_stat_ms;
	uint64_t pending_lost; /* records to report in the next write-error gap */
	char errmsg[64];       /* why the last transaction failed */

	/* threads */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t wake;	 /* [mu] sync and close wake the writer */
	pthread_cond_t progress; /* [mu] the writer tells sync that done moved */
	_Atomic bool stop;
	_Atomic bool flush_req;

	_Atomic uint64_t written, write_errors, write_lost;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void deadline_after(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- rows ---- */

static const char *kind_name(unsigned kind)
{
	static const char *const names[] = {
	    [ELS_REC_DROP] = "drop",	 [ELS_REC_ADMIT] = "admit", [ELS_REC_FLOW_END] = "flow_end",
	    [ELS_REC_ACCEPT] = "accept", [ELS_REC_GAP] = "gap",	    [ELS_REC_EVENT] = "event",
	};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : NULL;
}

static const char *proto_name(unsigned proto, char *buf, size_t len)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 58:
		return "icmpv6";
	default:
		snprintf(buf, len, "%u", proto);
		return buf;
	}
}

static void bind_text(sqlite3_stmt *st, int i, const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : 0;

	if (n)
		sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* For the writer's own constant strings: NULL binds NULL. */
static void bind_const(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* Binds and steps one row. Strings are bound SQLITE_STATIC: the step copies them before this
 * function returns and the buffers go away. Returns an SQLite result code. */
static int insert_row(sqlite3_stmt *st, const struct els_record *r)
{
	char kbuf[8], pbuf[8], sbuf[ELS_ADDR_STRLEN], dbuf[ELS_ADDR_STRLEN];
	const char *kind = kind_name(r->kind);
	bool pkt = r->kind != ELS_REC_GAP && r->kind != ELS_REC_EVENT;
	bool has_l3 = pkt && (r->family == ELS_AF_INET || r->family == ELS_AF_INET6);
	bool tcp = has_l3 && r->proto == 6, udp = has_l3 && r->proto == 17;
	bool icmp = has_l3 && (r->proto == 1 || r->proto == 58);
	int rc;

	if (!kind) {
		snprintf(kbuf, sizeof(kbuf), "%u", r->kind);
		kind = kbuf;
	}
	bind_u64(st, 1, r->ts_ns);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	bind_const(st, 3,
		   r->verdict == ELS_ACCEPT ? "accept"
		   : r->verdict == ELS_DROP ? "drop"
					    : NULL);
	bind_const(st, 4, !pkt ? NULL : r->dir == ELS_DIR_OUT ? "out" : "in");
	if (has_l3) {
		sqlite3_bind_int(st, 5, r->family);
		sqlite3_bind_text(st, 6, proto_name(r->proto, pbuf, sizeof(pbuf)), -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 7, els_addr_str(&r->src, r->family, sbuf), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 9, els_addr_str(&r->dst, r->family, dbuf), -1, SQLITE_STATIC);
	}
	/* A record carries no "has ports" flag: zero ports on a protocol without ports mean none,
	 * while TCP/UDP keep a 0 so that port_zero drops read as what they are. */
	if (tcp || udp || (has_l3 && (r->sport || r->dport))) {
		sqlite3_bind_int(st, 8, r->sport);
		sqlite3_bind_int(st, 10, r->dport);
	}
	if (icmp) {
		sqlite3_bind_int(st, 11, r->icmp_type);
		sqlite3_bind_int(st, 12, r->icmp_code);
	}
	if (tcp)
		sqlite3_bind_int(st, 13, r->tcp_flags);
	bind_text(st, 14, r->handler, 64);
	bind_const(st, 15, r->reason != ELS_R_NONE ? els_reason_name(r->reason) : NULL);
	if (r->rule)
		bind_u64(st, 16, r->rule);
	bind_text(st, 17, r->rule_name, sizeof(r->rule_name));
	if (r->kind != ELS_REC_GAP)
		bind_u64(st, 18, r->generation);
	bind_u64(st, 19, r->count ? r->count : 1);
	if (r->kind == ELS_REC_FLOW_END) {
		bind_u64(st, 20, r->pkts[0]);
		bind_u64(st, 21, r->pkts[1]);
		bind_u64(st, 22, r->bytes[0]);
		bind_u64(st, 23, r->bytes[1]);
		bind_u64(st, 24, r->duration_ns);
	}
	bind_text(st, 25, r->detail, sizeof(r->detail));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- the file ---- */

static void close_db(struct els_monitor *m)
{
	sqlite3_finalize(m->ins);
	m->ins = NULL;
	sqlite3_close_v2(m->db);
	m->db = NULL;
}

/* Creates the schema in an empty file, or checks the version of an existing one. */
static int check_schema(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = -EINVAL;
	const char *v;

	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "cannot read: %s", sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3_column_int(st, 0) == 0) {
		sqlite3_finalize(st);
		st = NULL;
		if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "cannot create the schema: %s", sqlite3_errmsg(db));
			goto out;
		}
		ret = 0;
		goto out;
	}
	sqlite3_finalize(st);
	rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen,
			 "not an els monitor file (no schema_version in a meta table): "
			 "point monitor path at a new file");
		goto out;
	}
	v = (const char *)sqlite3_column_text(st, 0);
	if (v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 10 && atoi(v) > 1) {
		snprintf(err, errlen,
			 "schema version %s is newer than this elsd understands (%d): "
			 "use a newer elsd or another file",
			 v, ELS_MONITOR_SCHEMA_VERSION);
		goto out;
	}
	if (!v || strcmp(v, "1") != 0) {
		snprintf(err, errlen, "unknown schema version '%s'", v ? v : "");
		goto out;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	return ret;
}

/* Opens m->path (creating it with the schema), sets the pragmas, prepares the insert.
 * 0, or -errno with a message in err. */
static int open_db(struct els_monitor *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct stat sb;
	int rc, ret = -EIO;

	/* NOMUTEX: one thread at a time uses the handle (the opener, then the writer), so
	 * SQLite's per-call locking only costs time. */
	rc =
	    sqlite3_open_v2(m->path, &m->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		char *copy = strdup(m->path);
		const char *dir = copy ? dirname(copy) : NULL;

		if (dir && stat(dir, &sb) != 0)
			snprintf(err, errlen, "cannot create: directory %s does not exist", dir);
		else
			snprintf(err, errlen, "cannot open: %s",
				 m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc));
		free(copy);
		goto out;
	}
	if (sqlite3_db_readonly(m->db, "main") == 1) {
		snprintf(err, errlen, "is read-only: fix its permissions or use another file");
		ret = -EACCES;
		goto out;
	}
	sqlite3_busy_timeout(m->db, (int)m->busy_ms);
	/* WAL: readers (elsctl, sqlite3 on the command line) never block the writer. NORMAL: a
	 * power cut may lose the last transactions, never the file. */
	rc = sqlite3_prepare_v2(m->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "cannot open: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(m->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(m->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	ret = check_schema(m->db, err, errlen);
	if (ret == 0 && sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot create the schema: %s", sqlite3_errmsg(m->db));
		ret = -EIO;
	}
	if (ret)
		goto out;
	ret = -EIO;
	if (sqlite3_prepare_v3(m->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &m->ins, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "cannot prepare the insert: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	if (stat(m->path, &sb) == 0) {
		m->dev = sb.st_dev;
		m->ino = sb.st_ino;
	}
	ret = 0;
out:
	sqlite3_finalize(st);
	if (ret)
		close_db(m);
	return ret;
}

/* A deleted or replaced file takes every later write with it, silently: notice and reopen. */
static void check_file(struct els_monitor *m, uint64_t now)
{
	struct stat sb;

	if (now < m->next_stat_ms)
		return;
	m->next_stat_ms = now + MON_STAT_MS;
	if (stat(m->path, &sb) != 0 || sb.st_dev != m->dev || sb.st_ino != m->ino)
		m->reopen = true;
}

/* ---- transactions ---- */

static void publish(struct els_monitor *m)
{
	for (unsigned i = 0; i < m->nring; i++) {
		atomic_store_explicit(&m->rs[i].done, m->rs[i].consumed, memory_order_release);
		atomic_store_explicit(&m->rs[i].lost_done, m->rs[i].lost_seen,
				      memory_order_release);
	}
	pthread_mutex_lock(&m->mu);
	pthread_cond_broadcast(&m->progress);
	pthread_mutex_unlock(&m->mu);
}

/* The transaction failed: its rows, and the losses its gap rows reported, become part of the
 * next write-error gap. Writing resumes after a back-off; until then records are discarded
 * and counted, so the rings keep moving and sync keeps returning. */
static void fail_txn(struct els_monitor *m, const char *why)
{
	snprintf(m->errmsg, sizeof(m->errmsg), "%s", why);
	if (m->db && !sqlite3_get_autocommit(m->db))
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	atomic_fetch_add(&m->write_errors, 1);
	atomic_fetch_add(&m->write_lost, m->txn_records);
	m->pending_lost += m->txn_value;
	m->in_txn = false;
	m->txn_rows = 0;
	m->txn_value = m->txn_records = 0;
	m->failed = true;
	m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : MON_RETRY_MIN_MS;
	if (m->backoff_ms > MON_RETRY_MAX_MS)
		m->backoff_ms = MON_RETRY_MAX_MS;
	m->retry_ms = mono_ms() + m->backoff_ms;
	publish(m);
}

static bool add_row(struct els_monitor *m, const struct els_record *r)
{
	int rc = insert_row(m->ins, r);

	if (rc != SQLITE_OK) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return false;
	}
	m->txn_rows++;
	m->txn_value += r->kind == ELS_REC_GAP ? r->count : 1;
	m->txn_records += r->kind != ELS_REC_GAP;
	return true;
}

static void make_gap(struct els_record *g, uint64_t ts_ns, uint64_t count)
{
	memset(g, 0, sizeof(*g));
	g->ts_ns = ts_ns;
	g->kind = ELS_REC_GAP;
	g->count = count;
	g->reason = ELS_R_MONITOR_GAP;
}

/* Opens a transaction, reopening the file first if needed; the first row reports what
 * earlier failures lost. False when writing is not possible now. */
static bool begin_txn(struct els_monitor *m)
{
	uint64_t now = mono_ms();
	char err[160];

	check_file(m, now);
	if (m->reopen || !m->db) {
		close_db(m);
		if (open_db(m, err, sizeof(err)) != 0) {
			fail_txn(m, err);
			return false;
		}
		m->reopen = false;
	}
	if (sqlite3_exec(m->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return false;
	}
	m->in_txn = true;
	m->txn_start_ms = now;
	if (m->pending_lost) {
		struct els_record g;

		make_gap(&g, real_ns(), m->pending_lost);
		snprintf(g.detail, sizeof(g.detail), "write error: %s", m->errmsg);
		m->pending_lost = 0;
		if (!add_row(m, &g)) {
			m->pending_lost += g.count; /* still to be reported */
			return false;
		}
	}
	return true;
}

static void commit_txn(struct els_monitor *m)
{
	if (!m->in_txn)
		return;
	if (sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return;
	}
	atomic_fetch_add(&m->written, m->txn_rows);
	m->in_txn = false;
	m->txn_rows = 0;
	m->txn_value = m->txn_records = 0;
	m->backoff_ms = 0;
	publish(m);
}

/* Writes one row, or counts it lost while writing is failing. */
static void put(struct els_monitor *m, const struct els_record *r)
{
	if (m->failed && mono_ms() >= m->retry_ms)
		m->failed = false;
	if (!m->failed && (m->in_txn || begin_txn(m)) && add_row(m, r)) {
		if (m->txn_rows >= m->batch_max)
			commit_txn(m);
		return;
	}
	m->pending_lost += r->kind == ELS_REC_GAP ? r->count : 1;
	if (r->kind != ELS_REC_GAP)
		atomic_fetch_add(&m->write_lost, 1);
}

static void put_ring_gap(struct els_monitor *m, unsigned i, uint64_t ts_ns, uint64_t count)
{
	struct els_record g;

	make_gap(&g, ts_ns, count);
	snprintf(g.detail, sizeof(g.detail), "ring %u full: %llu records lost", i,
		 (unsigned long long)count);
	put(m, &g);
}

/* Takes up to max records off ring i; returns how many rows that produced. */
static unsigned drain_ring(struct els_monitor *m, unsigned i, unsigned max)
{
	struct els_ring *r = m->rings[i];
	struct ring_state *rs = &m->rs[i];
	unsigned n = 0;

	while (n < max) {
		/* lost before peek: a loss counted here happened before any record pushed after
		 * it, so an empty ring means the gap belongs at the end */
		uint64_t lost = els_ring_lost(r), lost_before;
		const struct els_record *rec = els_ring_peek(r, &lost_before);

		if (!rec) {
			if (lost > rs->lost_seen) {
				put_ring_gap(m, i, real_ns(), lost - rs->lost_seen);
				rs->lost_seen = lost;
				n++;
			}
			break;
		}
		if (lost_before > rs->lost_seen) {
			put_ring_gap(m, i, rec->ts_ns, lost_before - rs->lost_seen);
			rs->lost_seen = lost_before;
			n++;
		}
		put(m, rec);
		els_ring_consume(r);
		rs->consumed++;
		n++;
	}
	return n;
}

/* One round-robin pass over every ring, then whatever commit is due: flush commits as soon
 * as the rings are empty, last also retries a failed file at once. Returns rows handled. */
static unsigned writer_pass(struct els_monitor *m, bool flush, bool last)
{
	unsigned got = 0;
	uint64_t now;

	for (unsigned i = 0; i < m->nring; i++)
		got += drain_ring(m, i, MON_DRAIN_CHUNK);
	now = mono_ms();
	if (m->failed && (now >= m->retry_ms || last) && m->pending_lost) {
		/* retry even with no new record, so the write-error gap reaches the file */
		m->failed = false;
		begin_txn(m);
	}
	if (m->in_txn && (now >= m->txn_start_ms + m->flush_ms || (got == 0 && (flush || last))))
		commit_txn(m);
	else if (!m->in_txn && got)
		publish(m); /* discarded records count as handled for sync */
	return got;
}

static void *writer_main(void *arg)
{
	struct els_monitor *m = arg;

	for (;;) {
		/* stop is read before the pass: when the pass then finds every ring empty, every
		 * record pushed before close is in */
		bool stopping = atomic_load(&m->stop);
		bool flush = atomic_exchange(&m->flush_req, false);
		unsigned got = writer_pass(m, flush, stopping);
		struct timespec ts;

		if (flush && got)
			atomic_store(&m->flush_req, true); /* not done yet: keep flushing */
		if (stopping && got == 0)
			break; /* the pass committed, and made a last try for a write-error gap */
		if (got)
			continue;
		deadline_after(&ts, MON_IDLE_MS);
		pthread_mutex_lock(&m->mu);
		if (!atomic_load(&m->stop) && !atomic_load(&m->flush_req))
			pthread_cond_timedwait(&m->wake, &m->mu, &ts);
		pthread_mutex_unlock(&m->mu);
	}
	publish(m);
	return NULL;
}

/* ---- public ---- */

struct els_monitor *els_monitor_open(const struct els_monitor_opts *o, struct els_diag *diag)
{
	struct els_monitor *m = NULL;
	pthread_condattr_t ca;
	char err[256];

	if (!o->path || !*o->path) {
		els_diag_file(diag, NULL, 0, "monitor: no file path given");
		return NULL;
	}
	if (o->producers == 0 || o->producers > MON_MAX_PRODUCERS) {
		els_diag_file(diag, o->path, 0, "monitor: producers must be 1..%d, not %u",
			      MON_MAX_PRODUCERS, o->producers);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->nring = o->producers;
	m->batch_max = o->batch_max ? o->batch_max : 1024;
	m->flush_ms = o->flush_ms ? o->flush_ms : 200;
	m->busy_ms = o->busy_timeout_ms ? o->busy_timeout_ms : 1000;
	m->path = strdup(o->path);
	m->rings = calloc(m->nring, sizeof(*m->rings));
	m->rs = calloc(m->nring, sizeof(*m->rs));
	if (!m->path || !m->rings || !m->rs)
		goto nomem;
	for (unsigned i = 0; i < m->nring; i++) {
		m->rings[i] = els_ring_new(o->ring_size ? o->ring_size : 8192);
		if (!m->rings[i])
			goto nomem;
	}
	if (open_db(m, err, sizeof(err)) != 0) {
		els_diag_file(diag, o->path, 0, "monitor file %s", err);
		goto fail;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_cond_init(&m->progress, &ca);
	pthread_condattr_destroy(&ca);
	return m;
nomem:
	els_diag_file(diag, o->path, 0, "monitor: out of memory");
fail:
	if (m) {
		for (unsigned i = 0; m->rings && i < m->nring; i++)
			els_ring_free(m->rings[i]);
		free(m->rings);
		free(m->rs);
		free(m->path);
		free(m);
	}
	return NULL;
}

int els_monitor_start(struct els_monitor *m)
{
	int rc;

	if (m->started)
		return -EALREADY;
	rc = pthread_create(&m->thread, NULL, writer_main, m);
	if (rc)
		return -rc;
	pthread_setname_np(m->thread, "els-monitor");
	m->started = true;
	return 0;
}

void els_monitor_close(struct els_monitor *m)
{
	if (!m)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->mu);
		atomic_store(&m->stop, true);
		pthread_cond_signal(&m->wake);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thread, NULL);
	} else {
		while (writer_pass(m, true, true))
			;
	}
	close_db(m);
	for (unsigned i = 0; i < m->nring; i++)
		els_ring_free(m->rings[i]);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->progress);
	pthread_mutex_destroy(&m->mu);
	free(m->rings);
	free(m->rs);
	free(m->path);
	free(m);
}

struct els_ring *els_monitor_ring(struct els_monitor *m, unsigned i)
{
	return i < m->nring ? m->rings[i] : NULL;
}

void els_monitor_get_stats(struct els_monitor *m, struct els_monitor_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->written = atomic_load(&m->written);
	out->write_errors = atomic_load(&m->write_errors);
	out->write_lost = atomic_load(&m->write_lost);
	for (unsigned i = 0; i < m->nring; i++)
		out->lost += els_ring_lost(m->rings[i]);
}

static bool synced(struct els_monitor *m, const uint64_t *target)
{
	for (unsigned i = 0; i < m->nring; i++) {
		if (atomic_load_explicit(&m->rs[i].done, memory_order_acquire) < target[2 * i] ||
		    atomic_load_explicit(&m->rs[i].lost_done, memory_order_acquire) <
			target[2 * i + 1])
			return false;
	}
	return true;
}

int els_monitor_sync(struct els_monitor *m, unsigned timeout_ms)
{
	uint64_t *target = calloc(2 * (size_t)m->nring, sizeof(*target));
	struct timespec ts;
	int ret = 0;

	if (!target)
		return -ENOMEM;
	for (unsigned i = 0; i < m->nring; i++) {
		target[2 * i] = els_ring_pushed(m->rings[i]);
		target[2 * i + 1] = els_ring_lost(m->rings[i]);
	}
	if (!m->started) {
		while (writer_pass(m, true, false))
			;
		ret = synced(m, target) ? 0 : -ETIMEDOUT;
		goto out;
	}
	deadline_after(&ts, timeout_ms);
	pthread_mutex_lock(&m->mu);
	atomic_store(&m->flush_req, true);
	pthread_cond_signal(&m->wake);
	while (!synced(m, target)) {
		if (pthread_cond_timedwait(&m->progress, &m->mu, &ts) == ETIMEDOUT) {
			ret = synced(m, target) ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&m->mu);
out:
	free(target);
	return ret;
}
