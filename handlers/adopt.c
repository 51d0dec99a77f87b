/* The adoption set (see include/els/adopt.h): open addressing over a fixed array, keyed by
 * the normalised flow key with a seeded hash, built once and read lock-free. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "els/adopt.h"

static _Atomic(struct els_adopt *) current;

struct els_adopt *els_adopt_new(uint32_t capacity, uint64_t seed)
{
	struct els_adopt *s;
	uint32_t slots = 2;

	if (capacity < 1 || capacity > (1u << 28))
		return NULL;
	while (slots < capacity * 2u)
		slots <<= 1;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->capacity = capacity;
	s->mask = slots - 1;
	s->seed = seed;
	s->index = calloc(slots, sizeof(*s->index));
	s->e = calloc(capacity, sizeof(*s->e));
	if (!s->index || !s->e) {
		els_adopt_free(s);
		return NULL;
	}
	return s;
}

void els_adopt_free(struct els_adopt *s)
{
	if (!s)
		return;
	free(s->index);
	free(s->e);
	free(s);
}

static uint32_t slot_of(const struct els_adopt *s, const struct els_flow_key *key)
{
	return (uint32_t)XXH3_64bits_withSeed(key, sizeof(*key), s->seed) & s->mask;
}

struct els_adopt_entry *els_adopt_find(const struct els_adopt *s, const struct els_flow_key *key)
{
	if (!s || !s->count)
		return NULL;
	/* At most half the slots are used, so an empty one ends every probe. */
	for (uint32_t i = slot_of(s, key);; i = (i + 1) & s->mask) {
		uint32_t n = s->index[i];
		if (!n)
			return NULL;
		if (memcmp(&s->e[n - 1].key, key, sizeof(*key)) == 0)
			return &s->e[n - 1];
	}
}

int els_adopt_add(struct els_adopt *s, const struct els_adopt_entry *e)
{
	uint32_t i;

	for (i = slot_of(s, &e->key); s->index[i]; i = (i + 1) & s->mask)
		if (memcmp(&s->e[s->index[i] - 1].key, &e->key, sizeof(e->key)) == 0)
			return -EEXIST;
	if (s->count == s->capacity)
		return -ENOSPC;
	struct els_adopt_entry *n = &s->e[s->count];
	memcpy(n, e, sizeof(*n));
	atomic_init(&n->claimed, 0);
	s->index[i] = ++s->count;
	return 0;
}

void els_adopt_publish(struct els_adopt *s)
{
	atomic_store_explicit(&current, s, memory_order_release);
}

struct els_adopt *els_adopt_current(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}
