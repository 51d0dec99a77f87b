/* A worker's monitor and alert rings as handlers see them (see els/worker_out.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/clock.h"
#include "els/worker_out.h"

#define ALERT_RING   1024u
#define ALERT_GAP_NS (10 * ELS_NS_PER_S)

/* The alert drain (elsd's agent/daemon/alert.c) installs itself here: this layer may not
 * call up into the daemon, and tools that build handlers have no drain. */
static int (*alert_register)(struct els_ring *r);
static void (*alert_unregister)(struct els_ring *r);

void els_worker_out_set_alert_sink(int (*reg)(struct els_ring *r),
				   void (*unreg)(struct els_ring *r))
{
	alert_register = reg;
	alert_unregister = unreg;
}

struct els_worker_out *els_worker_out_new(struct els_ring *mon, bool register_alerts)
{
	struct els_worker_out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->mon = mon;
	o->alerts = els_ring_new(ALERT_RING);
	if (!o->alerts || (register_alerts && (!alert_register || alert_register(o->alerts) < 0))) {
		els_ring_free(o->alerts);
		free(o);
		return NULL;
	}
	return o;
}

void els_worker_out_free(struct els_worker_out *o)
{
	if (!o)
		return;
	if (alert_unregister)
		alert_unregister(o->alerts); /* a ring never registered is simply not found */
	els_ring_free(o->alerts);
	free(o);
}

void els_worker_out_alert(struct els_worker_out *o, struct els_record *r, bool limit,
			  uint64_t now_ns)
{
	unsigned reason = r->reason < ELS_R__COUNT ? r->reason : 0;

	if (limit && o->alert_last_ns[reason] && now_ns - o->alert_last_ns[reason] < ALERT_GAP_NS) {
		o->alert_suppressed[reason]++;
		return;
	}
	o->alert_last_ns[reason] = now_ns ? now_ns : 1;
	if (o->alert_suppressed[reason]) {
		size_t n = strnlen(r->detail, sizeof(r->detail));
		snprintf(r->detail + n, sizeof(r->detail) - n, "%ssuppressed=%u", n ? " " : "",
			 o->alert_suppressed[reason]);
		o->alert_suppressed[reason] = 0;
	}
	r->kind = ELS_REC_EVENT;
	els_ring_push(o->alerts, r);
}

void els_worker_out_record(struct els_worker_out *o, const struct els_record *r)
{
	if (o && o->mon)
		els_ring_push(o->mon, r);
}
