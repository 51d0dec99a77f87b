/* Monitor internals shared by monitor.c (the writer thread), monitor_file.c (schema, migration,
 * retention) and monitor_chain.c (MACs, key, verification). Not a public interface. */
#ifndef ELS_MONITOR_INT_H
#define ELS_MONITOR_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "els/addr.h"
#include "els/clock.h"
#include "els/monitor.h"

/* One column's value as stored: type is an SQLite fundamental type (SQLITE_NULL,
 * SQLITE_INTEGER, SQLITE_TEXT, ...). s points at n bytes for TEXT and BLOB. */
struct mon_val {
	int type;
	int64_t i;
	const char *s;
	size_t n;
};

/* Rows one insert statement takes: each sqlite3_step costs cursors and record buffers that
 * SQLite allocates and frees again (this build has no lookaside), so rows are queued and
 * inserted this many at a time. */
#define MON_INS_ROWS 16

/* What an insert statement holds bound: bindings survive sqlite3_reset, so a row rebinds only
 * the values that differ from those of the row the same slot held last time (most of a
 * flood's columns repeat). s is kept only for fixed text, whose pointer alone says the value
 * is the same. */
struct mon_binds {
	int type[MON_INS_ROWS][ELS_MON_NCOLS]; /* an SQLite type, or 0: unknown, bind again */
	int64_t i[MON_INS_ROWS][ELS_MON_NCOLS];
	const char *s[MON_INS_ROWS][ELS_MON_NCOLS];
};

/* out = HMAC(key, prev || canonical form of v[0 .. ELS_MON_NCOLS - 1]). 0 or -ENOMEM. */
int mon_mac_vals(const struct els_mon_key *key, const unsigned char prev[ELS_MON_MAC_LEN],
		 const struct mon_val *v, unsigned char out[ELS_MON_MAC_LEN]);

/* Schema and file (monitor_file.c). */
/* INSERT of n rows (1 .. MON_INS_ROWS): per row the 26 els_mon_columns, then the mac. 0, or
 * -ENOMEM. */
int mon_insert_sql(char *buf, size_t len, unsigned n);

struct mon_file_state {
	char chain_id[17];
	char agent_id[128];
	uint64_t head_seq; /* the last committed row */
	unsigned char head_mac[ELS_MON_MAC_LEN];
	char note[96]; /* something found at open that belongs in the file as an event, or "" */
};

/* Creates the schema in an empty file, migrates a version 1 file, or checks a version 2 one
 * against the key, inside the caller's write transaction. Fills st. 0, or -errno with a
 * message in err. */
int mon_file_prepare(sqlite3 *db, const struct els_mon_key *key, const char *agent_id,
		     struct mon_file_state *st, char *err, size_t errlen);

/* One retention step in its own transaction: deletes at most max_rows of the oldest rows that
 * are swept and (unless any_age) older than cutoff_ns, and moves the anchor past them.
 * Returns rows deleted (0: nothing left to do), or -1 with an SQLite message in err. */
long mon_retain_step(sqlite3 *db, const struct els_mon_key *key, const char *chain_id,
		     uint64_t cutoff_ns, bool any_age, unsigned max_rows, char *err, size_t errlen);

/* Bytes the file's live pages take (free pages, which SQLite reuses, are not counted). */
int64_t mon_used_bytes(sqlite3 *db);

/* ---- the writer's state (monitor.c: thread and public API; monitor_txn.c: file,
 * transactions, size cap, retention; monitor_row.c: record -> columns) ---- */

#define MON_RETRY_MIN_MS 50    /* first retry after a failed transaction */
#define MON_RETRY_MAX_MS 2000  /* retries back off up to this */
#define MON_STAT_MS	 1000  /* how often the path is checked for a deleted or replaced file */
#define MON_RETAIN_ROWS	 1000  /* rows deleted per retention transaction */
#define MON_RETAIN_MS	 60000 /* default: how often retention looks for work */
#define MON_CAP_SOFT_PCT 90    /* of max_size: stop writing admits, flow ends, accepts */
#define MON_CAP_HYST_PCT 5     /* a level is left this far below where it was entered */

/* Per-ring bookkeeping. [W] writer only; [A] atomic, written by the writer, read by sync. */
struct ring_state {
	uint64_t consumed;	    /* [W] records taken off the ring */
	uint64_t lost_seen;	    /* [W] ring losses already turned into gap records */
	_Atomic uint64_t done;	    /* [A] consumed, as of the last commit or discard */
	_Atomic uint64_t lost_done; /* [A] lost_seen, as of the last commit or discard */
};

struct els_monitor {
	/* [I] set by open, never changed */
	char *path;
	char *agent_id;
	unsigned nring, batch_max, flush_ms, busy_ms;
	struct els_ring **rings;
	struct ring_state *rs;
	struct els_mon_key key; /* used by the writer only, after open */
	unsigned retention_days, retention_period_ms;
	uint64_t max_size;

	/* [W] the writer thread's, or the opener's until start */
	sqlite3 *db;
	sqlite3_stmt *ins, *ins_many;	    /* one row; MON_INS_ROWS rows */
	struct mon_binds binds, binds_many; /* their parameters */
	struct mon_pend *pend;		    /* [MON_INS_ROWS] rows added, not yet inserted */
	unsigned npend;
	dev_t dev;
	ino_t ino;
	/* The file, open only to hold flock(LOCK_EX) on it while m->db has it open: one writer
	 * per file (a second elsd, or a replay aimed at it, is refused). Closed only after
	 * sqlite3_close: closing another descriptor of the file would drop SQLite's own POSIX
	 * locks on it. -1: none. */
	int lock_fd;
	bool in_txn;
	unsigned txn_rows;    /* rows in the open transaction */
	uint64_t txn_value;   /* records those rows stand for: 1 per record, count per gap */
	uint64_t txn_records; /* rows that are producers' records, not gaps */
	uint64_t txn_start_ms;
	bool failed; /* discarding until retry_ms, after a failed transaction */
	bool reopen; /* the file is gone or replaced: reopen before the next write */
	uint64_t retry_ms, backoff_ms, next_stat_ms;
	uint64_t pending_lost;	  /* records to report in the next write-error gap */
	char errmsg[64];	  /* why the last transaction failed */
	bool write_failing;	  /* since the last failed transaction: logged once per streak */
	uint64_t txn_gap_lost;	  /* what the open transaction's write-error gap row counts */
	struct mon_file_state fs; /* chain id and head as of the last row added */
	uint64_t committed_seq;	  /* the head as of the last commit: a rollback returns to it */
	unsigned char committed_mac[ELS_MON_MAC_LEN];
	bool note_pending;     /* fs.note still has to be written as an event */
	int cap_level;	       /* 0, 1 (soft: admits etc. shed), 2 (full: all shed) */
	uint64_t shed_pending; /* records shed by the cap, for the next size-cap gap */
	bool closing;	       /* the last pass: report what was shed even when full */
	uint64_t next_retain_ms;
	bool retain_more;     /* the last retention step was full: more to do */
	unsigned retain_runs; /* completed retention runs */
	uint64_t retain_run_rows;
	bool retain_blocked; /* retention found a record that fails verification */

	/* threads */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t wake;	 /* [mu] sync and close wake the writer */
	pthread_cond_t progress; /* [mu] the writer tells sync that done moved */
	_Atomic bool stop;
	_Atomic bool flush_req;

	_Atomic uint64_t written, write_errors, write_lost, shed, retained;
	_Atomic int cap_level_pub;
};

/* A record as the column values that are both bound and MACed, so the two cannot differ.
 * fixed: bit i set when v[i] is TEXT of static storage (a name from a constant table). */
struct mon_row {
	struct mon_val v[ELS_MON_NCOLS];
	uint32_t fixed;
	char kbuf[8], pbuf[8], sbuf[ELS_ADDR_STRLEN], dbuf[ELS_ADDR_STRLEN];
};
void mon_row_of(struct mon_row *w, uint64_t seq, const struct els_record *r);

/* A row waiting for the next insert, with its own copy of the record: the ring slot it came
 * from is reused once consumed, and the row's values point into r and handler. */
struct mon_pend {
	struct els_record r;
	char handler[65];
	struct mon_row w;
	unsigned char mac[ELS_MON_MAC_LEN];
};
/* Copies r into p and makes its row. */
void mon_pend_set(struct mon_pend *p, uint64_t seq, const struct els_record *r);

/* After a prepare, every parameter is NULL. */
void mon_binds_reset(struct mon_binds *b);
/* Binds (what changed) and steps rows p[0 .. n - 1] with their MACs into st, a statement of
 * mon_insert_sql(n); an SQLite result code. */
int mon_insert_rows(sqlite3_stmt *st, struct mon_binds *b, const struct mon_pend *p, unsigned n);

/* monitor_txn.c: everything below runs on the writer thread (or the opener's before start). */
int mon_open_db(struct els_monitor *m, char *err, size_t errlen);
void mon_close_db(struct els_monitor *m);
void mon_publish(struct els_monitor *m);
void mon_make_gap(struct els_record *g, uint64_t ts_ns, uint64_t count);
void mon_idle_check(struct els_monitor *m);
bool mon_begin_txn(struct els_monitor *m);
void mon_commit_txn(struct els_monitor *m);
void mon_put(struct els_monitor *m, const struct els_record *r);     /* a producer's record */
void mon_put_own(struct els_monitor *m, const struct els_record *r); /* never shed */
void mon_update_cap(struct els_monitor *m);
/* One retention step if one is due; true when it deleted rows (more may be left). */
bool mon_retain(struct els_monitor *m, uint64_t now, bool last);

#endif
