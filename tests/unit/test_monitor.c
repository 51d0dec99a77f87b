/* The monitor: schema, columns, batching, sync, close, gaps, refusals, write errors. Each test
 * works in its own temporary directory and reads the file back through its own connection. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/monitor.h"

static char dir[64], path[96];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/els-mon-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/monitor.db", dir);
}

static void teardown(void)
{
	char p[128];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/monitor.key", dir);
	unlink(p);
	rmdir(dir);
}

TestSuite(monitor, .init = setup, .fini = teardown, .timeout = 30);

static struct els_monitor *open_mon(unsigned producers, unsigned ring, unsigned batch,
				    unsigned flush_ms)
{
	struct els_monitor_opts o = {
	    .path = path,
	    .producers = producers,
	    .ring_size = ring,
	    .batch_max = batch,
	    .flush_ms = flush_ms,
	    .busy_timeout_ms = 20,
	};
	struct els_diag d;
	struct els_monitor *m;

	els_diag_init(&d, NULL);
	m = els_monitor_open(&o, &d);
	if (!m)
		els_diag_print(&d, stderr);
	cr_assert_not_null(m);
	cr_assert_eq(d.count, 0);
	els_diag_free(&d);
	return m;
}

/* Opening must fail with one message that contains want. */
static void open_fails(const char *want)
{
	struct els_monitor_opts o = {.path = path, .producers = 1};
	struct els_diag d;

	els_diag_init(&d, NULL);
	cr_assert_null(els_monitor_open(&o, &d));
	cr_assert_eq(d.count, 1);
	cr_assert(strstr(d.msgs[0], want), "message '%s' lacks '%s'", d.msgs[0], want);
	cr_assert(strstr(d.msgs[0], path), "message '%s' does not name the file", d.msgs[0]);
	els_diag_free(&d);
}

static sqlite3 *db_ro(void)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return db;
}

static long long q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v;

	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static long long count_rows(const char *where)
{
	char sql[256];
	sqlite3 *db = db_ro();
	long long n;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM records WHERE %s", where);
	n = q_int(db, sql);
	sqlite3_close(db);
	return n;
}

static struct els_record rec(unsigned kind, uint64_t ts)
{
	struct els_record r;

	memset(&r, 0, sizeof(r));
	r.kind = (uint8_t)kind;
	r.ts_ns = ts;
	r.count = 1;
	return r;
}

static void push_ok(struct els_monitor *m, unsigned ring, const struct els_record *r)
{
	cr_assert(els_ring_push(els_monitor_ring(m, ring), r));
}

static void v4(struct els_addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	cr_assert_eq(inet_pton(AF_INET, s, a->b), 1);
}

static void v6(struct els_addr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	cr_assert_eq(inet_pton(AF_INET6, s, a->b), 1);
}

Test(monitor, creates_file_with_schema_and_reopens)
{
	struct els_monitor *m = open_mon(1, 16, 0, 0);
	sqlite3 *db;
	sqlite3_stmt *st;

	els_monitor_close(m);
	db = db_ro();
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1,
					&st, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "2");
	sqlite3_finalize(st);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records"), 0);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN "
			       "('records_ts', 'records_v')"),
		     2);
	sqlite3_close(db);
	/* an existing file of the current version opens again, keeping its rows */
	m = open_mon(1, 16, 0, 0);
	struct els_record r = rec(ELS_REC_EVENT, 1);
	push_ok(m, 0, &r);
	els_monitor_close(m);
	m = open_mon(1, 16, 0, 0);
	els_monitor_close(m);
	cr_assert_eq(count_rows("1"), 1);
}

Test(monitor, every_kind_reads_back_with_its_columns)
{
	struct els_monitor *m = open_mon(1, 64, 0, 0);
	struct els_record r;
	sqlite3 *db;
	sqlite3_stmt *st;
	const uint64_t t0 = 1700000000123456789ull;

	cr_assert_eq(els_monitor_start(m), 0);
	/* 1: drop, IPv4 TCP, aggregated */
	r = rec(ELS_REC_DROP, t0);
	r.verdict = ELS_DROP;
	r.dir = ELS_DIR_IN;
	r.family = 4;
	r.proto = 6;
	v4(&r.src, "198.51.100.7");
	v4(&r.dst, "192.0.2.1");
	r.sport = 40000;
	r.dport = 22;
	r.tcp_flags = ELS_TCP_SYN;
	r.handler = "header_filter";
	r.reason = ELS_R_NO_PERMIT;
	r.rule = 3;
	snprintf(r.rule_name, sizeof(r.rule_name), "ssh-admin");
	r.generation = 7;
	r.count = 42;
	push_ok(m, 0, &r);
	/* 2: admit, IPv6 UDP, outbound */
	r = rec(ELS_REC_ADMIT, t0 + 1);
	r.verdict = ELS_ACCEPT;
	r.dir = ELS_DIR_OUT;
	r.family = 6;
	r.proto = 17;
	v6(&r.src, "2001:db8::1");
	v6(&r.dst, "2001:db8::53");
	r.sport = 5353;
	r.dport = 53;
	r.handler = "tracker";
	r.reason = ELS_R_PERMIT;
	r.generation = 7;
	push_ok(m, 0, &r);
	/* 3: flow end */
	r = rec(ELS_REC_FLOW_END, t0 + 2);
	r.verdict = ELS_ACCEPT;
	r.family = 4;
	r.proto = 6;
	v4(&r.src, "10.1.2.3");
	v4(&r.dst, "10.1.2.4");
	r.sport = 1234;
	r.dport = 443;
	r.reason = ELS_R_FLOW_CLOSED;
	r.pkts[0] = 10;
	r.pkts[1] = 12;
	r.bytes[0] = 1000;
	r.bytes[1] = 15000;
	r.duration_ns = 2500000000ull;
	push_ok(m, 0, &r);
	/* 4: accept, ICMP echo: no ports */
	r = rec(ELS_REC_ACCEPT, t0 + 3);
	r.verdict = ELS_ACCEPT;
	r.family = 4;
	r.proto = 1;
	v4(&r.src, "203.0.113.9");
	v4(&r.dst, "192.0.2.1");
	r.icmp_type = 8;
	r.reason = ELS_R_PERMIT;
	push_ok(m, 0, &r);
	/* 5: event */
	r = rec(ELS_REC_EVENT, t0 + 4);
	r.reason = ELS_R_EVENT;
	r.generation = 8;
	snprintf(r.detail, sizeof(r.detail), "reload ok");
	push_ok(m, 0, &r);
	/* 6: protocol the agent does not name, no ports */
	r = rec(ELS_REC_DROP, t0 + 5);
	r.verdict = ELS_DROP;
	r.family = 4;
	r.proto = 47;
	v4(&r.src, "198.51.100.8");
	v4(&r.dst, "192.0.2.1");
	r.reason = ELS_R_UNKNOWN_PROTO;
	push_ok(m, 0, &r);
	cr_assert_eq(els_monitor_sync(m, 5000), 0);

	db = db_ro();
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records"), 6);
	/* every column of the drop, by name */
	cr_assert_eq(
	    sqlite3_prepare_v2(db,
			       "SELECT ts_ns, kind, verdict, dir, family, proto, src, sport, "
			       "dst, dport, tcp_flags, handler, reason, rule, rule_name, "
			       "generation, count, icmp_type, pkts_init, duration_ns, detail "
			       "FROM records WHERE seq = 1",
			       -1, &st, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq((uint64_t)sqlite3_column_int64(st, 0), t0);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), "drop");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 2), "drop");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 3), "in");
	cr_assert_eq(sqlite3_column_int(st, 4), 4);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 5), "tcp");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 6), "198.51.100.7");
	cr_assert_eq(sqlite3_column_int(st, 7), 40000);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 8), "192.0.2.1");
	cr_assert_eq(sqlite3_column_int(st, 9), 22);
	cr_assert_eq(sqlite3_column_int(st, 10), ELS_TCP_SYN);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 11), "header_filter");
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 12), "no_permit");
	cr_assert_eq(sqlite3_column_int(st, 13), 3);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 14), "ssh-admin");
	cr_assert_eq(sqlite3_column_int(st, 15), 7);
	cr_assert_eq(sqlite3_column_int(st, 16), 42);
	for (int c = 17; c <= 20; c++)
		cr_assert_eq(sqlite3_column_type(st, c), SQLITE_NULL, "column %d", c);
	sqlite3_finalize(st);

	cr_assert_eq(q_int(db,
			   "SELECT count(*) FROM records WHERE seq = 2 AND kind = 'admit' AND "
			   "verdict = 'accept' AND dir = 'out' AND family = 6 AND proto = 'udp' "
			   "AND src = '2001:db8::1' AND dst = '2001:db8::53' AND sport = 5353 "
			   "AND dport = 53 AND handler = 'tracker' AND reason = 'permit' AND "
			   "tcp_flags IS NULL AND icmp_type IS NULL AND rule IS NULL AND "
			   "rule_name IS NULL AND count = 1 AND pkts_init IS NULL"),
		     1);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE seq = 3 AND kind = 'flow_end' "
			       "AND pkts_init = 10 AND pkts_resp = 12 AND bytes_init = 1000 AND "
			       "bytes_resp = 15000 AND duration_ns = 2500000000 AND "
			       "reason = 'flow_closed' AND handler IS NULL AND dport = 443"),
		     1);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE seq = 4 AND kind = 'accept' "
			       "AND proto = 'icmp' AND icmp_type = 8 AND icmp_code = 0 AND "
			       "sport IS NULL AND dport IS NULL AND tcp_flags IS NULL"),
		     1);
	cr_assert_eq(q_int(db,
			   "SELECT count(*) FROM records WHERE seq = 5 AND kind = 'event' "
			   "AND detail = 'reload ok' AND verdict IS NULL AND dir IS NULL AND "
			   "family IS NULL AND proto IS NULL AND src IS NULL AND dst IS NULL AND "
			   "sport IS NULL AND reason = 'event' AND generation = 8"),
		     1);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE seq = 6 AND proto = '47' AND "
			       "sport IS NULL AND dport IS NULL AND icmp_type IS NULL AND "
			       "reason = 'unknown_protocol'"),
		     1);
	/* the view formats the time for people */
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records_v WHERE seq = 1 AND "
			       "time = '2023-11-14T22:13:20.123Z'"),
		     1);
	sqlite3_close(db);
	els_monitor_close(m);
}

Test(monitor, batches_commit_at_batch_max)
{
	/* flush_ms of a minute: only batch_max can commit before sync */
	struct els_monitor *m = open_mon(1, 64, 10, 60000);
	struct els_monitor_stats s;

	cr_assert_eq(els_monitor_start(m), 0);
	for (unsigned i = 0; i < 25; i++) {
		struct els_record r = rec(ELS_REC_EVENT, i);

		push_ok(m, 0, &r);
	}
	for (int i = 0; i < 500; i++) {
		els_monitor_get_stats(m, &s);
		if (s.written >= 20)
			break;
		usleep(10000);
	}
	usleep(50000);
	els_monitor_get_stats(m, &s);
	cr_assert_eq(s.written, 20, "two full batches, the rest waits: got %lu",
		     (unsigned long)s.written);
	cr_assert_eq(count_rows("1"), 20);
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	els_monitor_get_stats(m, &s);
	cr_assert_eq(s.written, 25);
	cr_assert_eq(count_rows("1"), 25);
	els_monitor_close(m);
}

Test(monitor, sync_commits_every_ring)
{
	struct els_monitor *m = open_mon(3, 256, 1000, 60000);

	cr_assert_eq(els_monitor_start(m), 0);
	for (unsigned k = 0; k < 3; k++) {
		for (unsigned i = 0; i < 100; i++) {
			struct els_record r = rec(ELS_REC_EVENT, k * 1000 + i);

			push_ok(m, k, &r);
		}
		cr_assert_eq(els_monitor_sync(m, 5000), 0);
		cr_assert_eq(count_rows("1"), (k + 1) * 100);
	}
	els_monitor_close(m);
	/* round-robin never reorders one ring */
	sqlite3 *db = db_ro();
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records a JOIN records b ON b.seq = a.seq + 1 "
			       "WHERE a.ts_ns / 1000 = b.ts_ns / 1000 AND b.ts_ns <= a.ts_ns"),
		     0);
	sqlite3_close(db);
}

Test(monitor, close_drains_started_and_unstarted)
{
	struct els_monitor *m = open_mon(2, 1024, 100, 60000);

	cr_assert_eq(els_monitor_start(m), 0);
	for (unsigned i = 0; i < 1000; i++) {
		struct els_record r = rec(ELS_REC_EVENT, i);

		push_ok(m, i % 2, &r);
	}
	els_monitor_close(m);
	cr_assert_eq(count_rows("kind = 'event'"), 1000);

	m = open_mon(1, 64, 100, 60000); /* never started: close drains in the caller */
	for (unsigned i = 0; i < 50; i++) {
		struct els_record r = rec(ELS_REC_EVENT, i);

		push_ok(m, 0, &r);
	}
	els_monitor_close(m);
	cr_assert_eq(count_rows("kind = 'event'"), 1050);
}

Test(monitor, overflowed_ring_writes_gap_with_count)
{
	struct els_monitor *m = open_mon(2, 4, 100, 60000);
	struct els_monitor_stats s;
	sqlite3 *db;

	/* not started: nothing drains, so ring 1 takes 4 and loses 6 */
	for (unsigned i = 0; i < 10; i++) {
		struct els_record r = rec(ELS_REC_EVENT, 100 + i);

		els_ring_push(els_monitor_ring(m, 1), &r);
	}
	els_monitor_get_stats(m, &s);
	cr_assert_eq(s.lost, 6);
	cr_assert_eq(els_monitor_start(m), 0);
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	els_monitor_close(m);
	db = db_ro();
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE kind = 'event'"), 4);
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE kind = 'gap'"), 1);
	/* after the four records that got in, with the count and the ring named */
	cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE kind = 'gap' AND count = 6 AND "
			       "seq = 5 AND reason = 'monitor_gap' AND detail LIKE 'ring 1 full%'"),
		     1);
	sqlite3_close(db);
}

/* A producer much faster than a tiny ring: whatever the timing, each gap row must sit between
 * the records it separates and count exactly the ones missing there. */
struct flood {
	struct els_ring *r;
	unsigned n;
};

static void *flood_producer(void *arg)
{
	struct flood *f = arg;

	for (unsigned i = 0; i < f->n; i++) {
		struct els_record r = rec(ELS_REC_EVENT, i);

		els_ring_push(f->r, &r);
		if (i % 32 == 0) {
			/* pauses let the writer catch up now and then: a mix of records and gaps */
			struct timespec ts = {0, 50000};

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

Test(monitor, gaps_sit_where_the_records_went_missing)
{
	struct els_monitor *m = open_mon(1, 64, 256, 5);
	struct flood f = {.r = els_monitor_ring(m, 0), .n = 100000};
	struct els_monitor_stats s;
	pthread_t t;
	sqlite3 *db;
	sqlite3_stmt *st;
	uint64_t expect = 0, records = 0, gaps = 0, pending_gap = 0;

	cr_assert_eq(els_monitor_start(m), 0);
	cr_assert_eq(pthread_create(&t, NULL, flood_producer, &f), 0);
	pthread_join(t, NULL);
	cr_assert_eq(els_monitor_sync(m, 10000), 0);
	els_monitor_get_stats(m, &s);
	els_monitor_close(m);

	db = db_ro();
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT kind, ts_ns, count FROM records ORDER BY seq",
					-1, &st, NULL),
		     SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		uint64_t ts = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t count = (uint64_t)sqlite3_column_int64(st, 2);

		if (strcmp(kind, "gap") == 0) {
			pending_gap += count;
			gaps += count;
			continue;
		}
		cr_assert_eq(ts, expect + pending_gap, "record %lu after a gap of %lu",
			     (unsigned long)ts, (unsigned long)pending_gap);
		expect = ts + 1;
		pending_gap = 0;
		records++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	cr_assert_eq(expect + pending_gap, f.n, "a trailing gap covers the end");
	cr_assert_eq(records + gaps, f.n);
	cr_assert_eq(gaps, s.lost);
	cr_assert_gt(records, 0);
	cr_log_info("flood: %lu written, %lu lost in %lu", (unsigned long)records,
		    (unsigned long)gaps, (unsigned long)f.n);
}

Test(monitor, refuses_newer_schema_naming_the_file)
{
	sqlite3 *db;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
				  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
				  "INSERT INTO meta VALUES('schema_version', '3');",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	open_fails("schema version 3 is newer");
}

Test(monitor, refuses_foreign_files)
{
	sqlite3 *db;
	FILE *f;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	open_fails("not an els monitor file");
	unlink(path);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("this is not a database, but it is long enough to look like one to a reader.\n"
	      "................................................................................\n",
	      f);
	fclose(f);
	open_fails("not a database");
	unlink(path);
}

Test(monitor, missing_directory_is_named)
{
	char saved[sizeof(path)];

	memcpy(saved, path, sizeof(path));
	snprintf(path, sizeof(path), "%s/nope/monitor.db", dir);
	open_fails("nope does not exist");
	memcpy(path, saved, sizeof(path));
}

/* Another connection holds the write lock: every transaction fails (SQLITE_BUSY after the
 * 20 ms busy timeout). The thread must keep going, count what it could not write, and report
 * it in a gap once the lock is gone. */
Test(monitor, failed_commits_are_counted_and_reported)
{
	struct els_monitor *m = open_mon(1, 256, 100, 5);
	struct els_monitor_stats s;
	sqlite3 *lock;
	unsigned pushed = 0;
	long long gap_sum = 0;

	cr_assert_eq(els_monitor_start(m), 0);
	cr_assert_eq(sqlite3_open(path, &lock), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	for (unsigned i = 0; i < 5; i++) {
		struct els_record r = rec(ELS_REC_EVENT, pushed++);

		push_ok(m, 0, &r);
	}
	cr_assert_eq(els_monitor_sync(m, 5000), 0, "records that cannot be written are counted");
	els_monitor_get_stats(m, &s);
	cr_assert_geq(s.write_errors, 1);
	cr_assert_eq(s.write_lost, 5);
	cr_assert_eq(s.written, 0);
	cr_assert_eq(sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(lock);

	/* writing resumes after the back-off; keep pushing until a record gets in */
	for (int tries = 0; tries < 200; tries++) {
		struct els_record r = rec(ELS_REC_EVENT, pushed++);

		push_ok(m, 0, &r);
		cr_assert_eq(els_monitor_sync(m, 5000), 0);
		if (count_rows("kind = 'event'") > 0)
			break;
		usleep(20000);
	}
	cr_assert_gt(count_rows("kind = 'event'"), 0, "the writer never recovered");
	els_monitor_close(m);
	{
		sqlite3 *db = db_ro();

		gap_sum =
		    q_int(db, "SELECT coalesce(sum(count), 0) FROM records WHERE kind = 'gap' "
			      "AND detail LIKE 'write error: %locked%'");
		cr_assert_eq(q_int(db, "SELECT count(*) FROM records WHERE kind = 'event'") +
				 gap_sum,
			     pushed, "every record is either in the file or in a gap");
		sqlite3_close(db);
	}
	cr_assert_geq(gap_sum, 5);
}

Test(monitor, deleted_file_is_recreated)
{
	struct els_monitor *m = open_mon(1, 256, 100, 5);
	struct els_record r = rec(ELS_REC_EVENT, 1);
	char p[128];
	struct stat sb;
	int tries;

	cr_assert_eq(els_monitor_start(m), 0);
	push_ok(m, 0, &r);
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	/* the writer checks the path once a second, before a transaction */
	for (tries = 0; tries < 300 && stat(path, &sb) != 0; tries++) {
		r = rec(ELS_REC_EVENT, 2);
		push_ok(m, 0, &r);
		cr_assert_eq(els_monitor_sync(m, 5000), 0);
		usleep(10000);
	}
	cr_assert_eq(stat(path, &sb), 0, "the file was not recreated");
	r = rec(ELS_REC_EVENT, 3);
	push_ok(m, 0, &r);
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	els_monitor_close(m);
	cr_assert_geq(count_rows("ts_ns = 3"), 1);
}

Test(monitor, writer_throughput)
{
	const unsigned n = 100000;
	struct els_monitor *m = open_mon(1, n, 1024, 200);
	struct timespec a, b;
	struct els_record r = rec(ELS_REC_DROP, 0);
	double secs;

	r.verdict = ELS_DROP;
	r.family = 4;
	r.proto = 6;
	v4(&r.src, "198.51.100.7");
	v4(&r.dst, "192.0.2.1");
	r.sport = 40000;
	r.dport = 22;
	r.handler = "header_filter";
	r.reason = ELS_R_NO_PERMIT;
	for (unsigned i = 0; i < n; i++) {
		r.ts_ns = 1700000000000000000ull + i;
		push_ok(m, 0, &r);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(els_monitor_start(m), 0);
	cr_assert_eq(els_monitor_sync(m, 60000), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	els_monitor_close(m);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	cr_assert_eq(count_rows("1"), n);
	fprintf(stderr, "monitor writer: %u records in %.3f s = %.0f records/s\n", n, secs,
		n / secs);
}
