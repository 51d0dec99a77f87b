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

#define ELS_MONITOR_SCHEMA_VERSION 2

/* Every record kind, once: its enum value (stable: the monitor file stores the name, and
 * older files are read back), and its name in the `kind` column. X is applied to every kind
 * but the last, LAST to the last one, so that a list can be written without a trailing comma.
 * Adding a kind: one line here, its table in els-sweep (tools/els-sweep/pg.c) and its
 * documentation (docs/monitor-schema.md). */
#define ELS_REC_KINDS(X, LAST)                                                                     \
	X(DROP, 1, "drop")	       /* a dropped packet, or `count` of them over one second */  \
	X(ADMIT, 2, "admit")	       /* first packet of an admitted flow */                      \
	X(FLOW_END, 3, "flow_end")     /* a flow ended: packet and byte counts, duration */        \
	X(ACCEPT, 4, "accept")	       /* an accepted packet, only with log = "all" */             \
	X(GAP, 5, "gap")	       /* `count` records lost because a ring was full */          \
	X(EVENT, 6, "event")	       /* agent event: start, stop, reload (text in detail) */     \
	X(WOULD_DROP, 7, "would_drop") /* observe mode: accepted, `reason` says it would drop */   \
	/* `count` TCP flows, admitted by a permit, that ended (reason) without completing their   \
	 * handshake, aggregated per second, destination, port and reason over all sources */      \
	LAST(HALF_OPEN, 8, "half_open")

#define ELS_REC_ENUM_(id, value, name) ELS_REC_##id = value,
enum els_rec_kind { ELS_REC_KINDS(ELS_REC_ENUM_, ELS_REC_ENUM_) ELS_REC__END };
#undef ELS_REC_ENUM_

/* The stable name of each kind, as in the monitor's `kind` column, indexed by enum
 * els_rec_kind; els_rec_kind_names + 1 is a NULL-terminated list of them all, for option
 * checks and messages (els-log, els-sweep, the management `log` request). */
extern const char *const els_rec_kind_names[ELS_REC__END + 1];
/* The same names as one string for help texts and messages: "drop, admit, ..., half_open". */
#define ELS_REC_KIND_ITEM_(id, value, name) name ", "
#define ELS_REC_KIND_LAST_(id, value, name) name
#define ELS_REC_KIND_LIST		    ELS_REC_KINDS(ELS_REC_KIND_ITEM_, ELS_REC_KIND_LAST_)
/* name is one of els_rec_kind_names. */
bool els_rec_kind_known(const char *name);

enum els_log_mode {
	ELS_LOG_DEFAULT = 0, /* drops and half-open flows (aggregated), admits, flow ends */
	ELS_LOG_ALL = 1,     /* also every accepted packet: for debugging only */
	ELS_LOG_DROPS = 2,   /* drops only */
};

struct els_record {
	uint64_t ts_ns;		    /* CLOCK_REALTIME, ns since the epoch */
	uint64_t count;		    /* DROP: packets aggregated; GAP: records lost; else 1 */
	uint64_t pkts[2], bytes[2]; /* FLOW_END: [0] from the initiator, [1] from the responder */
	uint64_t duration_ns;	    /* FLOW_END */
	struct els_addr src, dst; /* DROP/ACCEPT: as on the wire; ADMIT/FLOW_END: initiator first */
	const char *handler;	  /* static name of the deciding handler, or NULL */
	uint32_t rule;
	uint32_t generation;
	uint16_t reason; /* enum els_reason */
	uint16_t sport, dport;
	uint8_t kind;	 /* enum els_rec_kind */
	uint8_t verdict; /* enum els_action: ACCEPT or DROP, 0 for events/gaps */
	uint8_t family, dir, proto;
	uint8_t icmp_type, icmp_code, tcp_flags;
	uint8_t many_src;   /* DROP: aggregated over many remote ends (a spoofed flood): no src
			     * (inbound), or no dst and dport (outbound) */
	char rule_name[32]; /* the deciding rule's configured name, or empty */
	char detail[96];    /* EVENT text, NUL-terminated; empty otherwise */
};

struct els_ring;
struct els_monitor;

/* max_size that sizes the cap to the file system: 10% of the size of the file system that
 * holds the file, as it is at open, and at most ELS_MONITOR_SIZE_AUTO_MAX, so a flood of
 * distinct records can never fill the disk. */
#define ELS_MONITOR_SIZE_AUTO	  UINT64_MAX
#define ELS_MONITOR_SIZE_AUTO_MAX (1ull << 30)
#define ELS_MONITOR_SIZE_AUTO_PCT 10

struct els_monitor_opts {
	const char *path;   /* SQLite file; created with the schema if missing */
	unsigned producers; /* number of rings (one per worker, plus one for the main thread) */
	unsigned ring_size; /* records per ring, rounded up to a power of two; 0 means 8192 */
	unsigned batch_max; /* records per transaction at most; 0 means 1024 */
	unsigned flush_ms;  /* longest a record waits before it is committed; 0 means 200 */
	unsigned busy_timeout_ms; /* SQLite busy timeout; 0 means 1000 */
	/* Chain key (32 bytes, mode 0600). NULL means "monitor.key" in path's directory. Created
	 * with getrandom when missing; a key others can read is refused. */
	const char *key_file;
	const char *agent_id;	 /* stored in a new file's meta; NULL or "" means the host name */
	unsigned retention_days; /* swept records older than this are deleted; 0: kept */
	uint64_t max_size;	 /* bytes of records the file may hold; 0: no cap;
				    ELS_MONITOR_SIZE_AUTO: see below (docs/forensics.md) */
	unsigned retention_period_ms; /* how often retention looks for work; 0 means 60000 */
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
	uint64_t written;      /* rows committed to the file, gap rows included */
	uint64_t lost;	       /* records lost to full rings (each gap record says where) */
	uint64_t write_errors; /* failed transactions (disk full, file gone); filtering goes on */
	uint64_t write_lost;   /* records drained but not written because of write errors (a gap
				  record with detail "write error: ..." says how many and where) */
	uint64_t shed;	       /* records not written because of max_size (gap rows say where) */
	uint64_t retained;     /* rows deleted by retention */
	int cap_level;	       /* 0: below max_size; 1: admits, flow ends, accepts shed; 2: full */
	uint64_t max_size;     /* the cap in bytes (ELS_MONITOR_SIZE_AUTO resolved), 0: none */
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
 * Fixed-size table; a key that finds its slot taken flushes the occupant first.
 * A key without its source that starts more than 64 rows (distinct sources) in one second,
 * a spoofed flood, merges the rest of that second into one row without a source (many_src);
 * outbound, the remote end is the destination address and port, and those go instead.
 * Half-open flow ends (kind HALF_OPEN) go through the same table, keyed without the source:
 * `count` flows per (direction, protocol, destination, port, reason, permit) and second. */
struct els_dropagg;
struct els_dropagg *els_dropagg_new(unsigned slots, struct els_ring *ring);
void els_dropagg_free(struct els_dropagg *a);
/* Counts one dropped packet described by rec (kind DROP, or any kind but HALF_OPEN, which is
 * recorded as DROP), or one half-open flow end (kind HALF_OPEN); count ignored. */
void els_dropagg_add(struct els_dropagg *a, const struct els_record *rec);
/* Emits every entry whose second is over (all of them when now_ns is UINT64_MAX). */
void els_dropagg_flush(struct els_dropagg *a, uint64_t now_ns);

/* ---- Tamper evidence (agent/monitor_chain.c; the model is in docs/forensics.md) ----
 *
 * Every row carries mac = HMAC-SHA256(key, previous row's mac || canonical form of the row's
 * columns, seq first). The first row chains on a genesis value derived from the key and the
 * file's chain id. meta holds the chain head (last seq and mac) and the anchor (seq and mac
 * of the row before the oldest remaining one), each with a tag only the key can make, so
 * deleting rows at either end is as visible as deleting them in the middle. */
#define ELS_MON_KEY_LEN 32
#define ELS_MON_MAC_LEN 32
#define ELS_MON_NCOLS	26 /* columns a MAC covers */

/* Those columns, once, in schema and MAC order, each with its SQLite declaration (the table
 * agent/monitor/monitor_file.c creates; docs/monitor-schema.md). X for every column but the
 * last, LAST for the last. Changing a column changes the MAC's canonical form (CANON_VERSION
 * in lib/monitor/monitor_chain.c) and the schema version. */
#define ELS_MON_COLUMNS(X, LAST)                                                                   \
	X(seq, "INTEGER PRIMARY KEY")                                                              \
	X(ts_ns, "INTEGER NOT NULL")                                                               \
	X(kind, "TEXT NOT NULL")                                                                   \
	X(verdict, "TEXT")                                                                         \
	X(dir, "TEXT")                                                                             \
	X(family, "INTEGER")                                                                       \
	X(proto, "TEXT")                                                                           \
	X(src, "TEXT")                                                                             \
	X(sport, "INTEGER")                                                                        \
	X(dst, "TEXT")                                                                             \
	X(dport, "INTEGER")                                                                        \
	X(icmp_type, "INTEGER")                                                                    \
	X(icmp_code, "INTEGER")                                                                    \
	X(tcp_flags, "INTEGER")                                                                    \
	X(handler, "TEXT")                                                                         \
	X(reason, "TEXT")                                                                          \
	X(rule, "INTEGER")                                                                         \
	X(rule_name, "TEXT")                                                                       \
	X(generation, "INTEGER")                                                                   \
	X(count, "INTEGER NOT NULL DEFAULT 1")                                                     \
	X(pkts_init, "INTEGER")                                                                    \
	X(pkts_resp, "INTEGER")                                                                    \
	X(bytes_init, "INTEGER")                                                                   \
	X(bytes_resp, "INTEGER")                                                                   \
	X(duration_ns, "INTEGER")                                                                  \
	LAST(detail, "TEXT")

/* Those columns as a SELECT list, in MAC order: "seq, ts_ns, kind, ..., detail". */
extern const char els_mon_columns[];

struct els_mon_key {
	unsigned char k[ELS_MON_KEY_LEN];
	char id[17];   /* first 16 hex digits of SHA-256 over the key: names it, reveals nothing */
	void *mac_ctx; /* OpenSSL HMAC context keyed with k; one thread at a time */
};

/* Reads the key file; with create, makes it (0600, 32 random bytes) when it does not exist.
 * Refuses a file that group or others may access, that is not owned by this user or root, or
 * that is not exactly 32 bytes. 0, or -errno with a message in err. Free with _wipe. */
int els_mon_key_load(const char *path, bool create, struct els_mon_key *key, char *err,
		     size_t errlen);
void els_mon_key_wipe(struct els_mon_key *key);
/* The default key path for a monitor file: "monitor.key" in its directory. Caller frees. */
char *els_mon_key_path(const char *monitor_path);

struct sqlite3;
struct sqlite3_stmt;

/* out = MAC of the current row of st, whose columns first .. first + ELS_MON_NCOLS - 1 are
 * els_mon_columns, chained on prev. 0, or -ENOMEM. */
int els_mon_row_mac(const struct els_mon_key *key, const unsigned char prev[ELS_MON_MAC_LEN],
		    struct sqlite3_stmt *st, int first, unsigned char out[ELS_MON_MAC_LEN]);
/* The value a chain's first row is chained on. */
void els_mon_genesis(const struct els_mon_key *key, const char *chain_id,
		     unsigned char out[ELS_MON_MAC_LEN]);
/* Tag of a meta position ("head", "anchor", "swept"): 64 hex digits and a NUL. */
void els_mon_tag(const struct els_mon_key *key, const char *what, const char *chain_id,
		 uint64_t seq, const unsigned char mac[ELS_MON_MAC_LEN], char hex[65]);
void els_mon_hex(const unsigned char *b, size_t n, char *out); /* 2n digits and a NUL */
int els_mon_unhex(const char *s, unsigned char *b, size_t n);  /* 0, or -EINVAL */

/* A position in the chain: a seq and the mac of that row. */
struct els_mon_pos {
	uint64_t seq;
	unsigned char mac[ELS_MON_MAC_LEN];
	bool present; /* the meta entry exists and parses */
	bool ok;      /* and its tag verifies with the key */
};

struct els_mon_meta {
	int version;
	char agent_id[128], host[128], chain_id[17], key_id[17];
	struct els_mon_pos head, anchor, swept;
	uint64_t migrated_v1; /* last seq of a version 1 file that was migrated, else 0 */
};

/* Reads meta (in the caller's transaction, if any). key NULL: tags are not checked. 0, or
 * -EINVAL / -EIO with a message. */
int els_mon_meta_read(struct sqlite3 *db, const struct els_mon_key *key, struct els_mon_meta *out,
		      char *err, size_t errlen);
/* Writes a tagged position into meta (what: "head", "anchor", "swept"). SQLite result. */
int els_mon_meta_put_pos(struct sqlite3 *db, const struct els_mon_key *key, const char *chain_id,
			 const char *what, uint64_t seq, const unsigned char mac[ELS_MON_MAC_LEN]);

enum els_mon_finding {
	ELS_MF_NONE = 0,
	ELS_MF_ALTERED,	  /* a record's columns or mac were changed */
	ELS_MF_INSERTED,  /* a record elsd did not write (no valid mac, or beyond the head) */
	ELS_MF_DELETED,	  /* records missing before the one at `at` */
	ELS_MF_TRUNCATED, /* records missing at the end: the head is beyond the last row */
	ELS_MF_META,	  /* the head or anchor entry in meta is missing or was changed */
};

/* Checks rows one at a time, in seq order. */
struct els_mon_verifier {
	const struct els_mon_key *key;
	uint64_t seq; /* the last good position */
	unsigned char mac[ELS_MON_MAC_LEN];
	uint64_t head_seq; /* rows beyond it were inserted; UINT64_MAX: unknown */
	uint64_t rows;	   /* rows verified */
	int finding;	   /* enum els_mon_finding */
	uint64_t at;	   /* the first seq concerned */
	char msg[256];
};
void els_mon_verify_init(struct els_mon_verifier *v, const struct els_mon_key *key,
			 const struct els_mon_pos *from, uint64_t head_seq);
/* st's columns first .. first + NCOLS - 1 are els_mon_columns, then mac. False once a
 * finding is made (v->finding, v->at, v->msg). */
bool els_mon_verify_row(struct els_mon_verifier *v, struct sqlite3_stmt *st, int first);
/* After the last row: the chain must end exactly at the authenticated head. */
bool els_mon_verify_end(struct els_mon_verifier *v, const struct els_mon_pos *head);

/* Verifies a whole file from its anchor to its head in one read transaction. 0 with the
 * outcome in v (finding NONE: clean) and meta; -errno with a message in err when the file
 * cannot be checked (not a monitor file, version 1, another key). progress, if not NULL, is
 * called now and then with rows done and rows in all. */
int els_mon_verify_file(const char *path, const struct els_mon_key *key, struct els_mon_verifier *v,
			struct els_mon_meta *meta, void (*progress)(uint64_t done, uint64_t total),
			char *err, size_t errlen);

/* "altered", "inserted", ...: the finding as a stable word (reports, the enterprise DB). */
const char *els_mon_finding_name(int finding);

/* `--verify` for the command-line tools: verifies path with the key at key_path (NULL: the
 * default beside it), prints the outcome on stdout and errors on stderr prefixed with prog.
 * Returns the exit status: 0 clean, 1 a finding, 2 cannot verify. */
int els_mon_verify_cli(const char *prog, const char *path, const char *key_path, bool progress);

#endif
