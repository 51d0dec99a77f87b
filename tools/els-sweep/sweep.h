/* els-sweep: monitor file -> enterprise PostgreSQL (see docs/forensics.md). main.c reads and
 * verifies the monitor file; pg.c talks to PostgreSQL; schema.c holds the enterprise schema. */
#ifndef ELS_SWEEP_H
#define ELS_SWEEP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/monitor.h"

/* Exit statuses. */
enum { SWEEP_OK = 0, SWEEP_FINDING = 1, SWEEP_USAGE = 2, SWEEP_FAIL = 3 };

/* The record kinds the enterprise schema has a table for (pg.c), NULL-terminated. */
extern const char *const sweep_pg_kinds[];

/* docs/enterprise-schema.sql, embedded at build time (cmake/embed.cmake). */
extern const char sweep_schema_sql[];

struct sweep_conf {
	char *conninfo;	   /* libpq keyword/value string or postgresql:// URI */
	char *sslmode;	   /* overrides the conninfo's; NULL: the conninfo's, else verify-full */
	char *sslrootcert; /* NULL: libpq's default (~/.postgresql/root.crt) */
	char *monitor;
	char *key_file;
	unsigned batch;
};

#define SWEEP_DEFAULT_CONFIG  "/etc/elsd/sweep.conf"
#define SWEEP_DEFAULT_MONITOR "/var/lib/elsd/monitor.db"
#define SWEEP_DEFAULT_BATCH   5000

/* The command line. */
struct sweep_options {
	const char *config;
	bool config_given;
	const char *db, *sslmode, *monitor, *key;
	unsigned batch;
	uint64_t limit;
	bool verify, init_db, print_schema, quiet;
};

/* Reads o->config (when given, or when the default exists), then lets the options win.
 * 0, or -1 after printing why. sweep_free_conf frees c either way. */
int sweep_load_conf(const struct sweep_options *o, struct sweep_conf *c);
void sweep_free_conf(struct sweep_conf *c);

/* Who the rows belong to. */
struct sweep_ident {
	const char *agent_id, *host, *chain_id;
};

/* A batch of rows in COPY text format, ready for the staging table. */
struct sweep_batch {
	char *buf;
	size_t len, cap;
	unsigned rows;
	uint64_t first_seq, last_seq;
	unsigned char last_mac[ELS_MON_MAC_LEN];
};

/* Connects with conf's settings; NULL with a message. */
PGconn *sweep_pg_connect(const struct sweep_conf *c, char *err, size_t errlen);
/* 0 when the enterprise tables exist; -1 with a message saying how to create them. */
int sweep_pg_check_schema(PGconn *pg, char *err, size_t errlen);
int sweep_pg_init_schema(PGconn *pg, char *err, size_t errlen);
/* The last swept position of a chain: 1 found, 0 none, -1 error. */
int sweep_pg_last(PGconn *pg, const struct sweep_ident *id, uint64_t *seq,
		  unsigned char mac[ELS_MON_MAC_LEN], char *err, size_t errlen);
/* Creates the session's staging table. */
int sweep_pg_prepare(PGconn *pg, char *err, size_t errlen);
/* Submits one batch in one transaction with its els_sweeps row; *added gets the rows that
 * were new (the others were there already). 0, or -1 with a message. */
int sweep_pg_submit(PGconn *pg, const struct sweep_ident *id, const struct sweep_batch *b,
		    uint64_t *added, char *err, size_t errlen);
/* Records a verification finding; best effort. */
void sweep_pg_finding(PGconn *pg, const struct sweep_ident *id, uint64_t seq, const char *what,
		      const char *detail);

/* Appends the current row of st (els_mon_columns, then mac) to b in COPY text format. */
int sweep_batch_add(struct sweep_batch *b, struct sqlite3_stmt *st);
void sweep_batch_reset(struct sweep_batch *b);

#endif
