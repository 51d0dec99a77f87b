/* The per-worker session index (see els/sessions.h): open addressing, linear probing. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/sessions.h"

#define SESS_MAX	  65536u
#define SESS_SWEEP_BUDGET 64u

/* An established remote-initiated flow count per (remote, protocol, local port). */
struct sess_entry {
	struct els_addr addr;
	uint8_t family, proto, used, pad;
	uint16_t port;
	uint32_t count;
	uint64_t last_end_ns; /* when count last fell to 0 (grace runs from here) */
};

struct els_sessions {
	uint64_t seed;
	struct sess_entry *e;
	uint32_t mask, used, limit, sweep;
};

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

struct els_sessions *els_sessions_new(uint32_t flow_capacity)
{
	struct els_sessions *s = calloc(1, sizeof(*s));
	uint32_t n;

	if (!s)
		return NULL;
	if (getentropy(&s->seed, sizeof(s->seed)) < 0)
		s->seed = (uint64_t)(uintptr_t)s;
	n = flow_capacity < SESS_MAX ? flow_capacity : SESS_MAX;
	s->limit = n ? n : 1;
	/* load at most one half: linear probing stays short */
	s->mask = pow2_at_least(s->limit * 2) - 1;
	s->e = calloc((size_t)s->mask + 1, sizeof(*s->e));
	if (!s->e) {
		free(s);
		return NULL;
	}
	return s;
}

void els_sessions_free(struct els_sessions *s)
{
	if (!s)
		return;
	free(s->e);
	free(s);
}

static uint32_t home(const struct els_sessions *s, uint8_t family, const struct els_addr *a,
		     uint8_t proto, uint16_t port)
{
	return (uint32_t)els_addr_hash(family, a, (uint32_t)proto << 16 | port, s->seed) & s->mask;
}

static bool is(const struct sess_entry *e, uint8_t family, const struct els_addr *a, uint8_t proto,
	       uint16_t port)
{
	return e->used && e->family == family && e->proto == proto && e->port == port &&
	       memcmp(&e->addr, a, sizeof(*a)) == 0;
}

static struct sess_entry *find(const struct els_sessions *s, uint8_t family,
			       const struct els_addr *a, uint8_t proto, uint16_t port,
			       uint32_t *slot)
{
	uint32_t i = home(s, family, a, proto, port);

	for (; s->e[i].used; i = (i + 1) & s->mask)
		if (is(&s->e[i], family, a, proto, port))
			return &s->e[i];
	*slot = i;
	return NULL;
}

/* Linear probing deletion by backward shift: no tombstones, probes stay short. */
static void delete_at(struct els_sessions *s, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		j = (j + 1) & s->mask;
		if (!s->e[j].used)
			break;
		const struct sess_entry *e = &s->e[j];
		uint32_t h = home(s, e->family, &e->addr, e->proto, e->port);
		/* e may move to i when its home is not cyclically in (i, j] */
		bool stay = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (stay)
			continue;
		s->e[i] = s->e[j];
		i = j;
	}
	memset(&s->e[i], 0, sizeof(s->e[i]));
	s->used--;
}

void els_sessions_change(struct els_sessions *s, const struct els_flow *f, int delta,
			 uint64_t now_ns)
{
	uint8_t r = f->init_side, l = !f->init_side;
	uint32_t slot = 0;

	if (!s || f->init_dir != ELS_DIR_IN)
		return;
	const struct els_addr *remote = &f->key.addr[r];
	uint16_t port = f->key.port[l];
	struct sess_entry *e = find(s, f->key.family, remote, f->key.proto, port, &slot);
	if (delta > 0) {
		if (!e) {
			/* Full: the session goes uncounted and its gate stays shut (fails closed).
			 */
			if (s->used >= s->limit)
				return;
			e = &s->e[slot];
			e->used = 1;
			e->family = f->key.family;
			e->proto = f->key.proto;
			e->port = port;
			e->addr = *remote;
			s->used++;
		}
		e->count++;
	} else if (e && e->count) {
		if (--e->count == 0)
			e->last_end_ns = now_ns ? now_ns : 1;
	}
}

bool els_sessions_held(const struct els_sessions *s, uint8_t family, const struct els_addr *remote,
		       uint8_t proto, uint16_t port, uint64_t grace_ns, uint64_t now_ns)
{
	uint32_t slot;

	if (!s)
		return false;
	const struct sess_entry *e = find(s, family, remote, proto, port, &slot);
	if (!e)
		return false;
	return e->count > 0 || (grace_ns && now_ns - e->last_end_ns <= grace_ns);
}

void els_sessions_sweep(struct els_sessions *s, uint64_t now_ns)
{
	for (unsigned n = 0; n < SESS_SWEEP_BUDGET; n++) {
		uint32_t i = s->sweep;
		struct sess_entry *e = &s->e[i];
		if (e->used && !e->count && now_ns - e->last_end_ns > ELS_SESSIONS_MAX_GRACE_NS) {
			delete_at(s, i);
			continue; /* another entry may have shifted into slot i */
		}
		s->sweep = (i + 1) & s->mask;
	}
}
