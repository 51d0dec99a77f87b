/* Alerts to syslog (see alert.h). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "alert.h"
#include "els/addr.h"
#include "els/clock.h"
#include "els/log.h"
#include "els/reason.h"
#include "els/worker_out.h"
#include "events.h"

#define ALERT_MAX_RINGS 64
#define ALERT_PERIOD_MS 200

/* Lock order: only `lock`. rings/nrings/thread/running: [lock]. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct els_ring *rings[ALERT_MAX_RINGS];
static unsigned nrings;
static pthread_t thread;
static bool running, opened;

static void emit(int prio, const char *text)
{
	if (!opened) {
		openlog("elsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		opened = true;
	}
	syslog(prio, "ELS_ALERT %s", text);
	if (!getenv("JOURNAL_STREAM"))
		els_log(ELS_LL_WARNING, "alert: %s", text);
}

/* els_alert_limited: per reason, bursts of up to ALERT_BURST, then ALERT_RATE a second (a
 * generic cell rate: `due` runs ahead of now by one interval per alert); the next alert that
 * goes out says how many were held back, so a flood of refusals or gaps cannot flood
 * syslog. [lock] */
#define ALERT_RATE	    5u
#define ALERT_BURST	    20u
#define ALERT_INTERVAL_NS (ELS_NS_PER_S / ALERT_RATE)
static uint64_t due_ns[ELS_R__COUNT];
static unsigned held_back[ELS_R__COUNT];

static void valert(bool limited, unsigned reason, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void valert(bool limited, unsigned reason, const char *fmt, va_list ap)
{
	char text[768];
	int n = snprintf(text, sizeof(text), "event=%s ", els_reason_name(reason));

	vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
	uint64_t now = els_now_mono();
	unsigned r = reason < ELS_R__COUNT ? reason : 0;
	pthread_mutex_lock(&lock); /* syslog, the opened flag and the limiter from any thread */
	uint64_t due = due_ns[r] > now ? due_ns[r] : now;
	if (limited && due - now >= (uint64_t)ALERT_BURST * ALERT_INTERVAL_NS) {
		held_back[r]++;
	} else {
		size_t l = strlen(text);
		if (held_back[r])
			snprintf(text + l, sizeof(text) - l, " (and %u more held back)",
				 held_back[r]);
		due_ns[r] = due + ALERT_INTERVAL_NS;
		held_back[r] = 0;
		emit(LOG_WARNING, text);
		els_events_alert_text(reason, text); /* the event stream, as rate-limited here */
	}
	pthread_mutex_unlock(&lock);
}

const char *els_alert_clean(char *buf, size_t n, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = c == '"' || c == '\\' || c < 0x20 || c == 0x7f ? '_' : (char)c;
	}
	if (n)
		buf[i] = '\0';
	return buf;
}

void els_alert(unsigned reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	valert(false, reason, fmt, ap);
	va_end(ap);
}

void els_alert_limited(unsigned reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	valert(true, reason, fmt, ap);
	va_end(ap);
}

void els_alert_format(const struct els_record *r, char *buf, size_t len)
{
	char src[64] = "", dst[64] = "", pb[8];
	size_t n;

	n = (size_t)snprintf(buf, len, "event=%s", els_reason_name(r->reason));
	if (r->family && !r->proto && n < len) {
		/* an event about an address (a scanner), not a packet */
		els_addr_str(&r->src, r->family, src);
		n += (size_t)snprintf(buf + n, len - n, " src=%s", src);
	} else if (r->family && n < len) {
		els_addr_str(&r->src, r->family, src);
		els_addr_str(&r->dst, r->family, dst);
		n += (size_t)snprintf(buf + n, len - n, " src=%s dst=%s dir=%s proto=%s", src, dst,
				      r->dir == ELS_DIR_OUT ? "out" : "in",
				      els_proto_name(r->proto, pb));
		if ((r->proto == IPPROTO_TCP || r->proto == IPPROTO_UDP) && n < len)
			n += (size_t)snprintf(buf + n, len - n, " sport=%u dport=%u", r->sport,
					      r->dport);
	}
	if (r->rule_name[0] && n < len)
		n += (size_t)snprintf(buf + n, len - n, " rule=%s", r->rule_name);
	if (r->handler && n < len)
		n += (size_t)snprintf(buf + n, len - n, " handler=%s", r->handler);
	if (r->detail[0] && n < len)
		snprintf(buf + n, len - n, " %s", r->detail);
}

/* [lock] held. */
static void drain(struct els_ring *r)
{
	const struct els_record *rec;
	uint64_t lost;
	char text[512];

	while ((rec = els_ring_peek(r, &lost))) {
		els_alert_format(rec, text, sizeof(text));
		emit(LOG_WARNING, text);
		els_events_alert(rec);
		els_ring_consume(r);
	}
}

static void *drain_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (running) {
		for (unsigned i = 0; i < nrings; i++)
			drain(rings[i]);
		struct timespec ts;
		els_deadline_after_ms(&ts, CLOCK_REALTIME, ALERT_PERIOD_MS);
		pthread_cond_timedwait(&wake, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* Hands the workers' alert rings (els/worker_out.h) this drain before main() runs: the
 * handlers' layer cannot call up into elsd, and elsd links this file whenever it runs workers. */
__attribute__((constructor)) static void alert_sink_install(void)
{
	els_worker_out_set_alert_sink(els_alert_register, els_alert_unregister);
}

int els_alert_register(struct els_ring *r)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (nrings == ALERT_MAX_RINGS) {
		rc = -ENOSPC;
		goto out;
	}
	if (!running) {
		running = true;
		rc = -pthread_create(&thread, NULL, drain_main, NULL);
		if (rc) {
			running = false;
			goto out;
		}
	}
	rings[nrings++] = r;
out:
	pthread_mutex_unlock(&lock);
	return rc;
}

void els_alert_unregister(struct els_ring *r)
{
	bool join = false;

	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nrings; i++) {
		if (rings[i] != r)
			continue;
		drain(r);
		rings[i] = rings[--nrings];
		break;
	}
	if (!nrings && running) {
		running = false;
		join = true;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	if (join)
		pthread_join(thread, NULL);
}
