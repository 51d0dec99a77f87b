/* Single-producer single-consumer ring of monitor records (see include/els/monitor.h).
 *
 * head and tail are free-running 64-bit counters (they never wrap in practice); the slot of
 * counter c is c & mask. The producer owns head, the consumer owns tail, each on its own cache
 * line with a private cached copy of the other side's counter, so the common push and peek
 * touch no line the other thread writes. Push is wait-free: when the ring is full it counts the
 * loss and returns. Each slot carries the producer's lost count at push time, which lets the
 * writer put a gap record exactly where the loss happened. */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "els/monitor.h"

#define RING_LINE 64
#define RING_MAX  (1u << 24)

struct ring_slot {
	struct els_record rec;
	uint64_t lost_before;
};

struct els_ring {
	/* [I] set by els_ring_new, never changed */
	alignas(RING_LINE) struct ring_slot *slots;
	uint64_t mask;

	/* [P] written by the producer only */
	alignas(RING_LINE) _Atomic uint64_t head;
	uint64_t tail_cache;
	uint64_t lost_p; /* producer's own copy of lost, to avoid an atomic read-modify-write */

	/* [P] written by the producer only, and rarely: its own line, because the consumer reads
	 * it before every record and must not pull head's busy line to do so */
	alignas(RING_LINE) _Atomic uint64_t lost;

	/* [C] written by the consumer only */
	alignas(RING_LINE) _Atomic uint64_t tail;
	uint64_t head_cache;
};

struct els_ring *els_ring_new(unsigned size)
{
	uint64_t cap = 1;
	struct els_ring *r;

	if (size > RING_MAX)
		size = RING_MAX;
	while (cap < size)
		cap <<= 1;
	r = aligned_alloc(RING_LINE, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->slots = aligned_alloc(RING_LINE, cap * sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return NULL;
	}
	/* Make every page resident now: otherwise the producer takes a page fault (the kernel
	 * allocating memory) the first time it reaches each page, on the packet path, and RSS
	 * creeps up for minutes until the ring has wrapped once. memset of the whole ring, not of
	 * one byte a page, so the compiler cannot drop it as redundant after an allocation. */
	memset(r->slots, 0, cap * sizeof(*r->slots));
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->lost, 0);
	atomic_init(&r->tail, 0);
	return r;
}

void els_ring_free(struct els_ring *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r);
}

unsigned els_ring_capacity(const struct els_ring *r)
{
	return (unsigned)(r->mask + 1);
}

uint64_t els_ring_lost(const struct els_ring *r)
{
	return atomic_load_explicit(&r->lost, memory_order_acquire);
}

uint64_t els_ring_pushed(const struct els_ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire);
}

unsigned els_ring_space(struct els_ring *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return (unsigned)(r->mask + 1 - (h - r->tail_cache));
}

bool els_ring_push(struct els_ring *r, const struct els_record *rec)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct ring_slot *s;

	if (h - r->tail_cache > r->mask) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h - r->tail_cache > r->mask) {
			/* Release: a consumer that sees this count also sees every earlier push,
			 * which is what places the gap after them. */
			atomic_store_explicit(&r->lost, ++r->lost_p, memory_order_release);
			return false;
		}
	}
	s = &r->slots[h & r->mask];
	s->rec = *rec;
	s->lost_before = r->lost_p;
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return true;
}

const struct els_record *els_ring_peek(struct els_ring *r, uint64_t *lost_before)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	const struct ring_slot *s;

	if (t == r->head_cache) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t == r->head_cache)
			return NULL;
	}
	s = &r->slots[t & r->mask];
	if (lost_before)
		*lost_before = s->lost_before;
	return &s->rec;
}

void els_ring_consume(struct els_ring *r)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	/* Release: the producer may reuse the slot only after our reads of it are done. */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}
