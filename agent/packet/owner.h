/* Socket owners for service-bound permits: one per queue, used by its worker thread.
 *
 * The worker asks the kernel which socket a new flow's first packet meets (sock_diag, an exact
 * lookup by addresses and ports: the listener or bound UDP socket for inbound, the sending
 * socket for outbound). That answers in microseconds and never waits on another thread, so it
 * runs on the packet path, with a preallocated buffer. Who holds that socket (pid, exe, unit)
 * is then read from a cache keyed by the socket's inode; a miss is resolved by a thread of its
 * own (owner_proc.c), which scans /proc. Meanwhile the packet's verdict waits (the queue holds
 * it: NFQUEUE takes verdicts in any order) and the other packets keep flowing. A new listener
 * is a new socket with a new inode, so a server that restarts or a stand-in that binds its port
 * is looked up afresh; a cached owner older than OWNER_TTL is refreshed in the background.
 *
 * Established flows never come here: the header filter asks only for a new flow's first packet.
 * Ownership: the queue creates and frees it; only its worker thread calls the packet-path
 * functions; the resolver thread touches only the two rings and the eventfds. */
#ifndef ELS_OWNER_AGENT_H
#define ELS_OWNER_AGENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "els/owner.h"

struct els_owners;

/* Opens the sock_diag socket and starts the resolver thread. NULL with a message on failure. */
struct els_owners *els_owners_new(unsigned queue);
void els_owners_free(struct els_owners *o);

/* The eventfd the resolver signals when answers are ready (poll it for POLLIN). */
int els_owners_fd(const struct els_owners *o);

/* Before each packet is judged: its uid/gid from NFQUEUE (has_ids false when the kernel gave
 * none), whether a pending answer may still be waited for (can_wait: the queue has room to
 * hold the packet, and it is not a held packet's last try). */
void els_owners_begin(struct els_owners *o, uint32_t uid, uint32_t gid, bool has_ids,
		      bool can_wait);

/* The els_owner_fn (els/owner.h); arg is the struct els_owners. */
enum els_owner_res els_owners_query(void *arg, const struct els_pkt *pkt, unsigned need,
				    const struct els_owner **out);

/* The owner the last judged packet's lookup found, or NULL; with ref, a reference that
 * els_owners_describe_ref turns back into it while the cache still holds it. */
const struct els_owner *els_owners_last(const struct els_owners *o, uint32_t *ref);
/* "unit=... uid=... pid=... exe=..." for records: from the cache when ref still names the same
 * entry, else from pid/uid alone. */
void els_owners_describe_ref(const struct els_owners *o, uint32_t ref, uint32_t pid, uint32_t uid,
			     char *buf, size_t size);

/* Takes the resolver's answers into the cache (worker thread, between batches). Returns how
 * many arrived: held packets are worth judging again. */
unsigned els_owners_poll(struct els_owners *o);

/* Counters (any thread, relaxed); the metrics export hits, misses, deferred and unknown. */
struct els_owners_stats {
	_Atomic uint64_t diag, diag_found, hits, misses, resolved, unknown, refreshed;
	_Atomic uint64_t deferred; /* answers "pending": the packet waits for the resolver */
};
const struct els_owners_stats *els_owners_stats(const struct els_owners *o);

#endif
