/* The event stream's syslog output: RFC 5424 messages, octet-counted over TLS (RFC 5425), with
 * the spool while the collector is away and a gap event for what was shed (docs/events.md,
 * "Spool and gap semantics"). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "els/clock.h"
#include "els/log.h"
#include "events_int.h"

/* One RFC 5424 message (no octet count): PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * STRUCTURED-DATA MSG, with facility daemon, the event_type as MSGID and the EVE line as MSG. */
static size_t syslog_msg(const struct ev_out *o, const struct ev_slot *s, char *out, size_t n)
{
	time_t sec = (time_t)(s->ts_ns / ELS_NS_PER_S);
	struct tm tm;
	char t[32];
	int h;

	gmtime_r(&sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	h = snprintf(out, n, "<%u>1 %s.%06uZ %s elsd %d %s - ", 3u * 8u + s->sev, t,
		     (unsigned)(s->ts_ns % ELS_NS_PER_S / 1000u), o->st->sys_host, o->st->pid,
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
	uint64_t now = els_now_mono_ms();

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

		ev_gap_slot(o, &g);
		n = syslog_msg(o, &g, msg, sizeof(msg));
		if (send_framed(o, msg, n) == 0)
			o->shed = 0;
		else
			down(o, "send failed");
	}
}

void *ev_syslog_main(void *arg)
{
	struct ev_out *o = arg;
	char msg[EV_SPOOL_LINE_MAX];

	o->backoff = EV_BACKOFF_MIN_MS;
	for (;;) {
		bool stop, reopen;
		unsigned n = ev_take(o, EV_WAIT_MS, &stop, &reopen);

		if (ev_tls_connected(&o->tls) && !ev_tls_alive(&o->tls))
			down(o, "the connection was closed");
		if (!ev_tls_connected(&o->tls) && els_now_mono_ms() >= o->next_try)
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
	uint64_t deadline = els_now_mono_ms() + EV_STOP_MS;
	while (ev_tls_connected(&o->tls) && !ev_spool_empty(&o->spool) &&
	       els_now_mono_ms() < deadline)
		send_backlog(o, EV_SPOOL_CHUNK);
	if (ev_tls_connected(&o->tls) && o->shed)
		send_backlog(o, 0);
	if (o->shed) {
		struct ev_slot g;
		size_t len;

		ev_gap_slot(o, &g);
		len = syslog_msg(o, &g, msg, sizeof(msg));
		o->spool.max += len + 1; /* the gap always fits: it is the count of what did not */
		spool_put(o, msg, len);
	}
	return NULL;
}
