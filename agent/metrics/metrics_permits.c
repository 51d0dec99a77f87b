/* Hits per permit across policy generations: each generation's workers count by permit
 * position in a bank of their own (worker.h permit_hits); the main thread hands a finished
 * bank over here, and its counts are carried to the ids the next policy still has. See
 * agent/metrics.h for the order of calls. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_int.h"
#include "worker.h"

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
struct permit_set *els_metrics_permit_set_of(const struct els_policy *p)
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

void els_metrics_permits_switch(struct els_metrics *m, struct permit_set *ps)
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

void els_metrics_render_permits(struct els_metrics *m, struct els_mbuf *b)
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

void els_metrics_permits_free(struct els_metrics *m)
{
	permit_set_free(m->cur);
	permit_set_free(m->prev);
	free(m->prevmap);
	m->cur = m->prev = NULL;
	m->prevmap = NULL;
}
