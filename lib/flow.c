/* The flow table (see include/els/flow.h). One per worker, so nothing here locks.
 *
 * Layout: a preallocated, cache-line aligned array of flows addressed by uint32 index; hash
 * buckets hold the index of the first flow of their chain (chained through hnext); each flow
 * also sits on one expiry list (lprev/lnext), chosen by its state and protocol class, in the
 * order flows were queued (include/els/flow.h explains the slack). Free slots are those past
 * the high-water mark plus a free list threaded through hnext, so creating a large table does
 * not touch every page up front. */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bigmem.h"
#include "els/clock.h"
#include "els/flow.h"
#include "els/reason.h"

#define NIL	  UINT32_MAX
#define LIST_FREE 0xffu
#define N_PCLASS  3 /* TCP, other (UDP and anything with ports), ICMP */
#define N_LISTS	  (N_PCLASS * ELS_FS__COUNT)

#define FRAG_SLOTS	 4096u /* power of two */
#define FRAG_LIFETIME_NS (30 * ELS_NS_PER_S)

#define CACHE_LINE 64u
/* A flow is two cache lines, aligned as a pair: the lookup reads the key in the first, the
 * tracker writes counters in both, and x86's adjacent-line prefetcher fetches 128-byte pairs. */
#define FLOW_ALIGN 128u
_Static_assert(sizeof(struct els_flow) == FLOW_ALIGN, "struct els_flow must be two cache lines");
_Static_assert(sizeof(struct els_flow_key) == 40, "struct els_flow_key must have no padding");
_Static_assert(N_LISTS < LIST_FREE, "list index must fit in els_flow.list");
_Static_assert(sizeof(struct els_flow_admit) == CACHE_LINE, "struct els_flow_admit: one line");

struct frag_key {
	struct els_addr src, dst;
	uint32_t id;
	uint8_t family, proto;
	uint8_t pad[2];
};

struct frag_slot {
	struct frag_key key;
	uint64_t expire_ns; /* 0: empty */
};

struct els_flow_table {
	struct els_flow *flows;
	struct els_flow_admit *admits; /* [capacity], beside flows[] by index */
	uint32_t *buckets;
	struct frag_slot *frags;
	uint64_t seed;
	uint32_t capacity, count, mask;
	uint32_t hwm;	    /* slots [hwm, capacity) have never been used */
	uint32_t free_head; /* removed slots, chained through hnext */
	uint32_t head[N_LISTS], tail[N_LISTS];
	unsigned expire_cursor; /* list expiry starts at, so no list starves under a small budget */
};

static const char *const state_names[ELS_FS__COUNT] = {
    [ELS_FS_NONE] = "none",	      [ELS_FS_SYN_SENT] = "syn_sent",
    [ELS_FS_SYN_RECV] = "syn_recv",   [ELS_FS_ESTABLISHED] = "established",
    [ELS_FS_FIN_WAIT] = "fin_wait",   [ELS_FS_CLOSING] = "closing",
    [ELS_FS_TIME_WAIT] = "time_wait", [ELS_FS_UNREPLIED] = "unreplied",
};

const char *els_flow_state_name(unsigned state)
{
	return state < ELS_FS__COUNT ? state_names[state] : "?";
}

static unsigned pclass(uint8_t proto)
{
	if (proto == IPPROTO_TCP)
		return 0;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return 2;
	return 1;
}

static unsigned list_of(uint8_t proto, unsigned state)
{
	return pclass(proto) * ELS_FS__COUNT + state;
}

static uint32_t bucket_of(const struct els_flow_table *t, const struct els_flow_key *key)
{
	return (uint32_t)XXH3_64bits_withSeed(key, sizeof(*key), t->seed) & t->mask;
}

struct els_flow_table *els_flow_table_new(uint32_t capacity, uint64_t seed)
{
	struct els_flow_table *t;
	uint32_t nb = 1;

	if (capacity == 0 || capacity > ELS_FLOW_MAX_CAPACITY)
		return NULL;
	while (nb < capacity)
		nb <<= 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->capacity = capacity; /* before anything can fail: els_flow_table_free sizes by it */
	/* Not zeroed: no slot is read before insert clears it (slots past hwm are never read),
	 * so a large table's pages become resident only as flows arrive. On huge pages where
	 * the host allows (agent/bigmem.c): a random flow per packet would otherwise miss the
	 * TLB on nearly every packet. */
	t->flows = els_big_alloc((size_t)capacity * sizeof(*t->flows), FLOW_ALIGN);
	t->admits = els_big_alloc((size_t)capacity * sizeof(*t->admits), CACHE_LINE);
	t->buckets = malloc((size_t)nb * sizeof(*t->buckets));
	t->frags = calloc(FRAG_SLOTS, sizeof(*t->frags));
	if (!t->flows || !t->admits || !t->buckets || !t->frags) {
		els_flow_table_free(t);
		return NULL;
	}
	memset(t->buckets, 0xff, (size_t)nb * sizeof(*t->buckets));
	t->seed = seed;
	t->mask = nb - 1;
	t->free_head = NIL;
	for (unsigned i = 0; i < N_LISTS; i++)
		t->head[i] = t->tail[i] = NIL;
	return t;
}

void els_flow_table_free(struct els_flow_table *t)
{
	if (!t)
		return;
	els_big_free(t->flows, (size_t)t->capacity * sizeof(*t->flows));
	els_big_free(t->admits, (size_t)t->capacity * sizeof(*t->admits));
	free(t->buckets);
	free(t->frags);
	free(t);
}

struct els_flow_admit *els_flow_admit_of(struct els_flow_table *t, const struct els_flow *f)
{
	return &t->admits[f - t->flows];
}

uint32_t els_flow_count(const struct els_flow_table *t)
{
	return t->count;
}

uint32_t els_flow_capacity(const struct els_flow_table *t)
{
	return t->capacity;
}

static void put_addr(struct els_addr *dst, const struct els_addr *src, uint8_t family)
{
	/* Copy only the family's bytes, so a decoder leaving junk past an IPv4 address cannot
	 * split one flow into two keys. */
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->b, src->b, family == ELS_AF_INET ? 4 : 16);
}

bool els_flow_key_of(const struct els_pkt *p, struct els_flow_key *key, uint8_t *side)
{
	uint16_t sport, dport;
	int c;

	if (p->flags & ELS_PKT_LATER_FRAG)
		return false;
	if (p->family != ELS_AF_INET && p->family != ELS_AF_INET6)
		return false;
	if (p->flags & ELS_PKT_HAS_PORTS) {
		sport = p->sport;
		dport = p->dport;
	} else if ((p->flags & ELS_PKT_ICMP_ECHO) &&
		   (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)) {
		/* The echo id is the same in request and reply, so using it as both ports makes
		 * the reply normalise to the request's key. */
		sport = dport = p->icmp_id;
	} else {
		return false;
	}

	memset(key, 0, sizeof(*key));
	key->family = p->family;
	key->proto = p->proto;
	c = memcmp(p->src.b, p->dst.b, p->family == ELS_AF_INET ? 4 : 16);
	if (c < 0 || (c == 0 && sport <= dport)) {
		put_addr(&key->addr[0], &p->src, p->family);
		put_addr(&key->addr[1], &p->dst, p->family);
		key->port[0] = sport;
		key->port[1] = dport;
		*side = 0;
	} else {
		put_addr(&key->addr[0], &p->dst, p->family);
		put_addr(&key->addr[1], &p->src, p->family);
		key->port[0] = dport;
		key->port[1] = sport;
		*side = 1;
	}
	return true;
}

struct els_flow *els_flow_lookup(struct els_flow_table *t, const struct els_flow_key *key)
{
	return els_flow_lookup_in(t, key, bucket_of(t, key));
}

struct els_flow *els_flow_lookup_in(struct els_flow_table *t, const struct els_flow_key *key,
				    uint32_t bucket)
{
	for (uint32_t i = t->buckets[bucket & t->mask]; i != NIL; i = t->flows[i].hnext) {
		if (memcmp(&t->flows[i].key, key, sizeof(*key)) == 0)
			return &t->flows[i];
	}
	return NULL;
}

uint32_t els_flow_bucket(const struct els_flow_table *t, const struct els_flow_key *key)
{
	uint32_t b = bucket_of(t, key);
	__builtin_prefetch(&t->buckets[b]);
	return b;
}

void els_flow_prefetch(const struct els_flow_table *t, uint32_t bucket)
{
	uint32_t i = t->buckets[bucket & t->mask];
	if (i != NIL) {
		/* both lines: lookup reads the key, the tracker writes the counters */
		__builtin_prefetch(&t->flows[i], 1);
		__builtin_prefetch((const char *)&t->flows[i] + CACHE_LINE, 1);
	}
}

static uint32_t idx_of(const struct els_flow_table *t, const struct els_flow *f)
{
	return (uint32_t)(f - t->flows);
}

static void list_unlink(struct els_flow_table *t, struct els_flow *f)
{
	unsigned l = f->list;

	if (f->lprev != NIL)
		t->flows[f->lprev].lnext = f->lnext;
	else
		t->head[l] = f->lnext;
	if (f->lnext != NIL)
		t->flows[f->lnext].lprev = f->lprev;
	else
		t->tail[l] = f->lprev;
	f->lprev = f->lnext = NIL;
}

/* expire_ns in the lists' unit, rounded up, modulo 2^32: only differences of two such values
 * are used, read as signed, which holds while they are under 2^31 units (9 years), whatever
 * the clock's origin (replay runs on capture time). */
static uint32_t due_of(uint64_t expire_ns)
{
	return (uint32_t)((expire_ns >> ELS_FLOW_DUE_SHIFT) +
			  !!(expire_ns & ((1ull << ELS_FLOW_DUE_SHIFT) - 1)));
}

/* How far a same-state touch may move a flow's expiry past its place on the list before the
 * flow is moved to the tail: max(1 s, timeout / 16), in the lists' unit. Expiry then ends a
 * flow at most that much (plus one unit and the tick) after its time, and a flow busy with
 * packets is relinked at most once per slack instead of once per packet. */
#define SLACK_MIN_UNITS 8u /* 8 * 134 ms */
static uint32_t slack_of(uint64_t timeout_ns)
{
	uint64_t s = (timeout_ns >> ELS_FLOW_DUE_SHIFT) / 16;
	return s < SLACK_MIN_UNITS ? SLACK_MIN_UNITS : s > INT32_MAX ? INT32_MAX : (uint32_t)s;
}

static void list_append(struct els_flow_table *t, struct els_flow *f, unsigned l)
{
	uint32_t i = idx_of(t, f);

	f->list = (uint8_t)l;
	f->queued_due = due_of(f->expire_ns);
	f->lnext = NIL;
	f->lprev = t->tail[l];
	if (t->tail[l] != NIL)
		t->flows[t->tail[l]].lnext = i;
	else
		t->head[l] = i;
	t->tail[l] = i;
}

void els_flow_remove(struct els_flow_table *t, struct els_flow *f)
{
	uint32_t i = idx_of(t, f);
	uint32_t *link = &t->buckets[bucket_of(t, &f->key)];

	if (f->list == LIST_FREE)
		return;
	while (*link != NIL && *link != i)
		link = &t->flows[*link].hnext;
	if (*link == i)
		*link = f->hnext;
	list_unlink(t, f);
	f->list = LIST_FREE;
	f->hnext = t->free_head;
	t->free_head = i;
	t->count--;
}

/* The least recently queued flow that is not established: heads only, since each list is in
 * queue order. (A flow touched since it was queued may go before an idler one queued later:
 * the price of not relinking per packet, and only among flows that are not established.) */
static struct els_flow *evict_victim(struct els_flow_table *t)
{
	struct els_flow *best = NULL;

	for (unsigned l = 0; l < N_LISTS; l++) {
		if (l % ELS_FS__COUNT == ELS_FS_ESTABLISHED || t->head[l] == NIL)
			continue;
		struct els_flow *f = &t->flows[t->head[l]];
		if (!best || f->last_ns < best->last_ns)
			best = f;
	}
	return best;
}

struct els_flow *
els_flow_insert(struct els_flow_table *t, const struct els_flow_key *key, uint64_t now_ns,
		void (*on_end)(const struct els_flow *f, unsigned reason, void *arg), void *arg)
{
	struct els_flow *f;
	uint32_t i, b;

	if (els_flow_lookup(t, key))
		return NULL;
	if (t->count == t->capacity) {
		struct els_flow *victim = evict_victim(t);
		if (!victim)
			return NULL;
		if (on_end)
			on_end(victim, ELS_R_FLOW_EVICTED, arg);
		els_flow_remove(t, victim);
	}
	if (t->free_head != NIL) {
		i = t->free_head;
		t->free_head = t->flows[i].hnext;
	} else {
		i = t->hwm++;
	}
	f = &t->flows[i];
	memset(f, 0, sizeof(*f));
	memset(&t->admits[i], 0, sizeof(t->admits[i]));
	f->key = *key;
	f->first_ns = f->last_ns = f->expire_ns = now_ns;
	b = bucket_of(t, key);
	f->hnext = t->buckets[b];
	t->buckets[b] = i;
	list_append(t, f, list_of(key->proto, ELS_FS_NONE));
	t->count++;
	return f;
}

void els_flow_touch(struct els_flow_table *t, struct els_flow *f, unsigned state, uint64_t now_ns,
		    uint64_t timeout_ns)
{
	if (state >= ELS_FS__COUNT)
		state = ELS_FS_NONE; /* a caller bug; keep the list index in range */
	f->state = (uint8_t)state;
	f->last_ns = now_ns;
	f->expire_ns = now_ns + timeout_ns < now_ns ? UINT64_MAX : now_ns + timeout_ns;
	unsigned l = list_of(f->key.proto, state);
	/* Same list, and the expiry moved forward by no more than the slack: stay in place. A
	 * later expiry beyond it, or an earlier one (a shortened timeout), moves the flow to the
	 * tail, which keeps each list in expiry order to within the slack. */
	int32_t moved = (int32_t)(due_of(f->expire_ns) - f->queued_due);
	if (l == f->list && moved >= 0 && (uint32_t)moved <= slack_of(timeout_ns))
		return;
	list_unlink(t, f);
	list_append(t, f, l);
}

unsigned els_flow_expiry_reason(const struct els_flow *f)
{
	return f->state == ELS_FS_TIME_WAIT ? ELS_R_FLOW_CLOSED : ELS_R_FLOW_TIMEOUT;
}

unsigned els_flow_expire(struct els_flow_table *t, uint64_t now_ns, unsigned budget,
			 void (*on_end)(const struct els_flow *f, unsigned reason, void *arg),
			 void *arg)
{
	unsigned done = 0;

	for (unsigned n = 0; n < N_LISTS && done < budget; n++) {
		unsigned l = (t->expire_cursor + n) % N_LISTS;
		while (done < budget && t->head[l] != NIL) {
			struct els_flow *f = &t->flows[t->head[l]];
			if (f->expire_ns > now_ns)
				break; /* in expiry order to within the slack: see els_flow_touch */
			if (on_end)
				on_end(f, els_flow_expiry_reason(f), arg);
			els_flow_remove(t, f);
			done++;
		}
	}
	t->expire_cursor = (t->expire_cursor + 1) % N_LISTS;
	return done;
}

void els_flow_foreach(struct els_flow_table *t, void (*fn)(const struct els_flow *f, void *arg),
		      void *arg)
{
	for (uint32_t i = 0; i < t->hwm; i++) {
		if (t->flows[i].list != LIST_FREE)
			fn(&t->flows[i], arg);
	}
}

int els_flow_table_check(const struct els_flow_table *t)
{
	uint32_t live = 0, on_lists = 0, in_buckets = 0, freed = 0;

	if (t->count > t->capacity || t->hwm > t->capacity)
		return -EUCLEAN;
	for (uint32_t i = 0; i < t->hwm; i++) {
		const struct els_flow *f = &t->flows[i];
		if (f->list == LIST_FREE)
			continue;
		live++;
		if (f->list >= N_LISTS || f->list != list_of(f->key.proto, f->state))
			return -EUCLEAN;
	}
	if (live != t->count)
		return -EUCLEAN;
	for (unsigned l = 0; l < N_LISTS; l++) {
		uint32_t prev = NIL;
		for (uint32_t i = t->head[l]; i != NIL; i = t->flows[i].lnext) {
			if (i >= t->hwm || t->flows[i].list != l || t->flows[i].lprev != prev ||
			    ++on_lists > t->count)
				return -EUCLEAN;
			prev = i;
		}
		if (t->tail[l] != prev)
			return -EUCLEAN;
	}
	for (uint32_t b = 0; b <= t->mask; b++) {
		for (uint32_t i = t->buckets[b]; i != NIL; i = t->flows[i].hnext) {
			if (i >= t->hwm || t->flows[i].list == LIST_FREE ||
			    bucket_of(t, &t->flows[i].key) != b || ++in_buckets > t->count)
				return -EUCLEAN;
		}
	}
	for (uint32_t i = t->free_head; i != NIL; i = t->flows[i].hnext) {
		if (i >= t->hwm || t->flows[i].list != LIST_FREE || ++freed > t->hwm)
			return -EUCLEAN;
	}
	if (on_lists != t->count || in_buckets != t->count || freed + t->count != t->hwm)
		return -EUCLEAN;
	return 0;
}

static void frag_key_of(const struct els_pkt *p, struct frag_key *k)
{
	memset(k, 0, sizeof(*k));
	put_addr(&k->src, &p->src, p->family);
	put_addr(&k->dst, &p->dst, p->family);
	k->id = p->frag_id;
	k->family = p->family;
	k->proto = p->proto;
}

static struct frag_slot *frag_slot_of(struct els_flow_table *t, const struct frag_key *k)
{
	/* A different seed from the flow hash's, so flow and fragment collisions are unrelated. */
	uint64_t h = XXH3_64bits_withSeed(k, sizeof(*k), t->seed ^ 0x9e3779b97f4a7c15ull);
	return &t->frags[h & (FRAG_SLOTS - 1)];
}

void els_frag_admit(struct els_flow_table *t, const struct els_pkt *first, uint64_t now_ns)
{
	struct frag_key k;
	struct frag_slot *s;

	frag_key_of(first, &k);
	s = frag_slot_of(t, &k);
	s->key = k;
	s->expire_ns = now_ns + FRAG_LIFETIME_NS < now_ns ? UINT64_MAX : now_ns + FRAG_LIFETIME_NS;
}

bool els_frag_admitted(struct els_flow_table *t, const struct els_pkt *later, uint64_t now_ns)
{
	struct frag_key k;
	const struct frag_slot *s;

	frag_key_of(later, &k);
	s = frag_slot_of(t, &k);
	return s->expire_ns != 0 && now_ns < s->expire_ns && memcmp(&s->key, &k, sizeof(k)) == 0;
}
