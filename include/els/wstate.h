/* Per-worker state of the handlers that need memory across packets and flows: the session
 * index (session-gated permits), the scan table with its runtime deny set, recent fragment
 * ranges (overlap check), and the worker's alert ring with its rate limits.
 *
 * Handler confs are shared by all workers and immutable; this is the mutable part, one per
 * worker thread, reaching handlers through els_ctx.ws. Everything is allocated by
 * els_ws_new(); nothing on the packet path allocates, locks or does I/O. Only the owning worker
 * thread touches it, except the alert ring's consumer side (agent/alert.c).
 *
 * Why per worker is enough: with several queues (--queue-balance) the kernel picks the queue
 * from a hash of the two addresses and the protocol, the same for both directions, so every
 * TCP flow between this host and one remote lands on one worker. A gate that requires a TCP
 * session for a TCP permit, or a scanner's TCP probes, therefore meet one worker's state.
 * Across protocols (a UDP permit gated on a TCP session) that only holds with one queue. */
#ifndef ELS_WSTATE_H
#define ELS_WSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "els/clock.h"
#include "els/flow.h"
#include "els/monitor.h"
#include "els/pkt.h"
#include "els/reason.h"

#define ELS_WS_SCAN_PORTS   64u /* distinct ports remembered per source: the largest threshold */
#define ELS_WS_SCAN_WAYS    4u
#define ELS_WS_FRAG_RANGES  8u
#define ELS_WS_MAX_GRACE_NS (3600 * ELS_NS_PER_S) /* longest grace a permit may ask for */

/* An established remote-initiated flow count per (remote, protocol, local port). */
struct els_ws_sess {
	struct els_addr addr;
	uint8_t family, proto, used, pad;
	uint16_t port;
	uint32_t count;
	uint64_t last_end_ns; /* when count last fell to 0 (grace runs from here) */
};

struct els_ws_scan {
	struct els_addr addr;
	uint8_t family, used, nports, alerted;
	uint64_t win_start_ns, last_ns;
	uint64_t deny_until_ns; /* 0: not denied */
	uint64_t denied_pkts;	/* packets dropped while denied */
	uint16_t ports[ELS_WS_SCAN_PORTS];
};

struct els_ws_frag {
	struct els_addr src, dst;
	uint32_t id;
	uint8_t family, proto, n, used;
	uint64_t ts_ns;
	struct {
		uint32_t lo, hi; /* [lo, hi): hi is a lower bound of the real end */
	} r[ELS_WS_FRAG_RANGES];
};

struct els_wstate {
	uint64_t now_ns;  /* CLOCK_MONOTONIC of the packet or tick being handled */
	uint64_t real_ns; /* CLOCK_REALTIME of the same: permit expiry, records */
	uint64_t seed;
	struct els_ring *mon;	 /* the worker's monitor ring (not owned): events, would-drops */
	struct els_ring *alerts; /* owned; drained by agent/alert.c's thread */

	struct els_ws_sess *sess;
	uint32_t sess_mask, sess_used, sess_limit, sess_sweep;

	struct els_ws_scan *scan;
	uint32_t scan_sets, scan_sweep;

	struct els_ws_frag *frag;
	uint32_t frag_mask;

	uint64_t alert_last_ns[ELS_R__COUNT];
	uint32_t alert_suppressed[ELS_R__COUNT];
	uint64_t expiry_alerted_s; /* header_filter: the expiry time already alerted */
};

/* flow_capacity sizes the session index (at most 65536 entries). mon may be NULL (tests).
 * register_alerts: hand the alert ring to the drain installed with els_ws_set_alert_sink
 * (false in unit tests and fuzzers, which read ws->alerts themselves). NULL on allocation
 * failure, or when register_alerts is set and no drain is installed. */
struct els_wstate *els_ws_new(uint32_t flow_capacity, struct els_ring *mon, bool register_alerts);
/* Installed by elsd's alert drain (agent/daemon/alert.c) when it is linked in: the handlers'
 * layer never calls into the daemon. */
void els_ws_set_alert_sink(int (*reg)(struct els_ring *r), void (*unreg)(struct els_ring *r));
/* Drains and unregisters the alert ring, frees everything. NULL is fine. */
void els_ws_free(struct els_wstate *ws);

/* ---- sessions (packet path) ---- */

/* f left (delta -1) or entered (+1) ESTABLISHED. Only flows the remote initiated count. */
void els_ws_session_change(struct els_wstate *ws, const struct els_flow *f, int delta);
/* Whether remote holds an established flow to local proto/port, or held one that ended less
 * than grace_ns ago. */
bool els_ws_session_held(const struct els_wstate *ws, uint8_t family, const struct els_addr *remote,
			 uint8_t proto, uint16_t port, uint64_t grace_ns);

/* ---- scan table (packet path) ---- */

/* The entry of a source; with create, a new or recycled one (a stale, undenied entry of the
 * same set first). NULL when absent (or, with create, when every way holds a live deny). */
struct els_ws_scan *els_ws_scan_get(struct els_wstate *ws, uint8_t family, const struct els_addr *a,
				    bool create);

/* ---- fragments (packet path) ---- */

/* Remembers p's byte range and says whether it overlaps a fragment of the same datagram seen
 * in the last 30 s. Only fragments (ELS_PKT_FRAGMENT). */
bool els_ws_frag_overlaps(struct els_wstate *ws, const struct els_pkt *p);

/* ---- alerts and records (packet path) ---- */

/* Queues an alert (kind EVENT, reason, addresses, detail) for the alert thread. With limit, at
 * most one per reason per 10 s per worker, and the next one says how many were suppressed
 * (anomaly floods); without, every call (one per detected scan). */
void els_ws_alert(struct els_wstate *ws, struct els_record *r, bool limit);
/* Pushes r to the monitor ring (when there is one). */
void els_ws_record(struct els_wstate *ws, const struct els_record *r);

/* Housekeeping between batches: sweeps a few session entries whose grace is long over. */
void els_ws_tick(struct els_wstate *ws);

#endif
