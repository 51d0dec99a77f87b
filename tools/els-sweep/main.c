/* els-sweep: reads the monitor records that no sweep has submitted yet, verifies their chain,
 * and submits them to the enterprise PostgreSQL database in batched transactions; then marks
 * them swept in the monitor file, so that elsd's retention may delete them.
 *
 * Where a sweep starts is decided by the database, not by the file: the last els_sweeps row
 * of the file's chain gives the seq and the MAC the next record must chain on. The file's own
 * mark ("swept" in meta) is written only after PostgreSQL committed, and only serves
 * retention. A crash between the two re-sends a batch, which ON CONFLICT makes harmless. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sweep.h"

static const char usage_text[] =
    "Usage: els-sweep [-c FILE] [--db CONNINFO] [OPTIONS]\n"
    "       els-sweep --verify [-m MONITOR] [-K KEY]\n"
    "       els-sweep --init-db [-c FILE | --db CONNINFO]\n"
    "       els-sweep --print-schema\n"
    "\n"
    "Submits the records of an elsd monitor file that no sweep has submitted yet to the\n"
    "enterprise PostgreSQL database, after verifying their chain of MACs (tamper evidence).\n"
    "Each batch is one transaction, and every row is unique by (agent, chain, seq): a sweep\n"
    "that fails or is killed midway can simply run again, and ends with exactly one copy of\n"
    "every record. After each batch the records are marked swept in the monitor file, which\n"
    "lets elsd delete them once they are older than monitor.retention_days.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   sweep configuration (default " SWEEP_DEFAULT_CONFIG "; libconfig):\n"
    "                        conninfo = \"host=db.example.org dbname=els user=els_sweep\";\n"
    "                        sslmode = \"verify-full\";  sslrootcert = \"/etc/elsd/db-ca.pem\";\n"
    "                        monitor = \"" SWEEP_DEFAULT_MONITOR "\";\n"
    "                        key_file = \"/var/lib/elsd/monitor.key\";  batch_size = 5000;\n"
    "      --db CONNINFO   PostgreSQL connection string or URI, instead of the config's\n"
    "                      conninfo (postgresql://user@host/db?sslmode=verify-full)\n"
    "      --sslmode MODE  libpq sslmode; default verify-full unless CONNINFO names one\n"
    "  -m, --monitor FILE  the monitor file (default " SWEEP_DEFAULT_MONITOR ")\n"
    "  -K, --key FILE      the chain key (default: monitor.key beside the monitor file)\n"
    "  -b, --batch N       records per transaction (default 5000)\n"
    "  -l, --limit N       submit at most N records, then stop\n"
    "      --verify        verify the whole monitor file and exit; needs no database\n"
    "      --init-db       create the enterprise tables (docs/enterprise-schema.sql) and exit\n"
    "      --print-schema  print the enterprise schema and exit\n"
    "  -q, --quiet         no progress line, even on a terminal\n"
    "  -V, --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "The password, if any, belongs in ~/.pgpass or PGPASSFILE, not in the configuration.\n"
    "A configuration file that names a password must not be readable by others.\n"
    "\n"
    "Output: a progress line on standard error when it is a terminal; one summary line on\n"
    "standard output always.\n"
    "\n"
    "Exit status: 0 swept (or verified) cleanly; 1 verification found an altered, inserted\n"
    "or deleted record or a truncated file (submitted up to it, reported, and recorded in\n"
    "els_findings); 2 usage or configuration error; 3 the database or the file failed.\n";

static void usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "els-sweep: %s '%s'\nTry 'els-sweep --help'.\n", what, arg);
	exit(SWEEP_USAGE);
}

static uint64_t number(const char *s, const char *opt)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v == 0 || s[0] == '-') {
		fprintf(stderr, "els-sweep: %s '%s': need a number > 0\n", opt, s);
		exit(SWEEP_USAGE);
	}
	return v;
}

static void parse_args(int argc, char **argv, struct sweep_options *o)
{
	enum { OPT_DB = 256, OPT_SSLMODE, OPT_VERIFY, OPT_INIT, OPT_SCHEMA };
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, OPT_DB},
	    {"sslmode", required_argument, NULL, OPT_SSLMODE},
	    {"monitor", required_argument, NULL, 'm'},
	    {"key", required_argument, NULL, 'K'},
	    {"batch", required_argument, NULL, 'b'},
	    {"limit", required_argument, NULL, 'l'},
	    {"verify", no_argument, NULL, OPT_VERIFY},
	    {"init-db", no_argument, NULL, OPT_INIT},
	    {"print-schema", no_argument, NULL, OPT_SCHEMA},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;

	o->config = SWEEP_DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:m:k:K:b:l:qVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			o->config_given = true;
			break;
		case OPT_DB:
			o->db = optarg;
			break;
		case OPT_SSLMODE:
			o->sslmode = optarg;
			break;
		case 'm':
			o->monitor = optarg;
			break;
		case 'k':
			/* parsed only to name the new spelling: -k is --kind in els-log and
			 * elsctl log (docs/cli.md, "Short options") */
			fprintf(stderr,
				"els-sweep: -k is --kind in els-log; the chain key is -K %s (--key)\n"
				"Try 'els-sweep --help'.\n",
				optarg);
			exit(2);
		case 'K':
			o->key = optarg;
			break;
		case 'b':
			o->batch = (unsigned)number(optarg, "--batch");
			break;
		case 'l':
			o->limit = number(optarg, "--limit");
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case OPT_INIT:
			o->init_db = true;
			break;
		case OPT_SCHEMA:
			o->print_schema = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'V':
			printf("els-sweep %s\n", ELS_VERSION);
			exit(0);
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'els-sweep --help'.\n", stderr);
			exit(SWEEP_USAGE);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument", argv[optind]);
}

/* ---- the sweep ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sweep {
	const struct sweep_options *o;
	struct sweep_conf *c;
	struct els_mon_key key;
	struct els_mon_meta meta;
	struct sweep_ident id;
	sqlite3 *rd, *wr;
	PGconn *pg;
	struct sweep_batch batch;
	uint64_t swept, added, batches, total, crash_after;
	uint64_t from, to; /* seqs submitted this run */
	double t0, last_progress;
	bool progress;
	char err[1024];
};

static void progress(struct sweep *s, bool done)
{
	double now = now_s();

	if (!s->progress || (!done && now - s->last_progress < 0.2))
		return;
	s->last_progress = now;
	fprintf(stderr, "\rels-sweep: %" PRIu64 " of %" PRIu64 " records, %.0f records/s ",
		s->swept, s->total, s->swept / (now - s->t0 > 0 ? now - s->t0 : 1));
	if (done)
		fputs("\r\033[K", stderr);
}

/* Marks the file swept up to the batch just committed. Only retention depends on it, so a
 * failure is reported and the sweep goes on. */
static void mark_swept(struct sweep *s)
{
	int rc = els_mon_meta_put_pos(s->wr, &s->key, s->id.chain_id, "swept", s->batch.last_seq,
				      s->batch.last_mac);

	if (rc != SQLITE_OK)
		fprintf(stderr, "els-sweep: %s: cannot mark records swept (retention waits): %s\n",
			s->c->monitor, sqlite3_errmsg(s->wr));
}

static int submit(struct sweep *s)
{
	uint64_t added = 0;

	if (!s->batch.rows)
		return 0;
	if (sweep_pg_submit(s->pg, &s->id, &s->batch, &added, s->err, sizeof(s->err)) != 0)
		return -1;
	if (!s->from)
		s->from = s->batch.first_seq;
	s->to = s->batch.last_seq;
	s->swept += s->batch.rows;
	s->added += added;
	s->batches++;
	/* test hook: die between PostgreSQL's commit and the file's mark, the worst moment */
	if (s->crash_after && s->batches == s->crash_after)
		_exit(99);
	mark_swept(s);
	sweep_batch_reset(&s->batch);
	progress(s, false);
	return 0;
}

static bool known_kind(const char *k)
{
	for (const char *const *p = sweep_pg_kinds; k && *p; p++)
		if (strcmp(*p, k) == 0)
			return true;
	return false;
}

/* Reports a finding on stdout and in the database. */
static int finding(struct sweep *s, int what, uint64_t seq, const char *msg)
{
	sweep_pg_finding(s->pg, &s->id, seq, els_mon_finding_name(what), msg);
	printf("els-sweep: %s: TAMPERED (%s) at seq %" PRIu64 ": %s\n", s->c->monitor,
	       els_mon_finding_name(what), seq, msg);
	return SWEEP_FINDING;
}

/* Does record seq of the file still chain, from the record before it, to mac? */
static bool same_as_swept(struct sweep *s, uint64_t seq, const unsigned char mac[ELS_MON_MAC_LEN])
{
	struct els_mon_verifier v;
	struct els_mon_pos prev = {.seq = seq - 1};
	sqlite3_stmt *q = NULL;
	char sql[512];
	bool same = false;

	if (seq - 1 == s->meta.anchor.seq) {
		prev = s->meta.anchor;
	} else if (sqlite3_prepare_v2(s->rd, "SELECT mac FROM records WHERE seq = ?1", -1, &q,
				      NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)(seq - 1));
		if (sqlite3_step(q) != SQLITE_ROW || sqlite3_column_bytes(q, 0) != ELS_MON_MAC_LEN)
			goto out;
		memcpy(prev.mac, sqlite3_column_blob(q, 0), ELS_MON_MAC_LEN);
	}
	sqlite3_finalize(q);
	q = NULL;
	snprintf(sql, sizeof(sql), "SELECT %s, mac FROM records WHERE seq = ?1", els_mon_columns);
	if (sqlite3_prepare_v2(s->rd, sql, -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
	els_mon_verify_init(&v, &s->key, &prev, s->meta.head.seq);
	same = sqlite3_step(q) == SQLITE_ROW && els_mon_verify_row(&v, q, 0) &&
	       memcmp(v.mac, mac, ELS_MON_MAC_LEN) == 0;
out:
	sqlite3_finalize(q);
	return same;
}

/* Where this sweep starts: after what the database holds of this chain, checked against the
 * file; or, for a chain new to the database, at the file's anchor. */
static int start_pos(struct sweep *s, struct els_mon_pos *from)
{
	unsigned char mac[ELS_MON_MAC_LEN];
	uint64_t seq = 0;
	char msg[256];
	int rc = sweep_pg_last(s->pg, &s->id, &seq, mac, s->err, sizeof(s->err));

	*from = s->meta.anchor;
	if (rc < 0)
		return SWEEP_FAIL;
	if (rc == 0)
		return SWEEP_OK;
	if (seq > s->meta.head.seq) {
		snprintf(msg, sizeof(msg),
			 "the database holds records up to %" PRIu64 " of this chain but the file "
			 "ends at %" PRIu64 ": it was truncated, or replaced by an older copy",
			 seq, s->meta.head.seq);
		return finding(s, ELS_MF_TRUNCATED, s->meta.head.seq + 1, msg);
	}
	if (seq < s->meta.anchor.seq) {
		snprintf(msg, sizeof(msg),
			 "records %" PRIu64 "..%" PRIu64 " were deleted from the file before they "
			 "reached this database",
			 seq + 1, s->meta.anchor.seq);
		fprintf(stderr, "els-sweep: warning: %s\n", msg);
		sweep_pg_finding(s->pg, &s->id, seq + 1, "unswept_deleted", msg);
		return SWEEP_OK;
	}
	/* the record the database ends with must still be in the file as it was swept: its
	 * columns chain on the record before it (or the anchor) to the MAC the database holds */
	if (seq == s->meta.anchor.seq) {
		if (memcmp(mac, s->meta.anchor.mac, sizeof(mac)) != 0)
			return finding(s, ELS_MF_META, seq,
				       "the file's anchor does not match the database");
	} else if (!same_as_swept(s, seq, mac)) {
		snprintf(msg, sizeof(msg),
			 "record %" PRIu64 " differs from the copy already in the database", seq);
		return finding(s, ELS_MF_ALTERED, seq, msg);
	}
	from->seq = seq;
	memcpy(from->mac, mac, sizeof(mac));
	return SWEEP_OK;
}

static int open_file(struct sweep *s)
{
	const char *path = s->c->monitor;
	int ret;

	if (sqlite3_open_v2(path, &s->rd, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(path, &s->wr, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "%s: cannot open: %s", path,
			 sqlite3_errmsg(s->wr ? s->wr : s->rd));
		return SWEEP_FAIL;
	}
	sqlite3_busy_timeout(s->rd, 10000);
	sqlite3_busy_timeout(s->wr, 10000);
	/* one read transaction: a snapshot of rows and head while elsd goes on writing */
	if (sqlite3_exec(s->rd, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    els_mon_meta_read(s->rd, &s->key, &s->meta, s->err, sizeof(s->err)) != 0) {
		if (!s->err[0])
			snprintf(s->err, sizeof(s->err), "%s", sqlite3_errmsg(s->rd));
		return SWEEP_FAIL;
	}
	ret = SWEEP_FAIL;
	if (s->meta.version != ELS_MONITOR_SCHEMA_VERSION)
		snprintf(s->err, sizeof(s->err), "%s: schema version %d, not %d: %s", path,
			 s->meta.version, ELS_MONITOR_SCHEMA_VERSION,
			 s->meta.version < ELS_MONITOR_SCHEMA_VERSION
			     ? "start elsd once to migrate it"
			     : "use a newer els-sweep");
	else if (strcmp(s->meta.key_id, s->key.id) != 0)
		snprintf(s->err, sizeof(s->err),
			 "%s: was written with key id %s, but %s has id %s: use that agent's key",
			 path, s->meta.key_id, s->c->key_file, s->key.id);
	else
		ret = SWEEP_OK;
	return ret;
}

static int sweep(struct sweep *s)
{
	struct els_mon_verifier v;
	struct els_mon_pos from;
	sqlite3_stmt *q = NULL;
	char sql[512], host[128];
	const char *ce = getenv("ELS_SWEEP_CRASH_AFTER_BATCHES");
	int rc, ret;

	s->crash_after = ce ? strtoull(ce, NULL, 10) : 0;
	if (els_mon_key_load(s->c->key_file, false, &s->key, s->err, sizeof(s->err)) != 0)
		return SWEEP_FAIL;
	ret = open_file(s);
	if (ret)
		return ret;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	s->id.agent_id = s->meta.agent_id;
	s->id.host = s->meta.host[0] ? s->meta.host : host;
	s->id.chain_id = s->meta.chain_id;
	s->pg = sweep_pg_connect(s->c, s->err, sizeof(s->err));
	if (!s->pg)
		return SWEEP_FAIL;
	if (sweep_pg_check_schema(s->pg, s->err, sizeof(s->err)) ||
	    sweep_pg_prepare(s->pg, s->err, sizeof(s->err)))
		return SWEEP_FAIL;
	if (!s->meta.anchor.ok || !s->meta.head.ok)
		return finding(s, ELS_MF_META, 0,
			       !s->meta.head.ok ? "the chain head in meta was altered or removed"
						: "the anchor in meta was altered or removed");
	ret = start_pos(s, &from);
	if (ret)
		return ret;
	s->total = s->meta.head.seq - from.seq;
	if (s->o->limit && s->total > s->o->limit)
		s->total = s->o->limit;
	els_mon_verify_init(&v, &s->key, &from, s->meta.head.seq);
	snprintf(sql, sizeof(sql), "SELECT %s, mac FROM records WHERE seq > ?1 ORDER BY seq",
		 els_mon_columns);
	if (sqlite3_prepare_v2(s->rd, sql, -1, &q, NULL) != SQLITE_OK) {
		snprintf(s->err, sizeof(s->err), "%s: %s", s->c->monitor, sqlite3_errmsg(s->rd));
		return SWEEP_FAIL;
	}
	sqlite3_bind_int64(q, 1, (sqlite3_int64)from.seq);
	progress(s, false);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (s->o->limit && s->swept + s->batch.rows >= s->o->limit)
			break;
		if (!els_mon_verify_row(&v, q, 0))
			break;
		if (!known_kind((const char *)sqlite3_column_text(q, 2))) {
			snprintf(s->err, sizeof(s->err),
				 "record %lld has kind '%s', which this els-sweep does not know",
				 (long long)sqlite3_column_int64(q, 0), sqlite3_column_text(q, 2));
			ret = SWEEP_FAIL;
			goto out;
		}
		if (sweep_batch_add(&s->batch, q) != 0) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			ret = SWEEP_FAIL;
			goto out;
		}
		if (s->batch.rows >= s->c->batch && submit(s) != 0) {
			ret = SWEEP_FAIL;
			goto out;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "%s: %s", s->c->monitor, sqlite3_errmsg(s->rd));
		ret = SWEEP_FAIL;
		goto out;
	}
	/* what verified before a finding is submitted: it is as good as ever */
	if (submit(s) != 0) {
		ret = SWEEP_FAIL;
		goto out;
	}
	if (rc == SQLITE_DONE && !v.finding)
		els_mon_verify_end(&v, &s->meta.head);
	if (v.finding)
		ret = finding(s, v.finding, v.at, v.msg);
out:
	sqlite3_finalize(q);
	progress(s, true);
	return ret;
}

static int run_sweep(const struct sweep_options *o, struct sweep_conf *c)
{
	struct sweep s = {.o = o, .c = c};
	double secs;
	int ret;

	if (!c->conninfo) {
		fprintf(stderr, "els-sweep: no database: give --db CONNINFO, or conninfo in %s\n",
			o->config);
		return SWEEP_USAGE;
	}
	s.progress = !o->quiet && isatty(STDERR_FILENO);
	s.t0 = now_s();
	ret = sweep(&s);
	secs = now_s() - s.t0;
	if (ret == SWEEP_FAIL)
		fprintf(stderr, "els-sweep: %s\n", s.err);
	if (s.id.chain_id)
		printf("els-sweep: agent %s (host %s), chain %s: ", s.id.agent_id, s.id.host,
		       s.id.chain_id);
	else
		printf("els-sweep: %s: ", c->monitor);
	if (s.swept)
		printf("%" PRIu64 " records (seq %" PRIu64 "..%" PRIu64 ") in %" PRIu64
		       " batches, %" PRIu64 " new, %" PRIu64
		       " already in the database; %.2f s, %.0f records/s",
		       s.swept, s.from, s.to, s.batches, s.added, s.swept - s.added, secs,
		       s.swept / (secs > 0 ? secs : 1));
	else if (ret == SWEEP_OK)
		printf("nothing new to sweep (the chain head is %" PRIu64 ")", s.meta.head.seq);
	else
		printf("no records submitted");
	if (ret == SWEEP_FINDING)
		printf("; STOPPED: verification found tampering (see above)");
	else if (ret == SWEEP_FAIL)
		printf("; FAILED: %s", s.err);
	putchar('\n');
	sqlite3_close(s.rd);
	sqlite3_close(s.wr);
	PQfinish(s.pg);
	free(s.batch.buf);
	els_mon_key_wipe(&s.key);
	return ret;
}

static int run_init_db(const struct sweep_options *o, struct sweep_conf *c)
{
	char err[1024];
	PGconn *pg;
	int ret = SWEEP_FAIL;

	if (!c->conninfo) {
		fprintf(stderr, "els-sweep: no database: give --db CONNINFO, or conninfo in %s\n",
			o->config);
		return SWEEP_USAGE;
	}
	pg = sweep_pg_connect(c, err, sizeof(err));
	if (pg && sweep_pg_init_schema(pg, err, sizeof(err)) == 0) {
		printf("els-sweep: the enterprise tables are in place (%s@%s/%s)\n", PQuser(pg),
		       PQhost(pg), PQdb(pg));
		ret = SWEEP_OK;
	} else {
		fprintf(stderr, "els-sweep: %s\n", err);
	}
	PQfinish(pg);
	return ret;
}

int main(int argc, char **argv)
{
	struct sweep_options o = {0};
	struct sweep_conf c = {0};
	int ret;

	parse_args(argc, argv, &o);
	if (o.print_schema) {
		fputs(sweep_schema_sql, stdout);
		return SWEEP_OK;
	}
	if (sweep_load_conf(&o, &c) != 0) {
		sweep_free_conf(&c);
		return SWEEP_USAGE;
	}
	if (o.verify)
		ret = els_mon_verify_cli("els-sweep", c.monitor, c.key_file,
					 !o.quiet && isatty(STDERR_FILENO));
	else if (o.init_db)
		ret = run_init_db(&o, &c);
	else
		ret = run_sweep(&o, &c);
	sweep_free_conf(&c);
	return ret;
}
