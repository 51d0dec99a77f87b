/* The flow table: one per worker thread, so the packet path takes no lock. Both directions of
 * a connection hit one entry because the key is normalised (lower address/port pair first).
 * All memory is allocated when the table is created; insert never calls malloc.
 *
 * Expiry: flows sit on one list per state class, in the order they were queued on it, and each
 * remembers when it was due at that moment (queued_due). A touch that keeps the state moves
 * the flow to the tail only when its expiry has moved more than a slack (max(1 s, timeout /
 * 16)) past that: relinking on every packet would touch two neighbouring flows, which are
 * cold cache lines under real traffic. So each list is in expiry order to within the slack,
 * and expiry looks at heads only, stopping at the first that is not due. The tracker also
 * treats a flow found past its expiry time as ended, so a late reaper never keeps a flow
 * alive for a packet.
 * Capacity: when the table is full, insert evicts the least recently queued flow that is not
 * ESTABLISHED (embryonic, closing, unreplied UDP/ICMP: the ones a flood creates); if every
 * flow is established, insert fails and the new flow is refused (reason flow_table_full), so
 * a SYN flood can never push out the sessions that are already working. */
#ifndef ELS_FLOW_H
#define ELS_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include "els/pkt.h"

enum els_flow_state {
	ELS_FS_NONE = 0,
	ELS_FS_SYN_SENT,    /* TCP: SYN seen from the initiator */
	ELS_FS_SYN_RECV,    /* TCP: SYN-ACK seen from the responder */
	ELS_FS_ESTABLISHED, /* TCP: handshake completed; UDP/ICMP: reply seen */
	ELS_FS_FIN_WAIT,    /* TCP: one side sent FIN */
	ELS_FS_CLOSING,     /* TCP: both sides sent FIN */
	ELS_FS_TIME_WAIT,   /* TCP: last ACK after both FINs, or RST */
	ELS_FS_UNREPLIED,   /* UDP/ICMP: packets from the initiator only */
	ELS_FS__COUNT
};

struct els_flow_key {
	struct els_addr addr[2];
	uint16_t port[2]; /* TCP/UDP ports; ICMP echo id in both; 0 otherwise */
	uint8_t family;
	uint8_t proto;
	uint8_t pad[2];   /* always zero, so keys compare and hash as bytes */
};

struct els_flow {
	struct els_flow_key key;
	uint64_t first_ns, last_ns;
	uint64_t pkts[2], bytes[2]; /* [0]=from the initiator, [1]=from the responder */
	uint32_t rule;              /* the permit that admitted the flow */
	uint32_t generation;        /* policy generation that last confirmed the permit */
	uint8_t state;              /* enum els_flow_state */
	uint8_t init_side;          /* which key side (0/1) sent the first packet */
	uint8_t init_dir;           /* enum els_dir of the first packet */
	uint8_t fin_seen;           /* bit per key side */
	uint16_t handler;           /* chain index of the handler that admitted it */
	uint8_t list;               /* which expiry list the flow is on */
	uint8_t offload;            /* ELS_FLOW_OFFLOADED | ELS_FLOW_MARKED (agent/offload.h) */
	/* table bookkeeping: indices into the table's preallocated array */
	uint32_t hnext, lprev, lnext;
	uint32_t queued_due;        /* expire_ns when queued on its list, in ELS_FLOW_DUE_SHIFT
				     * units rounded up, modulo 2^32 (agent/flow.c) */
	uint64_t expire_ns;         /* last_ns + the timeout given to els_flow_touch */
};

struct els_flow_table;

/* What admitted a flow, kept beside it rather than in it (the flow is two cache lines that
 * every packet reads; this is read at the flow's first and last records only). Its records
 * name the permit of the generation that admitted the flow, whatever later generations call
 * that rule number: a reload may renumber or rename permits while the flow lives on. The
 * table holds one per flow slot, allocated with it; els_flow_insert zeroes it (a zeroed one
 * names no permit and is no half-open flow); the creator of the flow fills it. */
struct els_flow_admit {
	const char *handler; /* static name of the admitting handler, or NULL */
	uint32_t rule;	     /* the permit's number in the admitting generation */
	uint32_t generation; /* the admitting generation (0: a session-gated permit) */
	uint16_t reason;     /* the admitting decision's reason (enum els_reason) */
	uint8_t half_open;   /* TCP flow opened by a SYN whose handshake has not completed: no
				admit record yet, and its end is aggregated (kind half_open) */
	uint8_t quiet;	    /* observe mode admitted it as a would_drop: no admit record */
	char rule_name[32]; /* the permit's id string, as in struct els_record */
	/* The process that owned the local socket, when a service-bound permit asked (else
	 * 0s): its pid and uid, and the worker's reference to the rest (agent/packet/owner.h). */
	uint32_t owner_pid, owner_uid, owner_ref;
};

/* The admit entry of f, a flow of t. */
struct els_flow_admit *els_flow_admit_of(struct els_flow_table *t, const struct els_flow *f);

/* queued_due unit: 2^27 ns (134 ms). */
#define ELS_FLOW_DUE_SHIFT 27

/* els_flow.offload: the kernel carries the flow (its end and counters come from conntrack);
 * its conntrack entry carries the offload mark right now. Zero for a new flow. */
#define ELS_FLOW_OFFLOADED 0x01u
#define ELS_FLOW_MARKED	   0x02u

struct els_flow_table;

/* Capacity is fixed for the table's life (1 .. ELS_FLOW_MAX_CAPACITY). seed keys the hash (take
 * it from getrandom) so a remote sender cannot aim many flows at one bucket. NULL on allocation
 * failure or a capacity out of range. Frees with els_flow_table_free. */
#define ELS_FLOW_MAX_CAPACITY (1u << 30)
struct els_flow_table *els_flow_table_new(uint32_t capacity, uint64_t seed);
void els_flow_table_free(struct els_flow_table *t);

/* Builds the normalised key of a decoded packet. *side receives which key side (0/1) is the
 * packet's source. Returns false for packets that cannot form a flow (no ports and no echo id,
 * later fragments). */
bool els_flow_key_of(const struct els_pkt *p, struct els_flow_key *key, uint8_t *side);

struct els_flow *els_flow_lookup(struct els_flow_table *t, const struct els_flow_key *key);

/* For a caller that decodes packets ahead of judging them (agent/queue.c), so the table's
 * cache misses overlap other work: els_flow_bucket() returns the key's bucket and starts
 * loading it; later, els_flow_prefetch() starts loading the first flow chained there, and
 * els_flow_lookup_in() looks the key up without hashing it again. The first two change
 * nothing. */
struct els_flow_hint {
	struct els_flow_key key;
	uint32_t bucket; /* els_flow_bucket(key) */
	uint8_t side;    /* as from els_flow_key_of */
};
uint32_t els_flow_bucket(const struct els_flow_table *t, const struct els_flow_key *key);
void els_flow_prefetch(const struct els_flow_table *t, uint32_t bucket);
struct els_flow *els_flow_lookup_in(struct els_flow_table *t, const struct els_flow_key *key,
				    uint32_t bucket);

/* Adds a flow in state ELS_FS_NONE with counters zero; the caller fills the rest and calls
 * els_flow_touch. Evicts per the rule above when full; an evicted flow is reported through
 * on_end (which may be NULL) before its slot is reused. NULL when full of established flows,
 * or when the key is already present. */
struct els_flow *els_flow_insert(struct els_flow_table *t, const struct els_flow_key *key,
				 uint64_t now_ns,
				 void (*on_end)(const struct els_flow *f, unsigned reason, void *arg),
				 void *arg);

/* Records activity: sets state, last_ns = now and the expiry time; a new state moves the flow to
 * the tail of that state's list, the same state leaves it in place (see the top of the file).
 * There is one list per (state, protocol class: TCP, ICMP, other), and expiry looks at list
 * heads only, so flows of one state and protocol should be given one timeout; after a timeout
 * is shortened, flows queued later wait behind older ones (at most the old timeout). A flow is
 * ended at most its slack plus 2^ELS_FLOW_DUE_SHIFT ns (134 ms) after its expiry time, plus
 * the expiry tick. */
void els_flow_touch(struct els_flow_table *t, struct els_flow *f, unsigned state, uint64_t now_ns,
		    uint64_t timeout_ns);

void els_flow_remove(struct els_flow_table *t, struct els_flow *f);

/* Removes up to budget flows whose expiry time is <= now, from the list heads, calling
 * on_end(flow, reason) for each before removal (reason ELS_R_FLOW_TIMEOUT, or
 * ELS_R_FLOW_CLOSED for TIME_WAIT). Returns how many it removed. */
/* Why a flow that reached its expiry time ends: closed (TIME_WAIT ran out) or timed out. */
unsigned els_flow_expiry_reason(const struct els_flow *f);

unsigned els_flow_expire(struct els_flow_table *t, uint64_t now_ns, unsigned budget,
			 void (*on_end)(const struct els_flow *f, unsigned reason, void *arg),
			 void *arg);

/* Calls fn for each live flow (off the packet path: stats, shutdown). */
void els_flow_foreach(struct els_flow_table *t, void (*fn)(const struct els_flow *f, void *arg),
		      void *arg);

/* Checks the table's internal links (hash chains, expiry lists, free slots, count) for tests
 * and fuzz targets. Returns 0, or -EUCLEAN at the first inconsistency. Off the packet path. */
int els_flow_table_check(const struct els_flow_table *t);

uint32_t els_flow_count(const struct els_flow_table *t);
uint32_t els_flow_capacity(const struct els_flow_table *t);

/* Fragment memory: remembers admitted first fragments (family, src, dst, proto, id) for a
 * short time so that the later fragments of the same datagram, which carry no ports, get the
 * same verdict. Fixed size, preallocated with the table; old entries are overwritten. */
void els_frag_admit(struct els_flow_table *t, const struct els_pkt *first, uint64_t now_ns);
bool els_frag_admitted(struct els_flow_table *t, const struct els_pkt *later, uint64_t now_ns);

const char *els_flow_state_name(unsigned state);

#endif
