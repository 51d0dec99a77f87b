/* Drop aggregation (see include/els/monitor.h): one worker's drops and half-open flow ends,
 * counted per key and second in a fixed table, so that a flood costs a record per second per key,
 * not per packet.
 *
 * The table is direct-mapped: a key lives in exactly one slot. A different key, or a later
 * second of the same key, pushes the occupant out as a record before taking the slot, so every
 * packet is in exactly one record (or, if the ring is full, in one counted loss). Fields outside
 * the key (source port, TCP flags, ICMP type, rule name) are those of the second's first
 * packet. Not thread-safe: one table per worker, no locks, no allocation after new. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"

#define AGG_MAX_SLOTS (1u << 20)

/* Compared with memcmp and hashed as bytes: always zeroed before it is filled. */
struct agg_key {
	struct els_addr src, dst;
	const char *handler; /* static names: the pointer is the identity */
	uint32_t rule;
	uint16_t reason, dport;
	uint8_t dir, family, proto, kind;
};

struct agg_slot {
	uint64_t sec; /* ts_ns / 1e9 of the slot's first packet */
	bool used;
	struct agg_key key;
	struct els_record rec; /* the first packet, count = packets so far */
};

struct els_dropagg {
	struct els_ring *ring;
	uint32_t mask;
	struct agg_slot *slots;
};

struct els_dropagg *els_dropagg_new(unsigned slots, struct els_ring *ring)
{
	struct els_dropagg *a = calloc(1, sizeof(*a));
	uint32_t n = 1;

	if (!a)
		return NULL;
	if (slots > AGG_MAX_SLOTS)
		slots = AGG_MAX_SLOTS;
	while (n < slots)
		n <<= 1;
	a->slots = calloc(n, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		return NULL;
	}
	a->mask = n - 1;
	a->ring = ring;
	return a;
}

/* Does not flush: the caller flushes first if the counts matter (els_dropagg_flush). */
void els_dropagg_free(struct els_dropagg *a)
{
	if (!a)
		return;
	free(a->slots);
	free(a);
}

static void key_of(const struct els_record *r, struct agg_key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = r->kind;
	/* A half-open flood comes from spoofed sources: one record per source would be one per
	 * SYN again. Those aggregate over every source (their rows show none). */
	if (r->kind != ELS_REC_HALF_OPEN)
		k->src = r->src;
	k->dst = r->dst;
	k->handler = r->handler;
	k->rule = r->rule;
	k->reason = r->reason;
	k->dport = r->dport;
	k->dir = r->dir;
	k->family = r->family;
	k->proto = r->proto;
}

static void emit(struct els_dropagg *a, struct agg_slot *s)
{
	/* A full ring counts the record as lost, and the writer reports it as a gap. */
	els_ring_push(a->ring, &s->rec);
	s->used = false;
}

void els_dropagg_add(struct els_dropagg *a, const struct els_record *rec)
{
	struct agg_key k;
	struct agg_slot *s;
	uint64_t sec = rec->ts_ns / ELS_NS_PER_S;

	key_of(rec, &k);
	s = &a->slots[XXH3_64bits(&k, sizeof(k)) & a->mask];
	if (s->used) {
		/* An earlier timestamp than the slot's (clock step, replay jitter) still counts in
		 * the open second rather than splitting the record. */
		if (s->sec >= sec && memcmp(&s->key, &k, sizeof(k)) == 0) {
			s->rec.count++;
			return;
		}
		emit(a, s);
	}
	s->used = true;
	s->sec = sec;
	memcpy(&s->key, &k, sizeof(k)); /* with its zeroed padding, for memcmp */
	s->rec = *rec;
	if (rec->kind != ELS_REC_HALF_OPEN) {
		s->rec.kind = ELS_REC_DROP;
		s->rec.verdict = ELS_DROP;
	}
	s->rec.count = 1;
}

void els_dropagg_flush(struct els_dropagg *a, uint64_t now_ns)
{
	uint64_t now_sec = now_ns / ELS_NS_PER_S;

	for (uint32_t i = 0; i <= a->mask; i++) {
		struct agg_slot *s = &a->slots[i];

		if (s->used && (now_ns == UINT64_MAX || s->sec < now_sec))
			emit(a, s);
	}
}
