/* One packet worker: its flow table, its monitor ring and drop aggregator, its counters.
 * Live queues (queue.c) and replay (replay.c) feed packets through els_worker_packet(), so a
 * capture replayed offline is judged and recorded exactly as live traffic is. */
#ifndef ELS_WORKER_H
#define ELS_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "els/flow.h"
#include "els/monitor.h"
#include "els/policy.h"

/* Counters are written by the worker only and read by anyone (relaxed atomics). */
struct els_worker_stats {
	_Atomic uint64_t packets, accepted, dropped, decode_errors, enobufs, verdict_errors;
};

struct els_worker {
	unsigned index;                 /* [I] position among workers, ring index */
	unsigned queue;                 /* [I] NFQUEUE number (live mode) */
	struct els_flow_table *flows;   /* [W] owned by the worker thread */
	struct els_ring *ring;          /* [I] owned by the monitor */
	struct els_dropagg *drops;      /* [W] */
	const struct els_policy *pol;   /* [W] generation in use for the current batch */
	_Atomic uint32_t seen_gen;      /* generation the worker last picked up (quiescence) */
	_Atomic uint64_t heartbeat;     /* bumped every loop turn: liveness for the watchdog */
	struct els_worker_stats st;
	uint64_t last_tick_ns;
};

/* Field tags: [I] set before the thread starts, never changed; [W] worker thread only. */

int els_worker_init(struct els_worker *w, unsigned index, unsigned flow_capacity,
		    struct els_ring *ring);
void els_worker_fini(struct els_worker *w);

/* Picks up the current generation (between packets, never within one). */
void els_worker_refresh(struct els_worker *w);

/* Decodes and judges one packet, writes its records. mono_ns drives flow timeouts, real_ns
 * stamps records. Returns ELS_ACCEPT or ELS_DROP. */
enum els_action els_worker_packet(struct els_worker *w, const uint8_t *buf, size_t caplen,
				  size_t wire_len, enum els_dir dir, uint64_t mono_ns,
				  uint64_t real_ns);

/* The same, also handing back the decision (replay prints it). */
enum els_action els_worker_packet_decision(struct els_worker *w, const uint8_t *buf,
					   size_t caplen, size_t wire_len, enum els_dir dir,
					   uint64_t mono_ns, uint64_t real_ns, struct els_decision *d);

/* Housekeeping between batches: expires flows, flushes drop aggregates. */
void els_worker_tick(struct els_worker *w, uint64_t mono_ns, uint64_t real_ns);

/* Ends every live flow (reason flow_shutdown) and flushes everything: at stop. */
void els_worker_finish(struct els_worker *w, uint64_t real_ns);

/* The published generation (agent/generation.c). */
const struct els_policy *els_gen_current(void);
/* Publishes p as the next generation; returns the previous one, which the caller frees once
 * els_gen_quiescent() says no worker can still be reading it. */
const struct els_policy *els_gen_publish(struct els_policy *p);
/* Waits until every worker has picked up generation gen (or timeout_ms passed): true then. */
bool els_gen_quiescent(struct els_worker *const *workers, unsigned n, uint32_t gen,
		       unsigned timeout_ms);

uint64_t els_now_mono(void);
uint64_t els_now_real(void);

#endif
