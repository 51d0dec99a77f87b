/* Connections that existed before elsd started (agent/import.c learns them from the kernel),
 * each judged once by the policy at start: the adoption set.
 *
 * Why a shared set rather than the workers' flow tables: with several queues the kernel picks
 * a connection's queue with a keyed hash (jhash of the addresses and protocol, its key drawn at
 * random when the NFQUEUE rule is loaded: net/netfilter/xt_NFQUEUE.c, nft_queue.c), which elsd
 * cannot compute. So the set is built before the workers start, never changes afterwards
 * except for one atomic flag per entry, and a worker that meets a packet of no flow of its own
 * looks it up there: a granted connection is then claimed (atomic exchange, no lock: only one
 * worker ever owns it) and moves into that worker's own table, exactly where its packets go. A
 * connection that never sends another packet costs nothing and writes nothing.
 *
 * Lifetime: built and published by the main thread before any worker exists, freed after the
 * workers are joined. Lookups are read-only but for the claim flag; nothing allocates. */
#ifndef ELS_ADOPT_H
#define ELS_ADOPT_H

#include <stdatomic.h>
#include <stdint.h>

#include "els/flow.h"

enum els_adopt_verdict {
	ELS_ADOPT_GRANT = 0,   /* the policy grants it: admitted (reason adopted) */
	ELS_ADOPT_CUT,	       /* not granted: its next packets drop (not_permitted_at_start) */
	ELS_ADOPT_CUT_OBSERVE, /* not granted, observe mode: passes, recorded as would_drop */
};

struct els_adopt_entry {
	struct els_flow_key key;
	uint32_t rule;		 /* the permit that grants it (ELS_ADOPT_GRANT), else 0 */
	uint32_t generation;	 /* generation that judged it; 0 for a session-gated permit */
	uint16_t handler;	 /* chain index of the handler that decided */
	uint16_t why;		 /* the policy's own reason (no_permit, deny_list, ...) for logs */
	uint8_t init_side;	 /* key side of the initiator */
	uint8_t init_dir;	 /* enum els_dir of the initiator's packets */
	uint8_t state;		 /* ELS_FS_ESTABLISHED, ELS_FS_FIN_WAIT or ELS_FS_UNREPLIED */
	uint8_t verdict;	 /* enum els_adopt_verdict */
	_Atomic uint8_t claimed; /* set once a worker took it into its table */
};

struct els_adopt {
	uint32_t count, capacity; /* entries used / allocated */
	uint32_t mask;		  /* index slots - 1 (a power of two, at least 2 x capacity) */
	uint32_t *index;	  /* 0: empty slot, else entry number + 1 */
	struct els_adopt_entry *e;
	uint64_t seed;
	uint64_t start_ns;   /* CLOCK_MONOTONIC of the import: entries expire from here */
	uint32_t generation; /* generation the import judged with */
};

/* An empty set for up to capacity entries (>= 1). NULL on allocation failure. The caller frees
 * it with els_adopt_free once no worker can read it. */
struct els_adopt *els_adopt_new(uint32_t capacity, uint64_t seed);
void els_adopt_free(struct els_adopt *s);

/* Adds a copy of e (claimed cleared). -EEXIST when its key is there already (the first
 * source wins), -ENOSPC when full. Before publication only. */
int els_adopt_add(struct els_adopt *s, const struct els_adopt_entry *e);

/* The entry for key, or NULL. Packet path: no allocation, no lock. */
struct els_adopt_entry *els_adopt_find(const struct els_adopt *s, const struct els_flow_key *key);

/* True for exactly one caller per entry: the one that takes it. */
static inline bool els_adopt_claim(struct els_adopt_entry *e)
{
	return atomic_exchange_explicit(&e->claimed, 1, memory_order_relaxed) == 0;
}

/* The set the tracker consults (NULL: none). Published once by the main thread before the
 * workers start (release); read by the workers (acquire). Tests publish their own and NULL. */
void els_adopt_publish(struct els_adopt *s);
struct els_adopt *els_adopt_current(void);

#endif
