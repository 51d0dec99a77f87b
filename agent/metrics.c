/* The metrics endpoint: collects the counters into the text exposition format and serves it
 * with libevent's evhttp, in plain HTTP on loopback or a UNIX socket, or over mutual TLS 1.3.
 * See agent/metrics.h for why these choices, docs/metrics.md for every metric. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/monitor.h"
#include "els/reason.h"
#include "kdrops.h"
#include "log.h"
#include "metrics.h"
#include "mgmt.h"
#include "worker.h"

#define METRICS_TIMEOUT_S   10	 /* a client that sends nothing is dropped after this */
#define METRICS_MAX_HEADERS 8192 /* request line and headers: a scraper sends a few hundred */

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

/* ---- the endpoint ---- */

/* The header_filter permits of one generation, for hits per permit: rule position -> slot of
 * its id (ids may repeat: one sample per id), and per id the hits of earlier generations. */
struct permit_set {
	uint32_t gen;
	unsigned nrules; /* counted positions: at most ELS_STATS_PERMITS */
	unsigned *slot;	 /* [nrules] */
	unsigned nids;
	char **ids;	 /* [nids] */
	uint64_t *carry; /* [nids] */
};

struct els_metrics {
	struct els_metrics_src src; /* [I] */
	struct event_base *base;    /* [I] used by the serving thread only, once started */
	struct evhttp *http;	    /* [I] */
	struct els_mgmt_tls tls;    /* [I] tls.ctx NULL: plain HTTP */
	char *unix_path;	    /* [I] the socket to remove at the end, or NULL */
	char *crl_path;		    /* [I] re-read on SIGHUP (els_metrics_reload_crl) */
	pthread_t thread;
	bool started;
	struct els_kdrops kd;	     /* serving thread only */
	uint64_t start_real_ns;	     /* [I] */
	pthread_mutex_t mu;	     /* guards policy_text; never held by a worker */
	struct els_mbuf policy_text; /* [mu] the policy's labelled samples */
	struct permit_set *cur;	     /* [mu] the running generation's permits */
	struct permit_set *prev;     /* [mu] the one before, until every worker left it */
	int *prevmap;		     /* [mu] prev position -> cur slot, -1: id gone */
};

static void permit_set_free(struct permit_set *ps)
{
	for (unsigned i = 0; ps && i < ps->nids; i++)
		free(ps->ids[i]);
	if (ps) {
		free(ps->ids);
		free(ps->slot);
		free(ps->carry);
	}
	free(ps);
}

static int find_id(const struct permit_set *ps, const char *id)
{
	for (unsigned k = 0; k < ps->nids; k++)
		if (strcmp(ps->ids[k], id) == 0)
			return (int)k;
	return -1;
}

/* The permit ids of p's header_filter; NULL on ENOMEM. Off the packet path (main thread). */
static struct permit_set *permit_set_of(const struct els_policy *p)
{
	const struct els_chain_link *hf = NULL;
	unsigned n = 0;
	for (unsigned i = 0; i < p->nlinks; i++)
		if (strcmp(p->links[i].h->name, "header_filter") == 0 && p->links[i].h->rule_name)
			hf = &p->links[i];
	while (hf && n < ELS_STATS_PERMITS && hf->h->rule_name(hf->conf, n + 1))
		n++;
	struct permit_set *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->gen = p->generation;
	ps->slot = calloc(n ? n : 1, sizeof(*ps->slot));
	ps->ids = calloc(n ? n : 1, sizeof(*ps->ids));
	ps->carry = calloc(n ? n : 1, sizeof(*ps->carry));
	if (!ps->slot || !ps->ids || !ps->carry)
		goto fail;
	for (unsigned r = 0; r < n; r++) {
		const char *id = hf->h->rule_name(hf->conf, r + 1);
		int k = find_id(ps, id);
		if (k < 0) {
			if (!(ps->ids[ps->nids] = strdup(id)))
				goto fail;
			k = (int)ps->nids++;
		}
		ps->slot[r] = (unsigned)k;
		ps->nrules = r + 1;
	}
	return ps;
fail:
	permit_set_free(ps);
	return NULL;
}

/* Sum over workers of bank[gen & 1][pos]. */
static uint64_t hits_at(const struct els_metrics *m, uint32_t gen, unsigned pos)
{
	uint64_t sum = 0;
	for (unsigned w = 0; w < m->src.nq; w++)
		sum += atomic_load_explicit(&m->src.workers[w].st.permit_hits[gen & 1][pos],
					    memory_order_relaxed);
	return sum;
}

/* Folds the previous generation's final counts into the running one's carry. [mu] */
static void settle_locked(struct els_metrics *m)
{
	for (unsigned j = 0; m->prev && j < m->prev->nrules; j++)
		if (m->prevmap[j] >= 0)
			m->cur->carry[m->prevmap[j]] += hits_at(m, m->prev->gen, j);
	permit_set_free(m->prev);
	free(m->prevmap);
	m->prev = NULL;
	m->prevmap = NULL;
}

void els_metrics_settle(struct els_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	settle_locked(m);
	pthread_mutex_unlock(&m->mu);
}

void els_metrics_permits_prepare(struct els_worker *workers, unsigned nq, uint32_t next_gen)
{
	for (unsigned w = 0; w < nq; w++)
		for (unsigned i = 0; i < ELS_STATS_PERMITS; i++)
			atomic_store_explicit(&workers[w].st.permit_hits[next_gen & 1][i], 0,
					      memory_order_relaxed);
}

/* Takes p's permits as the running set; the old one stays until els_metrics_settle. [mu] */
static void permits_switch_locked(struct els_metrics *m, struct permit_set *ps)
{
	if (m->prev) /* a generation nobody settled (a worker was slow): fold what is there */
		settle_locked(m);
	if (m->cur) {
		int *map = calloc(m->cur->nrules ? m->cur->nrules : 1, sizeof(*map));
		if (!map) { /* cannot carry: the old counts are dropped, the new ones go on */
			permit_set_free(m->cur);
			m->cur = ps;
			return;
		}
		for (unsigned k = 0; k < ps->nids; k++) {
			int o = find_id(m->cur, ps->ids[k]);
			ps->carry[k] = o >= 0 ? m->cur->carry[o] : 0;
		}
		for (unsigned j = 0; j < m->cur->nrules; j++)
			map[j] = find_id(ps, m->cur->ids[m->cur->slot[j]]);
		m->prev = m->cur;
		m->prevmap = map;
	}
	m->cur = ps;
}

static void render_permit_hits(struct els_metrics *m, struct els_mbuf *b)
{
	els_metric_family(b, "els_permit_hits_total", "counter",
			  "Flows admitted per header_filter permit id (kept across reloads for "
			  "ids that stay).");
	pthread_mutex_lock(&m->mu);
	for (unsigned k = 0; m->cur && k < m->cur->nids; k++) {
		uint64_t sum = m->cur->carry[k];
		for (unsigned i = 0; i < m->cur->nrules; i++)
			if (m->cur->slot[i] == k)
				sum += hits_at(m, m->cur->gen, i);
		for (unsigned j = 0; m->prev && j < m->prev->nrules; j++)
			if (m->prevmap[j] == (int)k)
				sum += hits_at(m, m->prev->gen, j);
		els_metric_u64(b, "els_permit_hits_total",
			       (const char *const[]){"id", m->cur->ids[k], NULL}, sum);
	}
	pthread_mutex_unlock(&m->mu);
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
	struct permit_set *ps = permit_set_of(p);
	pthread_mutex_lock(&m->mu);
	struct els_mbuf old = m->policy_text;
	m->policy_text = b;
	if (ps)
		permits_switch_locked(m, ps);
	pthread_mutex_unlock(&m->mu);
	els_mbuf_free(&old);
	if (!ps)
		els_log(ELS_LL_WARNING, "metrics: out of memory; hits per permit not updated");
}

static void render_queues(struct els_metrics *m, struct els_mbuf *b)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} per_queue[] = {
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
	for (size_t k = 0; k < sizeof(per_queue) / sizeof(per_queue[0]); k++) {
		els_metric_family(b, per_queue[k].name, "counter", per_queue[k].help);
		for (unsigned i = 0; i < m->src.nq; i++) {
			const struct els_worker *w = &m->src.workers[i];
			const _Atomic uint64_t *c =
			    (const _Atomic uint64_t *)((const char *)&w->st + per_queue[k].off);
			snprintf(q, sizeof(q), "%u", w->queue);
			els_metric_u64(b, per_queue[k].name,
				       (const char *const[]){"queue", q, NULL},
				       atomic_load_explicit(c, memory_order_relaxed));
		}
	}
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
	render_permit_hits(m, b);
	render_monitor(m, b);
	render_kernel(m, b);
}

/* With tls, true only on a TLS connection whose client certificate was verified. The
 * handshake already refuses everyone else; this is the second lock, because evhttp serves a
 * connection in plain text when tls_bev() cannot create one (e.g. out of memory). */
static bool peer_verified(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl && SSL_is_init_finished(ssl) && SSL_get_verify_result(ssl) == X509_V_OK &&
	       SSL_get0_peer_certificate(ssl) != NULL;
}

/* Only GET /metrics, exactly: the request line is all that is read from a client. */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct els_metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);

	if (m->tls.ctx && !peer_verified(req)) {
		evhttp_send_error(req, 403, "client certificate required");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET /metrics");
		return;
	}
	if (!uri || strcmp(uri, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only GET /metrics");
		return;
	}
	struct els_mbuf b = {0};
	els_metrics_render(m, &b);
	struct evbuffer *out = evbuffer_new();
	if (b.oom || !out || evbuffer_add(out, b.p, b.len) < 0) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, HTTP_OK, "OK", out);
	}
	if (out)
		evbuffer_free(out);
	els_mbuf_free(&b);
}

/* Every connection starts with a TLS handshake: a client without a certificate from `ca`
 * (or with a revoked one) is cut before evhttp reads a byte from it. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct els_metrics *m = arg;
	pthread_mutex_lock(&m->mu);
	SSL *ssl = SSL_new(m->tls.ctx); /* holds its own reference to the context */
	pthread_mutex_unlock(&m->mu);
	if (!ssl)
		return NULL; /* evhttp then makes a plain connection: on_request refuses it */
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static int bind_unix(struct els_metrics *m, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A socket left by an elsd that died is replaced; anything else at the path is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	mode_t old = umask(0117); /* srw-rw----: the owner and its group may scrape */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0 || evhttp_accept_socket(m->http, fd) < 0) {
		rc = -errno;
		close(fd);
		return rc ? rc : -EINVAL;
	}
	m->unix_path = strdup(path);
	return 0;
}

static void threads_once(void)
{
	evthread_use_pthreads(); /* so the main thread may break the serving loop */
}

struct els_metrics *els_metrics_open(const struct els_metrics_conf *c,
				     const struct els_metrics_src *src)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct els_metrics *m = calloc(1, sizeof(*m));
	char err[512] = "";

	if (!m)
		return NULL;
	pthread_once(&once, threads_once);
	m->src = *src;
	m->start_real_ns = els_now_real();
	pthread_mutex_init(&m->mu, NULL);
	els_kdrops_init(&m->kd, src->queue_first, src->queue_last);
	if (c->cert) {
		struct els_mgmt_conf mc = {
		    .ca = c->ca, .cert = c->cert, .key = c->key, .crl = c->crl};
		if (els_mgmt_tls_load(&m->tls, &mc, err, sizeof(err)) < 0) {
			els_log(ELS_LL_ERROR, "metrics: %s", err);
			goto fail;
		}
		m->crl_path = strdup(c->crl);
		if (!m->crl_path)
			goto fail;
	}
	m->base = event_base_new();
	m->http = m->base ? evhttp_new(m->base) : NULL;
	if (!m->http) {
		els_log(ELS_LL_ERROR, "metrics: out of memory");
		goto fail;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(m->http, on_request, m);
	if (m->tls.ctx)
		evhttp_set_bevcb(m->http, tls_bev, m);
	if (c->unix_path) {
		int rc = bind_unix(m, c->unix_path);
		if (rc < 0) {
			els_log(ELS_LL_ERROR, "metrics: cannot listen on %s: %s", c->unix_path,
				strerror(-rc));
			goto fail;
		}
	} else if (evhttp_bind_socket(m->http, c->host, c->port) < 0) {
		els_log(ELS_LL_ERROR, "metrics: cannot listen on %s: %s", c->listen,
			strerror(errno));
		goto fail;
	}
	els_log(ELS_LL_INFO, "metrics: serving GET /metrics on %s%s", c->listen,
		m->tls.ctx ? " (TLS 1.3, client certificate required)" : "");
	return m;
fail:
	els_metrics_free(m);
	return NULL;
}

void els_metrics_reload_crl(struct els_metrics *m)
{
	char *pem, err[512];
	size_t len;

	if (!m || !m->crl_path)
		return;
	int rc = els_mgmt_read_file(m->crl_path, 4u << 20, &pem, &len);
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "metrics: cannot read the CRL %s: %s; keeping the old one",
			m->crl_path, strerror(-rc));
		return;
	}
	pthread_mutex_lock(&m->mu);
	rc = els_mgmt_tls_set_crl(&m->tls, pem, len, err, sizeof(err));
	pthread_mutex_unlock(&m->mu);
	free(pem);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "metrics: new CRL refused, keeping the old one: %s", err);
}

static void *serve(void *arg)
{
	struct els_metrics *m = arg;
	pthread_setname_np(pthread_self(), "elsd-metrics");
	event_base_dispatch(m->base);
	return NULL;
}

int els_metrics_start(struct els_metrics *m)
{
	if (!m)
		return 0;
	int rc = pthread_create(&m->thread, NULL, serve, m);
	if (rc) {
		els_log(ELS_LL_ERROR, "metrics: cannot start the thread: %s", strerror(rc));
		return -rc;
	}
	m->started = true;
	return 0;
}

void els_metrics_free(struct els_metrics *m)
{
	if (!m)
		return;
	if (m->started) {
		event_base_loopbreak(m->base);
		pthread_join(m->thread, NULL);
	}
	if (m->http)
		evhttp_free(m->http);
	if (m->base)
		event_base_free(m->base);
	if (m->unix_path)
		unlink(m->unix_path);
	free(m->unix_path);
	free(m->crl_path);
	els_mgmt_tls_free(&m->tls);
	els_mbuf_free(&m->policy_text);
	permit_set_free(m->cur);
	permit_set_free(m->prev);
	free(m->prevmap);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
