/* The monitor writer's file and transactions (see agent/monitor.c for the thread): opening
 * and reopening the file, adding chained rows, committing them with the chain head, failing
 * without losing count, the size cap, and retention between transactions. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "els/reason.h"
#include "events.h"
#include "els/log.h"
#include "els/monitor_int.h"

#define NS_PER_DAY 86400000000000ull

/* ---- the file ---- */

void mon_close_db(struct els_monitor *m)
{
	sqlite3_finalize(m->ins);
	sqlite3_finalize(m->ins_many);
	m->ins = m->ins_many = NULL;
	sqlite3_close_v2(m->db);
	m->db = NULL;
	if (m->lock_fd >= 0) /* after the close: see monitor_int.h */
		close(m->lock_fd);
	m->lock_fd = -1;
}

/* Takes the writer's lock on the file m->db just opened. 0, or -EBUSY / -errno with err. */
static int lock_file(struct els_monitor *m, char *err, size_t errlen)
{
	m->lock_fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (m->lock_fd < 0) {
		snprintf(err, errlen, "cannot open to lock it: %s", strerror(errno));
		return -errno;
	}
	if (flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		if (e == EWOULDBLOCK)
			snprintf(err, errlen,
				 "is in use: another elsd process (the running daemon, or a "
				 "replay) writes it, and a monitor file has one writer; give this "
				 "one another file (--monitor FILE)");
		else
			snprintf(err, errlen, "cannot lock: %s", strerror(e));
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	return 0;
}

/* Opens m->path (creating it with the schema, or migrating it), sets the pragmas, finds where
 * the chain continues, prepares the insert. 0, or -errno with a message in err. */
int mon_open_db(struct els_monitor *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct stat sb;
	char sql[4096];
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
	/* Before anything is written, the schema of a new file included. */
	ret = lock_file(m, err, errlen);
	if (ret)
		goto out;
	ret = -EIO;
	sqlite3_busy_timeout(m->db, (int)m->busy_ms);
	/* WAL: readers (els-log, els-sweep, sqlite3 on the command line) never block the writer.
	 * NORMAL: a power cut may lose the last transactions, never the file; the chain head
	 * goes with them, so the chain stays whole. */
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
	ret = mon_file_prepare(m->db, &m->key, m->agent_id, &m->fs, err, errlen);
	if (ret == 0 && sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot create the schema: %s", sqlite3_errmsg(m->db));
		ret = -EIO;
	}
	if (ret)
		goto out;
	ret = -EIO;
	if (mon_insert_sql(sql, sizeof(sql), 1) != 0 ||
	    sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m->ins, NULL) !=
		SQLITE_OK ||
	    mon_insert_sql(sql, sizeof(sql), MON_INS_ROWS) != 0 ||
	    sqlite3_prepare_v3(m->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m->ins_many, NULL) !=
		SQLITE_OK) {
		snprintf(err, errlen, "cannot prepare the insert: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	mon_binds_reset(&m->binds);
	mon_binds_reset(&m->binds_many);
	if (stat(m->path, &sb) == 0) {
		m->dev = sb.st_dev;
		m->ino = sb.st_ino;
	}
	m->committed_seq = m->fs.head_seq;
	memcpy(m->committed_mac, m->fs.head_mac, ELS_MON_MAC_LEN);
	m->note_pending = m->fs.note[0] != '\0';
	if (m->note_pending)
		els_log(ELS_LL_WARNING, "monitor %s: %s", m->path, m->fs.note);
	if (m->agent_id && *m->agent_id && strcmp(m->agent_id, m->fs.agent_id) != 0)
		els_log(ELS_LL_WARNING,
			"monitor %s: agent_id is \"%s\" in the file, \"%s\" in the configuration: "
			"the file keeps its own; move it away to start one with the new id",
			m->path, m->fs.agent_id, m->agent_id);
	ret = 0;
out:
	sqlite3_finalize(st);
	if (ret) {
		if (m->db && !sqlite3_get_autocommit(m->db))
			sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
		mon_close_db(m);
	}
	return ret;
}

/* A deleted or replaced file takes every later write with it, silently: notice and reopen. */
static void check_file(struct els_monitor *m, uint64_t now)
{
	struct stat sb;

	if (now && now < m->next_stat_ms)
		return; /* now = 0: check at once (before a commit) */
	if (now)
		m->next_stat_ms = now + MON_STAT_MS;
	if (stat(m->path, &sb) != 0 || sb.st_dev != m->dev || sb.st_ino != m->ino)
		m->reopen = true;
}

/* ---- transactions ---- */

void mon_publish(struct els_monitor *m)
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
 * next write-error gap, and the chain goes back to the last committed head. Writing resumes
 * after a back-off; until then records are discarded and counted, so the rings keep moving
 * and sync keeps returning. */
static void fail_txn(struct els_monitor *m, const char *why)
{
	if (!m->write_failing)
		els_log(ELS_LL_WARNING,
			"monitor %s: cannot write (%s); filtering goes on, and the records lost "
			"meanwhile are counted and reported in a gap row when writing works again",
			m->path, why);
	m->write_failing = true;
	m->txn_gap_lost = 0;
	snprintf(m->errmsg, sizeof(m->errmsg), "%s", why);
	if (m->db && !sqlite3_get_autocommit(m->db))
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	m->fs.head_seq = m->committed_seq;
	memcpy(m->fs.head_mac, m->committed_mac, ELS_MON_MAC_LEN);
	atomic_fetch_add(&m->write_errors, 1);
	atomic_fetch_add(&m->write_lost, m->txn_records);
	m->pending_lost += m->txn_value;
	m->in_txn = false;
	m->npend = 0;
	m->txn_rows = 0;
	m->txn_value = m->txn_records = 0;
	m->failed = true;
	m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : MON_RETRY_MIN_MS;
	if (m->backoff_ms > MON_RETRY_MAX_MS)
		m->backoff_ms = MON_RETRY_MAX_MS;
	m->retry_ms = els_now_mono_ms() + m->backoff_ms;
	mon_publish(m);
}

/* Between writes: a file deleted or replaced while no record came is noticed, and made again,
 * within MON_STAT_MS, not only at the next record (a quiet agent's file would otherwise stay
 * missing until traffic came). A failing writer keeps its own retry schedule. */
void mon_idle_check(struct els_monitor *m)
{
	char err[256];

	if (m->write_failing || m->in_txn)
		return;
	check_file(m, els_now_mono_ms());
	if (!m->reopen)
		return;
	mon_close_db(m);
	if (mon_open_db(m, err, sizeof(err)) != 0) {
		fail_txn(m, err);
		return;
	}
	m->reopen = false;
}

/* Inserts the rows added since the last call: a full queue in one statement, a partial one
 * (at commit) row by row. An SQLite result code. */
static int flush_rows(struct els_monitor *m)
{
	unsigned i = 0;
	int rc = SQLITE_OK;

	if (m->npend == MON_INS_ROWS) {
		rc = mon_insert_rows(m->ins_many, &m->binds_many, m->pend, MON_INS_ROWS);
		i = MON_INS_ROWS;
	}
	for (; i < m->npend && rc == SQLITE_OK; i++)
		rc = mon_insert_rows(m->ins, &m->binds, &m->pend[i], 1);
	m->npend = 0;
	return rc;
}

/* Adds a chained row to the open transaction. The row is queued and inserted with the next
 * MON_INS_ROWS, or at commit; a failure then fails the whole transaction, queued rows
 * included, so they are counted like every other row of it. */
static bool add_row(struct els_monitor *m, const struct els_record *r)
{
	struct mon_pend *p = &m->pend[m->npend];
	uint64_t seq = m->fs.head_seq + 1;

	mon_pend_set(p, seq, r);
	if (mon_mac_vals(&m->key, m->fs.head_mac, p->w.v, p->mac) != 0) {
		fail_txn(m, "cannot compute a MAC");
		return false;
	}
	m->fs.head_seq = seq;
	memcpy(m->fs.head_mac, p->mac, ELS_MON_MAC_LEN);
	if (++m->npend == MON_INS_ROWS && flush_rows(m) != SQLITE_OK) {
		/* this row is not counted in the transaction yet: the caller counts it */
		fail_txn(m, sqlite3_errmsg(m->db));
		return false;
	}
	m->txn_rows++;
	/* The monitor's own losses are alerted once, when their gap row goes in (not per
	 * retry); the kernel's (queue_overflow) were alerted where they were counted. */
	if (r->kind == ELS_REC_GAP && r->reason == ELS_R_MONITOR_GAP) {
		char d[sizeof(r->detail)];
		els_alert_limited(ELS_R_MONITOR_GAP, "records=%llu detail=\"%s\"",
				  (unsigned long long)r->count,
				  els_alert_clean(d, sizeof(d), r->detail));
	}
	m->txn_value += r->kind == ELS_REC_GAP ? r->count : 1;
	m->txn_records += r->kind != ELS_REC_GAP;
	/* a flood commits thousands of rows at once: look at the cap within the transaction
	 * too (page_count counts its pages; 256 rows are whole queues, so none is pending), or a
	 * level could be skipped */
	if (m->max_size && (m->txn_rows & 255) == 0)
		mon_update_cap(m);
	return true;
}

void mon_make_gap(struct els_record *g, uint64_t ts_ns, uint64_t count)
{
	memset(g, 0, sizeof(*g));
	g->ts_ns = ts_ns;
	g->kind = ELS_REC_GAP;
	g->count = count;
	g->reason = ELS_R_MONITOR_GAP;
}

static void make_event(struct els_record *e, const char *detail)
{
	memset(e, 0, sizeof(*e));
	e->ts_ns = els_now_real();
	e->kind = ELS_REC_EVENT;
	e->count = 1;
	e->reason = ELS_R_EVENT;
	e->handler = "monitor";
	snprintf(e->detail, sizeof(e->detail), "%s", detail);
}

/* Rows past the head this writer committed were written by someone else (the sqlite3 shell,
 * a program that ignored the writer's lock): inserting at the same seq would fail on every
 * later transaction. The writer goes on after them, still chained on its own last row (it
 * vouches for nothing it did not write, so els-log --verify reports the foreign rows, or the
 * break in the chain after them), and says so in an event row. In the open transaction;
 * false when the transaction failed. */
static bool check_head(struct els_monitor *m)
{
	sqlite3_stmt *st = NULL;
	int64_t max = -1;
	int rc = sqlite3_prepare_v2(m->db, "SELECT max(seq) FROM records", -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
		max = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (max < 0) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return false;
	}
	if ((uint64_t)max <= m->committed_seq)
		return true;

	struct els_record e;
	char d[sizeof(e.detail)];

	snprintf(d, sizeof(d), "conflict: rows %llu..%llu not written by this elsd",
		 (unsigned long long)m->committed_seq + 1, (unsigned long long)max);
	els_log(ELS_LL_WARNING,
		"monitor %s: %s; writing goes on after them (els-log --verify reports them)",
		m->path, d);
	els_alert_limited(ELS_R_MONITOR_GAP, "detail=\"%s\"", d);
	m->committed_seq = m->fs.head_seq = (uint64_t)max;
	make_event(&e, d);
	return add_row(m, &e);
}

/* Opens a transaction, reopening the file first if needed; the first rows report what
 * earlier failures lost and what was found at open. False when writing is not possible. */
bool mon_begin_txn(struct els_monitor *m)
{
	uint64_t now = els_now_mono_ms();
	char err[256];

	check_file(m, now);
	if (m->reopen || !m->db) {
		mon_close_db(m);
		if (mon_open_db(m, err, sizeof(err)) != 0) {
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
	if (!check_head(m))
		return false;
	if (m->note_pending) {
		struct els_record e;

		make_event(&e, m->fs.note);
		if (!add_row(m, &e))
			return false;
	}
	if (m->pending_lost) {
		struct els_record g;

		mon_make_gap(&g, els_now_real(), m->pending_lost);
		snprintf(g.detail, sizeof(g.detail), "write error: %s", m->errmsg);
		m->pending_lost = 0;
		if (!add_row(m, &g)) {
			m->pending_lost += g.count; /* still to be reported */
			return false;
		}
		m->txn_gap_lost = g.count;
	}
	return true;
}

void mon_commit_txn(struct els_monitor *m)
{
	if (!m->in_txn)
		return;
	/* when full, shed records are reported once writing resumes, or at close */
	if (m->shed_pending && (m->cap_level < 2 || m->closing)) {
		struct els_record g;

		mon_make_gap(&g, els_now_real(), m->shed_pending);
		snprintf(g.detail, sizeof(g.detail), "size cap: %llu records not written",
			 (unsigned long long)m->shed_pending);
		m->shed_pending = 0;
		if (!add_row(m, &g))
			return; /* the count moved into the write-error gap */
	}
	if (flush_rows(m) != SQLITE_OK ||
	    els_mon_meta_put_pos(m->db, &m->key, m->fs.chain_id, "head", m->fs.head_seq,
				 m->fs.head_mac) != SQLITE_OK) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return;
	}
	/* Rows committed into a file that was deleted or replaced meanwhile are gone: count
	 * them as lost (a gap row in the new file says so) rather than as written. */
	check_file(m, 0);
	if (m->reopen) {
		fail_txn(m, "the file was deleted or replaced: a new one is made");
		return;
	}
	if (sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail_txn(m, sqlite3_errmsg(m->db));
		return;
	}
	if (m->write_failing)
		els_log(ELS_LL_INFO,
			"monitor %s: writing again; %llu records were lost meanwhile (a gap row "
			"says where)",
			m->path, (unsigned long long)m->txn_gap_lost);
	m->write_failing = false;
	m->txn_gap_lost = 0;
	m->committed_seq = m->fs.head_seq;
	memcpy(m->committed_mac, m->fs.head_mac, ELS_MON_MAC_LEN);
	m->note_pending = false;
	atomic_fetch_add(&m->written, m->txn_rows);
	m->in_txn = false;
	m->txn_rows = 0;
	m->txn_value = m->txn_records = 0;
	m->backoff_ms = 0;
	m->failed = false;
	mon_update_cap(m);
	mon_publish(m);
}

/* Writes one of the writer's own rows (events, gaps): the size cap never sheds them. */
void mon_put_own(struct els_monitor *m, const struct els_record *r)
{
	if (m->failed && els_now_mono_ms() >= m->retry_ms)
		m->failed = false;
	if (!m->failed && (m->in_txn || mon_begin_txn(m)) && add_row(m, r)) {
		if (m->txn_rows >= m->batch_max)
			mon_commit_txn(m);
		return;
	}
	m->pending_lost += r->kind == ELS_REC_GAP ? r->count : 1;
	if (r->kind != ELS_REC_GAP)
		atomic_fetch_add(&m->write_lost, 1);
}

/* The size cap's policy: drops are the record of what was refused, so they go last. */
static bool shed(const struct els_monitor *m, const struct els_record *r)
{
	if (m->cap_level >= 2)
		return true;
	return m->cap_level == 1 && (r->kind == ELS_REC_ADMIT || r->kind == ELS_REC_FLOW_END ||
				     r->kind == ELS_REC_ACCEPT);
}

/* Writes one producer's row, sheds it under the size cap, or counts it lost while writing is
 * failing. */
void mon_put(struct els_monitor *m, const struct els_record *r)
{
	els_events_record(r); /* the event stream (agent/events.h): a copy, no I/O */
	if (shed(m, r)) {
		uint64_t n = r->kind == ELS_REC_GAP ? r->count : 1;

		m->shed_pending += n;
		atomic_fetch_add(&m->shed, n);
		return;
	}
	mon_put_own(m, r);
}

/* ---- size cap and retention ---- */

static void cap_event(struct els_monitor *m, int level, int64_t used)
{
	static const char *const what[] = {
	    "writing every record again",
	    "not writing admits, flow ends and accepts; drops go on",
	    "full: not writing drops either; records are counted",
	};
	char msg[96];
	struct els_record e;

	snprintf(msg, sizeof(msg), "monitor size %lld KiB of %llu KiB: %s", (long long)used / 1024,
		 (unsigned long long)m->max_size / 1024, what[level]);
	els_log(level ? ELS_LL_WARNING : ELS_LL_INFO, "monitor %s: %s", m->path, msg);
	make_event(&e, msg);
	mon_put_own(m, &e);
}

/* After each commit: where the file stands against max_size. A level is entered at its
 * threshold and left MON_CAP_HYST_PCT below it, so that a file at the edge does not flap. */
void mon_update_cap(struct els_monitor *m)
{
	int64_t used;
	uint64_t soft, hyst;
	int level = m->cap_level;

	if (!m->max_size || !m->db)
		return;
	used = mon_used_bytes(m->db);
	soft = m->max_size / 100 * MON_CAP_SOFT_PCT;
	hyst = m->max_size / 100 * MON_CAP_HYST_PCT;
	if ((uint64_t)used >= m->max_size)
		level = 2;
	else if ((uint64_t)used >= soft && level < 1)
		level = 1;
	if (level == 2 && (uint64_t)used + hyst < m->max_size)
		level = 1;
	if (level == 1 && (uint64_t)used + hyst < soft)
		level = 0;
	if (level == m->cap_level)
		return;
	m->cap_level = level;
	atomic_store(&m->cap_level_pub, level);
	if (level)
		m->retain_more = true; /* swept rows of any age make room: look now */
	cap_event(m, level, used);
}

/* One retention step between transactions. Returns true when it deleted rows (more may be
 * left). Runs on the schedule, and at once while the size cap is reached. */
bool mon_retain(struct els_monitor *m, uint64_t now, bool last)
{
	bool any_age = m->cap_level >= 1;
	char err[320];
	long n;

	if (!m->db || m->failed || (!m->retention_days && !any_age))
		return false;
	if (!m->retain_more && now < m->next_retain_ms)
		return false;
	if (last && m->retain_runs) /* shutdown: the next start carries on */
		return false;
	mon_commit_txn(m);
	if (m->in_txn)
		return false;
	n = mon_retain_step(m->db, &m->key, m->fs.chain_id,
			    els_now_real() - (uint64_t)m->retention_days * NS_PER_DAY, any_age,
			    MON_RETAIN_ROWS, err, sizeof(err));
	if (err[0] && !m->retain_blocked) {
		els_log(ELS_LL_WARNING, "monitor %s: %s", m->path, err);
		m->retain_blocked = n >= 0;
	}
	if (n > 0) {
		atomic_fetch_add(&m->retained, (uint64_t)n);
		m->retain_run_rows += (uint64_t)n;
		m->retain_more = true;
		mon_update_cap(m);
		return true;
	}
	m->retain_more = false;
	m->retain_runs++;
	m->next_retain_ms = now + m->retention_period_ms;
	if (m->retain_run_rows)
		els_log(ELS_LL_INFO, "monitor %s: retention deleted %llu swept records", m->path,
			(unsigned long long)m->retain_run_rows);
	m->retain_run_rows = 0;
	return false;
}
