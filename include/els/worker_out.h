/* A worker's outputs that handlers write to: its monitor ring (records such as would-drops and
 * events) and its alert ring, with the alert rate limits. They are the worker's, not any
 * handler's: every handler that reports shares them. Allocated once per worker; pushing never
 * allocates, locks or does I/O. Only the owning worker thread pushes; the alert ring's consumer
 * is elsd's alert thread (agent/daemon/alert.c). */
#ifndef ELS_WORKER_OUT_H
#define ELS_WORKER_OUT_H

#include <stdbool.h>
#include <stdint.h>

#include "els/monitor.h"
#include "els/reason.h"

struct els_worker_out {
	struct els_ring *mon;	 /* the worker's monitor ring (not owned); NULL: none */
	struct els_ring *alerts; /* owned; drained by agent/daemon/alert.c's thread */
	uint64_t alert_last_ns[ELS_R__COUNT];
	uint32_t alert_suppressed[ELS_R__COUNT];
};

/* mon may be NULL (tests). register_alerts: hand the alert ring to the drain installed with
 * els_worker_out_set_alert_sink (false in unit tests and fuzzers, which read ->alerts
 * themselves). NULL on allocation failure, or when register_alerts is set and no drain is
 * installed. */
struct els_worker_out *els_worker_out_new(struct els_ring *mon, bool register_alerts);
/* Installed by elsd's alert drain (agent/daemon/alert.c) when it is linked in: the engine and
 * handlers never call into the daemon. */
void els_worker_out_set_alert_sink(int (*reg)(struct els_ring *r),
				   void (*unreg)(struct els_ring *r));
/* Unregisters the alert ring, frees everything. NULL is fine. */
void els_worker_out_free(struct els_worker_out *o);

/* Queues an alert (kind EVENT, reason, addresses, detail) for the alert thread. With limit, at
 * most one per reason per 10 s (of now_ns) per worker, and the next one says how many were
 * suppressed (anomaly floods); without, every call (one per detected scan). */
void els_worker_out_alert(struct els_worker_out *o, struct els_record *r, bool limit,
			  uint64_t now_ns);
/* Pushes r to the monitor ring (when there is one). o may be NULL. */
void els_worker_out_record(struct els_worker_out *o, const struct els_record *r);

#endif
