/* scan's per-worker state (handlers/scan.c), private to the handler and its unit test. */
#ifndef ELS_HANDLERS_SCAN_H
#define ELS_HANDLERS_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "els/addr.h"
#include "els/handler.h"

#define SCAN_PORTS 64u /* distinct ports remembered per source: the largest threshold */
#define SCAN_WAYS  4u

/* One remote source: the closed ports it probed in its window, and its deny. */
struct scan_src {
	struct els_addr addr;
	uint8_t family, used, nports, alerted;
	uint64_t win_start_ns, last_ns;
	uint64_t deny_until_ns; /* 0: not denied */
	uint64_t denied_pkts;	/* packets dropped while denied */
	uint16_t ports[SCAN_PORTS];
};

struct scan_state {
	uint64_t seed;
	struct scan_src *src; /* sets * SCAN_WAYS */
	uint32_t sets, sweep;
};

void *scan_worker_init(const struct els_worker_env *env);
void scan_worker_free(void *hstate);

/* The entry of a source; with create, a new or recycled one (a stale, undenied entry of the
 * same set first). NULL when absent (or, with create, when every way holds a live deny). */
struct scan_src *scan_src_get(struct scan_state *st, uint8_t family, const struct els_addr *a,
			      bool create, uint64_t now_ns);

#endif
