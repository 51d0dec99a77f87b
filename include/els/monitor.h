/* The monitor: verdict records go from the workers to one writer thread that owns the SQLite
 * file. Each producer has its own single-producer ring; pushing never blocks and never
 * allocates. A push onto a full ring is counted, and the writer turns the count into a gap
 * record so that a reader of the file knows how many records are missing and where. */
#ifndef ELS_MONITOR_H
#define ELS_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "els/diag.h"
#include "els/pkt.h"

#define ELS_MONITOR_SCHEMA_VERSION 1

enum els_rec_kind {
	ELS_REC_DROP = 1,     /* a dropped packet, or `count` of them aggregated over one second */
	ELS_REC_ADMIT = 2,    /* first packet of an admitted flow */
	ELS_REC_FLOW_END = 3, /* a flow ended: packet and byte counts, duration */
	ELS_REC_ACCEPT = 4,   /* an accepted packet, only with log = "all" */
	ELS_REC_GAP = 5,      /* `count` records lost because a ring was full */
	ELS_REC_EVENT = 6,    /* agent event: start, stop, reload ok/failed (text in detail) */
};

enum els_log_mode {
	ELS_LOG_DEFAULT = 0, /* drops (aggregated), admits, flow ends */
	ELS_LOG_ALL = 1,     /* also every accepted packet: for debugging only */
	ELS_LOG_DROPS = 2,   /* drops only */
};

struct els_record {
	uint64_t ts_ns;          /* CLOCK_REALTIME, ns since the epoch */
	uint64_t count;          /* DROP: packets aggregated; GAP: records lost; else 1 */
	uint64_t pkts[2], bytes[2]; /* FLOW_END: [0] from the initiator, [1] from the responder */
	uint64_t duration_ns;    /* FLOW_END */
	struct els_addr src, dst; /* DROP/ACCEPT: as on the wire; ADMIT/FLOW_END: initiator first */
	const char *handler;     /* static name of the deciding handler, or NULL */
	uint32_t rule;
	uint32_t generation;
	uint16_t reason;         /* enum els_reason */
	uint16_t sport, dport;
	uint8_t kind;            /* enum els_rec_kind */
	uint8_t verdict;         /* enum els_action: ACCEPT or DROP, 0 for events/gaps */
	uint8_t family, dir, proto;
	uint8_t icmp_type, icmp_code, tcp_flags;
	char rule_name[32];      /* the deciding rule's configured name, or empty */
	char detail[96];         /* EVENT text, NUL-terminated; empty otherwise */
};

struct els_ring;
struct els_monitor;

struct els_monitor_opts {
	const char *path;     /* SQLite file; created with the schema if missing */
	unsigned producers;   /* number of rings (one per worker, plus one for the main thread) */
	unsigned ring_size;   /* records per ring, rounded up to a power of two; 0 means 8192 */
	unsigned batch_max;   /* records per transaction at most; 0 means 1024 */
	unsigned flush_ms;    /* longest a record waits before it is committed; 0 means 200 */
	unsigned busy_timeout_ms; /* SQLite busy timeout; 0 means 1000 */
};

/* Opens or creates the file and checks its schema version; does not start the thread.
 * NULL with a message in diag on failure. */
struct els_monitor *els_monitor_open(const struct els_monitor_opts *o, struct els_diag *diag);

/* Starts the writer thread. 0 or -errno. */
int els_monitor_start(struct els_monitor *m);

/* Drains every ring, commits, stops the thread, closes the file, frees m. */
void els_monitor_close(struct els_monitor *m);

/* The ring of producer i (0 <= i < producers). Owned by m. */
struct els_ring *els_monitor_ring(struct els_monitor *m, unsigned i);

/* Single-producer push; wait-free. False (and the ring's lost counter grows) when full. */
bool els_ring_push(struct els_ring *r, const struct els_record *rec);

/* Counters for status and tests. */
struct els_monitor_stats {
	uint64_t written;    /* rows committed to the file, gap rows included */
	uint64_t lost;       /* records lost to full rings (each gap record says where) */
	uint64_t write_errors; /* failed transactions (disk full, file gone); filtering goes on */
	uint64_t write_lost; /* records drained but not written because of write errors (a gap
				record with detail "write error: ..." says how many and where) */
};
void els_monitor_get_stats(struct els_monitor *m, struct els_monitor_stats *out);

/* Waits until every record pushed before the call is committed (tests, replay, shutdown), or
 * counted in write_lost while the file cannot be written. Before els_monitor_start, drains
 * in the calling thread. Returns 0, or -ETIMEDOUT after timeout_ms. */
int els_monitor_sync(struct els_monitor *m, unsigned timeout_ms);

/* Ring internals, for the writer and for tests. The consumer side is single-threaded too:
 * only one thread may peek/consume a given ring. */
struct els_ring *els_ring_new(unsigned size); /* rounded up to a power of two; NULL: ENOMEM */
void els_ring_free(struct els_ring *r);
unsigned els_ring_capacity(const struct els_ring *r);
uint64_t els_ring_lost(const struct els_ring *r);   /* pushes refused so far; any thread */
uint64_t els_ring_pushed(const struct els_ring *r); /* pushes accepted so far; any thread */
/* Free slots, as the producer sees them: a producer that must not lose records (replay) can
 * wait for room (e.g. els_monitor_sync) when this runs low. Producer thread only. */
unsigned els_ring_space(struct els_ring *r);
/* The oldest record, or NULL when empty; stays valid until els_ring_consume. *lost_before
 * gets the ring's lost count when it was pushed, so a loss can be placed in sequence. */
const struct els_record *els_ring_peek(struct els_ring *r, uint64_t *lost_before);
void els_ring_consume(struct els_ring *r);

/* Drop aggregation, per worker: drops with the same (direction, protocol, source,
 * destination, destination port, reason) within one second become one record with a count,
 * so a flood costs one record per second per distinct key instead of one per packet.
 * Fixed-size table; a key that finds its slot taken flushes the occupant first. */
struct els_dropagg;
struct els_dropagg *els_dropagg_new(unsigned slots, struct els_ring *ring);
void els_dropagg_free(struct els_dropagg *a);
/* Counts one dropped packet described by rec (kind DROP, count ignored). */
void els_dropagg_add(struct els_dropagg *a, const struct els_record *rec);
/* Emits every entry whose second is over (all of them when now_ns is UINT64_MAX). */
void els_dropagg_flush(struct els_dropagg *a, uint64_t now_ns);

#endif
