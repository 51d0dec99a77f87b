/* anomaly's memory of recent fragments (see anomaly_frag.h): a direct-mapped table of
 * datagrams, each with the first few byte ranges seen. Made once per worker; the packet path
 * only overwrites slots. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomaly_frag.h"
#include "els/addr.h"
#include "els/clock.h"

#define FRAG_SLOTS  1024u
#define FRAG_RANGES 8u
#define FRAG_TTL_NS (30 * ELS_NS_PER_S)

struct an_frag {
	struct els_addr src, dst;
	uint32_t id;
	uint8_t family, proto, n, used;
	uint64_t ts_ns;
	struct {
		uint32_t lo, hi; /* [lo, hi): hi is a lower bound of the real end */
	} r[FRAG_RANGES];
};

struct an_frags {
	uint64_t seed;
	uint32_t mask;
	struct an_frag slot[];
};

void *an_frags_new(const struct els_worker_env *env)
{
	struct an_frags *fr = calloc(1, sizeof(*fr) + FRAG_SLOTS * sizeof(fr->slot[0]));

	(void)env;
	if (!fr)
		return NULL;
	if (getentropy(&fr->seed, sizeof(fr->seed)) < 0)
		fr->seed = (uint64_t)(uintptr_t)fr;
	fr->mask = FRAG_SLOTS - 1;
	return fr;
}

void an_frags_free(void *hstate)
{
	free(hstate);
}

static uint32_t hash_of(const struct an_frags *fr, const struct els_pkt *p)
{
	return (uint32_t)els_addr_hash(p->family, &p->src,
				       p->frag_id ^ ((uint32_t)p->proto << 24), fr->seed);
}

/* A lower bound of the fragment's data length: the IP header length is not in els_pkt, so
 * take the longest an IPv4 header can be, and for IPv6 the fixed header, the fragment header
 * and 64 bytes per other extension header. Underestimating the end can only miss an overlap,
 * never invent one. */
static uint32_t frag_len_min(const struct els_pkt *p)
{
	uint32_t hdr =
	    p->family == ELS_AF_INET ? 60u : 48u + 64u * (p->ext_count ? p->ext_count - 1u : 0u);
	return p->wire_len > hdr ? p->wire_len - hdr : 0;
}

bool an_frags_overlap(struct an_frags *fr, const struct els_pkt *p, uint64_t now_ns)
{
	uint32_t h = hash_of(fr, p);
	struct an_frag *e = &fr->slot[(h ^ (h >> 13)) & fr->mask];
	uint32_t lo = p->frag_off, hi = lo + frag_len_min(p);
	bool same = e->used && e->family == p->family && e->proto == p->proto &&
		    e->id == p->frag_id && memcmp(&e->src, &p->src, sizeof(p->src)) == 0 &&
		    memcmp(&e->dst, &p->dst, sizeof(p->dst)) == 0 &&
		    now_ns - e->ts_ns <= FRAG_TTL_NS;

	if (!same) {
		memset(e, 0, sizeof(*e));
		e->used = 1;
		e->family = p->family;
		e->proto = p->proto;
		e->id = p->frag_id;
		e->src = p->src;
		e->dst = p->dst;
	}
	e->ts_ns = now_ns;
	for (unsigned i = 0; i < e->n; i++) {
		/* the same offset twice, or two ranges that share a byte */
		if (e->r[i].lo == lo || (lo < e->r[i].hi && e->r[i].lo < hi))
			return true;
	}
	if (e->n < FRAG_RANGES) {
		e->r[e->n].lo = lo;
		e->r[e->n].hi = hi;
		e->n++;
	}
	return false;
}
