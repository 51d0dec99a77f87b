/* The metrics endpoint's page: every counter elsd keeps, collected without touching the
 * packet path, in the text exposition format. See agent/metrics.h for the design,
 * docs/metrics.md for every metric; metrics_http.c serves it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/handler.h"
#include "els/monitor.h"
#include "els/reason.h"
#include "els/log.h"
#include "metrics_int.h"
#include "owner.h"
#include "worker.h"

/* ---- process-wide state (any thread sets it; relaxed: each value stands alone) ---- */

static _Atomic uint64_t reloads_ok, reloads_failed, mgmt_refusals;
static _Atomic int last_reload_ok = -1; /* -1: no reload since start */
static _Atomic uint64_t last_reload_real_ns;
static _Atomic uint32_t running_generation;
static _Atomic int ruleset_intact = -1; /* -1: no watcher has said */

void els_metrics_note_reload(bool ok, uint32_t generation)
{
	atomic_fetch_add_explicit(ok ? &reloads_ok : &reloads_failed, 1, memory_order_relaxed);
	atomic_store_explicit(&last_reload_ok, ok, memory_order_relaxed);
	atomic_store_explicit(&last_reload_real_ns, els_now_real(), memory_order_relaxed);
	atomic_store_explicit(&running_generation, generation, memory_order_relaxed);
}

void els_metrics_note_mgmt_refusal(void)
{
	atomic_fetch_add_explicit(&mgmt_refusals, 1, memory_order_relaxed);
}

void els_metrics_set_ruleset_intact(bool intact)
{
	atomic_store_explicit(&ruleset_intact, intact, memory_order_relaxed);
}

int els_metrics_ruleset_intact(void)
{
	return atomic_load_explicit(&ruleset_intact, memory_order_relaxed);
}

void els_metrics_policy(struct els_metrics *m, const struct els_policy *p)
{
	struct els_mbuf b = {0};
	atomic_store_explicit(&running_generation, p->generation, memory_order_relaxed);
	if (!m)
		return;
	els_metric_family(&b, "els_info", "gauge",
			  "Always 1: the running version, agent id and policy hash as labels.");
	els_metric_u64(&b, "els_info",
		       (const char *const[]){"version", ELS_VERSION, "agent_id",
					     p->set.agent_id ? p->set.agent_id : "",
					     "policy_sha256", p->hash, NULL},
		       1);
	els_metric_family(&b, "els_permit_info", "gauge",
			  "Always 1: one sample per header_filter permit of the running policy, "
			  "by id and position.");
	for (unsigned i = 0; i < p->nlinks; i++) {
		const struct els_chain_link *l = &p->links[i];
		if (strcmp(l->h->name, "header_filter") != 0 || !l->h->rule_name)
			continue;
		const char *id;
		for (uint32_t r = 1; (id = l->h->rule_name(l->conf, r)) != NULL; r++) {
			char pos[16];
			snprintf(pos, sizeof(pos), "%u", r);
			els_metric_u64(&b, "els_permit_info",
				       (const char *const[]){"id", id, "position", pos, NULL}, 1);
		}
	}
	struct permit_set *ps = els_metrics_permit_set_of(p);
	pthread_mutex_lock(&m->mu);
	struct els_mbuf old = m->policy_text;
	m->policy_text = b;
	if (ps)
		els_metrics_permits_switch(m, ps);
	pthread_mutex_unlock(&m->mu);
	els_mbuf_free(&old);
	if (!ps)
		els_log(ELS_LL_WARNING, "metrics: out of memory; hits per permit not updated");
}

/* A counter family with one sample per queue: name, help, and where the counter sits in the
 * block counters_of gives for a worker (NULL: 0). */
struct per_queue_counter {
	const char *name, *help;
	size_t off;
};

static void render_per_queue(struct els_metrics *m, struct els_mbuf *b,
			     const struct per_queue_counter *t, size_t n,
			     const void *(*counters_of)(const struct els_worker *w))
{
	char q[16];
	for (size_t k = 0; k < n; k++) {
		els_metric_family(b, t[k].name, "counter", t[k].help);
		for (unsigned i = 0; i < m->src.nq; i++) {
			const struct els_worker *w = &m->src.workers[i];
			const char *base = counters_of(w);
			const _Atomic uint64_t *c =
			    base ? (const _Atomic uint64_t *)(base + t[k].off) : NULL;
			snprintf(q, sizeof(q), "%u", w->queue);
			els_metric_u64(b, t[k].name, (const char *const[]){"queue", q, NULL},
				       c ? atomic_load_explicit(c, memory_order_relaxed) : 0);
		}
	}
}

static const void *worker_counters(const struct els_worker *w)
{
	return &w->st;
}

/* The worker's socket owners (agent/packet/owner.h) once its thread started them. */
static const void *owner_counters(const struct els_worker *w)
{
	struct els_owners *o = __atomic_load_n(&w->owners, __ATOMIC_ACQUIRE);
	return o ? els_owners_stats(o) : NULL;
}

/* Socket-owner lookups of service-bound permits, per queue; 0 for a queue whose worker has
 * not started its lookups (or could not). */
static void render_owners(struct els_metrics *m, struct els_mbuf *b)
{
	static const struct per_queue_counter t[] = {
	    {"els_owner_cache_hits_total",
	     "Socket-owner lookups answered from the cache (service-bound permits).",
	     offsetof(struct els_owners_stats, hits)},
	    {"els_owner_cache_misses_total",
	     "Socket-owner lookups sent to the resolver thread (a scan of /proc).",
	     offsetof(struct els_owners_stats, misses)},
	    {"els_owner_lookups_deferred_total",
	     "Socket-owner lookups answered pending: the packet waited in the queue.",
	     offsetof(struct els_owners_stats, deferred)},
	    {"els_owner_unknown_total",
	     "Socket-owner lookups that found no owner (the fail policy applied).",
	     offsetof(struct els_owners_stats, unknown)},
	};
	render_per_queue(m, b, t, sizeof(t) / sizeof(t[0]), owner_counters);
}

static void render_queues(struct els_metrics *m, struct els_mbuf *b)
{
	static const struct per_queue_counter t[] = {
	    {"els_queue_packets_total", "Packets judged, per NFQUEUE.",
	     offsetof(struct els_worker_stats, packets)},
	    {"els_queue_decode_errors_total", "Packets the decoder could not read (dropped).",
	     offsetof(struct els_worker_stats, decode_errors)},
	    {"els_queue_enobufs_total", "Times the queue socket overran (ENOBUFS).",
	     offsetof(struct els_worker_stats, enobufs)},
	    {"els_queue_verdict_errors_total", "Verdicts the kernel did not take.",
	     offsetof(struct els_worker_stats, verdict_errors)},
	};
	char q[16];
	render_per_queue(m, b, t, sizeof(t) / sizeof(t[0]), worker_counters);
	els_metric_family(b, "els_queue_verdicts_total", "counter",
			  "Verdicts given, per NFQUEUE and verdict.");
	for (unsigned i = 0; i < m->src.nq; i++) {
		const struct els_worker *w = &m->src.workers[i];
		snprintf(q, sizeof(q), "%u", w->queue);
		els_metric_u64(b, "els_queue_verdicts_total",
			       (const char *const[]){"queue", q, "verdict", "accept", NULL},
			       atomic_load_explicit(&w->st.accepted, memory_order_relaxed));
		els_metric_u64(b, "els_queue_verdicts_total",
			       (const char *const[]){"queue", q, "verdict", "drop", NULL},
			       atomic_load_explicit(&w->st.dropped, memory_order_relaxed));
	}
	render_owners(m, b);
	els_metric_family(b, "els_flows_active", "gauge",
			  "Flows in the queue's flow table (updated between batches).");
	for (unsigned i = 0; i < m->src.nq; i++) {
		snprintf(q, sizeof(q), "%u", m->src.workers[i].queue);
		els_metric_u64(
		    b, "els_flows_active", (const char *const[]){"queue", q, NULL},
		    atomic_load_explicit(&m->src.workers[i].st.flows_live, memory_order_relaxed));
	}
	els_metric_family(b, "els_flows_capacity", "gauge", "Flow table size per queue.");
	for (unsigned i = 0; i < m->src.nq; i++) {
		snprintf(q, sizeof(q), "%u", m->src.workers[i].queue);
		els_metric_u64(b, "els_flows_capacity", (const char *const[]){"queue", q, NULL},
			       m->src.flow_capacity);
	}
	els_metric_family(b, "els_flows_evicted_total", "counter",
			  "Flows pushed out of a full flow table to make room.");
	for (unsigned i = 0; i < m->src.nq; i++) {
		snprintf(q, sizeof(q), "%u", m->src.workers[i].queue);
		els_metric_u64(b, "els_flows_evicted_total",
			       (const char *const[]){"queue", q, NULL},
			       atomic_load_explicit(&m->src.workers[i].st.flows_evicted,
						    memory_order_relaxed));
	}
}

static const char *slot_name(unsigned slot, const struct els_handler *const *all, unsigned nreg)
{
	if (slot == ELS_STATS_DECODE)
		return "decode";
	if (slot == ELS_STATS_CHAIN)
		return "chain";
	return slot < nreg ? all[slot]->name : NULL;
}

/* Final decisions and drops per handler: summed over workers, by handler name. */
static void render_handlers(struct els_metrics *m, struct els_mbuf *b)
{
	const struct els_handler *const *all = els_handler_all();
	unsigned nreg = 0;
	while (all[nreg] && nreg < ELS_STATS_HANDLERS)
		nreg++;

	els_metric_family(b, "els_handler_decisions_total", "counter",
			  "Final verdicts, by the handler that decided them.");
	for (unsigned slot = 0; slot < ELS_STATS_HANDLERS + 2; slot++) {
		const char *name = slot_name(slot, all, nreg);
		if (!name)
			continue;
		for (int v = 0; v < 2; v++) {
			uint64_t sum = 0;
			for (unsigned w = 0; w < m->src.nq; w++)
				sum += atomic_load_explicit(&m->src.workers[w].st.decided[slot][v],
							    memory_order_relaxed);
			els_metric_u64(b, "els_handler_decisions_total",
				       (const char *const[]){"handler", name, "verdict",
							     v ? "drop" : "accept", NULL},
				       sum);
		}
	}
	/* Only the (handler, reason) pairs that happened: most of the table is always zero. */
	els_metric_family(b, "els_drops_total", "counter",
			  "Dropped packets, by deciding handler and reason (pairs seen so far).");
	for (unsigned slot = 0; slot < ELS_STATS_HANDLERS + 2; slot++) {
		const char *name = slot_name(slot, all, nreg);
		if (!name)
			continue;
		for (unsigned r = 0; r < ELS_R__COUNT; r++) {
			uint64_t sum = 0;
			for (unsigned w = 0; w < m->src.nq; w++)
				sum += atomic_load_explicit(&m->src.workers[w].st.drops[slot][r],
							    memory_order_relaxed);
			if (sum)
				els_metric_u64(b, "els_drops_total",
					       (const char *const[]){"handler", name, "reason",
								     els_reason_name(r), NULL},
					       sum);
		}
	}
}

static void render_monitor(struct els_metrics *m, struct els_mbuf *b)
{
	char q[16];
	els_metric_family(b, "els_monitor_ring_dropped_total", "counter",
			  "Records a full ring refused (each becomes a gap row), per ring.");
	for (unsigned i = 0; m->src.mon && i <= m->src.nq; i++) {
		if (i < m->src.nq)
			snprintf(q, sizeof(q), "queue%u", m->src.workers[i].queue);
		else
			snprintf(q, sizeof(q), "main");
		els_metric_u64(b, "els_monitor_ring_dropped_total",
			       (const char *const[]){"ring", q, NULL},
			       els_ring_lost(els_monitor_ring(m->src.mon, i)));
	}
	struct els_monitor_stats ms = {0};
	if (m->src.mon)
		els_monitor_get_stats(m->src.mon, &ms);
	els_metric_family(b, "els_monitor_rows_written_total", "counter",
			  "Rows committed to the monitor file, gap rows included.");
	els_metric_u64(b, "els_monitor_rows_written_total", NULL, ms.written);
	els_metric_family(b, "els_monitor_gap_records_total", "counter",
			  "Records lost, by cause; every loss is also a gap row in the monitor.");
	els_metric_u64(b, "els_monitor_gap_records_total",
		       (const char *const[]){"cause", "ring_full", NULL}, ms.lost);
	els_metric_u64(b, "els_monitor_gap_records_total",
		       (const char *const[]){"cause", "write_error", NULL}, ms.write_lost);
	els_metric_u64(b, "els_monitor_gap_records_total",
		       (const char *const[]){"cause", "size_cap", NULL}, ms.shed);
	els_metric_family(b, "els_monitor_write_errors_total", "counter",
			  "Monitor transactions that failed (disk full, file gone).");
	els_metric_u64(b, "els_monitor_write_errors_total", NULL, ms.write_errors);
}

static void no_growth(unsigned queue, uint64_t full, uint64_t sock, void *arg)
{
	(void)queue, (void)full, (void)sock, (void)arg;
}

static void render_kernel(struct els_metrics *m, struct els_mbuf *b)
{
	char q[16];
	bool ok = els_kdrops_poll(&m->kd, no_growth, NULL) == 0;
	els_metric_family(b, "els_kernel_queue_dropped_total", "counter",
			  "Packets the kernel dropped unjudged for an elsd queue, by cause "
			  "(/proc/net/netfilter/nfnetlink_queue).");
	for (unsigned qn = m->kd.first; ok && qn <= m->kd.last; qn++) {
		unsigned i = qn - m->kd.first;
		if (i >= ELS_KDROPS_MAX || !m->kd.known[i])
			continue;
		snprintf(q, sizeof(q), "%u", qn);
		els_metric_u64(b, "els_kernel_queue_dropped_total",
			       (const char *const[]){"queue", q, "cause", "queue_full", NULL},
			       m->kd.queue_full[i]);
		els_metric_u64(b, "els_kernel_queue_dropped_total",
			       (const char *const[]){"queue", q, "cause", "socket_buffer", NULL},
			       m->kd.sockbuf[i]);
	}
}

static void render_state(struct els_metrics *m, struct els_mbuf *b)
{
	els_metric_family(b, "els_start_time_seconds", "gauge", "When elsd started (Unix time).");
	els_metric_f64(b, "els_start_time_seconds", NULL, (double)m->start_real_ns / 1e9);
	els_metric_family(b, "els_policy_generation", "gauge", "The running policy generation.");
	els_metric_u64(b, "els_policy_generation", NULL,
		       atomic_load_explicit(&running_generation, memory_order_relaxed));
	els_metric_family(b, "els_reloads_total", "counter",
			  "Reloads and management policy changes, by result.");
	els_metric_u64(b, "els_reloads_total", (const char *const[]){"result", "ok", NULL},
		       atomic_load_explicit(&reloads_ok, memory_order_relaxed));
	els_metric_u64(b, "els_reloads_total", (const char *const[]){"result", "failed", NULL},
		       atomic_load_explicit(&reloads_failed, memory_order_relaxed));
	int last = atomic_load_explicit(&last_reload_ok, memory_order_relaxed);
	if (last >= 0) {
		els_metric_family(b, "els_reload_last_success", "gauge",
				  "1 when the last reload was applied, 0 when it was refused.");
		els_metric_u64(b, "els_reload_last_success", NULL, (uint64_t)last);
		els_metric_family(b, "els_reload_last_timestamp_seconds", "gauge",
				  "When the last reload ended (Unix time).");
		els_metric_f64(
		    b, "els_reload_last_timestamp_seconds", NULL,
		    (double)atomic_load_explicit(&last_reload_real_ns, memory_order_relaxed) / 1e9);
	}
	int intact = atomic_load_explicit(&ruleset_intact, memory_order_relaxed);
	if (intact >= 0) {
		els_metric_family(b, "els_ruleset_intact", "gauge",
				  "1 while the steering rules are as elsd installed them.");
		els_metric_u64(b, "els_ruleset_intact", NULL, (uint64_t)intact);
	}
	els_metric_family(b, "els_mgmt_refusals_total", "counter",
			  "Management connections and requests refused.");
	els_metric_u64(b, "els_mgmt_refusals_total", NULL,
		       atomic_load_explicit(&mgmt_refusals, memory_order_relaxed));
}

void els_metrics_render(struct els_metrics *m, struct els_mbuf *b)
{
	pthread_mutex_lock(&m->mu);
	if (m->policy_text.p)
		els_mbuf_printf(b, "%s", m->policy_text.p);
	pthread_mutex_unlock(&m->mu);
	render_state(m, b);
	render_queues(m, b);
	render_handlers(m, b);
	els_metrics_render_permits(m, b);
	render_monitor(m, b);
	render_kernel(m, b);
}
