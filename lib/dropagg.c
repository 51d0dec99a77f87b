/* Drop aggregation (see include/els/monitor.h): one worker's drops and half-open flow ends,
 * counted per key and second in a fixed table, so that a flood costs a record per second per key,
 * not per packet.
 *
 * The table is direct-mapped: a key lives in exactly one slot. A different key, or a later
 * second of the same key, pushes the occupant out as a record before taking the slot, so every
 * packet is in exactly one record (or, if the ring is full, in one counted loss). Fields outside
 * the key (source port, TCP flags, ICMP type, rule name) are those of the second's first
 * packet. Not thread-safe: one table per worker, no locks, no allocation after new.
 *
 * Spoofed sources: a flood from random source addresses would make every packet a key of its
 * own, so the rows with distinct sources that one key-without-source may start in a second are
 * counted (a second, direct-mapped table); past AGG_SRC_ROWS, that second's further drops for
 * it merge into one row that keeps no source (many_src). Ordinary traffic, a few sources per
 * port and second, keeps a row per source. For an outbound drop the remote end is the
 * destination: the server's SYN-ACKs (retransmitted) to a spoofed flood's sources, once their
 * flows are gone, are as many keys as there were sources; those merge over the destination
 * address and port instead, and their merged row keeps the local source. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"

#define AGG_MAX_SLOTS	 (1u << 20)
#define AGG_SRC_ROWS	 64u   /* rows with distinct sources per key and second, then merged */
#define AGG_BUDGET_SLOTS 1024u /* power of two */

/* Compared with memcmp and hashed as bytes: always zeroed before it is filled. */
struct agg_key {
	struct els_addr src, dst;
	const char *handler; /* static names: the pointer is the identity */
	uint32_t rule;
	uint16_t reason, dport;
	uint8_t dir, family, proto, kind;
	uint8_t many_src; /* a merged row: src is zero and stands for many sources */
};

struct agg_slot {
	uint64_t sec; /* ts_ns / 1e9 of the slot's first packet */
	bool used;
	struct agg_key key;
	struct els_record rec; /* the first packet, count = packets so far */
};

/* How many rows with distinct sources a key without its source started this second. */
struct src_budget {
	uint64_t sec;
	bool used;
	uint32_t rows;
	struct agg_key key; /* src zero, many_src set */
};

struct els_dropagg {
	struct els_ring *ring;
	uint32_t mask;
	struct agg_slot *slots;
	struct src_budget *budget; /* [AGG_BUDGET_SLOTS] */
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
	a->budget = calloc(AGG_BUDGET_SLOTS, sizeof(*a->budget));
	if (!a->slots || !a->budget) {
		free(a->slots);
		free(a->budget);
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
	free(a->budget);
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

/* The slot of k, when it holds k's open row. */
static struct agg_slot *open_row(struct els_dropagg *a, const struct agg_key *k, uint64_t sec,
				 struct agg_slot **slot)
{
	struct agg_slot *s = &a->slots[XXH3_64bits(k, sizeof(*k)) & a->mask];

	*slot = s;
	/* An earlier timestamp than the slot's (clock step, replay jitter) still counts in the
	 * open second rather than splitting the record. */
	return s->used && s->sec >= sec && memcmp(&s->key, k, sizeof(*k)) == 0 ? s : NULL;
}

/* k without its remote end: the source of an inbound drop, the destination address and port
 * of an outbound one. */
static void forget_remote(struct agg_key *k)
{
	if (k->dir == ELS_DIR_OUT) {
		memset(&k->dst, 0, sizeof(k->dst));
		k->dport = 0;
	} else {
		memset(&k->src, 0, sizeof(k->src));
	}
	k->many_src = 1;
}

/* A new row for k (which has a remote end) is about to start: true when k's key without it
 * has started its AGG_SRC_ROWS rows this second already, and k must merge into it. */
static bool over_budget(struct els_dropagg *a, const struct agg_key *k, uint64_t sec,
			struct agg_key *any)
{
	*any = *k;
	forget_remote(any);
	struct src_budget *b = &a->budget[XXH3_64bits(any, sizeof(*any)) & (AGG_BUDGET_SLOTS - 1)];
	if (!b->used || b->sec != sec || memcmp(&b->key, any, sizeof(*any)) != 0) {
		b->used = true;
		b->sec = sec;
		b->rows = 0;
		b->key = *any;
	}
	if (b->rows >= AGG_SRC_ROWS)
		return true;
	b->rows++;
	return false;
}

void els_dropagg_add(struct els_dropagg *a, const struct els_record *rec)
{
	struct agg_key k, any;
	struct agg_slot *s, *open;
	uint64_t sec = rec->ts_ns / ELS_NS_PER_S;
	bool many = false;

	key_of(rec, &k);
	if ((open = open_row(a, &k, sec, &s))) {
		open->rec.count++;
		return;
	}
	if (rec->kind != ELS_REC_HALF_OPEN && over_budget(a, &k, sec, &any)) {
		many = true;
		k = any;
		if ((open = open_row(a, &k, sec, &s))) {
			open->rec.count++;
			return;
		}
	}
	if (s->used)
		emit(a, s);
	s->used = true;
	s->sec = sec;
	memcpy(&s->key, &k, sizeof(k)); /* with its zeroed padding, for memcmp */
	s->rec = *rec;
	if (many && rec->dir == ELS_DIR_OUT) {
		memset(&s->rec.dst, 0, sizeof(s->rec.dst));
		s->rec.dport = 0;
		s->rec.many_src = 1;
	} else if (many) {
		memset(&s->rec.src, 0, sizeof(s->rec.src));
		s->rec.sport = 0;
		s->rec.many_src = 1;
	}
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
