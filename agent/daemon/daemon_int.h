/* The daemon's state, shared by its lifecycle (daemon.c) and its reloads (reload.c). */
#ifndef ELS_DAEMON_INT_H
#define ELS_DAEMON_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctlsock.h"
#include "daemon.h"
#include "kdrops.h"

struct daemon {
	const struct els_run_opts *opt;
	unsigned nq;
	struct els_worker *workers;
	struct els_worker **wp;
	struct els_queue **queues;
	pthread_t *threads;
	struct els_monitor *mon;
	struct els_ring *ctl; /* the main thread's ring, for events */
	atomic_bool stop;
	atomic_bool failed; /* a worker lost its queue: exit non-zero so a supervisor restarts */
	struct els_kdrops kdrops; /* [M] the kernel's drop counters for our queues */
	struct els_policy *running;
	struct els_adopt *adopt;     /* connections older than this process (agent/import.h) */
	struct els_control *control; /* management requests; NULL without `management` */
	struct els_dialout *dial;    /* dialling the console; NULL without `console` */
	struct els_rulewatch *rules; /* the steering rules' watch; NULL when it cannot run */
	struct els_metrics *metrics; /* the metrics endpoint; NULL without `metrics` */
	uint64_t start_ns;
	/* [M] restarting a dead endpoint: when to try next (0: not scheduled), the current
	 * back-off, and when the endpoint last started */
	uint64_t mgmt_retry_ns, mgmt_started_ns;
	unsigned mgmt_backoff_s;
	struct els_ctlsock *ctlsock;	      /* `elsd --reload`; NULL: none */
	struct els_reload_result last_reload; /* [M] for status and STATUS= */
};

/* ---- reload.c ---- */

/* SIGHUP and `elsd --reload` take the same path: the config file loaded aside and, when all of
 * it is valid, published. On failure every FILE:LINE: message is logged and, when ans is not
 * NULL, appended to it (n bytes) one per line; the result is kept for status and STATUS=. */
bool els_daemon_reload(struct daemon *d, char *ans, size_t n);
/* A request on the control socket (ctlsock.h): reload or status; arg is the daemon. */
void els_daemon_ctlsock_request(void *arg, const char *req, char *ans, size_t n);
/* The control's hooks (control.h), arg the daemon: the running policy, and the commit of one a
 * management request built and checked aside (returns its generation). */
const struct els_policy *els_daemon_running(void *arg);
uint32_t els_daemon_commit_cb(void *arg, struct els_policy *np);

#endif
