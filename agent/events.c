/* The event stream: queues, sender threads and the two outputs (see events.h and
 * docs/events.md).
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
#include "log.h"

#define EV_BATCH	  64	/* lines a sender takes off its queue at once */
#define EV_WAIT_MS	  500	/* a sender's longest sleep: bounds reconnect and reopen latency */
#define EV_CONNECT_MS	  5000	/* TCP connect and TLS handshake */
#define EV_SEND_MS	  5000	/* a collector that takes longer to accept a batch is dropped */
#define EV_BACKOFF_MIN_MS 1000	/* first reconnect attempt after a failure */
#define EV_BACKOFF_MAX_MS 10000 /* reconnect attempts back off up to this */
#define EV_SPOOL_CHUNK	  (256u * 1024) /* spool bytes sent per pass, between queue visits */
#define EV_STOP_MS	  3000		/* at stop: longest spent sending what is left */

/* One formatted line. */
struct ev_slot {
	uint64_t ts_ns;
	const char *type; /* the event_type: the syslog MSGID */
	uint8_t sev;	  /* RFC 5424 severity */
	uint16_t len;
	char text[ELS_EVE_MAX];
};

struct ev_state;

/* [I] set at start; [M] mu; [S] the sender thread's own. */
struct ev_out {
	const char *what;    /* [I] "file" or "syslog" */
	struct ev_state *st; /* [I] */
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* [M] lines queued, stop or reopen */
	struct ev_slot *q;     /* [M] ring of cap slots */
	unsigned cap, head, n; /* [M] */
	uint64_t shed_q;       /* [M] lines the full queue refused, not yet seen by the sender */
	bool stop, reopen;     /* [M] */
	pthread_t thread;
	bool started;
	struct ev_slot *batch; /* [S] EV_BATCH slots */
	uint64_t shed;	       /* [S] shed lines not yet reported in a gap event */
	bool failing;	       /* [S] the last write or connect failed: logged once per streak */
	char why[320]; /* [S] the syslog output's last logged failure: a new one is logged */
	/* file */
	int fd;	    /* [S] */
	char *path; /* [I] */
	/* syslog */
	struct ev_tls tls;	    /* [S] */
	struct ev_spool spool;	    /* [S] */
	uint64_t next_try, backoff; /* [S] monotonic ms */
};

struct ev_state {
	struct ev_out *out[2];
	struct els_events_conf *conf; /* own copy: the TLS output points into it */
	char host[256];		      /* EVE host: agent_id or the host name */
	char sys_host[256]; /* the same as an RFC 5424 HOSTNAME (printable ASCII, no space) */
	int pid;
};

static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ev_state *g_ev; /* [g_lock] */
static _Atomic bool g_on;     /* a stream runs: the taps' lock-free early exit */

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
	s->type = src == ELS_EVE_ALERT || r->kind == ELS_REC_WOULD_DROP	    ? "alert"
		  : r->kind == ELS_REC_DROP				    ? "drop"
		  : r->kind == ELS_REC_ADMIT || r->kind == ELS_REC_FLOW_END ? "flow"
									    : "els";
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
	    .ts_ns = real_ns(), .count = 1, .kind = ELS_REC_EVENT, .reason = (uint16_t)reason};

	if (!atomic_load_explicit(&g_on, memory_order_relaxed))
		return;
	snprintf(r.detail, sizeof(r.detail), "%s", text);
	tap(&r, ELS_EVE_ALERT);
}

/* ---- senders, shared ---- */

/* Waits up to ms for lines; copies up to EV_BATCH of them into o->batch and returns how
 * many. *stop and *reopen say what else was asked. */
static unsigned take(struct ev_out *o, unsigned ms, bool *stop, bool *reopen)
{
	struct timespec ts;
	unsigned n = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_sec++, ts.tv_nsec -= 1000000000L;
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
static void gap_slot(struct ev_out *o, struct ev_slot *s)
{
	struct els_record g = {.ts_ns = real_ns(), .count = o->shed, .kind = ELS_REC_GAP};

	snprintf(g.detail, sizeof(g.detail), "event stream (%s): %llu events shed", o->what,
		 (unsigned long long)o->shed);
	slot_of(s, &g, ELS_EVE_RECORD, o->st->host);
}

/* ---- the file ---- */

static void file_open(struct ev_out *o)
{
	o->fd = open(o->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (o->fd < 0 && !o->failing) {
		els_log(ELS_LL_WARNING, "events: cannot open %s: %s; retrying every second",
			o->path, strerror(errno));
		o->failing = true;
	} else if (o->fd >= 0 && o->failing) {
		els_log(ELS_LL_INFO, "events: writing %s again", o->path);
		o->failing = false;
	}
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w, n -= (size_t)w;
	}
	return 0;
}

static void *file_main(void *arg)
{
	struct ev_out *o = arg;
	char *buf = malloc((EV_BATCH + 1) * (ELS_EVE_MAX + 1));
	uint64_t next_open = 0;

	for (;;) {
		bool stop, reopen;
		unsigned n = take(o, EV_WAIT_MS, &stop, &reopen);
		size_t len = 0, lines = 0;

		if (reopen && o->fd >= 0) {
			close(o->fd);
			o->fd = -1;
			next_open = 0;
		}
		if (o->fd < 0 && mono_ms() >= next_open) {
			file_open(o);
			next_open = mono_ms() + 1000;
		}
		if (o->shed && o->fd >= 0 && buf) {
			struct ev_slot g;
			gap_slot(o, &g);
			memcpy(buf, g.text, g.len);
			buf[g.len] = '\n';
			len = g.len + 1u;
		}
		for (unsigned i = 0; buf && i < n; i++) {
			memcpy(buf + len, o->batch[i].text, o->batch[i].len);
			len += o->batch[i].len;
			buf[len++] = '\n';
			lines++;
		}
		if (o->fd >= 0 && len) {
			if (write_all(o->fd, buf, len) == 0) {
				o->shed = 0;
			} else {
				if (!o->failing)
					els_log(ELS_LL_WARNING, "events: cannot write %s: %s",
						o->path, strerror(errno));
				o->failing = true;
				o->shed += lines;
				close(o->fd);
				o->fd = -1;
			}
		} else {
			o->shed += n;
		}
		if (stop)
			break;
	}
	free(buf);
	return NULL;
}

/* ---- syslog over TLS ---- */

/* One RFC 5424 message (no octet count): PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * STRUCTURED-DATA MSG, with facility daemon, the event_type as MSGID and the EVE line as MSG. */
static size_t syslog_msg(const struct ev_out *o, const struct ev_slot *s, char *out, size_t n)
{
	time_t sec = (time_t)(s->ts_ns / 1000000000u);
	struct tm tm;
	char t[32];
	int h;

	gmtime_r(&sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	h = snprintf(out, n, "<%u>1 %s.%06uZ %s elsd %d %s - ", 3u * 8u + s->sev, t,
		     (unsigned)(s->ts_ns % 1000000000u / 1000u), o->st->sys_host, o->st->pid,
		     s->type);
	if (h < 0 || (size_t)h + s->len >= n)
		return 0;
	memcpy(out + h, s->text, s->len);
	out[(size_t)h + s->len] = '\0';
	return (size_t)h + s->len;
}

/* Sends one message octet-counted: "LEN SP MSG" (RFC 5425 section 4.3). */
static int send_framed(void *ctx, const char *msg, size_t n)
{
	struct ev_out *o = ctx;
	char frame[EV_SPOOL_LINE_MAX + 16];
	int h = snprintf(frame, sizeof(frame), "%zu ", n);

	if (n > EV_SPOOL_LINE_MAX)
		return 0; /* cannot happen: every message is built to fit */
	memcpy(frame + h, msg, n);
	return ev_tls_send(&o->tls, frame, (size_t)h + n, EV_SEND_MS);
}

static void down(struct ev_out *o, const char *why)
{
	uint64_t now = mono_ms();

	ev_tls_close(&o->tls);
	if (!o->failing || strcmp(o->why, why) != 0)
		els_log(ELS_LL_WARNING,
			"events: collector %s:%s: %s; spooling to %s, retrying with back-off",
			o->tls.c->host, o->tls.c->port, why, o->spool.path);
	o->failing = true;
	snprintf(o->why, sizeof(o->why), "%s", why);
	o->next_try = now + o->backoff;
	o->backoff = o->backoff * 2 > EV_BACKOFF_MAX_MS ? EV_BACKOFF_MAX_MS : o->backoff * 2;
}

static void try_connect(struct ev_out *o)
{
	char err[320];

	if (ev_tls_connect(&o->tls, EV_CONNECT_MS, err, sizeof(err)) < 0) {
		down(o, err);
		return;
	}
	els_log(ELS_LL_INFO, "events: connected to collector %s:%s (%s)%s", o->tls.c->host,
		o->tls.c->port, SSL_get_version(o->tls.ssl),
		ev_spool_empty(&o->spool) ? "" : "; sending the spool");
	o->failing = false;
	o->why[0] = '\0';
	o->backoff = EV_BACKOFF_MIN_MS;
}

static void spool_put(struct ev_out *o, const char *msg, size_t n)
{
	if (ev_spool_append(&o->spool, msg, n) < 0)
		o->shed++;
}

/* Connected: sends a chunk of the spool, then (spool empty) the gap event. */
static void send_backlog(struct ev_out *o, size_t budget)
{
	uint64_t bad = 0;
	char msg[EV_SPOOL_LINE_MAX];

	if ((!ev_spool_empty(&o->spool) || o->spool.cut) &&
	    ev_spool_send(&o->spool, budget, send_framed, o, &bad) < 0 &&
	    !ev_tls_connected(&o->tls))
		down(o, "send failed");
	o->shed += bad;
	if (ev_tls_connected(&o->tls) && ev_spool_empty(&o->spool) && o->shed) {
		struct ev_slot g;
		size_t n;

		gap_slot(o, &g);
		n = syslog_msg(o, &g, msg, sizeof(msg));
		if (send_framed(o, msg, n) == 0)
			o->shed = 0;
		else
			down(o, "send failed");
	}
}

static void *syslog_main(void *arg)
{
	struct ev_out *o = arg;
	char msg[EV_SPOOL_LINE_MAX];

	o->backoff = EV_BACKOFF_MIN_MS;
	for (;;) {
		bool stop, reopen;
		unsigned n = take(o, EV_WAIT_MS, &stop, &reopen);

		if (ev_tls_connected(&o->tls) && !ev_tls_alive(&o->tls))
			down(o, "the connection was closed");
		if (!ev_tls_connected(&o->tls) && mono_ms() >= o->next_try)
			try_connect(o);
		if (ev_tls_connected(&o->tls))
			send_backlog(o, EV_SPOOL_CHUNK);
		for (unsigned i = 0; i < n; i++) {
			size_t len = syslog_msg(o, &o->batch[i], msg, sizeof(msg));

			if (!len) {
				o->shed++;
				continue;
			}
			/* in order: nothing new goes out before the spool and the gap are sent */
			if (ev_tls_connected(&o->tls) && ev_spool_empty(&o->spool) && !o->shed) {
				if (send_framed(o, msg, len) == 0)
					continue;
				down(o, "send failed");
			}
			spool_put(o, msg, len);
		}
		if (stop)
			break;
	}
	/* Last pass: what the spool holds goes out if the collector is there; the rest stays
	 * in the spool for the next start, with a gap event for what was shed. */
	uint64_t deadline = mono_ms() + EV_STOP_MS;
	while (ev_tls_connected(&o->tls) && !ev_spool_empty(&o->spool) && mono_ms() < deadline)
		send_backlog(o, EV_SPOOL_CHUNK);
	if (ev_tls_connected(&o->tls) && o->shed)
		send_backlog(o, 0);
	if (o->shed) {
		struct ev_slot g;
		size_t len;

		gap_slot(o, &g);
		len = syslog_msg(o, &g, msg, sizeof(msg));
		o->spool.max += len + 1; /* the gap always fits: it is the count of what did not */
		spool_put(o, msg, len);
	}
	return NULL;
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
		file_open(o);
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
		rc = -pthread_create(&o->thread, NULL, i ? syslog_main : file_main, o);
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
