/* The metrics endpoint: Prometheus text exposition of elsd's counters, served from a thread of
 * its own on a loopback port or a UNIX socket, or over mutually authenticated TLS 1.3 for a
 * remote appliance (docs/metrics.md lists every metric).
 *
 * Scraping costs nothing on the packet path: the thread reads the per-worker counters that
 * only their worker writes (relaxed atomics, worker.h), the monitor's and rings' atomic
 * counters, and the kernel's /proc counters; it takes no lock a worker holds and the workers
 * never wait for it. The only lock (the policy snapshot below) is shared with the main thread.
 *
 * HTTP and TLS come from libevent (evhttp with bufferevent_openssl), not a hand-written parser:
 * libevent parses the request line and headers within the limits set here, and its TLS is the
 * OpenSSL the rest of elsd uses (libmicrohttpd would have brought GnuTLS in beside it). The TLS
 * context is the management endpoint's (agent/mgmt_tls.c): TLS 1.3 only, a client certificate
 * from `ca` required, checked against `crl`, the key refused when others can read it. */
#ifndef ELS_METRICS_H
#define ELS_METRICS_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/diag.h"
#include "els/metrics_conf.h"
#include "els/policy.h"

/* ---- the exposition writer (agent/metrics_text.c) ---- */

/* A growing text buffer; after an allocation failure it stays failed (oom) and appends are
 * ignored, so a caller checks once at the end. */
struct els_mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
void els_mbuf_free(struct els_mbuf *b);
void els_mbuf_printf(struct els_mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a label value: backslash, double quote and newline escaped as the exposition
 * format asks (\\, \", \n); bytes that are not valid UTF-8 become U+FFFD, since the format is
 * UTF-8 and a scraper refuses the whole page for one bad byte. */
void els_mbuf_label_value(struct els_mbuf *b, const char *s);
/* "# HELP name help\n# TYPE name type\n" */
void els_metric_family(struct els_mbuf *b, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",...} value. labels holds key, value pairs and ends with NULL (or is
 * NULL: no labels). */
void els_metric_u64(struct els_mbuf *b, const char *name, const char *const *labels, uint64_t v);
void els_metric_f64(struct els_mbuf *b, const char *name, const char *const *labels, double v);

/* ---- the endpoint (agent/metrics.c) ---- */

struct els_worker;
struct els_monitor;

/* What the endpoint reads. All of it outlives the endpoint (els_metrics_free comes first). */
struct els_metrics_src {
	struct els_worker *workers;
	unsigned nq;
	struct els_monitor *mon;
	unsigned queue_first, queue_last;
	unsigned flow_capacity;
};

struct els_metrics;

/* Binds the listener and loads the TLS material (before the privilege drop: keys only root
 * reads, a port below 1024). Starts no thread. NULL after logging why. */
struct els_metrics *els_metrics_open(const struct els_metrics_conf *c,
				     const struct els_metrics_src *src);
/* Starts the serving thread (after the privilege drop, so that it runs with what the main
 * thread kept: capabilities are per thread). 0 or -errno. */
int els_metrics_start(struct els_metrics *m);
/* SIGHUP: reads metrics.tls.crl again and uses it for new connections (the old CRL stays
 * when the new one cannot be read or parsed, and the log says why). m may be NULL. */
void els_metrics_reload_crl(struct els_metrics *m);
/* Stops the thread, closes the listener; m may be NULL. */
void els_metrics_free(struct els_metrics *m);

/* Main thread, at start and at each new generation: the policy's labels (permit ids, agent
 * id, hash) are copied here, so the serving thread never reads a policy a reload may free. */
void els_metrics_policy(struct els_metrics *m, const struct els_policy *p);

/* Hits per permit across generations (worker.h: permit_hits). Main thread, in this order at
 * each new generation: els_metrics_permits_prepare() before publishing it (zeroes the bank it
 * will count in, which no worker uses while all are on the running generation), then
 * els_metrics_policy() once published, then els_metrics_settle() once every worker picked it
 * up (folds the old generation's final counts into the ids that stay). */
void els_metrics_permits_prepare(struct els_worker *workers, unsigned nq, uint32_t next_gen);
void els_metrics_settle(struct els_metrics *m);

/* Process-wide state any thread may set, exported by whichever endpoint runs (none: kept
 * anyway, they cost a store). */
/* A reload or management apply ended: ok, and the generation running afterwards. */
void els_metrics_note_reload(bool ok, uint32_t generation);
/* A management request or connection was refused (handshake, role, malformed, capacity). */
void els_metrics_note_mgmt_refusal(void);
/* The ruleset-integrity watcher's verdict: 1 the steering rules are intact, 0 they were
 * changed or removed. Exported as els_ruleset_intact once set. */
void els_metrics_set_ruleset_intact(bool intact);
/* The last word: 1 intact, 0 altered, -1 no watcher has said (the console's hello). */
int els_metrics_ruleset_intact(void);

/* The page, as served (for tests): appends everything to b. */
void els_metrics_render(struct els_metrics *m, struct els_mbuf *b);

#endif
