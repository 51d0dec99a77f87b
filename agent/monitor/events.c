/* The event stream: taps, queues, start and stop (see events.h and docs/events.md; the
 * outputs are events_file.c and events_syslog.c).
 *
 * Taps (monitor writer, alert drain, els_alert) format one EVE line and copy it into each
 * output's bounded queue; a full queue counts the line as shed. Each output has its own
 * sender thread, so a slow collector never delays the file. The file sender appends lines
 * and reopens the file when asked (SIGUSR1). The syslog sender frames each line as an RFC 5424
 * message and sends it octet-counted (RFC 5425) over TLS; while the collector is unreachable
 * it appends messages to the spool, and when the collector is back it sends the spool first,
 * then one gap event for whatever was shed, then new lines.
 *
 * Lock order: g_lock (read by taps, written by start/stop), then an output's mu. The senders
 * take only their own mu, and never while doing I/O. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/reason.h"
#include "events_int.h"
#include "els/log.h"

static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ev_state *g_ev; /* [g_lock] */
static _Atomic bool g_on;     /* a stream runs: the taps' lock-free early exit */

/* ---- taps ---- */

static void push(struct ev_out *o, const struct ev_slot *s)
{
	pthread_mutex_lock(&o->mu);
	if (o->n == o->cap) {
		o->shed_q++;
	} else {
		struct ev_slot *d = &o->q[(o->head + o->n) % o->cap];
		memcpy(d, s, offsetof(struct ev_slot, text) + s->len + 1u);
		o->n++;
		pthread_cond_signal(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
}

static void slot_of(struct ev_slot *s, const struct els_record *r, enum els_eve_source src,
		    const char *host)
{
	s->len = (uint16_t)els_eve_format(r, src, host, s->text, sizeof(s->text));
	s->ts_ns = r->ts_ns;
	s->sev = (uint8_t)els_eve_severity(r, src);
	s->type = els_eve_type(r, src);
}

static void tap(const struct els_record *r, enum els_eve_source src)
{
	struct ev_slot s;

	if (!atomic_load_explicit(&g_on, memory_order_relaxed))
		return;
	pthread_rwlock_rdlock(&g_lock);
	if (g_ev) {
		slot_of(&s, r, src, g_ev->host);
		for (unsigned i = 0; i < 2; i++)
			if (g_ev->out[i])
				push(g_ev->out[i], &s);
	}
	pthread_rwlock_unlock(&g_lock);
}

void els_events_record(const struct els_record *r)
{
	tap(r, ELS_EVE_RECORD);
}

void els_events_alert(const struct els_record *r)
{
	tap(r, ELS_EVE_ALERT);
}

void els_events_alert_text(unsigned reason, const char *text)
{
	struct els_record r = {
	    .ts_ns = els_now_real(), .count = 1, .kind = ELS_REC_EVENT, .reason = (uint16_t)reason};

	if (!atomic_load_explicit(&g_on, memory_order_relaxed))
		return;
	snprintf(r.detail, sizeof(r.detail), "%s", text);
	tap(&r, ELS_EVE_ALERT);
}

/* ---- senders, shared ---- */

/* Waits up to ms for lines; copies up to EV_BATCH of them into o->batch and returns how
 * many. *stop and *reopen say what else was asked. */
unsigned ev_take(struct ev_out *o, unsigned ms, bool *stop, bool *reopen)
{
	struct timespec ts;
	unsigned n = 0;

	els_deadline_after_ms(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&o->mu);
	while (!o->n && !o->stop && !o->reopen)
		if (pthread_cond_timedwait(&o->cv, &o->mu, &ts) == ETIMEDOUT)
			break;
	for (; n < EV_BATCH && o->n; n++) {
		const struct ev_slot *s = &o->q[o->head];
		memcpy(&o->batch[n], s, offsetof(struct ev_slot, text) + s->len + 1u);
		o->head = (o->head + 1) % o->cap;
		o->n--;
	}
	o->shed += o->shed_q;
	o->shed_q = 0;
	*stop = o->stop && !o->n;
	*reopen = o->reopen;
	o->reopen = false;
	pthread_mutex_unlock(&o->mu);
	return n;
}

/* The gap event that reports o->shed lines. */
void ev_gap_slot(struct ev_out *o, struct ev_slot *s)
{
	struct els_record g = {.ts_ns = els_now_real(), .count = o->shed, .kind = ELS_REC_GAP};

	snprintf(g.detail, sizeof(g.detail), "event stream (%s): %llu events shed", o->what,
		 (unsigned long long)o->shed);
	slot_of(s, &g, ELS_EVE_RECORD, o->st->host);
}

/* ---- start and stop ---- */

static void out_free(struct ev_out *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	ev_tls_free(&o->tls);
	ev_spool_close(&o->spool);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o->q);
	free(o->batch);
	free(o->path);
	free(o);
}

static struct ev_out *out_new(struct ev_state *st, const char *what, unsigned cap)
{
	struct ev_out *o = calloc(1, sizeof(*o));
	pthread_condattr_t ca;

	if (!o)
		return NULL;
	o->what = what;
	o->st = st;
	o->fd = -1;
	o->tls.fd = -1;
	o->spool.fd = -1;
	o->cap = cap;
	o->q = calloc(cap, sizeof(*o->q));
	o->batch = calloc(EV_BATCH, sizeof(*o->batch));
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!o->q || !o->batch) {
		out_free(o);
		return NULL;
	}
	return o;
}

static void host_names(struct ev_state *st, const char *host)
{
	char h[256] = "";
	size_t i = 0;

	if (host && *host)
		snprintf(h, sizeof(h), "%s", host);
	else if (gethostname(h, sizeof(h) - 1) < 0)
		h[0] = '\0';
	snprintf(st->host, sizeof(st->host), "%s", h);
	for (; h[i] && i + 1 < sizeof(st->sys_host); i++)
		st->sys_host[i] = h[i] > 0x20 && h[i] < 0x7f ? h[i] : '_';
	st->sys_host[i] = '\0';
	if (!i)
		snprintf(st->sys_host, sizeof(st->sys_host), "-");
}

static char *default_spool(const char *monitor_path)
{
	char *copy = strdup(monitor_path ? monitor_path : "/var/lib/elsd/monitor.db"), *out = NULL;

	if (copy && asprintf(&out, "%s/events.spool", dirname(copy)) < 0)
		out = NULL;
	free(copy);
	return out;
}

static void stop_all(struct ev_state *st)
{
	for (unsigned i = 0; i < 2; i++) {
		struct ev_out *o = st->out[i];
		if (!o)
			continue;
		if (o->started) {
			pthread_mutex_lock(&o->mu);
			o->stop = true;
			pthread_cond_signal(&o->cv);
			pthread_mutex_unlock(&o->mu);
			pthread_join(o->thread, NULL);
		}
		out_free(o);
	}
	els_events_conf_free(st->conf);
	free(st);
}

int els_events_start(const struct els_events_conf *c, const char *monitor_path, const char *host)
{
	struct ev_state *st;
	char err[320];
	int rc = -ENOMEM;

	if (!c)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->conf = els_events_conf_dup(c);
	if (!st->conf)
		goto fail;
	c = st->conf;
	st->pid = (int)getpid();
	host_names(st, host);
	if (c->file) {
		struct ev_out *o = st->out[0] = out_new(st, "file", c->queue);
		if (!o || !(o->path = strdup(c->file)))
			goto fail;
		ev_file_open(o);
		if (o->fd < 0) {
			els_log(ELS_LL_ERROR, "events.file %s: %s", c->file, strerror(errno));
			rc = -EINVAL;
			goto fail;
		}
	}
	if (c->host) {
		struct ev_out *o = st->out[1] = out_new(st, "syslog", c->queue);
		char *spool = c->spool ? strdup(c->spool) : default_spool(monitor_path);

		if (!o || !spool) {
			free(spool);
			goto fail;
		}
		if (ev_tls_init(&o->tls, c, err, sizeof(err)) < 0) {
			els_log(ELS_LL_ERROR, "events.syslog: %s", err);
			free(spool);
			rc = -EINVAL;
			goto fail;
		}
		rc = ev_spool_open(&o->spool, spool, c->spool_max);
		if (rc < 0) {
			els_log(ELS_LL_ERROR, "events.syslog spool %s: %s", spool, strerror(-rc));
			free(spool);
			goto fail;
		}
		free(spool);
		if (!ev_spool_empty(&o->spool))
			els_log(ELS_LL_INFO,
				"events: %llu bytes spooled by an earlier run will be "
				"sent first",
				(unsigned long long)o->spool.size);
	}
	for (unsigned i = 0; i < 2; i++) {
		struct ev_out *o = st->out[i];
		if (!o)
			continue;
		rc = -pthread_create(&o->thread, NULL, i ? ev_syslog_main : ev_file_main, o);
		if (rc) {
			els_log(ELS_LL_ERROR, "events: cannot start a thread: %s", strerror(-rc));
			goto fail;
		}
		pthread_setname_np(o->thread, i ? "els-ev-syslog" : "els-ev-file");
		o->started = true;
	}
	pthread_rwlock_wrlock(&g_lock);
	g_ev = st;
	atomic_store(&g_on, true);
	pthread_rwlock_unlock(&g_lock);
	els_log(ELS_LL_INFO, "events: streaming%s%s%s%s%s", c->file ? " to " : "",
		c->file ? c->file : "", c->file && c->host ? " and" : "",
		c->host ? " to syslog collector " : "", c->host ? c->host : "");
	return 0;
fail:
	stop_all(st);
	return rc < 0 ? rc : -EINVAL;
}

void els_events_stop(void)
{
	struct ev_state *st;

	pthread_rwlock_wrlock(&g_lock);
	st = g_ev;
	g_ev = NULL;
	atomic_store(&g_on, false);
	pthread_rwlock_unlock(&g_lock);
	if (st)
		stop_all(st);
}

void els_events_reopen(void)
{
	pthread_rwlock_rdlock(&g_lock);
	if (g_ev && g_ev->out[0]) {
		struct ev_out *o = g_ev->out[0];
		pthread_mutex_lock(&o->mu);
		o->reopen = true;
		pthread_cond_signal(&o->cv);
		pthread_mutex_unlock(&o->mu);
	}
	pthread_rwlock_unlock(&g_lock);
}
