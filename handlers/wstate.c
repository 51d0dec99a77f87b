/* Per-worker handler state (see wstate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "els/clock.h"
#include "els/wstate.h"

#define SESS_MAX	  65536u
#define SCAN_SETS	  1024u
#define FRAG_SLOTS	  1024u
#define FRAG_TTL_NS	  (30 * ELS_NS_PER_S)
#define ALERT_RING	  1024u
#define ALERT_GAP_NS	  (10 * ELS_NS_PER_S)
#define SESS_SWEEP_BUDGET 64u

/* The alert drain (elsd's agent/daemon/alert.c) installs itself here: this layer may not
 * call up into the daemon, and tools that build handlers have no drain. */
static int (*alert_register)(struct els_ring *r);
static void (*alert_unregister)(struct els_ring *r);

void els_ws_set_alert_sink(int (*reg)(struct els_ring *r), void (*unreg)(struct els_ring *r))
{
	alert_register = reg;
	alert_unregister = unreg;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

struct els_wstate *els_ws_new(uint32_t flow_capacity, struct els_ring *mon, bool register_alerts)
{
	struct els_wstate *ws = calloc(1, sizeof(*ws));
	uint32_t n;

	if (!ws)
		return NULL;
	if (getentropy(&ws->seed, sizeof(ws->seed)) < 0)
		ws->seed = (uint64_t)(uintptr_t)ws;
	ws->mon = mon;
	n = flow_capacity < SESS_MAX ? flow_capacity : SESS_MAX;
	ws->sess_limit = n ? n : 1;
	/* load at most one half: linear probing stays short */
	ws->sess_mask = pow2_at_least(ws->sess_limit * 2) - 1;
	ws->sess = calloc((size_t)ws->sess_mask + 1, sizeof(*ws->sess));
	ws->scan_sets = SCAN_SETS;
	ws->scan = calloc((size_t)SCAN_SETS * ELS_WS_SCAN_WAYS, sizeof(*ws->scan));
	ws->frag_mask = FRAG_SLOTS - 1;
	ws->frag = calloc(FRAG_SLOTS, sizeof(*ws->frag));
	ws->alerts = els_ring_new(ALERT_RING);
	if (!ws->sess || !ws->scan || !ws->frag || !ws->alerts)
		goto fail;
	if (register_alerts && (!alert_register || alert_register(ws->alerts) < 0))
		goto fail;
	return ws;
fail:
	els_ring_free(ws->alerts);
	ws->alerts = NULL;
	els_ws_free(ws);
	return NULL;
}

void els_ws_free(struct els_wstate *ws)
{
	if (!ws)
		return;
	if (ws->alerts) {
		if (alert_unregister)
			alert_unregister(ws->alerts); /* a ring never registered is simply not found */
		els_ring_free(ws->alerts);
	}
	free(ws->sess);
	free(ws->scan);
	free(ws->frag);
	free(ws);
}

static uint32_t hash_addr(const struct els_wstate *ws, uint8_t family, const struct els_addr *a,
			  uint32_t extra)
{
	struct {
		struct els_addr a;
		uint32_t extra;
		uint8_t family, pad[3];
	} k;
	memset(&k, 0, sizeof(k));
	k.a = *a;
	k.extra = extra;
	k.family = family;
	return (uint32_t)XXH3_64bits_withSeed(&k, sizeof(k), ws->seed);
}

/* ---- sessions ---- */

static bool sess_is(const struct els_ws_sess *e, uint8_t family, const struct els_addr *a,
		    uint8_t proto, uint16_t port)
{
	return e->used && e->family == family && e->proto == proto && e->port == port &&
	       memcmp(&e->addr, a, sizeof(*a)) == 0;
}

static uint32_t sess_home(const struct els_wstate *ws, uint8_t family, const struct els_addr *a,
			  uint8_t proto, uint16_t port)
{
	return hash_addr(ws, family, a, (uint32_t)proto << 16 | port) & ws->sess_mask;
}

static struct els_ws_sess *sess_find(const struct els_wstate *ws, uint8_t family,
				     const struct els_addr *a, uint8_t proto, uint16_t port,
				     uint32_t *slot)
{
	uint32_t i = sess_home(ws, family, a, proto, port);

	for (; ws->sess[i].used; i = (i + 1) & ws->sess_mask)
		if (sess_is(&ws->sess[i], family, a, proto, port))
			return &ws->sess[i];
	*slot = i;
	return NULL;
}

/* Linear probing deletion by backward shift: no tombstones, probes stay short. */
static void sess_delete(struct els_wstate *ws, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		j = (j + 1) & ws->sess_mask;
		if (!ws->sess[j].used)
			break;
		const struct els_ws_sess *e = &ws->sess[j];
		uint32_t h = sess_home(ws, e->family, &e->addr, e->proto, e->port);
		/* e may move to i when its home is not cyclically in (i, j] */
		bool stay = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (stay)
			continue;
		ws->sess[i] = ws->sess[j];
		i = j;
	}
	memset(&ws->sess[i], 0, sizeof(ws->sess[i]));
	ws->sess_used--;
}

void els_ws_session_change(struct els_wstate *ws, const struct els_flow *f, int delta)
{
	uint8_t r = f->init_side, l = !f->init_side;
	uint32_t slot = 0;

	if (!ws || f->init_dir != ELS_DIR_IN)
		return;
	const struct els_addr *remote = &f->key.addr[r];
	uint16_t port = f->key.port[l];
	struct els_ws_sess *e = sess_find(ws, f->key.family, remote, f->key.proto, port, &slot);
	if (delta > 0) {
		if (!e) {
			/* Full: the session goes uncounted and its gate stays shut (fails closed).
			 */
			if (ws->sess_used >= ws->sess_limit)
				return;
			e = &ws->sess[slot];
			e->used = 1;
			e->family = f->key.family;
			e->proto = f->key.proto;
			e->port = port;
			e->addr = *remote;
			ws->sess_used++;
		}
		e->count++;
	} else if (e && e->count) {
		if (--e->count == 0)
			e->last_end_ns = ws->now_ns ? ws->now_ns : 1;
	}
}

bool els_ws_session_held(const struct els_wstate *ws, uint8_t family, const struct els_addr *remote,
			 uint8_t proto, uint16_t port, uint64_t grace_ns)
{
	uint32_t slot;

	if (!ws)
		return false;
	const struct els_ws_sess *e = sess_find(ws, family, remote, proto, port, &slot);
	if (!e)
		return false;
	return e->count > 0 || (grace_ns && ws->now_ns - e->last_end_ns <= grace_ns);
}

void els_ws_tick(struct els_wstate *ws)
{
	for (unsigned n = 0; n < SESS_SWEEP_BUDGET; n++) {
		uint32_t i = ws->sess_sweep;
		struct els_ws_sess *e = &ws->sess[i];
		if (e->used && !e->count && ws->now_ns - e->last_end_ns > ELS_WS_MAX_GRACE_NS) {
			sess_delete(ws, i);
			continue; /* another entry may have shifted into slot i */
		}
		ws->sess_sweep = (i + 1) & ws->sess_mask;
	}
}

/* ---- scan table ---- */

struct els_ws_scan *els_ws_scan_get(struct els_wstate *ws, uint8_t family, const struct els_addr *a,
				    bool create)
{
	uint32_t set = hash_addr(ws, family, a, 0x5ca7) % ws->scan_sets;
	struct els_ws_scan *w = &ws->scan[set * ELS_WS_SCAN_WAYS], *victim = NULL;

	for (unsigned i = 0; i < ELS_WS_SCAN_WAYS; i++)
		if (w[i].used && w[i].family == family && memcmp(&w[i].addr, a, sizeof(*a)) == 0)
			return &w[i];
	if (!create)
		return NULL;
	/* A free way, else the least recently seen source that is not denied: a flood of
	 * spoofed sources cannot push a denied scanner out of the table. */
	for (unsigned i = 0; i < ELS_WS_SCAN_WAYS; i++) {
		struct els_ws_scan *e = &w[i];
		if (!e->used) {
			victim = e;
			break;
		}
		if (e->deny_until_ns > ws->now_ns)
			continue;
		if (!victim || e->last_ns < victim->last_ns)
			victim = e;
	}
	if (!victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = 1;
	victim->family = family;
	victim->addr = *a;
	victim->win_start_ns = ws->now_ns;
	return victim;
}

/* ---- fragments ---- */

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

bool els_ws_frag_overlaps(struct els_wstate *ws, const struct els_pkt *p)
{
	uint32_t h = hash_addr(ws, p->family, &p->src, p->frag_id ^ ((uint32_t)p->proto << 24));
	struct els_ws_frag *e = &ws->frag[(h ^ (h >> 13)) & ws->frag_mask];
	uint32_t lo = p->frag_off, hi = lo + frag_len_min(p);
	bool same = e->used && e->family == p->family && e->proto == p->proto &&
		    e->id == p->frag_id && memcmp(&e->src, &p->src, sizeof(p->src)) == 0 &&
		    memcmp(&e->dst, &p->dst, sizeof(p->dst)) == 0 &&
		    ws->now_ns - e->ts_ns <= FRAG_TTL_NS;

	if (!same) {
		memset(e, 0, sizeof(*e));
		e->used = 1;
		e->family = p->family;
		e->proto = p->proto;
		e->id = p->frag_id;
		e->src = p->src;
		e->dst = p->dst;
	}
	e->ts_ns = ws->now_ns;
	for (unsigned i = 0; i < e->n; i++) {
		/* the same offset twice, or two ranges that share a byte */
		if (e->r[i].lo == lo || (lo < e->r[i].hi && e->r[i].lo < hi))
			return true;
	}
	if (e->n < ELS_WS_FRAG_RANGES) {
		e->r[e->n].lo = lo;
		e->r[e->n].hi = hi;
		e->n++;
	}
	return false;
}

/* ---- alerts and records ---- */

void els_ws_alert(struct els_wstate *ws, struct els_record *r, bool limit)
{
	unsigned reason = r->reason < ELS_R__COUNT ? r->reason : 0;

	if (limit && ws->alert_last_ns[reason] &&
	    ws->now_ns - ws->alert_last_ns[reason] < ALERT_GAP_NS) {
		ws->alert_suppressed[reason]++;
		return;
	}
	ws->alert_last_ns[reason] = ws->now_ns ? ws->now_ns : 1;
	if (ws->alert_suppressed[reason]) {
		size_t n = strnlen(r->detail, sizeof(r->detail));
		snprintf(r->detail + n, sizeof(r->detail) - n, "%ssuppressed=%u", n ? " " : "",
			 ws->alert_suppressed[reason]);
		ws->alert_suppressed[reason] = 0;
	}
	r->kind = ELS_REC_EVENT;
	els_ring_push(ws->alerts, r);
}

void els_ws_record(struct els_wstate *ws, const struct els_record *r)
{
	if (ws && ws->mon)
		els_ring_push(ws->mon, r);
}
