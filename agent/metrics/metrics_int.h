/* Between the metrics endpoint's files: metrics.c (collection), metrics_permits.c (hits per
 * permit across generations), metrics_http.c (the server). Not for anyone else. */
#ifndef ELS_METRICS_INT_H
#define ELS_METRICS_INT_H

#include <pthread.h>

#include "kdrops.h"
#include "metrics.h"
#include "mgmt.h"

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
	pthread_mutex_t mu;	     /* guards [mu] fields and tls.ctx; never held by a worker */
	struct els_mbuf policy_text; /* [mu] the policy's labelled samples */
	struct permit_set *cur;	     /* [mu] the running generation's permits */
	struct permit_set *prev;     /* [mu] the one before, until every worker left it */
	int *prevmap;		     /* [mu] prev position -> cur slot, -1: id gone */
};

/* metrics_permits.c */
/* Takes ps (owned from now on) as the running generation's permits; the previous set stays
 * until els_metrics_settle(). [mu] held. */
void els_metrics_permits_switch(struct els_metrics *m, struct permit_set *ps);
/* The permit ids of p's header_filter; NULL on ENOMEM. */
struct permit_set *els_metrics_permit_set_of(const struct els_policy *p);
void els_metrics_render_permits(struct els_metrics *m, struct els_mbuf *b);
/* Frees cur, prev and the map between. */
void els_metrics_permits_free(struct els_metrics *m);

#endif
