/* One packet worker: its flow table, its monitor ring and drop aggregator, its counters.
 * Live queues (queue.c) feed packets through els_worker_decode/warm/judge (a prefetching
 * pipeline) and replay (replay.c) through els_worker_packet_decision(), which is decode +
 * judge: a capture replayed offline is judged and recorded by the same els_worker_judge() as
 * live traffic. (fuzz_chain does not run the worker; it checks only that the chain decides
 * the same with and without the flow hint the live pipeline builds ahead.) */
#ifndef ELS_WORKER_H
#define ELS_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "els/clock.h"
#include "els/flow.h"
#include "els/monitor.h"
#include "els/policy.h"
#include "els/reason.h"

/* Final decisions per handler, for the management `stats` request: decided[slot][0 accepted,
 * 1 dropped], slot = the handler's position in els_handler_all(), or the two below. Kept by
 * handler, not chain position, so that a reload that reorders the chain keeps them apart. */
#define ELS_STATS_HANDLERS 16
#define ELS_STATS_DECODE   ELS_STATS_HANDLERS
#define ELS_STATS_CHAIN	   (ELS_STATS_HANDLERS + 1)
/* Flows admitted per header_filter permit (by its position), for the metrics endpoint: the
 * first this many permits are counted. */
#define ELS_STATS_PERMITS 1024

/* Counters are written by the worker only and read by anyone (relaxed atomics). */
struct els_worker_stats {
	_Atomic uint64_t packets, accepted, dropped, decode_errors, enobufs, verdict_errors;
	_Atomic uint64_t decided[ELS_STATS_HANDLERS + 2][2];
	/* drops by handler slot and reason, for the metrics endpoint (agent/metrics.h) */
	_Atomic uint64_t drops[ELS_STATS_HANDLERS + 2][ELS_R__COUNT];
	_Atomic uint64_t flows_live;	/* flow table occupancy, as of the last tick */
	_Atomic uint64_t flows_evicted; /* flows pushed out of a full table */
	/* permit_hits[generation & 1][permit position - 1]: positions mean something only
	 * within one generation, so each generation counts in its own bank; the main thread
	 * zeroes the next bank before it publishes, and hands the finished one to the metrics
	 * endpoint once every worker has moved on (agent/metrics.h). */
	_Atomic uint64_t permit_hits[2][ELS_STATS_PERMITS];
};

/* Flow snapshot for the management `flows` request. The worker owns its flow table, so the
 * main thread asks and the worker copies, at its next loop turn (within QUEUE_POLL_MS):
 * the main thread sets buf/max, then req = done + 1 (release); the worker copies up to max
 * flows, sets count/total, then done = req (release). buf belongs to the main thread and is
 * never freed while req != done. Lock order: none, the two sides never wait on each other. */
struct els_flow_seen {
	struct els_flow flow;
	char permit[32]; /* the id string of the permit that admitted it, or "" */
};
struct els_flow_snap {
	struct els_flow_seen *buf;    /* [M] main thread; written by the worker between req and
					 done */
	struct els_flow_table *table; /* [W] the table being copied */
	uint32_t max;	       /* [M] */
	uint32_t count, total; /* [W] valid once done == req */
	_Atomic uint32_t req, done;
};

struct els_worker {
	unsigned index;		      /* [I] position among workers, ring index */
	unsigned queue;		      /* [I] NFQUEUE number (live mode) */
	struct els_flow_table *flows; /* [W] owned by the worker thread */
	struct els_ring *ring;	      /* [I] owned by the monitor */
	struct els_dropagg *drops;    /* [W] */
	struct els_sessions *sessions; /* [W] session index of the flows (els/sessions.h) */
	struct els_worker_out *out;    /* [W] monitor and alert rings as handlers see them */
	void **hstates;		       /* [W] each handler's per-worker state (worker_init) */
	uint64_t now_ns; /* [W] CLOCK_MONOTONIC of the packet or tick being handled: the end time
			    of a flow that ends meanwhile, for the session index's grace */
	const struct els_policy *pol; /* [W] generation in use for the current batch */
	_Atomic uint32_t seen_gen;    /* generation the worker last picked up (quiescence) */
	_Atomic uint64_t heartbeat;   /* bumped every loop turn: liveness for the watchdog */
	struct els_worker_stats st;
	uint64_t last_tick_ns;
	struct els_flow_snap snap;
	bool offload_on; /* [W] the queue can offload flows (agent/offload.h) */
	/* [W] set by each packet: the flow it hands to the kernel, else NULL; valid until the
	 * next packet */
	const struct els_flow *offload_now;
	uint32_t offloaded; /* [W] flows marked since the last unmark (a hint) */
	/* With name_verdicts ([I], replay --verdicts): the rule name the last packet's record
	 * names (for a packet of a known flow, the permit that admitted the flow), or "";
	 * valid until the next packet. Off, the packet path never touches it. */
	bool name_verdicts;
	char permit_name[32];
	/* [I] socket owners for service-bound permits (agent/packet/owner.h), owned by the
	 * queue; NULL (replay): such permits see no owner. */
	struct els_owners *owners;
	bool live; /* [I] judging live traffic: without owners, service-bound permits see no
		      owner (their fail policy), never "not asked" as in replay */
};

/* Field tags: [I] set before the thread starts, never changed; [W] worker thread only;
 * [M] main thread only. */

int els_worker_init(struct els_worker *w, unsigned index, unsigned flow_capacity,
		    struct els_ring *ring);
void els_worker_fini(struct els_worker *w);

/* Picks up the current generation (between packets, never within one). */
void els_worker_refresh(struct els_worker *w);

/* Decodes and judges one packet, writes its records and hands back the decision (replay
 * prints it). mono_ns drives flow timeouts, real_ns stamps records. Returns ELS_ACCEPT or
 * ELS_DROP. */
enum els_action els_worker_packet_decision(struct els_worker *w, const uint8_t *buf, size_t caplen,
					   size_t wire_len, enum els_dir dir, uint64_t mono_ns,
					   uint64_t real_ns, struct els_decision *d);

/* The live path judges in a short pipeline, so that the flow table's cache misses overlap
 * the next receive instead of stalling the chain: els_worker_decode() decodes and starts
 * loading the flow's hash bucket, els_worker_warm() starts loading the flow itself, and
 * els_worker_judge() runs the chain and writes the records, as replay's
 * els_worker_packet_decision() does.
 * Packets must be judged in the order decoded, each once, and all before the next
 * els_worker_refresh(). The first two are hints: skipping els_worker_warm() is correct. */
struct els_decoded {
	struct els_pkt pkt;
	struct els_flow_hint hint; /* valid when has_flow */
	bool has_flow;
};
void els_worker_decode(struct els_worker *w, const uint8_t *buf, size_t caplen, size_t wire_len,
		       enum els_dir dir, struct els_decoded *dp);
void els_worker_warm(const struct els_worker *w, const struct els_decoded *dp);
/* hint may be NULL (replay, tests). */
enum els_action els_worker_judge(struct els_worker *w, const struct els_pkt *pkt,
				 const struct els_flow_hint *hint, uint64_t mono_ns,
				 uint64_t real_ns, struct els_decision *d);

/* els_worker_judge returns ELS_DEFER (els/handler.h) for a packet whose verdict waits for a
 * socket owner lookup: nothing was counted or recorded; the caller holds it and judges it again
 * after els_owners_poll() brought answers. */

/* Housekeeping between batches: expires flows, flushes drop aggregates. */
void els_worker_tick(struct els_worker *w, uint64_t mono_ns, uint64_t real_ns);

/* Writes f's flow end record (reason, f's counters as they are) and removes it from the table:
 * for flows that end outside the packet path (offload: conntrack destroy events). */
void els_worker_flow_end(struct els_worker *w, struct els_flow *f, unsigned reason,
			 uint64_t real_ns);

/* Ends every live flow (reason flow_shutdown) and flushes everything: at stop. Off the packet
 * path, so when the ring fills it calls drain(arg) (which waits for the monitor's writer)
 * rather than lose end records; drain may be NULL. */
void els_worker_finish(struct els_worker *w, uint64_t real_ns, void (*drain)(void *arg), void *arg);

/* Adds one to a counter that only its worker writes: a plain load and store (readers on
 * other threads still see whole values) instead of a locked read-modify-write per packet. */
static inline void els_ctr_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Counts a final decision in st.decided. Packet path: the slot was found when the policy was
 * built; no allocation, no lock. */
static inline void els_worker_count(struct els_worker *w, const struct els_decision *d,
				    enum els_action a)
{
	unsigned slot = ELS_STATS_CHAIN;
	if (d->handler == ELS_HANDLER_DECODE)
		slot = ELS_STATS_DECODE;
	else if (d->handler < w->pol->nlinks &&
		 w->pol->links[d->handler].stat_slot < ELS_STATS_HANDLERS)
		slot =
		    w->pol->links[d->handler].stat_slot; /* found once, when the policy was built */
	els_ctr_inc(&w->st.decided[slot][a == ELS_DROP]);
	if (a == ELS_DROP)
		els_ctr_inc(&w->st.drops[slot][d->reason < ELS_R__COUNT ? d->reason : ELS_R_NONE]);
}

static inline void els_worker_snap_one(const struct els_flow *f, void *arg)
{
	struct els_flow_snap *s = arg;
	if (s->count < s->max) {
		struct els_flow_seen *e = &s->buf[s->count++];
		e->flow = *f;
		memcpy(e->permit, els_flow_admit_of(s->table, f)->rule_name, sizeof(e->permit));
		e->permit[sizeof(e->permit) - 1] = '\0';
	}
	s->total++;
}

/* Answers a pending flow snapshot request (see struct els_flow_snap). Worker thread, between
 * batches. */
static inline void els_worker_snapshot_serve(struct els_worker *w)
{
	uint32_t req = atomic_load_explicit(&w->snap.req, memory_order_acquire);
	if (req == atomic_load_explicit(&w->snap.done, memory_order_relaxed))
		return;
	w->snap.count = 0;
	w->snap.total = 0;
	w->snap.table = w->flows;
	if (w->flows && w->snap.buf)
		els_flow_foreach(w->flows, els_worker_snap_one, &w->snap);
	atomic_store_explicit(&w->snap.done, req, memory_order_release);
}

#endif
