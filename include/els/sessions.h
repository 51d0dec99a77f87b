/* The session index: per worker, how many established flows each remote opened to a local
 * protocol and port, and when the last one ended. Session-gated permits (header_filter's
 * `requires`) ask it with one hash probe instead of scanning the flow table.
 *
 * It belongs to flow tracking, like the flow table it summarises: the tracker counts a flow
 * when it enters or leaves ESTABLISHED, the worker when a flow ends (expiry, eviction, reset)
 * or is adopted at start. Allocated once per worker; nothing here allocates, locks or does
 * I/O, and only the owning worker thread touches it.
 *
 * Why per worker is enough: with several queues (--queue-balance) the kernel picks the queue
 * from a hash of the two addresses and the protocol, the same for both directions, so every
 * TCP flow between this host and one remote lands on one worker. A gate that requires a TCP
 * session for a TCP permit therefore meets one worker's index. Across protocols (a UDP permit
 * gated on a TCP session) that only holds with one queue. */
#ifndef ELS_SESSIONS_H
#define ELS_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "els/clock.h"
#include "els/flow.h"

#define ELS_SESSIONS_MAX_GRACE_NS (3600 * ELS_NS_PER_S) /* longest grace a permit may ask for */

struct els_sessions;

/* flow_capacity sizes the index (at most 65536 entries). NULL on allocation failure. */
struct els_sessions *els_sessions_new(uint32_t flow_capacity);
void els_sessions_free(struct els_sessions *s);

/* f left (delta -1) or entered (+1) ESTABLISHED at now_ns. Only flows the remote initiated
 * count. s may be NULL (nothing is counted). */
void els_sessions_change(struct els_sessions *s, const struct els_flow *f, int delta,
			 uint64_t now_ns);
/* Whether remote holds an established flow to local proto/port, or held one that ended less
 * than grace_ns before now_ns. s NULL: false. */
bool els_sessions_held(const struct els_sessions *s, uint8_t family, const struct els_addr *remote,
		       uint8_t proto, uint16_t port, uint64_t grace_ns, uint64_t now_ns);
/* Housekeeping between batches: drops a few entries whose grace is long over. */
void els_sessions_sweep(struct els_sessions *s, uint64_t now_ns);

#endif
