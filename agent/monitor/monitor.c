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
 * Every row is chained (monitor_chain.c): the writer assigns seq itself, computes the row's
 * MAC over the previous one, and moves the chain head in meta inside the same transaction, so
 * a commit, a rollback or a power cut never leaves the head and the rows apart. Between
 * transactions the writer also deletes swept, expired rows (retention) in small steps, and
 * watches the file's size against max_size (the policy is in docs/forensics.md).
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
#include <sys/statvfs.h>
#include <time.h>

#include "els/monitor.h"
#include "els/monitor_int.h"

#define MON_IDLE_MS	  5  /* longest idle sleep: bounds the latency of a quiet ring */
#define MON_DRAIN_CHUNK	  64 /* records taken from one ring before visiting the next */
#define MON_MAX_PRODUCERS 4096

/* ---- the writer ---- */

static void put_ring_gap(struct els_monitor *m, unsigned i, uint64_t ts_ns, uint64_t count)
{
	struct els_record g;

	mon_make_gap(&g, ts_ns, count);
	snprintf(g.detail, sizeof(g.detail), "ring %u full: %llu records lost", i,
		 (unsigned long long)count);
	mon_put(m, &g);
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
				put_ring_gap(m, i, els_now_real(), lost - rs->lost_seen);
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
		mon_put(m, rec);
		els_ring_consume(r);
		rs->consumed++;
		n++;
	}
	return n;
}

/* One round-robin pass over every ring, then whatever commit is due: flush commits as soon
 * as the rings are empty, last also retries a failed file at once. Then a retention step if
 * one is due. Returns rows handled (a retention step counts as one). */
static unsigned writer_pass(struct els_monitor *m, bool flush, bool last)
{
	unsigned got = 0;
	uint64_t now;

	for (unsigned i = 0; i < m->nring; i++)
		got += drain_ring(m, i, MON_DRAIN_CHUNK);
	now = els_now_mono_ms();
	if (m->failed && (now >= m->retry_ms || last) && (m->pending_lost || m->note_pending)) {
		/* retry even with no new record, so the write-error gap reaches the file */
		m->failed = false;
		mon_begin_txn(m);
	}
	m->closing = last;
	if (m->shed_pending && !m->in_txn && !m->failed && (m->cap_level < 2 || last))
		mon_begin_txn(m); /* the commit reports what the size cap shed */
	if (m->in_txn && (now >= m->txn_start_ms + m->flush_ms || (got == 0 && (flush || last))))
		mon_commit_txn(m);
	else if (!m->in_txn && got)
		mon_publish(m); /* discarded or shed records count as handled for sync */
	if (got == 0 && mon_retain(m, now, last))
		got = 1;
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
		mon_idle_check(m);
		els_deadline_after_ms(&ts, CLOCK_MONOTONIC, MON_IDLE_MS);
		pthread_mutex_lock(&m->mu);
		if (!atomic_load(&m->stop) && !atomic_load(&m->flush_req))
			pthread_cond_timedwait(&m->wake, &m->mu, &ts);
		pthread_mutex_unlock(&m->mu);
	}
	mon_publish(m);
	return NULL;
}

/* ---- public ---- */

static void free_monitor(struct els_monitor *m)
{
	for (unsigned i = 0; m->rings && i < m->nring; i++)
		els_ring_free(m->rings[i]);
	els_mon_key_wipe(&m->key);
	free(m->rings);
	free(m->rs);
	free(m->pend);
	free(m->path);
	free(m->agent_id);
	free(m);
}

/* ELS_MONITOR_SIZE_AUTO for a file at path: the share of its file system's size, capped. A
 * file system that cannot be asked gets the cap itself: a bound is safer than none. */
static uint64_t auto_max_size(const char *path)
{
	char *dir = strdup(path);
	struct statvfs sv;
	uint64_t cap = ELS_MONITOR_SIZE_AUTO_MAX;

	if (dir && statvfs(dirname(dir), &sv) == 0) {
		uint64_t fs = (uint64_t)sv.f_blocks * sv.f_frsize;
		uint64_t share = fs / 100 * ELS_MONITOR_SIZE_AUTO_PCT;

		if (share && share < cap)
			cap = share;
	}
	free(dir);
	return cap;
}

struct els_monitor *els_monitor_open(const struct els_monitor_opts *o, struct els_diag *diag)
{
	struct els_monitor *m = NULL;
	pthread_condattr_t ca;
	char err[320], *key_path = NULL;

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
	m->lock_fd = -1;
	m->nring = o->producers;
	m->batch_max = o->batch_max ? o->batch_max : 1024;
	m->flush_ms = o->flush_ms ? o->flush_ms : 200;
	m->busy_ms = o->busy_timeout_ms ? o->busy_timeout_ms : 1000;
	m->retention_days = o->retention_days;
	m->retention_period_ms = o->retention_period_ms ? o->retention_period_ms : MON_RETAIN_MS;
	m->path = strdup(o->path);
	m->agent_id = o->agent_id ? strdup(o->agent_id) : NULL;
	m->rings = calloc(m->nring, sizeof(*m->rings));
	m->rs = calloc(m->nring, sizeof(*m->rs));
	m->pend = calloc(MON_INS_ROWS, sizeof(*m->pend));
	key_path = o->key_file && *o->key_file ? strdup(o->key_file) : els_mon_key_path(o->path);
	if (!m->path || !m->rings || !m->rs || !m->pend || !key_path ||
	    (o->agent_id && !m->agent_id))
		goto nomem;
	for (unsigned i = 0; i < m->nring; i++) {
		m->rings[i] = els_ring_new(o->ring_size ? o->ring_size : 8192);
		if (!m->rings[i])
			goto nomem;
	}
	m->max_size = o->max_size;
	if (m->max_size == ELS_MONITOR_SIZE_AUTO)
		m->max_size = auto_max_size(m->path);
	if (els_mon_key_load(key_path, true, &m->key, err, sizeof(err)) != 0) {
		els_diag_file(diag, o->path, 0, "monitor key %s", err);
		goto fail;
	}
	if (mon_open_db(m, err, sizeof(err)) != 0) {
		els_diag_file(diag, o->path, 0, "monitor file %s", err);
		goto fail;
	}
	mon_update_cap(m);
	free(key_path);
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
	free(key_path);
	if (m)
		free_monitor(m);
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
	mon_close_db(m);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->progress);
	pthread_mutex_destroy(&m->mu);
	free_monitor(m);
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
	out->shed = atomic_load(&m->shed);
	out->retained = atomic_load(&m->retained);
	out->cap_level = atomic_load(&m->cap_level_pub);
	out->max_size = m->max_size; /* [I] after open */
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
	els_deadline_after_ms(&ts, CLOCK_MONOTONIC, timeout_ms);
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
